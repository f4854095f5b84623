//! Use-case tests over the in-memory store, the fake gateway and a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod busy;
mod checkout;
mod courses;
mod refunds;
mod status;
mod support;
mod webhooks;
