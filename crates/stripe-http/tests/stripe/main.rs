//! Integration tests of the Stripe adapter: one test binary, one module per concern.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failing unwrap is a failing test"
)]

mod events;
mod http;
mod properties;
mod signatures;
mod support;
