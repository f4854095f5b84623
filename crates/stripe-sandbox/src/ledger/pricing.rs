//! What a sandbox checkout bills: the price, a promotion code's discount, a flat tax rate and,
//! when a presentment currency is configured, the conversion into it. Integer arithmetic
//! only; every rounding is half-up, as stated next to it.

use serde_json::{json, Value};

/// How a promotion code lowers the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discount {
    /// This percentage of the price (1 to 100), rounded half-up to a minor unit.
    PercentOff(u8),
    /// This many minor units of the price's currency, at most the whole price.
    AmountOff(i64),
}

/// One of the sandbox's fixed promotion codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromotionCode {
    /// What the customer types (case does not matter, as at Stripe).
    pub code: &'static str,
    /// The promotion code's id (`promo_...`), what sessions and events name.
    pub id: &'static str,
    /// The coupon behind it.
    pub coupon: &'static str,
    pub discount: Discount,
}

/// The promotion codes every sandbox accepts on a session created with
/// `allow_promotion_codes=true`.
pub const PROMOTION_CODES: [PromotionCode; 3] = [
    PromotionCode {
        code: "SPRING25",
        id: "promo_sandbox_spring25",
        coupon: "sandbox_25_percent_off",
        discount: Discount::PercentOff(25),
    },
    PromotionCode {
        code: "TENOFF",
        id: "promo_sandbox_tenoff",
        coupon: "sandbox_1000_minor_units_off",
        discount: Discount::AmountOff(1000),
    },
    PromotionCode {
        code: "FREECOURSE",
        id: "promo_sandbox_freecourse",
        coupon: "sandbox_100_percent_off",
        discount: Discount::PercentOff(100),
    },
];

impl PromotionCode {
    /// The code a customer typed, trimmed and in any case; `None` for an unknown code.
    pub fn find(typed: &str) -> Option<&'static PromotionCode> {
        let typed = typed.trim();
        PROMOTION_CODES
            .iter()
            .find(|promotion| promotion.code.eq_ignore_ascii_case(typed))
    }
}

/// How automatic tax treats the price (`line_items[0][price_data][tax_behavior]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxBehavior {
    /// Tax is added on top.
    Exclusive,
    /// The price includes its tax.
    Inclusive,
}

/// A currency every checkout of another currency is presented in, at a fixed rate: what
/// Adaptive Pricing does for a customer abroad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentment {
    /// Lower-case ISO code (`eur`).
    pub currency: String,
    /// Units of `currency` per unit of the price's currency, in millionths (0.925 = 925000).
    pub rate_millionths: u64,
}

impl Presentment {
    /// Reads a currency code and a decimal rate (`eur`, `0.925`) without floating point.
    ///
    /// # Errors
    /// A sentence naming what is wrong: a currency the sandbox cannot charge in, or a rate
    /// that is not a positive decimal with at most six places.
    pub fn parse(currency: &str, rate: &str) -> Result<Self, String> {
        let currency = currency.trim().to_ascii_lowercase();
        if super::minimum_charge(&currency).is_none() {
            return Err(format!(
                "the presentment currency {currency:?} is not one the sandbox charges in"
            ));
        }
        let rate = rate.trim();
        let invalid = || format!("the rate must be a positive decimal such as 0.925, got {rate:?}");
        let (whole, fraction) = rate.split_once('.').unwrap_or((rate, ""));
        if whole.is_empty()
            || fraction.len() > 6
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        let fraction: u64 = format!("{fraction:0<6}").parse().map_err(|_| invalid())?;
        let rate_millionths = whole
            .checked_mul(1_000_000)
            .and_then(|millionths| millionths.checked_add(fraction))
            .filter(|millionths| *millionths > 0)
            .ok_or_else(invalid)?;
        Ok(Self {
            currency,
            rate_millionths,
        })
    }

    /// The rate as Stripe writes `fx_rate`: a decimal string (`"0.925"`).
    pub fn fx_rate(&self) -> String {
        let whole = self.rate_millionths / 1_000_000;
        let fraction = format!("{:06}", self.rate_millionths % 1_000_000);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{fraction}")
        }
    }
}

