//! How each wiring builds its `Services`; the per-test PostgreSQL database is
//! `lms_postgres::testing::TestDatabase`.

use crate::api::stripe_stand_in::{StripeStandIn, SECRET_KEY, WEBHOOK_SECRET};
use lms_in_memory::{FakeGateway, InMemoryStore, ManualClock};
use lms_password_argon2::Argon2Hasher;
use lms_postgres::testing::TestDatabase;
use lms_postgres::PgStore;
use lms_stripe_http::{RetryPolicy, StripeConfig, StripeGateway};
use lms_use_cases::{Services, UseCaseSettings};
use std::sync::Arc;
use std::time::Duration;

pub fn memory_services(
    store: &InMemoryStore,
    gateway: &FakeGateway,
    clock: &ManualClock,
) -> Services {
    Services::with_store(
        store.clone(),
        Arc::new(gateway.clone()),
        Arc::new(Argon2Hasher::fast_for_tests().unwrap()),
        Arc::new(clock.clone()),
        UseCaseSettings::default(),
    )
}

pub fn postgres_stripe_services(
    db: &TestDatabase,
    stand_in: &StripeStandIn,
    clock: &ManualClock,
) -> (Services, PgStore) {
    let store = PgStore::connect_lazy(db.url(), 5, Duration::from_secs(10));
    let config = StripeConfig::new(
        SECRET_KEY,
        WEBHOOK_SECRET,
        crate::api::helpers::SUCCESS_URL,
        "http://localhost:5173/payment/cancel",
    )
    .unwrap()
    .with_api_base(&stand_in.uri())
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    // Scripted failures must reach the API, not be retried away.
    .with_retry(RetryPolicy::none());
    let gateway = StripeGateway::new(config).unwrap();
    let services = Services::with_store(
        store.clone(),
        Arc::new(gateway),
        Arc::new(Argon2Hasher::fast_for_tests().unwrap()),
        Arc::new(clock.clone()),
        UseCaseSettings::default(),
    );
    (services, store)
}

/// A PgStore whose database never answers (nothing listens on port 1).
pub fn dead_postgres_services(gateway: &FakeGateway, clock: &ManualClock) -> (Services, PgStore) {
    let store = PgStore::connect_lazy(
        "postgres://postgres@127.0.0.1:1/none",
        1,
        Duration::from_millis(500),
    );
    let services = Services::with_store(
        store.clone(),
        Arc::new(gateway.clone()),
        Arc::new(Argon2Hasher::fast_for_tests().unwrap()),
        Arc::new(clock.clone()),
        UseCaseSettings::default(),
    );
    (services, store)
}
