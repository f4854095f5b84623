//! lms-app end to end: the REST contract on two wirings (`api`), the library `Application`
//! offline (SQLite + in-process Stripe sandbox) and the binary as an operator runs it.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failing unwrap is a failing test"
)]

mod api;
mod chaos;
mod cli;
mod instances;
mod logs;
mod metrics;
mod offline;
mod operator;
mod reconciler;
mod stripe_mode;
mod symbol_order;
