//! Shared helpers: a settable clock, configs pointed at a stand-in server, fixtures, signing.

use lms_domain::{Bill, Currency, Money, PaymentFact, PurchaseId};
use lms_ports::{Clock, PaymentGateway, WebhookEvent, WebhookRejection};
use lms_stripe_http::{compute_signature, RetryPolicy, StripeConfig, StripeGateway};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub const SECRET_KEY: &str = "sk_test_51TopSecretKeyThatMustNeverLeak0123456789";
pub const LIVE_KEY: &str = "sk_live_51AnotherSecretThatMustNeverLeak987";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret";
pub const SUCCESS_URL: &str =
    "https://learn.example/payment/success?session_id={CHECKOUT_SESSION_ID}";
pub const CANCEL_URL: &str = "https://learn.example/payment/cancel";
/// 2023-11-14T22:13:20Z
pub const NOW: i64 = 1_700_000_000;

/// A clock the test sets.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn at(unix: i64) -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            OffsetDateTime::from_unix_timestamp(unix).unwrap(),
        )))
    }

    pub fn set(&self, unix: i64) {
        *self.0.lock().unwrap() = OffsetDateTime::from_unix_timestamp(unix).unwrap();
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Millisecond retries so the retry tests are fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        total_budget: Duration::from_secs(5),
    }
}

pub fn config(api_base: &str) -> StripeConfig {
    StripeConfig::new(SECRET_KEY, WEBHOOK_SECRET, SUCCESS_URL, CANCEL_URL)
        .unwrap()
        .with_api_base(api_base)
        .unwrap()
        .with_retry(fast_retry())
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(2))
        .with_clock(FixedClock::at(NOW))
}

pub fn gateway(api_base: &str) -> StripeGateway {
    StripeGateway::new(config(api_base)).unwrap()
}

/// A gateway for webhook tests (no network), with its clock.
pub fn webhook_gateway(secrets: &str, key: &str) -> (StripeGateway, Arc<FixedClock>) {
    let clock = FixedClock::at(NOW);
    let config = StripeConfig::new(key, secrets, SUCCESS_URL, CANCEL_URL)
        .unwrap()
        .with_clock(clock.clone());
    (StripeGateway::new(config).unwrap(), clock)
}

pub fn fixture(name: &str) -> Value {
    let text = match name {
        "charge" => include_str!("../fixtures/charge.json"),
        "checkout_session" => include_str!("../fixtures/checkout_session.json"),
        "dispute" => include_str!("../fixtures/dispute.json"),
        "event" => include_str!("../fixtures/event.json"),
        "payment_intent" => include_str!("../fixtures/payment_intent.json"),
        "refund" => include_str!("../fixtures/refund.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// Sets `object[key] = value` for each pair (top-level fields).
pub fn with(mut object: Value, fields: Value) -> Value {
    for (key, value) in fields.as_object().unwrap() {
        object[key] = value.clone();
    }
    object
}

/// Wraps a data object into the fixture's event envelope.
pub fn event(id: &str, event_type: &str, object: Value, livemode: bool) -> String {
    let envelope = with(
        fixture("event"),
        json!({
            "id": id,
            "type": event_type,
            "created": NOW - 5,
            "livemode": livemode,
            "api_version": "2025-06-30.basil",
            "data": { "object": object },
        }),
    );
    serde_json::to_string_pretty(&envelope).unwrap()
}

pub fn signature_header(body: &str, timestamp: i64, secret: &str) -> String {
    format!(
        "t={timestamp},v1={}",
        compute_signature(secret.as_bytes(), timestamp, body.as_bytes())
    )
}

/// Signs `body` with the test secret at `NOW` and hands it to the gateway.
pub fn deliver(gateway: &StripeGateway, body: &str) -> Result<WebhookEvent, WebhookRejection> {
    let header = signature_header(body, NOW, WEBHOOK_SECRET);
    gateway.verify_webhook(body.as_bytes(), Some(&header))
}

pub fn purchase_id(n: u128) -> PurchaseId {
    PurchaseId::from_uuid(Uuid::from_u128(n))
}

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

/// The bill of a session that charged exactly `price`.
pub fn bill_of(price: Money) -> PaymentFact {
    PaymentFact::Billed(Bill::of_price(price))
}

/// The fixture session, shaped like one of ours: 19.99 USD, no discount, no tax, no
/// conversion (the fixture's own `total_details` and `currency_conversion` are Stripe's
/// placeholder numbers).
pub fn our_session(purchase: PurchaseId, status: &str, payment_status: &str) -> Value {
    with(
        fixture("checkout_session"),
        json!({
            "status": status,
            "payment_status": payment_status,
            "amount_total": 1999,
            "amount_subtotal": 1999,
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "currency_conversion": null,
            "discounts": [],
            "currency": "usd",
            "expires_at": NOW + 3600,
            "client_reference_id": purchase.to_string(),
            "metadata": {
                "purchase_id": purchase.to_string(),
                "course_id": "00000000-0000-0000-0000-0000000000c1",
                "user_id": "00000000-0000-0000-0000-0000000000a1",
            },
        }),
    )
}
