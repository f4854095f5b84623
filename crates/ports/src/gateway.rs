//! The payment gateway port: hosted checkout, refunds, and verified webhook events.
//!
//! The gateway speaks in its own objects; this port speaks in the domain's
//! [`PaymentFact`]s. The HTTP adapter hands raw webhook bytes and the signature header to
//! [`PaymentGateway::verify_webhook`] and never learns the signature format.

use crate::error::{same_cause, BoxError};
use async_trait::async_trait;
use lms_domain::{
    Bill, CourseId, Currency, Money, PaymentDetails, PaymentFact, PurchaseId, UserId,
};
use std::collections::BTreeMap;
use thiserror::Error;
use time::OffsetDateTime;

/// Why a gateway call failed.
#[derive(Debug, Error)]
pub enum GatewayError {
    /// The gateway refused the request as made (bad parameters, card declined, idempotency
    /// key reused with other parameters). Not retryable unchanged. `code` is the gateway's
    /// machine code when it gave one; `message` is safe to show to an operator.
    #[error("payment provider rejected the request: {message}")]
    Rejected {
        code: Option<String>,
        message: String,
    },
    /// The object asked for does not exist at the gateway.
    #[error("not found at the payment provider")]
    NotFound,
    /// Retryable: connection failure, timeout, rate limit or gateway 5xx, after the adapter's
    /// own bounded retries.
    #[error("payment provider unavailable")]
    Unavailable(#[source] BoxError),
    /// Our credentials or setup are wrong (e.g. 401/403): an operator must act.
    #[error("payment provider misconfigured")]
    Misconfigured(#[source] BoxError),
    /// Anything else (an answer we cannot read, a broken invariant).
    #[error("unexpected payment provider error")]
    Unexpected(#[source] BoxError),
}

impl GatewayError {
    /// A retryable failure keeping `cause` as its source.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// A setup failure keeping `cause` as its source.
    pub fn misconfigured(cause: impl Into<BoxError>) -> Self {
        Self::Misconfigured(cause.into())
    }

    /// An opaque failure keeping `cause` as its source.
    pub fn unexpected(cause: impl Into<BoxError>) -> Self {
        Self::Unexpected(cause.into())
    }
}

/// Business variants compare by value; opaque ones when they are the same variant with causes
/// that read the same at every level.
impl PartialEq for GatewayError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Rejected { code, message },
                Self::Rejected {
                    code: other_code,
                    message: other_message,
                },
            ) => code == other_code && message == other_message,
            (Self::NotFound, Self::NotFound) => true,
            (Self::Unavailable(a), Self::Unavailable(b))
            | (Self::Misconfigured(a), Self::Misconfigured(b))
            | (Self::Unexpected(a), Self::Unexpected(b)) => same_cause(a, b),
            _ => false,
        }
    }
}

/// What to sell in one hosted checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub purchase_id: PurchaseId,
    pub course_id: CourseId,
    pub user_id: UserId,
    /// Shown on the payment page.
    pub course_title: String,
    /// Never zero: free courses do not reach the gateway.
    pub amount: Money,
    /// The buyer's customer at the gateway ([`PaymentGateway::create_customer`]), so that the
    /// gateway groups a student's payments and sends its receipts; when set, the e-mail is
    /// the customer's and `customer_email` is not sent.
    pub customer_id: Option<String>,
    pub customer_email: Option<String>,
    /// When the session closes if unpaid.
    pub expires_at: OffsetDateTime,
    /// Derived from the purchase id, so a retried creation returns the same session.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Open,
    Complete,
    Expired,
}

impl SessionStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Complete => "complete",
            SessionStatus::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPaymentStatus {
    Paid,
    Unpaid,
    NoPaymentRequired,
}

impl SessionPaymentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            SessionPaymentStatus::Paid => "paid",
            SessionPaymentStatus::Unpaid => "unpaid",
            SessionPaymentStatus::NoPaymentRequired => "no_payment_required",
        }
    }
}

/// A customer to create at the gateway: one per user, reused for every checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRequest {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    /// Derived from the user id, so that concurrent or retried creations for one user yield
    /// one customer.
    pub idempotency_key: String,
}

