use super::*;
use crate::ManualClock;
use lms_domain::{CourseId, UserId};
use time::macros::datetime;
use time::Duration;

fn request(key: &str, minor: i64) -> CheckoutRequest {
    CheckoutRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::from_u128(1)),
        course_id: CourseId::from_uuid(Uuid::from_u128(2)),
        user_id: UserId::from_uuid(Uuid::from_u128(3)),
        course_title: "Rust".to_owned(),
        amount: Money::new(minor, Currency::USD).unwrap(),
        customer_id: None,
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
    let price = Money::new(1999, Currency::USD).unwrap();
    assert_eq!(
        paid.facts(),
        vec![
            PaymentFact::PaymentSucceeded {
                amount: price,
                at: None
            },
            PaymentFact::Billed(Bill::of_price(price)),
        ]
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
    assert_eq!(verified.envelope.id, "evt_1");
    assert_eq!(verified.envelope.event_type, "checkout.session.completed");
    assert!(!verified.envelope.livemode);
    assert_eq!(verified.envelope.created, OffsetDateTime::UNIX_EPOCH);
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
    assert_eq!(verified.envelope.payload.as_bytes(), body.as_slice());
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
        Ok(WebhookEvent::Ignored(EventEnvelope {
            id: "evt_9".to_owned(),
            event_type: "customer.created".to_owned(),
            livemode: false,
            created: OffsetDateTime::UNIX_EPOCH,
            payload: String::from_utf8(body.clone()).unwrap(),
        }))
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

/// A fake whose events are stamped by a clock the test moves.
fn clocked() -> (FakeGateway, ManualClock) {
    let clock = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
    let gateway = FakeGateway::new().with_clock(Arc::new(clock.clone()));
    (gateway, clock)
}

fn since(at: OffsetDateTime, starting_after: Option<&str>, limit: u32) -> EventQuery {
    EventQuery {
        created_from: at,
        starting_after: starting_after.map(str::to_owned),
        limit,
    }
}

fn ids(page: &EventPage) -> Vec<String> {
    page.events
        .iter()
        .map(|event| event.envelope().id.clone())
        .collect()
}

#[tokio::test]
async fn expire_closes_an_open_session_once_and_emits_its_event() {
    let (gateway, clock) = clocked();
    let session = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    let closed = gateway.expire_checkout_session(&session.id).await.unwrap();
    assert_eq!(closed.status, SessionStatus::Expired);
    assert_eq!(closed.url, None);
    assert_eq!(
        gateway.retrieve_checkout_session(&session.id).await,
        Ok(closed.clone())
    );
    assert!(matches!(
        gateway.expire_checkout_session(&session.id).await,
        Err(GatewayError::Rejected { code: Some(code), .. }) if code == "checkout_session_not_open"
    ));
    assert_eq!(
        gateway.expire_checkout_session("cs_unknown").await,
        Err(GatewayError::NotFound)
    );
    let paid = gateway
        .create_checkout_session(&request("k2", 1999))
        .await
        .unwrap();
    gateway.pay_session(&paid.id, "pi_1");
    assert!(matches!(
        gateway.expire_checkout_session(&paid.id).await,
        Err(GatewayError::Rejected { .. })
    ));
    assert_eq!(
        gateway.session(&paid.id).unwrap().status,
        SessionStatus::Complete,
        "a refused expiry changes nothing"
    );

    let expiries: Vec<FakeEvent> = gateway
        .events()
        .into_iter()
        .filter(|event| event.event_type == "checkout.session.expired")
        .collect();
    assert_eq!(expiries.len(), 1, "one expiry, one event");
    assert_eq!(
        expiries[0].checkout_session_id.as_deref(),
        Some(session.id.as_str())
    );
    assert_eq!(expiries[0].created, Some(clock.now().unix_timestamp()));
    assert_eq!(expiries[0].facts, vec![FakeFact::CheckoutExpired]);
    assert_eq!(
        gateway
            .calls()
            .iter()
            .filter(|call| matches!(call, GatewayCall::ExpireCheckoutSession(_)))
            .count(),
        4
    );
}

#[tokio::test]
async fn a_paid_session_emits_its_completion_and_the_history_lists_it() {
    let (gateway, clock) = clocked();
    let session = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    let before = clock.now();
    clock.advance(Duration::seconds(10));
    assert!(gateway.pay_session(&session.id, "pi_1"));
    assert!(
        !gateway.pay_session("cs_unknown", "pi_2"),
        "nothing emitted"
    );

    let page = gateway.list_events(&since(before, None, 10)).await.unwrap();
    assert!(!page.has_more);
    let [WebhookEvent::Relevant(event)] = page.events.as_slice() else {
        panic!("one completion event: {:?}", page.events);
    };
    assert_eq!(event.envelope.event_type, "checkout.session.completed");
    assert_eq!(event.envelope.created, clock.now());
    assert_eq!(
        event.locator,
        PurchaseLocator {
            purchase_id: Some(PurchaseId::from_uuid(Uuid::from_u128(1))),
            checkout_session_id: Some(session.id.clone()),
            payment_intent_id: Some("pi_1".to_owned()),
        }
    );
    let price = Money::new(1999, Currency::USD).unwrap();
    assert_eq!(
        event.facts,
        vec![
            PaymentFact::PaymentSucceeded {
                amount: price,
                at: Some(clock.now())
            },
            PaymentFact::Billed(Bill::of_price(price)),
        ]
    );
    // What is listed is what a delivery would carry, and decodes again to the same event.
    assert_eq!(
        gateway.decode_stored_event(event.envelope.payload.as_bytes()),
        Ok(page.events[0].clone())
    );
    let other = gateway
        .create_checkout_session(&request("k2", 2999))
        .await
        .unwrap();
    gateway.complete_session_unpaid(&other.id, "pi_2");
    let page = gateway.list_events(&since(before, None, 10)).await.unwrap();
    let WebhookEvent::Relevant(processing) = &page.events[0] else {
        panic!("newest first: the unpaid completion");
    };
    assert_eq!(
        processing.facts,
        vec![
            PaymentFact::PaymentProcessing,
            PaymentFact::Billed(Bill::of_price(Money::new(2999, Currency::USD).unwrap())),
        ]
    );
}

#[tokio::test]
async fn the_history_is_newest_first_paged_by_cursor_and_filtered_by_creation_time() {
    let (gateway, clock) = clocked();
    let start = clock.now();
    let expired = |id: &str| FakeEvent::new(id, "checkout.session.expired").with_session("cs_1");
    gateway.emit(expired("evt_a"));
    clock.advance(Duration::seconds(1));
    gateway.emit(expired("evt_b"));
    // Within the same second (the gateway's precision): the later emitted is newer.
    clock.advance(Duration::milliseconds(400));
    gateway.emit(expired("evt_c"));
    clock.advance(Duration::seconds(1));
    gateway.emit(expired("evt_d"));
    // A test may stamp an event in the past: it takes its place by time, not by emission.
    gateway.emit(expired("evt_early").created_at(start - Duration::seconds(5)));

    let everything = gateway
        .list_events(&since(start - Duration::hours(1), None, 100))
        .await
        .unwrap();
    assert_eq!(
        ids(&everything),
        ["evt_d", "evt_c", "evt_b", "evt_a", "evt_early"]
    );
    assert!(!everything.has_more);

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = gateway
            .list_events(&since(start, cursor.as_deref(), 2))
            .await
            .unwrap();
        paged.extend(ids(&page));
        if !page.has_more {
            break;
        }
        cursor = paged.last().cloned();
    }
    assert_eq!(
        paged,
        ["evt_d", "evt_c", "evt_b", "evt_a"],
        "evt_early is before start"
    );

    // `created_from` counts in whole seconds, as the gateway stamps.
    let from_b = gateway
        .list_events(&since(start + Duration::milliseconds(1_900), None, 10))
        .await
        .unwrap();
    assert_eq!(ids(&from_b), ["evt_d", "evt_c", "evt_b"]);
    let future = gateway
        .list_events(&since(clock.now() + Duration::hours(1), None, 10))
        .await
        .unwrap();
    assert_eq!((future.events.len(), future.has_more), (0, false));
    let one = gateway.list_events(&since(start, None, 0)).await.unwrap();
    assert_eq!((ids(&one), one.has_more), (vec!["evt_d".to_owned()], true));
    assert_eq!(
        gateway
            .list_events(&since(start, Some("evt_unknown"), 10))
            .await,
        Err(GatewayError::NotFound)
    );
}

