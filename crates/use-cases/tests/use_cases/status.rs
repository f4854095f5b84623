//! Purchase status, with and without a session sync.

use crate::support::{usd, WithdrawnCourse, World};
use lms_domain::{PaymentFact, PurchaseStatus};
use lms_in_memory::GatewayCall;
use lms_ports::GatewayError;
use lms_use_cases::{Resource, SessionClaim, UseCaseError, UseCaseSettings};
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
            .purchase_status(SessionClaim::current(&buyer), hidden.id, None)
            .await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    assert_eq!(
        world
            .services
            .purchase_status(SessionClaim::current(&teacher), hidden.id, None)
            .await
            .unwrap()
            .wire_status(),
        "not purchased"
    );
    let admin = world.admin().await;
    assert!(world
        .services
        .purchase_status(SessionClaim::current(&admin), hidden.id, None)
        .await
        .is_ok());
}

#[tokio::test]
async fn an_ended_session_or_a_vanished_account_is_refused_and_nothing_is_read_for_it() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (_, session) = world.checkout(&buyer, &course).await;
    let before_sign_out = SessionClaim::current(&buyer);
    world.services.sign_out(&buyer).await.unwrap();
    let calls = world.gateway.calls().len();
    // Even with the buyer's own session named: no gateway sync for an ended session.
    assert_eq!(
        world
            .services
            .purchase_status(before_sign_out, course.id, Some(&session.id))
            .await,
        Err(UseCaseError::SessionEnded)
    );
    assert_eq!(world.gateway.calls().len(), calls);
    let ghost = SessionClaim {
        user_id: lms_domain::UserId::from_uuid(uuid::Uuid::new_v4()),
        session_generation: 0,
    };
    assert_eq!(
        world.services.purchase_status(ghost, course.id, None).await,
        Err(UseCaseError::SessionEnded)
    );
    // The session after the sign-out is honoured.
    let signed_in_again = SessionClaim {
        session_generation: before_sign_out.session_generation + 1,
        ..before_sign_out
    };
    assert!(world
        .services
        .purchase_status(signed_in_again, course.id, None)
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
            &[PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: None,
            }],
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
        .fail_next(1, GatewayError::unavailable("timeout"));

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
            &[PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: None,
            }],
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

/// How often the gateway was asked to retrieve a checkout session.
fn retrievals(world: &World) -> usize {
    world
        .gateway
        .calls()
        .iter()
        .filter(|call| matches!(call, GatewayCall::RetrieveCheckoutSession(_)))
        .count()
}

#[tokio::test]
async fn a_decided_purchase_is_answered_without_asking_the_gateway() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let paid = world.paid_purchase(&buyer, &course, "pi_done").await;
    let session = paid.checkout.clone().unwrap();

    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(view.wire_status(), "completed");
    // Refunded: still decided, still no retrieval, however often and late it is asked.
    world
        .event(
            "evt_refund",
            &paid,
            &[PaymentFact::Refunded { total: usd(1999) }],
        )
        .await;
    for _ in 0..3 {
        world.clock.advance(Duration::minutes(1));
        let view = world.status_view(&buyer, &course, Some(&session.id)).await;
        assert_eq!(view.wire_status(), "refunded");
    }
    assert_eq!(retrievals(&world), 0);
}

#[tokio::test]
async fn a_failed_purchase_is_answered_without_asking_the_gateway() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world
        .event("evt_exp", &purchase, &[PaymentFact::CheckoutExpired])
        .await;
    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(view.wire_status(), "failed");
    assert_eq!(retrievals(&world), 0);
}

#[tokio::test]
async fn polls_within_the_interval_ask_the_gateway_once_and_again_after_it() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    assert_eq!(
        world.services.settings.gateway_sync_min_interval,
        Duration::seconds(5)
    );

    let first = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(first.wire_status(), "pending");
    assert_eq!(retrievals(&world), 1);

    // Paid meanwhile, but polled again inside the interval: answered from storage.
    world.gateway.pay_session(&session.id, "pi_poll");
    world.clock.advance(Duration::milliseconds(4_999));
    let second = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(second.wire_status(), "pending");
    assert_eq!(retrievals(&world), 1);
    assert_eq!(world.purchase(purchase.id).await, purchase);

    // Five seconds after the first retrieval: asked again, and the payment is found.
    world.clock.advance(Duration::milliseconds(1));
    let third = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(
        (third.wire_status(), third.is_purchased()),
        ("completed", true)
    );
    assert_eq!(retrievals(&world), 2);
    // Now decided: no more retrievals, even after the interval.
    world.clock.advance(Duration::minutes(1));
    world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(retrievals(&world), 2);
}

