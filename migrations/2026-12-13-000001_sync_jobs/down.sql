DROP TABLE sync_state;
DROP INDEX sync_jobs_one_active;
DROP TABLE sync_jobs;
