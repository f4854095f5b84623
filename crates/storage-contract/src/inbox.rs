//! The event inbox: what `PurchaseRepo::apply_facts` and `EventInbox::record_event` write
//! for each delivery and replay, and how `EventInbox` reads it back.

use super::{
    applied, apply, envelope, event, first_row, get, paid_in_full, replayed, row, seed_course,
    seed_purchase, unapplied, update, Seeded, Store,
};
use super::{at, begin, usd};
use lms_domain::{PaymentDetails, PaymentFact, PurchaseId, PurchaseStatus};
use lms_ports::{
    Applied, DeliveryKind, EventDelivery, EventEnvelope, EventFilter, EventOutcome, FactUpdate,
    InboxRecord, PageRequest, Recorded, RepoError,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// A payment that does not match a seeded course's price (USD 19.99): holds the purchase.
fn short_payment() -> Vec<PaymentFact> {
    vec![PaymentFact::PaymentSucceeded {
        amount: usd(500),
        at: None,
    }]
}

/// An update carrying `delivery`.
fn with_event(
    delivery: EventDelivery,
    purchase: PurchaseId,
    facts: Vec<PaymentFact>,
    now: OffsetDateTime,
) -> FactUpdate {
    FactUpdate {
        purchase_id: purchase,
        facts,
        payment_intent_id: None,
        details: PaymentDetails::default(),
        event: Some(delivery),
        at: now,
    }
}

/// Records `outcome` for a delivery of [`event`] `id`, which must be new.
async fn record_new<S: Store>(
    store: &S,
    id: &str,
    outcome: EventOutcome,
    error: Option<&str>,
    purchase: Option<PurchaseId>,
    now: OffsetDateTime,
) {
    assert_eq!(
        store
            .record_event(&event(id), &unapplied(outcome, error, purchase), now)
            .await,
        Ok(Recorded::Written),
        "{id}"
    );
}

fn ids(records: &[InboxRecord]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record.event_id.as_str())
        .collect()
}

async fn all_events<S: Store>(store: &S, filter: EventFilter) -> Vec<InboxRecord> {
    let page = store
        .list_events(filter, PageRequest::new(1, 100))
        .await
        .unwrap();
    assert_eq!(page.total, page.items.len() as u64, "{filter:?}");
    page.items
}

// ---------------------------------------------------------------------------------------------
// apply_facts: deliveries
// ---------------------------------------------------------------------------------------------

pub async fn apply_facts_records_a_delivered_event_in_the_inbox<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    assert_eq!(store.get_event("evt_live").await.unwrap(), None);

    // A live-mode event of another type, created well before it was received.
    let live = EventEnvelope {
        id: "evt_live".to_owned(),
        event_type: "charge.succeeded".to_owned(),
        livemode: true,
        created: at(-3600),
        payload: r#"{"id":"evt_live","livemode":true,"data":{"amount":1999}}"#.to_owned(),
    };
    let delivery = EventDelivery {
        envelope: live.clone(),
        kind: DeliveryKind::Delivered,
    };
    let paid = applied(
        store
            .apply_facts(&with_event(delivery, purchase.id, paid_in_full(), at(2)))
            .await
            .unwrap(),
    );
    assert_eq!(paid.status(), PurchaseStatus::Completed);
    assert_eq!(
        row(&store, "evt_live").await,
        first_row(&live, at(2), EventOutcome::Applied, None, Some(purchase.id))
    );

    // An event teaching nothing new is recorded as applied too.
    let same = apply(&store, purchase.id, paid_in_full(), Some("evt_test"), at(3)).await;
    assert_eq!(same, paid);
    assert_eq!(
        row(&store, "evt_test").await,
        first_row(
            &envelope("evt_test"),
            at(3),
            EventOutcome::Applied,
            None,
            Some(purchase.id)
        )
    );

    // Facts learned without an event record nothing.
    apply(
        &store,
        purchase.id,
        vec![PaymentFact::DisputeOpened],
        None,
        at(4),
    )
    .await;
    let listed = all_events(&store, EventFilter::default()).await;
    assert_eq!(ids(&listed), ["evt_test", "evt_live"]);
}

pub async fn apply_facts_records_a_mismatched_payment_as_held<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    let held = apply(
        &store,
        purchase.id,
        short_payment(),
        Some("evt_short"),
        at(2),
    )
    .await;
    assert!(held.review_reason().is_some());
    let held_row = first_row(
        &envelope("evt_short"),
        at(2),
        EventOutcome::Held,
        None,
        Some(purchase.id),
    );
    assert_eq!(row(&store, "evt_short").await, held_row);

    // Another event while the purchase is held: held too.
    apply(
        &store,
        purchase.id,
        vec![PaymentFact::PaymentAttemptFailed],
        Some("evt_attempt"),
        at(3),
    )
    .await;
    assert_eq!(
        row(&store, "evt_attempt").await,
        first_row(
            &envelope("evt_attempt"),
            at(3),
            EventOutcome::Held,
            None,
            Some(purchase.id)
        )
    );

    // Once an operator accepts the payment the purchase unlocks: the next event is applied.
    let accepted = apply(
        &store,
        purchase.id,
        vec![PaymentFact::AcceptedByOperator],
        None,
        at(4),
    )
    .await;
    assert_eq!(accepted.status(), PurchaseStatus::Completed);
    assert_eq!(accepted.review_reason(), None);
    apply(
        &store,
        purchase.id,
        vec![PaymentFact::DisputeOpened],
        Some("evt_dispute"),
        at(5),
    )
    .await;
    assert_eq!(
        row(&store, "evt_dispute").await,
        first_row(
            &envelope("evt_dispute"),
            at(5),
            EventOutcome::Applied,
            None,
            Some(purchase.id)
        )
    );
    // The earlier rows keep the outcome they had.
    assert_eq!(row(&store, "evt_short").await, held_row);
}

