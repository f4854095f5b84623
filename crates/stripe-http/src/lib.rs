//! The Stripe adapter of the [`lms_ports::PaymentGateway`] port.
//!
//! - [`StripeGateway`] creates customers, creates, reads and expires hosted Checkout Sessions
//!   (with the [`CheckoutOptions`]: promotion codes, automatic tax, Adaptive Pricing), makes
//!   refunds and pages through the event history (`GET /v1/events`, for backfills) over Stripe's
//!   form-encoded HTTP API (reqwest + rustls), with bounded, jittered retries that reuse the
//!   same `Idempotency-Key`, and maps Stripe's error bodies to [`lms_ports::GatewayError`].
//! - Webhooks are verified by hand ([`signature`]): HMAC-SHA256 over `"<t>.<raw body>"`, any
//!   `v1` against any configured secret (rotation), constant-time comparison, a tolerance in both
//!   directions against the injected clock; only then is the JSON parsed ([`events`]). A stored
//!   or listed event is parsed the same way, without the signature.
//! - [`StripeConfig`] holds the settings; its secrets never appear in `Debug` output or errors.

pub mod config;
pub mod events;
pub mod gateway;
mod objects;
pub mod signature;

pub use config::{
    check_return_url, AdaptivePricing, CheckoutOptions, CheckoutSettingError, ConfigError, KeyMode,
    RetryPolicy, SecretKey, StripeConfig, TaxBehavior, WebhookSecret,
    CHECKOUT_SESSION_ID_PLACEHOLDER, DEFAULT_API_BASE, DEFAULT_API_VERSION,
    DEFAULT_WEBHOOK_TOLERANCE,
};
pub use events::{parse_event, relevant_event_types};
pub use gateway::{session_from_json, BuildError, StripeGateway};
pub use signature::{
    compute_signature, parse_signature_header, verify_signature, SignatureError, SignatureHeader,
};
