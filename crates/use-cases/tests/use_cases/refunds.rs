//! Refund authorisation and effects.

use crate::support::{usd, World};
use lms_domain::PaymentFact;
use lms_domain::{Course, Purchase, PurchaseId, PurchaseStatus, User};
use lms_in_memory::FakeEvent;
use lms_ports::{GatewayError, RefundStatus};
use lms_use_cases::{FieldError, Resource, UseCaseError};

async fn completed() -> (World, User, User, Course, Purchase) {
    let world = World::new();
    let (teacher, course, buyer) = world.shop(1999, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_r").await;
    (world, teacher, buyer, course, purchase)
}

#[tokio::test]
async fn an_admin_refunds_in_full() {
    let (world, _, buyer, course, purchase) = completed().await;
    let admin = world.admin().await;
    let refunded = world
        .services
        .refund(
            &admin,
            purchase.id,
            None,
            Some("requested_by_customer".to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
    assert_eq!(world.purchase(purchase.id).await, refunded);
    let refunds = world.gateway.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount, usd(1999));
    assert_eq!(refunds[0].payment_intent_id, "pi_r");
    assert_eq!(
        refunds[0].idempotency_key,
        format!("refund-{}-0-1999", purchase.id)
    );
    assert_eq!(refunds[0].reason.as_deref(), Some("requested_by_customer"));
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("refunded", false)
    );
}

#[tokio::test]
async fn the_course_instructor_refunds_in_parts() {
    let (world, teacher, _, _, purchase) = completed().await;
    let part = world
        .services
        .refund(&teacher, purchase.id, Some(500), None)
        .await
        .unwrap();
    assert_eq!(part.status(), PurchaseStatus::Completed);
    assert_eq!(part.refunded_amount(), usd(500));
    let rest = world
        .services
        .refund(&teacher, purchase.id, None, None)
        .await
        .unwrap();
    assert_eq!(rest.status(), PurchaseStatus::Refunded);
    let keys: Vec<_> = world
        .gateway
        .refunds()
        .into_iter()
        .map(|r| (r.idempotency_key, r.amount))
        .collect();
    assert_eq!(
        keys,
        vec![
            (format!("refund-{}-0-500", purchase.id), usd(500)),
            (format!("refund-{}-500-1499", purchase.id), usd(1499))
        ]
    );
    // Nothing left to refund.
    assert!(matches!(
        world
            .services
            .refund(&teacher, purchase.id, None, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
}

#[tokio::test]
async fn a_pending_refund_waits_for_the_webhook() {
    let (world, teacher, _, _, purchase) = completed().await;
    world.gateway.set_refund_status(RefundStatus::Pending);
    let answered = world
        .services
        .refund(&teacher, purchase.id, None, None)
        .await
        .unwrap();
    assert_eq!(answered.status(), PurchaseStatus::Completed);
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Completed
    );
    let event = FakeEvent::new("evt_refunded", "charge.refunded")
        .with_payment_intent("pi_r")
        .with_fact(PaymentFact::Refunded { total: usd(1999) });
    world.webhook(&event).await.unwrap();
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Refunded
    );
}

#[tokio::test]
async fn strangers_get_not_found_and_the_buyer_forbidden() {
    let (world, _, buyer, _, purchase) = completed().await;
    let other_teacher = world.instructor().await;
    let other_student = world.student().await;
    assert_eq!(
        world
            .services
            .refund(&other_teacher, purchase.id, None, None)
            .await,
        Err(UseCaseError::NotFound(Resource::Purchase))
    );
    assert_eq!(
        world
            .services
            .refund(&other_student, purchase.id, None, None)
            .await,
        Err(UseCaseError::NotFound(Resource::Purchase))
    );
    assert_eq!(
        world.services.refund(&buyer, purchase.id, None, None).await,
        Err(UseCaseError::Forbidden)
    );
    let unknown = PurchaseId::from_uuid(uuid::Uuid::new_v4());
    let admin = world.admin().await;
    assert_eq!(
        world.services.refund(&admin, unknown, None, None).await,
        Err(UseCaseError::NotFound(Resource::Purchase))
    );
    assert!(world.gateway.refunds().is_empty());
    assert_eq!(world.purchase(purchase.id).await, purchase);
}

#[tokio::test]
async fn only_completed_purchases_within_their_amount_are_refundable() {
    let (world, teacher, _, course, purchase) = completed().await;
    assert_eq!(
        world
            .services
            .refund(&teacher, purchase.id, Some(2000), None)
            .await,
        Err(UseCaseError::Validation(vec![FieldError::new(
            "amountCents",
            "refund amount must be between 1 and 1999 minor units"
        )]))
    );
    assert!(matches!(
        world
            .services
            .refund(&teacher, purchase.id, Some(0), None)
            .await,
        Err(UseCaseError::Validation(_))
    ));

    let other = world.student().await;
    let (pending, _) = world.checkout(&other, &course).await;
    assert!(matches!(
        world
            .services
            .refund(&teacher, pending.id, None, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));

    let free = world.course(&teacher, 0, true).await;
    let enrolled = world
        .services
        .start_checkout(&other, free.id)
        .await
        .unwrap()
        .purchase()
        .clone();
    assert!(matches!(
        world
            .services
            .refund(&teacher, enrolled.id, None, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
    assert!(world.gateway.refunds().is_empty());
}

#[tokio::test]
async fn a_gateway_failure_changes_nothing() {
    let (world, teacher, _, _, purchase) = completed().await;
    world
        .gateway
        .fail_next(1, GatewayError::unavailable("down"));
    assert_eq!(
        world
            .services
            .refund(&teacher, purchase.id, None, None)
            .await,
        Err(UseCaseError::Gateway(GatewayError::unavailable("down")))
    );
    assert_eq!(world.purchase(purchase.id).await, purchase);
    // The retry uses the same idempotency key and succeeds.
    let refunded = world
        .services
        .refund(&teacher, purchase.id, None, None)
        .await
        .unwrap();
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
}
