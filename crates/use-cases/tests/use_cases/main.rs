//! Use-case tests over the in-memory store, the fake gateway and a manual clock.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failing unwrap is a failing test"
)]

mod accounts;
mod busy;
mod checkout;
mod commerce;
mod courses;
mod history;
mod inbox;
mod operations;
mod refund_lease;
mod refunds;
mod revenue;
mod self_refund;
mod status;
mod support;
mod webhooks;
