//! Every event type, duplicates, reorderings, locating, unmatched and rejected webhooks.

use crate::support::{usd, World};
use lms_domain::{
    Course, DisputeOutcome, PaymentFact, Purchase, PurchaseId, PurchaseStatus, ReviewReason, User,
};
use lms_in_memory::{FakeEvent, FakeGateway, GatewayCall};
use lms_ports::{GatewayError, WebhookRejection};
use lms_use_cases::{UseCaseError, WebhookOutcome};

const PRICE: i64 = 1999;

fn paid() -> PaymentFact {
    PaymentFact::PaymentSucceeded {
        amount: usd(PRICE),
        at: None,
    }
}

fn refunded(total: i64) -> PaymentFact {
    PaymentFact::Refunded { total: usd(total) }
}

async fn pending() -> (World, User, Course, Purchase) {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, _) = world.checkout(&buyer, &course).await;
    (world, buyer, course, purchase)
}

async fn status_after(
    world: &World,
    purchase: &Purchase,
    events: &[(&str, PaymentFact)],
) -> Purchase {
    for (id, fact) in events {
        world.event(id, purchase, &[*fact]).await;
    }
    world.purchase(purchase.id).await
}

#[tokio::test]
async fn a_successful_payment_completes_links_the_intent_and_records_the_event() {
    let (world, buyer, course, purchase) = pending().await;
    let session_id = purchase.checkout.clone().unwrap().id;
    let event = FakeEvent::new("evt_ok", "checkout.session.completed")
        .with_session(&session_id)
        .with_payment_intent("pi_ok")
        .with_fact(paid());

    let outcome = world.webhook(&event).await.unwrap();

    assert_eq!(
        outcome,
        WebhookOutcome::Applied {
            purchase_id: purchase.id,
            status: PurchaseStatus::Completed
        }
    );
    let stored = world.purchase(purchase.id).await;
    assert!(stored.unlocks_course());
    assert_eq!(stored.payment_intent_id.as_deref(), Some("pi_ok"));
    let recorded = world.store.recorded_events();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].event_id.as_str(), recorded[0].purchase_id),
        ("evt_ok", purchase.id)
    );
    assert_eq!(recorded[0].event_type, "checkout.session.completed");
    assert_eq!(
        recorded[0].payload.as_bytes(),
        FakeGateway::signed_event(&event).0.as_slice()
    );
    let unlocked = world.services.purchased_courses(&buyer).await.unwrap();
    assert_eq!(
        unlocked
            .iter()
            .map(|pc| (pc.purchase.id, pc.course.id))
            .collect::<Vec<_>>(),
        vec![(purchase.id, course.id)]
    );
}

#[tokio::test]
async fn a_failed_attempt_then_success_completes() {
    let (world, _, _, purchase) = pending().await;
    let after_failure = status_after(
        &world,
        &purchase,
        &[("evt_1", PaymentFact::PaymentAttemptFailed)],
    )
    .await;
    assert_eq!(after_failure.status(), PurchaseStatus::Pending);
    assert!(after_failure.holds_active_slot);
    let after_success = status_after(&world, &purchase, &[("evt_2", paid())]).await;
    assert_eq!(after_success.status(), PurchaseStatus::Completed);
}

#[tokio::test]
async fn a_delayed_payment_settles_or_fails() {
    let (world, _, _, purchase) = pending().await;
    let processing = status_after(
        &world,
        &purchase,
        &[("evt_1", PaymentFact::PaymentProcessing)],
    )
    .await;
    assert_eq!(processing.status(), PurchaseStatus::Pending);
    assert!(processing.awaits_settlement());
    let settled = status_after(&world, &purchase, &[("evt_2", paid())]).await;
    assert_eq!(settled.status(), PurchaseStatus::Completed);

    let (world, buyer, course, purchase) = pending().await;
    let failed = status_after(
        &world,
        &purchase,
        &[
            ("evt_1", PaymentFact::PaymentProcessing),
            ("evt_2", PaymentFact::AsyncPaymentFailed),
        ],
    )
    .await;
    assert_eq!(failed.status(), PurchaseStatus::Failed);
    assert!(!failed.holds_active_slot);
    // The slot is free again: a new checkout starts.
    let (again, _) = world.checkout(&buyer, &course).await;
    assert_ne!(again.id, purchase.id);
}

