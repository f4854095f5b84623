//! The Stripe objects this adapter reads, with only the fields it uses. Unknown fields are
//! ignored; fields Stripe documents as nullable are `Option`s and checked where used.

use lms_domain::{Currency, PurchaseId};
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
}

impl StripeSession {
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
        Ok(GatewaySession {
            id: self.id,
            url: self.url,
            status,
            payment_status,
            amount_total,
            currency,
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
