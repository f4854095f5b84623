//! A scriptable payment gateway for tests: no network, no Stripe knowledge.
//!
//! # Webhook format
//! The body is the JSON of a [`FakeEvent`]:
//! `{"id": "evt_..", "type": "...", "purchaseId"?, "checkoutSessionId"?, "paymentIntentId"?,
//! "created"?, "livemode"?, "facts": [{"kind": "payment_succeeded", "amountCents": 1999,
//! "currency": "USD", "paidAt"?}, ...], "receiptUrl"?, "promotionCode"?}`. A payment's time is
//! its `paidAt` (RFC 3339), else the event's `created` (Unix seconds), as Stripe's payment events
//! are stamped; with neither it has no time. A bill is the fact `{"kind": "billed", "currency",
//! "subtotalCents", "discountCents", "taxCents", "totalCents", "conversion"?: {"currency",
//! "subtotalCents", "totalCents"}}`; `receiptUrl` and `promotionCode` are the event's
//! [`PaymentDetails`]. The signature header is [`FakeGateway::signature_for`] of the exact body bytes:
//! `fake-v1=` + hex(SHA-256(secret ‖ body)). An event without facts is `Ignored`. The fake runs
//! in test mode unless made [`FakeGateway::in_live_mode`]; an event of the other mode
//! (`livemode`, absent meaning test) is refused as [`WebhookRejection::WrongMode`].
//!
//! # Event history
//! The fake keeps every event it emits, as a real gateway does, for
//! [`PaymentGateway::list_events`] (newest first, by `created` in whole seconds then by order of
//! emission). It emits on its own what a gateway would: `checkout.session.completed` when a
//! session is paid ([`FakeGateway::pay_session`]) or completes unpaid
//! ([`FakeGateway::complete_session_unpaid`]), `checkout.session.expired` when a session closes
//! ([`FakeGateway::expire_session`], [`PaymentGateway::expire_checkout_session`]); a test emits
//! any other with [`FakeGateway::emit`]. Events are stamped with the fake's clock
//! ([`FakeGateway::with_clock`], the system clock by default). Events only signed with
//! [`FakeGateway::signed_event`] are not in the history: they were never emitted.
//!
//! # Bills, promotion codes and customers
//! A session is created billing exactly its price ([`Bill::of_price`]); [`FakeGateway::pay_session`]
//! pays that bill. [`FakeGateway::pay_session_billed`] pays another one (a discount, tax, a
//! presentment currency with its conversion), [`FakeGateway::complete_session_without_payment`]
//! completes a session a 100%-off code made free (no payment intent, nothing charged), and
//! [`FakeGateway::apply_promotion_code`] makes every later event about the session name the code.
//! Customers ([`PaymentGateway::create_customer`]) are one per idempotency key, as the
//! gateway's are; [`FakeGateway::customers`] lists them.
//!
//! # Payments the fake knows
//! Refunds are checked against the payments the fake knows: sessions paid through
//! [`FakeGateway::pay_session`], and payments it announced itself, i.e. a verified event with a
//! payment intent and a `payment_succeeded` fact (a real gateway only reports payments that
//! exist). An unknown payment intent is [`GatewayError::NotFound`]; refunding more than
//! remains is [`GatewayError::Rejected`].

use async_trait::async_trait;
use lms_domain::{
    Bill, Conversion, Currency, DisputeOutcome, Money, PaymentDetails, PaymentFact, PurchaseId,
};
use lms_ports::{
    CheckoutRequest, Clock, Context, CustomerRequest, EventEnvelope, EventPage, EventQuery,
    GatewayError, GatewayEvent, GatewaySession, PaymentGateway, PurchaseLocator, RefundOutcome,
    RefundRequest, RefundStatus, SessionPaymentStatus, SessionStatus, SystemClock, WebhookEvent,
    WebhookRejection,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use time::OffsetDateTime;
use uuid::Uuid;

/// The fixed secret the fake signs webhooks with.
const FAKE_WEBHOOK_SECRET: &str = "fake-webhook-secret";
const SIGNATURE_PREFIX: &str = "fake-v1=";
/// The page size a listing accepts, as Stripe's: 1 to 100.
const MAX_EVENTS_PAGE: u32 = 100;

/// One fact in the fake webhook format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FakeFact {
    PaymentSucceeded {
        amount_cents: i64,
        currency: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "time::serde::rfc3339::option"
        )]
        paid_at: Option<OffsetDateTime>,
    },
    /// What the gateway billed, in the currency the checkout was presented in.
    Billed {
        currency: String,
        subtotal_cents: i64,
        discount_cents: i64,
        tax_cents: i64,
        total_cents: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversion: Option<FakeConversion>,
    },
    PaymentAttemptFailed,
    PaymentProcessing,
    AsyncPaymentFailed,
    CheckoutExpired,
    CheckoutNotStarted,
    Refunded {
        total_cents: i64,
        currency: String,
    },
    DisputeOpened,
    DisputeWon,
    DisputeLost,
    /// An operator's decision, which no gateway reports; scriptable all the same so that
    /// every fact has a form here.
    AcceptedByOperator,
}

