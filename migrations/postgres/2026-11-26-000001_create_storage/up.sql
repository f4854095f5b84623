-- Storage of the purchase core: users, courses, purchases and the gateway events already applied.
-- Lookups each have an index; the partial unique index on purchases enforces "one purchase per user
-- and course holds the active slot", and the processed_events primary key makes webhook delivery
-- exactly-once.

CREATE TABLE users (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    -- Stored normalised (lower-case, trimmed) by the domain's Email::parse.
    email text NOT NULL,
    role text NOT NULL CONSTRAINT users_role_check CHECK (role IN ('student', 'instructor', 'admin')),
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL
);
-- Case-insensitive uniqueness, and the index used by find_user_by_email.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE courses (
    id uuid PRIMARY KEY,
    instructor_id uuid NOT NULL REFERENCES users (id),
    title text NOT NULL,
    subtitle text,
    description text,
    category text,
    level text,
    price_cents bigint NOT NULL CONSTRAINT courses_price_cents_check CHECK (price_cents >= 0),
    currency char(3) NOT NULL,
    published boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
-- list_published_courses: newest first, ties broken by id.
CREATE INDEX courses_published_created_idx ON courses (created_at DESC, id DESC) WHERE published;
CREATE INDEX courses_instructor_idx ON courses (instructor_id);

CREATE TABLE purchases (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    course_id uuid NOT NULL REFERENCES courses (id),
    -- Derived from the facts by the domain on every write; kept for humans and indexing only.
    status text NOT NULL CONSTRAINT purchases_status_check
        CHECK (status IN ('pending', 'completed', 'failed', 'refunded')),
    price_cents bigint NOT NULL CONSTRAINT purchases_price_cents_check CHECK (price_cents >= 0),
    currency char(3) NOT NULL,
    checkout_session_id text,
    checkout_url text,
    checkout_expires_at timestamptz,
    payment_intent_id text,
    -- PaymentFacts, one column per field.
    paid_in_full boolean NOT NULL,
    mismatched_payment_cents bigint,
    mismatched_payment_currency char(3),
    attempt_failed boolean NOT NULL,
    processing boolean NOT NULL,
    async_payment_failed boolean NOT NULL,
    checkout_expired boolean NOT NULL,
    checkout_not_started boolean NOT NULL,
    refunded_cents bigint,
    refunded_currency char(3),
    dispute_opened boolean NOT NULL,
    dispute_won boolean NOT NULL,
    dispute_lost boolean NOT NULL,
    holds_active_slot boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT purchases_checkout_check CHECK (
        (checkout_session_id IS NULL) = (checkout_url IS NULL)
        AND (checkout_url IS NULL) = (checkout_expires_at IS NULL)
    ),
    CONSTRAINT purchases_mismatched_payment_check CHECK (
        (mismatched_payment_cents IS NULL) = (mismatched_payment_currency IS NULL)
        AND (mismatched_payment_cents IS NULL OR mismatched_payment_cents >= 0)
    ),
    CONSTRAINT purchases_refunded_check CHECK (
        (refunded_cents IS NULL) = (refunded_currency IS NULL)
        AND (refunded_cents IS NULL OR refunded_cents >= 0)
    )
);
-- One active purchase per user and course. The domain clears holds_active_slot for good once a
-- purchase leaves pending/completed, so a late event can never make two rows hold it.
CREATE UNIQUE INDEX purchases_active_slot_key ON purchases (user_id, course_id) WHERE holds_active_slot;
-- NULLs are distinct, so only set values are unique.
CREATE UNIQUE INDEX purchases_checkout_session_id_key ON purchases (checkout_session_id);
CREATE UNIQUE INDEX purchases_payment_intent_id_key ON purchases (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
-- Listings: a user's purchases newest first, overall and per course.
CREATE INDEX purchases_user_created_idx ON purchases (user_id, created_at DESC, id DESC);
CREATE INDEX purchases_user_course_created_idx ON purchases (user_id, course_id, created_at DESC, id DESC);
CREATE INDEX purchases_course_idx ON purchases (course_id);

-- Gateway events already applied: the primary key is the deduplication key.
CREATE TABLE processed_events (
    event_id text PRIMARY KEY,
    event_type text NOT NULL,
    purchase_id uuid NOT NULL CONSTRAINT processed_events_purchase_id_fkey REFERENCES purchases (id),
    received_at timestamptz NOT NULL,
    payload jsonb NOT NULL
);
CREATE INDEX processed_events_purchase_idx ON processed_events (purchase_id);
