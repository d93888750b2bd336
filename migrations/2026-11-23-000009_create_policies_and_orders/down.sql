DROP TABLE orders;
DROP TABLE tenant_policies;
