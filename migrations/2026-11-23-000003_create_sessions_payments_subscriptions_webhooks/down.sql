DROP TABLE webhook_secrets;
DROP TABLE webhook_endpoints;
DROP TABLE subscriptions;
DROP TABLE payments;
DROP TABLE checkout_sessions;
