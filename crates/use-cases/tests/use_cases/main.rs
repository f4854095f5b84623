//! Use-case tests over the in-memory store, the fake gateway and a manual clock.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failing unwrap is a failing test"
)]

mod accounts;
mod busy;
mod checkout;
mod courses;
mod history;
mod inbox;
mod operations;
mod refunds;
mod status;
mod support;
mod webhooks;
