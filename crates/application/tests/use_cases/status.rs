//! Purchase status, with and without a session sync.

use crate::support::{usd, World};
use lms_application::AppError;
use lms_domain::{PaymentFact, PurchaseStatus};
use lms_in_memory::GatewayCall;
use lms_ports::GatewayError;
use time::Duration;

#[tokio::test]
async fn never_purchased_shows_not_purchased() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(view.course.id, course.id);
    assert_eq!(view.purchase, None);
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("not purchased", false)
    );
}

#[tokio::test]
async fn hidden_courses_are_not_found_except_for_their_owner_and_admins() {
    let world = World::new();
    let (teacher, hidden, buyer) = world.shop(1999, false).await;
    assert_eq!(
        world
            .services
            .purchase_status(&buyer, hidden.id, None)
            .await,
        Err(AppError::NotFound("course"))
    );
    assert_eq!(
        world
            .services
            .purchase_status(&teacher, hidden.id, None)
            .await
            .unwrap()
            .wire_status(),
        "not purchased"
    );
    let admin = world.admin().await;
    assert!(world
        .services
        .purchase_status(&admin, hidden.id, None)
        .await
        .is_ok());
}

#[tokio::test]
async fn returning_before_the_webhook_syncs_the_session_and_completes() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.gateway.pay_session(&session.id, "pi_back");

    let without_sync = world.status_view(&buyer, &course, None).await;
    assert_eq!(without_sync.wire_status(), "pending");

    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("completed", true)
    );
    let stored = world.purchase(purchase.id).await;
    assert!(stored.unlocks_course());
    assert_eq!(stored.payment_intent_id.as_deref(), Some("pi_back"));
    assert_eq!(
        world.gateway.calls().last(),
        Some(&GatewayCall::RetrieveCheckoutSession(session.id.clone()))
    );

    // The webhook arriving later is applied and changes nothing more.
    world
        .event(
            "evt_late",
            &stored,
            &[PaymentFact::PaymentSucceeded { amount: usd(1999) }],
        )
        .await;
    assert_eq!(world.purchase(purchase.id).await.facts, stored.facts);
}

#[tokio::test]
async fn a_sync_that_finds_an_expired_session_shows_failed() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (_, session) = world.checkout(&buyer, &course).await;
    world.gateway.expire_session(&session.id);
    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(view.wire_status(), "failed");
}

#[tokio::test]
async fn a_gateway_failure_during_sync_falls_back_to_stored_state() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.gateway.pay_session(&session.id, "pi_x");
    world
        .gateway
        .fail_next(1, GatewayError::Unavailable("timeout".to_owned()));

    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("pending", false)
    );
    assert_eq!(world.purchase(purchase.id).await, purchase);
}

#[tokio::test]
async fn someone_elses_session_is_never_synced_or_shown() {
    let world = World::new();
    let (_, course, victim) = world.shop(1999, true).await;
    let (_, session) = world.checkout(&victim, &course).await;
    world.gateway.pay_session(&session.id, "pi_v");
    let calls = world.gateway.call_count();

    let snoop = world.student().await;
    let view = world.status_view(&snoop, &course, Some(&session.id)).await;
    assert_eq!(view.purchase, None);
    assert_eq!(view.wire_status(), "not purchased");
    assert_eq!(world.gateway.call_count(), calls);
}

#[tokio::test]
async fn the_unlocking_purchase_is_shown_over_a_newer_one() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (first, _) = world.checkout(&buyer, &course).await;
    world
        .event("evt_exp", &first, &[PaymentFact::CheckoutExpired])
        .await;
    world.clock.advance(Duration::minutes(1));
    let (second, _) = world.checkout(&buyer, &course).await;
    // Newest first: the pending second purchase is shown.
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(view.purchase.as_ref().map(|p| p.id), Some(second.id));
    assert_eq!(view.wire_status(), "pending");
    // A late payment of the first (failed) purchase completes it: that one is shown now.
    world
        .event(
            "evt_late_pay",
            &first,
            &[PaymentFact::PaymentSucceeded { amount: usd(1999) }],
        )
        .await;
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(view.purchase.as_ref().map(|p| p.id), Some(first.id));
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("completed", true)
    );
    assert_eq!(
        world.purchase(second.id).await.status(),
        PurchaseStatus::Pending
    );
}
