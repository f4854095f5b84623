//! What the gateway computed a customer owed for one checkout, and what a paid purchase
//! earned.
//!
//! With promotion codes and tax, the amount a customer pays is no longer the course price:
//! the gateway bills a subtotal (the price), takes a discount off, adds tax, and charges the
//! total. With Adaptive Pricing it also presents all of it in the customer's currency and
//! keeps the amounts in the price's own currency beside them. A [`Bill`] keeps those
//! figures exactly as the gateway reported them, so that a payment can be checked against
//! both the course price (the subtotal) and the total charged.

use crate::money::{Currency, Money, MoneyError};
use time::OffsetDateTime;

/// The amounts of a checkout in the price's own currency, when the gateway presented the
/// checkout in another one (Stripe's `currency_conversion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conversion {
    /// Before discounts and tax: the list price.
    pub subtotal: Money,
    /// After discounts and tax.
    pub total: Money,
}

impl Conversion {
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when the two amounts differ in currency.
    pub fn new(subtotal: Money, total: Money) -> Result<Self, MoneyError> {
        same_currency(subtotal, total)?;
        Ok(Self { subtotal, total })
    }
}

/// What the gateway computed a customer owed, in the currency the checkout was presented in.
///
/// Tax may be added to the subtotal (exclusive) or be part of it (inclusive), so the parts
/// are kept as reported and never recomputed from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bill {
    subtotal: Money,
    discount: Money,
    tax: Money,
    total: Money,
    conversion: Option<Conversion>,
}

fn same_currency(a: Money, b: Money) -> Result<(), MoneyError> {
    if a.currency() == b.currency() {
        Ok(())
    } else {
        Err(MoneyError::CurrencyMismatch(a.currency(), b.currency()))
    }
}

impl Bill {
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] unless subtotal, discount, tax and total share one
    /// currency.
    pub fn new(
        subtotal: Money,
        discount: Money,
        tax: Money,
        total: Money,
        conversion: Option<Conversion>,
    ) -> Result<Self, MoneyError> {
        same_currency(subtotal, discount)?;
        same_currency(subtotal, tax)?;
        same_currency(subtotal, total)?;
        Ok(Self {
            subtotal,
            discount,
            tax,
            total,
            conversion,
        })
    }

    /// A bill of exactly `price`: no discount, no tax (a checkout without either).
    pub fn of_price(price: Money) -> Self {
        let zero = Money::zero(price.currency());
        Self {
            subtotal: price,
            discount: zero,
            tax: zero,
            total: price,
            conversion: None,
        }
    }

    /// The currency the customer was billed (and paid) in.
    pub fn currency(&self) -> Currency {
        self.total.currency()
    }

    /// Before discounts and tax.
    pub fn subtotal(&self) -> Money {
        self.subtotal
    }

    pub fn discount(&self) -> Money {
        self.discount
    }

    pub fn tax(&self) -> Money {
        self.tax
    }

    /// What the customer had to pay.
    pub fn total(&self) -> Money {
        self.total
    }

    pub fn conversion(&self) -> Option<Conversion> {
        self.conversion
    }

    /// The list price billed, in the price's own currency: the converted subtotal when the
    /// checkout was presented in another currency, else the subtotal.
    pub fn list_price(&self) -> Money {
        self.conversion
            .map_or(self.subtotal, |conversion| conversion.subtotal)
    }

    /// Whether this bill is for `price`: its list price is exactly the price, currency included.
    pub fn bills_price(&self, price: Money) -> bool {
        self.list_price() == price
    }

    /// A total order on bills, so that of two reported bills the merge keeps the same one
    /// whatever the order they arrived in (one checkout has one bill; this only decides
    /// contradictory reports).
    pub(crate) fn order_key(&self) -> impl Ord {
        let amounts = |money: Money| (money.currency(), money.minor());
        (
            amounts(self.total),
            amounts(self.subtotal),
            amounts(self.discount),
            amounts(self.tax),
            self.conversion
                .map(|conversion| (amounts(conversion.subtotal), amounts(conversion.total))),
        )
    }
}

/// What one paid purchase earned, in the currency it was paid in; all amounts in minor
/// units of that currency. The revenue report sums these per course and currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sale {
    pub currency: Currency,
    /// When the payment completed.
    pub sold_at: OffsetDateTime,
    /// The list price billed (the bill's subtotal; the amount paid when no bill is known).
    pub gross: i64,
    pub discount: i64,
    pub tax: i64,
    /// What the customer paid.
    pub paid: i64,
    /// Given back by refunds (at most `paid`).
    pub refunded: i64,
    /// Taken back by a lost dispute: whatever of the payment was not refunded already.
    pub disputes_lost: i64,
    /// What was kept, less the tax in it: `kept - tax * kept / paid` (rounded down per
    /// purchase), where `kept = paid - refunded - disputes_lost`. A refund or a lost dispute
    /// gives back its share of the tax with it.
    pub net: i64,
}

