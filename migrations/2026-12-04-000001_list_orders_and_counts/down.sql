-- list_counts stays: the count triggers the service installed (outside migrations, since
-- their SQL differs between the backends) keep writing to it. Dropping the definitions makes
-- the next start install them again and count every list afresh.
DROP TABLE list_count_definitions;

DROP INDEX notification_outbox_list;
DROP INDEX payment_methods_list_customer;
DROP INDEX payment_methods_list;
CREATE INDEX payment_methods_customer ON payment_methods (tenant_id, stripe_customer_id);
DROP INDEX refunds_list_payment;
DROP INDEX refunds_list;
CREATE INDEX refunds_payment ON refunds (tenant_id, stripe_payment_intent_id);
DROP INDEX customers_list;
DROP INDEX payments_list_owner;
DROP INDEX payments_list_customer;
DROP INDEX payments_list_status;
DROP INDEX payments_list;
DROP INDEX subscriptions_list_customer;
DROP INDEX subscriptions_list_status;
DROP INDEX subscriptions_list;
CREATE INDEX subscriptions_tenant_order ON subscriptions (tenant_id, stripe_created, id);
CREATE INDEX subscriptions_tenant_customer ON subscriptions (tenant_id, stripe_customer_id);
