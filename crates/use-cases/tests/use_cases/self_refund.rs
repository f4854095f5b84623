//! The buyer's own refund request, inside and outside the window.

use crate::support::{usd, usd_bill, World};
use lms_domain::{PaymentFact, PurchaseId, PurchaseStatus};
use lms_in_memory::FakeEvent;
use lms_ports::{AuditAction, AuditActor, Clock, PageRequest};
use lms_use_cases::{FieldError, Operator, Resource, UseCaseError, UseCaseSettings};
use time::Duration;

const PRICE: i64 = 1999;
const WINDOW_DAYS: i64 = 14;

fn with_window() -> World {
    World::with_settings(
        UseCaseSettings::default()
            .with_self_refund_window(Some(Duration::days(WINDOW_DAYS)))
            .unwrap(),
    )
}

#[tokio::test]
async fn inside_the_window_the_buyer_gets_everything_back_and_it_is_audited() {
    let world = with_window();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_self").await;
    let paid_at = purchase.paid_at();
    assert_eq!(
        world.services.self_refund_until(&purchase),
        Some(paid_at + Duration::days(WINDOW_DAYS))
    );
    // The last moment of the window still counts.
    world.clock.set(paid_at + Duration::days(WINDOW_DAYS));

    let refunded = world
        .services
        .request_refund(
            &buyer,
            purchase.id,
            Some("  not what I expected ".to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
    assert!(!world
        .status_view(&buyer, &course, None)
        .await
        .is_purchased());
    let refunds = world.gateway.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (
            refunds[0].amount,
            refunds[0].reason.as_deref(),
            refunds[0].idempotency_key.clone()
        ),
        (
            usd(PRICE),
            Some("requested_by_customer"),
            format!("self-refund-{}-0-{PRICE}", purchase.id)
        )
    );
    let audit = world
        .services
        .audit_trail(Operator::CommandLine, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    let entry = &audit.items[0];
    assert_eq!(
        (
            entry.actor,
            entry.action,
            entry.purchase_id,
            entry.amount,
            entry.reason.as_str()
        ),
        (
            AuditActor::User(buyer.id),
            AuditAction::Refund,
            Some(purchase.id),
            Some(usd(PRICE)),
            "not what I expected"
        )
    );
    // Nothing left: no more window to show, and asking again is refused.
    assert_eq!(world.services.self_refund_until(&refunded), None);
    assert!(matches!(
        world
            .services
            .request_refund(&buyer, purchase.id, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
}

#[tokio::test]
async fn what_an_instructor_refunded_in_part_leaves_the_rest_for_the_buyer() {
    let world = with_window();
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world
        .billed_purchase(
            &buyer,
            &course,
            "pi_self_rest",
            usd_bill(PRICE, 0, 400, 2399),
            None,
        )
        .await;
    world
        .services
        .refund(&teacher, purchase.id, Some(399), None)
        .await
        .unwrap();
    let refunded = world
        .services
        .request_refund(&buyer, purchase.id, None)
        .await
        .unwrap();
    assert_eq!(
        refunded.refunded_amount(),
        usd(2399),
        "what was paid, tax included"
    );
    let asked: Vec<i64> = world
        .gateway
        .refunds()
        .iter()
        .map(|r| r.amount.minor())
        .collect();
    assert_eq!(asked, vec![399, 2000]);
    let audit = world
        .services
        .audit_trail(Operator::CommandLine, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(audit.items[0].reason, "requested by the buyer");
}

#[tokio::test]
async fn outside_the_window_it_is_refused_naming_the_window() {
    let world = with_window();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.gateway.pay_session(&session.id, "pi_self_late");
    // Paid at a time the gateway stamped, a while after checkout started.
    let paid_at = world.clock.now() + Duration::hours(3);
    world.clock.set(paid_at);
    let event = FakeEvent::new("evt_self_late", "checkout.session.completed")
        .created_at(paid_at)
        .with_session(&session.id)
        .with_payment_intent("pi_self_late")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(PRICE),
            at: None,
        });
    world.webhook(&event).await.unwrap();
    let purchase = world.purchase(purchase.id).await;
    assert_eq!(purchase.paid_at(), paid_at);

    world
        .clock
        .set(paid_at + Duration::days(WINDOW_DAYS) + Duration::seconds(1));
    assert_eq!(world.services.self_refund_until(&purchase), None);
    let refused = world
        .services
        .request_refund(&buyer, purchase.id, None)
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        UseCaseError::RefundWindowClosed { window_days: 14 }
    );
    assert_eq!(
        refused.to_string(),
        "refunds can be requested within 14 days of payment"
    );
    assert!(world.gateway.refunds().is_empty());
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Completed
    );
    // An admin still can.
    let admin = world.admin().await;
    world
        .services
        .refund(&admin, purchase.id, None, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn with_the_window_off_nobody_may_ask() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_self_off").await;
    assert_eq!(world.services.self_refund_until(&purchase), None);
    assert_eq!(
        world
            .services
            .request_refund(&buyer, purchase.id, None)
            .await
            .unwrap_err(),
        UseCaseError::SelfRefundUnavailable
    );
    assert!(world.gateway.refunds().is_empty());
}

#[tokio::test]
async fn someone_elses_or_an_unknown_purchase_is_not_found() {
    let world = with_window();
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_self_other").await;
    let stranger = world.student().await;
    let admin = world.admin().await;
    for actor in [&stranger, &teacher, &admin] {
        assert_eq!(
            world
                .services
                .request_refund(actor, purchase.id, None)
                .await
                .unwrap_err(),
            UseCaseError::NotFound(Resource::Purchase)
        );
    }
    let unknown = PurchaseId::from_uuid(uuid::Uuid::new_v4());
    assert_eq!(
        world
            .services
            .request_refund(&buyer, unknown, None)
            .await
            .unwrap_err(),
        UseCaseError::NotFound(Resource::Purchase)
    );
    assert!(world.gateway.refunds().is_empty());
}

#[tokio::test]
async fn unpaid_free_and_held_purchases_are_not_refundable_by_the_buyer() {
    let world = with_window();
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let (pending, _) = world.checkout(&buyer, &course).await;
    assert_eq!(world.services.self_refund_until(&pending), None);
    assert!(matches!(
        world
            .services
            .request_refund(&buyer, pending.id, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
    let free_course = world.course(&teacher, 0, true).await;
    let free = world
        .services
        .start_checkout(&buyer, free_course.id)
        .await
        .unwrap();
    assert_eq!(world.services.self_refund_until(free.purchase()), None);
    assert!(matches!(
        world
            .services
            .request_refund(&buyer, free.purchase().id, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
}

#[tokio::test]
async fn a_long_reason_is_refused_before_anything_moves() {
    let world = with_window();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_self_long").await;
    assert_eq!(
        world
            .services
            .request_refund(&buyer, purchase.id, Some("x".repeat(501)))
            .await
            .unwrap_err(),
        UseCaseError::Validation(vec![FieldError::new(
            "reason",
            "must be at most 500 characters"
        )])
    );
    assert!(world.gateway.refunds().is_empty());
}

#[test]
fn the_window_is_a_whole_number_of_days_from_one_to_a_year() {
    let settings = UseCaseSettings::default();
    assert_eq!(settings.self_refund_window, None, "off by default");
    for days in [1, 14, 365] {
        assert_eq!(
            settings
                .with_self_refund_window(Some(Duration::days(days)))
                .unwrap()
                .self_refund_window,
            Some(Duration::days(days))
        );
    }
    for bad in [
        Duration::ZERO,
        Duration::days(366),
        Duration::hours(36),
        Duration::days(-1),
    ] {
        assert_eq!(
            settings.with_self_refund_window(Some(bad)),
            Err(UseCaseError::Validation(vec![FieldError::new(
                "selfRefundWindow",
                "must be a whole number of days from 1 to 365"
            )])),
            "{bad}"
        );
    }
    assert_eq!(
        settings
            .with_self_refund_window(None)
            .unwrap()
            .self_refund_window,
        None
    );
}
