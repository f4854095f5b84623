-- SQLite twin of the PostgreSQL migration of the same name (whose comments explain each column):
-- purchases keep the payment captured whatever its amount (captured_*, replacing paid_in_full and
-- mismatched_payment_*), what the gateway billed (bill_*, conversion_*), the receipt and
-- promotion code, the refund lease, and the sale derived by the domain on every write (sale_*,
-- sold_at) for the revenue report; users gain their customer at the gateway. Same names and
-- column order as PostgreSQL; instants in nanoseconds since the Unix epoch, booleans 0/1.

-- SQLite cannot drop a column a table CHECK names (purchases_mismatched_payment_check), so the
-- table is rebuilt (in the migration's transaction: nothing is lost half-way). Foreign keys are
-- on, and dropping the old table deletes its rows first, which the inbox rows pointing at them
-- would refuse: their links are set aside and put back once the new table has the rows.
CREATE TEMP TABLE commerce_event_purchases AS
    SELECT event_id, purchase_id FROM webhook_events WHERE purchase_id IS NOT NULL;
UPDATE webhook_events SET purchase_id = NULL WHERE purchase_id IS NOT NULL;

CREATE TABLE purchases_commerce (
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
    -- PaymentFacts, one column per field (captured and the bill further down).
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
    -- The earliest completion time reported for the captured payment; NULL when none said.
    paid_at integer,
    -- An operator accepted a payment that does not pay for the course as it was billed.
    accepted_by_operator integer NOT NULL
        CONSTRAINT purchases_accepted_by_operator_check CHECK (accepted_by_operator IN (0, 1)),
    -- The reconciliation lease. NULL: never claimed.
    reconcile_after integer,
    -- The payment captured, in the currency paid in; zero for a free enrolment or a 100%-off
    -- promotion code; NULL while nothing was captured.
    captured_cents integer,
    captured_currency text,
    -- The bill as the gateway reported it, in the presented currency; NULL: none known.
    bill_currency text,
    bill_subtotal_cents integer,
    bill_discount_cents integer,
    bill_tax_cents integer,
    bill_total_cents integer,
    -- Subtotal and total in the price's currency when presented in another (Adaptive Pricing).
    conversion_currency text,
    conversion_subtotal_cents integer,
    conversion_total_cents integer,
    -- Shown to the buyer; each keeps the first value learned.
    receipt_url text,
    promotion_code text,
    -- The refund lease: refunds of this purchase are made one at a time. NULL: none held.
    refund_lease_until integer,
    -- The sale, derived by the domain on every write like status, for the revenue report only;
    -- all NULL when the purchase earned nothing. sale_net_cents is not CHECKed non-negative: a
    -- write must not fail on the domain's arithmetic over a strange bill.
    sale_currency text,
    sale_gross_cents integer,
    sale_discount_cents integer,
    sale_tax_cents integer,
    sale_paid_cents integer,
    sale_refunded_cents integer,
    sale_disputes_lost_cents integer,
    sale_net_cents integer,
    sold_at integer,
    CONSTRAINT purchases_checkout_check CHECK (
        (checkout_session_id IS NULL) = (checkout_url IS NULL)
        AND (checkout_url IS NULL) = (checkout_expires_at IS NULL)
    ),
    CONSTRAINT purchases_refunded_check CHECK (
        (refunded_cents IS NULL) = (refunded_currency IS NULL)
        AND (refunded_cents IS NULL OR refunded_cents >= 0)
    ),
    CONSTRAINT purchases_captured_check CHECK (
        (captured_cents IS NULL) = (captured_currency IS NULL)
        AND (captured_cents IS NULL OR captured_cents >= 0)
    ),
    CONSTRAINT purchases_bill_check CHECK (
        (bill_currency IS NULL) = (bill_subtotal_cents IS NULL)
        AND (bill_currency IS NULL) = (bill_discount_cents IS NULL)
        AND (bill_currency IS NULL) = (bill_tax_cents IS NULL)
        AND (bill_currency IS NULL) = (bill_total_cents IS NULL)
        AND (bill_currency IS NULL OR (bill_subtotal_cents >= 0 AND bill_discount_cents >= 0
                                       AND bill_tax_cents >= 0 AND bill_total_cents >= 0))
    ),
    CONSTRAINT purchases_conversion_check CHECK (
        (conversion_currency IS NULL) = (conversion_subtotal_cents IS NULL)
        AND (conversion_currency IS NULL) = (conversion_total_cents IS NULL)
        AND (conversion_currency IS NULL OR bill_currency IS NOT NULL)
        AND (conversion_currency IS NULL OR (conversion_subtotal_cents >= 0
                                             AND conversion_total_cents >= 0))
    ),
    CONSTRAINT purchases_sale_check CHECK (
        (sale_currency IS NULL) = (sale_gross_cents IS NULL)
        AND (sale_currency IS NULL) = (sale_discount_cents IS NULL)
        AND (sale_currency IS NULL) = (sale_tax_cents IS NULL)
        AND (sale_currency IS NULL) = (sale_paid_cents IS NULL)
        AND (sale_currency IS NULL) = (sale_refunded_cents IS NULL)
        AND (sale_currency IS NULL) = (sale_disputes_lost_cents IS NULL)
        AND (sale_currency IS NULL) = (sale_net_cents IS NULL)
        AND (sale_currency IS NULL) = (sold_at IS NULL)
        AND (sale_currency IS NULL OR (sale_gross_cents >= 0 AND sale_discount_cents >= 0
                                       AND sale_tax_cents >= 0 AND sale_paid_cents >= 0
                                       AND sale_refunded_cents BETWEEN 0 AND sale_paid_cents
                                       AND sale_disputes_lost_cents >= 0))
    )
) STRICT;

-- What was captured before: the price when it was paid in full, else the mismatched payment (a
-- row that had both keeps the price, the payment that unlocked it).
INSERT INTO purchases_commerce (
    id, user_id, course_id, status, price_cents, currency, checkout_session_id, checkout_url,
    checkout_expires_at, payment_intent_id, attempt_failed, processing, async_payment_failed,
    checkout_expired, checkout_not_started, refunded_cents, refunded_currency, dispute_opened,
    dispute_won, dispute_lost, holds_active_slot, created_at, updated_at, paid_at,
    accepted_by_operator, reconcile_after, captured_cents, captured_currency)
SELECT id, user_id, course_id, status, price_cents, currency, checkout_session_id, checkout_url,
       checkout_expires_at, payment_intent_id, attempt_failed, processing, async_payment_failed,
       checkout_expired, checkout_not_started, refunded_cents, refunded_currency, dispute_opened,
       dispute_won, dispute_lost, holds_active_slot, created_at, updated_at, paid_at,
       accepted_by_operator, reconcile_after,
       CASE WHEN paid_in_full THEN price_cents ELSE mismatched_payment_cents END,
       CASE WHEN paid_in_full THEN currency ELSE mismatched_payment_currency END
FROM purchases;
DROP TABLE purchases;
ALTER TABLE purchases_commerce RENAME TO purchases;

UPDATE webhook_events
SET purchase_id = (SELECT saved.purchase_id FROM commerce_event_purchases AS saved
                   WHERE saved.event_id = webhook_events.event_id)
WHERE event_id IN (SELECT event_id FROM commerce_event_purchases);
DROP TABLE commerce_event_purchases;

-- The indexes went with the old table: the same ones again (see the earlier migrations).
CREATE UNIQUE INDEX purchases_active_slot_key ON purchases (user_id, course_id) WHERE holds_active_slot;
CREATE UNIQUE INDEX purchases_checkout_session_id_key ON purchases (checkout_session_id);
CREATE UNIQUE INDEX purchases_payment_intent_id_key ON purchases (payment_intent_id)
    WHERE payment_intent_id IS NOT NULL;
CREATE INDEX purchases_user_created_idx ON purchases (user_id, created_at DESC, id DESC);
CREATE INDEX purchases_user_course_created_idx ON purchases (user_id, course_id, created_at DESC, id DESC);
CREATE INDEX purchases_course_idx ON purchases (course_id);
CREATE INDEX purchases_pending_created_idx ON purchases (created_at, id) WHERE status = 'pending';

-- The sales of the purchases stored before: no bill was kept, so gross = paid = captured and no
-- discount or tax. Paid for the course: the price captured, or another payment an operator
-- accepted; a free course earns nothing. Refunds count in the captured currency, at most what
-- was paid; a lost dispute takes the rest; with no tax, net is what was kept.
WITH sale AS (
    SELECT id,
           CASE WHEN refunded_currency = captured_currency
                THEN min(refunded_cents, captured_cents) ELSE 0 END AS refunded
    FROM purchases
    WHERE captured_cents IS NOT NULL AND price_cents > 0
      AND ((captured_cents = price_cents AND captured_currency = currency) OR accepted_by_operator)
)
UPDATE purchases SET
    sale_currency = captured_currency,
    sale_gross_cents = captured_cents,
    sale_discount_cents = 0,
    sale_tax_cents = 0,
    sale_paid_cents = captured_cents,
    sale_refunded_cents = sale.refunded,
    sale_disputes_lost_cents = CASE WHEN dispute_lost THEN captured_cents - sale.refunded ELSE 0 END,
    sale_net_cents = CASE WHEN dispute_lost THEN 0 ELSE captured_cents - sale.refunded END,
    sold_at = coalesce(paid_at, created_at)
FROM sale
WHERE purchases.id = sale.id;

-- The revenue report: one instructor's courses' sales, and every course's in a date range.
CREATE INDEX purchases_sold_course_idx ON purchases (course_id, sold_at) WHERE sold_at IS NOT NULL;
CREATE INDEX purchases_sold_at_idx ON purchases (sold_at) WHERE sold_at IS NOT NULL;

-- The user's customer at the payment gateway; NULL until linked; unique where set. A column of
-- its own, so that the down migration can drop it once its index is gone.
ALTER TABLE users ADD COLUMN gateway_customer_id text;
CREATE UNIQUE INDEX users_gateway_customer_id_key ON users (gateway_customer_id)
    WHERE gateway_customer_id IS NOT NULL;
