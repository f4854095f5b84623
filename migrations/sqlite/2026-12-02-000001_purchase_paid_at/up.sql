-- SQLite twin of the PostgreSQL migration of the same name: when the payment in full
-- completed, as the gateway reported it (the earliest of its reports' times), in nanoseconds
-- since the Unix epoch like every instant here. NULL when none said; readers then fall back to
-- created_at. Existing purchases keep NULL.
ALTER TABLE purchases ADD COLUMN paid_at integer;
