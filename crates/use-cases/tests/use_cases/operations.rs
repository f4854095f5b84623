//! The review queue, the audit trail, admin roles, automatic refunds of double payments and
//! reconciliation of purchases whose outcome never arrived.

use crate::support::{usd, World};
use lms_domain::{Course, PaymentFact, Purchase, PurchaseStatus, Role, User};
use lms_in_memory::{FakeEvent, GatewayCall};
use lms_ports::{AuditAction, AuditActor, PageRequest};
use lms_use_cases::{FieldError, Operator, UseCaseError, UseCaseSettings, WebhookOutcome};
use time::Duration;

const PRICE: i64 = 1999;

fn paid(minor: i64) -> PaymentFact {
    PaymentFact::PaymentSucceeded {
        amount: usd(minor),
        at: None,
    }
}

/// A purchase paid 5.00 for a 19.99 course through payment intent `intent`: held for review.
async fn held(world: &World, intent: &str) -> (User, Course, Purchase) {
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, _) = world.checkout(&buyer, &course).await;
    let event = FakeEvent::new(format!("evt_{intent}"), "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_payment_intent(intent)
        .with_fact(paid(500));
    assert_eq!(
        world.webhook(&event).await.unwrap(),
        WebhookOutcome::Held {
            purchase_id: purchase.id
        }
    );
    (buyer, course, world.purchase(purchase.id).await)
}

async fn held_ids(world: &World, admin: &User) -> Vec<lms_domain::PurchaseId> {
    world
        .services
        .list_held(Operator::Admin(admin), PageRequest::new(1, 50))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.id)
        .collect()
}

#[tokio::test]
async fn a_held_purchase_accepted_unlocks_and_is_audited() {
    let world = World::new();
    let admin = world.admin().await;
    let (buyer, course, purchase) = held(&world, "pi_held_accept").await;
    assert_eq!(held_ids(&world, &admin).await, [purchase.id]);

    let accepted = world
        .services
        .accept_held(
            Operator::Admin(&admin),
            purchase.id,
            "  customer used an old coupon  ",
        )
        .await
        .unwrap();

    assert_eq!(accepted.status(), PurchaseStatus::Completed);
    assert!(world
        .status_view(&buyer, &course, None)
        .await
        .is_purchased());
    assert!(held_ids(&world, &admin).await.is_empty());
    let audit = world
        .services
        .audit_trail(Operator::Admin(&admin), PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    let entry = &audit.items[0];
    assert_eq!(entry.actor, AuditActor::User(admin.id));
    assert_eq!(entry.action, AuditAction::AcceptHeld);
    assert_eq!(entry.purchase_id, Some(purchase.id));
    assert_eq!(entry.amount, Some(usd(500)));
    assert_eq!(entry.reason, "customer used an old coupon");
    // Resolved: not held any more.
    assert_eq!(
        world
            .services
            .accept_held(Operator::Admin(&admin), purchase.id, "again")
            .await
            .unwrap_err(),
        UseCaseError::NotHeld
    );
}

#[tokio::test]
async fn a_held_purchase_refunded_gives_back_what_was_captured_and_is_audited() {
    let world = World::new();
    let admin = world.admin().await;
    let (buyer, course, purchase) = held(&world, "pi_held_refund").await;

    let refunded = world
        .services
        .refund_held(Operator::CommandLine, purchase.id, "wrong amount charged")
        .await
        .unwrap();

    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
    let refunds = world.gateway.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].amount, usd(500));
    assert_eq!(refunds[0].payment_intent_id, "pi_held_refund");
    assert_eq!(
        refunds[0].idempotency_key,
        format!("review-refund-{}-0-500", purchase.id)
    );
    let view = world.status_view(&buyer, &course, None).await;
    assert_eq!(
        (view.wire_status(), view.is_purchased()),
        ("refunded", false)
    );
    assert!(held_ids(&world, &admin).await.is_empty());
    let audit = world
        .services
        .audit_trail(Operator::CommandLine, PageRequest::new(1, 10))
        .await
        .unwrap();
    let entry = &audit.items[0];
    assert_eq!(
        (
            entry.actor,
            entry.action,
            entry.amount,
            entry.reason.as_str()
        ),
        (
            AuditActor::Operator,
            AuditAction::RefundHeld,
            Some(usd(500)),
            "wrong amount charged"
        )
    );
    // The buyer may start again.
    world.checkout(&buyer, &course).await;
}