pub async fn apply_facts_redelivery_only_counts<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    let paid = apply(&store, purchase.id, paid_in_full(), Some("evt_paid"), at(2)).await;
    let first = row(&store, "evt_paid").await;
    assert_eq!(
        first,
        first_row(
            &envelope("evt_paid"),
            at(2),
            EventOutcome::Applied,
            None,
            Some(purchase.id)
        )
    );

    // Redelivered later with another body, other facts and a payment intent: only counted.
    let mut other_body = event("evt_paid");
    other_body.envelope.payload = r#"{"id":"evt_paid","redelivered":true}"#.to_owned();
    let redelivery = FactUpdate {
        payment_intent_id: Some("pi_redelivered".to_owned()),
        ..with_event(
            other_body,
            purchase.id,
            vec![PaymentFact::Refunded { total: usd(1999) }],
            at(7),
        )
    };
    assert_eq!(
        store.apply_facts(&redelivery).await,
        Ok(Applied::DuplicateEvent)
    );
    assert_eq!(
        row(&store, "evt_paid").await,
        InboxRecord {
            last_received_at: at(7),
            delivery_count: 2,
            ..first.clone()
        }
    );
    assert_eq!(get(&store, purchase.id).await, paid);
    assert_eq!(
        store
            .find_by_payment_intent("pi_redelivered")
            .await
            .unwrap(),
        None
    );

    // A third delivery, naming another purchase: counted, that purchase untouched.
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let other = begin(&buyer, &other_course, at(8));
    store.create_purchase(&other).await.unwrap();
    let stray = update(
        other.id,
        vec![PaymentFact::CheckoutExpired],
        Some("evt_paid"),
        at(9),
    );
    assert_eq!(store.apply_facts(&stray).await, Ok(Applied::DuplicateEvent));
    assert_eq!(
        row(&store, "evt_paid").await,
        InboxRecord {
            last_received_at: at(9),
            delivery_count: 3,
            ..first
        }
    );
    assert_eq!(get(&store, other.id).await, other);
    assert_eq!(get(&store, purchase.id).await, paid);
}

pub async fn apply_facts_redelivery_of_an_unsettled_event_only_counts<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    let error = "the purchase's course could not be loaded";
    record_new(
        &store,
        "evt_failed",
        EventOutcome::Failed,
        Some(error),
        Some(purchase.id),
        at(2),
    )
    .await;
    record_new(
        &store,
        "evt_ignored",
        EventOutcome::Ignored,
        None,
        None,
        at(3),
    )
    .await;
    record_new(
        &store,
        "evt_unmatched",
        EventOutcome::Unmatched,
        None,
        None,
        at(4),
    )
    .await;

    for (id, received) in [
        ("evt_failed", at(6)),
        ("evt_ignored", at(7)),
        ("evt_unmatched", at(8)),
    ] {
        let before = row(&store, id).await;
        let delivered = update(purchase.id, paid_in_full(), Some(id), received);
        assert_eq!(
            store.apply_facts(&delivered).await,
            Ok(Applied::DuplicateEvent),
            "{id}"
        );
        assert_eq!(
            row(&store, id).await,
            InboxRecord {
                last_received_at: received,
                delivery_count: 2,
                ..before
            },
            "{id}"
        );
    }
    assert_eq!(
        row(&store, "evt_failed").await,
        InboxRecord {
            last_received_at: at(6),
            delivery_count: 2,
            ..first_row(
                &envelope("evt_failed"),
                at(2),
                EventOutcome::Failed,
                Some(error),
                Some(purchase.id)
            )
        }
    );
    assert_eq!(get(&store, purchase.id).await, purchase, "nothing merged");
}

// ---------------------------------------------------------------------------------------------
// apply_facts: replays
// ---------------------------------------------------------------------------------------------

pub async fn apply_facts_replay_of_a_settled_event_changes_nothing<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    let paid = apply(&store, purchase.id, paid_in_full(), Some("evt_paid"), at(2)).await;
    let paid_row = row(&store, "evt_paid").await;
    assert_eq!(paid_row.outcome, EventOutcome::Applied);

    let other_course = seed_course(&store, &instructor, at(0)).await;
    let short = begin(&buyer, &other_course, at(1));
    store.create_purchase(&short).await.unwrap();
    let held = apply(&store, short.id, short_payment(), Some("evt_short"), at(3)).await;
    let held_row = row(&store, "evt_short").await;
    assert_eq!(held_row.outcome, EventOutcome::Held);

    // Replayed with other facts, later: not applied, not counted.
    for (id, target) in [("evt_paid", purchase.id), ("evt_short", short.id)] {
        let replay = with_event(
            replayed(id),
            target,
            vec![PaymentFact::Refunded { total: usd(1999) }],
            at(9),
        );
        assert_eq!(
            store.apply_facts(&replay).await,
            Ok(Applied::DuplicateEvent),
            "{id}"
        );
    }
    assert_eq!(row(&store, "evt_paid").await, paid_row);
    assert_eq!(row(&store, "evt_short").await, held_row);
    assert_eq!(get(&store, purchase.id).await, paid);
    assert_eq!(get(&store, short.id).await, held);
}