#[tokio::test]
async fn an_expired_session_fails_the_purchase_and_shows_failed() {
    let (world, buyer, course, purchase) = pending().await;
    let outcome = world
        .event("evt_exp", &purchase, &[PaymentFact::CheckoutExpired])
        .await;
    assert_eq!(
        outcome,
        WebhookOutcome::Applied {
            purchase_id: purchase.id,
            status: PurchaseStatus::Failed
        }
    );
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!((view.wire_status(), view.is_purchased()), ("failed", false));
    world.checkout(&buyer, &course).await;
}

#[tokio::test]
async fn full_and_partial_refunds() {
    let (world, buyer, course, purchase) = pending().await;
    let partial = status_after(
        &world,
        &purchase,
        &[("evt_1", paid()), ("evt_2", refunded(500))],
    )
    .await;
    assert_eq!(partial.status(), PurchaseStatus::Completed);
    assert_eq!(partial.refunded_amount(), usd(500));
    let full = status_after(&world, &purchase, &[("evt_3", refunded(PRICE))]).await;
    assert_eq!(full.status(), PurchaseStatus::Refunded);
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("refunded", false)
    );
    assert!(world
        .services
        .purchased_courses(&buyer)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn disputes_keep_access_while_open_or_won_and_lock_it_when_lost() {
    let (world, _, _, purchase) = pending().await;
    let opened = status_after(
        &world,
        &purchase,
        &[("evt_1", paid()), ("evt_2", PaymentFact::DisputeOpened)],
    )
    .await;
    assert_eq!(opened.status(), PurchaseStatus::Completed);
    let won = status_after(
        &world,
        &purchase,
        &[("evt_3", PaymentFact::DisputeClosed(DisputeOutcome::Won))],
    )
    .await;
    assert_eq!(won.status(), PurchaseStatus::Completed);

    let (world, _, _, purchase) = pending().await;
    let lost = status_after(
        &world,
        &purchase,
        &[
            ("evt_1", paid()),
            ("evt_2", PaymentFact::DisputeOpened),
            ("evt_3", PaymentFact::DisputeClosed(DisputeOutcome::Lost)),
        ],
    )
    .await;
    assert_eq!(lost.status(), PurchaseStatus::Refunded);
    assert!(!lost.unlocks_course());
}

#[tokio::test]
async fn a_mismatched_amount_is_held_as_pending_and_does_not_unlock() {
    let (world, buyer, course, purchase) = pending().await;
    let short = PaymentFact::PaymentSucceeded {
        amount: usd(999),
        at: None,
    };
    let outcome = world.event("evt_short", &purchase, &[short]).await;
    assert_eq!(
        outcome,
        WebhookOutcome::Held {
            purchase_id: purchase.id
        }
    );
    let held = world.purchase(purchase.id).await;
    assert_eq!(
        held.review_reason(),
        Some(ReviewReason::AmountMismatch {
            expected: usd(PRICE),
            received: usd(999)
        })
    );
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("pending", false)
    );
    assert_eq!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::PaymentInProgress)
    );
}

#[tokio::test]
async fn the_same_event_twice_has_one_effect() {
    let (world, _, _, purchase) = pending().await;
    let first = world.event("evt_dup", &purchase, &[paid()]).await;
    assert!(matches!(first, WebhookOutcome::Applied { .. }));
    let after_first = world.purchase(purchase.id).await;
    // Redelivery with the same id (even if the content were different) writes nothing.
    let second = world.event("evt_dup", &purchase, &[refunded(PRICE)]).await;
    assert_eq!(second, WebhookOutcome::Duplicate);
    assert_eq!(world.purchase(purchase.id).await, after_first);
    assert_eq!(world.store.recorded_event_ids(), vec!["evt_dup".to_owned()]);
}