/// A hosted checkout session as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySession {
    pub id: String,
    /// The payment page; `None` once the session is no longer open.
    pub url: Option<String>,
    pub status: SessionStatus,
    pub payment_status: SessionPaymentStatus,
    pub amount_total: i64,
    pub currency: Currency,
    /// What the gateway computed the customer owes (subtotal, discount, tax, total, and any
    /// currency conversion); `None` when it did not say, or said in a form the domain cannot
    /// hold.
    pub bill: Option<Bill>,
    pub expires_at: OffsetDateTime,
    pub metadata: BTreeMap<String, String>,
    /// Our purchase id, echoed back (`client_reference_id`).
    pub purchase_id: Option<PurchaseId>,
    pub payment_intent_id: Option<String>,
}

impl GatewaySession {
    /// The facts this session state proves: paid -> succeeded with the amount charged;
    /// complete with no payment required (a 100%-off promotion code) -> succeeded with
    /// nothing charged; complete but unpaid -> a delayed payment is settling; expired ->
    /// closed unpaid. A completed session also proves its bill. A session's state does not
    /// say when it was paid, so its payment carries no time (the webhook's does).
    pub fn facts(&self) -> Vec<PaymentFact> {
        let succeeded = |amount_total: i64| match Money::new(amount_total, self.currency) {
            Ok(amount) => vec![PaymentFact::PaymentSucceeded { amount, at: None }],
            Err(_) => Vec::new(),
        };
        let mut facts = match (self.status, self.payment_status) {
            (SessionStatus::Complete | SessionStatus::Open, SessionPaymentStatus::Paid) => {
                succeeded(self.amount_total)
            }
            (SessionStatus::Complete, SessionPaymentStatus::NoPaymentRequired) => succeeded(0),
            (SessionStatus::Complete, SessionPaymentStatus::Unpaid) => {
                vec![PaymentFact::PaymentProcessing]
            }
            (SessionStatus::Expired, _) => return vec![PaymentFact::CheckoutExpired],
            _ => Vec::new(),
        };
        if !facts.is_empty() {
            facts.extend(self.bill.map(PaymentFact::Billed));
        }
        facts
    }
}

/// A refund to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub purchase_id: PurchaseId,
    pub payment_intent_id: String,
    pub amount: Money,
    /// Free text from the operator; adapters map known reasons to the gateway's vocabulary
    /// and keep the rest as metadata.
    pub reason: Option<String>,
    /// Unique per intended refund, so a retried call never refunds twice.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Succeeded,
    Pending,
    Failed,
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    pub refund_id: String,
    pub status: RefundStatus,
    pub amount: Money,
}

/// Which purchase an event is about. Adapters fill every identifier the event carries; the
/// use case tries them in order: purchase id, checkout session, payment intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseLocator {
    pub purchase_id: Option<PurchaseId>,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
}

/// What every verified event carries, whatever it is about: what the event inbox keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    /// The deduplication key (`evt_...`).
    pub id: String,
    pub event_type: String,
    /// Whether the gateway sent it in live mode (real money) or test mode.
    pub livemode: bool,
    /// When the gateway created the event.
    pub created: OffsetDateTime,
    /// The raw body, kept for audit and replay.
    pub payload: String,
}

/// A verified webhook event that carries facts about a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayEvent {
    pub envelope: EventEnvelope,
    pub locator: PurchaseLocator,
    pub facts: Vec<PaymentFact>,
    /// What the event says that decides nothing: a charge's receipt page, a checkout's
    /// promotion code.
    pub details: PaymentDetails,
}

/// The result of verifying a webhook (or decoding a stored or listed event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// Authentic and about purchases.
    Relevant(GatewayEvent),
    /// Authentic, but of a type this product does not act on, or naming nothing it could
    /// correlate: acknowledged and recorded as ignored.
    Ignored(EventEnvelope),
}

impl WebhookEvent {
    /// The envelope, whichever kind the event is.
    pub fn envelope(&self) -> &EventEnvelope {
        match self {
            WebhookEvent::Relevant(event) => &event.envelope,
            WebhookEvent::Ignored(envelope) => envelope,
        }
    }
}

/// Which page of the gateway's event history to read: events created at or after
/// `created_from`, newest first, after the cursor `starting_after` (an event id from the
/// previous page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub created_from: OffsetDateTime,
    pub starting_after: Option<String>,
    /// 1..=100.
    pub limit: u32,
}

/// One page of the gateway's event history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// Newest first. Only events of types the adapter acts on are asked for; each is decoded
    /// as a verified webhook would be.
    pub events: Vec<WebhookEvent>,
    /// Whether older events remain; the next page starts after the last event here.
    pub has_more: bool,
}