pub async fn apply_facts_replay_of_an_unsettled_event_applies_and_overwrites_its_outcome<
    S: Store,
>(
    store: S,
) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    // Failed (naming the purchase), and delivered once more before the cause was fixed.
    let failure = unapplied(
        EventOutcome::Failed,
        Some("the course was missing"),
        Some(purchase.id),
    );
    assert_eq!(
        store
            .record_event(&event("evt_failed"), &failure, at(2))
            .await,
        Ok(Recorded::Written)
    );
    assert_eq!(
        store
            .record_event(&event("evt_failed"), &failure, at(3))
            .await,
        Ok(Recorded::Duplicate)
    );

    let replay = with_event(replayed("evt_failed"), purchase.id, paid_in_full(), at(10));
    let saved = applied(store.apply_facts(&replay).await.unwrap());
    assert_eq!(saved.status(), PurchaseStatus::Completed);
    assert_eq!(saved.updated_at, at(10));
    assert_eq!(get(&store, purchase.id).await, saved);
    // Outcome, error and purchase overwritten; receipt times and delivery count kept.
    let replayed_row = InboxRecord {
        last_received_at: at(3),
        delivery_count: 2,
        ..first_row(
            &envelope("evt_failed"),
            at(2),
            EventOutcome::Applied,
            None,
            Some(purchase.id),
        )
    };
    assert_eq!(row(&store, "evt_failed").await, replayed_row);
    // Now applied: replaying it again changes nothing.
    let again = with_event(
        replayed("evt_failed"),
        purchase.id,
        vec![PaymentFact::Refunded { total: usd(1999) }],
        at(11),
    );
    assert_eq!(store.apply_facts(&again).await, Ok(Applied::DuplicateEvent));
    assert_eq!(row(&store, "evt_failed").await, replayed_row);
    assert_eq!(get(&store, purchase.id).await, saved);

    // Unmatched (no purchase known): the replay names it, and a payment that holds the
    // purchase is recorded as held.
    let second_course = seed_course(&store, &instructor, at(0)).await;
    let second = begin(&buyer, &second_course, at(4));
    store.create_purchase(&second).await.unwrap();
    record_new(
        &store,
        "evt_unmatched",
        EventOutcome::Unmatched,
        None,
        None,
        at(5),
    )
    .await;
    let held = applied(
        store
            .apply_facts(&with_event(
                replayed("evt_unmatched"),
                second.id,
                short_payment(),
                at(12),
            ))
            .await
            .unwrap(),
    );
    assert!(held.review_reason().is_some());
    assert_eq!(get(&store, second.id).await, held);
    assert_eq!(
        row(&store, "evt_unmatched").await,
        first_row(
            &envelope("evt_unmatched"),
            at(5),
            EventOutcome::Held,
            None,
            Some(second.id)
        )
    );

    // Ignored: applied like the others.
    let third_course = seed_course(&store, &instructor, at(0)).await;
    let third = begin(&buyer, &third_course, at(6));
    store.create_purchase(&third).await.unwrap();
    record_new(
        &store,
        "evt_ignored",
        EventOutcome::Ignored,
        None,
        None,
        at(7),
    )
    .await;
    let expired = applied(
        store
            .apply_facts(&with_event(
                replayed("evt_ignored"),
                third.id,
                vec![PaymentFact::CheckoutExpired],
                at(13),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(expired.status(), PurchaseStatus::Failed);
    assert_eq!(
        row(&store, "evt_ignored").await,
        first_row(
            &envelope("evt_ignored"),
            at(7),
            EventOutcome::Applied,
            None,
            Some(third.id)
        )
    );
}

pub async fn apply_facts_replay_of_an_event_not_in_the_inbox_applies_and_records_it<S: Store>(
    store: S,
) {
    let purchase = seed_purchase(&store).await.purchase;
    let replay = with_event(replayed("evt_lost"), purchase.id, paid_in_full(), at(4));
    let saved = applied(store.apply_facts(&replay).await.unwrap());
    assert_eq!(saved.status(), PurchaseStatus::Completed);
    // Recorded as a first delivery would be.
    let recorded = first_row(
        &envelope("evt_lost"),
        at(4),
        EventOutcome::Applied,
        None,
        Some(purchase.id),
    );
    assert_eq!(row(&store, "evt_lost").await, recorded);
    assert_eq!(
        store
            .apply_facts(&FactUpdate {
                at: at(5),
                ..replay
            })
            .await,
        Ok(Applied::DuplicateEvent)
    );
    assert_eq!(row(&store, "evt_lost").await, recorded);
}

pub async fn apply_facts_refused_replay_records_nothing<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    record_new(
        &store,
        "evt_failed",
        EventOutcome::Failed,
        Some("no purchase"),
        None,
        at(2),
    )
    .await;
    let before = row(&store, "evt_failed").await;

    // An unknown purchase: NotFound, the row as it was.
    let ghost = PurchaseId::from_uuid(Uuid::new_v4());
    assert_eq!(
        store
            .apply_facts(&with_event(
                replayed("evt_failed"),
                ghost,
                paid_in_full(),
                at(5)
            ))
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(row(&store, "evt_failed").await, before);
    assert_eq!(
        store
            .apply_facts(&with_event(
                replayed("evt_none"),
                ghost,
                paid_in_full(),
                at(5)
            ))
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(store.get_event("evt_none").await.unwrap(), None);

    // A payment intent linked to another purchase: Duplicate, the row as it was.
    let owner = FactUpdate {
        payment_intent_id: Some("pi_taken".to_owned()),
        ..update(purchase.id, paid_in_full(), None, at(3))
    };
    applied(store.apply_facts(&owner).await.unwrap());
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let other = begin(&buyer, &other_course, at(4));
    store.create_purchase(&other).await.unwrap();
    let stealing = FactUpdate {
        payment_intent_id: Some("pi_taken".to_owned()),
        ..with_event(replayed("evt_failed"), other.id, paid_in_full(), at(6))
    };
    assert_eq!(
        store.apply_facts(&stealing).await,
        Err(RepoError::Duplicate("payment_intent_id"))
    );
    assert_eq!(row(&store, "evt_failed").await, before);
    assert_eq!(get(&store, other.id).await, other);
}

pub async fn concurrent_replays_of_one_failed_event_apply_once<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    record_new(
        &store,
        "evt_retry",
        EventOutcome::Failed,
        Some("timed out"),
        None,
        at(2),
    )
    .await;

    let replay = with_event(replayed("evt_retry"), purchase.id, paid_in_full(), at(10));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        let replay = replay.clone();
        tasks.spawn(async move { store.apply_facts(&replay).await });
    }
    let (mut applied_count, mut duplicates) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(Applied::Applied {
                purchase: saved, ..
            }) => {
                applied_count += 1;
                assert_eq!(saved.status(), PurchaseStatus::Completed);
            }
            Ok(Applied::DuplicateEvent) => duplicates += 1,
            Err(error) => panic!("a replay failed: {error}"),
        }
    }
    assert_eq!((applied_count, duplicates), (1, 9));
    assert_eq!(
        row(&store, "evt_retry").await,
        first_row(
            &envelope("evt_retry"),
            at(2),
            EventOutcome::Applied,
            None,
            Some(purchase.id)
        )
    );
    let saved = get(&store, purchase.id).await;
    assert_eq!(saved.status(), PurchaseStatus::Completed);
    assert_eq!(saved.updated_at, at(10));
}

