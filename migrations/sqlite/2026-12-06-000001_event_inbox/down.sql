-- Undoes up.sql. The old table recorded applied events only, each with its purchase and payload:
-- the events recorded as anything else are dropped (the old code never stored them), and a
-- pruned payload comes back as JSON null. Rebuilt, as up.sql built webhook_events.
DROP TABLE audit_log;

DROP INDEX purchases_pending_created_idx;
ALTER TABLE purchases DROP COLUMN reconcile_after;
ALTER TABLE purchases DROP COLUMN accepted_by_operator;

CREATE TABLE processed_events (
    event_id text PRIMARY KEY NOT NULL,
    event_type text NOT NULL,
    purchase_id text NOT NULL CONSTRAINT processed_events_purchase_id_fkey REFERENCES purchases (id),
    received_at integer NOT NULL,
    payload text NOT NULL CONSTRAINT processed_events_payload_check CHECK (json_valid(payload))
) STRICT;
INSERT INTO processed_events (event_id, event_type, purchase_id, received_at, payload)
SELECT event_id, event_type, purchase_id, first_received_at, coalesce(payload, 'null')
FROM webhook_events
WHERE outcome IN ('applied', 'held') AND purchase_id IS NOT NULL;
DROP TABLE webhook_events;
CREATE INDEX processed_events_purchase_idx ON processed_events (purchase_id);
