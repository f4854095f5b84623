-- Undoes up.sql.
DROP TABLE deployment;