// ---------------------------------------------------------------------------------------------
// record_event
// ---------------------------------------------------------------------------------------------

pub async fn record_event_inserts_a_new_event_with_its_outcome<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    let cases = [
        (
            "evt_ignored",
            unapplied(EventOutcome::Ignored, None, None),
            at(2),
        ),
        (
            "evt_ignored_known",
            unapplied(EventOutcome::Ignored, None, Some(purchase.id)),
            at(3),
        ),
        (
            "evt_unmatched",
            unapplied(EventOutcome::Unmatched, None, None),
            at(4),
        ),
        (
            "evt_failed",
            unapplied(
                EventOutcome::Failed,
                Some("the course is gone: «Ünïcødé» ✓\nsecond line"),
                Some(purchase.id),
            ),
            at(5),
        ),
        (
            "evt_failed_alone",
            unapplied(EventOutcome::Failed, Some("no purchase"), None),
            at(6),
        ),
    ];
    for (id, outcome, received) in &cases {
        assert_eq!(
            store.record_event(&event(id), outcome, *received).await,
            Ok(Recorded::Written),
            "{id}"
        );
        assert_eq!(
            row(&store, id).await,
            first_row(
                &envelope(id),
                *received,
                outcome.outcome,
                outcome.error.as_deref(),
                outcome.purchase_id
            ),
            "{id}"
        );
    }

    // Every field of the envelope is kept as given.
    let live = EventEnvelope {
        id: "evt_live".to_owned(),
        event_type: "customer.created".to_owned(),
        livemode: true,
        created: at(-86_400),
        payload: "not json at all".to_owned(),
    };
    let delivery = EventDelivery {
        envelope: live.clone(),
        kind: DeliveryKind::Delivered,
    };
    assert_eq!(
        store
            .record_event(
                &delivery,
                &unapplied(EventOutcome::Ignored, None, None),
                at(7)
            )
            .await,
        Ok(Recorded::Written)
    );
    assert_eq!(
        row(&store, "evt_live").await,
        first_row(&live, at(7), EventOutcome::Ignored, None, None)
    );
    assert_eq!(
        get(&store, purchase.id).await,
        purchase,
        "no purchase changes"
    );
    assert_eq!(all_events(&store, EventFilter::default()).await.len(), 6);
}

