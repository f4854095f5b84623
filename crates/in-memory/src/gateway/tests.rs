use super::*;
use lms_domain::{CourseId, UserId};
use time::macros::datetime;

fn request(key: &str, minor: i64) -> CheckoutRequest {
    CheckoutRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::from_u128(1)),
        course_id: CourseId::from_uuid(Uuid::from_u128(2)),
        user_id: UserId::from_uuid(Uuid::from_u128(3)),
        course_title: "Rust".to_owned(),
        amount: Money::new(minor, Currency::USD).unwrap(),
        customer_email: None,
        expires_at: datetime!(2026-01-02 00:00 UTC),
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test]
async fn sessions_are_created_remembered_and_idempotent() {
    let gateway = FakeGateway::new();
    let first = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    assert!(first.id.starts_with("cs_fake_"));
    assert_eq!(
        first.url.as_deref(),
        Some(format!("https://checkout.fake.test/pay/{}", first.id).as_str())
    );
    assert_eq!(
        (first.status, first.payment_status),
        (SessionStatus::Open, SessionPaymentStatus::Unpaid)
    );
    assert_eq!(first.amount_total, 1999);
    assert_eq!(
        first.purchase_id,
        Some(PurchaseId::from_uuid(Uuid::from_u128(1)))
    );

    let again = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(gateway.session_count(), 1);
    assert!(matches!(
        gateway.create_checkout_session(&request("k1", 2999)).await,
        Err(GatewayError::Rejected { .. })
    ));
    let other = gateway
        .create_checkout_session(&request("k2", 1999))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(gateway.checkout_requests().len(), 4);

    assert!(gateway.pay_session(&first.id, "pi_1"));
    let paid = gateway.retrieve_checkout_session(&first.id).await.unwrap();
    assert_eq!(
        paid.facts(),
        vec![PaymentFact::PaymentSucceeded {
            amount: Money::new(1999, Currency::USD).unwrap(),
            at: None
        }]
    );
    assert_eq!(
        gateway
            .find_session_by_payment_intent("pi_1")
            .await
            .unwrap()
            .map(|s| s.id),
        Some(first.id.clone())
    );
    assert_eq!(
        gateway.find_session_by_payment_intent("pi_none").await,
        Ok(None)
    );
    assert_eq!(
        gateway.retrieve_checkout_session("cs_unknown").await,
        Err(GatewayError::NotFound)
    );
    assert!(gateway.expire_session(&other.id));
    assert_eq!(
        gateway.session(&other.id).unwrap().facts(),
        vec![PaymentFact::CheckoutExpired]
    );
}

#[tokio::test]
async fn queued_failures_hit_the_next_calls_and_are_recorded() {
    let gateway = FakeGateway::new();
    gateway.fail_next(2, GatewayError::unavailable("down"));
    assert_eq!(
        gateway.create_checkout_session(&request("k1", 1999)).await,
        Err(GatewayError::unavailable("down"))
    );
    assert_eq!(
        gateway.retrieve_checkout_session("cs_x").await,
        Err(GatewayError::unavailable("down"))
    );
    assert!(gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .is_ok());
    assert_eq!(gateway.call_count(), 3);
    assert_eq!(gateway.session_count(), 1);
}

#[tokio::test]
async fn refunds_are_recorded_idempotent_bounded_and_scriptable() {
    let gateway = FakeGateway::new();
    let session = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    let refund = |minor: i64, key: &str| RefundRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::from_u128(1)),
        payment_intent_id: "pi_1".to_owned(),
        amount: Money::new(minor, Currency::USD).unwrap(),
        reason: None,
        idempotency_key: key.to_owned(),
    };
    // Nothing paid with this intent yet.
    assert_eq!(
        gateway.refund(&refund(500, "r0")).await,
        Err(GatewayError::NotFound)
    );
    gateway.complete_session_unpaid(&session.id, "pi_1");
    assert!(matches!(
        gateway.refund(&refund(500, "r0")).await,
        Err(GatewayError::Rejected { .. })
    ));
    gateway.pay_session(&session.id, "pi_1");

    let outcome = gateway.refund(&refund(500, "r1")).await.unwrap();
    assert_eq!(outcome.status, RefundStatus::Succeeded);
    assert_eq!(gateway.refund(&refund(500, "r1")).await.unwrap(), outcome);
    assert_eq!(gateway.refunds(), vec![refund(500, "r1")]);
    let too_much = gateway.refund(&refund(1500, "r2")).await;
    assert!(
        matches!(too_much, Err(GatewayError::Rejected { code: Some(code), .. }) if code == "amount_too_large")
    );

    gateway.set_refund_status(RefundStatus::Pending);
    assert_eq!(
        gateway.refund(&refund(1499, "r3")).await.unwrap().status,
        RefundStatus::Pending
    );
    let again = gateway.refund(&refund(1, "r4")).await;
    assert!(
        matches!(again, Err(GatewayError::Rejected { code: Some(code), .. }) if code == "charge_already_refunded")
    );
    assert_eq!(gateway.refunds().len(), 2);
}