/// A bill's amounts in the price's own currency, in the fake webhook format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FakeConversion {
    pub currency: String,
    pub subtotal_cents: i64,
    pub total_cents: i64,
}

impl From<Bill> for FakeFact {
    fn from(bill: Bill) -> Self {
        FakeFact::Billed {
            currency: bill.currency().code().to_owned(),
            subtotal_cents: bill.subtotal().minor(),
            discount_cents: bill.discount().minor(),
            tax_cents: bill.tax().minor(),
            total_cents: bill.total().minor(),
            conversion: bill.conversion().map(|conversion| FakeConversion {
                currency: conversion.subtotal.currency().code().to_owned(),
                subtotal_cents: conversion.subtotal.minor(),
                total_cents: conversion.total.minor(),
            }),
        }
    }
}

impl From<PaymentFact> for FakeFact {
    fn from(fact: PaymentFact) -> Self {
        match fact {
            PaymentFact::PaymentSucceeded { amount, at } => FakeFact::PaymentSucceeded {
                amount_cents: amount.minor(),
                currency: amount.currency().code().to_owned(),
                paid_at: at,
            },
            PaymentFact::Billed(bill) => bill.into(),
            PaymentFact::PaymentAttemptFailed => FakeFact::PaymentAttemptFailed,
            PaymentFact::PaymentProcessing => FakeFact::PaymentProcessing,
            PaymentFact::AsyncPaymentFailed => FakeFact::AsyncPaymentFailed,
            PaymentFact::CheckoutExpired => FakeFact::CheckoutExpired,
            PaymentFact::CheckoutNotStarted => FakeFact::CheckoutNotStarted,
            PaymentFact::Refunded { total } => FakeFact::Refunded {
                total_cents: total.minor(),
                currency: total.currency().code().to_owned(),
            },
            PaymentFact::DisputeOpened => FakeFact::DisputeOpened,
            PaymentFact::DisputeClosed(DisputeOutcome::Won) => FakeFact::DisputeWon,
            PaymentFact::DisputeClosed(DisputeOutcome::Lost) => FakeFact::DisputeLost,
            PaymentFact::AcceptedByOperator => FakeFact::AcceptedByOperator,
        }
    }
}

impl FakeFact {
    /// The fact, a payment without a time of its own taking `created`, the event's.
    fn to_fact(
        &self,
        created: Option<OffsetDateTime>,
    ) -> Result<PaymentFact, lms_domain::DomainError> {
        let money = |minor: i64, code: &str| {
            Currency::parse(code).and_then(|currency| Money::new(minor, currency))
        };
        Ok(match self {
            FakeFact::PaymentSucceeded {
                amount_cents,
                currency,
                paid_at,
            } => PaymentFact::PaymentSucceeded {
                amount: money(*amount_cents, currency)?,
                at: paid_at.or(created),
            },
            FakeFact::Billed {
                currency,
                subtotal_cents,
                discount_cents,
                tax_cents,
                total_cents,
                conversion,
            } => {
                let conversion = conversion
                    .as_ref()
                    .map(|conversion| {
                        Conversion::new(
                            money(conversion.subtotal_cents, &conversion.currency)?,
                            money(conversion.total_cents, &conversion.currency)?,
                        )
                    })
                    .transpose()?;
                PaymentFact::Billed(Bill::new(
                    money(*subtotal_cents, currency)?,
                    money(*discount_cents, currency)?,
                    money(*tax_cents, currency)?,
                    money(*total_cents, currency)?,
                    conversion,
                )?)
            }
            FakeFact::PaymentAttemptFailed => PaymentFact::PaymentAttemptFailed,
            FakeFact::PaymentProcessing => PaymentFact::PaymentProcessing,
            FakeFact::AsyncPaymentFailed => PaymentFact::AsyncPaymentFailed,
            FakeFact::CheckoutExpired => PaymentFact::CheckoutExpired,
            FakeFact::CheckoutNotStarted => PaymentFact::CheckoutNotStarted,
            FakeFact::Refunded {
                total_cents,
                currency,
            } => PaymentFact::Refunded {
                total: money(*total_cents, currency)?,
            },
            FakeFact::DisputeOpened => PaymentFact::DisputeOpened,
            FakeFact::DisputeWon => PaymentFact::DisputeClosed(DisputeOutcome::Won),
            FakeFact::DisputeLost => PaymentFact::DisputeClosed(DisputeOutcome::Lost),
            FakeFact::AcceptedByOperator => PaymentFact::AcceptedByOperator,
        })
    }
}

