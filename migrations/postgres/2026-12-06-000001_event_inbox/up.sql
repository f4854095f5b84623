-- The record of applied webhook events becomes a durable event inbox: every verified gateway
-- event is kept with what became of it (applied, held for review, ignored, about no purchase of
-- ours, or failed), how often the gateway delivered it, and its payload until pruned, so that an
-- operator can see and replay what the service received. The primary key stays the
-- deduplication key; a redelivery only counts (INSERT .. ON CONFLICT (event_id) DO UPDATE).
ALTER TABLE processed_events RENAME TO webhook_events;
ALTER TABLE webhook_events RENAME CONSTRAINT processed_events_pkey TO webhook_events_pkey;
ALTER TABLE webhook_events
    RENAME CONSTRAINT processed_events_purchase_id_fkey TO webhook_events_purchase_id_fkey;
ALTER INDEX processed_events_purchase_idx RENAME TO webhook_events_purchase_idx;
ALTER TABLE webhook_events RENAME COLUMN received_at TO first_received_at;
ALTER TABLE webhook_events
    -- An event that matches no purchase of ours (or was ignored) is recorded too.
    ALTER COLUMN purchase_id DROP NOT NULL,
    -- Dropped by pruning once the event is old; the row and its outcome stay. json, not jsonb:
    -- jsonb normalises the text (key order, whitespace), while the inbox must give back the exact
    -- body received, for audit and for a replay to decode; json checks it is JSON and keeps it
    -- byte for byte, and is queried with the same operators. (What jsonb already normalised
    -- stays normalised.)
    ALTER COLUMN payload DROP NOT NULL,
    ALTER COLUMN payload TYPE json USING payload::json,
    -- Stripe's own fields: test or live mode, and when Stripe created the event.
    ADD COLUMN livemode boolean,
    ADD COLUMN created timestamptz,
    ADD COLUMN last_received_at timestamptz,
    -- Gateway deliveries only: an operator's replay does not count.
    ADD COLUMN delivery_count integer NOT NULL DEFAULT 1
        CONSTRAINT webhook_events_delivery_count_check CHECK (delivery_count >= 1),
    ADD COLUMN outcome text NOT NULL DEFAULT 'applied'
        CONSTRAINT webhook_events_outcome_check
        CHECK (outcome IN ('applied', 'held', 'ignored', 'unmatched', 'failed')),
    -- Why a failed event failed, in words safe to show an operator.
    ADD COLUMN error text;

-- Every existing row is an event that was applied once; its mode and creation time come from the
-- payload Stripe sent, when it says (a payload kept as a JSON string, or with fields of another
-- type, says nothing: test mode and the receipt time then).
UPDATE webhook_events SET
    livemode = CASE WHEN json_typeof(payload -> 'livemode') = 'boolean'
                    THEN (payload ->> 'livemode')::boolean ELSE false END,
    -- Unix seconds, within what timestamptz holds (to year 9999). CASE, not AND, so that only
    -- a number is ever cast.
    created = CASE WHEN json_typeof(payload -> 'created') IS DISTINCT FROM 'number'
                   THEN first_received_at
                   WHEN (payload ->> 'created')::numeric BETWEEN 0 AND 253402300799
                   THEN to_timestamp((payload ->> 'created')::double precision)
                   ELSE first_received_at END,
    last_received_at = first_received_at;

ALTER TABLE webhook_events
    ALTER COLUMN livemode SET NOT NULL,
    ALTER COLUMN created SET NOT NULL,
    ALTER COLUMN last_received_at SET NOT NULL,
    -- The defaults only filled the existing rows: the adapters always say.
    ALTER COLUMN delivery_count DROP DEFAULT,
    ALTER COLUMN outcome DROP DEFAULT;

-- list_events: most recently first received first, ties broken by id; with an outcome filter.
CREATE INDEX webhook_events_received_idx ON webhook_events (first_received_at DESC, event_id DESC);
CREATE INDEX webhook_events_outcome_received_idx
    ON webhook_events (outcome, first_received_at DESC, event_id DESC);
-- prune_payloads: the oldest events that still have a payload.
CREATE INDEX webhook_events_prune_idx ON webhook_events (first_received_at, event_id)
    WHERE payload IS NOT NULL;

-- An operator accepted a payment that does not match the price (PaymentFacts::accepted_by_operator).
-- No purchase stored before had one accepted.
ALTER TABLE purchases ADD COLUMN accepted_by_operator boolean NOT NULL DEFAULT false;
-- The reconciliation lease: a pass that claimed the purchase (to ask the gateway about it) holds
-- it until then, so instances running together get disjoint batches. NULL: never claimed. Not
-- part of the purchase: only claim_for_reconciliation reads or writes it.
ALTER TABLE purchases ADD COLUMN reconcile_after timestamptz;
-- claim_for_reconciliation and list_held: pending purchases oldest first, ties broken by id. Few
-- purchases are pending at a time, so the partial index stays small.
CREATE INDEX purchases_pending_created_idx ON purchases (created_at, id) WHERE status = 'pending';

-- The append-only audit trail of refunds, review decisions, replays and role changes. The
-- bigserial id is the append order (ties of `at` list the later appended first). No foreign
-- keys: an entry records what it was about as it was, and must never be refused, nor stop a row
-- it mentions from being removed.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor_kind text NOT NULL CONSTRAINT audit_log_actor_kind_check
        CHECK (actor_kind IN ('user', 'operator', 'system')),
    -- The signed-in user who acted: set exactly when a user did.
    actor_user_id uuid,
    action text NOT NULL CONSTRAINT audit_log_action_check
        CHECK (action IN ('refund', 'accept_held', 'refund_held', 'refund_double_payment',
                          'replay_event', 'grant_admin', 'revoke_admin')),
    purchase_id uuid,
    event_id text,
    -- A user the action concerned (a role granted), when not a purchase's.
    subject_user_id uuid,
    -- The money moved (a refund's amount), when any.
    amount_cents bigint,
    currency char(3),
    reason text NOT NULL,
    CONSTRAINT audit_log_actor_check CHECK ((actor_kind = 'user') = (actor_user_id IS NOT NULL)),
    CONSTRAINT audit_log_amount_check CHECK (
        (amount_cents IS NULL) = (currency IS NULL)
        AND (amount_cents IS NULL OR amount_cents >= 0)
    )
);
-- list_audit: newest first, the later appended first among equal times.
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
