//! The Stripe objects this adapter reads, with only the fields it uses. Unknown fields are
//! ignored; fields Stripe documents as nullable are `Option`s and checked where used.

use lms_domain::{Bill, Conversion, Currency, Money, PurchaseId};
use lms_ports::{GatewaySession, SessionPaymentStatus, SessionStatus};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A reference Stripe may send as an id (`"pi_..."`) or, when expanded, as the object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Expandable {
    Id(String),
    Object(serde_json::Value),
}

impl Expandable {
    pub(crate) fn id(&self) -> Option<String> {
        match self {
            Expandable::Id(id) => Some(id.clone()),
            Expandable::Object(object) => object
                .get("id")
                .and_then(|id| id.as_str())
                .map(str::to_owned),
        }
    }

    /// A string field of the expanded object (`None` when only the id was sent).
    pub(crate) fn object(&self) -> Option<&serde_json::Value> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(object) => Some(object),
        }
    }
}

/// Metadata values are strings at Stripe; anything else (or `null`) is dropped, not fatal.
pub(crate) fn metadata<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(deserializer)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(value) => Some((key, value)),
            _ => None,
        })
        .collect())
}

pub(crate) fn purchase_id_from(metadata: &BTreeMap<String, String>) -> Option<PurchaseId> {
    metadata.get("purchase_id").and_then(|id| id.parse().ok())
}

/// `checkout.session`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeSession {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default, deserialize_with = "metadata")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// Before discounts and tax, in the session's (presentment) currency.
    #[serde(default)]
    pub amount_subtotal: Option<i64>,
    #[serde(default)]
    pub total_details: Option<StripeTotalDetails>,
    /// Present when Adaptive Pricing presented the session in another currency than the
    /// price's: the amounts in the price's currency (`source_currency`).
    #[serde(default)]
    pub currency_conversion: Option<StripeCurrencyConversion>,
    /// The discounts applied (a promotion code the customer entered, or a coupon).
    #[serde(default)]
    pub discounts: Option<Vec<StripeDiscount>>,
}

/// `checkout.session.total_details`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeTotalDetails {
    #[serde(default)]
    pub amount_discount: Option<i64>,
    #[serde(default)]
    pub amount_tax: Option<i64>,
}

/// `checkout.session.currency_conversion`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeCurrencyConversion {
    #[serde(default)]
    pub amount_subtotal: Option<i64>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub source_currency: Option<String>,
}

/// One of `checkout.session.discounts`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeDiscount {
    #[serde(default)]
    pub promotion_code: Option<Expandable>,
}

/// An amount of a currency named by Stripe's lower-case code.
fn stripe_money(what: &str, amount: Option<i64>, currency: &str) -> Result<Money, String> {
    let amount = amount.ok_or_else(|| format!("no {what}"))?;
    let currency =
        Currency::parse(currency).map_err(|_| format!("unsupported currency {currency:?}"))?;
    Money::new(amount, currency).map_err(|error| format!("{what}: {error}"))
}

impl StripeSession {
    /// What Stripe computed the customer owes: `amount_subtotal`, `total_details`'
    /// `amount_discount` and `amount_tax`, `amount_total` in `currency`, and
    /// `currency_conversion` (the amounts in `source_currency`) when present.
    ///
    /// # Errors
    /// Why the session's amounts do not make a bill the domain can hold: a part missing, an
    /// unsupported currency, a negative amount.
    pub(crate) fn bill(&self) -> Result<Bill, String> {
        let currency = self.currency.as_deref().ok_or("no currency")?;
        let details = self.total_details.as_ref().ok_or("no total_details")?;
        let conversion = self
            .currency_conversion
            .as_ref()
            .map(|conversion| {
                let source = conversion
                    .source_currency
                    .as_deref()
                    .ok_or("no currency_conversion.source_currency")?;
                Conversion::new(
                    stripe_money(
                        "currency_conversion.amount_subtotal",
                        conversion.amount_subtotal,
                        source,
                    )?,
                    stripe_money(
                        "currency_conversion.amount_total",
                        conversion.amount_total,
                        source,
                    )?,
                )
                .map_err(|error| error.to_string())
            })
            .transpose()?;
        Bill::new(
            stripe_money("amount_subtotal", self.amount_subtotal, currency)?,
            stripe_money(
                "total_details.amount_discount",
                details.amount_discount,
                currency,
            )?,
            stripe_money("total_details.amount_tax", details.amount_tax, currency)?,
            stripe_money("amount_total", self.amount_total, currency)?,
            conversion,
        )
        .map_err(|error| error.to_string())
    }

