-- Commerce: promotion codes, tax and Adaptive Pricing make the amount a customer pays differ from
-- the course price, so a purchase keeps what the gateway billed (a bill) and the payment it
-- captured, whatever its amount; the receipt and promotion code shown to the buyer; a refund
-- lease so that refunds of one purchase are made one at a time; and its sale (what it earned),
-- for the revenue report. Users gain their customer at the gateway.

-- The payment captured (PaymentFacts::captured), in the currency the customer paid in: one
-- column pair for any amount, where there were two facts before (a payment of exactly the price,
-- paid_in_full, and one of another amount or currency, mismatched_payment). Whether it pays for
-- the course is now decided against the bill, by the domain. Zero for a free enrolment or a
-- 100%-off promotion code; NULL while nothing was captured.
ALTER TABLE purchases
    ADD COLUMN captured_cents bigint,
    ADD COLUMN captured_currency char(3);
-- What was captured before: the price when it was paid in full, else the mismatched payment (a
-- row that had both keeps the price, the payment that unlocked it).
UPDATE purchases SET
    captured_cents = CASE WHEN paid_in_full THEN price_cents ELSE mismatched_payment_cents END,
    captured_currency = CASE WHEN paid_in_full THEN currency ELSE mismatched_payment_currency END
WHERE paid_in_full OR mismatched_payment_cents IS NOT NULL;
ALTER TABLE purchases
    DROP CONSTRAINT purchases_mismatched_payment_check,
    DROP COLUMN paid_in_full,
    DROP COLUMN mismatched_payment_cents,
    DROP COLUMN mismatched_payment_currency,
    ADD CONSTRAINT purchases_captured_check CHECK (
        (captured_cents IS NULL) = (captured_currency IS NULL)
        AND (captured_cents IS NULL OR captured_cents >= 0)
    );

ALTER TABLE purchases
    -- The bill (PaymentFacts::bill): what the gateway computed the customer owed, exactly as it
    -- reported it (tax may be added or included, so no part is derived from the others). Its
    -- amounts share one currency, the one the checkout was presented (and paid) in. NULL: no
    -- bill known (a gateway that reports none, a charge reported before its checkout, or a
    -- purchase stored before bills were kept); the payment is then judged against the price.
    ADD COLUMN bill_currency char(3),
    -- Before discounts and tax: the list price, in the presented currency.
    ADD COLUMN bill_subtotal_cents bigint,
    ADD COLUMN bill_discount_cents bigint,
    ADD COLUMN bill_tax_cents bigint,
    -- What the customer had to pay: a captured payment of exactly this unlocks the course.
    ADD COLUMN bill_total_cents bigint,
    -- Stripe's currency_conversion (Adaptive Pricing): subtotal and total in the price's own
    -- currency, when the checkout was presented in another one. The converted subtotal is what
    -- is compared with the course price. NULL when presented in the price's currency.
    ADD COLUMN conversion_currency char(3),
    ADD COLUMN conversion_subtotal_cents bigint,
    ADD COLUMN conversion_total_cents bigint,
    -- PaymentDetails: shown to the buyer, deciding nothing; each keeps the first value learned.
    -- The gateway's receipt page for the charge.
    ADD COLUMN receipt_url text,
    -- The gateway's id of the promotion code applied at checkout (promo_...).
    ADD COLUMN promotion_code text,
    -- The refund lease: a refund of this purchase is being planned and made until then, so a
    -- second one waits instead of refunding twice. NULL: none held (never taken, or released).
    -- A lease never released (a crash mid-refund) runs out by itself. Not part of the purchase:
    -- only lease_refund and release_refund read or write it.
    ADD COLUMN refund_lease_until timestamptz,
    ADD CONSTRAINT purchases_bill_check CHECK (
        (bill_currency IS NULL) = (bill_subtotal_cents IS NULL)
        AND (bill_currency IS NULL) = (bill_discount_cents IS NULL)
        AND (bill_currency IS NULL) = (bill_tax_cents IS NULL)
        AND (bill_currency IS NULL) = (bill_total_cents IS NULL)
        AND (bill_currency IS NULL OR (bill_subtotal_cents >= 0 AND bill_discount_cents >= 0
                                       AND bill_tax_cents >= 0 AND bill_total_cents >= 0))
    ),
    -- A conversion belongs to a bill.
    ADD CONSTRAINT purchases_conversion_check CHECK (
        (conversion_currency IS NULL) = (conversion_subtotal_cents IS NULL)
        AND (conversion_currency IS NULL) = (conversion_total_cents IS NULL)
        AND (conversion_currency IS NULL OR bill_currency IS NOT NULL)
        AND (conversion_currency IS NULL OR (conversion_subtotal_cents >= 0
                                             AND conversion_total_cents >= 0))
    );

