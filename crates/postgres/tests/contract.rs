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
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use lms_domain::{PaymentFact, Purchase, Role};
use lms_ports::{
    Applied, DeploymentClaim, DeploymentRegistry, EventInbox, FactUpdate, PaymentsMode,
    PurchaseRepo, RepoError, StorageHealth, UserRepo,
};
use lms_postgres::{embedded_migration_versions, revert_all_migrations, run_migrations, PgStore};
use lms_storage_contract as contract;
use lms_test_db::{maintenance_url, TestDatabase};
use uuid::Uuid;

async fn fresh_store() -> (PgStore, TestDatabase) {
    let db = TestDatabase::migrated("lms_test").await;
    // A generous acquire timeout: the concurrency checks queue 50 tasks on 10 connections.
    let store = PgStore::connect_lazy(db.url(), 10, Duration::from_secs(30));
    (store, db)
}

lms_storage_contract::storage_contract_tests!(fresh_store());

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

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

async fn text(conn: &mut AsyncPgConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<One>(conn)
        .await
        .unwrap()
        .value
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
        Applied::Applied(_)
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
        Applied::Applied(_)
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
            "BEGIN",
            "INSERT INTO \"webhook_events\"",
            "SELECT \"purchases\".\"id\", \"purchases\".\"user_id\",",
            "UPDATE \"purchases\" SET",
            "<commit>",
            "COMMIT",
        ]
    );
    // One upsert records the event or counts a redelivery, and says which.
    assert!(
        sent[2].contains("ON CONFLICT (\"event_id\") DO UPDATE SET")
            && sent[2].contains("RETURNING \"webhook_events\".\"delivery_count\""),
        "{}",
        sent[2]
    );
    assert!(sent[3].contains("FOR NO KEY UPDATE"));

    // A redelivery stops after the upsert, which counted it.
    assert_eq!(
        store.apply_facts(&paid).await.unwrap(),
        Applied::DuplicateEvent
    );
    assert_eq!(
        shape(&next()),
        [
            "<begin>",
            "BEGIN",
            "INSERT INTO \"webhook_events\"",
            "<commit>",
            "COMMIT"
        ]
    );
    // So does a replay of the applied event, which changes nothing.
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
            "<begin>",
            "BEGIN",
            "INSERT INTO \"webhook_events\"",
            "<commit>",
            "COMMIT"
        ]
    );

    // An unknown purchase fails the insert's foreign key: rolled back, nothing else sent.
    let orphan = contract::update(
        lms_domain::PurchaseId::from_uuid(Uuid::new_v4()),
        vec![],
        Some("evt_orphan"),
        contract::at(3),
    );
    assert_eq!(store.apply_facts(&orphan).await, Err(RepoError::NotFound));
    assert_eq!(
        shape(&next()),
        [
            "<begin>",
            "BEGIN",
            "INSERT INTO \"webhook_events\"",
            "<rollback>",
            "ROLLBACK"
        ]
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
    let Applied::Applied(held) = store.apply_facts(&short).await.unwrap() else {
        panic!("expected Applied");
    };
    assert!(held.review_reason().is_some());
    assert_eq!(
        shape(&next()),
        [
            "<begin>",
            "BEGIN",
            "INSERT INTO \"webhook_events\"",
            "SELECT \"purchases\".\"id\", \"purchases\".\"user_id\",",
            "UPDATE \"purchases\" SET",
            "UPDATE \"webhook_events\" SET",
            "<commit>",
            "COMMIT",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_apply_facts_returns_is_what_is_stored_even_with_nanoseconds() {
    let (store, _db) = fresh_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;

    let at = contract::at(2) + time::Duration::nanoseconds(789);
    let update = contract::update(purchase.id, vec![PaymentFact::PaymentProcessing], None, at);
    let Applied::Applied(returned) = store.apply_facts(&update).await.unwrap() else {
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
             WHERE purchases.user_id = '{id}' AND purchases.paid_in_full = true \
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
        "SELECT id FROM purchases WHERE status = 'pending' AND mismatched_payment_cents IS NULL \
         AND created_at < now() AND (reconcile_after IS NULL OR reconcile_after <= now()) \
         ORDER BY created_at, id LIMIT 100 FOR UPDATE SKIP LOCKED"
            .to_owned(),
        // list_held.
        "SELECT * FROM purchases WHERE status = 'pending' \
         AND mismatched_payment_cents IS NOT NULL AND accepted_by_operator = false \
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
    let inbox = embedded_migration_versions().pop().unwrap();
    let mut conn = db.connection().await;
    conn.batch_execute(include_str!(
        "../../../migrations/postgres/2026-12-06-000001_event_inbox/down.sql"
    ))
    .await
    .unwrap();
    diesel::sql_query(format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{inbox}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
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

    assert_eq!(run_migrations(db.url()).await.unwrap(), [inbox]);

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
