//! PgStore with grouped commits ([`PgStore::with_group_commit`]): the whole storage contract,
//! and what grouping itself promises. Deliveries that queue behind a group share the next
//! group's transaction and are answered only after its commit; a failing event fails alone;
//! a group that cannot commit fails every event in it (nothing saved) and the next one starts
//! on a new connection.
//!
//! The checks make groups deterministic by holding purchase rows locked from connections of
//! their own: the group worker waits on them (seen in `pg_stat_activity`), and the deliveries
//! sent meanwhile queue (seen in [`PgStore::group_commit_backlog`]).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failing unwrap or panic is a failing test"
)]

use std::time::Duration;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use lms_domain::{PaymentFact, Purchase, PurchaseId, PurchaseStatus};
use lms_ports::{Applied, FactUpdate, PurchaseRepo, RepoError};
use lms_postgres::{PgConnectionOptions, PgStore};
use lms_storage_contract as contract;
use lms_test_db::TestDatabase;

mod common;
use common::{count, until_a_session_waits_for_a_lock, until_sessions_wait_for_locks};
use tokio::task::JoinHandle;

/// The storage contract's store: two lanes, as a deployment would run.
async fn grouped_store() -> (PgStore, TestDatabase) {
    grouped_store_of(2).await
}

/// One lane: the checks below decide which events make a group.
async fn one_lane_store() -> (PgStore, TestDatabase) {
    grouped_store_of(1).await
}

async fn grouped_store_of(lanes: usize) -> (PgStore, TestDatabase) {
    let db = TestDatabase::migrated("lms_test").await;
    let options = PgConnectionOptions {
        // The checks below hold rows locked while they look: longer than the default 5 s, so
        // that a slow machine cannot turn a wait into a lock timeout.
        lock_timeout: Duration::from_secs(60),
        ..PgConnectionOptions::default()
    };
    let store = PgStore::connect_lazy_with(db.url(), 10, Duration::from_secs(30), &options)
        .unwrap()
        .with_group_commit(lanes);
    (store, db)
}

lms_storage_contract::storage_contract_tests!(grouped_store());

/// A connection holding `purchase`'s row locked until [`release`].
async fn hold(db: &TestDatabase, purchase: &Purchase) -> AsyncPgConnection {
    let mut conn = db.connection().await;
    conn.batch_execute(&format!(
        "BEGIN; SELECT id FROM purchases WHERE id = '{}' FOR UPDATE",
        purchase.id.as_uuid()
    ))
    .await
    .unwrap();
    conn
}

async fn release(mut holder: AsyncPgConnection) {
    holder.batch_execute("COMMIT").await.unwrap();
}

