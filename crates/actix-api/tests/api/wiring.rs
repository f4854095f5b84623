//! How each wiring builds its `Services`, and the per-test PostgreSQL database.

use crate::stripe_stand_in::{StripeStandIn, SECRET_KEY, WEBHOOK_SECRET};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lms_application::{Services, Settings};
use lms_in_memory::{FakeGateway, InMemoryStore, ManualClock};
use lms_password_argon2::Argon2Hasher;
use lms_postgres::{run_migrations, PgStore};
use lms_stripe_http::{RetryPolicy, StripeConfig, StripeGateway};
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
        Settings::default(),
    )
}

pub fn postgres_stripe_services(
    db: &TestDb,
    stand_in: &StripeStandIn,
    clock: &ManualClock,
) -> (Services, PgStore) {
    let store = PgStore::connect_lazy(&db.url, 5, Duration::from_secs(10));
    let config = StripeConfig::new(
        SECRET_KEY,
        WEBHOOK_SECRET,
        crate::helpers::SUCCESS_URL,
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
        Settings::default(),
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
        Settings::default(),
    );
    (services, store)
}

fn maintenance_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced (query string kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = base[scheme_end..]
        .find('/')
        .map_or(base, |slash| &base[..scheme_end + slash]);
    match query {
        Some(query) => format!("{host}/{database}?{query}"),
        None => format!("{host}/{database}"),
    }
}

/// A migrated database of its own for one test, dropped (`WITH (FORCE)`) with the guard.
pub struct TestDb {
    name: String,
    pub url: String,
}

impl TestDb {
    pub async fn migrated() -> Self {
        let name = format!("lms_api_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&maintenance_url())
            .await
            .expect("PostgreSQL must be reachable at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = with_database(&maintenance_url(), &name);
        run_migrations(&url).await.unwrap();
        Self { name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&maintenance_url()).await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