#[tokio::test]
async fn emitting_stamps_unstamped_events_announces_payments_and_signs() {
    let (gateway, clock) = clocked();
    let usd = |minor| Money::new(minor, Currency::USD).unwrap();
    let (body, signature) = gateway.emit(
        FakeEvent::new("evt_charge", "charge.succeeded")
            .with_payment_intent("pi_emitted")
            .with_fact(PaymentFact::PaymentSucceeded {
                amount: usd(700),
                at: None,
            }),
    );
    let WebhookEvent::Relevant(event) = gateway.verify_webhook(&body, Some(&signature)).unwrap()
    else {
        panic!("a payment is relevant");
    };
    assert_eq!(event.envelope.created, clock.now());
    assert_eq!(
        gateway.events()[0].created,
        Some(clock.now().unix_timestamp())
    );
    let refund = RefundRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::from_u128(1)),
        payment_intent_id: "pi_emitted".to_owned(),
        amount: usd(700),
        reason: None,
        idempotency_key: "r1".to_owned(),
    };
    assert_eq!(gateway.refund(&refund).await.unwrap().amount, usd(700));

    // Signed without being emitted: never in the history.
    let _ = FakeGateway::signed_event(&FakeEvent::new("evt_unsent", "customer.created"));
    assert_eq!(
        gateway
            .events()
            .iter()
            .map(|event| event.id.as_str())
            .collect::<Vec<_>>(),
        ["evt_charge"]
    );
}

