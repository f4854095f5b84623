-- Undoes up.sql (the CHECK goes with its column).
ALTER TABLE users DROP COLUMN session_generation;
