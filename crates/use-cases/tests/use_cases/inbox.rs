//! The event inbox: every outcome recorded, duplicates counted, transient failures retried by
//! the gateway, permanent ones replayed by an operator, payloads pruned after retention.

use crate::support::{usd, World};
use lms_domain::{PaymentFact, Purchase, PurchaseStatus, Role};
use lms_in_memory::{FakeEvent, FakeGateway, InMemoryStore};
use lms_ports::{EventFilter, EventInbox, EventOutcome, GatewayError, InboxRecord, PageRequest};
use lms_use_cases::{Operator, UseCaseError, WebhookOutcome};
use std::sync::Arc;
use time::Duration;

const PRICE: i64 = 1999;

fn paid(minor: i64) -> PaymentFact {
    PaymentFact::PaymentSucceeded {
        amount: usd(minor),
        at: None,
    }
}

async fn row(world: &World, event_id: &str) -> InboxRecord {
    world
        .store
        .get_event(event_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{event_id} is not in the inbox"))
}

async fn pending(world: &World) -> Purchase {
    let (_, course, buyer) = world.shop(PRICE, true).await;
    world.checkout(&buyer, &course).await.0
}

#[tokio::test]
async fn every_outcome_is_recorded_with_its_purchase_and_payload() {
    let world = World::new();
    let purchase = pending(&world).await;
    let other = pending(&world).await;

    let applied = FakeEvent::new("evt_applied", "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_fact(paid(PRICE));
    let held = FakeEvent::new("evt_held", "checkout.session.completed")
        .for_purchase(other.id)
        .with_fact(paid(500));
    let ignored = FakeEvent::new("evt_ignored", "customer.created");
    let unmatched = FakeEvent::new("evt_unmatched", "charge.succeeded")
        .with_payment_intent("pi_nobody_knows")
        .with_fact(paid(PRICE));

    assert_eq!(
        world.webhook(&applied).await.unwrap(),
        WebhookOutcome::Applied {
            purchase_id: purchase.id,
            status: PurchaseStatus::Completed
        }
    );
    assert_eq!(
        world.webhook(&held).await.unwrap(),
        WebhookOutcome::Held {
            purchase_id: other.id
        }
    );
    assert_eq!(
        world.webhook(&ignored).await.unwrap(),
        WebhookOutcome::Ignored
    );
    assert_eq!(
        world.webhook(&unmatched).await.unwrap(),
        WebhookOutcome::Unmatched
    );

    for (event, outcome, purchase_id) in [
        (&applied, EventOutcome::Applied, Some(purchase.id)),
        (&held, EventOutcome::Held, Some(other.id)),
        (&ignored, EventOutcome::Ignored, None),
        (&unmatched, EventOutcome::Unmatched, None),
    ] {
        let record = row(&world, &event.id).await;
        assert_eq!(record.outcome, outcome, "{}", event.id);
        assert_eq!(record.purchase_id, purchase_id, "{}", event.id);
        assert_eq!(record.event_type, event.event_type);
        assert_eq!(record.delivery_count, 1);
        assert_eq!(record.error, None);
        assert_eq!(
            record.payload.as_deref().map(str::as_bytes),
            Some(event.to_body().as_slice())
        );
    }
}

#[tokio::test]
async fn a_duplicate_only_counts_whatever_the_first_outcome_was() {
    let world = World::new();
    let purchase = pending(&world).await;
    let applied = FakeEvent::new("evt_twice", "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_fact(paid(PRICE));
    let ignored = FakeEvent::new("evt_ignored_twice", "customer.updated");
    world.webhook(&applied).await.unwrap();
    world.webhook(&ignored).await.unwrap();
    let first = row(&world, "evt_twice").await;

    world.clock.advance(Duration::minutes(3));
    assert_eq!(
        world.webhook(&applied).await.unwrap(),
        WebhookOutcome::Duplicate
    );
    assert_eq!(
        world.webhook(&ignored).await.unwrap(),
        WebhookOutcome::Duplicate
    );

    let again = row(&world, "evt_twice").await;
    assert_eq!(again.delivery_count, 2);
    assert_eq!(
        again.last_received_at,
        first.last_received_at + Duration::minutes(3)
    );
    assert_eq!(again.first_received_at, first.first_received_at);
    assert_eq!(again.outcome, EventOutcome::Applied);
    assert_eq!(row(&world, "evt_ignored_twice").await.delivery_count, 2);
}

#[tokio::test]
async fn a_redelivery_of_an_event_recorded_here_is_counted_without_locating_or_asking_the_gateway()
{
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (_, session) = world.checkout(&buyer, &course).await;
    world
        .gateway
        .register_promotion_code("promo_SPRING25", "SPRING25");
    // Located by its payment intent (a lookup), discounted (a gateway call for the code).
    assert!(world.gateway.pay_session(&session.id, "pi_spring"));
    let discounted = FakeEvent::new("evt_discounted", "charge.succeeded")
        .with_payment_intent("pi_spring")
        .with_promotion_code("promo_SPRING25")
        .with_fact(paid(PRICE));
    assert!(matches!(
        world.webhook(&discounted).await.unwrap(),
        WebhookOutcome::Applied { .. }
    ));
    let first = row(&world, "evt_discounted").await;
    let calls = world.gateway.call_count();

    world.clock.advance(Duration::minutes(3));
    for _ in 0..2 {
        assert_eq!(
            world.webhook(&discounted).await.unwrap(),
            WebhookOutcome::Duplicate
        );
    }
    assert_eq!(world.gateway.call_count(), calls, "no gateway call");
    assert_eq!(
        row(&world, "evt_discounted").await,
        InboxRecord {
            delivery_count: 3,
            last_received_at: first.last_received_at + Duration::minutes(3),
            ..first
        }
    );
}

#[tokio::test]
async fn a_redelivery_remembered_but_not_in_the_inbox_is_recorded_as_a_first_delivery() {
    let world = World::new();
    let ignored = FakeEvent::new("evt_elsewhere", "customer.created");
    assert_eq!(
        world.webhook(&ignored).await.unwrap(),
        WebhookOutcome::Ignored
    );
    // The same process (its memory of recent events) over a store that never saw the event.
    let emptied = InMemoryStore::new();
    let mut services = world.services.clone();
    services.inbox = Arc::new(emptied.clone());
    services.purchases = Arc::new(emptied.clone());
    let (body, signature) = FakeGateway::signed_event(&ignored);
    assert_eq!(
        services
            .handle_webhook(&body, Some(&signature))
            .await
            .unwrap(),
        WebhookOutcome::Ignored
    );
    let recorded = emptied
        .get_event("evt_elsewhere")
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(
        (recorded.delivery_count, recorded.outcome),
        (1, EventOutcome::Ignored)
    );
}

#[tokio::test]
async fn a_transient_failure_records_nothing_so_the_gateway_delivers_again() {
    let world = World::new();
    let purchase = pending(&world).await;
    let event = FakeEvent::new("evt_retry", "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_fact(paid(PRICE));

    world.store.set_unavailable(true);
    let refused = world.webhook(&event).await.unwrap_err();
    assert!(
        matches!(refused, UseCaseError::Unavailable(_)),
        "{refused:?}"
    );
    world.store.set_unavailable(false);
    assert!(world.store.get_event("evt_retry").await.unwrap().is_none());

    // Locating through the gateway fails transiently too: nothing recorded either.
    let by_intent = FakeEvent::new("evt_by_intent", "charge.succeeded")
        .with_payment_intent("pi_unknown_yet")
        .with_fact(paid(PRICE));
    world
        .gateway
        .fail_next(1, GatewayError::unavailable("connection reset"));
    assert!(matches!(
        world.webhook(&by_intent).await,
        Err(UseCaseError::Gateway(GatewayError::Unavailable(_)))
    ));
    assert!(world
        .store
        .get_event("evt_by_intent")
        .await
        .unwrap()
        .is_none());

    assert!(matches!(
        world.webhook(&event).await.unwrap(),
        WebhookOutcome::Applied { .. }
    ));
    assert_eq!(row(&world, "evt_retry").await.delivery_count, 1);
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_answered_and_replayed_once_the_cause_is_fixed() {
    let world = World::new();
    let first = pending(&world).await;
    let second = pending(&world).await;
    // The first purchase holds payment intent pi_shared; an event linking it to the second
    // cannot be applied however often it is delivered.
    let linked = FakeEvent::new("evt_link_first", "checkout.session.completed")
        .for_purchase(first.id)
        .with_payment_intent("pi_shared")
        .with_fact(PaymentFact::PaymentProcessing);
    world.webhook(&linked).await.unwrap();
    let conflicting = FakeEvent::new("evt_conflict", "checkout.session.completed")
        .for_purchase(second.id)
        .with_payment_intent("pi_shared")
        .with_fact(paid(PRICE));

    let outcome = world.webhook(&conflicting).await.unwrap();
    let WebhookOutcome::Failed { error } = &outcome else {
        panic!("expected failed, got {outcome:?}");
    };
    assert!(error.contains("payment intent id"), "{error}");
    let record = row(&world, "evt_conflict").await;
    assert_eq!(record.outcome, EventOutcome::Failed);
    assert_eq!(record.error.as_deref(), Some(error.as_str()));
    assert_eq!(record.purchase_id, Some(second.id));
    assert_eq!(
        world.purchase(second.id).await.status(),
        PurchaseStatus::Pending
    );
    // Redelivered: counted, still failed, nothing applied.
    assert_eq!(
        world.webhook(&conflicting).await.unwrap(),
        WebhookOutcome::Duplicate
    );
    assert_eq!(row(&world, "evt_conflict").await.delivery_count, 2);

    // Listed for an operator.
    let admin = world.admin().await;
    let failed = world
        .services
        .list_events(
            Operator::Admin(&admin),
            EventFilter {
                outcome: Some(EventOutcome::Failed),
                since: None,
            },
            PageRequest::new(1, 10),
        )
        .await
        .unwrap();
    assert_eq!(
        failed
            .items
            .iter()
            .map(|r| r.event_id.as_str())
            .collect::<Vec<_>>(),
        ["evt_conflict"]
    );

    // Replaying before the cause is fixed fails again, recorded as such.
    let still = world
        .services
        .replay_event(Operator::Admin(&admin), "evt_conflict")
        .await
        .unwrap();
    assert!(matches!(still, WebhookOutcome::Failed { .. }), "{still:?}");

    // The cause fixed: the first purchase's link was a mistake, so it is moved off the intent.
    world.store.unlink_payment_intent(first.id);
    let replayed = world
        .services
        .replay_event(Operator::Admin(&admin), "evt_conflict")
        .await
        .unwrap();
    assert_eq!(
        replayed,
        WebhookOutcome::Applied {
            purchase_id: second.id,
            status: PurchaseStatus::Completed
        }
    );
    let record = row(&world, "evt_conflict").await;
    assert_eq!(
        (record.outcome, record.error, record.delivery_count),
        (EventOutcome::Applied, None, 2)
    );
    // A second replay is exactly-once: nothing more.
    assert_eq!(
        world
            .services
            .replay_event(Operator::CommandLine, "evt_conflict")
            .await
            .unwrap(),
        WebhookOutcome::Duplicate
    );
    // Each replay is in the audit trail.
    let audit = world
        .services
        .audit_trail(Operator::Admin(&admin), PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(audit.total, 3);
    assert_eq!(audit.items[0].event_id.as_deref(), Some("evt_conflict"));
    assert_eq!(audit.items[0].reason, "was applied, now duplicate");
    assert_eq!(audit.items[1].reason, "was failed, now applied");
}

#[tokio::test]
async fn only_admins_and_the_operator_see_or_replay_events() {
    let world = World::new();
    let student = world.student().await;
    let instructor = world.instructor().await;
    for user in [&student, &instructor] {
        assert_ne!(user.role, Role::Admin);
        assert_eq!(
            world
                .services
                .list_events(
                    Operator::Admin(user),
                    EventFilter::default(),
                    PageRequest::new(1, 10)
                )
                .await
                .unwrap_err(),
            UseCaseError::Forbidden
        );
        assert_eq!(
            world
                .services
                .replay_event(Operator::Admin(user), "evt_x")
                .await
                .unwrap_err(),
            UseCaseError::Forbidden
        );
    }
    assert_eq!(
        world
            .services
            .replay_event(Operator::CommandLine, "evt_missing")
            .await
            .unwrap_err(),
        UseCaseError::NotFound(lms_use_cases::Resource::Event)
    );
}

#[tokio::test]
async fn payloads_past_retention_are_pruned_rows_stay_and_cannot_be_replayed() {
    let world = World::new();
    let purchase = pending(&world).await;
    let old = FakeEvent::new("evt_old", "customer.created");
    world.webhook(&old).await.unwrap();
    world.clock.advance(Duration::days(60));
    let recent = FakeEvent::new("evt_recent", "checkout.session.expired")
        .for_purchase(purchase.id)
        .with_fact(PaymentFact::CheckoutExpired);
    world.webhook(&recent).await.unwrap();
    world.clock.advance(Duration::days(31));

    // 91 days after the first, 31 after the second: only the first is past 90 days.
    let pruned = world
        .services
        .prune_event_payloads(Duration::days(90), 1)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    let old_row = row(&world, "evt_old").await;
    assert_eq!(
        (old_row.payload, old_row.outcome),
        (None, EventOutcome::Ignored)
    );
    assert!(row(&world, "evt_recent").await.payload.is_some());
    assert!(matches!(
        world
            .services
            .replay_event(Operator::CommandLine, "evt_old")
            .await,
        Err(UseCaseError::NotReplayable(_))
    ));
    assert_eq!(
        world
            .services
            .prune_event_payloads(Duration::days(90), 1)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_sync_fills_the_gap_a_dropped_delivery_left_and_finds_nothing_new_after() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let before = lms_ports::Clock::now(&world.clock);
    let (purchase, session) = world.checkout(&buyer, &course).await;
    // The gateway emits checkout.session.completed, but the delivery never arrives.
    world.gateway.pay_session(&session.id, "pi_dropped");
    // Another event does arrive.
    let (body, signature) = world
        .gateway
        .emit(FakeEvent::new("evt_delivered", "customer.created"));
    world
        .services
        .handle_webhook(&body, Some(&signature))
        .await
        .unwrap();
    world.clock.advance(Duration::minutes(5));
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Pending
    );

    let mut pages = Vec::new();
    let tally = world
        .services
        .sync_events(before, &mut |progress| pages.push(progress.seen))
        .await
        .unwrap();

    assert_eq!(tally.to_string(), "1 event: applied 1");
    assert_eq!(pages, [2]);
    let synced = world.purchase(purchase.id).await;
    assert!(synced.unlocks_course());
    assert_eq!(synced.payment_intent_id.as_deref(), Some("pi_dropped"));
    // The delivered event was not processed again.
    assert_eq!(row(&world, "evt_delivered").await.delivery_count, 1);

    let again = world
        .services
        .sync_events(before, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again.to_string(), "0 events");
}

#[tokio::test]
async fn a_sync_starts_within_the_gateway_history_and_not_in_the_future() {
    let world = World::new();
    let now = lms_ports::Clock::now(&world.clock);
    for since in [now + Duration::minutes(1), now - Duration::days(31)] {
        let refused = world
            .services
            .sync_events(since, &mut |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, UseCaseError::Validation(fields) if fields[0].field == "since"),
            "{refused:?}"
        );
    }
    assert!(world.gateway.calls().is_empty());
}

#[tokio::test]
async fn a_forged_request_is_never_stored() {
    let world = World::new();
    let purchase = pending(&world).await;
    let event = FakeEvent::new("evt_forged", "checkout.session.completed")
        .for_purchase(purchase.id)
        .with_fact(paid(PRICE));
    let body = event.to_body();
    for signature in [None, Some("fake-v1=00"), Some("garbage")] {
        assert!(matches!(
            world.services.handle_webhook(&body, signature).await,
            Err(UseCaseError::WebhookRejected(_))
        ));
    }
    assert!(world.store.get_event("evt_forged").await.unwrap().is_none());
    let everything = world
        .store
        .list_events(EventFilter::default(), PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(everything.total, 0);
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Pending
    );
}
