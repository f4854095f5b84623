-- Undoes up.sql.
ALTER TABLE purchases DROP COLUMN paid_at;