/// A webhook event in the fake format. Build one, then sign it with
/// [`FakeGateway::signed_event`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FakeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent_id: Option<String>,
    /// Unix seconds. Absent, the event reads as created at 0 and its payments carry no time
    /// (as when the gateway does not say), so tests that do not care see no invented time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// Sent in live mode; absent (and false) is test mode, so existing bodies stay as they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub livemode: bool,
    #[serde(default)]
    pub facts: Vec<FakeFact>,
    /// The receipt page of the charge the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_url: Option<String>,
    /// The promotion code applied at checkout (`promo_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_code: Option<String>,
}

impl FakeEvent {
    pub fn new(id: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            event_type: event_type.into(),
            purchase_id: None,
            checkout_session_id: None,
            payment_intent_id: None,
            created: None,
            livemode: false,
            facts: Vec::new(),
            receipt_url: None,
            promotion_code: None,
        }
    }

    /// Marks the event as sent in live mode (real money).
    #[must_use]
    pub fn in_live_mode(mut self) -> Self {
        self.livemode = true;
        self
    }

    #[must_use]
    pub fn for_purchase(mut self, purchase_id: PurchaseId) -> Self {
        self.purchase_id = Some(purchase_id.to_string());
        self
    }

    #[must_use]
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.checkout_session_id = Some(session_id.into());
        self
    }

    #[must_use]
    pub fn with_payment_intent(mut self, payment_intent_id: impl Into<String>) -> Self {
        self.payment_intent_id = Some(payment_intent_id.into());
        self
    }

    /// Stamps the event with the gateway's time of creation (whole seconds, as Stripe's).
    #[must_use]
    pub fn created_at(mut self, at: OffsetDateTime) -> Self {
        self.created = Some(at.unix_timestamp());
        self
    }

    #[must_use]
    pub fn with_fact(mut self, fact: PaymentFact) -> Self {
        self.facts.push(fact.into());
        self
    }

    /// Names the receipt page of the charge the event is about.
    #[must_use]
    pub fn with_receipt_url(mut self, receipt_url: impl Into<String>) -> Self {
        self.receipt_url = Some(receipt_url.into());
        self
    }

    /// Names the promotion code applied at checkout.
    #[must_use]
    pub fn with_promotion_code(mut self, promotion_code: impl Into<String>) -> Self {
        self.promotion_code = Some(promotion_code.into());
        self
    }

    /// Carries `details` (each field the event already names is replaced when `details` has one).
    #[must_use]
    pub fn with_details(mut self, details: &PaymentDetails) -> Self {
        if details.receipt_url.is_some() {
            self.receipt_url.clone_from(&details.receipt_url);
        }
        if details.promotion_code.is_some() {
            self.promotion_code.clone_from(&details.promotion_code);
        }
        self
    }

    /// What the event says beside its facts.
    pub fn details(&self) -> PaymentDetails {
        PaymentDetails {
            receipt_url: self.receipt_url.clone(),
            promotion_code: self.promotion_code.clone(),
        }
    }

    /// The JSON body of this event.
    pub fn to_body(&self) -> Vec<u8> {
        // Serialising plain strings, integers and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A request the fake received, in order (failed ones included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayCall {
    CreateCheckoutSession(CheckoutRequest),
    CreateCustomer(CustomerRequest),
    RetrieveCheckoutSession(String),
    FindSessionByPaymentIntent(String),
    Refund(RefundRequest),
    ExpireCheckoutSession(String),
    ListEvents(EventQuery),
    PromotionCodeText(String),
}

/// A scripted failure, replayable any number of times: an error's cause cannot be cloned, so
/// it is shared, and each replay is a fresh [`GatewayError`] of the same variant whose source
/// reads (and chains) as the scripted one did.
#[derive(Debug, Clone)]
enum Scripted {
    Rejected {
        code: Option<String>,
        message: String,
    },
    NotFound,
    Unavailable(SharedCause),
    Misconfigured(SharedCause),
    Unexpected(SharedCause),
}

impl From<GatewayError> for Scripted {
    fn from(error: GatewayError) -> Self {
        match error {
            GatewayError::Rejected { code, message } => Scripted::Rejected { code, message },
            GatewayError::NotFound => Scripted::NotFound,
            GatewayError::Unavailable(cause) => Scripted::Unavailable(SharedCause(cause.into())),
            GatewayError::Misconfigured(cause) => {
                Scripted::Misconfigured(SharedCause(cause.into()))
            }
            GatewayError::Unexpected(cause) => Scripted::Unexpected(SharedCause(cause.into())),
        }
    }
}

impl Scripted {
    fn error(&self) -> GatewayError {
        match self {
            Scripted::Rejected { code, message } => GatewayError::Rejected {
                code: code.clone(),
                message: message.clone(),
            },
            Scripted::NotFound => GatewayError::NotFound,
            Scripted::Unavailable(cause) => GatewayError::unavailable(cause.clone()),
            Scripted::Misconfigured(cause) => GatewayError::misconfigured(cause.clone()),
            Scripted::Unexpected(cause) => GatewayError::unexpected(cause.clone()),
        }
    }
}