#[tokio::test]
async fn a_failed_retrieval_counts_so_a_down_gateway_is_not_asked_harder() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (_, session) = world.checkout(&buyer, &course).await;
    world
        .gateway
        .fail_next(1, GatewayError::unavailable("timeout"));
    world.status_view(&buyer, &course, Some(&session.id)).await;
    world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(retrievals(&world), 1);
}

#[tokio::test]
async fn the_interval_is_per_purchase_and_configurable() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (_, session) = world.checkout(&buyer, &course).await;
    let (_, other_course, other_buyer) = world.shop(2999, true).await;
    let (_, other_session) = world.checkout(&other_buyer, &other_course).await;

    world.status_view(&buyer, &course, Some(&session.id)).await;
    world
        .status_view(&other_buyer, &other_course, Some(&other_session.id))
        .await;
    assert_eq!(retrievals(&world), 2);

    // Zero: every poll asks.
    let mut eager = world.services.clone();
    eager.settings = UseCaseSettings::default()
        .with_gateway_sync_min_interval(Duration::ZERO)
        .unwrap();
    for _ in 0..2 {
        eager
            .purchase_status(SessionClaim::current(&buyer), course.id, Some(&session.id))
            .await
            .unwrap();
    }
    assert_eq!(retrievals(&world), 4);
}

#[test]
fn the_sync_interval_is_validated() {
    let field = |interval| match UseCaseSettings::default().with_gateway_sync_min_interval(interval)
    {
        Err(UseCaseError::Validation(fields)) => fields[0].field.clone(),
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert_eq!(field(Duration::seconds(-1)), "gatewaySyncMinInterval");
    assert_eq!(field(Duration::minutes(6)), "gatewaySyncMinInterval");
    let settings = UseCaseSettings::default()
        .with_gateway_sync_min_interval(Duration::minutes(5))
        .unwrap();
    assert_eq!(settings.gateway_sync_min_interval, Duration::minutes(5));
    assert_eq!(
        UseCaseSettings::new(Duration::hours(1))
            .unwrap()
            .gateway_sync_min_interval,
        UseCaseSettings::DEFAULT_GATEWAY_SYNC_MIN_INTERVAL
    );
}

/// The instructor withdraws the course from sale.

#[tokio::test]
async fn a_buyer_keeps_the_status_of_an_unpublished_course_others_do_not() {
    let world = World::new();
    let WithdrawnCourse {
        course,
        buyer,
        paid,
        refunded_buyer,
        stranger,
    } = world.withdrawn_course().await;

    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(view.course.id, course.id);
    assert!(!view.course.published);
    assert_eq!(view.purchase.as_ref().map(|p| p.id), Some(paid.id));
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("completed", true)
    );
    for other in [&refunded_buyer, &stranger] {
        assert_eq!(
            world
                .services
                .purchase_status(SessionClaim::current(other), course.id, None)
                .await,
            Err(UseCaseError::NotFound(Resource::Course))
        );
    }
    // A refunded buyer may not buy it again while it is withdrawn.
    assert_eq!(
        world
            .services
            .start_checkout(&refunded_buyer, course.id)
            .await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
}

#[tokio::test]
async fn a_payment_made_before_the_course_was_unpublished_is_found_by_the_sync() {
    let world = World::new();
    let (teacher, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.gateway.pay_session(&session.id, "pi_just_in_time");
    world.unpublish(&teacher, &course).await;

    // Without the sync the stored purchase is still pending: nothing unlocks the course yet.
    assert_eq!(
        world
            .services
            .purchase_status(SessionClaim::current(&buyer), course.id, None)
            .await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("completed", true)
    );
    assert!(world.purchase(purchase.id).await.unlocks_course());
}