/// Why a webhook was refused, in terms of what a webhook is (a signed, timely event of our
/// payment mode), whatever the gateway's signature format. Nothing is written for a refused
/// webhook; every rejection is the sender's problem, never retryable as sent.
#[derive(Debug, Error)]
pub enum WebhookRejection {
    /// No signature, or none that matches the body under any configured secret.
    #[error("the signature is missing or does not match")]
    BadSignature,
    /// Authentically signed, but at an instant outside the accepted tolerance (a replay, or
    /// a clock far off).
    #[error("the signature is too old or too far in the future")]
    Stale,
    /// Authentic, but from the other payment mode (a test event at a live deployment, or
    /// the reverse).
    #[error("the event is from the other payment mode")]
    WrongMode,
    /// The signature cannot be read, or the body is not an event the gateway sends; the
    /// source says what was wrong, in words safe to show the sender.
    #[error("the webhook is malformed")]
    Malformed(#[source] BoxError),
}

impl WebhookRejection {
    /// A malformed webhook, `reason` saying how.
    pub fn malformed(reason: impl Into<BoxError>) -> Self {
        Self::Malformed(reason.into())
    }
}

/// Equal when the same variant, with reasons that read the same for [`WebhookRejection::Malformed`].
impl PartialEq for WebhookRejection {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::BadSignature, Self::BadSignature)
            | (Self::Stale, Self::Stale)
            | (Self::WrongMode, Self::WrongMode) => true,
            (Self::Malformed(a), Self::Malformed(b)) => same_cause(a, b),
            _ => false,
        }
    }
}

#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Creates a hosted checkout session. Retrying with the same idempotency key returns the
    /// same session.
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] (e.g. amount below the gateway minimum),
    /// [`GatewayError::Unavailable`], [`GatewayError::Misconfigured`], [`GatewayError::Unexpected`].
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError>;

    /// Creates the gateway's customer for one of our users and returns its id. Retrying with
    /// the same idempotency key returns the same customer.
    ///
    /// # Errors
    /// As [`PaymentGateway::create_checkout_session`].
    async fn create_customer(&self, request: &CustomerRequest) -> Result<String, GatewayError>;

    /// What the customer typed for a promotion code (`SPRING25`), from the gateway's id of it
    /// (what its events name, `promo_...` at Stripe), so the buyer sees the code they used.
    /// `None` when the gateway has no such code.
    ///
    /// # Errors
    /// As [`PaymentGateway::create_checkout_session`].
    async fn promotion_code_text(
        &self,
        promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError>;

    /// # Errors
    /// [`GatewayError::NotFound`] for an unknown id; otherwise as above.
    async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError>;

    /// The checkout session that created a payment intent, if any.
    ///
    /// # Errors
    /// As [`PaymentGateway::create_checkout_session`]; none found is `Ok(None)`.
    async fn find_session_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError>;

    /// Refunds all or part of a payment.
    ///
    /// # Errors
    /// [`GatewayError::Rejected`] (e.g. already fully refunded), [`GatewayError::NotFound`]
    /// for an unknown payment; otherwise as above.
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError>;

    /// Closes an open checkout session so that it can no longer be paid; returns it as closed.
    ///
    /// # Errors
    /// [`GatewayError::NotFound`] for an unknown id; [`GatewayError::Rejected`] when the
    /// session is not open (already paid or expired); otherwise as above.
    async fn expire_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError>;

    /// One page of the gateway's event history, for backfilling deliveries that never came.
    /// The events are authentic by construction (read from the gateway over its API).
    ///
    /// # Errors
    /// As [`PaymentGateway::create_checkout_session`]; an event the adapter cannot decode is
    /// [`GatewayError::Unexpected`].
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError>;

    /// Decodes an event body that was verified when it was received and kept since (the
    /// inbox's payload), exactly as [`PaymentGateway::verify_webhook`] would after checking
    /// the signature. Pure computation.
    ///
    /// # Errors
    /// [`WebhookRejection::Malformed`] or [`WebhookRejection::WrongMode`], as for a webhook.
    fn decode_stored_event(&self, payload: &[u8]) -> Result<WebhookEvent, WebhookRejection>;

    /// Verifies a webhook's signature over the raw body and turns it into a typed event.
    /// Pure computation against the adapter's secrets and clock: no network.
    ///
    /// # Errors
    /// A [`WebhookRejection`] naming what was wrong.
    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookEvent, WebhookRejection>;
}
