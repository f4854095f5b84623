//! PgStore against the shared storage contract, plus the PostgreSQL-specific checks
//! (migrations, row-level "nothing written", error mapping when the database is away).
//!
//! Each test gets its own database `lms_tdb_test_..` (lms-test-db's [`TestDatabase`]: cloned
//! through `TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`, from a
//! template migrated once per migration set, and dropped `WITH (FORCE)` when the test ends,
//! passed or failed).

#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use lms_domain::{PaymentFact, Purchase, Role};
use lms_ports::{
    Applied, DeploymentClaim, DeploymentRegistry, EventInbox, FactUpdate, PaymentsMode,
    PurchaseRepo, RepoError, StorageHealth, UserRepo,
};
use lms_postgres::{
    embedded_migration_versions, revert_all_migrations, run_migrations, PgConnectionOptions,
    PgStore,
};
use lms_storage_contract as contract;
use lms_test_db::{maintenance_url, TestDatabase};

mod common;
use common::{count, text, until_a_session_waits_for_a_lock};
use uuid::Uuid;

async fn fresh_store() -> (PgStore, TestDatabase) {
    let db = TestDatabase::migrated("lms_test").await;
    // A generous acquire timeout: the concurrency checks queue 50 tasks on 10 connections.
    let store = PgStore::connect_lazy(db.url(), 10, Duration::from_secs(30));
    (store, db)
}

lms_storage_contract::storage_contract_tests!(fresh_store());

const INBOX_DOWN: &str =
    include_str!("../../../migrations/postgres/2026-12-06-000001_event_inbox/down.sql");
const COMMERCE_DOWN: &str =
    include_str!("../../../migrations/postgres/2026-12-07-000001_commerce/down.sql");

/// Takes the newest migrations back by running `downs` (their down.sql, newest first) and
/// forgetting their versions, as if the database had been written before them; returns those
/// versions, oldest first (what migrating again applies).
async fn revert_newest(conn: &mut AsyncPgConnection, downs: &[&str]) -> Vec<String> {
    let mut versions = embedded_migration_versions();
    let reverted = versions.split_off(versions.len() - downs.len());
    for (version, down) in reverted.iter().rev().zip(downs) {
        conn.batch_execute(down).await.unwrap();
        diesel::sql_query(format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{version}'"
        ))
        .execute(conn)
        .await
        .unwrap();
    }
    reverted
}