#[tokio::test]
async fn the_review_queue_is_for_admins_and_needs_a_reason() {
    let world = World::new();
    let (buyer, course, purchase) = held(&world, "pi_held_guarded").await;
    let teacher = world.instructor().await;
    for user in [&buyer, &teacher] {
        assert_eq!(
            world
                .services
                .accept_held(Operator::Admin(user), purchase.id, "mine")
                .await
                .unwrap_err(),
            UseCaseError::Forbidden
        );
        assert_eq!(
            world
                .services
                .list_held(Operator::Admin(user), PageRequest::new(1, 10))
                .await
                .unwrap_err(),
            UseCaseError::Forbidden
        );
    }
    assert_eq!(
        world
            .services
            .refund_held(Operator::CommandLine, purchase.id, "   ")
            .await
            .unwrap_err(),
        UseCaseError::Validation(vec![FieldError::new(
            "reason",
            "must be 1 to 500 characters"
        )])
    );
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Pending
    );
    assert!(world.gateway.refunds().is_empty());
    let _ = course;
}

#[tokio::test]
async fn admin_roles_are_granted_and_revoked_by_the_operator_only_and_audited() {
    let world = World::new();
    let student = world.student().await;
    let admin = world
        .services
        .set_admin(
            Operator::CommandLine,
            student.email.as_str(),
            true,
            Role::Student,
        )
        .await
        .unwrap();
    assert_eq!(admin.role, Role::Admin);
    // An admin cannot make admins over the API.
    let other = world.student().await;
    assert_eq!(
        world
            .services
            .set_admin(
                Operator::Admin(&admin),
                other.email.as_str(),
                true,
                Role::Student
            )
            .await
            .unwrap_err(),
        UseCaseError::Forbidden
    );
    let back = world
        .services
        .set_admin(
            Operator::CommandLine,
            student.email.as_str(),
            false,
            Role::Instructor,
        )
        .await
        .unwrap();
    assert_eq!(back.role, Role::Instructor);
    assert_eq!(
        world
            .services
            .set_admin(
                Operator::CommandLine,
                "nobody@example.com",
                true,
                Role::Student
            )
            .await
            .unwrap_err(),
        UseCaseError::NotFound(lms_use_cases::Resource::User)
    );
    let audit = world
        .services
        .audit_trail(Operator::CommandLine, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(
        audit
            .items
            .iter()
            .map(|e| (e.action, e.subject_user_id, e.actor))
            .collect::<Vec<_>>(),
        [
            (
                AuditAction::RevokeAdmin,
                Some(student.id),
                AuditActor::Operator
            ),
            (
                AuditAction::GrantAdmin,
                Some(student.id),
                AuditActor::Operator
            ),
        ]
    );
}

/// Buyer's first checkout expires, a second one is paid, then the first one's payment arrives
/// late: two payments for one course.
async fn double_payment(world: &World) -> (User, Course, Purchase, Purchase) {
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (first, _) = world.checkout(&buyer, &course).await;
    world
        .event("evt_first_expired", &first, &[PaymentFact::CheckoutExpired])
        .await;
    let second = world.paid_purchase(&buyer, &course, "pi_second").await;
    let late = FakeEvent::new(
        "evt_first_paid_late",
        "checkout.session.async_payment_succeeded",
    )
    .for_purchase(first.id)
    .with_payment_intent("pi_first")
    .with_fact(paid(PRICE));
    world.webhook(&late).await.unwrap();
    (buyer, course, world.purchase(first.id).await, second)
}

#[tokio::test]
async fn a_second_payment_for_an_owned_course_is_refunded_automatically_and_audited() {
    let world = World::new();
    let (buyer, course, first, second) = double_payment(&world).await;

    assert_eq!(first.status(), PurchaseStatus::Refunded);
    assert_eq!(
        world.purchase(second.id).await.status(),
        PurchaseStatus::Completed
    );
    let refunds = world.gateway.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (refunds[0].payment_intent_id.as_str(), refunds[0].amount),
        ("pi_first", usd(PRICE))
    );
    assert_eq!(
        refunds[0].idempotency_key,
        format!("double-payment-{}-0-{PRICE}", first.id)
    );
    assert!(world
        .status_view(&buyer, &course, None)
        .await
        .is_purchased());
    let audit = world
        .services
        .audit_trail(Operator::CommandLine, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(audit.total, 1);
    assert_eq!(
        (
            audit.items[0].actor,
            audit.items[0].action,
            audit.items[0].purchase_id
        ),
        (
            AuditActor::System,
            AuditAction::RefundDoublePayment,
            Some(first.id)
        )
    );
    // Delivered again: nothing more is refunded.
    let late = FakeEvent::new(
        "evt_first_paid_late",
        "checkout.session.async_payment_succeeded",
    )
    .for_purchase(first.id)
    .with_payment_intent("pi_first")
    .with_fact(paid(PRICE));
    assert_eq!(
        world.webhook(&late).await.unwrap(),
        WebhookOutcome::Duplicate
    );
    assert_eq!(world.gateway.refunds().len(), 1);
}

#[tokio::test]
async fn with_automatic_refunds_off_a_double_payment_is_left_to_an_operator() {
    let world =
        World::with_settings(UseCaseSettings::default().with_auto_refund_double_payments(false));
    let (_, _, first, second) = double_payment(&world).await;
    assert_eq!(first.status(), PurchaseStatus::Completed);
    assert_eq!(
        world.purchase(second.id).await.status(),
        PurchaseStatus::Completed
    );
    assert!(world.gateway.refunds().is_empty());
}

#[tokio::test]
async fn a_refused_automatic_refund_marks_the_event_failed_and_a_replay_refunds() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (first, _) = world.checkout(&buyer, &course).await;
    world
        .event("evt_expired", &first, &[PaymentFact::CheckoutExpired])
        .await;
    world.paid_purchase(&buyer, &course, "pi_kept").await;
    world
        .gateway
        .fail_next(1, lms_ports::GatewayError::unavailable("connection reset"));
    let late = FakeEvent::new("evt_late", "checkout.session.async_payment_succeeded")
        .for_purchase(first.id)
        .with_payment_intent("pi_late")
        .with_fact(paid(PRICE));
    // Applied (the payment is real), and acknowledged; the refund waits for a replay.
    assert!(matches!(
        world.webhook(&late).await.unwrap(),
        WebhookOutcome::Applied { .. }
    ));
    let record = lms_ports::EventInbox::get_event(&world.store, "evt_late")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.outcome, lms_ports::EventOutcome::Failed);
    assert!(record
        .error
        .as_deref()
        .is_some_and(|e| e.contains("automatic refund")));

    let replayed = world
        .services
        .replay_event(Operator::CommandLine, "evt_late")
        .await
        .unwrap();
    assert!(
        matches!(replayed, WebhookOutcome::Applied { .. }),
        "{replayed:?}"
    );
    assert_eq!(
        world.purchase(first.id).await.status(),
        PurchaseStatus::Refunded
    );
    assert_eq!(world.gateway.refunds().len(), 1);
}

