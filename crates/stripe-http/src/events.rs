//! Turning a verified Stripe event body into the port's [`WebhookEvent`].
//!
//! | Stripe event type                           | facts                                          | details |
//! |---------------------------------------------|------------------------------------------------|---------|
//! | `checkout.session.completed`                | paid: `PaymentSucceeded{amount_total, created}`; unpaid: `PaymentProcessing`; no_payment_required (a 100%-off code): `PaymentSucceeded{0, created}`; each with `Billed` | promotion code |
//! | `checkout.session.async_payment_succeeded`  | `PaymentSucceeded{amount_total, created}`, `Billed` | promotion code |
//! | `checkout.session.async_payment_failed`     | `AsyncPaymentFailed`, `Billed`                 | promotion code |
//! | `checkout.session.expired`                  | `CheckoutExpired`                              | promotion code |
//! | `charge.succeeded`                          | `PaymentSucceeded{amount_captured, else amount; created}` | receipt URL |
//! | `charge.failed`                             | `PaymentAttemptFailed`                         | none |
//! | `charge.refunded`                           | `Refunded{total: amount_refunded}`             | receipt URL |
//! | `charge.dispute.created`                    | `DisputeOpened`                                | none |
//! | `charge.dispute.closed`                     | won/lost: `DisputeClosed(..)`; other statuses: ignored | none |
//! | anything else                               | [`WebhookEvent::Ignored`]                      | |
//!
//! `Billed` is the session's bill: `amount_subtotal`, `total_details.amount_discount`,
//! `total_details.amount_tax` and `amount_total` in `currency` (the presentment currency),
//! with `currency_conversion`'s `amount_subtotal` and `amount_total` in its `source_currency`
//! (the price's) when Adaptive Pricing converted the session. The promotion code is the first
//! of `discounts[].promotion_code` (an id, or the expanded object's id); the receipt URL is
//! the charge's `receipt_url`.
//!
//! The types above are what [`relevant_event_types`] names: the adapter asks `GET /v1/events`
//! for exactly those when it backfills.
//!
//! Decisions:
//! - Only the fields used are required; unknown fields are ignored.
//! - A payment's time is the event's `created`: Stripe emits these events when the payment
//!   completes, and every event has one, while the session object has no completion time.
//! - A money amount in a currency the domain does not support (or a negative amount) cannot
//!   become a `Money`. Such an event is authentic and about one of our purchases, so it is still
//!   `Relevant` (stored for audit, correlated) but carries no money fact, and a warning is
//!   logged. Rejecting it as `InvalidPayload` would make Stripe redeliver it for days to no avail.
//!   A bill that cannot be represented (a part missing, an unsupported currency in the session
//!   or its conversion) is left out the same way: the payment is then judged against the price.
//! - An event of a relevant type that carries no identifier we could correlate (no purchase id,
//!   session or payment intent) cannot be about our purchases: it is `Ignored`.
//! - Every decoded event, relevant or ignored, carries its envelope: id, type, `livemode`,
//!   `created` and the exact text it was decoded from (the inbox keeps it for audit and replay).
//! - Disputes carry `payment_intent` and `charge`; the port's locator has no charge field, so
//!   the charge is used only when Stripe expanded it (its `metadata.purchase_id` and
//!   `payment_intent`).

use crate::objects::{purchase_id_from, Expandable, StripeCharge, StripeDispute, StripeSession};
use lms_domain::{Currency, DisputeOutcome, Money, PaymentDetails, PaymentFact};
use lms_ports::{
    EventEnvelope, GatewayEvent, PurchaseLocator, SessionPaymentStatus, WebhookEvent,
    WebhookRejection,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// The envelope. `data.object` stays unparsed text borrowed from the body: an ignored event
/// never parses it, and a relevant one parses it once, straight into its typed object, without
/// building a `serde_json::Value` tree first (a session is about 5 KB of nested objects, most
/// of which the adapter skips).
#[derive(Debug, Deserialize)]
struct RawEvent<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    livemode: bool,
    #[serde(default, borrow)]
    data: Option<RawData<'a>>,
}

#[derive(Debug, Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

/// Parses an event body that has ALREADY been authenticated (a verified webhook, a stored
/// one, or one read from `GET /v1/events`), checking that its `livemode` matches the key's
/// mode.
///
/// # Errors
/// [`WebhookRejection::Malformed`] when the body is not an event (or a relevant event
/// lacks a field it needs), [`WebhookRejection::WrongMode`] when its `livemode` is not the
/// key's.
pub fn parse_event(
    payload: &[u8],
    expect_livemode: bool,
) -> Result<WebhookEvent, WebhookRejection> {
    let text = std::str::from_utf8(payload).map_err(|_| invalid("body is not UTF-8"))?;
    let raw: RawEvent =
        serde_json::from_str(text).map_err(|error| invalid_because("not an event", error))?;
    if raw.livemode != expect_livemode {
        return Err(WebhookRejection::WrongMode);
    }
    let created = OffsetDateTime::from_unix_timestamp(raw.created)
        .map_err(|_| invalid("created is out of range"))?;
    let kind = RelevantKind::of(&raw.event_type);
    let object = raw.data.map(|data| data.object);
    let envelope = EventEnvelope {
        id: raw.id,
        event_type: raw.event_type,
        livemode: raw.livemode,
        created,
        payload: text.to_owned(),
    };
    let Some(kind) = kind else {
        return Ok(WebhookEvent::Ignored(envelope));
    };
    let object = object.ok_or_else(|| invalid("event has no data.object"))?;
    let Some(Decoded {
        locator,
        facts,
        details,
    }) = map_object(kind, object, &envelope.id, created)?
    else {
        return Ok(WebhookEvent::Ignored(envelope));
    };
    if locator == PurchaseLocator::default() {
        return Ok(WebhookEvent::Ignored(envelope));
    }
    Ok(WebhookEvent::Relevant(GatewayEvent {
        envelope,
        locator,
        facts,
        details,
    }))
}