/// Relations and types in `public` other than diesel's own bookkeeping table.
async fn our_objects(conn: &mut AsyncPgConnection) -> i64 {
    count(
        conn,
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'public' AND c.relname NOT LIKE '\\_\\_diesel\\_schema\\_migrations%') \
              + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 WHERE n.nspname = 'public' AND t.typname NOT LIKE '%\\_\\_diesel\\_schema\\_migrations%') AS n",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDatabase::create("lms_test").await;
    let embedded = embedded_migration_versions();
    assert!(!embedded.is_empty());

    assert_eq!(run_migrations(db.url()).await.unwrap(), embedded);
    assert_eq!(
        run_migrations(db.url()).await.unwrap(),
        Vec::<String>::new(),
        "already up to date"
    );
    let mut conn = db.connection().await;
    let tables = count(
        &mut conn,
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' \
         AND tablename IN ('users', 'courses', 'purchases', 'webhook_events', 'deployment', \
                           'audit_log')",
    )
    .await;
    assert_eq!(tables, 6);
    assert!(
        our_objects(&mut conn).await > 4,
        "tables, indexes, row types"
    );

    let mut reverted = revert_all_migrations(db.url()).await.unwrap();
    reverted.reverse();
    assert_eq!(reverted, embedded);
    assert_eq!(
        our_objects(&mut conn).await,
        0,
        "down leaves no table, index or type of ours"
    );

    assert_eq!(run_migrations(db.url()).await.unwrap(), embedded);
    drop(conn);
    let store = PgStore::connect(db.url(), 2).await.unwrap();
    store
        .create_user(&contract::new_user("again@example.com", Role::Student))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_index_is_case_insensitive_even_for_rows_written_by_hand() {
    let (store, db) = fresh_store().await;
    let mut conn = db.connection().await;
    diesel::sql_query(
        "INSERT INTO users (id, name, email, role, password_hash, created_at) \
         VALUES (gen_random_uuid(), 'Legacy', 'Ada@Example.COM', 'student', 'x', now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let user = contract::new_user("ada@example.com", Role::Student);
    assert_eq!(
        store.create_user(&user).await,
        Err(RepoError::Duplicate("email"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_written_before_session_generations_start_at_zero_and_the_generation_cannot_wrap() {
    let (store, db) = fresh_store().await;
    let mut conn = db.connection().await;
    // A row as the first migration wrote it: no session_generation given.
    diesel::sql_query(
        "INSERT INTO users (id, name, email, role, password_hash, created_at) \
         VALUES (gen_random_uuid(), 'Legacy', 'legacy@example.com', 'student', 'x', now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let email = lms_domain::Email::parse("legacy@example.com").unwrap();
    let legacy = store.find_user_by_email(&email).await.unwrap().unwrap();
    assert_eq!(legacy.session_generation, 0);
    assert_eq!(store.end_sessions(legacy.id).await, Ok(1));

    let set = |value: i64| {
        format!(
            "UPDATE users SET session_generation = {value} WHERE id = '{}'",
            legacy.id
        )
    };
    // The column holds exactly the domain's u32.
    assert!(diesel::sql_query(set(-1)).execute(&mut conn).await.is_err());
    assert!(diesel::sql_query(set(4_294_967_296))
        .execute(&mut conn)
        .await
        .is_err());
    diesel::sql_query(set(4_294_967_295))
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        store.end_sessions(legacy.id).await,
        Err(RepoError::Unexpected(_))
    ));
    let kept = store.get_user(legacy.id).await.unwrap().unwrap();
    assert_eq!(kept.session_generation, u32::MAX, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_table_holds_one_known_mode_with_its_time() {
    let (store, db) = fresh_store().await;
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::StripeLive).await,
        Ok(DeploymentClaim::Recorded)
    );
    let mut conn = db.connection().await;
    assert_eq!(
        text(
            &mut conn,
            "SELECT payments_mode || ' ' || (recorded_at > now() - interval '1 minute') AS value \
             FROM deployment"
        )
        .await,
        "stripe_live true"
    );
    // No second row, and no mode the code does not know.
    for sql in [
        "INSERT INTO deployment (id, payments_mode) VALUES (2, 'sandbox')",
        "UPDATE deployment SET payments_mode = 'paypal'",
    ] {
        assert!(
            diesel::sql_query(sql).execute(&mut conn).await.is_err(),
            "{sql}"
        );
    }
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM deployment").await,
        1
    );
}

async fn row_version(conn: &mut AsyncPgConnection, purchase: &Purchase) -> String {
    text(
        conn,
        &format!(
            "SELECT xmin::text AS value FROM purchases WHERE id = '{}'",
            purchase.id
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_event_or_a_known_fact_does_not_touch_the_row() {
    let (store, db) = fresh_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    let mut conn = db.connection().await;

    let paid = contract::paid_in_full();
    let delivery = contract::update(purchase.id, paid.clone(), Some("evt_1"), contract::at(2));
    assert!(matches!(
        store.apply_facts(&delivery).await.unwrap(),
        Applied::Applied { .. }
    ));
    let version = row_version(&mut conn, &purchase).await;

    // Redelivery: no new row version (no UPDATE ran), no second event row.
    assert_eq!(
        store.apply_facts(&delivery).await.unwrap(),
        Applied::DuplicateEvent
    );
    assert_eq!(row_version(&mut conn, &purchase).await, version);
    // A new event that teaches nothing new records the event but does not rewrite the purchase.
    let known = contract::update(purchase.id, paid, Some("evt_2"), contract::at(3));
    assert!(matches!(
        store.apply_facts(&known).await.unwrap(),
        Applied::Applied { .. }
    ));
    assert_eq!(row_version(&mut conn, &purchase).await, version);

    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM webhook_events").await,
        2
    );
    // The redelivery was counted on its row.
    assert_eq!(
        count(
            &mut conn,
            "SELECT delivery_count::bigint AS n FROM webhook_events WHERE event_id = 'evt_1'"
        )
        .await,
        2
    );
    let status = text(
        &mut conn,
        &format!(
            "SELECT status AS value FROM purchases WHERE id = '{}'",
            purchase.id
        ),
    )
    .await;
    assert_eq!(status, "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_kept_with_their_payload() {
    let (store, db) = fresh_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    contract::record_payload_events(&store, purchase.id).await;
    let mut conn = db.connection().await;
    let amount = text(
        &mut conn,
        "SELECT (payload -> 'data' ->> 'amount') AS value FROM webhook_events WHERE event_id = 'evt_json'",
    )
    .await;
    assert_eq!(amount, "1999");
    // A json column, not jsonb: the body is kept byte for byte, key order included.
    let body = text(
        &mut conn,
        "SELECT payload::text AS value FROM webhook_events WHERE event_id = 'evt_json'",
    )
    .await;
    assert_eq!(body, r#"{"id":"evt_json","data":{"amount":1999}}"#);
    let raw = text(
        &mut conn,
        "SELECT (payload #>> '{}') AS value FROM webhook_events WHERE event_id = 'evt_text'",
    )
    .await;
    assert_eq!(raw, "not json");
    let event = text(
        &mut conn,
        "SELECT event_type || ' ' || purchase_id::text || ' ' || outcome || ' ' || delivery_count \
         AS value FROM webhook_events WHERE event_id = 'evt_json'",
    )
    .await;
    assert_eq!(event, format!("charge.refunded {} applied 1", purchase.id));
}

/// A port nothing listens on.
const CLOSED: &str = "postgres://postgres@127.0.0.1:1/postgres";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable() {
    assert!(matches!(
        PgStore::connect(CLOSED, 2).await,
        Err(RepoError::Unavailable(_))
    ));
    assert!(matches!(
        run_migrations(CLOSED).await,
        Err(RepoError::Unavailable(_))
    ));

    let store = PgStore::connect_lazy(CLOSED, 2, Duration::from_millis(500));
    assert!(matches!(store.ping().await, Err(RepoError::Unavailable(_))));
    assert!(matches!(
        store
            .get_user(lms_domain::UserId::from_uuid(Uuid::new_v4()))
            .await,
        Err(RepoError::Unavailable(_))
    ));
    let update = contract::update(
        lms_domain::PurchaseId::from_uuid(Uuid::new_v4()),
        vec![],
        Some("evt"),
        contract::at(0),
    );
    assert!(matches!(
        store.apply_facts(&update).await,
        Err(RepoError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_is_unavailable_not_unexpected() {
    let db = TestDatabase::migrated("lms_test").await;
    let store = PgStore::connect_lazy(db.url(), 2, Duration::from_secs(2));
    store.ping().await.unwrap();
    let mut admin = AsyncPgConnection::establish(&maintenance_url())
        .await
        .unwrap();
    diesel::sql_query(format!("DROP DATABASE {} WITH (FORCE)", db.name()))
        .execute(&mut admin)
        .await
        .unwrap();
    for _ in 0..2 {
        let result = store
            .get_user(lms_domain::UserId::from_uuid(Uuid::new_v4()))
            .await;
        assert!(
            matches!(result, Err(RepoError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert!(matches!(store.ping().await, Err(RepoError::Unavailable(_))));
}

/// Every statement and transaction boundary sent by a connection, by database URL. Installed
/// as diesel's default instrumentation, so it sees the pool's connections too.
mod statements {
    use diesel::connection::{set_default_instrumentation, Instrumentation, InstrumentationEvent};
    use std::sync::{Mutex, Once};

    static LOG: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

    #[derive(Default)]
    struct Recorder {
        url: String,
    }

    impl Instrumentation for Recorder {
        fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
            let entry = match event {
                InstrumentationEvent::StartEstablishConnection { url, .. } => {
                    self.url = url.to_owned();
                    return;
                }
                InstrumentationEvent::StartQuery { query, .. } => query.to_string(),
                InstrumentationEvent::BeginTransaction { .. } => "<begin>".to_owned(),
                InstrumentationEvent::CommitTransaction { .. } => "<commit>".to_owned(),
                InstrumentationEvent::RollbackTransaction { .. } => "<rollback>".to_owned(),
                _ => return,
            };
            LOG.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((self.url.clone(), entry));
        }
    }

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            set_default_instrumentation(|| Some(Box::new(Recorder::default()))).unwrap();
        });
    }

    /// Statements sent to `url` so far, without the pool's connection checks.
    pub fn sent_to(url: &str) -> Vec<String> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(to, _)| to == url)
            .map(|(_, statement)| statement.clone())
            .filter(|statement| !statement.starts_with("SELECT $1"))
            .collect()
    }
}

/// Sessions of the test's database idle inside a transaction: one a delivery left open.
async fn transactions_left_open(observer: &mut AsyncPgConnection) -> i64 {
    count(
        observer,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .await
}

/// A delivery whose request is cancelled inside its transaction (the client went away and the
/// server dropped the request while its lock waited) commits nothing, and its connection is
/// not handed out again with that transaction open: `BEGIN` is pipelined with the statements
/// after it, so the connection counts as in a transaction before `BEGIN` is even sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cancelled_mid_transaction_commits_nothing_and_leaves_none_open() {
    let db = TestDatabase::migrated("lms_test").await;
    let options = PgConnectionOptions {
        lock_timeout: Duration::from_secs(60),
        ..PgConnectionOptions::default()
    };
    // One connection: the delivery after the cancelled one gets that one back, or a new one.
    let store = PgStore::connect_lazy_with(db.url(), 1, Duration::from_secs(30), &options).unwrap();
    let purchase = contract::seed_purchase(&store).await.purchase;
    let mut holder = db.connection().await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM purchases WHERE id = '{}' FOR UPDATE",
            purchase.id.as_uuid()
        ))
        .await
        .unwrap();
    let paid = contract::update(
        purchase.id,
        contract::paid_in_full(),
        Some("evt_cancelled"),
        contract::at(2),
    );

    let mut observer = db.connection().await;
    tokio::select! {
        applied = store.apply_facts(&paid) => panic!("applied through a held lock: {applied:?}"),
        () = until_a_session_waits_for_a_lock(&mut observer) => {}
    }
    holder.batch_execute("COMMIT").await.unwrap();

    // Delivered again, it is a first delivery: the cancelled one left no inbox row, and no
    // open transaction for this one to run in (where its upsert would count a redelivery).
    let applied = store.apply_facts(&paid).await.unwrap();
    let Applied::Applied {
        purchase: paid_for, ..
    } = applied
    else {
        panic!("expected a first delivery, got {applied:?}");
    };
    assert_eq!(paid_for.status(), lms_domain::PurchaseStatus::Completed);
    let delivered = count(
        &mut observer,
        "SELECT delivery_count::bigint AS n FROM webhook_events WHERE event_id = 'evt_cancelled'",
    )
    .await;
    assert_eq!(delivered, 1);
    assert_eq!(transactions_left_open(&mut observer).await, 0);
}

/// Makes every `UPDATE` of `table` fail on the server, as a write the database refuses.
async fn refuse_updates_of(conn: &mut AsyncPgConnection, table: &str) {
    conn.batch_execute(&format!(
        "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
         CREATE TRIGGER refuse_update BEFORE UPDATE ON {table} \
           FOR EACH ROW EXECUTE FUNCTION refuse_update();"
    ))
    .await
    .unwrap();
}

async fn allow_updates_of(conn: &mut AsyncPgConnection, table: &str) {
    conn.batch_execute(&format!(
        "DROP TRIGGER refuse_update ON {table}; DROP FUNCTION refuse_update();"
    ))
    .await
    .unwrap();
}

/// A first delivery's writes go out with its `COMMIT` (one round trip). When the server
/// refuses a write, that `COMMIT` ends the transaction as a rollback: neither the event nor
/// anything of the purchase is kept, no transaction stays open, and the same delivery later
/// is a first delivery. Checked for each write: the purchase's update, and the outcome update
/// of an event whose purchase is held for review, which follows a purchase update that
/// succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_server_refuses_commits_nothing_of_the_delivery() {
    let (store, db) = fresh_store().await;
    let mut admin = db.connection().await;
    let paid = contract::seed_purchase(&store).await.purchase;
    let held = contract::seed_purchase(&store).await.purchase;
    let deliveries = [
        (
            "purchases",
            contract::update(
                paid.id,
                contract::paid_in_full(),
                Some("evt_refused_update"),
                contract::at(2),
            ),
        ),
        (
            "webhook_events",
            contract::update(
                held.id,
                vec![PaymentFact::PaymentSucceeded {
                    amount: contract::usd(1500),
                    at: None,
                }],
                Some("evt_refused_outcome"),
                contract::at(3),
            ),
        ),
    ];
    for (table, delivery) in &deliveries {
        let event_id = &delivery.event.as_ref().unwrap().envelope.id;
        let before = row_version(
            &mut admin,
            &store
                .get_purchase(delivery.purchase_id)
                .await
                .unwrap()
                .unwrap(),
        )
        .await;
        refuse_updates_of(&mut admin, table).await;

        let refused = store.apply_facts(delivery).await;
        let Err(RepoError::Unexpected(cause)) = &refused else {
            panic!("{table}: expected the server's refusal, got {refused:?}");
        };
        assert!(
            lms_ports::chain_text(&**cause).contains("refused by the test"),
            "{table}: {}",
            lms_ports::chain_text(&**cause)
        );
        let recorded = count(
            &mut admin,
            &format!("SELECT count(*) AS n FROM webhook_events WHERE event_id = '{event_id}'"),
        )
        .await;
        assert_eq!(recorded, 0, "{table}: the event was kept");
        let stored = store
            .get_purchase(delivery.purchase_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row_version(&mut admin, &stored).await, before, "{table}");
        assert_eq!(
            transactions_left_open(&mut admin).await,
            0,
            "{table}: a transaction was left open"
        );

        allow_updates_of(&mut admin, table).await;
        let applied = store.apply_facts(delivery).await.unwrap();
        assert!(
            matches!(applied, Applied::Applied { .. }),
            "{table}: delivered again, {applied:?}"
        );
        let delivered = count(
            &mut admin,
            &format!(
                "SELECT delivery_count::bigint AS n FROM webhook_events WHERE event_id = '{event_id}'"
            ),
        )
        .await;
        assert_eq!(delivered, 1, "{table}");
    }
    let completed = store.get_purchase(paid.id).await.unwrap().unwrap();
    assert_eq!(completed.status(), lms_domain::PurchaseStatus::Completed);
    let outcome = text(
        &mut admin,
        "SELECT outcome AS value FROM webhook_events WHERE event_id = 'evt_refused_outcome'",
    )
    .await;
    assert_eq!(outcome, "held");
}

/// What lets a delivery's `COMMIT` go out with its writes: every pooled connection has their
/// statements (and `BEGIN` and `COMMIT`) prepared before its first use, so each is sent on
/// its first poll, never after a preparation's round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_have_the_pipelined_statements_prepared_before_first_use() {
    let (store, _db) = fresh_store().await;
    let mut conn = store.pooled_connection().await.unwrap();
    let prepared = text(
        &mut conn,
        "SELECT string_agg(split_part(statement, ' ', 1) || ' ' || split_part(statement, ' ', 2), ', ' \
           ORDER BY statement) AS value \
         FROM pg_prepared_statements \
         WHERE NOT from_sql AND statement NOT LIKE '%pg_prepared_statements%'",
    )
    .await;
    assert_eq!(
        prepared,
        "BEGIN , COMMIT , SET LOCAL, UPDATE \"purchases\", UPDATE \"webhook_events\""
    );
}

/// A counted redelivery relaxes no commit but its own: its connection goes back to the pool
/// with `synchronous_commit` as the session began, so the first deliveries that use it next
/// still wait for the disk (`set_config(.., true)` in `CountRedelivery`; with `false` it would
/// stay off for the session).
#[tokio::test]
async fn a_counted_redelivery_leaves_its_connection_committing_to_disk() {
    let db = TestDatabase::migrated("lms_test").await;
    // One connection, on this test's one runtime: the count and the look below share it.
    let store = PgStore::connect_lazy(db.url(), 1, Duration::from_secs(30));
    let ignored = contract::unapplied(lms_ports::EventOutcome::Ignored, None, None);
    store
        .record_event(&contract::event("evt_again"), &ignored, contract::at(1))
        .await
        .unwrap();
    assert_eq!(
        store.count_redelivery("evt_again", contract::at(2)).await,
        Ok(true)
    );
    let mut conn = store.pooled_connection().await.unwrap();
    let setting = text(
        &mut conn,
        "SELECT current_setting('synchronous_commit') || ' ' || reset_val AS value \
         FROM pg_settings WHERE name = 'synchronous_commit'",
    )
    .await;
    let (now, session_default) = setting.split_once(' ').unwrap();
    assert_eq!(now, session_default, "synchronous_commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_an_event_is_one_transaction_of_few_statements() {
    statements::install();
    let (store, db) = fresh_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;

    let mut seen = statements::sent_to(db.url()).len();
    let mut next = || {
        let all = statements::sent_to(db.url());
        let new = all[seen..].to_vec();
        seen = all.len();
        new
    };
    let shape = |statements: &[String]| -> Vec<String> {
        statements
            .iter()
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect()
    };
    let paid = FactUpdate {
        payment_intent_id: Some("pi_counted".to_owned()),
        ..contract::update(
            purchase.id,
            contract::paid_in_full(),
            Some("evt_counted"),
            contract::at(2),
        )
    };
    store.apply_facts(&paid).await.unwrap();
    let sent = next();
    assert_eq!(
        shape(&sent),
        [
            "<begin>",
            "BEGIN -- binds:",
            "INSERT INTO \"webhook_events\"",
            "SELECT \"purchases\".\"id\", \"purchases\".\"user_id\",",
            "UPDATE \"purchases\" SET",
            "COMMIT -- binds:",
            "<commit>",
        ]
    );
    // The lock takes the buyer's purchases of the course, found from the purchase's id, if
    // the upsert sent before it left a first delivery.
    assert!(
        sent[3].contains("FROM \"purchases\" AS \"target\"")
            && sent[3].contains("EXISTS (SELECT")
            && sent[3].contains("\"webhook_events\".\"delivery_count\" = $"),
        "{}",
        sent[3]
    );
    // One upsert records the event or counts a redelivery, and says which.
    assert!(
        sent[2].contains("ON CONFLICT (\"event_id\") DO UPDATE SET")
            && sent[2].contains("RETURNING \"webhook_events\".\"delivery_count\""),
        "{}",
        sent[2]
    );
    assert!(sent[3].contains("FOR NO KEY UPDATE"));

    // A redelivery stops after the upsert, which counted it. The lock was sent with the
    // upsert, before its answer (pipelined: one round trip for both), so it is there too.
    let upsert_and_lock = [
        "<begin>",
        "BEGIN -- binds:",
        "INSERT INTO \"webhook_events\"",
        "SELECT \"purchases\".\"id\", \"purchases\".\"user_id\",",
    ];
    assert_eq!(
        store.apply_facts(&paid).await.unwrap(),
        Applied::DuplicateEvent
    );
    // Its commit, which only counted, does not wait for the disk.
    let commit_count_only = [
        "SET LOCAL synchronous_commit",
        "COMMIT -- binds:",
        "<commit>",
    ];
    assert_eq!(
        shape(&next()),
        [&upsert_and_lock[..], &commit_count_only[..]].concat()
    );
    // So does a replay of the applied event, which changes nothing; a replay sends its lock
    // only after the upsert said it applies.
    let replay = FactUpdate {
        event: Some(contract::replayed("evt_counted")),
        ..paid.clone()
    };
    assert_eq!(
        store.apply_facts(&replay).await.unwrap(),
        Applied::DuplicateEvent
    );
    assert_eq!(
        shape(&next()),
        [
            &[
                "<begin>",
                "BEGIN -- binds:",
                "INSERT INTO \"webhook_events\""
            ][..],
            &commit_count_only[..]
        ]
        .concat()
    );

    // An unknown purchase fails the insert's foreign key (the lock sent with it fails too):
    // rolled back, nothing else sent.
    let orphan = contract::update(
        lms_domain::PurchaseId::from_uuid(Uuid::new_v4()),
        vec![],
        Some("evt_orphan"),
        contract::at(3),
    );
    assert_eq!(store.apply_facts(&orphan).await, Err(RepoError::NotFound));
    assert_eq!(
        shape(&next()),
        [&upsert_and_lock[..], &["<rollback>", "ROLLBACK"]].concat()
    );

    // A payment that does not match the price leaves the purchase held: one more statement
    // writes the event's outcome, known only after the merge.
    let other = contract::seed_purchase(&store).await.purchase;
    next();
    let short = contract::update(
        other.id,
        vec![PaymentFact::PaymentSucceeded {
            amount: contract::usd(1500),
            at: None,
        }],
        Some("evt_short"),
        contract::at(4),
    );
    let Applied::Applied { purchase: held, .. } = store.apply_facts(&short).await.unwrap() else {
        panic!("expected Applied");
    };
    assert!(held.review_reason().is_some());
    assert_eq!(
        shape(&next()),
        [
            "<begin>",
            "BEGIN -- binds:",
            "INSERT INTO \"webhook_events\"",
            "SELECT \"purchases\".\"id\", \"purchases\".\"user_id\",",
            "UPDATE \"purchases\" SET",
            "UPDATE \"webhook_events\" SET",
            "COMMIT -- binds:",
            "<commit>",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_apply_facts_returns_is_what_is_stored_even_with_nanoseconds() {
    let (store, _db) = fresh_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;

    let at = contract::at(2) + time::Duration::nanoseconds(789);
    let update = contract::update(purchase.id, vec![PaymentFact::PaymentProcessing], None, at);
    let Applied::Applied {
        purchase: returned, ..
    } = store.apply_facts(&update).await.unwrap()
    else {
        panic!("expected Applied");
    };
    assert_eq!(returned.updated_at, contract::at(2));
    assert_eq!(
        store.get_purchase(purchase.id).await.unwrap(),
        Some(returned)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_purchased_courses_is_one_query_whatever_their_number() {
    statements::install();
    let (store, db) = fresh_store().await;
    let seeded = contract::seed_purchase(&store).await;
    // Five completed purchases, each of its own course: an N+1 listing would send six queries.
    for i in 0..5 {
        let course = contract::seed_course(&store, &seeded.instructor, contract::at(10 + i)).await;
        let purchase = contract::begin(&seeded.buyer, &course, contract::at(20 + i));
        store.create_purchase(&purchase).await.unwrap();
        let paid = contract::update(
            purchase.id,
            contract::paid_in_full(),
            None,
            contract::at(30 + i),
        );
        store.apply_facts(&paid).await.unwrap();
    }

    let before = statements::sent_to(db.url()).len();
    let listed = store.list_unlocked_for_user(seeded.buyer.id).await.unwrap();
    let sent = statements::sent_to(db.url())[before..].to_vec();

    assert_eq!(listed.len(), 5);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].starts_with("SELECT"), "{}", sent[0]);
    assert!(sent[0].contains("INNER JOIN \"courses\""), "{}", sent[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unlocked_listing_follows_the_facts_not_a_stale_status_column() {
    let (store, db) = fresh_store().await;
    // By reference: dropping the database guard would remove the database.
    let db = &db;
    contract::unlocked_listing_ignores_a_stale_stored_status(store, |statements| async move {
        let mut conn = db.connection().await;
        for sql in statements {
            assert_eq!(diesel::sql_query(sql).execute(&mut conn).await.unwrap(), 1);
        }
    })
    .await;
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// Every lookup the use cases make is served by an index: with sequential scans priced out,
/// the plan of each (in the shape the adapter sends it) never scans a whole table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lookup_is_served_by_an_index() {
    let db = TestDatabase::migrated("lms_test").await;
    let mut conn = db.connection().await;
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let id = Uuid::new_v4();
    let lookups = [
        format!("SELECT * FROM users WHERE id = '{id}'"),
        "SELECT * FROM users WHERE lower(email) = 'ada@example.com' LIMIT 1".to_owned(),
        format!("SELECT * FROM courses WHERE id = '{id}'"),
        "SELECT * FROM courses WHERE published = true \
         ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET 40"
            .to_owned(),
        format!("SELECT * FROM purchases WHERE id = '{id}'"),
        "SELECT * FROM purchases WHERE checkout_session_id = 'cs_1' LIMIT 1".to_owned(),
        "SELECT * FROM purchases WHERE payment_intent_id = 'pi_1' LIMIT 1".to_owned(),
        format!(
            "SELECT * FROM purchases WHERE user_id = '{id}' AND course_id = '{id}' \
             ORDER BY created_at DESC, id DESC"
        ),
        format!(
            "SELECT * FROM purchases INNER JOIN courses ON courses.id = purchases.course_id \
             WHERE purchases.user_id = '{id}' AND purchases.captured_cents IS NOT NULL \
             ORDER BY purchases.created_at DESC, purchases.id DESC"
        ),
        "SELECT * FROM webhook_events WHERE event_id = 'evt_1'".to_owned(),
        "SELECT event_id FROM webhook_events WHERE event_id = ANY('{evt_1,evt_2}')".to_owned(),
        // list_events, unfiltered, by outcome and since.
        "SELECT * FROM webhook_events ORDER BY first_received_at DESC, event_id DESC \
         LIMIT 20 OFFSET 40"
            .to_owned(),
        "SELECT * FROM webhook_events WHERE outcome = 'failed' \
         ORDER BY first_received_at DESC, event_id DESC LIMIT 20"
            .to_owned(),
        "SELECT * FROM webhook_events WHERE first_received_at >= now() \
         ORDER BY first_received_at DESC, event_id DESC LIMIT 20"
            .to_owned(),
        // The batch prune_payloads and claim_for_reconciliation select.
        "SELECT event_id FROM webhook_events WHERE payload IS NOT NULL AND first_received_at < now() \
         ORDER BY first_received_at, event_id LIMIT 100 FOR UPDATE SKIP LOCKED"
            .to_owned(),
        "SELECT id FROM purchases WHERE status = 'pending' AND captured_cents IS NULL \
         AND created_at < now() AND (reconcile_after IS NULL OR reconcile_after <= now()) \
         ORDER BY created_at, id LIMIT 100 FOR UPDATE SKIP LOCKED"
            .to_owned(),
        // list_held.
        "SELECT * FROM purchases WHERE status = 'pending' AND captured_cents IS NOT NULL \
         ORDER BY created_at, id LIMIT 20 OFFSET 40"
            .to_owned(),
        "SELECT * FROM audit_log ORDER BY at DESC, id DESC LIMIT 20 OFFSET 40".to_owned(),
    ];
    for lookup in lookups {
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN {lookup}"))
            .load::<PlanLine>(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.line)
            .collect();
        assert!(
            plan.iter().all(|line| !line.contains("Seq Scan")),
            "{lookup}\n{}",
            plan.join("\n")
        );
    }
}

/// Events applied before the inbox existed stay recorded: as applied events delivered once,
/// received first and last when they were applied, with their mode and creation time read
/// from the payload (test mode and the receipt time when it does not say). Their redelivery
/// is still a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_applied_before_the_inbox_become_applied_inbox_rows() {
    let (store, db) = fresh_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    // Back to the schema before the inbox, as if the database had been written then.
    let mut conn = db.connection().await;
    let reverted = revert_newest(&mut conn, &[COMMERCE_DOWN, INBOX_DOWN]).await;
    diesel::sql_query(format!(
        "INSERT INTO processed_events (event_id, event_type, purchase_id, received_at, payload) \
         VALUES ('evt_live', 'charge.succeeded', '{id}', '2026-06-01T10:00:00.5Z', \
                 '{{\"id\":\"evt_live\",\"livemode\":true,\"created\":1780000000}}'), \
                ('evt_text', 'charge.refunded', '{id}', '2026-06-01T11:00:00Z', '\"not json\"')",
        id = purchase.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    assert_eq!(run_migrations(db.url()).await.unwrap(), reverted);

    let received = time::macros::datetime!(2026-06-01 10:00:00.5 UTC);
    let live = store.get_event("evt_live").await.unwrap().unwrap();
    // jsonb had normalised the text: the same JSON, not the same bytes.
    let body: serde_json::Value = serde_json::from_str(live.payload.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"id": "evt_live", "livemode": true, "created": 1_780_000_000})
    );
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
            payload: live.payload.clone(),
        }
    );
    let text = store.get_event("evt_text").await.unwrap().unwrap();
    let received = time::macros::datetime!(2026-06-01 11:00 UTC);
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

/// A spread of sales for the planner: 200 instructors with 5 courses each, 40 purchases per
/// course made 6 hours apart from 2026-01-01 (10 days), every fourth one paid (its sale columns
/// set as the domain writes them for a payment at the price): one paid purchase per course and
/// day, at midnight. Analysed, so the plans are the ones the statistics choose.
const SALES_SPREAD: &str = "\
    INSERT INTO users (id, name, email, role, password_hash, created_at) \
    SELECT gen_random_uuid(), 'Teacher', 'teacher' || n || '@example.com', 'instructor', 'x', now() \
    FROM generate_series(1, 200) AS n; \
    INSERT INTO courses (id, instructor_id, title, price_cents, currency, published, created_at, \
                         updated_at) \
    SELECT gen_random_uuid(), users.id, 'Course ' || n, 2000, 'USD', true, now(), now() \
    FROM users CROSS JOIN generate_series(1, 5) AS n; \
    INSERT INTO purchases (id, user_id, course_id, status, price_cents, currency, attempt_failed, \
        processing, async_payment_failed, checkout_expired, checkout_not_started, dispute_opened, \
        dispute_won, dispute_lost, holds_active_slot, created_at, updated_at, accepted_by_operator, \
        captured_cents, captured_currency, sale_currency, sale_gross_cents, sale_discount_cents, \
        sale_tax_cents, sale_paid_cents, sale_refunded_cents, sale_disputes_lost_cents, \
        sale_net_cents, sold_at) \
    SELECT gen_random_uuid(), courses.instructor_id, courses.id, \
           CASE WHEN paid THEN 'completed' ELSE 'pending' END, 2000, 'USD', \
           false, false, false, false, false, false, false, false, false, made, made, false, \
           CASE WHEN paid THEN 2000 END, CASE WHEN paid THEN 'USD' END, \
           CASE WHEN paid THEN 'USD' END, CASE WHEN paid THEN 2000 END, CASE WHEN paid THEN 0 END, \
           CASE WHEN paid THEN 0 END, CASE WHEN paid THEN 2000 END, CASE WHEN paid THEN 0 END, \
           CASE WHEN paid THEN 0 END, CASE WHEN paid THEN 2000 END, CASE WHEN paid THEN made END \
    FROM courses CROSS JOIN LATERAL ( \
        SELECT n % 4 = 0 AS paid, timestamptz '2026-01-01 00:00Z' + n * interval '6 hours' AS made \
        FROM generate_series(1, 40) AS n) AS spread; \
    ANALYZE";

/// The revenue report is one statement, and the sales indexes serve it: the statement the
/// adapter sends (captured through diesel's instrumentation) is prepared as it is and explained
/// with real bounds over [`SALES_SPREAD`]. One instructor's report walks their courses and each
/// course's sales in the range (purchases_sold_course_idx); every instructor's report over a
/// short range reads the range (purchases_sold_at_idx).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revenue_report_is_one_statement_served_by_the_sales_indexes() {
    statements::install();
    let (store, db) = fresh_store().await;
    // The pool's connection made, and its statements prepared, before any is counted.
    store.ping().await.unwrap();
    let mut conn = db.connection().await;
    conn.batch_execute(SALES_SPREAD).await.unwrap();
    let teacher = text(
        &mut conn,
        "SELECT instructor_id::text AS value FROM courses ORDER BY instructor_id LIMIT 1",
    )
    .await;
    let teacher_id = lms_domain::UserId::from_uuid(Uuid::parse_str(&teacher).unwrap());
    let (day_from, day_before) = (
        time::macros::datetime!(2026-01-03 00:00 UTC),
        time::macros::datetime!(2026-01-04 00:00 UTC),
    );
    let (month_from, month_before) = (
        time::macros::datetime!(2026-01-01 00:00 UTC),
        time::macros::datetime!(2026-02-01 00:00 UTC),
    );

    // (query, parameter types, parameter values, the index, lines, sales per line)
    let cases = [
        // An instructor's month: their 5 courses' 10 sales each, found through each course
        // instead of among the month's 10,000 sales.
        (
            lms_ports::RevenueQuery {
                instructor: Some(teacher_id),
                sold_from: Some(month_from),
                sold_before: Some(month_before),
            },
            "(uuid, timestamptz, timestamptz)",
            format!("('{teacher}', '2026-01-01 00:00Z', '2026-02-01 00:00Z')"),
            "purchases_sold_course_idx",
            5,
            10,
        ),
        // Every course's day: one sale each, read from the day's range of sales.
        (
            lms_ports::RevenueQuery {
                instructor: None,
                sold_from: Some(day_from),
                sold_before: Some(day_before),
            },
            "(timestamptz, timestamptz)",
            "('2026-01-03 00:00Z', '2026-01-04 00:00Z')".to_owned(),
            "purchases_sold_at_idx",
            1000,
            1,
        ),
    ];
    for (i, (query, types, values, index, courses, sales)) in cases.into_iter().enumerate() {
        let seen = statements::sent_to(db.url()).len();
        let lines = store.revenue(&query).await.unwrap();
        let sent = statements::sent_to(db.url())[seen..].to_vec();
        assert_eq!(sent.len(), 1, "one round trip: {sent:#?}");
        assert_eq!(lines.len(), courses);
        assert!(lines.iter().all(
            |line| line.purchases == sales && line.net == 2000 * i64::try_from(sales).unwrap()
        ));

        let statement = sent[0].split(" -- binds:").next().unwrap();
        conn.batch_execute(&format!("PREPARE revenue_{i} {types} AS {statement}"))
            .await
            .unwrap();
        let plan: Vec<String> = diesel::sql_query(format!("EXPLAIN EXECUTE revenue_{i} {values}"))
            .load::<PlanLine>(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.line)
            .collect();
        let plan = plan.join("\n");
        eprintln!("{statement}\n{plan}");
        assert!(plan.contains(index), "{statement}\n{plan}");
        assert!(!plan.contains("Seq Scan on purchases"), "{plan}");
    }
}

/// Purchases stored before bills were kept read back with the payment they had captured (the
/// price when paid in full, else the mismatched payment), the same status, and, when they paid
/// for their course, a sale computed as the domain computes it; the inbox keeps its links. The
/// down migration gives the old columns back, a payment made as billed counting as accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_stored_before_commerce_keep_their_payment_and_become_sales() {
    let (store, db) = fresh_store().await;
    let shop = contract::backfill::seed_backfill_shop(&store).await;
    let mut conn = db.connection().await;
    let reverted = revert_newest(&mut conn, &[COMMERCE_DOWN]).await;

    let old = contract::backfill::old_purchases();
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
        let paid_at = row
            .paid_at
            .map_or("NULL".to_owned(), |at| format!("'{at}'"));
        diesel::sql_query(format!(
            "INSERT INTO purchases (id, user_id, course_id, status, price_cents, currency, \
                 paid_in_full, mismatched_payment_cents, mismatched_payment_currency, \
                 attempt_failed, processing, async_payment_failed, checkout_expired, \
                 checkout_not_started, refunded_cents, refunded_currency, dispute_opened, \
                 dispute_won, dispute_lost, holds_active_slot, created_at, updated_at, paid_at, \
                 accepted_by_operator) \
             VALUES ('{id}', '{buyer}', '{course_id}', '{status}', {price}, 'USD', {paid}, \
                 {mismatched_cents}, {mismatched_currency}, false, false, false, false, false, \
                 {refunded_cents}, {refunded_currency}, {lost}, false, {lost}, false, \
                 '2026-06-01T00:00:00Z', '2026-06-01T00:00:00Z', {paid_at}, {accepted})",
            buyer = shop.buyer.id,
            status = row.status,
            paid = row.paid_in_full,
            lost = row.dispute_lost,
            accepted = row.accepted,
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        ids.push(lms_domain::PurchaseId::from_uuid(id));
    }
    conn.batch_execute(&format!(
        "INSERT INTO webhook_events (event_id, event_type, purchase_id, first_received_at, \
             payload, livemode, created, last_received_at, delivery_count, outcome) \
         VALUES ('evt_old', 'checkout.session.completed', '{}', now(), '{{}}', false, now(), \
                 now(), 1, 'applied')",
        ids[0]
    ))
    .await
    .unwrap();

    assert_eq!(run_migrations(db.url()).await.unwrap(), reverted);

    contract::backfill::check_backfilled(&store, &shop, &old, &ids).await;

    // Down again, with a discounted purchase made since: the old columns come back, and the
    // discounted payment counts as accepted, so the old code still sees it paid.
    let discounted = contract::backfill::buy_discounted(&store, &shop).await;
    let downgraded = revert_newest(&mut conn, &[COMMERCE_DOWN]).await;
    let old_columns = |id: lms_domain::PurchaseId| {
        format!(
            "SELECT paid_in_full::text || ' ' || coalesce(mismatched_payment_cents::text, '-') \
                 || ' ' || accepted_by_operator::text AS value FROM purchases WHERE id = '{id}'"
        )
    };
    for (id, expected) in [
        (ids[0], "true - false"),
        (ids[2], "false 500 false"),
        (ids[3], "false 1500 true"),
        (ids[9], "false - false"),
        (discounted, "false 1500 true"),
    ] {
        assert_eq!(text(&mut conn, &old_columns(id)).await, expected, "{id}");
    }
    assert_eq!(run_migrations(db.url()).await.unwrap(), downgraded);
    let again = store.get_purchase(discounted).await.unwrap().unwrap();
    assert_eq!(again.status(), lms_domain::PurchaseStatus::Completed);
}
