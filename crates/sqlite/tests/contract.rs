//! SqliteStore against the shared storage contract, twice: on a database file (WAL, a writer
//! and a pool of readers: the deployed shape) and in memory (one connection). Plus the
//! SQLite-specific checks: migrations up/down/up, connection settings, persistence across
//! reopening, event payloads, busy and unreachable databases.
//!
//! Each test gets a fresh directory under the system temp dir, removed when the test ends,
//! passed or failed.

#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use lms_domain::{PaymentFact, Role};
use lms_ports::{
    Applied, CourseRepo, DeploymentClaim, DeploymentRegistry, EventInbox, PaymentsMode,
    PurchaseRepo, RepoError, StorageHealth, UserRepo,
};
use lms_sqlite::{embedded_migration_versions, SqliteOptions, SqliteStore};
use lms_storage_contract as contract;
use uuid::Uuid;

/// A directory of its own for one test; removed with the guard.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("lms-sqlite-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn database(&self) -> PathBuf {
        self.0.join("lms.db")
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.database().display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            eprintln!("could not remove {}: {error}", self.0.display());
        }
    }
}

fn options() -> SqliteOptions {
    // A generous acquire timeout: the concurrency checks queue 50 writes on one writer.
    SqliteOptions {
        acquire_timeout: Duration::from_secs(30),
        ..SqliteOptions::default()
    }
}

async fn fresh_file_store() -> (SqliteStore, TempDir) {
    let dir = TempDir::new();
    let store = SqliteStore::open_with(&dir.url(), options()).await.unwrap();
    (store, dir)
}

async fn fresh_memory_store() -> (SqliteStore, ()) {
    (
        SqliteStore::open_with(":memory:", options()).await.unwrap(),
        (),
    )
}

mod on_a_file {
    use super::fresh_file_store;
    lms_storage_contract::storage_contract_tests!(fresh_file_store());
}

mod in_memory {
    use super::fresh_memory_store;
    lms_storage_contract::storage_contract_tests!(fresh_memory_store());
}

/// A plain diesel connection to the test's database file, as another process would have.
fn raw_connection(dir: &TempDir) -> SqliteConnection {
    let mut conn = SqliteConnection::establish(dir.database().to_str().unwrap()).unwrap();
    diesel::sql_query("PRAGMA busy_timeout = 5000")
        .execute(&mut conn)
        .unwrap();
    conn
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = Text)]
    value: String,
}

fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

fn text(conn: &mut SqliteConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<One>(conn)
        .unwrap()
        .value
}

const INBOX_DOWN: &str =
    include_str!("../../../migrations/sqlite/2026-12-06-000001_event_inbox/down.sql");
const COMMERCE_DOWN: &str =
    include_str!("../../../migrations/sqlite/2026-12-07-000001_commerce/down.sql");

/// Takes the newest migrations back by running `downs` (their down.sql, newest first) and
/// forgetting their versions, as if the file had been written before them; returns those
/// versions, oldest first (what migrating again applies).
fn revert_newest(conn: &mut SqliteConnection, downs: &[&str]) -> Vec<String> {
    let mut versions = embedded_migration_versions();
    let reverted = versions.split_off(versions.len() - downs.len());
    for (version, down) in reverted.iter().rev().zip(downs) {
        diesel::connection::SimpleConnection::batch_execute(conn, down).unwrap();
        diesel::sql_query(format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{version}'"
        ))
        .execute(conn)
        .unwrap();
    }
    reverted
}

