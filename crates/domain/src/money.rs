//! Money in integer minor units. There is no floating point anywhere in this module.

use std::fmt;
use thiserror::Error;

/// The largest single charge Stripe accepts (eight digits of minor units, e.g. USD 999,999.99).
pub const MAX_CHARGE_MINOR: i64 = 99_999_999;

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("unknown or unsupported currency code {0:?}")]
    UnknownCurrency(String),
    #[error("amount must not be negative (got {0})")]
    Negative(i64),
    #[error("amount overflows")]
    Overflow,
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// One supported ISO 4217 currency: its code, how many minor units a major unit has (as an
/// exponent), and the smallest charge Stripe accepts, in minor units.
struct CurrencyInfo {
    code: &'static str,
    exponent: u8,
    minimum_charge_minor: i64,
}

/// The currencies this product can charge in, with Stripe's minimum charge amounts, and the
/// ones Stripe's Adaptive Pricing commonly presents a checkout in (a payment in them must be
/// representable to be matched against its price): for those Stripe publishes no minimum, so
/// theirs is about USD 0.50, rounded up. Sorted by code (binary search relies on it; a unit
/// test checks).
const CURRENCIES: &[CurrencyInfo] = &[
    CurrencyInfo {
        code: "AED",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "AUD",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "BGN",
        exponent: 2,
        minimum_charge_minor: 100,
    },
    CurrencyInfo {
        code: "BRL",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "CAD",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "CHF",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "CLP",
        exponent: 0,
        minimum_charge_minor: 500,
    },
    CurrencyInfo {
        code: "CNY",
        exponent: 2,
        minimum_charge_minor: 400,
    },
    CurrencyInfo {
        code: "COP",
        exponent: 2,
        minimum_charge_minor: 200000,
    },
    CurrencyInfo {
        code: "CZK",
        exponent: 2,
        minimum_charge_minor: 1500,
    },
    CurrencyInfo {
        code: "DKK",
        exponent: 2,
        minimum_charge_minor: 250,
    },
    CurrencyInfo {
        code: "EUR",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "GBP",
        exponent: 2,
        minimum_charge_minor: 30,
    },
    CurrencyInfo {
        code: "HKD",
        exponent: 2,
        minimum_charge_minor: 400,
    },
    CurrencyInfo {
        code: "HUF",
        exponent: 2,
        minimum_charge_minor: 17500,
    },
    CurrencyInfo {
        code: "IDR",
        exponent: 2,
        minimum_charge_minor: 800000,
    },
    CurrencyInfo {
        code: "ILS",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "INR",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "JPY",
        exponent: 0,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "KRW",
        exponent: 0,
        minimum_charge_minor: 700,
    },
    CurrencyInfo {
        code: "MXN",
        exponent: 2,
        minimum_charge_minor: 1000,
    },
    CurrencyInfo {
        code: "MYR",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "NOK",
        exponent: 2,
        minimum_charge_minor: 300,
    },
    CurrencyInfo {
        code: "NZD",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "PEN",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "PHP",
        exponent: 2,
        minimum_charge_minor: 3000,
    },
    CurrencyInfo {
        code: "PLN",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "RON",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "SAR",
        exponent: 2,
        minimum_charge_minor: 200,
    },
    CurrencyInfo {
        code: "SEK",
        exponent: 2,
        minimum_charge_minor: 300,
    },
    CurrencyInfo {
        code: "SGD",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "THB",
        exponent: 2,
        minimum_charge_minor: 1000,
    },
    CurrencyInfo {
        code: "TRY",
        exponent: 2,
        minimum_charge_minor: 2000,
    },
    CurrencyInfo {
        code: "TWD",
        exponent: 2,
        minimum_charge_minor: 1600,
    },
    CurrencyInfo {
        code: "USD",
        exponent: 2,
        minimum_charge_minor: 50,
    },
    CurrencyInfo {
        code: "VND",
        exponent: 0,
        minimum_charge_minor: 13000,
    },
    CurrencyInfo {
        code: "ZAR",
        exponent: 2,
        minimum_charge_minor: 1000,
    },
];

/// A supported ISO 4217 currency, always upper case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(u8); // index into CURRENCIES

impl Currency {
    /// US dollars, the default currency of a course.
    pub const USD: Currency = Currency(34);

