-- Undoes up.sql completely: indexes and constraints go with their tables.
DROP TABLE processed_events;
DROP TABLE purchases;
DROP TABLE courses;
DROP TABLE users;