/// The Stripe event types this adapter acts on (the table above), in a fixed order: what a
/// backfill asks `GET /v1/events` for (`types[]`), so that nothing else is paged through.
pub fn relevant_event_types() -> impl ExactSizeIterator<Item = &'static str> {
    RELEVANT_KINDS.iter().map(|(event_type, _)| *event_type)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelevantKind {
    SessionCompleted,
    SessionAsyncSucceeded,
    SessionAsyncFailed,
    SessionExpired,
    ChargeSucceeded,
    ChargeFailed,
    ChargeRefunded,
    DisputeCreated,
    DisputeClosed,
}

/// One table for both directions (decoding and asking), so they cannot drift apart.
const RELEVANT_KINDS: [(&str, RelevantKind); 9] = [
    ("checkout.session.completed", RelevantKind::SessionCompleted),
    (
        "checkout.session.async_payment_succeeded",
        RelevantKind::SessionAsyncSucceeded,
    ),
    (
        "checkout.session.async_payment_failed",
        RelevantKind::SessionAsyncFailed,
    ),
    ("checkout.session.expired", RelevantKind::SessionExpired),
    ("charge.succeeded", RelevantKind::ChargeSucceeded),
    ("charge.failed", RelevantKind::ChargeFailed),
    ("charge.refunded", RelevantKind::ChargeRefunded),
    ("charge.dispute.created", RelevantKind::DisputeCreated),
    ("charge.dispute.closed", RelevantKind::DisputeClosed),
];

impl RelevantKind {
    fn of(event_type: &str) -> Option<Self> {
        RELEVANT_KINDS
            .iter()
            .find(|(name, _)| *name == event_type)
            .map(|(_, kind)| *kind)
    }
}

/// What one event's object says about a purchase.
struct Decoded {
    locator: PurchaseLocator,
    facts: Vec<PaymentFact>,
    details: PaymentDetails,
}

type Mapped = Option<Decoded>;