#[test]
fn a_stored_event_decodes_as_its_webhook_did_without_a_signature() {
    let gateway = FakeGateway::new();
    let purchase_id = PurchaseId::from_uuid(Uuid::from_u128(7));
    for event in [
        FakeEvent::new("evt_1", "checkout.session.completed")
            .for_purchase(purchase_id)
            .with_session("cs_1")
            .created_at(datetime!(2026-01-01 00:00 UTC))
            .with_fact(PaymentFact::CheckoutExpired),
        FakeEvent::new("evt_2", "customer.created"),
    ] {
        let (body, signature) = FakeGateway::signed_event(&event);
        let verified = gateway.verify_webhook(&body, Some(&signature)).unwrap();
        assert_eq!(gateway.decode_stored_event(&body), Ok(verified));
    }
    for malformed in [
        b"not json".as_slice(),
        b"{}",
        br#"{"id":"evt_3","type":"x","facts":[{"kind":"refunded","totalCents":5,"currency":"ZZZ"}]}"#,
        br#"{"id":"evt_4","type":"x","purchaseId":"nope","facts":[{"kind":"dispute_opened"}]}"#,
    ] {
        assert!(
            matches!(
                gateway.decode_stored_event(malformed),
                Err(WebhookRejection::Malformed(_))
            ),
            "{}",
            String::from_utf8_lossy(malformed)
        );
    }
}