#[tokio::test]
async fn reordered_events_reach_the_same_state() {
    // Refund before the payment it refunds.
    let (world, _, _, purchase) = pending().await;
    let early_refund = status_after(&world, &purchase, &[("evt_r", refunded(PRICE))]).await;
    assert_eq!(early_refund.status(), PurchaseStatus::Pending);
    let then_paid = status_after(&world, &purchase, &[("evt_p", paid())]).await;
    assert_eq!(then_paid.status(), PurchaseStatus::Refunded);

    // A stale failure after success changes nothing.
    let (world, _, _, purchase) = pending().await;
    let done = status_after(
        &world,
        &purchase,
        &[
            ("evt_p", paid()),
            ("evt_f", PaymentFact::PaymentAttemptFailed),
        ],
    )
    .await;
    assert_eq!(done.status(), PurchaseStatus::Completed);
    let expired_late = status_after(
        &world,
        &purchase,
        &[("evt_e", PaymentFact::CheckoutExpired)],
    )
    .await;
    assert_eq!(expired_late.status(), PurchaseStatus::Completed);
}

#[tokio::test]
async fn events_are_located_by_session_then_by_payment_intent() {
    let (world, _, _, purchase) = pending().await;
    let session_id = purchase.checkout.clone().unwrap().id;

    // Payment intent known only at the gateway (session paid, no webhook yet): located through it.
    world.gateway.pay_session(&session_id, "pi_gw");
    let charge = FakeEvent::new("evt_charge", "charge.succeeded")
        .with_payment_intent("pi_gw")
        .with_fact(paid());
    let outcome = world.webhook(&charge).await.unwrap();
    assert_eq!(
        outcome,
        WebhookOutcome::Applied {
            purchase_id: purchase.id,
            status: PurchaseStatus::Completed
        }
    );
    assert_eq!(
        world.gateway.calls().last(),
        Some(&GatewayCall::FindSessionByPaymentIntent("pi_gw".to_owned()))
    );
    assert_eq!(
        world
            .purchase(purchase.id)
            .await
            .payment_intent_id
            .as_deref(),
        Some("pi_gw")
    );

    // Now the intent is stored: no gateway call needed.
    let calls = world.gateway.call_count();
    let refund = FakeEvent::new("evt_refund", "charge.refunded")
        .with_payment_intent("pi_gw")
        .with_fact(refunded(100));
    world.webhook(&refund).await.unwrap();
    assert_eq!(world.gateway.call_count(), calls);
    assert_eq!(
        world.purchase(purchase.id).await.refunded_amount(),
        usd(100)
    );
}

#[tokio::test]
async fn events_about_no_purchase_of_ours_are_unmatched_and_not_recorded() {
    let (world, _, _, purchase) = pending().await;
    let stranger_session = FakeEvent::new("evt_a", "checkout.session.expired")
        .with_session("cs_not_ours")
        .with_fact(PaymentFact::CheckoutExpired);
    assert_eq!(
        world.webhook(&stranger_session).await,
        Ok(WebhookOutcome::Unmatched)
    );
    let stranger_intent = FakeEvent::new("evt_b", "charge.succeeded")
        .with_payment_intent("pi_not_ours")
        .with_fact(paid());
    assert_eq!(
        world.webhook(&stranger_intent).await,
        Ok(WebhookOutcome::Unmatched)
    );
    let unknown_id = FakeEvent::new("evt_c", "x")
        .for_purchase(PurchaseId::from_uuid(uuid::Uuid::new_v4()))
        .with_fact(paid());
    assert_eq!(
        world.webhook(&unknown_id).await,
        Ok(WebhookOutcome::Unmatched)
    );
    assert!(world.store.recorded_event_ids().is_empty());
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Pending
    );
}

