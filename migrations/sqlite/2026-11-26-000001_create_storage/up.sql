-- SQLite twin of the PostgreSQL schema in /migrations (same tables, columns, constraint and index
-- names), with SQLite's types:
--   * ids are uuid text, lower-case and hyphenated (text order = uuid byte order, as in Postgres);
--   * instants are integers: nanoseconds since the Unix epoch, UTC (exact round trip, and
--     integer order is time order);
--   * money is integer minor units plus a 3-letter currency code;
--   * booleans are 0/1 integers (CHECKed), the event payload is JSON text (CHECKed).
-- Tables are STRICT, so a value of the wrong type is refused instead of silently stored.

CREATE TABLE users (
    id text PRIMARY KEY NOT NULL CONSTRAINT users_id_check CHECK (length(id) = 36),
    name text NOT NULL,
    -- Stored normalised (lower-case, trimmed) by the domain's Email::parse.
    email text NOT NULL,
    role text NOT NULL CONSTRAINT users_role_check CHECK (role IN ('student', 'instructor', 'admin')),
    password_hash text NOT NULL,
    created_at integer NOT NULL
) STRICT;
-- Case-insensitive uniqueness, and the index used by find_user_by_email.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE courses (
    id text PRIMARY KEY NOT NULL CONSTRAINT courses_id_check CHECK (length(id) = 36),
    instructor_id text NOT NULL REFERENCES users (id),
    title text NOT NULL,
    subtitle text,
    description text,
    category text,
    level text,
    price_cents integer NOT NULL CONSTRAINT courses_price_cents_check CHECK (price_cents >= 0),
    currency text NOT NULL CONSTRAINT courses_currency_check CHECK (length(currency) = 3),
    published integer NOT NULL CONSTRAINT courses_published_check CHECK (published IN (0, 1)),
    created_at integer NOT NULL,
    updated_at integer NOT NULL
) STRICT;
-- list_published_courses: newest first, ties broken by id.
CREATE INDEX courses_published_created_idx ON courses (created_at DESC, id DESC) WHERE published;
CREATE INDEX courses_instructor_idx ON courses (instructor_id);

CREATE TABLE purchases (
    id text PRIMARY KEY NOT NULL CONSTRAINT purchases_id_check CHECK (length(id) = 36),
    user_id text NOT NULL REFERENCES users (id),
    course_id text NOT NULL REFERENCES courses (id),
    -- Derived from the facts by the domain on every write; kept for humans and indexing only.
    status text NOT NULL CONSTRAINT purchases_status_check
        CHECK (status IN ('pending', 'completed', 'failed', 'refunded')),
    price_cents integer NOT NULL CONSTRAINT purchases_price_cents_check CHECK (price_cents >= 0),
    currency text NOT NULL CONSTRAINT purchases_currency_check CHECK (length(currency) = 3),
    checkout_session_id text,
    checkout_url text,
    checkout_expires_at integer,
    payment_intent_id text,
    -- PaymentFacts, one column per field.
    paid_in_full integer NOT NULL CHECK (paid_in_full IN (0, 1)),
    mismatched_payment_cents integer,
    mismatched_payment_currency text,
    attempt_failed integer NOT NULL CHECK (attempt_failed IN (0, 1)),
    processing integer NOT NULL CHECK (processing IN (0, 1)),
    async_payment_failed integer NOT NULL CHECK (async_payment_failed IN (0, 1)),
    checkout_expired integer NOT NULL CHECK (checkout_expired IN (0, 1)),
    checkout_not_started integer NOT NULL CHECK (checkout_not_started IN (0, 1)),
    refunded_cents integer,
    refunded_currency text,
    dispute_opened integer NOT NULL CHECK (dispute_opened IN (0, 1)),
    dispute_won integer NOT NULL CHECK (dispute_won IN (0, 1)),
    dispute_lost integer NOT NULL CHECK (dispute_lost IN (0, 1)),
    holds_active_slot integer NOT NULL CHECK (holds_active_slot IN (0, 1)),
    created_at integer NOT NULL,
    updated_at integer NOT NULL,
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
) STRICT;
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
    event_id text PRIMARY KEY NOT NULL,
    event_type text NOT NULL,
    purchase_id text NOT NULL CONSTRAINT processed_events_purchase_id_fkey REFERENCES purchases (id),
    received_at integer NOT NULL,
    -- Always JSON: a payload that is not JSON is kept as a JSON string (as Postgres' jsonb does).
    payload text NOT NULL CONSTRAINT processed_events_payload_check CHECK (json_valid(payload))
) STRICT;
CREATE INDEX processed_events_purchase_idx ON processed_events (purchase_id);