fn map_object(
    kind: RelevantKind,
    object: &RawValue,
    event_id: &str,
    created: OffsetDateTime,
) -> Result<Mapped, WebhookRejection> {
    match kind {
        RelevantKind::SessionCompleted
        | RelevantKind::SessionAsyncSucceeded
        | RelevantKind::SessionAsyncFailed
        | RelevantKind::SessionExpired => {
            map_session(kind, decode(object)?, event_id, created).map(Some)
        }
        RelevantKind::ChargeSucceeded
        | RelevantKind::ChargeFailed
        | RelevantKind::ChargeRefunded => {
            map_charge(kind, decode(object)?, event_id, created).map(Some)
        }
        RelevantKind::DisputeCreated | RelevantKind::DisputeClosed => {
            Ok(map_dispute(kind, decode(object)?))
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(object: &RawValue) -> Result<T, WebhookRejection> {
    serde_json::from_str(object.get())
        .map_err(|error| invalid_because("unexpected data.object", error))
}

fn map_session(
    kind: RelevantKind,
    session: StripeSession,
    event_id: &str,
    created: OffsetDateTime,
) -> Result<Decoded, WebhookRejection> {
    let succeeded = |amount: Option<i64>| -> Result<Vec<PaymentFact>, WebhookRejection> {
        let amount = amount.ok_or_else(|| invalid("paid session has no amount_total"))?;
        let currency = session
            .currency
            .as_deref()
            .ok_or_else(|| invalid("paid session has no currency"))?;
        Ok(money(amount, currency, event_id)
            .map(|amount| PaymentFact::PaymentSucceeded {
                amount,
                at: Some(created),
            })
            .into_iter()
            .collect())
    };
    let mut facts = match kind {
        RelevantKind::SessionCompleted => {
            match crate::objects::parse_payment_status(session.payment_status.as_deref())
                .map_err(invalid)?
            {
                SessionPaymentStatus::Paid => succeeded(session.amount_total)?,
                SessionPaymentStatus::Unpaid => vec![PaymentFact::PaymentProcessing],
                // A 100%-off promotion code: the checkout completed and nothing was charged.
                SessionPaymentStatus::NoPaymentRequired => succeeded(Some(0))?,
            }
        }
        RelevantKind::SessionAsyncSucceeded => succeeded(session.amount_total)?,
        RelevantKind::SessionAsyncFailed => vec![PaymentFact::AsyncPaymentFailed],
        _ => vec![PaymentFact::CheckoutExpired],
    };
    // A completed checkout proves what it billed (as `GatewaySession::facts` reads it); an
    // expired one billed nothing.
    if kind != RelevantKind::SessionExpired {
        match session.bill() {
            Ok(bill) => facts.push(PaymentFact::Billed(bill)),
            Err(reason) => tracing::warn!(
                event_id,
                reason,
                "webhook bill cannot be represented; event kept without it"
            ),
        }
    }
    let locator = PurchaseLocator {
        purchase_id: session.purchase_id(),
        checkout_session_id: Some(session.id.clone()),
        payment_intent_id: session.payment_intent_id(),
    };
    let details = PaymentDetails {
        receipt_url: None,
        promotion_code: session.promotion_code(),
    };
    Ok(Decoded {
        locator,
        facts,
        details,
    })
}

fn map_charge(
    kind: RelevantKind,
    charge: StripeCharge,
    event_id: &str,
    created: OffsetDateTime,
) -> Result<Decoded, WebhookRejection> {
    let currency = || {
        charge
            .currency
            .as_deref()
            .ok_or_else(|| invalid("charge has no currency"))
    };
    let facts = match kind {
        RelevantKind::ChargeSucceeded => {
            let amount = charge
                .amount_captured
                .filter(|captured| *captured > 0)
                .or(charge.amount)
                .ok_or_else(|| invalid("charge has no amount"))?;
            money(amount, currency()?, event_id)
                .map(|amount| PaymentFact::PaymentSucceeded {
                    amount,
                    at: Some(created),
                })
                .into_iter()
                .collect()
        }
        RelevantKind::ChargeFailed => vec![PaymentFact::PaymentAttemptFailed],
        _ => {
            let total = charge
                .amount_refunded
                .ok_or_else(|| invalid("charge has no amount_refunded"))?;
            money(total, currency()?, event_id)
                .map(|total| PaymentFact::Refunded { total })
                .into_iter()
                .collect()
        }
    };
    let locator = PurchaseLocator {
        purchase_id: purchase_id_from(&charge.metadata),
        checkout_session_id: None,
        payment_intent_id: charge.payment_intent.as_ref().and_then(Expandable::id),
    };
    // A failed attempt's receipt is no receipt of the purchase.
    let receipt_url = match kind {
        RelevantKind::ChargeSucceeded | RelevantKind::ChargeRefunded => {
            charge.receipt_url.filter(|url| !url.trim().is_empty())
        }
        _ => None,
    };
    Ok(Decoded {
        locator,
        facts,
        details: PaymentDetails {
            receipt_url,
            promotion_code: None,
        },
    })
}

fn map_dispute(kind: RelevantKind, dispute: StripeDispute) -> Mapped {
    let facts = match (kind, dispute.status.as_deref()) {
        (RelevantKind::DisputeCreated, _) => vec![PaymentFact::DisputeOpened],
        (_, Some("won")) => vec![PaymentFact::DisputeClosed(DisputeOutcome::Won)],
        (_, Some("lost")) => vec![PaymentFact::DisputeClosed(DisputeOutcome::Lost)],
        // e.g. `warning_closed` (an inquiry that never became a chargeback): nothing to record.
        _ => return None,
    };
    let expanded_charge = dispute.charge.as_ref().and_then(Expandable::object);
    let charge_field = |name: &str| {
        expanded_charge
            .and_then(|charge| charge.get(name))
            .cloned()
            .and_then(|value| Expandable::deserialize(value).ok())
            .and_then(|value| value.id())
    };
    let purchase_id = expanded_charge
        .and_then(|charge| charge.pointer("/metadata/purchase_id"))
        .and_then(|id| id.as_str())
        .and_then(|id| id.parse().ok());
    let locator = PurchaseLocator {
        purchase_id,
        checkout_session_id: None,
        payment_intent_id: dispute
            .payment_intent
            .as_ref()
            .and_then(Expandable::id)
            .or_else(|| charge_field("payment_intent")),
    };
    Some(Decoded {
        locator,
        facts,
        details: PaymentDetails::default(),
    })
}

/// A `Money`, or `None` (with a warning) for an unsupported currency or a negative amount.
fn money(amount: i64, currency: &str, event_id: &str) -> Option<Money> {
    let money = Currency::parse(currency)
        .ok()
        .and_then(|currency| Money::new(amount, currency).ok());
    if money.is_none() {
        tracing::warn!(
            event_id,
            amount,
            currency,
            "webhook amount cannot be represented; event kept without a money fact"
        );
    }
    money
}

fn invalid(reason: impl Into<String>) -> WebhookRejection {
    WebhookRejection::malformed(reason.into())
}

fn invalid_because(reason: &'static str, error: serde_json::Error) -> WebhookRejection {
    WebhookRejection::malformed(lms_ports::Context::new(reason, error))
}