pub async fn record_event_redelivery_only_counts_whatever_the_outcome<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    record_new(
        &store,
        "evt_ignored",
        EventOutcome::Ignored,
        None,
        None,
        at(2),
    )
    .await;

    // Delivered again, reported with another outcome and body: only counted.
    let mut other_body = event("evt_ignored");
    other_body.envelope.payload = "{}".to_owned();
    let other_outcome = unapplied(EventOutcome::Failed, Some("boom"), Some(purchase.id));
    assert_eq!(
        store.record_event(&other_body, &other_outcome, at(5)).await,
        Ok(Recorded::Duplicate)
    );
    let first = first_row(
        &envelope("evt_ignored"),
        at(2),
        EventOutcome::Ignored,
        None,
        None,
    );
    assert_eq!(
        row(&store, "evt_ignored").await,
        InboxRecord {
            last_received_at: at(5),
            delivery_count: 2,
            ..first.clone()
        }
    );
    assert_eq!(
        store
            .record_event(
                &event("evt_ignored"),
                &unapplied(EventOutcome::Ignored, None, None),
                at(6)
            )
            .await,
        Ok(Recorded::Duplicate)
    );
    assert_eq!(
        row(&store, "evt_ignored").await,
        InboxRecord {
            last_received_at: at(6),
            delivery_count: 3,
            ..first
        }
    );

    // An event applied by apply_facts, delivered again and recorded here: counted, still applied.
    let paid = apply(&store, purchase.id, paid_in_full(), Some("evt_paid"), at(7)).await;
    assert_eq!(
        store
            .record_event(
                &event("evt_paid"),
                &unapplied(EventOutcome::Unmatched, None, None),
                at(8)
            )
            .await,
        Ok(Recorded::Duplicate)
    );
    assert_eq!(
        row(&store, "evt_paid").await,
        InboxRecord {
            last_received_at: at(8),
            delivery_count: 2,
            ..first_row(
                &envelope("evt_paid"),
                at(7),
                EventOutcome::Applied,
                None,
                Some(purchase.id)
            )
        }
    );
    assert_eq!(get(&store, purchase.id).await, paid);
}

pub async fn count_redelivery_counts_a_recorded_event_whatever_its_outcome_and_nothing_else<
    S: Store,
>(
    store: S,
) {
    let purchase = seed_purchase(&store).await.purchase;
    record_new(
        &store,
        "evt_unmatched",
        EventOutcome::Unmatched,
        None,
        None,
        at(1),
    )
    .await;
    let paid = apply(
        &store,
        purchase.id,
        paid_in_full(),
        Some("evt_applied"),
        at(2),
    )
    .await;
    let recorded = |id: &str, outcome, purchase_id, first| {
        first_row(&envelope(id), at(first), outcome, None, purchase_id)
    };

    // Given to the nanosecond: kept as precisely as the store keeps receipt times.
    let late = at(5) + time::Duration::nanoseconds(123_456_789);
    for (id, when) in [
        ("evt_unmatched", late),
        ("evt_applied", at(6)),
        ("evt_applied", at(7)),
    ] {
        assert_eq!(store.count_redelivery(id, when).await, Ok(true), "{id}");
    }

    let counted = row(&store, "evt_unmatched").await;
    let kept = counted.last_received_at - at(5);
    assert!(
        kept >= time::Duration::microseconds(123_456)
            && kept <= time::Duration::nanoseconds(123_456_789),
        "last receipt time {} kept to the microsecond at least",
        counted.last_received_at
    );
    assert_eq!(
        counted,
        InboxRecord {
            last_received_at: counted.last_received_at,
            delivery_count: 2,
            ..recorded("evt_unmatched", EventOutcome::Unmatched, None, 1)
        }
    );
    assert_eq!(
        row(&store, "evt_applied").await,
        InboxRecord {
            last_received_at: at(7),
            delivery_count: 3,
            ..recorded("evt_applied", EventOutcome::Applied, Some(purchase.id), 2)
        }
    );
    assert_eq!(
        get(&store, purchase.id).await,
        paid,
        "the purchase is left alone"
    );

    // An event the inbox does not hold: nothing written, nor inserted.
    assert_eq!(
        store.count_redelivery("evt_unknown", at(8)).await,
        Ok(false)
    );
    assert_eq!(store.get_event("evt_unknown").await, Ok(None));
    assert_eq!(
        all_events(&store, EventFilter::default()).await.len(),
        2,
        "no other row"
    );
}

pub async fn record_event_refuses_applied_and_held_outcomes<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    record_new(
        &store,
        "evt_known",
        EventOutcome::Failed,
        Some("x"),
        None,
        at(2),
    )
    .await;
    let known = row(&store, "evt_known").await;

    for outcome in [EventOutcome::Applied, EventOutcome::Held] {
        for kind in [DeliveryKind::Delivered, DeliveryKind::Replayed] {
            for id in ["evt_new", "evt_known"] {
                let delivery = EventDelivery {
                    envelope: envelope(id),
                    kind,
                };
                let result = store
                    .record_event(
                        &delivery,
                        &unapplied(outcome, None, Some(purchase.id)),
                        at(9),
                    )
                    .await;
                assert!(
                    matches!(result, Err(RepoError::Unexpected(_))),
                    "{outcome} {kind:?} {id}: {result:?}"
                );
            }
        }
    }
    assert_eq!(store.get_event("evt_new").await.unwrap(), None);
    assert_eq!(row(&store, "evt_known").await, known);
    assert_eq!(get(&store, purchase.id).await, purchase);
}