impl Sale {
    /// The sale of a payment of `paid`, billed as `bill` (when known and in the same
    /// currency), with `refunded` given back (in that currency) and a dispute lost or not.
    pub(crate) fn of(
        paid: Money,
        bill: Option<Bill>,
        refunded: i64,
        dispute_lost: bool,
        sold_at: OffsetDateTime,
    ) -> Self {
        let bill = bill
            .filter(|bill| bill.currency() == paid.currency())
            .unwrap_or_else(|| Bill::of_price(paid));
        let paid_minor = paid.minor();
        let refunded = refunded.clamp(0, paid_minor);
        let disputes_lost = if dispute_lost {
            paid_minor - refunded
        } else {
            0
        };
        let kept = paid_minor - refunded - disputes_lost;
        let tax = bill.tax.minor();
        let tax_kept = if paid_minor == 0 {
            0
        } else {
            // i128: the product of two amounts can exceed i64; the quotient is at most `tax`.
            let share = i128::from(tax) * i128::from(kept) / i128::from(paid_minor);
            i64::try_from(share).unwrap_or(tax)
        };
        Self {
            currency: paid.currency(),
            sold_at,
            gross: bill.subtotal.minor(),
            discount: bill.discount.minor(),
            tax,
            paid: paid_minor,
            refunded,
            disputes_lost,
            net: kept - tax_kept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").unwrap()).unwrap()
    }

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
    }

    fn bill(subtotal: i64, discount: i64, tax: i64, total: i64) -> Bill {
        Bill::new(usd(subtotal), usd(discount), usd(tax), usd(total), None).unwrap()
    }

    #[test]
    fn a_bill_is_in_one_currency_and_its_conversion_in_one() {
        assert_eq!(
            Bill::new(usd(1), eur(0), usd(0), usd(1), None),
            Err(MoneyError::CurrencyMismatch(
                usd(1).currency(),
                eur(0).currency()
            ))
        );
        assert!(Conversion::new(usd(1), eur(1)).is_err());
    }

    #[test]
    fn the_list_price_is_the_converted_subtotal_when_presented_in_another_currency() {
        let plain = bill(2000, 0, 0, 2000);
        assert!(plain.bills_price(usd(2000)));
        assert!(!plain.bills_price(eur(2000)));
        let converted = Bill::new(
            eur(1850),
            eur(0),
            eur(0),
            eur(1850),
            Some(Conversion::new(usd(2000), usd(2000)).unwrap()),
        )
        .unwrap();
        assert_eq!(converted.currency(), eur(0).currency());
        assert!(converted.bills_price(usd(2000)));
        assert!(!converted.bills_price(eur(1850)));
    }

    #[test]
    fn exclusive_tax_is_added_and_kept_out_of_net() {
        let sale = Sale::of(usd(2400), Some(bill(2000, 0, 400, 2400)), 0, false, AT);
        assert_eq!(
            (sale.gross, sale.tax, sale.paid, sale.net),
            (2000, 400, 2400, 2000)
        );
    }

    #[test]
    fn inclusive_tax_is_part_of_the_subtotal_and_kept_out_of_net() {
        let sale = Sale::of(usd(2000), Some(bill(2000, 0, 333, 2000)), 0, false, AT);
        assert_eq!((sale.gross, sale.paid, sale.net), (2000, 2000, 1667));
    }

    #[test]
    fn a_discount_lowers_what_was_paid_and_earned() {
        let sale = Sale::of(usd(1500), Some(bill(2000, 500, 0, 1500)), 0, false, AT);
        assert_eq!((sale.gross, sale.discount, sale.net), (2000, 500, 1500));
        let free = Sale::of(usd(0), Some(bill(2000, 2000, 0, 0)), 0, false, AT);
        assert_eq!(
            (free.gross, free.discount, free.paid, free.net),
            (2000, 2000, 0, 0)
        );
    }

    #[test]
    fn a_refund_gives_back_its_share_of_the_tax() {
        // Half of 2400 (400 tax) refunded: 1200 kept, of which 200 is tax.
        let sale = Sale::of(usd(2400), Some(bill(2000, 0, 400, 2400)), 1200, false, AT);
        assert_eq!((sale.refunded, sale.net), (1200, 1000));
        let whole = Sale::of(usd(2400), Some(bill(2000, 0, 400, 2400)), 2400, false, AT);
        assert_eq!(whole.net, 0);
    }

    #[test]
    fn a_lost_dispute_takes_what_was_not_refunded() {
        let sale = Sale::of(usd(2000), None, 500, true, AT);
        assert_eq!(
            (sale.refunded, sale.disputes_lost, sale.net),
            (500, 1500, 0)
        );
    }

    #[test]
    fn without_a_bill_in_its_currency_the_payment_is_the_gross() {
        let sale = Sale::of(eur(1850), Some(bill(2000, 0, 0, 2000)), 0, false, AT);
        assert_eq!(
            (sale.gross, sale.discount, sale.tax, sale.net),
            (1850, 0, 0, 1850)
        );
    }
}
