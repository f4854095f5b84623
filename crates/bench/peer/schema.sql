-- The peer's own tables, created at start-up when missing. It never reads the app's.
CREATE TABLE IF NOT EXISTS peer_users (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    role text NOT NULL DEFAULT 'student',
    session_generation bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS peer_courses (
    id uuid PRIMARY KEY,
    instructor_id uuid NOT NULL REFERENCES peer_users (id),
    title text NOT NULL,
    subtitle text,
    description text,
    category text,
    level text,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    currency char(3) NOT NULL,
    published boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS peer_purchases (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES peer_users (id),
    course_id uuid NOT NULL REFERENCES peer_courses (id),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'completed', 'failed', 'refunded')),
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency char(3) NOT NULL,
    refunded_cents bigint NOT NULL DEFAULT 0,
    checkout_session_id text UNIQUE,
    payment_intent_id text UNIQUE,
    paid_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS peer_purchases_user_course_idx
    ON peer_purchases (user_id, course_id, created_at DESC);

-- Webhook events already processed: the primary key makes each one apply once.
CREATE TABLE IF NOT EXISTS peer_events (
    id text PRIMARY KEY,
    type text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
