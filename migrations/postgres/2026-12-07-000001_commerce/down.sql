-- Undoes up.sql. The old schema knew no bills: a captured payment of exactly the price becomes a
-- payment in full again, any other one a mismatched payment. A purchase that paid for its course
-- otherwise (a discount, tax, another currency, or a payment an operator accepted) is marked
-- accepted by an operator, so the old code still sees it paid. Bills, receipts, promotion codes,
-- refund leases, sales and gateway customers are dropped.
DROP INDEX users_gateway_customer_id_key;
ALTER TABLE users DROP COLUMN gateway_customer_id;

DROP INDEX purchases_sold_at_idx;
DROP INDEX purchases_sold_course_idx;

ALTER TABLE purchases
    ADD COLUMN paid_in_full boolean NOT NULL DEFAULT false,
    ADD COLUMN mismatched_payment_cents bigint,
    ADD COLUMN mismatched_payment_currency char(3);
UPDATE purchases SET
    paid_in_full = (captured_cents = price_cents AND captured_currency = currency),
    mismatched_payment_cents = CASE WHEN captured_cents = price_cents AND captured_currency = currency
                                    THEN NULL ELSE captured_cents END,
    mismatched_payment_currency = CASE WHEN captured_cents = price_cents AND captured_currency = currency
                                       THEN NULL ELSE captured_currency END,
    accepted_by_operator = accepted_by_operator OR (sold_at IS NOT NULL AND NOT
        (captured_cents = price_cents AND captured_currency = currency))
WHERE captured_cents IS NOT NULL;

ALTER TABLE purchases
    ALTER COLUMN paid_in_full DROP DEFAULT,
    ADD CONSTRAINT purchases_mismatched_payment_check CHECK (
        (mismatched_payment_cents IS NULL) = (mismatched_payment_currency IS NULL)
        AND (mismatched_payment_cents IS NULL OR mismatched_payment_cents >= 0)
    ),
    DROP COLUMN sold_at,
    DROP COLUMN sale_net_cents,
    DROP COLUMN sale_disputes_lost_cents,
    DROP COLUMN sale_refunded_cents,
    DROP COLUMN sale_paid_cents,
    DROP COLUMN sale_tax_cents,
    DROP COLUMN sale_discount_cents,
    DROP COLUMN sale_gross_cents,
    DROP COLUMN sale_currency,
    DROP COLUMN refund_lease_until,
    DROP COLUMN promotion_code,
    DROP COLUMN receipt_url,
    DROP COLUMN conversion_total_cents,
    DROP COLUMN conversion_subtotal_cents,
    DROP COLUMN conversion_currency,
    DROP COLUMN bill_total_cents,
    DROP COLUMN bill_tax_cents,
    DROP COLUMN bill_discount_cents,
    DROP COLUMN bill_subtotal_cents,
    DROP COLUMN bill_currency,
    DROP COLUMN captured_currency,
    DROP COLUMN captured_cents;