#[test]
fn the_mode_of_an_event_must_be_the_fakes() {
    let test_fake = FakeGateway::new();
    let live_fake = FakeGateway::new().in_live_mode();
    let test_event = FakeEvent::new("evt_test", "x").with_fact(PaymentFact::DisputeOpened);
    let live_event = test_event.clone().in_live_mode();
    let (test_body, test_signature) = FakeGateway::signed_event(&test_event);
    let (live_body, live_signature) = FakeGateway::signed_event(&live_event);
    assert!(!String::from_utf8(test_body.clone())
        .unwrap()
        .contains("livemode"));
    for (fake, body, signature) in [
        (&test_fake, &live_body, &live_signature),
        (&live_fake, &test_body, &test_signature),
    ] {
        assert_eq!(
            fake.verify_webhook(body, Some(signature)),
            Err(WebhookRejection::WrongMode)
        );
        assert_eq!(
            fake.decode_stored_event(body),
            Err(WebhookRejection::WrongMode)
        );
    }
    let WebhookEvent::Relevant(event) = live_fake.decode_stored_event(&live_body).unwrap() else {
        panic!("a live event at a live fake is relevant");
    };
    assert!(event.envelope.livemode);
}

#[tokio::test]
async fn a_live_fake_emits_live_events() {
    let gateway = FakeGateway::new().in_live_mode();
    let session = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    gateway.expire_checkout_session(&session.id).await.unwrap();
    let page = gateway
        .list_events(&since(OffsetDateTime::UNIX_EPOCH, None, 10))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1);
    assert!(page.events[0].envelope().livemode);
}

#[tokio::test]
async fn queued_failures_hit_expiry_and_listing_too() {
    let gateway = FakeGateway::new();
    let session = gateway
        .create_checkout_session(&request("k1", 1999))
        .await
        .unwrap();
    gateway.fail_next(2, GatewayError::unavailable("down"));
    assert_eq!(
        gateway.expire_checkout_session(&session.id).await,
        Err(GatewayError::unavailable("down"))
    );
    let query = since(OffsetDateTime::UNIX_EPOCH, None, 10);
    assert_eq!(
        gateway.list_events(&query).await,
        Err(GatewayError::unavailable("down"))
    );
    assert_eq!(
        gateway.session(&session.id).unwrap().status,
        SessionStatus::Open,
        "a failed expiry closes nothing"
    );
    assert_eq!(
        gateway.calls()[1..],
        [
            GatewayCall::ExpireCheckoutSession(session.id.clone()),
            GatewayCall::ListEvents(query),
        ]
    );
}

