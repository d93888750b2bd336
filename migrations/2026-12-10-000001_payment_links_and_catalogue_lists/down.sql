DROP INDEX prices_list_active;
DROP INDEX prices_list;
DROP INDEX products_list_active;
DROP INDEX products_list;
DROP TABLE payment_links;