#[tokio::test]
async fn rejected_webhooks_write_nothing() {
    let (world, _, _, purchase) = pending().await;
    let before = world.purchase(purchase.id).await;
    let event = FakeEvent::new("evt_x", "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_fact(paid());
    let (body, signature) = FakeGateway::signed_event(&event);

    assert_eq!(
        world.services.handle_webhook(&body, None).await,
        Err(UseCaseError::WebhookRejected(
            WebhookRejection::BadSignature
        ))
    );
    assert_eq!(
        world
            .services
            .handle_webhook(&body, Some("fake-v1=deadbeef"))
            .await,
        Err(UseCaseError::WebhookRejected(
            WebhookRejection::BadSignature
        ))
    );
    let mut tampered = body.clone();
    tampered.push(b'\n');
    assert_eq!(
        world
            .services
            .handle_webhook(&tampered, Some(&signature))
            .await,
        Err(UseCaseError::WebhookRejected(
            WebhookRejection::BadSignature
        ))
    );
    let garbage = b"{not json";
    assert!(matches!(
        world
            .services
            .handle_webhook(garbage, Some(&FakeGateway::signature_for(garbage)))
            .await,
        Err(UseCaseError::WebhookRejected(WebhookRejection::Malformed(
            _
        )))
    ));
    assert_eq!(world.purchase(purchase.id).await, before);
    assert!(world.store.recorded_event_ids().is_empty());
}

#[tokio::test]
async fn authentic_events_of_other_types_are_ignored() {
    let (world, _, _, purchase) = pending().await;
    let event = FakeEvent::new("evt_customer", "customer.created");
    assert_eq!(world.webhook(&event).await, Ok(WebhookOutcome::Ignored));
    assert!(world.store.recorded_event_ids().is_empty());
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Pending
    );
}

#[tokio::test]
async fn processing_failures_are_errors_so_the_gateway_retries() {
    let (world, _, _, purchase) = pending().await;
    world.store.set_unavailable(true);
    let event = FakeEvent::new("evt_retry", "x")
        .for_purchase(purchase.id)
        .with_fact(paid());
    assert!(matches!(
        world.webhook(&event).await,
        Err(UseCaseError::Unavailable(_))
    ));
    world.store.set_unavailable(false);
    assert!(world.store.recorded_event_ids().is_empty());
    // The retry applies.
    assert!(matches!(
        world.webhook(&event).await,
        Ok(WebhookOutcome::Applied { .. })
    ));

    // Locating through the gateway when it is down is an error too (retry later).
    let by_intent = FakeEvent::new("evt_pi", "charge.refunded")
        .with_payment_intent("pi_unknown")
        .with_fact(refunded(1));
    world
        .gateway
        .fail_next(1, GatewayError::unavailable("down"));
    assert_eq!(
        world.webhook(&by_intent).await,
        Err(UseCaseError::Gateway(GatewayError::unavailable("down")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_apply_once() {
    let (world, _, _, purchase) = pending().await;
    let event = FakeEvent::new("evt_storm", "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_fact(paid());
    let (body, signature) = FakeGateway::signed_event(&event);
    let mut handles = Vec::new();
    for _ in 0..50 {
        let services = world.services.clone();
        let (body, signature) = (body.clone(), signature.clone());
        handles.push(tokio::spawn(async move {
            services.handle_webhook(&body, Some(&signature)).await
        }));
    }
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap().unwrap());
    }
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, WebhookOutcome::Applied { .. }))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == WebhookOutcome::Duplicate)
        .count();
    assert_eq!((applied, duplicates), (1, 49));
    assert_eq!(
        world.store.recorded_event_ids(),
        vec!["evt_storm".to_owned()]
    );
    assert!(world.purchase(purchase.id).await.unlocks_course());
}

/// Every ordering of `items` (n! of them).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for (index, first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(index);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            all.push(tail);
        }
    }
    all
}

