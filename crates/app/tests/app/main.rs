//! lms-app end to end: the library `Application` offline (SQLite + in-process Stripe sandbox)
//! and the binary as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chaos;
mod cli;
mod offline;
mod stripe_mode;
