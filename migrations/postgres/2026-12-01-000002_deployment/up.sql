-- The payments mode the database belongs to (sandbox, Stripe test, Stripe live), recorded by the
-- first instance that serves it, so that no other mode ever serves it. One row at most: the
-- primary key is fixed at 1, and concurrent first claims race on it (INSERT .. ON CONFLICT DO
-- NOTHING), so exactly one records its mode. A database created before this table has no row and
-- is claimed by whichever instance starts first.
CREATE TABLE deployment (
    id smallint PRIMARY KEY CONSTRAINT deployment_id_check CHECK (id = 1),
    payments_mode text NOT NULL CONSTRAINT deployment_payments_mode_check
        CHECK (payments_mode IN ('sandbox', 'stripe_test', 'stripe_live')),
    -- For humans: when the mode was recorded.
    recorded_at timestamptz NOT NULL DEFAULT now()
);