fn customer_request(key: &str, email: &str) -> CustomerRequest {
    CustomerRequest {
        user_id: UserId::from_uuid(Uuid::from_u128(3)),
        email: email.to_owned(),
        name: "Ada".to_owned(),
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test]
async fn customers_are_one_per_idempotency_key_and_recorded() {
    let gateway = FakeGateway::new();
    let first = gateway
        .create_customer(&customer_request("customer-3", "ada@example.com"))
        .await
        .unwrap();
    assert!(first.starts_with("cus_fake_"), "{first}");
    let again = gateway
        .create_customer(&customer_request("customer-3", "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(gateway.customer_count(), 1);
    assert!(matches!(
        gateway
            .create_customer(&customer_request("customer-3", "other@example.com"))
            .await,
        Err(GatewayError::Rejected { code: Some(code), .. }) if code == "idempotency_key_in_use"
    ));
    let other = gateway
        .create_customer(&customer_request("customer-4", "bo@example.com"))
        .await
        .unwrap();
    assert_ne!(other, first);
    assert_eq!(
        gateway.customers(),
        vec![
            FakeCustomer {
                id: first,
                request: customer_request("customer-3", "ada@example.com"),
            },
            FakeCustomer {
                id: other,
                request: customer_request("customer-4", "bo@example.com"),
            },
        ]
    );
    assert_eq!(gateway.call_count(), 4, "the refused call is recorded too");

    gateway.fail_next(1, GatewayError::NotFound);
    assert_eq!(
        gateway
            .create_customer(&customer_request("customer-5", "cy@example.com"))
            .await,
        Err(GatewayError::NotFound)
    );
    assert_eq!(gateway.customer_count(), 2);
}

#[tokio::test]
async fn a_checkout_for_a_customer_records_it() {
    let gateway = FakeGateway::new();
    let with_customer = CheckoutRequest {
        customer_id: Some("cus_fake_1".to_owned()),
        ..request("k1", 1999)
    };
    let session = gateway
        .create_checkout_session(&with_customer)
        .await
        .unwrap();
    assert_eq!(
        session.bill,
        Some(Bill::of_price(Money::new(1999, Currency::USD).unwrap())),
        "a new session bills its price"
    );
    assert_eq!(
        gateway.checkout_requests()[0].customer_id.as_deref(),
        Some("cus_fake_1")
    );
    // The customer is part of what the idempotency key stands for.
    assert!(matches!(
        gateway.create_checkout_session(&request("k1", 1999)).await,
        Err(GatewayError::Rejected { .. })
    ));
}

fn money(minor: i64, code: &str) -> Money {
    Money::new(minor, Currency::parse(code).unwrap()).unwrap()
}

/// The facts and details of the newest event the fake emitted, decoded as a delivery would be.
async fn newest_event(gateway: &FakeGateway) -> GatewayEvent {
    let page = gateway
        .list_events(&EventQuery {
            created_from: OffsetDateTime::UNIX_EPOCH,
            starting_after: None,
            limit: 1,
        })
        .await
        .unwrap();
    match page.events.into_iter().next() {
        Some(WebhookEvent::Relevant(event)) => event,
        other => panic!("expected a relevant event, got {other:?}"),
    }
}

#[tokio::test]
async fn a_session_paid_with_a_discounted_taxed_converted_bill_charges_and_reports_it() {
    let (gateway, clock) = clocked();
    let session = gateway
        .create_checkout_session(&request("k1", 2000))
        .await
        .unwrap();
    // Presented in EUR: 1850 list, 25% off, 10% tax on the rest; 2000 / 1665 in USD.
    let bill = Bill::new(
        money(1850, "EUR"),
        money(463, "EUR"),
        money(139, "EUR"),
        money(1526, "EUR"),
        Some(Conversion::new(money(2000, "USD"), money(1650, "USD")).unwrap()),
    )
    .unwrap();
    assert!(gateway.apply_promotion_code(&session.id, "promo_spring25"));
    assert!(!gateway.apply_promotion_code("cs_unknown", "promo_spring25"));
    assert!(gateway.pay_session_billed(&session.id, "pi_1", bill));

    let paid = gateway
        .retrieve_checkout_session(&session.id)
        .await
        .unwrap();
    assert_eq!(
        (paid.amount_total, paid.currency, paid.bill),
        (1526, money(0, "EUR").currency(), Some(bill))
    );
    let event = newest_event(&gateway).await;
    assert_eq!(
        event.facts,
        vec![
            PaymentFact::PaymentSucceeded {
                amount: money(1526, "EUR"),
                at: Some(clock.now())
            },
            PaymentFact::Billed(bill),
        ]
    );
    assert_eq!(
        event.details,
        PaymentDetails {
            receipt_url: None,
            promotion_code: Some("promo_spring25".to_owned()),
        }
    );

    // What was charged is what can be refunded, in the currency paid.
    let refund = |minor: i64, code: &str, key: &str| RefundRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::from_u128(1)),
        payment_intent_id: "pi_1".to_owned(),
        amount: money(minor, code),
        reason: None,
        idempotency_key: key.to_owned(),
    };
    assert!(matches!(
        gateway.refund(&refund(100, "USD", "r1")).await,
        Err(GatewayError::Rejected { code: Some(code), .. }) if code == "currency_mismatch"
    ));
    assert!(gateway.refund(&refund(1527, "EUR", "r2")).await.is_err());
    assert_eq!(
        gateway
            .refund(&refund(1526, "EUR", "r3"))
            .await
            .unwrap()
            .amount,
        money(1526, "EUR")
    );
}

#[tokio::test]
async fn a_session_made_free_by_a_code_completes_without_a_payment() {
    let (gateway, clock) = clocked();
    let session = gateway
        .create_checkout_session(&request("k1", 2000))
        .await
        .unwrap();
    let free = Bill::new(
        money(2000, "USD"),
        money(2000, "USD"),
        money(0, "USD"),
        money(0, "USD"),
        None,
    )
    .unwrap();
    gateway.apply_promotion_code(&session.id, "promo_free");
    assert!(gateway.complete_session_without_payment(&session.id, free));
    let completed = gateway
        .retrieve_checkout_session(&session.id)
        .await
        .unwrap();
    assert_eq!(
        (
            completed.status,
            completed.payment_status,
            completed.payment_intent_id.as_deref(),
            completed.amount_total
        ),
        (
            SessionStatus::Complete,
            SessionPaymentStatus::NoPaymentRequired,
            None,
            0
        )
    );
    let event = newest_event(&gateway).await;
    assert_eq!(event.locator.payment_intent_id, None);
    assert_eq!(
        event.facts,
        vec![
            PaymentFact::PaymentSucceeded {
                amount: money(0, "USD"),
                at: Some(clock.now())
            },
            PaymentFact::Billed(free),
        ]
    );
    assert_eq!(event.details.promotion_code.as_deref(), Some("promo_free"));
}

#[test]
fn events_carry_bills_receipts_and_promotion_codes() {
    let gateway = FakeGateway::new();
    let bill = Bill::new(
        money(1000, "JPY"),
        money(100, "JPY"),
        money(90, "JPY"),
        money(990, "JPY"),
        Some(Conversion::new(money(700, "USD"), money(693, "USD")).unwrap()),
    )
    .unwrap();
    let event = FakeEvent::new("evt_1", "charge.succeeded")
        .with_payment_intent("pi_1")
        .with_fact(PaymentFact::Billed(bill))
        .with_receipt_url("https://pay.fake.test/receipts/ch_1")
        .with_details(&PaymentDetails {
            receipt_url: None,
            promotion_code: Some("promo_tenoff".to_owned()),
        });
    let (body, signature) = FakeGateway::signed_event(&event);
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.contains(r#""kind":"billed","currency":"JPY","subtotalCents":1000"#)
            && text.contains(
                r#""conversion":{"currency":"USD","subtotalCents":700,"totalCents":693}"#
            )
            && text.contains(r#""receiptUrl":"https://pay.fake.test/receipts/ch_1""#)
            && text.contains(r#""promotionCode":"promo_tenoff""#),
        "{text}"
    );
    let WebhookEvent::Relevant(verified) = gateway.verify_webhook(&body, Some(&signature)).unwrap()
    else {
        panic!("expected a relevant event")
    };
    assert_eq!(verified.facts, vec![PaymentFact::Billed(bill)]);
    assert_eq!(
        verified.details,
        PaymentDetails {
            receipt_url: Some("https://pay.fake.test/receipts/ch_1".to_owned()),
            promotion_code: Some("promo_tenoff".to_owned()),
        }
    );
    assert_eq!(verified.details, event.details());

    // A bill with a negative amount is malformed.
    let mixed = br#"{"id":"evt_2","type":"x","facts":[{"kind":"billed","currency":"USD","subtotalCents":5,"discountCents":0,"taxCents":0,"totalCents":5,"conversion":{"currency":"EUR","subtotalCents":5,"totalCents":-1}}]}"#;
    assert!(matches!(
        gateway.verify_webhook(mixed, Some(&FakeGateway::signature_for(mixed))),
        Err(WebhookRejection::Malformed(_))
    ));
}