/// One scripted cause, shared by its replays: reads as the cause, with the cause's sources.
#[derive(Debug, Clone)]
struct SharedCause(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for SharedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// An event the fake emitted, in its history.
#[derive(Debug, Clone)]
struct Emitted {
    event: FakeEvent,
    /// Exactly the bytes a delivery would carry (and `list_events` hands out).
    body: Vec<u8>,
}

impl Emitted {
    fn created(&self) -> i64 {
        self.event.created.unwrap_or(0)
    }
}

/// A customer the fake created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCustomer {
    /// `cus_fake_...`.
    pub id: String,
    /// The request that created it.
    pub request: CustomerRequest,
}

#[derive(Debug)]
struct State {
    sessions: HashMap<String, GatewaySession>,
    /// Idempotency key -> (request, session id).
    checkout_keys: HashMap<String, (CheckoutRequest, String)>,
    /// The customers created, oldest first.
    customers: Vec<FakeCustomer>,
    /// Session id -> the promotion code its events name.
    promotion_codes: HashMap<String, String>,
    /// Promotion code id -> what the customer types ([`FakeGateway::register_promotion_code`]).
    promotion_code_texts: HashMap<String, String>,
    /// Idempotency key -> (request, outcome).
    refund_keys: HashMap<String, (RefundRequest, RefundOutcome)>,
    calls: Vec<GatewayCall>,
    failures: VecDeque<Scripted>,
    refund_status: RefundStatus,
    refunds: Vec<RefundRequest>,
    /// Payment intent -> minor units refunded so far (succeeded or pending refunds).
    refunded: HashMap<String, i64>,
    /// Payments announced by verified webhooks or emitted events: payment intent -> amount
    /// captured.
    announced: HashMap<String, Money>,
    /// Every event emitted, oldest first.
    events: Vec<Emitted>,
    /// Whether the fake is a live-mode gateway (real money); test mode by default.
    livemode: bool,
}

impl Default for State {
    fn default() -> Self {
        Self {
            sessions: HashMap::new(),
            checkout_keys: HashMap::new(),
            customers: Vec::new(),
            promotion_codes: HashMap::new(),
            promotion_code_texts: HashMap::new(),
            refund_keys: HashMap::new(),
            calls: Vec::new(),
            failures: VecDeque::new(),
            refund_status: RefundStatus::Succeeded,
            refunds: Vec::new(),
            refunded: HashMap::new(),
            announced: HashMap::new(),
            events: Vec::new(),
            livemode: false,
        }
    }
}

/// A scriptable [`PaymentGateway`]. Clones share state, so a test can keep one handle and give
/// another to the services.
#[derive(Clone)]
pub struct FakeGateway {
    state: Arc<Mutex<State>>,
    /// What stamps the events the fake emits.
    clock: Arc<dyn Clock>,
}