    /// Parses an ISO 4217 code, case-insensitively (`usd` = `USD`).
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] when the code is not one this product charges in.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        // Compared byte by byte, upper-cased on the fly: every stored row and Stripe object
        // passes through here, so no upper-case copy is allocated for the lookup.
        let wanted = code.trim().bytes().map(|b| b.to_ascii_uppercase());
        CURRENCIES
            .binary_search_by(|info| info.code.bytes().cmp(wanted.clone()))
            .ok()
            .and_then(|index| u8::try_from(index).ok())
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    fn info(self) -> &'static CurrencyInfo {
        // The index only ever comes from a successful lookup in CURRENCIES.
        &CURRENCIES[usize::from(self.0)]
    }

    /// The upper-case ISO code, as the REST API shows it (`USD`).
    pub fn code(self) -> &'static str {
        self.info().code
    }

    /// How many decimal places the major unit has (2 for USD, 0 for JPY).
    pub fn exponent(self) -> u8 {
        self.info().exponent
    }

    /// The smallest amount Stripe will charge in this currency, in minor units.
    pub fn minimum_charge_minor(self) -> i64 {
        self.info().minimum_charge_minor
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative amount of money in integer minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// # Errors
    /// [`MoneyError::Negative`] for amounts below zero.
    pub fn new(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::Negative(minor));
        }
        Ok(Self { minor, currency })
    }

    /// Zero in the given currency.
    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// The amount in minor units (cents for USD).
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] or [`MoneyError::Overflow`].
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Money::new(minor, self.currency)
    }

    /// Subtracts, refusing to go below zero.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] or [`MoneyError::Negative`].
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Money::new(self.minor - other.minor, self.currency)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// A decimal rendering of the major unit, for display only (`1999 USD` -> `"19.99"`).
    pub fn major_display(&self) -> String {
        let exponent = u32::from(self.currency.exponent());
        if exponent == 0 {
            return self.minor.to_string();
        }
        let scale = 10_i64.pow(exponent);
        format!(
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = exponent as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.major_display(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table_is_sorted_and_usd_constant_is_right() {
        assert!(CURRENCIES
            .windows(2)
            .all(|pair| pair[0].code < pair[1].code));
        assert_eq!(Currency::USD.code(), "USD");
        assert_eq!(Currency::USD.minimum_charge_minor(), 50);
    }

    #[test]
    fn currency_codes_parse_case_insensitively() {
        assert_eq!(Currency::parse("usd").unwrap(), Currency::USD);
        assert_eq!(Currency::parse(" Eur ").unwrap().code(), "EUR");
        assert_eq!(Currency::parse("jpy").unwrap().exponent(), 0);
    }

    #[test]
    fn unknown_currencies_are_refused() {
        for code in ["", "US", "USDD", "XXX", "dollars", "u$d"] {
            assert_eq!(
                Currency::parse(code),
                Err(MoneyError::UnknownCurrency(code.to_owned())),
                "{code:?}"
            );
        }
    }

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Money::new(-1, Currency::USD), Err(MoneyError::Negative(-1)));
        assert!(Money::new(0, Currency::USD).unwrap().is_zero());
    }

    #[test]
    fn arithmetic_is_checked() {
        let usd = |minor| Money::new(minor, Currency::USD).unwrap();
        let eur = Money::new(1, Currency::parse("EUR").unwrap()).unwrap();
        assert_eq!(usd(1999).checked_add(usd(1)).unwrap(), usd(2000));
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert!(matches!(
            usd(1).checked_add(eur),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert_eq!(usd(1).checked_sub(usd(2)), Err(MoneyError::Negative(-1)));
    }

    #[test]
    fn major_display_never_uses_floats() {
        let usd = |minor| Money::new(minor, Currency::USD).unwrap();
        assert_eq!(usd(1999).major_display(), "19.99");
        assert_eq!(usd(5).major_display(), "0.05");
        assert_eq!(usd(0).major_display(), "0.00");
        let jpy = Money::new(500, Currency::parse("JPY").unwrap()).unwrap();
        assert_eq!(jpy.major_display(), "500");
        assert_eq!(usd(1999).to_string(), "19.99 USD");
    }
}