/// How many decimal places a currency's major unit has, among those the sandbox charges in.
fn exponent(currency: &str) -> u32 {
    if currency == "jpy" {
        0
    } else {
        2
    }
}

/// `numerator / denominator` rounded half-up, for a non-negative numerator and a positive
/// denominator.
fn half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

fn narrow(amount: i128) -> i64 {
    i64::try_from(amount).unwrap_or(i64::MAX)
}

/// What one session bills, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pricing {
    /// The price in minor units of `currency` (unit amount times quantity).
    pub subtotal: i64,
    /// The price's currency, lower case.
    pub currency: String,
    /// Automatic tax at a flat rate in basis points; `None` without automatic tax.
    pub tax: Option<(TaxBehavior, u32)>,
    /// The currency the session is presented in, when it differs from the price's.
    pub presentment: Option<Presentment>,
    pub promotion: Option<&'static PromotionCode>,
}

/// A session's amounts, in the currency the customer sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub tax: i64,
    pub total: i64,
    /// The price's currency and its subtotal and total, when presented in another.
    pub conversion: Option<(String, i64, i64)>,
}

impl Pricing {
    /// The discount on `subtotal` (of the price's currency, or converted from it).
    fn discount_on(&self, subtotal: i128, converted: impl Fn(i128) -> i128) -> i128 {
        match self.promotion.map(|promotion| promotion.discount) {
            None => 0,
            // Half-up on the percentage; 100% is exactly the subtotal.
            Some(Discount::PercentOff(percent)) => half_up(subtotal * i128::from(percent), 100),
            Some(Discount::AmountOff(minor)) => converted(i128::from(minor)).min(subtotal),
        }
    }

    /// Tax on what remains after the discount: exclusive `round(taxable * bps / 10000)` on
    /// top; inclusive `taxable - round(taxable * 10000 / (10000 + bps))` within. Returns
    /// (tax, total).
    fn taxed(&self, taxable: i128) -> (i128, i128) {
        match self.tax {
            None => (0, taxable),
            Some((TaxBehavior::Exclusive, bps)) => {
                let tax = half_up(taxable * i128::from(bps), 10_000);
                (tax, taxable + tax)
            }
            Some((TaxBehavior::Inclusive, bps)) => {
                let net = half_up(taxable * 10_000, 10_000 + i128::from(bps));
                (taxable - net, taxable)
            }
        }
    }

    /// The amounts: in the price's currency, or presented in another one where the price
    /// and a fixed discount are converted at the rate (half-up) and the tax is computed on
    /// the converted amount, while `conversion` keeps the price's subtotal and total.
    pub fn amounts(&self) -> Amounts {
        let subtotal = i128::from(self.subtotal);
        let same = |minor: i128| minor;
        let discount = self.discount_on(subtotal, same);
        let (tax, total) = self.taxed(subtotal - discount);
        let Some(presentment) = self
            .presentment
            .as_ref()
            .filter(|presentment| presentment.currency != self.currency)
        else {
            return Amounts {
                currency: self.currency.clone(),
                subtotal: self.subtotal,
                discount: narrow(discount),
                tax: narrow(tax),
                total: narrow(total),
                conversion: None,
            };
        };
        let scale = |currency: &str| 10_i128.pow(exponent(currency));
        let convert = |minor: i128| {
            half_up(
                minor * i128::from(presentment.rate_millionths) * scale(&presentment.currency),
                1_000_000 * scale(&self.currency),
            )
        };
        let presented_subtotal = convert(subtotal);
        let presented_discount = self.discount_on(presented_subtotal, convert);
        let (presented_tax, presented_total) = self.taxed(presented_subtotal - presented_discount);
        Amounts {
            currency: presentment.currency.clone(),
            subtotal: narrow(presented_subtotal),
            discount: narrow(presented_discount),
            tax: narrow(presented_tax),
            total: narrow(presented_total),
            conversion: Some((self.currency.clone(), self.subtotal, narrow(total))),
        }
    }