impl Default for FakeGateway {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for FakeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGateway")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl FakeGateway {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stamps the events the fake emits from now on with `clock` (shared by clones made after).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Makes the fake a live-mode gateway: it emits live events and refuses test ones.
    #[must_use]
    pub fn in_live_mode(self) -> Self {
        self.state().livemode = true;
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the call, then fails it if a failure is queued.
    fn begin_call(state: &mut State, call: GatewayCall) -> Result<(), GatewayError> {
        state.calls.push(call);
        state
            .failures
            .pop_front()
            .map_or(Ok(()), |failure| Err(failure.error()))
    }

    // ---- Webhooks -------------------------------------------------------------------------

    /// The signature header the fake expects for `body`.
    pub fn signature_for(body: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(FAKE_WEBHOOK_SECRET.as_bytes());
        hasher.update(body);
        format!("{SIGNATURE_PREFIX}{}", hex::encode(hasher.finalize()))
    }

    /// The body and the matching signature header of an event. The event is not emitted: it
    /// stays out of the history ([`FakeGateway::emit`] puts it there).
    pub fn signed_event(event: &FakeEvent) -> (Vec<u8>, String) {
        let body = event.to_body();
        let signature = Self::signature_for(&body);
        (body, signature)
    }

    /// The gateway emits `event`: it joins the history [`PaymentGateway::list_events`] reads,
    /// stamped with the fake's clock unless it has a `created` of its own, and a payment it
    /// announces becomes refundable. Returns the body and signature header a delivery of it
    /// carries. The event is kept as given: one the fake cannot decode (another mode, a bad
    /// fact) makes a listing that reaches it fail as [`GatewayError::Unexpected`].
    pub fn emit(&self, mut event: FakeEvent) -> (Vec<u8>, String) {
        let now = self.clock.now().unix_timestamp();
        let mut state = self.state();
        event.created.get_or_insert(now);
        Self::record(&mut state, event)
    }

    fn record(state: &mut State, event: FakeEvent) -> (Vec<u8>, String) {
        let body = event.to_body();
        // An event the fake cannot decode announces nothing; it is listed all the same, as a
        // gateway lists what it sent.
        if let Ok(decoded) = decode(&body, event.livemode) {
            announce(state, &decoded);
        }
        state.events.push(Emitted {
            event,
            body: body.clone(),
        });
        let signature = Self::signature_for(&body);
        (body, signature)
    }

    /// Every event emitted so far, oldest first.
    pub fn events(&self) -> Vec<FakeEvent> {
        self.state()
            .events
            .iter()
            .map(|emitted| emitted.event.clone())
            .collect()
    }

    /// Changes a session and emits the event that change makes a gateway send (its facts are
    /// the session's, as [`GatewaySession::facts`] reads them); false when there is no such
    /// session.
    fn transition(
        &self,
        session_id: &str,
        event_type: &str,
        change: impl FnOnce(&mut GatewaySession),
    ) -> bool {
        let now = self.clock.now().unix_timestamp();
        let mut state = self.state();
        let livemode = state.livemode;
        let promotion_code = state.promotion_codes.get(session_id).cloned();
        let Some(session) = state.sessions.get_mut(session_id) else {
            return false;
        };
        change(session);
        let mut event = session_event(session, event_type, now, livemode);
        event.promotion_code = promotion_code;
        Self::record(&mut state, event);
        true
    }

    // ---- Scripting ------------------------------------------------------------------------

    /// Makes the next `count` gateway calls (any method but the pure `verify_webhook` and
    /// `decode_stored_event`) fail with `error`.
    pub fn fail_next(&self, count: usize, error: GatewayError) {
        let failure = Scripted::from(error);
        let mut state = self.state();
        state.failures.extend(std::iter::repeat_n(failure, count));
    }

    /// How refunds made from now on end (default [`RefundStatus::Succeeded`]).
    pub fn set_refund_status(&self, status: RefundStatus) {
        self.state().refund_status = status;
    }

    /// Adds or replaces a session, as if created elsewhere (no event is emitted).
    pub fn insert_session(&self, session: GatewaySession) {
        self.state().sessions.insert(session.id.clone(), session);
    }

    /// Changes a stored session, emitting nothing; false when there is no such session.
    pub fn update_session(
        &self,
        session_id: &str,
        change: impl FnOnce(&mut GatewaySession),
    ) -> bool {
        self.state()
            .sessions
            .get_mut(session_id)
            .map(change)
            .is_some()
    }

    /// The customer paid the session's bill (its price, unless changed): complete, paid, with
    /// this payment intent; emits `checkout.session.completed` with the payment and the bill.
    pub fn pay_session(&self, session_id: &str, payment_intent_id: &str) -> bool {
        self.transition(session_id, "checkout.session.completed", |session| {
            session.status = SessionStatus::Complete;
            session.payment_status = SessionPaymentStatus::Paid;
            session.url = None;
            session.payment_intent_id = Some(payment_intent_id.to_owned());
        })
    }

    /// The customer paid `bill` (discounted, taxed, or presented in another currency with its
    /// conversion): as [`FakeGateway::pay_session`], the session now charging the bill's
    /// total in the bill's currency.
    pub fn pay_session_billed(
        &self,
        session_id: &str,
        payment_intent_id: &str,
        bill: Bill,
    ) -> bool {
        self.transition(session_id, "checkout.session.completed", |session| {
            charge_bill(session, bill);
            session.status = SessionStatus::Complete;
            session.payment_status = SessionPaymentStatus::Paid;
            session.url = None;
            session.payment_intent_id = Some(payment_intent_id.to_owned());
        })
    }

    /// A 100%-off promotion code left nothing to pay: the session completes with `bill` (whose
    /// total is zero), no payment required and no payment intent; emits
    /// `checkout.session.completed`, which proves a payment of zero and the bill.
    pub fn complete_session_without_payment(&self, session_id: &str, bill: Bill) -> bool {
        self.transition(session_id, "checkout.session.completed", |session| {
            charge_bill(session, bill);
            session.status = SessionStatus::Complete;
            session.payment_status = SessionPaymentStatus::NoPaymentRequired;
            session.url = None;
            session.payment_intent_id = None;
        })
    }

    /// The customer entered a promotion code on the session's page: every event about the
    /// session emitted from now on names `promotion_code` (a `promo_...` id); false when there
    /// is no such session. Emits nothing and changes no amount (pay with a bill for that).
    pub fn apply_promotion_code(&self, session_id: &str, promotion_code: &str) -> bool {
        let mut state = self.state();
        if !state.sessions.contains_key(session_id) {
            return false;
        }
        state
            .promotion_codes
            .insert(session_id.to_owned(), promotion_code.to_owned());
        true
    }

    /// Makes the promotion code `id` (`promo_...`) known as `code`, what the customer types;
    /// [`PaymentGateway::promotion_code_text`] answers `None` for any other id.
    pub fn register_promotion_code(&self, id: &str, code: &str) {
        self.state()
            .promotion_code_texts
            .insert(id.to_owned(), code.to_owned());
    }

    /// Checkout completed with a delayed payment method still settling; emits
    /// `checkout.session.completed` (processing).
    pub fn complete_session_unpaid(&self, session_id: &str, payment_intent_id: &str) -> bool {
        self.transition(session_id, "checkout.session.completed", |session| {
            session.status = SessionStatus::Complete;
            session.payment_status = SessionPaymentStatus::Unpaid;
            session.url = None;
            session.payment_intent_id = Some(payment_intent_id.to_owned());
        })
    }

    /// The session closed without payment (whatever its state: a script may force it); emits
    /// `checkout.session.expired`.
    pub fn expire_session(&self, session_id: &str) -> bool {
        self.transition(session_id, "checkout.session.expired", close_session)
    }

    // ---- Inspection -----------------------------------------------------------------------

    /// Every request received, in order (failed ones included).
    pub fn calls(&self) -> Vec<GatewayCall> {
        self.state().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.state().calls.len()
    }

    /// The checkout creation requests received, in order (failed ones included).
    pub fn checkout_requests(&self) -> Vec<CheckoutRequest> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                GatewayCall::CreateCheckoutSession(request) => Some(request),
                _ => None,
            })
            .collect()
    }

    /// The refunds actually made (one per distinct idempotency key, refused ones excluded), in order.
    pub fn refunds(&self) -> Vec<RefundRequest> {
        self.state().refunds.clone()
    }

    pub fn session(&self, session_id: &str) -> Option<GatewaySession> {
        self.state().sessions.get(session_id).cloned()
    }

    /// How many distinct sessions exist.
    pub fn session_count(&self) -> usize {
        self.state().sessions.len()
    }

    /// The customers created (one per distinct idempotency key), oldest first.
    pub fn customers(&self) -> Vec<FakeCustomer> {
        self.state().customers.clone()
    }

    /// How many distinct customers exist.
    pub fn customer_count(&self) -> usize {
        self.state().customers.len()
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError> {
        let mut state = self.state();
        Self::begin_call(
            &mut state,
            GatewayCall::CreateCheckoutSession(request.clone()),
        )?;
        if let Some((earlier, session_id)) = state.checkout_keys.get(&request.idempotency_key) {
            if earlier != request {
                return Err(GatewayError::Rejected {
                    code: Some("idempotency_key_in_use".to_owned()),
                    message: "idempotency key reused with different parameters".to_owned(),
                });
            }
            let session_id = session_id.clone();
            return state
                .sessions
                .get(&session_id)
                .cloned()
                .ok_or(GatewayError::NotFound);
        }
        let id = format!("cs_fake_{}", Uuid::new_v4().simple());
        let metadata = BTreeMap::from([
            ("purchase_id".to_owned(), request.purchase_id.to_string()),
            ("course_id".to_owned(), request.course_id.to_string()),
            ("user_id".to_owned(), request.user_id.to_string()),
        ]);
        let session = GatewaySession {
            url: Some(format!("https://checkout.fake.test/pay/{id}")),
            id: id.clone(),
            status: SessionStatus::Open,
            payment_status: SessionPaymentStatus::Unpaid,
            amount_total: request.amount.minor(),
            currency: request.amount.currency(),
            bill: Some(Bill::of_price(request.amount)),
            expires_at: request.expires_at,
            metadata,
            purchase_id: Some(request.purchase_id),
            payment_intent_id: None,
        };
        state.checkout_keys.insert(
            request.idempotency_key.clone(),
            (request.clone(), id.clone()),
        );
        state.sessions.insert(id, session.clone());
        Ok(session)
    }

    async fn create_customer(&self, request: &CustomerRequest) -> Result<String, GatewayError> {
        let mut state = self.state();
        Self::begin_call(&mut state, GatewayCall::CreateCustomer(request.clone()))?;
        if let Some(earlier) = state
            .customers
            .iter()
            .find(|customer| customer.request.idempotency_key == request.idempotency_key)
        {
            if earlier.request != *request {
                return Err(GatewayError::Rejected {
                    code: Some("idempotency_key_in_use".to_owned()),
                    message: "idempotency key reused with different parameters".to_owned(),
                });
            }
            return Ok(earlier.id.clone());
        }
        let id = format!("cus_fake_{}", Uuid::new_v4().simple());
        state.customers.push(FakeCustomer {
            id: id.clone(),
            request: request.clone(),
        });
        Ok(id)
    }

    async fn promotion_code_text(
        &self,
        promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        let mut state = self.state();
        Self::begin_call(
            &mut state,
            GatewayCall::PromotionCodeText(promotion_code_id.to_owned()),
        )?;
        Ok(state.promotion_code_texts.get(promotion_code_id).cloned())
    }

    async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        let mut state = self.state();
        Self::begin_call(
            &mut state,
            GatewayCall::RetrieveCheckoutSession(session_id.to_owned()),
        )?;
        state
            .sessions
            .get(session_id)
            .cloned()
            .ok_or(GatewayError::NotFound)
    }

    async fn find_session_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError> {
        let mut state = self.state();
        Self::begin_call(
            &mut state,
            GatewayCall::FindSessionByPaymentIntent(payment_intent_id.to_owned()),
        )?;
        Ok(state
            .sessions
            .values()
            .find(|session| session.payment_intent_id.as_deref() == Some(payment_intent_id))
            .cloned())
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let mut state = self.state();
        Self::begin_call(&mut state, GatewayCall::Refund(request.clone()))?;
        if let Some((earlier, outcome)) = state.refund_keys.get(&request.idempotency_key) {
            if earlier != request {
                return Err(GatewayError::Rejected {
                    code: Some("idempotency_key_in_use".to_owned()),
                    message: "idempotency key reused with different parameters".to_owned(),
                });
            }
            return Ok(outcome.clone());
        }
        let session = state.sessions.values().find(|session| {
            session.payment_intent_id.as_deref() == Some(request.payment_intent_id.as_str())
        });
        let rejected = |code: &str, message: &str| GatewayError::Rejected {
            code: Some(code.to_owned()),
            message: message.to_owned(),
        };
        let captured = match (session, state.announced.get(&request.payment_intent_id)) {
            (Some(session), _) if session.payment_status == SessionPaymentStatus::Paid => {
                Money::new(session.amount_total, session.currency)
                    .map_err(GatewayError::unexpected)?
            }
            (_, Some(announced)) => *announced,
            (Some(_), None) => {
                return Err(rejected(
                    "charge_not_captured",
                    "the payment has not been captured",
                ))
            }
            (None, None) => return Err(GatewayError::NotFound),
        };
        if captured.currency() != request.amount.currency() {
            return Err(rejected(
                "currency_mismatch",
                "refund currency differs from the payment",
            ));
        }
        let already = state
            .refunded
            .get(&request.payment_intent_id)
            .copied()
            .unwrap_or(0);
        let remaining = captured.minor() - already;
        if remaining <= 0 {
            return Err(rejected(
                "charge_already_refunded",
                "the payment is already fully refunded",
            ));
        }
        if request.amount.minor() < 1 || request.amount.minor() > remaining {
            return Err(rejected(
                "amount_too_large",
                "refund amount exceeds what remains of the payment",
            ));
        }
        let outcome = RefundOutcome {
            refund_id: format!("re_fake_{}", Uuid::new_v4().simple()),
            status: state.refund_status,
            amount: request.amount,
        };
        if matches!(
            outcome.status,
            RefundStatus::Succeeded | RefundStatus::Pending
        ) {
            *state
                .refunded
                .entry(request.payment_intent_id.clone())
                .or_insert(0) += request.amount.minor();
        }
        state.refund_keys.insert(
            request.idempotency_key.clone(),
            (request.clone(), outcome.clone()),
        );
        state.refunds.push(request.clone());
        Ok(outcome)
    }

    async fn expire_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        let now = self.clock.now().unix_timestamp();
        let mut state = self.state();
        Self::begin_call(
            &mut state,
            GatewayCall::ExpireCheckoutSession(session_id.to_owned()),
        )?;
        let livemode = state.livemode;
        let session = state
            .sessions
            .get_mut(session_id)
            .ok_or(GatewayError::NotFound)?;
        if session.status != SessionStatus::Open {
            return Err(GatewayError::Rejected {
                code: Some("checkout_session_not_open".to_owned()),
                message: format!(
                    "only an open session can be expired; this one is {}",
                    session.status.as_str()
                ),
            });
        }
        close_session(session);
        let closed = session.clone();
        let mut event = session_event(&closed, "checkout.session.expired", now, livemode);
        event.promotion_code = state.promotion_codes.get(session_id).cloned();
        Self::record(&mut state, event);
        Ok(closed)
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        let mut state = self.state();
        Self::begin_call(&mut state, GatewayCall::ListEvents(query.clone()))?;
        // Newest first; within one second, the later emitted first (a stable sort of the
        // history read backwards).
        let mut history: Vec<&Emitted> = state.events.iter().rev().collect();
        history.sort_by_key(|emitted| std::cmp::Reverse(emitted.created()));
        let start = match query.starting_after.as_deref().filter(|id| !id.is_empty()) {
            Some(cursor) => {
                history
                    .iter()
                    .position(|emitted| emitted.event.id == cursor)
                    .ok_or(GatewayError::NotFound)?
                    + 1
            }
            None => 0,
        };
        // Whole seconds, as the gateway's `created` (and the Stripe adapter's filter) are.
        let from = query.created_from.unix_timestamp();
        let limit = usize::try_from(query.limit.clamp(1, MAX_EVENTS_PAGE)).unwrap_or(1);
        let mut matching = history[start..]
            .iter()
            .filter(|emitted| emitted.created() >= from);
        let events = matching
            .by_ref()
            .take(limit)
            .map(|emitted| {
                decode(&emitted.body, state.livemode).map_err(|rejection| {
                    GatewayError::unexpected(Context::new(
                        "the fake emitted an event it cannot decode",
                        rejection,
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = matching.next().is_some();
        Ok(EventPage { events, has_more })
    }

    fn decode_stored_event(&self, payload: &[u8]) -> Result<WebhookEvent, WebhookRejection> {
        let livemode = self.state().livemode;
        decode(payload, livemode)
    }

    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookEvent, WebhookRejection> {
        let header = signature_header.ok_or(WebhookRejection::BadSignature)?;
        let expected = Self::signature_for(payload);
        if header.trim().as_bytes() != expected.as_bytes() {
            return Err(WebhookRejection::BadSignature);
        }
        let mut state = self.state();
        let event = decode(payload, state.livemode)?;
        announce(&mut state, &event);
        Ok(event)
    }
}

/// Makes a session charge `bill`: its total, in its currency.
fn charge_bill(session: &mut GatewaySession, bill: Bill) {
    session.amount_total = bill.total().minor();
    session.currency = bill.currency();
    session.bill = Some(bill);
}

/// Closes a session unpaid: no payment page any more.
fn close_session(session: &mut GatewaySession) {
    session.status = SessionStatus::Expired;
    session.url = None;
}

/// The event a gateway sends about a session in its current state.
fn session_event(
    session: &GatewaySession,
    event_type: &str,
    created: i64,
    livemode: bool,
) -> FakeEvent {
    let mut event = FakeEvent::new(format!("evt_fake_{}", Uuid::new_v4().simple()), event_type)
        .with_session(session.id.clone());
    event.created = Some(created);
    event.livemode = livemode;
    event.purchase_id = session.purchase_id.map(|id| id.to_string());
    event
        .payment_intent_id
        .clone_from(&session.payment_intent_id);
    event.facts = session.facts().into_iter().map(FakeFact::from).collect();
    event
}

/// Remembers the payment a verified or emitted event announces, so that it can be refunded.
fn announce(state: &mut State, event: &WebhookEvent) {
    let WebhookEvent::Relevant(event) = event else {
        return;
    };
    let Some(intent) = &event.locator.payment_intent_id else {
        return;
    };
    for fact in &event.facts {
        if let PaymentFact::PaymentSucceeded { amount, .. } = fact {
            state.announced.insert(intent.clone(), *amount);
        }
    }
}

/// Decodes an authentic body in the fake format: what `verify_webhook` does once the signature
/// matched, `decode_stored_event` for a kept body and `list_events` for the history.
fn decode(payload: &[u8], expect_livemode: bool) -> Result<WebhookEvent, WebhookRejection> {
    let event: FakeEvent = serde_json::from_slice(payload).map_err(WebhookRejection::malformed)?;
    if event.livemode != expect_livemode {
        return Err(WebhookRejection::WrongMode);
    }
    let stamped = event
        .created
        .map(OffsetDateTime::from_unix_timestamp)
        .transpose()
        .map_err(|err| WebhookRejection::malformed(Context::new("created", err)))?;
    let details = event.details();
    let envelope = EventEnvelope {
        id: event.id,
        event_type: event.event_type,
        livemode: event.livemode,
        created: stamped.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        payload: String::from_utf8_lossy(payload).into_owned(),
    };
    if event.facts.is_empty() {
        return Ok(WebhookEvent::Ignored(envelope));
    }
    let facts = event
        .facts
        .iter()
        .map(|fact| fact.to_fact(stamped))
        .collect::<Result<Vec<_>, _>>()
        .map_err(WebhookRejection::malformed)?;
    let purchase_id = event
        .purchase_id
        .as_deref()
        .map(str::parse::<PurchaseId>)
        .transpose()
        .map_err(|err| WebhookRejection::malformed(Context::new("purchaseId", err)))?;
    Ok(WebhookEvent::Relevant(GatewayEvent {
        envelope,
        locator: PurchaseLocator {
            purchase_id,
            checkout_session_id: event.checkout_session_id,
            payment_intent_id: event.payment_intent_id,
        },
        facts,
        details,
    }))
}

#[cfg(test)]
mod tests;
