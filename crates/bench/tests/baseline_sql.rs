//! `compare` measures the app against a baseline that sends the app's own statements
//! (`src/compare/sql.rs`). It checks at run time that the two still agree and refuses to run
//! otherwise; these tests make the same check part of the test suite, so a change to the
//! storage adapters' SQL that forgets the baseline fails here, not at the next benchmark run.
//!
//! Each test runs the app in this process against the bench's Stripe sandbox, records (through
//! diesel's instrumentation) the statements of one first delivery, one duplicate and one status
//! read, and compares them with the baseline's, statement by statement.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use lms_bench::compare::sql::Backend;
use lms_bench::compare::{self, check, setup};
use lms_bench::process::TempDir;
use lms_test_db::TestDatabase;

async fn assert_baseline_matches(database_url: &str, backend: Backend) {
    let sandbox = setup::sandbox().await.expect("sandbox");
    let observed = check::observe(database_url, &sandbox)
        .await
        .expect("recording the app's statements");
    assert!(
        !observed.first_delivery.is_empty()
            && !observed.duplicate.is_empty()
            && !observed.status_read.is_empty(),
        "nothing recorded:\n{}",
        check::listing(&observed)
    );
    let problems = check::differences(&observed, backend);
    assert!(
        problems.is_empty(),
        "the app's SQL no longer matches the baseline's (crates/bench/src/compare/sql.rs and, \
         for PostgreSQL, the binds in pg.rs):\n{}\n\nwhat the app ran:\n{}",
        problems.join("\n"),
        check::listing(&observed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_baseline_sends_the_apps_statements() {
    let db = TestDatabase::create("lms_bench_baseline_sql").await;
    // As `compare` connects: the baseline's client does not use TLS.
    let url = compare::with_param(db.url(), "sslmode=disable");
    assert_baseline_matches(&url, Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_baseline_sends_the_apps_statements() {
    let dir = TempDir::new("lms-bench-baseline-sql").expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("lms.db").display());
    assert_baseline_matches(&url, Backend::Sqlite).await;
}