pub async fn record_event_replay_overwrites_an_unsettled_outcome<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    let failure = unapplied(EventOutcome::Failed, Some("down"), Some(purchase.id));
    assert_eq!(
        store.record_event(&event("evt_a"), &failure, at(2)).await,
        Ok(Recorded::Written)
    );
    assert_eq!(
        store.record_event(&event("evt_a"), &failure, at(3)).await,
        Ok(Recorded::Duplicate)
    );

    // Outcome, error and purchase overwritten (absent ones too); receipts and count kept.
    assert_eq!(
        store
            .record_event(
                &replayed("evt_a"),
                &unapplied(EventOutcome::Unmatched, None, None),
                at(9)
            )
            .await,
        Ok(Recorded::Written)
    );
    let kept = |outcome, error, purchase_id| InboxRecord {
        last_received_at: at(3),
        delivery_count: 2,
        ..first_row(&envelope("evt_a"), at(2), outcome, error, purchase_id)
    };
    assert_eq!(
        row(&store, "evt_a").await,
        kept(EventOutcome::Unmatched, None, None)
    );
    assert_eq!(
        store
            .record_event(
                &replayed("evt_a"),
                &unapplied(EventOutcome::Failed, Some("still down"), Some(purchase.id)),
                at(10)
            )
            .await,
        Ok(Recorded::Written)
    );
    assert_eq!(
        row(&store, "evt_a").await,
        kept(EventOutcome::Failed, Some("still down"), Some(purchase.id))
    );
    assert_eq!(
        store
            .record_event(
                &replayed("evt_a"),
                &unapplied(EventOutcome::Ignored, None, Some(purchase.id)),
                at(11)
            )
            .await,
        Ok(Recorded::Written)
    );
    assert_eq!(
        row(&store, "evt_a").await,
        kept(EventOutcome::Ignored, None, Some(purchase.id))
    );

    // A replay of an event the inbox does not hold is inserted as a delivery would be.
    assert_eq!(
        store
            .record_event(
                &replayed("evt_b"),
                &unapplied(EventOutcome::Failed, Some("gone"), None),
                at(12)
            )
            .await,
        Ok(Recorded::Written)
    );
    assert_eq!(
        row(&store, "evt_b").await,
        first_row(
            &envelope("evt_b"),
            at(12),
            EventOutcome::Failed,
            Some("gone"),
            None
        )
    );
    assert_eq!(get(&store, purchase.id).await, purchase);
}

pub async fn record_event_replay_leaves_a_settled_event_alone<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    let paid = apply(&store, purchase.id, paid_in_full(), Some("evt_paid"), at(2)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let short = begin(&buyer, &other_course, at(1));
    store.create_purchase(&short).await.unwrap();
    let held = apply(&store, short.id, short_payment(), Some("evt_short"), at(3)).await;
    let paid_row = row(&store, "evt_paid").await;
    let held_row = row(&store, "evt_short").await;
    assert_eq!(
        (paid_row.outcome, held_row.outcome),
        (EventOutcome::Applied, EventOutcome::Held)
    );

    for id in ["evt_paid", "evt_short"] {
        for outcome in [
            EventOutcome::Ignored,
            EventOutcome::Unmatched,
            EventOutcome::Failed,
        ] {
            assert_eq!(
                store
                    .record_event(&replayed(id), &unapplied(outcome, Some("x"), None), at(9))
                    .await,
                Ok(Recorded::Duplicate),
                "{id} {outcome}"
            );
        }
    }
    assert_eq!(row(&store, "evt_paid").await, paid_row);
    assert_eq!(row(&store, "evt_short").await, held_row);
    assert_eq!(get(&store, purchase.id).await, paid);
    assert_eq!(get(&store, short.id).await, held);
}

// ---------------------------------------------------------------------------------------------
// mark_failed
// ---------------------------------------------------------------------------------------------

