-- Undoes up.sql. The old table recorded applied events only, each with its purchase and payload:
-- the events recorded as anything else are dropped (the old code never stored them), and a
-- pruned payload comes back as JSON null.
DROP TABLE audit_log;

DROP INDEX purchases_pending_created_idx;
ALTER TABLE purchases DROP COLUMN reconcile_after;
ALTER TABLE purchases DROP COLUMN accepted_by_operator;

DROP INDEX webhook_events_prune_idx;
DROP INDEX webhook_events_outcome_received_idx;
DROP INDEX webhook_events_received_idx;
DELETE FROM webhook_events WHERE outcome NOT IN ('applied', 'held') OR purchase_id IS NULL;
UPDATE webhook_events SET payload = 'null'::json WHERE payload IS NULL;
ALTER TABLE webhook_events
    ALTER COLUMN payload TYPE jsonb USING payload::jsonb,
    DROP COLUMN error,
    DROP COLUMN outcome,
    DROP COLUMN delivery_count,
    DROP COLUMN last_received_at,
    DROP COLUMN created,
    DROP COLUMN livemode,
    ALTER COLUMN payload SET NOT NULL,
    ALTER COLUMN purchase_id SET NOT NULL;
ALTER TABLE webhook_events RENAME COLUMN first_received_at TO received_at;
ALTER INDEX webhook_events_purchase_idx RENAME TO processed_events_purchase_idx;
ALTER TABLE webhook_events
    RENAME CONSTRAINT webhook_events_purchase_id_fkey TO processed_events_purchase_id_fkey;
ALTER TABLE webhook_events RENAME CONSTRAINT webhook_events_pkey TO processed_events_pkey;
ALTER TABLE webhook_events RENAME TO processed_events;
