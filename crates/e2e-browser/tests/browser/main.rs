//! The whole purchase flow in a real headless Chromium: the storefront served by the app, the
//! Stripe sandbox's hosted checkout page, the signed webhook back to the app, and the success
//! page reading the purchase status. One app (SQLite in a temp dir, in-process sandbox) and
//! one browser per test.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver: run `scripts/ensure-chromium.sh`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failing unwrap is a failing test"
)]

mod commerce;
mod helpers;
mod operations;
mod purchase;
mod storefront;