pub async fn mark_failed_marks_any_event_failed_and_a_replay_applies_it_again<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    let paid = apply(&store, purchase.id, paid_in_full(), Some("evt_paid"), at(2)).await;
    assert_eq!(
        store
            .apply_facts(&update(
                purchase.id,
                paid_in_full(),
                Some("evt_paid"),
                at(3)
            ))
            .await,
        Ok(Applied::DuplicateEvent)
    );

    // Applied: marked failed; purchase, receipt times and delivery count stay.
    assert_eq!(
        store
            .mark_failed("evt_paid", "the gateway refused the refund")
            .await,
        Ok(())
    );
    let delivered_twice = |outcome, error| InboxRecord {
        last_received_at: at(3),
        delivery_count: 2,
        ..first_row(
            &envelope("evt_paid"),
            at(2),
            outcome,
            error,
            Some(purchase.id),
        )
    };
    assert_eq!(
        row(&store, "evt_paid").await,
        delivered_twice(EventOutcome::Failed, Some("the gateway refused the refund"))
    );
    assert_eq!(get(&store, purchase.id).await, paid);
    // Marked again: the newer error replaces the older.
    store
        .mark_failed("evt_paid", "refused again")
        .await
        .unwrap();
    assert_eq!(
        row(&store, "evt_paid").await,
        delivered_twice(EventOutcome::Failed, Some("refused again"))
    );

    // A replay runs it again: the known facts change nothing, the row is applied once more.
    let replay = with_event(replayed("evt_paid"), purchase.id, paid_in_full(), at(10));
    assert_eq!(
        store.apply_facts(&replay).await,
        Ok(Applied::Applied {
            purchase: paid.clone(),
            others: Vec::new()
        })
    );
    assert_eq!(
        row(&store, "evt_paid").await,
        delivered_twice(EventOutcome::Applied, None)
    );
    assert_eq!(get(&store, purchase.id).await, paid);

    // Held and ignored events can be marked failed too.
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let short = begin(&buyer, &other_course, at(1));
    store.create_purchase(&short).await.unwrap();
    apply(&store, short.id, short_payment(), Some("evt_short"), at(4)).await;
    store.mark_failed("evt_short", "held").await.unwrap();
    assert_eq!(
        row(&store, "evt_short").await,
        first_row(
            &envelope("evt_short"),
            at(4),
            EventOutcome::Failed,
            Some("held"),
            Some(short.id)
        )
    );
    record_new(
        &store,
        "evt_ignored",
        EventOutcome::Ignored,
        None,
        None,
        at(5),
    )
    .await;
    store.mark_failed("evt_ignored", "ignored").await.unwrap();
    assert_eq!(
        row(&store, "evt_ignored").await,
        first_row(
            &envelope("evt_ignored"),
            at(5),
            EventOutcome::Failed,
            Some("ignored"),
            None
        )
    );

    // An unknown event: NotFound, nothing recorded.
    assert_eq!(
        store.mark_failed("evt_unknown", "x").await,
        Err(RepoError::NotFound)
    );
    assert_eq!(store.get_event("evt_unknown").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Reading the inbox
// ---------------------------------------------------------------------------------------------

pub async fn inbox_lists_most_recently_received_first_ties_by_id_and_paged<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    let empty = store
        .list_events(EventFilter::default(), PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!((empty.items, empty.total), (vec![], 0));

    record_new(&store, "evt_b", EventOutcome::Ignored, None, None, at(1)).await;
    apply(&store, purchase.id, paid_in_full(), Some("evt_f"), at(2)).await;
    record_new(&store, "evt_d", EventOutcome::Unmatched, None, None, at(3)).await;
    record_new(
        &store,
        "evt_a",
        EventOutcome::Failed,
        Some("x"),
        None,
        at(3),
    )
    .await;
    record_new(&store, "evt_e", EventOutcome::Ignored, None, None, at(3)).await;
    record_new(&store, "evt_c", EventOutcome::Ignored, None, None, at(5)).await;
    // Delivered again later: the first receipt still orders it.
    assert_eq!(
        store
            .record_event(
                &event("evt_b"),
                &unapplied(EventOutcome::Ignored, None, None),
                at(9)
            )
            .await,
        Ok(Recorded::Duplicate)
    );

    // Most recently first received first; ties by id, the greater first (as every listing).
    let order = ["evt_c", "evt_e", "evt_d", "evt_a", "evt_f", "evt_b"];
    let mut expected = Vec::new();
    for id in order {
        expected.push(row(&store, id).await);
    }
    let all = store
        .list_events(EventFilter::default(), PageRequest::new(1, 100))
        .await
        .unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(all.items, expected);

    let mut paged = Vec::new();
    for page in 1..=2 {
        let got = store
            .list_events(EventFilter::default(), PageRequest::new(page, 4))
            .await
            .unwrap();
        assert_eq!(got.total, 6, "page {page}");
        assert_eq!(
            got.items.len(),
            if page == 1 { 4 } else { 2 },
            "page {page}"
        );
        paged.extend(got.items);
    }
    assert_eq!(paged, expected, "pages neither overlap nor skip");
    let beyond = store
        .list_events(EventFilter::default(), PageRequest::new(3, 4))
        .await
        .unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 6));
}

pub async fn inbox_lists_filtered_by_outcome_and_since<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let short = begin(&buyer, &other_course, at(1));
    store.create_purchase(&short).await.unwrap();

    record_new(
        &store,
        "evt_ignored_1",
        EventOutcome::Ignored,
        None,
        None,
        at(1),
    )
    .await;
    record_new(
        &store,
        "evt_failed_1",
        EventOutcome::Failed,
        Some("x"),
        None,
        at(2),
    )
    .await;
    apply(
        &store,
        purchase.id,
        paid_in_full(),
        Some("evt_applied"),
        at(3),
    )
    .await;
    record_new(
        &store,
        "evt_failed_2",
        EventOutcome::Failed,
        Some("y"),
        None,
        at(4),
    )
    .await;
    apply(&store, short.id, short_payment(), Some("evt_held"), at(5)).await;
    record_new(
        &store,
        "evt_unmatched",
        EventOutcome::Unmatched,
        None,
        None,
        at(6),
    )
    .await;
    record_new(
        &store,
        "evt_ignored_2",
        EventOutcome::Ignored,
        None,
        None,
        at(7),
    )
    .await;
    // A redelivery after every `since` below does not make an old event match it.
    assert_eq!(
        store
            .record_event(
                &event("evt_failed_1"),
                &unapplied(EventOutcome::Failed, Some("x"), None),
                at(20)
            )
            .await,
        Ok(Recorded::Duplicate)
    );

    let by_outcome = |outcome| EventFilter {
        outcome: Some(outcome),
        since: None,
    };
    let expected: [(EventOutcome, &[&str]); 5] = [
        (EventOutcome::Applied, &["evt_applied"]),
        (EventOutcome::Held, &["evt_held"]),
        (EventOutcome::Ignored, &["evt_ignored_2", "evt_ignored_1"]),
        (EventOutcome::Unmatched, &["evt_unmatched"]),
        (EventOutcome::Failed, &["evt_failed_2", "evt_failed_1"]),
    ];
    for (outcome, wanted) in expected {
        let listed = all_events(&store, by_outcome(outcome)).await;
        assert_eq!(ids(&listed), wanted, "{outcome}");
        assert!(listed.iter().all(|record| record.outcome == outcome));
    }

    // Since is inclusive: first received at or after it.
    let since = |seconds| EventFilter {
        outcome: None,
        since: Some(at(seconds)),
    };
    assert_eq!(
        ids(&all_events(&store, since(4)).await),
        ["evt_ignored_2", "evt_unmatched", "evt_held", "evt_failed_2"]
    );
    assert!(all_events(&store, since(8)).await.is_empty());
    assert_eq!(all_events(&store, since(1)).await.len(), 7);
    let both = EventFilter {
        outcome: Some(EventOutcome::Failed),
        since: Some(at(4)),
    };
    assert_eq!(ids(&all_events(&store, both).await), ["evt_failed_2"]);

    // Paged within a filter: the total counts the matching events only.
    let second = store
        .list_events(by_outcome(EventOutcome::Failed), PageRequest::new(2, 1))
        .await
        .unwrap();
    assert_eq!(second.total, 2);
    assert_eq!(ids(&second.items), ["evt_failed_1"]);
    assert_eq!(second.items[0], row(&store, "evt_failed_1").await);
}

