DROP TABLE charges;
DELETE FROM list_counts WHERE list = 'charges';
DELETE FROM list_count_definitions WHERE list = 'charges';
