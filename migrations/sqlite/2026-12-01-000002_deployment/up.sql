-- SQLite twin of /migrations/2026-12-01-000002_deployment: the payments mode the database belongs
-- to, recorded by the first instance that serves it (one row, id fixed at 1; concurrent first
-- claims race on the primary key with INSERT .. ON CONFLICT DO NOTHING). A database created
-- before this table has no row and is claimed by whichever instance starts first.
CREATE TABLE deployment (
    id integer PRIMARY KEY NOT NULL CONSTRAINT deployment_id_check CHECK (id = 1),
    payments_mode text NOT NULL CONSTRAINT deployment_payments_mode_check
        CHECK (payments_mode IN ('sandbox', 'stripe_test', 'stripe_live')),
    -- For humans: when the mode was recorded, nanoseconds since the Unix epoch (UTC).
    recorded_at integer NOT NULL
) STRICT;