#[tokio::test]
async fn the_reconciler_completes_a_purchase_whose_webhook_never_came() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.gateway.pay_session(&session.id, "pi_silent");

    // Too young to reconcile.
    assert!(world
        .services
        .claim_for_reconciliation(Duration::minutes(30), 10)
        .await
        .unwrap()
        .is_empty());
    world.clock.advance(Duration::minutes(31));
    let due = world
        .services
        .claim_for_reconciliation(Duration::minutes(30), 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|p| p.id).collect::<Vec<_>>(), [purchase.id]);
    // Claimed: another instance gets nothing until the lease runs out.
    assert!(world
        .services
        .claim_for_reconciliation(Duration::minutes(30), 10)
        .await
        .unwrap()
        .is_empty());

    let reconciled = world.services.reconcile_purchase(&due[0]).await.unwrap();
    assert_eq!(
        (reconciled.status, reconciled.expired_at_gateway),
        (PurchaseStatus::Completed, false)
    );
    let stored = world.purchase(purchase.id).await;
    assert!(stored.unlocks_course());
    assert_eq!(stored.payment_intent_id.as_deref(), Some("pi_silent"));
    // Decided: never claimed again.
    world.clock.advance(Duration::hours(1));
    assert!(world
        .services
        .claim_for_reconciliation(Duration::minutes(30), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_reconciler_closes_expired_and_unknown_sessions_and_expires_overdue_ones() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (expired, expired_session) = world.checkout(&buyer, &course).await;
    world.gateway.expire_session(&expired_session.id);
    let other_buyer = world.student().await;
    let (overdue, overdue_session) = world.checkout(&other_buyer, &course).await;
    let third_buyer = world.student().await;
    let (open, _) = world.checkout(&third_buyer, &course).await;

    world.clock.advance(Duration::hours(1));
    let reconciled = |p: &Purchase| {
        let p = p.clone();
        let world = &world;
        async move { world.services.reconcile_purchase(&p).await.unwrap() }
    };
    let result = reconciled(&expired).await;
    assert_eq!(result.status, PurchaseStatus::Failed);
    // Still open and inside its lifetime: left pending, nothing closed at the gateway.
    let result = reconciled(&open).await;
    assert_eq!(
        (result.status, result.expired_at_gateway),
        (PurchaseStatus::Pending, false)
    );
    // Unknown at the gateway: nobody can pay it, so it is closed.
    world
        .gateway
        .fail_next(1, lms_ports::GatewayError::NotFound);
    assert_eq!(reconciled(&open).await.status, PurchaseStatus::Failed);

    // Past the checkout lifetime yet still open at the gateway: closed there, then failed.
    world.clock.advance(Duration::hours(24));
    let result = reconciled(&overdue).await;
    assert_eq!(
        (result.status, result.expired_at_gateway, result.label()),
        (PurchaseStatus::Failed, true, "expired")
    );
    assert!(world
        .gateway
        .calls()
        .contains(&GatewayCall::ExpireCheckoutSession(
            overdue_session.id.clone()
        )));
    // The buyer may start again.
    world.checkout(&other_buyer, &course).await;
}