#[test]
fn signed_events_verify_into_typed_events() {
    let gateway = FakeGateway::new();
    let purchase_id = PurchaseId::from_uuid(Uuid::from_u128(7));
    let usd = |minor| Money::new(minor, Currency::USD).unwrap();
    let event = FakeEvent::new("evt_1", "checkout.session.completed")
        .for_purchase(purchase_id)
        .with_session("cs_1")
        .with_payment_intent("pi_1")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(1999),
            at: None,
        })
        .with_fact(PaymentFact::Refunded { total: usd(100) })
        .with_fact(PaymentFact::DisputeClosed(DisputeOutcome::Lost));
    let (body, signature) = FakeGateway::signed_event(&event);
    let WebhookEvent::Relevant(verified) = gateway.verify_webhook(&body, Some(&signature)).unwrap()
    else {
        panic!("expected a relevant event")
    };
    assert_eq!(verified.id, "evt_1");
    assert_eq!(verified.event_type, "checkout.session.completed");
    assert_eq!(
        verified.locator,
        PurchaseLocator {
            purchase_id: Some(purchase_id),
            checkout_session_id: Some("cs_1".to_owned()),
            payment_intent_id: Some("pi_1".to_owned()),
        }
    );
    assert_eq!(
        verified.facts,
        vec![
            PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: None
            },
            PaymentFact::Refunded { total: usd(100) },
            PaymentFact::DisputeClosed(DisputeOutcome::Lost),
        ]
    );
    assert_eq!(verified.payload.as_bytes(), body.as_slice());
}

#[test]
fn bad_webhooks_are_rejected_with_the_right_reason() {
    let gateway = FakeGateway::new();
    let event = FakeEvent::new("evt_1", "x").with_fact(PaymentFact::CheckoutExpired);
    let (body, signature) = FakeGateway::signed_event(&event);
    assert_eq!(
        gateway.verify_webhook(&body, None),
        Err(WebhookRejection::BadSignature)
    );
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(
        gateway.verify_webhook(&tampered, Some(&signature)),
        Err(WebhookRejection::BadSignature)
    );
    assert_eq!(
        gateway.verify_webhook(&body, Some("fake-v1=00")),
        Err(WebhookRejection::BadSignature)
    );
    let garbage = b"not json";
    assert!(matches!(
        gateway.verify_webhook(garbage, Some(&FakeGateway::signature_for(garbage))),
        Err(WebhookRejection::Malformed(_))
    ));
    let bad_currency = br#"{"id":"evt_2","type":"x","facts":[{"kind":"refunded","totalCents":5,"currency":"ZZZ"}]}"#;
    assert!(matches!(
        gateway.verify_webhook(
            bad_currency,
            Some(&FakeGateway::signature_for(bad_currency))
        ),
        Err(WebhookRejection::Malformed(_))
    ));
}

#[tokio::test]
async fn payments_announced_by_verified_events_can_be_refunded() {
    let gateway = FakeGateway::new();
    let usd = |minor| Money::new(minor, Currency::USD).unwrap();
    let refund = |minor: i64, key: &str| RefundRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::from_u128(1)),
        payment_intent_id: "pi_announced".to_owned(),
        amount: usd(minor),
        reason: None,
        idempotency_key: key.to_owned(),
    };
    assert_eq!(
        gateway.refund(&refund(100, "a")).await,
        Err(GatewayError::NotFound)
    );
    let event = FakeEvent::new("evt_1", "charge.succeeded")
        .with_payment_intent("pi_announced")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(700),
            at: None,
        });
    let (body, signature) = FakeGateway::signed_event(&event);
    gateway.verify_webhook(&body, Some(&signature)).unwrap();
    // A forged (badly signed) announcement teaches the fake nothing.
    let forged = FakeEvent::new("evt_2", "charge.succeeded")
        .with_payment_intent("pi_forged")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(700),
            at: None,
        });
    assert!(gateway
        .verify_webhook(&forged.to_body(), Some("fake-v1=00"))
        .is_err());

    assert_eq!(
        gateway.refund(&refund(700, "b")).await.unwrap().amount,
        usd(700)
    );
    assert!(matches!(
        gateway.refund(&refund(1, "c")).await,
        Err(GatewayError::Rejected { .. })
    ));
    let forged_refund = RefundRequest {
        payment_intent_id: "pi_forged".to_owned(),
        ..refund(1, "d")
    };
    assert_eq!(
        gateway.refund(&forged_refund).await,
        Err(GatewayError::NotFound)
    );
}

#[test]
fn events_without_facts_are_ignored() {
    let gateway = FakeGateway::new();
    let (body, signature) = FakeGateway::signed_event(&FakeEvent::new("evt_9", "customer.created"));
    assert_eq!(
        gateway.verify_webhook(&body, Some(&signature)),
        Ok(WebhookEvent::Ignored {
            id: "evt_9".to_owned(),
            event_type: "customer.created".to_owned()
        })
    );
}

#[test]
fn a_payment_takes_its_own_time_else_the_events() {
    let gateway = FakeGateway::new();
    let usd = Money::new(1999, Currency::USD).unwrap();
    let created = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let own = created - time::Duration::seconds(30);
    let facts_of = |event: &FakeEvent| {
        let (body, signature) = FakeGateway::signed_event(event);
        match gateway.verify_webhook(&body, Some(&signature)).unwrap() {
            WebhookEvent::Relevant(verified) => verified.facts,
            other => panic!("expected a relevant event, got {other:?}"),
        }
    };
    let unstamped = |at| {
        FakeEvent::new("evt_1", "charge.succeeded")
            .with_fact(PaymentFact::PaymentSucceeded { amount: usd, at })
    };
    assert_eq!(
        facts_of(&unstamped(None)),
        vec![PaymentFact::PaymentSucceeded {
            amount: usd,
            at: None
        }],
        "neither the payment nor the event says when"
    );
    assert_eq!(
        facts_of(&unstamped(None).created_at(created)),
        vec![PaymentFact::PaymentSucceeded {
            amount: usd,
            at: Some(created)
        }]
    );
    assert_eq!(
        facts_of(&unstamped(Some(own)).created_at(created)),
        vec![PaymentFact::PaymentSucceeded {
            amount: usd,
            at: Some(own)
        }]
    );
}