    /// The promotion code the customer entered (`promo_...`): the first discount's, whether
    /// Stripe sent its id or the expanded object.
    pub(crate) fn promotion_code(&self) -> Option<String> {
        self.discounts
            .iter()
            .flatten()
            .find_map(|discount| discount.promotion_code.as_ref().and_then(Expandable::id))
    }

    /// Our purchase id: `client_reference_id` when it is one, else `metadata.purchase_id`.
    pub(crate) fn purchase_id(&self) -> Option<PurchaseId> {
        self.client_reference_id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .or_else(|| purchase_id_from(&self.metadata))
    }

    pub(crate) fn payment_intent_id(&self) -> Option<String> {
        self.payment_intent.as_ref().and_then(Expandable::id)
    }

    /// The port's view of the session.
    ///
    /// # Errors
    /// A description of the first missing or unusable field.
    pub(crate) fn into_gateway_session(self) -> Result<GatewaySession, String> {
        let status = match self.status.as_deref() {
            Some("open") => SessionStatus::Open,
            Some("complete") => SessionStatus::Complete,
            Some("expired") => SessionStatus::Expired,
            other => return Err(format!("unknown session status {other:?}")),
        };
        let payment_status = parse_payment_status(self.payment_status.as_deref())?;
        let amount_total = self.amount_total.ok_or("session has no amount_total")?;
        let currency_code = self.currency.as_deref().ok_or("session has no currency")?;
        let currency = Currency::parse(currency_code)
            .map_err(|_| format!("unsupported session currency {currency_code:?}"))?;
        let expires_at = self
            .expires_at
            .and_then(|unix| OffsetDateTime::from_unix_timestamp(unix).ok())
            .ok_or("session has no valid expires_at")?;
        let purchase_id = self.purchase_id();
        let payment_intent_id = self.payment_intent_id();
        let bill = match self.bill() {
            Ok(bill) => Some(bill),
            Err(reason) => {
                tracing::warn!(
                    session_id = self.id,
                    reason,
                    "session's bill cannot be represented; session kept without it"
                );
                None
            }
        };
        Ok(GatewaySession {
            id: self.id,
            url: self.url,
            status,
            payment_status,
            amount_total,
            currency,
            bill,
            expires_at,
            metadata: self.metadata,
            purchase_id,
            payment_intent_id,
        })
    }
}

pub(crate) fn parse_payment_status(raw: Option<&str>) -> Result<SessionPaymentStatus, String> {
    match raw {
        Some("paid") => Ok(SessionPaymentStatus::Paid),
        Some("unpaid") => Ok(SessionPaymentStatus::Unpaid),
        Some("no_payment_required") => Ok(SessionPaymentStatus::NoPaymentRequired),
        other => Err(format!("unknown session payment_status {other:?}")),
    }
}

/// A list response (`GET /v1/checkout/sessions?...`).
#[derive(Debug, Deserialize)]
pub(crate) struct StripeList<T> {
    pub data: Vec<T>,
}

/// A page of `GET /v1/events`. Each event stays the exact JSON text Stripe sent, so that its
/// payload reads as the webhook carrying it would have.
#[derive(Debug, Deserialize)]
pub(crate) struct StripeEventList {
    pub data: Vec<Box<serde_json::value::RawValue>>,
    /// Required: a page that does not say whether more remain could end a backfill early.
    pub has_more: bool,
}

/// `charge`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeCharge {
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub amount_captured: Option<i64>,
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "metadata")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// The charge's receipt page (Stripe hosts it; it shows refunds too).
    #[serde(default)]
    pub receipt_url: Option<String>,
}

/// `customer`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeCustomer {
    pub id: String,
}

/// `promotion_code`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripePromotionCode {
    /// What the customer types.
    pub code: String,
}

/// `dispute`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeDispute {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

/// `refund`
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StripeRefund {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    pub amount: i64,
    pub currency: String,
}

/// Stripe's error envelope: `{"error": {"type", "code", "message", ...}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StripeErrorBody {
    #[serde(default)]
    pub error: StripeErrorDetail,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StripeErrorDetail {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}
