//! Ports: the traits the use cases need from the outside world, with their error contracts.
//!
//! Every adapter of a port must honour the contract written on the trait; the contract test
//! suites run the same checks against each adapter.
//!
//! # Errors
//!
//! The one error policy of the workspace; every layer follows it.
//!
//! **Each layer owns its errors, in its own words.** The ports own [`RepoError`],
//! [`GatewayError`], [`WebhookRejection`] and [`PasswordHashError`]; the use cases own
//! `UseCaseError`; the HTTP adapter owns `ApiError`. No adapter type (a diesel, reqwest or
//! serde error, a Stripe header field, a SQLSTATE) appears in a port's error, and a port's
//! error says what happened in the port's terms: a webhook has a *bad signature* or is
//! *stale*, never "no v1 in `Stripe-Signature`".
//!
//! **Business variants versus opaque ones.** A business variant names an outcome a caller
//! acts on (`Duplicate("email")`, `NotFound`, `Rejected`, `BadSignature`): it carries only
//! what the caller needs, and callers match on it. Everything else is one of two opaque
//! variants, told apart because callers answer them differently:
//! * `Unavailable`: **retryable**. The dependency could not be reached, timed out (a
//!   connection, pool, statement or lock timeout), was busy or rate-limited us; nothing was
//!   done, and the same call later may succeed (HTTP 503).
//! * `Unexpected`: not retryable unchanged: a bug, corrupt data, a broken invariant (HTTP
//!   500). `GatewayError::Misconfigured` is its sibling for a setup an operator must fix.
//!
//! Opaque variants **keep their cause**: `Unexpected(#[source] BoxError)`. A cause is the
//! underlying error itself (boxed), or a [`Context`] saying what was being done on top of
//! it, or, when there is no error value, a message boxed as one (`"text".into()`). A cause
//! is never flattened into a `String` (`format!("{e}")`, `e.to_string()`): the chain is
//! walked where it is logged. A variant's own message does not repeat its source's, so each
//! level of the chain reads once.
//!
//! **Translation happens at the adapter boundary, once.** An adapter maps its library's
//! errors to the port's: a unique violation to `Duplicate`, an HTTP 404 to `NotFound`,
//! timeouts and lost connections to `Unavailable`, anything else to `Unexpected` with the
//! library error as its source. The use cases map port errors to `UseCaseError` by moving
//! them (as the source of `Unavailable`/`Unexpected`, or inside `Gateway`), handling first
//! the business variants they expect.
//!
//! **Only the HTTP adapter knows status codes.** It maps `UseCaseError` to a status and the
//! JSON envelope. A 4xx says what was wrong in words safe to show; a 5xx body is always
//! generic, and the HTTP adapter logs the whole cause chain of each 5xx **once** (each level,
//! outermost first), at the one place the response is built. Nothing below it logs an error
//! it returns, beyond adapter-specific detail the port's error cannot carry.
//!
//! **Never a secret in an error.** No password, key, token, webhook secret or connection
//! string with credentials goes into an error or its cause chain: adapters scrub or withhold
//! what might echo one (an invalid database URL is reported without the URL; Stripe's messages
//! have the secret key removed), because the chain reaches the log verbatim.

pub mod clock;
pub mod error;
pub mod gateway;
pub mod password;
pub mod storage;

pub use clock::{Clock, SystemClock};
pub use error::{chain, chain_text, BoxError, Context};
pub use gateway::{
    CheckoutRequest, CustomerRequest, EventEnvelope, EventPage, EventQuery, GatewayError,
    GatewayEvent, GatewaySession, PaymentGateway, PurchaseLocator, RefundOutcome, RefundRequest,
    RefundStatus, SessionPaymentStatus, SessionStatus, WebhookEvent, WebhookRejection,
};
pub use password::{PasswordHashError, PasswordHasher};
pub use storage::{
    Applied, AuditAction, AuditActor, AuditEntry, AuditLog, BuyerView, CourseRepo, DeliveryKind,
    DeploymentClaim, DeploymentRegistry, EventDelivery, EventFilter, EventInbox, EventOutcome,
    FactUpdate, InboxRecord, Page, PageRequest, PaymentsMode, PurchaseRepo, PurchasedCourse,
    Recorded, RefundLease, RepoError, RevenueLine, RevenueQuery, StorageHealth, Unapplied,
    UserRepo,
};
