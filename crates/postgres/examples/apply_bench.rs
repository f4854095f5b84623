//! Throughput of `PgStore::apply_facts` (one webhook event = one transaction) against a real
//! PostgreSQL, sequentially and with N concurrent tasks.
//!
//! ```text
//! cargo run -p lms-postgres --example apply_bench --release
//! ```
//!
//! Uses a scratch database `lms_tdb_bench_..` (lms-test-db's [`TestDatabase`]: cloned from the
//! migrated template through `TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, and dropped at the end).
//! `BENCH_EVENTS` (default 2000) sets the events per scenario.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark whose set-up fails must stop loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lms_domain::{PaymentFact, Purchase, PurchaseId};
use lms_ports::{Applied, PurchaseRepo};
use lms_postgres::PgStore;
use lms_storage_contract as fixtures;
use lms_test_db::TestDatabase;
use uuid::Uuid;

async fn seed(store: &PgStore, count: usize) -> Vec<Purchase> {
    let (instructor, _) = fixtures::seed_people(store).await;
    let mut purchases = Vec::with_capacity(count);
    // One buyer per purchase would be realistic but slow to seed; one buyer, many courses.
    let buyer = fixtures::new_user(
        &format!("bench-{}@example.com", Uuid::new_v4().simple()),
        lms_domain::Role::Student,
    );
    lms_ports::UserRepo::create_user(store, &buyer)
        .await
        .unwrap();
    for i in 0..count {
        let course =
            fixtures::seed_course(store, &instructor, fixtures::at(i64::try_from(i).unwrap()))
                .await;
        let purchase = Purchase::begin(
            PurchaseId::from_uuid(Uuid::new_v4()),
            buyer.id,
            &course,
            fixtures::at(0),
        )
        .unwrap();
        store.create_purchase(&purchase).await.unwrap();
        purchases.push(purchase);
    }
    purchases
}

fn paid(purchase: &Purchase, event_id: String) -> lms_ports::FactUpdate {
    fixtures::update(
        purchase.id,
        vec![PaymentFact::PaymentSucceeded {
            amount: purchase.price,
            at: Some(fixtures::at(9)),
        }],
        Some(&event_id),
        fixtures::at(10),
    )
}

fn report(label: &str, events: usize, elapsed: Duration) {
    #[expect(
        clippy::cast_precision_loss,
        reason = "counts far below 2^52 convert exactly"
    )]
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<48} {events:>6} events in {:>8.3}s = {rate:>9.0} events/s",
        elapsed.as_secs_f64()
    );
}

async fn concurrent(
    store: &PgStore,
    updates: Vec<lms_ports::FactUpdate>,
    tasks: usize,
) -> (usize, Duration) {
    let updates = Arc::new(updates);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (store, updates, next) = (store.clone(), Arc::clone(&updates), Arc::clone(&next));
        set.spawn(async move {
            let mut applied = 0;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(update) = updates.get(i) else {
                    break applied;
                };
                if let Applied::Applied { .. } = store.apply_facts(update).await.unwrap() {
                    applied += 1;
                }
            }
        });
    }
    let mut applied = 0;
    while let Some(count) = set.join_next().await {
        applied += count.unwrap();
    }
    (applied, started.elapsed())
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let db = TestDatabase::migrated("lms_bench").await;
    let store = PgStore::connect(db.url(), 16).await.unwrap();

    println!("seeding {events} purchases in {} ...", db.name());
    let purchases = seed(&store, events).await;

    // 1. Sequential: each event completes a different purchase (INSERT event, SELECT, UPDATE).
    let updates: Vec<_> = purchases
        .iter()
        .enumerate()
        .map(|(i, p)| paid(p, format!("evt_seq_{i}")))
        .collect();
    let started = Instant::now();
    for update in &updates {
        store.apply_facts(update).await.unwrap();
    }
    report(
        "sequential, new event, state change",
        events,
        started.elapsed(),
    );

    // 2. Sequential redeliveries: duplicates stop after the insert.
    let started = Instant::now();
    for update in &updates {
        assert_eq!(
            store.apply_facts(update).await.unwrap(),
            Applied::DuplicateEvent
        );
    }
    report("sequential, duplicate event", events, started.elapsed());

    // 3. Concurrent new events over distinct purchases (no row contention).
    for tasks in [4, 16, 64] {
        let updates: Vec<_> = purchases
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut update = paid(p, format!("evt_conc_{tasks}_{i}"));
                update.facts = vec![PaymentFact::DisputeOpened];
                update
            })
            .collect();
        let (applied, elapsed) = concurrent(&store, updates, tasks).await;
        assert_eq!(applied, events);
        report(
            &format!("{tasks} tasks, new events, distinct purchases"),
            events,
            elapsed,
        );
    }

    // 4. Concurrent new events all on one purchase (serialised by the row lock).
    let hot = &purchases[0];
    let updates: Vec<_> = (0..events)
        .map(|i| paid(hot, format!("evt_hot_{i}")))
        .collect();
    let (applied, elapsed) = concurrent(&store, updates, 16).await;
    assert_eq!(applied, events);
    report("16 tasks, new events, one purchase", events, elapsed);

    // 5. One event delivered by many tasks at once: exactly one applies.
    let storm: Vec<_> = (0..events)
        .map(|_| paid(hot, "evt_storm".to_owned()))
        .collect();
    let (applied, elapsed) = concurrent(&store, storm, 16).await;
    assert_eq!(applied, 1);
    report("16 tasks, one event redelivered", events, elapsed);

    drop(store);
    drop(db);
}