/// What a buyer and the store can observe of one purchase after a delivery (its ids aside).
/// Not `holds_active_slot`: by design it records history (once released, never taken back, so
/// a late payment cannot make two purchases hold the slot); the domain's property tests pin it.
#[derive(Debug, PartialEq)]
struct Observed {
    facts: lms_domain::PaymentFacts,
    status: PurchaseStatus,
    review: Option<ReviewReason>,
    refunded: lms_domain::Money,
    wire_status: &'static str,
    is_purchased: bool,
    listed: usize,
}

async fn observed(world: &World, buyer: &User, course: &Course, purchase: &Purchase) -> Observed {
    let view = world.status_view(buyer, course, None).await;
    let listed = world.services.purchased_courses(buyer).await.unwrap().len();
    let saved = world.purchase(purchase.id).await;
    Observed {
        status: saved.status(),
        review: saved.review_reason(),
        refunded: saved.refunded_amount(),
        facts: saved.facts,
        wire_status: view.wire_status(),
        is_purchased: view.is_purchased(),
        listed,
    }
}

/// Through the whole use case (signed webhook -> locate -> exactly-once store), every order of
/// every event of a scenario, each with redeliveries (one right away, one at the end), ends in
/// the same purchase, status, access and listing as the in-order delivery.
#[tokio::test]
async fn every_order_with_redeliveries_ends_in_the_same_state() {
    let scenarios: [(&str, Vec<PaymentFact>); 5] = [
        (
            "completed",
            vec![
                PaymentFact::PaymentAttemptFailed,
                paid(),
                refunded(500),
                PaymentFact::DisputeOpened,
            ],
        ),
        (
            "refunded",
            vec![
                paid(),
                refunded(500),
                refunded(PRICE),
                PaymentFact::PaymentAttemptFailed,
            ],
        ),
        (
            "failed",
            vec![
                PaymentFact::PaymentProcessing,
                PaymentFact::AsyncPaymentFailed,
                PaymentFact::CheckoutExpired,
                PaymentFact::PaymentAttemptFailed,
            ],
        ),
        (
            "refunded",
            vec![
                paid(),
                PaymentFact::DisputeOpened,
                PaymentFact::DisputeClosed(DisputeOutcome::Lost),
                refunded(500),
            ],
        ),
        (
            "pending",
            vec![
                PaymentFact::PaymentSucceeded {
                    amount: usd(5),
                    at: None,
                },
                PaymentFact::PaymentAttemptFailed,
                PaymentFact::CheckoutExpired,
                PaymentFact::DisputeClosed(DisputeOutcome::Won),
            ],
        ),
    ];
    for (expected_status, facts) in scenarios {
        let events: Vec<(String, PaymentFact)> = facts
            .iter()
            .enumerate()
            .map(|(i, fact)| (format!("evt_{i}"), *fact))
            .collect();

        let (world, buyer, course, purchase) = pending().await;
        for (id, fact) in &events {
            world.event(id, &purchase, &[*fact]).await;
        }
        let reference = observed(&world, &buyer, &course, &purchase).await;
        assert_eq!(reference.wire_status, expected_status, "{facts:?}");

        for (k, order) in permutations(&events).into_iter().enumerate() {
            let (world, buyer, course, purchase) = pending().await;
            let redelivered_now = k % order.len();
            for (position, (id, fact)) in order.iter().enumerate() {
                let outcome = world.event(id, &purchase, &[*fact]).await;
                assert!(
                    matches!(
                        outcome,
                        WebhookOutcome::Applied { .. } | WebhookOutcome::Held { .. }
                    ),
                    "{outcome:?}"
                );
                if position == redelivered_now {
                    let again = world.event(id, &purchase, &[*fact]).await;
                    assert_eq!(again, WebhookOutcome::Duplicate);
                }
            }
            let (last_id, last_fact) = &order[(k + 1) % order.len()];
            assert_eq!(
                world.event(last_id, &purchase, &[*last_fact]).await,
                WebhookOutcome::Duplicate
            );
            assert_eq!(
                observed(&world, &buyer, &course, &purchase).await,
                reference,
                "order {order:?}"
            );
            assert_eq!(world.store.recorded_event_ids().len(), events.len());
        }
    }
}