/// Tables, indexes, views and triggers other than diesel's own bookkeeping table.
fn our_objects(conn: &mut SqliteConnection) -> i64 {
    count(
        conn,
        "SELECT count(*) AS n FROM sqlite_master \
         WHERE tbl_name <> '__diesel_schema_migrations' AND name NOT LIKE 'sqlite_%'",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_go_up_down_and_up_again() {
    let dir = TempDir::new();
    let store = SqliteStore::open_with(
        &dir.url(),
        SqliteOptions {
            migrate: false,
            ..options()
        },
    )
    .await
    .unwrap();
    let embedded = embedded_migration_versions();
    assert!(!embedded.is_empty());
    let mut conn = raw_connection(&dir);
    assert_eq!(
        our_objects(&mut conn),
        0,
        "open_with(migrate: false) migrates nothing"
    );

    assert_eq!(store.run_migrations().await.unwrap(), embedded);
    assert_eq!(
        store.run_migrations().await.unwrap(),
        Vec::<String>::new(),
        "already up to date"
    );
    let tables = count(
        &mut conn,
        "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' \
         AND name IN ('users', 'courses', 'purchases', 'webhook_events', 'deployment', 'audit_log')",
    );
    assert_eq!(tables, 6);
    assert!(our_objects(&mut conn) > 4, "tables and indexes");

    let mut reverted = store.revert_all_migrations().await.unwrap();
    reverted.reverse();
    assert_eq!(reverted, embedded);
    assert_eq!(
        our_objects(&mut conn),
        0,
        "down leaves no table or index of ours"
    );

    assert_eq!(store.run_migrations().await.unwrap(), embedded);
    let user = contract::new_user("again@example.com", Role::Student);
    store.create_user(&user).await.unwrap();
    assert_eq!(store.get_user(user.id).await.unwrap(), Some(user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_migrates_and_reopening_keeps_everything() {
    let dir = TempDir::new();
    // A directory that does not exist yet is created: nothing to set up on a fresh machine.
    let nested = dir.path().join("data").join("nested").join("lms.db");
    let url = format!("sqlite://{}", nested.display());
    let store = SqliteStore::open(&url).await.unwrap();
    let contract::Seeded {
        buyer,
        course,
        purchase,
        ..
    } = contract::seed_purchase(&store).await;
    drop(store);

    // A plain path to the same file this time.
    let reopened = SqliteStore::open(nested.to_str().unwrap()).await.unwrap();
    assert_eq!(reopened.get_user(buyer.id).await.unwrap(), Some(buyer));
    assert_eq!(reopened.get_course(course.id).await.unwrap(), Some(course));
    assert_eq!(
        reopened.get_purchase(purchase.id).await.unwrap(),
        Some(purchase)
    );
    assert_eq!(
        reopened.run_migrations().await.unwrap(),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_in_wal_mode_with_foreign_keys_enforced() {
    let (store, dir) = fresh_file_store().await;
    let mut conn = raw_connection(&dir);
    assert_eq!(
        text(
            &mut conn,
            "SELECT journal_mode AS value FROM pragma_journal_mode"
        ),
        "wal"
    );

    // foreign_keys = ON on the store's connections: a course of an unknown instructor is refused.
    let ghost = lms_domain::UserId::from_uuid(Uuid::new_v4());
    let course = contract::new_course(ghost, contract::usd(1999), true, contract::at(0));
    assert!(matches!(
        store.create_course(&course).await,
        Err(RepoError::Unexpected(_))
    ));
    assert_eq!(store.get_course(course.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_names_the_version_and_the_file() {
    let (store, dir) = fresh_file_store().await;
    let detail = store.ping().await.unwrap();
    assert!(detail.starts_with("sqlite 3."), "{detail}");
    assert!(
        detail.ends_with(&dir.database().display().to_string()),
        "{detail}"
    );
    // On a file, reads (the ping is one) go through the read pool, not the writer.
    let described = format!("{store:?}");
    assert!(described.contains("read_connections: 1"), "{described}");

    let memory = SqliteStore::open(":memory:").await.unwrap();
    let detail = memory.ping().await.unwrap();
    assert!(
        detail.starts_with("sqlite 3.") && detail.ends_with(", :memory:"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_in_memory_store_is_its_own_database() {
    let (first, ()) = fresh_memory_store().await;
    let (second, ()) = fresh_memory_store().await;
    let user = contract::new_user("solo@example.com", Role::Student);
    first.create_user(&user).await.unwrap();
    // Clones share the one connection, so they see the same database.
    assert_eq!(
        first.clone().get_user(user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(second.get_user(user.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_exact_instants_money_and_ids() {
    let (store, dir) = fresh_file_store().await;
    let mut user = contract::new_user("exact@example.com", Role::Student);
    // Nanosecond precision survives (PostgreSQL would keep microseconds).
    user.created_at =
        time::OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_789).unwrap();
    store.create_user(&user).await.unwrap();
    assert_eq!(store.get_user(user.id).await.unwrap(), Some(user.clone()));

    let mut conn = raw_connection(&dir);
    let row = text(
        &mut conn,
        "SELECT id || ' ' || created_at || ' ' || typeof(created_at) AS value FROM users",
    );
    assert_eq!(
        row,
        format!(
            "{} 1780000000123456789 integer",
            user.id.as_uuid().hyphenated()
        )
    );

    let course = contract::new_course(
        user.id,
        contract::money(123_456_789, "JPY"),
        true,
        contract::at(0),
    );
    store.create_course(&course).await.unwrap();
    let price = text(
        &mut conn,
        "SELECT price_cents || ' ' || currency || ' ' || typeof(price_cents) AS value FROM courses",
    );
    assert_eq!(price, "123456789 JPY integer");

    // Beyond what an i64 of nanoseconds holds: refused, nothing written.
    let mut far = contract::new_user("far@example.com", Role::Student);
    far.created_at = time::macros::datetime!(2300-01-01 0:00 UTC);
    assert!(matches!(
        store.create_user(&far).await,
        Err(RepoError::Unexpected(_))
    ));
    assert_eq!(store.get_user(far.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_kept_with_their_payload_and_a_known_fact_does_not_rewrite_the_row() {
    let (store, dir) = fresh_file_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    contract::record_payload_events(&store, purchase.id).await;
    let mut conn = raw_connection(&dir);
    let amount = text(
        &mut conn,
        "SELECT CAST(json_extract(payload, '$.data.amount') AS TEXT) AS value \
         FROM webhook_events WHERE event_id = 'evt_json'",
    );
    assert_eq!(amount, "1999");
    let raw = text(
        &mut conn,
        "SELECT json_extract(payload, '$') AS value FROM webhook_events WHERE event_id = 'evt_text'",
    );
    assert_eq!(raw, "not json");
    let event = text(
        &mut conn,
        "SELECT event_type || ' ' || purchase_id || ' ' || outcome || ' ' || delivery_count \
         || ' ' || typeof(first_received_at) AS value FROM webhook_events WHERE event_id = 'evt_json'",
    );
    assert_eq!(
        event,
        format!(
            "charge.refunded {} applied 1 integer",
            purchase.id.as_uuid().hyphenated()
        )
    );

    // The status column follows the facts; a redelivery or a known fact writes nothing to
    // the purchase (a trigger counts the updates).
    diesel::sql_query("CREATE TABLE purchase_updates (n integer NOT NULL)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("INSERT INTO purchase_updates VALUES (0)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "CREATE TRIGGER count_purchase_updates AFTER UPDATE ON purchases \
         BEGIN UPDATE purchase_updates SET n = n + 1; END",
    )
    .execute(&mut conn)
    .unwrap();
    let paid = contract::paid_in_full();
    let delivery = contract::update(purchase.id, paid.clone(), Some("evt_paid"), contract::at(3));
    assert!(matches!(
        store.apply_facts(&delivery).await.unwrap(),
        Applied::Applied { .. }
    ));
    assert_eq!(
        store.apply_facts(&delivery).await.unwrap(),
        Applied::DuplicateEvent
    );
    let known = contract::update(purchase.id, paid, Some("evt_again"), contract::at(4));
    assert!(matches!(
        store.apply_facts(&known).await.unwrap(),
        Applied::Applied { .. }
    ));
    assert_eq!(count(&mut conn, "SELECT n FROM purchase_updates"), 1);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM webhook_events"),
        4
    );
    // The redelivery was counted on its row.
    assert_eq!(
        count(
            &mut conn,
            "SELECT delivery_count AS n FROM webhook_events WHERE event_id = 'evt_paid'"
        ),
        2
    );
    let status = text(&mut conn, "SELECT status AS value FROM purchases");
    assert_eq!(status, "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_is_waited_for_then_unavailable() {
    let dir = TempDir::new();
    let impatient = SqliteStore::open_with(
        &dir.url(),
        SqliteOptions {
            busy_timeout: Duration::from_millis(200),
            ..options()
        },
    )
    .await
    .unwrap();
    let patient = SqliteStore::open_with(&dir.url(), options()).await.unwrap();
    let (instructor, _) = contract::seed_people(&impatient).await;

    // Another connection holds the write lock for longer than the busy timeout.
    let mut other = raw_connection(&dir);
    diesel::sql_query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .unwrap();
    let course = contract::new_course(instructor.id, contract::usd(1999), true, contract::at(0));
    assert!(matches!(
        impatient.create_course(&course).await,
        Err(RepoError::Unavailable(_))
    ));
    // Reads go on meanwhile (WAL).
    assert_eq!(
        impatient.get_user(instructor.id).await.unwrap(),
        Some(instructor)
    );

    // A lock released within the busy timeout (5 s) is waited for.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        diesel::sql_query("COMMIT").execute(&mut other).unwrap();
    });
    let started = std::time::Instant::now();
    patient.create_course(&course).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250), "it waited");
    release.join().unwrap();
    assert_eq!(impatient.get_course(course.id).await.unwrap(), Some(course));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_written_before_session_generations_start_at_zero_and_the_generation_cannot_wrap() {
    let (store, dir) = fresh_file_store().await;
    let mut conn = raw_connection(&dir);
    // A row as the first migration wrote it: no session_generation given.
    let id = Uuid::new_v4();
    diesel::sql_query(format!(
        "INSERT INTO users (id, name, email, role, password_hash, created_at) \
         VALUES ('{id}', 'Legacy', 'legacy@example.com', 'student', 'x', 0)"
    ))
    .execute(&mut conn)
    .unwrap();
    let id = lms_domain::UserId::from_uuid(id);
    assert_eq!(
        store
            .get_user(id)
            .await
            .unwrap()
            .unwrap()
            .session_generation,
        0
    );
    assert_eq!(store.end_sessions(id).await, Ok(1));

    let set =
        |value: i64| format!("UPDATE users SET session_generation = {value} WHERE id = '{id}'");
    // The column holds exactly the domain's u32.
    assert!(diesel::sql_query(set(-1)).execute(&mut conn).is_err());
    assert!(diesel::sql_query(set(4_294_967_296))
        .execute(&mut conn)
        .is_err());
    diesel::sql_query(set(4_294_967_295))
        .execute(&mut conn)
        .unwrap();
    assert!(matches!(
        store.end_sessions(id).await,
        Err(RepoError::Unexpected(_))
    ));
    let kept = store.get_user(id).await.unwrap().unwrap();
    assert_eq!(kept.session_generation, u32::MAX, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_table_holds_one_known_mode_with_its_time() {
    let (store, dir) = fresh_file_store().await;
    let before = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::Sandbox).await,
        Ok(DeploymentClaim::Recorded)
    );
    let mut conn = raw_connection(&dir);
    assert_eq!(
        text(&mut conn, "SELECT payments_mode AS value FROM deployment"),
        "sandbox"
    );
    let recorded_at = count(&mut conn, "SELECT recorded_at AS n FROM deployment");
    assert!(
        i128::from(recorded_at) >= before,
        "{recorded_at} < {before}"
    );
    for sql in [
        "INSERT INTO deployment (id, payments_mode, recorded_at) VALUES (2, 'sandbox', 0)",
        "UPDATE deployment SET payments_mode = 'paypal'",
    ] {
        assert!(diesel::sql_query(sql).execute(&mut conn).is_err(), "{sql}");
    }
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM deployment"), 1);
}

/// Two instances starting at once on one file, in different payments modes: one records its
/// mode, the other is refused with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_claiming_one_file_in_different_modes_record_one() {
    let dir = TempDir::new();
    let first = SqliteStore::open_with(&dir.url(), options()).await.unwrap();
    let second = SqliteStore::open_with(&dir.url(), options()).await.unwrap();
    let (a, b) = tokio::join!(
        first.claim_payments_mode(PaymentsMode::Sandbox),
        second.claim_payments_mode(PaymentsMode::StripeTest)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    match outcomes {
        [DeploymentClaim::Recorded, DeploymentClaim::Conflict { recorded }] => {
            assert_eq!(recorded, PaymentsMode::Sandbox);
        }
        [DeploymentClaim::Conflict { recorded }, DeploymentClaim::Recorded] => {
            assert_eq!(recorded, PaymentsMode::StripeTest);
        }
        other => panic!("expected one Recorded and one Conflict, got {other:?}"),
    }
}

/// Two stores on one file stand for two processes (say, two app instances): their writers
/// are not serialised by a shared mutex, only by SQLite's lock, which `BEGIN IMMEDIATE` takes
/// up front and `busy_timeout` waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_file_still_apply_an_event_once_and_let_one_checkout_win() {
    let dir = TempDir::new();
    let first = SqliteStore::open_with(&dir.url(), options()).await.unwrap();
    let second = SqliteStore::open_with(&dir.url(), options()).await.unwrap();
    let (instructor, buyer) = contract::seed_people(&first).await;
    let course = contract::seed_course(&first, &instructor, contract::at(0)).await;

    let mut checkouts = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let purchase = contract::begin(&buyer, &course, contract::at(1 + i));
        checkouts.spawn(async move { (purchase.id, store.create_purchase(&purchase).await) });
    }
    let mut winners = Vec::new();
    while let Some(result) = checkouts.join_next().await {
        match result.unwrap() {
            (id, Ok(())) => winners.push(id),
            (_, Err(RepoError::ActivePurchaseExists)) => {}
            (_, Err(error)) => panic!("unexpected error: {error}"),
        }
    }
    assert_eq!(winners.len(), 1);

    let delivery = contract::update(
        winners[0],
        contract::paid_in_full(),
        Some("evt_twice"),
        contract::at(30),
    );
    let mut deliveries = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let delivery = delivery.clone();
        deliveries.spawn(async move { store.apply_facts(&delivery).await });
    }
    let (mut applied, mut duplicates) = (0, 0);
    while let Some(result) = deliveries.join_next().await {
        match result.unwrap() {
            Ok(Applied::Applied { .. }) => applied += 1,
            Ok(Applied::DuplicateEvent) => duplicates += 1,
            Err(error) => panic!("a delivery failed: {error}"),
        }
    }
    assert_eq!((applied, duplicates), (1, 39));
    let saved = second.get_purchase(winners[0]).await.unwrap().unwrap();
    assert_eq!(saved.status(), lms_domain::PurchaseStatus::Completed);
    assert_eq!(saved.updated_at, contract::at(30));
}

/// A caller that stops waiting (a cancelled request) must not leave the writer inside an
/// open transaction: each write runs to its end on its blocking thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelled_writes_leave_the_writer_usable_and_every_event_whole() {
    let (store, dir) = fresh_file_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;

    let mut tasks = tokio::task::JoinSet::new();
    for cents in 1..=30_i64 {
        let store = store.clone();
        let delivery = contract::update(
            purchase.id,
            vec![PaymentFact::Refunded {
                total: contract::usd(cents),
            }],
            Some(&format!("evt_refund_{cents}")),
            contract::at(2),
        );
        let patience = Duration::from_micros(u64::try_from(cents).unwrap() * 150);
        tasks.spawn(
            async move { tokio::time::timeout(patience, store.apply_facts(&delivery)).await },
        );
    }
    while let Some(result) = tasks.join_next().await {
        if let Ok(applied) = result.unwrap() {
            applied.unwrap();
        }
    }
    // Let the abandoned writes finish, then write again.
    let last = contract::update(purchase.id, vec![], Some("evt_after"), contract::at(3));
    store.apply_facts(&last).await.unwrap();

    // Whatever was cancelled, each recorded event's refund is in the purchase and no other.
    let mut conn = raw_connection(&dir);
    let recorded = count(
        &mut conn,
        "SELECT coalesce(max(CAST(substr(event_id, 12) AS integer)), 0) AS n \
         FROM webhook_events WHERE event_id LIKE 'evt_refund_%'",
    );
    let saved = store.get_purchase(purchase.id).await.unwrap().unwrap();
    let refunded = saved.facts.refunded.map_or(0, |money| money.minor());
    assert_eq!(refunded, recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unopenable_database_is_unavailable() {
    // A directory cannot be created under a regular file.
    let dir = TempDir::new();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let below = format!("sqlite://{}/lms.db", file.display());
    assert!(matches!(
        SqliteStore::open(&below).await,
        Err(RepoError::Unavailable(_))
    ));
    // A directory where the file should be.
    assert!(matches!(
        SqliteStore::open(dir.path().to_str().unwrap()).await,
        Err(RepoError::Unavailable(_))
    ));
    assert!(matches!(
        SqliteStore::open("").await,
        Err(RepoError::Unexpected(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unlocked_listing_follows_the_facts_not_a_stale_status_column() {
    let (store, dir) = fresh_file_store().await;
    // By reference: dropping the directory guard would remove the database.
    let dir = &dir;
    contract::unlocked_listing_ignores_a_stale_stored_status(store, |statements| async move {
        let mut conn = raw_connection(dir);
        for sql in statements {
            assert_eq!(diesel::sql_query(sql).execute(&mut conn).unwrap(), 1);
        }
    })
    .await;
}

/// Events applied before the inbox existed stay recorded: as applied events delivered once,
/// received first and last when they were applied, with their mode and creation time read
/// from the payload (test mode and the receipt time when it does not say). Their redelivery
/// is still a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_applied_before_the_inbox_become_applied_inbox_rows() {
    let (store, dir) = fresh_file_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    // Back to the schema before the inbox, as if the file had been written then.
    let mut conn = raw_connection(&dir);
    let reverted = revert_newest(&mut conn, &[COMMERCE_DOWN, INBOX_DOWN]);
    let received = contract::at(5);
    let nanos = received.unix_timestamp_nanos();
    diesel::sql_query(format!(
        "INSERT INTO processed_events (event_id, event_type, purchase_id, received_at, payload) \
         VALUES ('evt_live', 'charge.succeeded', '{id}', {nanos}, \
                 '{{\"id\":\"evt_live\",\"livemode\":true,\"created\":1780000000}}'), \
                ('evt_text', 'charge.refunded', '{id}', {nanos}, '\"not json\"')",
        id = purchase.id.as_uuid().hyphenated()
    ))
    .execute(&mut conn)
    .unwrap();

    assert_eq!(store.run_migrations().await.unwrap(), reverted);

    let live = store.get_event("evt_live").await.unwrap().unwrap();
    assert_eq!(
        live,
        lms_ports::InboxRecord {
            event_id: "evt_live".to_owned(),
            event_type: "charge.succeeded".to_owned(),
            livemode: true,
            created: time::OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
            first_received_at: received,
            last_received_at: received,
            delivery_count: 1,
            outcome: lms_ports::EventOutcome::Applied,
            error: None,
            purchase_id: Some(purchase.id),
            payload: Some(r#"{"id":"evt_live","livemode":true,"created":1780000000}"#.to_owned()),
        }
    );
    let text = store.get_event("evt_text").await.unwrap().unwrap();
    assert_eq!(
        (text.livemode, text.created, text.payload.as_deref()),
        (false, received, Some("not json"))
    );

    let redelivery = contract::update(purchase.id, vec![], Some("evt_live"), contract::at(9));
    assert_eq!(
        store.apply_facts(&redelivery).await,
        Ok(Applied::DuplicateEvent)
    );
    let counted = store.get_event("evt_live").await.unwrap().unwrap();
    assert_eq!(
        (counted.delivery_count, counted.last_received_at),
        (2, contract::at(9))
    );
}

/// Purchases stored before bills were kept read back with the payment they had captured (the
/// price when paid in full, else the mismatched payment), the same status, and, when they paid
/// for their course, a sale computed as the domain computes it; the inbox keeps its links. The
/// down migration gives the old columns back, a payment made as billed counting as accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_stored_before_commerce_keep_their_payment_and_become_sales() {
    let (store, dir) = fresh_file_store().await;
    let shop = contract::backfill::seed_backfill_shop(&store).await;
    let mut conn = raw_connection(&dir);
    // As the store's writer runs migrations: the rebuilt table must satisfy the inbox's key.
    diesel::sql_query("PRAGMA foreign_keys = ON")
        .execute(&mut conn)
        .unwrap();
    let reverted = revert_newest(&mut conn, &[COMMERCE_DOWN]);

    let old = contract::backfill::old_purchases();
    let june_first = time::macros::datetime!(2026-06-01 00:00 UTC).unix_timestamp_nanos();
    let mut ids = Vec::new();
    for row in &old {
        let id = Uuid::new_v4();
        let money = |pair: Option<(i64, &str)>| {
            pair.map_or(("NULL".to_owned(), "NULL".to_owned()), |(cents, code)| {
                (cents.to_string(), format!("'{code}'"))
            })
        };
        let (mismatched_cents, mismatched_currency) = money(row.mismatched);
        let (refunded_cents, refunded_currency) = money(row.refunded);
        let (course_id, price) = if row.free_course {
            (shop.free.id, 0)
        } else {
            (shop.course.id, 2000)
        };
        let paid_at = row.paid_at.map_or("NULL".to_owned(), |at| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp_nanos()
                .to_string()
        });
        diesel::sql_query(format!(
            "INSERT INTO purchases (id, user_id, course_id, status, price_cents, currency, \
                 paid_in_full, mismatched_payment_cents, mismatched_payment_currency, \
                 attempt_failed, processing, async_payment_failed, checkout_expired, \
                 checkout_not_started, refunded_cents, refunded_currency, dispute_opened, \
                 dispute_won, dispute_lost, holds_active_slot, created_at, updated_at, paid_at, \
                 accepted_by_operator) \
             VALUES ('{id}', '{buyer}', '{course_id}', '{status}', {price}, 'USD', {paid}, \
                 {mismatched_cents}, {mismatched_currency}, 0, 0, 0, 0, 0, \
                 {refunded_cents}, {refunded_currency}, {lost}, 0, {lost}, 0, \
                 {june_first}, {june_first}, {paid_at}, {accepted})",
            buyer = shop.buyer.id,
            status = row.status,
            paid = i32::from(row.paid_in_full),
            lost = i32::from(row.dispute_lost),
            accepted = i32::from(row.accepted),
        ))
        .execute(&mut conn)
        .unwrap();
        ids.push(lms_domain::PurchaseId::from_uuid(id));
    }
    diesel::sql_query(format!(
        "INSERT INTO webhook_events (event_id, event_type, purchase_id, first_received_at, \
             payload, livemode, created, last_received_at, delivery_count, outcome) \
         VALUES ('evt_old', 'checkout.session.completed', '{}', {june_first}, '{{}}', 0, \
                 {june_first}, {june_first}, 1, 'applied')",
        ids[0]
    ))
    .execute(&mut conn)
    .unwrap();

    // Through the store: its writer migrates with foreign keys on.
    assert_eq!(store.run_migrations().await.unwrap(), reverted);

    contract::backfill::check_backfilled(&store, &shop, &old, &ids).await;

    // Down again, with a discounted purchase made since: the old columns come back, and the
    // discounted payment counts as accepted, so the old code still sees it paid.
    let discounted = contract::backfill::buy_discounted(&store, &shop).await;
    let downgraded = revert_newest(&mut conn, &[COMMERCE_DOWN]);
    let old_columns = |id: lms_domain::PurchaseId| {
        format!(
            "SELECT paid_in_full || ' ' || coalesce(mismatched_payment_cents, '-') \
                 || ' ' || accepted_by_operator AS value FROM purchases WHERE id = '{id}'"
        )
    };
    for (id, expected) in [
        (ids[0], "1 - 0"),
        (ids[2], "0 500 0"),
        (ids[3], "0 1500 1"),
        (ids[9], "0 - 0"),
        (discounted, "0 1500 1"),
    ] {
        assert_eq!(text(&mut conn, &old_columns(id)), expected, "{id}");
    }
    // The events kept their purchases through both rebuilds.
    assert_eq!(
        text(
            &mut conn,
            "SELECT purchase_id AS value FROM webhook_events WHERE event_id = 'evt_old'"
        ),
        ids[0].to_string()
    );
    assert_eq!(store.run_migrations().await.unwrap(), downgraded);
    let again = store.get_purchase(discounted).await.unwrap().unwrap();
    assert_eq!(again.status(), lms_domain::PurchaseStatus::Completed);
}
