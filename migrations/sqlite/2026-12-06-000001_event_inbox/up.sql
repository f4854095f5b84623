-- SQLite twin of the PostgreSQL migration of the same name: processed_events becomes the event
-- inbox webhook_events, every verified gateway event with what became of it (applied, held,
-- ignored, unmatched, failed), its delivery count and its payload until pruned; purchases gain
-- the operator's acceptance of a mismatched payment and the reconciliation lease; and the audit
-- trail. Same names and column order as PostgreSQL; instants in nanoseconds since the Unix epoch.

-- SQLite cannot drop a NOT NULL or add a constraint in place: the table is rebuilt (the copy
-- and the drop run in the migration's transaction, so nothing is lost half-way).
CREATE TABLE webhook_events (
    event_id text PRIMARY KEY NOT NULL,
    event_type text NOT NULL,
    -- NULL for an event about no purchase of ours (or ignored).
    purchase_id text CONSTRAINT webhook_events_purchase_id_fkey REFERENCES purchases (id),
    first_received_at integer NOT NULL,
    -- Always JSON (a payload that is not JSON is kept as a JSON string, as Postgres' jsonb
    -- does); NULL once pruned, the row and its outcome staying.
    payload text CONSTRAINT webhook_events_payload_check CHECK (payload IS NULL OR json_valid(payload)),
    -- Stripe's own fields: test or live mode, and when Stripe created the event.
    livemode integer NOT NULL CONSTRAINT webhook_events_livemode_check CHECK (livemode IN (0, 1)),
    created integer NOT NULL,
    last_received_at integer NOT NULL,
    -- Gateway deliveries only: an operator's replay does not count.
    delivery_count integer NOT NULL CONSTRAINT webhook_events_delivery_count_check
        CHECK (delivery_count >= 1),
    outcome text NOT NULL CONSTRAINT webhook_events_outcome_check
        CHECK (outcome IN ('applied', 'held', 'ignored', 'unmatched', 'failed')),
    -- Why a failed event failed, in words safe to show an operator.
    error text
) STRICT;

-- Every existing row is an event that was applied once; its mode and creation time (Unix
-- seconds) come from the payload Stripe sent, when it says (a payload kept as a JSON string, or
-- with fields of another type, says nothing: test mode and the receipt time then).
INSERT INTO webhook_events (event_id, event_type, purchase_id, first_received_at, payload,
                            livemode, created, last_received_at, delivery_count, outcome, error)
SELECT event_id, event_type, purchase_id, received_at, payload,
       CASE json_type(payload, '$.livemode') WHEN 'true' THEN 1 ELSE 0 END,
       CASE WHEN json_type(payload, '$.created') IS NOT 'integer' THEN received_at
            -- Within what an i64 of nanoseconds holds (to year 2262).
            WHEN json_extract(payload, '$.created') BETWEEN 0 AND 9223372035
            THEN json_extract(payload, '$.created') * 1000000000
            ELSE received_at END,
       received_at, 1, 'applied', NULL
FROM processed_events;
DROP TABLE processed_events;

CREATE INDEX webhook_events_purchase_idx ON webhook_events (purchase_id);
-- list_events: most recently first received first, ties broken by id; with an outcome filter.
CREATE INDEX webhook_events_received_idx ON webhook_events (first_received_at DESC, event_id DESC);
CREATE INDEX webhook_events_outcome_received_idx
    ON webhook_events (outcome, first_received_at DESC, event_id DESC);
-- prune_payloads: the oldest events that still have a payload.
CREATE INDEX webhook_events_prune_idx ON webhook_events (first_received_at, event_id)
    WHERE payload IS NOT NULL;

-- An operator accepted a payment that does not match the price. No purchase stored before had
-- one accepted. A column constraint, so that the down migration can drop the column.
ALTER TABLE purchases ADD COLUMN accepted_by_operator integer NOT NULL DEFAULT 0
    CONSTRAINT purchases_accepted_by_operator_check CHECK (accepted_by_operator IN (0, 1));
-- The reconciliation lease: not claimed again before this instant. NULL: never claimed.
ALTER TABLE purchases ADD COLUMN reconcile_after integer;
-- claim_for_reconciliation and list_held: pending purchases oldest first, ties broken by id.
CREATE INDEX purchases_pending_created_idx ON purchases (created_at, id) WHERE status = 'pending';

-- The append-only audit trail. AUTOINCREMENT: ids only grow, never reused, so the id is the
-- append order (ties of `at` list the later appended first). No foreign keys: an entry records
-- what it was about as it was, and must never be refused, nor stop a row it mentions from being
-- removed.
CREATE TABLE audit_log (
    id integer PRIMARY KEY AUTOINCREMENT,
    at integer NOT NULL,
    actor_kind text NOT NULL CONSTRAINT audit_log_actor_kind_check
        CHECK (actor_kind IN ('user', 'operator', 'system')),
    -- The signed-in user who acted: set exactly when a user did.
    actor_user_id text CONSTRAINT audit_log_actor_user_id_check CHECK (length(actor_user_id) = 36),
    action text NOT NULL CONSTRAINT audit_log_action_check
        CHECK (action IN ('refund', 'accept_held', 'refund_held', 'refund_double_payment',
                          'replay_event', 'grant_admin', 'revoke_admin')),
    purchase_id text CONSTRAINT audit_log_purchase_id_check CHECK (length(purchase_id) = 36),
    event_id text,
    -- A user the action concerned (a role granted), when not a purchase's.
    subject_user_id text CONSTRAINT audit_log_subject_user_id_check
        CHECK (length(subject_user_id) = 36),
    -- The money moved (a refund's amount), when any.
    amount_cents integer,
    currency text CONSTRAINT audit_log_currency_check CHECK (length(currency) = 3),
    reason text NOT NULL,
    CONSTRAINT audit_log_actor_check CHECK ((actor_kind = 'user') = (actor_user_id IS NOT NULL)),
    CONSTRAINT audit_log_amount_check CHECK (
        (amount_cents IS NULL) = (currency IS NULL)
        AND (amount_cents IS NULL OR amount_cents >= 0)
    )
) STRICT;
-- list_audit: newest first, the later appended first among equal times.
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
