ALTER TABLE payments DROP COLUMN amount_refunded;
DROP TABLE payment_methods;
DROP TABLE refunds;
DROP TABLE subscription_items;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE prices;
DROP TABLE products;
