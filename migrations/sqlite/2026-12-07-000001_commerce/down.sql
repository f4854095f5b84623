-- Undoes up.sql, as the PostgreSQL down migration of the same name does: a captured payment of
-- exactly the price becomes a payment in full, any other one a mismatched payment, and a
-- purchase that paid for its course otherwise is marked accepted by an operator so that the old
-- code still sees it paid. Bills, receipts, promotion codes, refund leases, sales and gateway
-- customers are dropped. The table is rebuilt in its earlier shape, as up.sql rebuilt it.
DROP INDEX users_gateway_customer_id_key;
ALTER TABLE users DROP COLUMN gateway_customer_id;

CREATE TEMP TABLE commerce_event_purchases AS
    SELECT event_id, purchase_id FROM webhook_events WHERE purchase_id IS NOT NULL;
UPDATE webhook_events SET purchase_id = NULL WHERE purchase_id IS NOT NULL;

CREATE TABLE purchases_before_commerce (
    id text PRIMARY KEY NOT NULL CONSTRAINT purchases_id_check CHECK (length(id) = 36),
    user_id text NOT NULL REFERENCES users (id),
    course_id text NOT NULL REFERENCES courses (id),
    status text NOT NULL CONSTRAINT purchases_status_check
        CHECK (status IN ('pending', 'completed', 'failed', 'refunded')),
    price_cents integer NOT NULL CONSTRAINT purchases_price_cents_check CHECK (price_cents >= 0),
    currency text NOT NULL CONSTRAINT purchases_currency_check CHECK (length(currency) = 3),
    checkout_session_id text,
    checkout_url text,
    checkout_expires_at integer,
    payment_intent_id text,
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
    paid_at integer,
    accepted_by_operator integer NOT NULL DEFAULT 0
        CONSTRAINT purchases_accepted_by_operator_check CHECK (accepted_by_operator IN (0, 1)),
    reconcile_after integer,
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

INSERT INTO purchases_before_commerce (
    id, user_id, course_id, status, price_cents, currency, checkout_session_id, checkout_url,
    checkout_expires_at, payment_intent_id, paid_in_full, mismatched_payment_cents,
    mismatched_payment_currency, attempt_failed, processing, async_payment_failed,
    checkout_expired, checkout_not_started, refunded_cents, refunded_currency, dispute_opened,
    dispute_won, dispute_lost, holds_active_slot, created_at, updated_at, paid_at,
    accepted_by_operator, reconcile_after)
SELECT id, user_id, course_id, status, price_cents, currency, checkout_session_id, checkout_url,
       checkout_expires_at, payment_intent_id, coalesce(at_price, 0),
       CASE WHEN at_price THEN NULL ELSE captured_cents END,
       CASE WHEN at_price THEN NULL ELSE captured_currency END,
       attempt_failed, processing, async_payment_failed, checkout_expired, checkout_not_started,
       refunded_cents, refunded_currency, dispute_opened, dispute_won, dispute_lost,
       holds_active_slot, created_at, updated_at, paid_at,
       accepted_by_operator OR (sold_at IS NOT NULL AND NOT coalesce(at_price, 0)),
       reconcile_after
FROM (SELECT *, captured_cents = price_cents AND captured_currency = currency AS at_price
      FROM purchases);
DROP TABLE purchases;
ALTER TABLE purchases_before_commerce RENAME TO purchases;

UPDATE webhook_events
SET purchase_id = (SELECT saved.purchase_id FROM commerce_event_purchases AS saved
                   WHERE saved.event_id = webhook_events.event_id)
WHERE event_id IN (SELECT event_id FROM commerce_event_purchases);
DROP TABLE commerce_event_purchases;

CREATE UNIQUE INDEX purchases_active_slot_key ON purchases (user_id, course_id) WHERE holds_active_slot;
CREATE UNIQUE INDEX purchases_checkout_session_id_key ON purchases (checkout_session_id);
CREATE UNIQUE INDEX purchases_payment_intent_id_key ON purchases (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
CREATE INDEX purchases_user_created_idx ON purchases (user_id, created_at DESC, id DESC);
CREATE INDEX purchases_user_course_created_idx ON purchases (user_id, course_id, created_at DESC, id DESC);
CREATE INDEX purchases_course_idx ON purchases (course_id);
CREATE INDEX purchases_pending_created_idx ON purchases (created_at, id) WHERE status = 'pending';
