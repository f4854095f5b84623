//! Integration tests of the Stripe adapter: one test binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod events;
mod http;
mod properties;
mod signatures;
mod support;
