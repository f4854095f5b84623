//! The hand-kept `src/schema.rs` says what the migrations create: a fresh database is migrated,
//! its catalogue rendered as `diesel print-schema` would, and compared with the file's `table!`
//! and `joinable!` blocks (what is and is not compared: `lms_test_db::schema`).

use lms_test_db::schema::{assert_same, postgres_canonical, postgres_catalogue, Schema};
use lms_test_db::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_what_the_migrations_create() {
    let db = TestDatabase::create("lms_schema").await;
    lms_postgres::run_migrations(db.url()).await.unwrap();
    let created = postgres_catalogue(&mut db.connection().await)
        .await
        .unwrap();
    let declared = Schema::parse(include_str!("../src/schema.rs"))
        .unwrap()
        .with_types(postgres_canonical);
    assert!(!declared.tables.is_empty(), "no table! block found");
    assert_same("crates/postgres/src/schema.rs", &declared, &created);
}
