//! The background workers as `serve` runs them, on the API suite's wiring and manual clock:
//! the reconciler completes a purchase whose webhook never came and expires at Stripe a
//! session past its lifetime; the pruner drops payloads past their retention.

use crate::api::helpers::{spawn_app_with_workers, Gateway, Wiring};
use crate::operator::eventually;
use lms_app::{ReconcileRun, WorkerSettings};
use lms_domain::PurchaseStatus;
use lms_in_memory::{FakeEvent, FakeGateway};
use lms_ports::Clock;
use std::num::NonZeroU32;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_completes_unannounced_payments_and_expires_stale_sessions() {
    let app = spawn_app_with_workers(
        Wiring::PostgresStripe,
        WorkerSettings {
            reconcile_every: Some(TICK),
            reconcile: ReconcileRun {
                older_than: Duration::from_secs(30 * 60),
                // One at a time: a pass goes on while its batches come back full.
                batch: 1,
                rate: NonZeroU32::new(50).unwrap(),
            },
            ..WorkerSettings::off()
        },
    )
    .await;
    let Gateway::Stripe { sandbox, .. } = &app.gateway else {
        panic!("the Stripe wiring")
    };
    let instructor = app.user("instructor").await;
    let course = app.published_course(&instructor, 3000).await;
    // Alice pays; her webhook never comes (this sandbox delivers none). Bob never pays.
    let alice = app.user("student").await;
    let alice_checkout = app.checkout(&alice, &course).await;
    assert!(crate::api::stripe_events::pay(
        sandbox,
        &alice_checkout.session_id
    ));
    let bob = app.user("student").await;
    let bob_checkout = app.checkout(&bob, &course).await;

    // Not due yet: the reconciler leaves them alone.
    tokio::time::sleep(TICK * 5).await;
    for checkout in [&alice_checkout, &bob_checkout] {
        assert_eq!(
            app.purchase(&checkout.purchase_id).await.status(),
            PurchaseStatus::Pending
        );
    }

    // Half an hour later both are due: Alice's is completed from what Stripe says, Bob's
    // session is still open and before its expiry, so it stays pending.
    app.clock.advance(time::Duration::minutes(31));
    eventually("the reconciler completes Alice's purchase", || async {
        app.purchase(&alice_checkout.purchase_id).await.status() == PurchaseStatus::Completed
    })
    .await;
    let alice_purchase = app.purchase(&alice_checkout.purchase_id).await;
    assert!(alice_purchase.unlocks_course());
    tokio::time::sleep(TICK * 5).await;
    assert_eq!(
        app.purchase(&bob_checkout.purchase_id).await.status(),
        PurchaseStatus::Pending
    );
    assert_eq!(
        sandbox.session(&bob_checkout.session_id).unwrap()["status"],
        "open"
    );

    // A day later Bob's session is past the checkout lifetime on our clock while Stripe still
    // holds it open: the reconciler expires it there, so it can no longer be paid, and the
    // purchase fails (a new checkout is allowed).
    app.clock.advance(time::Duration::hours(25));
    eventually("the reconciler expires Bob's session", || async {
        app.purchase(&bob_checkout.purchase_id).await.status() == PurchaseStatus::Failed
    })
    .await;
    assert_eq!(
        sandbox.session(&bob_checkout.session_id).unwrap()["status"],
        "expired"
    );
    assert!(
        !crate::api::stripe_events::pay(sandbox, &bob_checkout.session_id),
        "an expired session cannot be paid"
    );
    // Alice's is settled: never asked about again.
    assert_eq!(
        app.purchase(&alice_checkout.purchase_id).await.status(),
        PurchaseStatus::Completed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pruner_drops_payloads_past_their_retention_and_keeps_the_rows() {
    let app = spawn_app_with_workers(
        Wiring::Memory,
        WorkerSettings {
            prune_every: Some(TICK),
            payload_retention: Duration::from_secs(24 * 60 * 60),
            ..WorkerSettings::off()
        },
    )
    .await;
    // An event of a type not acted on: recorded as ignored, with its payload.
    let (body, signature) = FakeGateway::signed_event(
        &FakeEvent::new("evt_customer_created", "customer.created").created_at(app.clock.now()),
    );
    let resp = app.webhook(body, Some(&signature)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let stored = || async {
        app.services
            .inbox
            .get_event("evt_customer_created")
            .await
            .unwrap()
            .unwrap()
    };
    tokio::time::sleep(TICK * 5).await;
    assert!(stored().await.payload.is_some(), "within its retention");

    app.clock.advance(time::Duration::days(2));
    eventually("the pruner drops the payload", || async {
        stored().await.payload.is_none()
    })
    .await;
    let record = stored().await;
    assert_eq!(record.outcome, lms_ports::EventOutcome::Ignored);
    assert_eq!(record.delivery_count, 1);
}