pub async fn inbox_knows_which_event_ids_it_holds<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    let known = |ids: &[&str]| {
        let store = store.clone();
        let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        async move {
            let mut found = store.known_event_ids(&ids).await.unwrap();
            found.sort_unstable();
            found
        }
    };
    assert!(known(&["evt_a", "evt_b"]).await.is_empty());
    record_new(&store, "evt_a", EventOutcome::Ignored, None, None, at(1)).await;
    apply(&store, purchase.id, paid_in_full(), Some("evt_b"), at(2)).await;
    // A refused update records nothing.
    assert_eq!(
        store
            .apply_facts(&update(
                PurchaseId::from_uuid(Uuid::new_v4()),
                paid_in_full(),
                Some("evt_refused"),
                at(3)
            ))
            .await,
        Err(RepoError::NotFound)
    );

    assert_eq!(
        known(&["evt_x", "evt_b", "evt_refused", "evt_a", "evt_b"]).await,
        ["evt_a", "evt_b"]
    );
    assert_eq!(known(&["evt_b"]).await, ["evt_b"]);
    assert!(known(&["evt_x", "EVT_A", "evt_a "]).await.is_empty());
    assert!(known(&[]).await.is_empty());
}

pub async fn inbox_prunes_only_old_payloads_oldest_first_up_to_the_limit<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    apply(&store, purchase.id, paid_in_full(), Some("evt_1"), at(1)).await;
    record_new(&store, "evt_2", EventOutcome::Ignored, None, None, at(2)).await;
    record_new(
        &store,
        "evt_3",
        EventOutcome::Failed,
        Some("x"),
        None,
        at(3),
    )
    .await;
    record_new(&store, "evt_4", EventOutcome::Unmatched, None, None, at(4)).await;
    record_new(&store, "evt_5", EventOutcome::Ignored, None, None, at(10)).await;
    // Received again recently: still pruned by its first receipt.
    assert_eq!(
        store
            .record_event(
                &event("evt_3"),
                &unapplied(EventOutcome::Failed, Some("x"), None),
                at(50)
            )
            .await,
        Ok(Recorded::Duplicate)
    );
    let mut before = Vec::new();
    for id in ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5"] {
        before.push(row(&store, id).await);
    }
    // The rows as they should read once the first `pruned` (oldest) lost their payload.
    let expect = |pruned: usize| {
        let mut rows = before.clone();
        for record in rows.iter_mut().take(pruned) {
            record.payload = None;
        }
        rows
    };
    let rows = || async {
        let mut rows = Vec::new();
        for id in ["evt_1", "evt_2", "evt_3", "evt_4", "evt_5"] {
            rows.push(row(&store, id).await);
        }
        rows
    };

    // Strictly before the cutoff, oldest first, up to the limit.
    assert_eq!(store.prune_payloads(at(4), 2).await, Ok(2));
    assert_eq!(rows().await, expect(2));
    assert_eq!(store.prune_payloads(at(4), 2).await, Ok(1));
    assert_eq!(rows().await, expect(3));
    assert_eq!(store.prune_payloads(at(4), 2).await, Ok(0));
    assert_eq!(rows().await, expect(3));

    // Rows and outcomes stay, listed as before.
    let listed = all_events(&store, EventFilter::default()).await;
    assert_eq!(ids(&listed), ["evt_5", "evt_4", "evt_3", "evt_2", "evt_1"]);
    assert_eq!(
        all_events(
            &store,
            EventFilter {
                outcome: Some(EventOutcome::Applied),
                since: None
            }
        )
        .await,
        vec![expect(3)[0].clone()]
    );

    assert_eq!(store.prune_payloads(at(100), 10).await, Ok(2));
    assert_eq!(rows().await, expect(5));
    assert_eq!(store.prune_payloads(at(100), 10).await, Ok(0));
}
