-- Undoes up.sql completely: indexes go with their tables.
DROP TABLE processed_events;
DROP TABLE purchases;
DROP TABLE courses;
DROP TABLE users;