    /// Writes the amounts into a session object as Stripe shapes them: `currency`,
    /// `amount_subtotal`, `amount_total`, `total_details`, `currency_conversion` and
    /// `discounts`.
    pub fn write_into(&self, session: &mut Value) {
        let amounts = self.amounts();
        session["currency"] = json!(amounts.currency);
        session["amount_subtotal"] = json!(amounts.subtotal);
        session["amount_total"] = json!(amounts.total);
        session["total_details"] = json!({
            "amount_discount": amounts.discount,
            "amount_shipping": 0,
            "amount_tax": amounts.tax,
        });
        session["currency_conversion"] = match (&amounts.conversion, &self.presentment) {
            (Some((source, subtotal, total)), Some(presentment)) => json!({
                "amount_subtotal": subtotal,
                "amount_total": total,
                "fx_rate": presentment.fx_rate(),
                "source_currency": source,
            }),
            _ => Value::Null,
        };
        session["discounts"] = match self.promotion {
            Some(promotion) => json!([{
                "coupon": promotion.coupon,
                "promotion_code": promotion.id,
            }]),
            None => json!([]),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(subtotal: i64) -> Pricing {
        Pricing {
            subtotal,
            currency: "usd".to_owned(),
            tax: None,
            presentment: None,
            promotion: None,
        }
    }

    fn code(typed: &str) -> Option<&'static PromotionCode> {
        PromotionCode::find(typed)
    }

    fn parts(amounts: &Amounts) -> (i64, i64, i64, i64) {
        (
            amounts.subtotal,
            amounts.discount,
            amounts.tax,
            amounts.total,
        )
    }

    #[test]
    fn codes_are_found_in_any_case_and_have_stable_ids() {
        assert_eq!(code(" spring25 ").unwrap().id, "promo_sandbox_spring25");
        assert_eq!(code("TenOff").unwrap().id, "promo_sandbox_tenoff");
        assert_eq!(code("FREECOURSE").unwrap().id, "promo_sandbox_freecourse");
        assert_eq!(code("SPRING2"), None);
        assert_eq!(code(""), None);
    }

    #[test]
    fn the_price_alone_is_billed_as_it_is() {
        assert_eq!(parts(&usd(1999).amounts()), (1999, 0, 0, 1999));
    }

    #[test]
    fn discounts_round_half_up_and_never_exceed_the_price() {
        let with = |subtotal, typed| Pricing {
            promotion: code(typed),
            ..usd(subtotal)
        };
        // 25% of 1999 = 499.75 -> 500; of 1998 = 499.5 -> 500; of 1997 = 499.25 -> 499.
        assert_eq!(
            parts(&with(1999, "SPRING25").amounts()),
            (1999, 500, 0, 1499)
        );
        assert_eq!(
            parts(&with(1998, "SPRING25").amounts()),
            (1998, 500, 0, 1498)
        );
        assert_eq!(
            parts(&with(1997, "SPRING25").amounts()),
            (1997, 499, 0, 1498)
        );
        assert_eq!(parts(&with(1999, "TENOFF").amounts()), (1999, 1000, 0, 999));
        assert_eq!(parts(&with(800, "TENOFF").amounts()), (800, 800, 0, 0));
        assert_eq!(
            parts(&with(1999, "FREECOURSE").amounts()),
            (1999, 1999, 0, 0)
        );
    }

    #[test]
    fn tax_is_added_or_included_on_what_remains_after_the_discount() {
        let taxed = |behavior, typed| Pricing {
            tax: Some((behavior, 1000)),
            promotion: code(typed),
            ..usd(2000)
        };
        assert_eq!(
            parts(&taxed(TaxBehavior::Exclusive, "").amounts()),
            (2000, 0, 200, 2200)
        );
        // 1500 after 25% off: 150 on top.
        assert_eq!(
            parts(&taxed(TaxBehavior::Exclusive, "SPRING25").amounts()),
            (2000, 500, 150, 1650)
        );
        // Inclusive: 2000 - round(2000 * 10000 / 11000) = 2000 - 1818 = 182.
        assert_eq!(
            parts(&taxed(TaxBehavior::Inclusive, "").amounts()),
            (2000, 0, 182, 2000)
        );
        assert_eq!(
            parts(&taxed(TaxBehavior::Inclusive, "FREECOURSE").amounts()),
            (2000, 2000, 0, 0)
        );
        // 1999 * 0.0825 = 164.9175 -> 165.
        let odd = Pricing {
            tax: Some((TaxBehavior::Exclusive, 825)),
            ..usd(1999)
        };
        assert_eq!(parts(&odd.amounts()), (1999, 0, 165, 2164));
    }

    #[test]
    fn a_presented_session_converts_the_price_and_keeps_it_beside() {
        let eur = Presentment::parse("EUR", "0.925").unwrap();
        assert_eq!(eur.rate_millionths, 925_000);
        assert_eq!(eur.fx_rate(), "0.925");
        let presented = Pricing {
            presentment: Some(eur.clone()),
            tax: Some((TaxBehavior::Exclusive, 1000)),
            promotion: code("TENOFF"),
            ..usd(1999)
        };
        let amounts = presented.amounts();
        // 1999 * 0.925 = 1849.075 -> 1849; 1000 * 0.925 = 925; tax 10% of 924 = 92.4 -> 92.
        assert_eq!(amounts.currency, "eur");
        assert_eq!(parts(&amounts), (1849, 925, 92, 1016));
        // In USD: 999 after the discount, 99.9 -> 100 tax.
        assert_eq!(amounts.conversion, Some(("usd".to_owned(), 1999, 1099)));

        let mut session = json!({});
        presented.write_into(&mut session);
        assert_eq!(
            session,
            json!({
                "currency": "eur",
                "amount_subtotal": 1849,
                "amount_total": 1016,
                "total_details": {"amount_discount": 925, "amount_shipping": 0, "amount_tax": 92},
                "currency_conversion": {
                    "amount_subtotal": 1999,
                    "amount_total": 1099,
                    "fx_rate": "0.925",
                    "source_currency": "usd",
                },
                "discounts": [{"coupon": "sandbox_1000_minor_units_off", "promotion_code": "promo_sandbox_tenoff"}],
            })
        );

        // Zero-decimal currencies on either side scale by their exponents.
        let jpy = Pricing {
            presentment: Some(Presentment::parse("jpy", "150").unwrap()),
            ..usd(1999)
        };
        assert_eq!(
            parts(&jpy.amounts()),
            (2999, 0, 0, 2999),
            "2998.5 JPY rounds up"
        );
        let from_jpy = Pricing {
            currency: "jpy".to_owned(),
            presentment: Some(Presentment::parse("usd", "0.0067").unwrap()),
            ..usd(3000)
        };
        assert_eq!(parts(&from_jpy.amounts()), (2010, 0, 0, 2010));
        // A price already in the presentment currency is not converted.
        let same = Pricing {
            presentment: Some(Presentment::parse("usd", "2").unwrap()),
            ..usd(1999)
        };
        assert_eq!(same.amounts().conversion, None);
        assert_eq!(same.amounts().total, 1999);
    }

    #[test]
    fn presentment_settings_are_checked() {
        assert_eq!(Presentment::parse("eur", "1").unwrap().fx_rate(), "1");
        assert_eq!(
            Presentment::parse("gbp", "0.000001")
                .unwrap()
                .rate_millionths,
            1
        );
        for (currency, rate) in [
            ("xof", "1"),
            ("eur", "0"),
            ("eur", "-1"),
            ("eur", "1.0000001"),
            ("eur", "1e3"),
            ("eur", ".5"),
            ("eur", ""),
        ] {
            assert!(
                Presentment::parse(currency, rate).is_err(),
                "{currency} {rate}"
            );
        }
    }
}