-- The sale (Purchase::sale): what the purchase earned, in the currency it was paid in, minor
-- units. Derived from the facts by the domain on every write, like status; kept for the revenue
-- report only (never read back into a purchase), so that the report is one indexed GROUP BY
-- instead of loading every purchase. All NULL when the purchase earned nothing: not paid for the
-- course (unpaid, failed, held for review) or a free course.
ALTER TABLE purchases
    ADD COLUMN sale_currency char(3),
    -- The list price billed (the bill's subtotal; the amount paid when no bill is known).
    ADD COLUMN sale_gross_cents bigint,
    ADD COLUMN sale_discount_cents bigint,
    ADD COLUMN sale_tax_cents bigint,
    -- What the customer paid (the captured payment).
    ADD COLUMN sale_paid_cents bigint,
    -- Given back by refunds, at most what was paid.
    ADD COLUMN sale_refunded_cents bigint,
    -- Taken back by a lost dispute: whatever of the payment was not refunded already.
    ADD COLUMN sale_disputes_lost_cents bigint,
    -- What was kept, less the tax in it. Not CHECKed non-negative: it is the domain's
    -- arithmetic on what the gateway reported, and a write must not fail on a strange bill.
    ADD COLUMN sale_net_cents bigint,
    -- When the payment completed (the earliest report's time, else the purchase's creation):
    -- the report's date range selects on it.
    ADD COLUMN sold_at timestamptz,
    ADD CONSTRAINT purchases_sale_check CHECK (
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
    );

-- The sales of the purchases stored before: the domain's arithmetic with no bill (none was
-- kept), so gross = paid = captured and no discount or tax. Paid for the course: the price
-- captured, or another payment an operator accepted; a free course earns nothing. Refunds
-- count in the captured payment's currency, at most what was paid; a lost dispute takes the
-- rest; with no tax, net is what was kept.
WITH sale AS (
    SELECT id,
           CASE WHEN refunded_currency = captured_currency
                THEN least(refunded_cents, captured_cents) ELSE 0 END AS refunded
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

-- The revenue report: the sales of one instructor's courses (their courses by
-- courses_instructor_idx, then each course's sales in the date range), and of every course
-- in a date range. Partial: only purchases that earned something, a fraction of all rows.
CREATE INDEX purchases_sold_course_idx ON purchases (course_id, sold_at) WHERE sold_at IS NOT NULL;
CREATE INDEX purchases_sold_at_idx ON purchases (sold_at) WHERE sold_at IS NOT NULL;

-- The user's customer at the payment gateway (cus_...), created once and then sent with every
-- checkout, so that the gateway's receipts, saved payment methods and customer history belong
-- to one customer. NULL until the first checkout links one. Unique where set: a customer is
-- one user's (NULLs are distinct).
ALTER TABLE users ADD COLUMN gateway_customer_id text;
CREATE UNIQUE INDEX users_gateway_customer_id_key ON users (gateway_customer_id)
    WHERE gateway_customer_id IS NOT NULL;