/// Sends `update` from a task of its own and waits until it is queued behind the running
/// group (the backlog grows by one), so that the order of calls is the order in the queue.
async fn queue(store: &PgStore, update: FactUpdate) -> JoinHandle<Result<Applied, RepoError>> {
    let before = store.group_commit_backlog().unwrap();
    let sent = tokio::spawn({
        let store = store.clone();
        async move { store.apply_facts(&update).await }
    });
    for _ in 0..1000 {
        if store.group_commit_backlog().unwrap() > before {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the delivery was never queued");
}

fn paid(purchase: PurchaseId, event_id: &str) -> FactUpdate {
    contract::update(
        purchase,
        contract::paid_in_full(),
        Some(event_id),
        contract::at(2),
    )
}

async fn inbox_rows(conn: &mut AsyncPgConnection, event_ids: &[&str]) -> i64 {
    let listed = event_ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    count(
        conn,
        &format!("SELECT count(*) AS n FROM webhook_events WHERE event_id IN ({listed})"),
    )
    .await
}

fn paid_status(answer: &Result<Applied, RepoError>) -> PurchaseStatus {
    paid_status_if_applied(answer)
        .unwrap_or_else(|| panic!("expected the event applied, got {answer:?}"))
}

fn paid_status_if_applied(answer: &Result<Applied, RepoError>) -> Option<PurchaseStatus> {
    match answer {
        Ok(Applied::Applied { purchase, .. }) => Some(purchase.status()),
        _ => None,
    }
}

/// A group stopped on a held row, and the deliveries queued behind it: the gate's group is
/// `evt_gate` alone, waiting for `gate`'s row until [`Gate::open`].
struct Gate {
    holder: AsyncPgConnection,
    answer: JoinHandle<Result<Applied, RepoError>>,
}

impl Gate {
    async fn close(store: &PgStore, db: &TestDatabase, observer: &mut AsyncPgConnection) -> Self {
        let gate = contract::seed_purchase(store).await.purchase;
        let holder = hold(db, &gate).await;
        let answer = tokio::spawn({
            let store = store.clone();
            async move { store.apply_facts(&paid(gate.id, "evt_gate")).await }
        });
        until_a_session_waits_for_a_lock(observer).await;
        Self { holder, answer }
    }

    async fn open(self) {
        release(self.holder).await;
        assert_eq!(
            paid_status(&self.answer.await.unwrap()),
            PurchaseStatus::Completed
        );
    }
}

async fn answered(
    answers: Vec<JoinHandle<Result<Applied, RepoError>>>,
) -> Vec<Result<Applied, RepoError>> {
    let mut results = Vec::new();
    for answer in answers {
        results.push(answer.await.unwrap());
    }
    results
}

/// Each runtime (in the app, each HTTP worker) delivers through lanes of its own, driven on
/// its own thread: one event delivered from two runtimes at once is two groups on two
/// connections, as from two instances, and is still applied once. A runtime that has ended
/// leaves the store's other deliveries working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_runtime_delivers_through_lanes_of_its_own_and_an_event_from_two_is_applied_once() {
    let (store, db) = one_lane_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    let mut observer = db.connection().await;
    let holder = hold(&db, &purchase).await;
    let from_a_runtime_of_its_own = |update: FactUpdate| {
        let store = store.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move { store.apply_facts(&update).await })
        })
    };
    let deliveries = [
        from_a_runtime_of_its_own(paid(purchase.id, "evt_two_runtimes")),
        from_a_runtime_of_its_own(paid(purchase.id, "evt_two_runtimes")),
    ];
    // With one lane for the whole store, the second delivery would queue in memory behind
    // the first one's group; with a lane per runtime, one group waits for the held purchase
    // and the other for the first one's inbox row, each on its own connection.
    until_sessions_wait_for_locks(&mut observer, 2).await;
    release(holder).await;
    let answers = deliveries.map(|delivery| delivery.join().unwrap());
    let applied = answers
        .iter()
        .filter(|answer| paid_status_if_applied(answer) == Some(PurchaseStatus::Completed))
        .count();
    let duplicates = answers
        .iter()
        .filter(|answer| matches!(answer, Ok(Applied::DuplicateEvent)))
        .count();
    assert_eq!((applied, duplicates), (1, 1), "{answers:?}");
    assert_eq!(
        count(
            &mut observer,
            "SELECT delivery_count::bigint AS n FROM webhook_events WHERE event_id = 'evt_two_runtimes'"
        )
        .await,
        2
    );
    // Both runtimes have ended, their lanes with them.
    let other = contract::seed_purchase(&store).await.purchase;
    assert_eq!(
        paid_status(&store.apply_facts(&paid(other.id, "evt_after_them")).await),
        PurchaseStatus::Completed
    );
    assert_eq!(store.group_commit_backlog(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_behind_a_group_share_the_next_one_and_are_answered_after_its_commit() {
    let (store, db) = one_lane_store().await;
    let first = contract::seed_purchase(&store).await.purchase;
    let second = contract::seed_purchase(&store).await.purchase;
    let last = contract::seed_purchase(&store).await.purchase;
    let mut observer = db.connection().await;
    let last_holder = hold(&db, &last).await;
    let gate = Gate::close(&store, &db, &mut observer).await;

    // These queue meanwhile and make the second group, in this order: a payment, another, its
    // redelivery, a refund of the first purchase (a second event of one purchase in the
    // group), and the last, whose row is held.
    let refund = contract::update(
        first.id,
        vec![PaymentFact::Refunded {
            total: contract::usd(1999),
        }],
        Some("evt_refund"),
        contract::at(3),
    );
    let answers = vec![
        queue(&store, paid(first.id, "evt_first")).await,
        queue(&store, paid(second.id, "evt_second")).await,
        queue(&store, paid(second.id, "evt_second")).await,
        queue(&store, refund).await,
        queue(&store, paid(last.id, "evt_last")).await,
    ];
    assert_eq!(store.group_commit_backlog(), Some(5));

    gate.open().await;
    // The second group has sent everything up to the last event's statements, which wait.
    until_a_session_waits_for_a_lock(&mut observer).await;
    assert_eq!(
        store.group_commit_backlog(),
        Some(0),
        "one group took them all"
    );
    assert!(
        answers.iter().all(|answer| !answer.is_finished()),
        "no delivery of the group is answered before its commit"
    );
    assert_eq!(
        inbox_rows(&mut observer, &["evt_first", "evt_second", "evt_refund"]).await,
        0,
        "what the group wrote so far is not committed"
    );
    assert_eq!(inbox_rows(&mut observer, &["evt_gate"]).await, 1);

    release(last_holder).await;
    let results = answered(answers).await;
    assert_eq!(paid_status(&results[0]), PurchaseStatus::Completed);
    assert_eq!(paid_status(&results[1]), PurchaseStatus::Completed);
    assert_eq!(
        results[2],
        Ok(Applied::DuplicateEvent),
        "a redelivery in the same group sees the first delivery's row"
    );
    assert_eq!(
        paid_status(&results[3]),
        PurchaseStatus::Refunded,
        "the refund merged into what the payment before it in the group saved"
    );
    assert_eq!(paid_status(&results[4]), PurchaseStatus::Completed);

    assert_eq!(
        inbox_rows(
            &mut observer,
            &["evt_first", "evt_second", "evt_refund", "evt_last"]
        )
        .await,
        4
    );
    assert_eq!(
        count(
            &mut observer,
            "SELECT delivery_count::bigint AS n FROM webhook_events WHERE event_id = 'evt_second'",
        )
        .await,
        2
    );
    let saved = |purchase: &Purchase| {
        let store = store.clone();
        let id = purchase.id;
        async move { store.get_purchase(id).await.unwrap().unwrap() }
    };
    let refunded = saved(&first).await;
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
    assert_eq!(
        Ok(Applied::Applied {
            purchase: refunded.clone(),
            others: vec![]
        }),
        results[3]
    );
    assert_eq!(saved(&second).await.status(), PurchaseStatus::Completed);
    assert_eq!(saved(&last).await.status(), PurchaseStatus::Completed);
    assert_eq!(
        store.group_commit_retries(),
        Some(0),
        "the redelivery and the refund in the group took the three-round-trip path"
    );
}

/// A group takes purchase locks only once it holds all its inbox rows. Another instance that
/// has inserted one of the group's events and then locks the event's purchase (as one
/// transaction per event does) finds the purchase free, where a group that had locked it
/// through an earlier event of the purchase deadlocked with it (seen in the two-instance test:
/// PostgreSQL broke the cycle after a second, and the group ran again one event at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_holds_no_purchase_while_it_waits_for_another_transactions_inbox_row() {
    let (store, db) = one_lane_store().await;
    let purchase = contract::seed_purchase(&store).await.purchase;
    let id = purchase.id.as_uuid();
    let mut observer = db.connection().await;
    let gate = Gate::close(&store, &db, &mut observer).await;
    let mut other_instance = db.connection().await;
    other_instance
        .batch_execute(&format!(
            "BEGIN; INSERT INTO webhook_events (event_id, event_type, purchase_id, \
             first_received_at, livemode, created, last_received_at, delivery_count, outcome) \
             VALUES ('evt_b', 'payment_intent.succeeded', '{id}', now(), false, now(), now(), \
             1, 'applied')"
        ))
        .await
        .unwrap();
    let answers = vec![
        queue(&store, paid(purchase.id, "evt_a")).await,
        queue(&store, paid(purchase.id, "evt_b")).await,
    ];
    gate.open().await;
    // The group waits for evt_b's row, which the other instance inserted.
    until_a_session_waits_for_a_lock(&mut observer).await;
    other_instance
        .batch_execute(&format!(
            "SELECT id FROM purchases WHERE id = '{id}' FOR NO KEY UPDATE; ROLLBACK"
        ))
        .await
        .unwrap();

    let results = answered(answers).await;
    assert_eq!(paid_status(&results[0]), PurchaseStatus::Completed);
    assert_eq!(
        paid_status(&results[1]),
        PurchaseStatus::Completed,
        "evt_b, rolled back by the other instance, is the group's to apply"
    );
    assert_eq!(
        store.group_commit_retries(),
        Some(0),
        "no deadlock broke the group"
    );
    assert_eq!(inbox_rows(&mut observer, &["evt_a", "evt_b"]).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_delivery_fails_alone_and_the_rest_of_its_group_commits() {
    let (store, db) = one_lane_store().await;
    let first = contract::seed_purchase(&store).await.purchase;
    let second = contract::seed_purchase(&store).await.purchase;
    let unknown = PurchaseId::from_uuid(uuid::Uuid::new_v4());
    let mut observer = db.connection().await;
    let gate = Gate::close(&store, &db, &mut observer).await;
    let answers = vec![
        queue(&store, paid(first.id, "evt_first")).await,
        queue(&store, paid(unknown, "evt_unknown")).await,
        queue(&store, paid(second.id, "evt_second")).await,
    ];
    gate.open().await;
    let results = answered(answers).await;
    assert_eq!(paid_status(&results[0]), PurchaseStatus::Completed);
    assert_eq!(
        results[1],
        Err(RepoError::NotFound),
        "the unknown purchase fails alone"
    );
    assert_eq!(paid_status(&results[2]), PurchaseStatus::Completed);
    assert_eq!(
        inbox_rows(&mut observer, &["evt_first", "evt_second"]).await,
        2
    );
    assert_eq!(inbox_rows(&mut observer, &["evt_unknown"]).await, 0);
    assert_eq!(
        store.group_commit_retries(),
        Some(1),
        "the group ran again one event at a time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_payments_of_one_buyer_and_course_in_one_group_see_each_other() {
    let (store, db) = one_lane_store().await;
    let (instructor, buyer) = contract::seed_people(&store).await;
    let course = contract::seed_course(&store, &instructor, contract::at(0)).await;
    let paid_first = contract::begin(&buyer, &course, contract::at(1));
    let mut paid_twice = contract::begin(&buyer, &course, contract::at(1));
    paid_twice.holds_active_slot = false;
    store.create_purchase(&paid_first).await.unwrap();
    store.create_purchase(&paid_twice).await.unwrap();
    let mut observer = db.connection().await;
    let gate = Gate::close(&store, &db, &mut observer).await;
    let answers = vec![
        queue(&store, paid(paid_first.id, "evt_tab_a")).await,
        queue(&store, paid(paid_twice.id, "evt_tab_b")).await,
    ];
    gate.open().await;
    let results = answered(answers).await;
    let Ok(Applied::Applied { others, .. }) = &results[1] else {
        panic!("expected the second payment applied, got {:?}", results[1]);
    };
    assert!(
        others
            .iter()
            .any(|other| other.id == paid_first.id && other.unlocks_course()),
        "the second payment's update sees the first one paid, as in a transaction after it: {others:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_cannot_commit_fails_every_delivery_in_it_and_the_next_group_reconnects() {
    let (store, db) = one_lane_store().await;
    let applied_first = contract::seed_purchase(&store).await.purchase;
    let last = contract::seed_purchase(&store).await.purchase;
    let mut observer = db.connection().await;
    let last_holder = hold(&db, &last).await;
    let gate = Gate::close(&store, &db, &mut observer).await;
    let answers = [
        queue(&store, paid(applied_first.id, "evt_applied_first")).await,
        queue(&store, paid(last.id, "evt_last")).await,
    ];
    gate.open().await;
    until_a_session_waits_for_a_lock(&mut observer).await;

    // The group's session ends while it waits on the last row, after applying the first event.
    assert_eq!(
        count(
            &mut observer,
            "SELECT count(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock') AS ended",
        )
        .await,
        1
    );
    for answer in answers {
        match answer.await.unwrap() {
            Err(RepoError::Unavailable(_)) => {}
            other => panic!("expected a retryable failure, got {other:?}"),
        }
    }
    release(last_holder).await;
    assert_eq!(
        inbox_rows(&mut observer, &["evt_applied_first", "evt_last"]).await,
        0,
        "nothing of the failed group is saved"
    );
    let unchanged = store.get_purchase(applied_first.id).await.unwrap().unwrap();
    assert_eq!(unchanged.status(), PurchaseStatus::Pending);

    // Stripe's retry: a new group, on a new connection, applies it.
    let retried = store
        .apply_facts(&paid(applied_first.id, "evt_applied_first"))
        .await;
    assert_eq!(paid_status(&retried), PurchaseStatus::Completed);
    assert_eq!(inbox_rows(&mut observer, &["evt_applied_first"]).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_and_updates_without_an_event_keep_a_transaction_of_their_own() {
    let (store, db) = one_lane_store().await;
    let held = contract::seed_purchase(&store).await.purchase;
    let mut observer = db.connection().await;

    // The worker waits on a held row; a sync of another purchase does not queue behind it.
    let holder = hold(&db, &held).await;
    let gated = tokio::spawn({
        let store = store.clone();
        async move { store.apply_facts(&paid(held.id, "evt_held")).await }
    });
    until_a_session_waits_for_a_lock(&mut observer).await;
    let other = contract::seed_purchase(&store).await.purchase;
    let synced = store
        .apply_facts(&contract::update(
            other.id,
            contract::paid_in_full(),
            None,
            contract::at(2),
        ))
        .await;
    assert_eq!(paid_status(&synced), PurchaseStatus::Completed);
    let replayed = store
        .apply_facts(&FactUpdate {
            event: Some(contract::replayed("evt_replayed")),
            ..paid(other.id, "evt_replayed")
        })
        .await;
    assert_eq!(paid_status(&replayed), PurchaseStatus::Completed);
    assert!(!gated.is_finished());
    release(holder).await;
    assert_eq!(
        paid_status(&gated.await.unwrap()),
        PurchaseStatus::Completed
    );
}
