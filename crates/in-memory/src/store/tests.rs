use super::*;
use lms_domain::{CourseDraft, CourseText, Currency, Money, PaymentFact, Role, UserName};
use lms_ports::{AuditAction, AuditActor, EventEnvelope};
use time::macros::datetime;
use time::Duration;
use uuid::Uuid;

const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

fn user(n: u128, email: &str) -> User {
    User {
        id: UserId::from_uuid(Uuid::from_u128(n)),
        name: UserName::parse("Ada").unwrap(),
        email: Email::parse(email).unwrap(),
        role: Role::Student,
        password_hash: "hash".to_owned(),
        session_generation: 0,
        created_at: T0,
    }
}

fn course(n: u128, published: bool, at: OffsetDateTime) -> Course {
    let draft = CourseDraft {
        title: CourseText::title(&format!("Course {n}")).unwrap(),
        subtitle: None,
        description: None,
        category: None,
        level: None,
        price: usd(1999),
    };
    let mut course = Course::create(
        CourseId::from_uuid(Uuid::from_u128(n)),
        UserId::from_uuid(Uuid::from_u128(999)),
        draft,
        at,
    )
    .unwrap();
    course.published = published;
    course
}

fn purchase(n: u128, buyer: &User, course: &Course, at: OffsetDateTime) -> Purchase {
    Purchase::begin(
        PurchaseId::from_uuid(Uuid::from_u128(n)),
        buyer.id,
        course,
        at,
    )
    .unwrap()
}

fn update(purchase: PurchaseId, facts: Vec<PaymentFact>, event: Option<&str>) -> FactUpdate {
    FactUpdate {
        purchase_id: purchase,
        facts,
        payment_intent_id: None,
        details: lms_domain::PaymentDetails::default(),
        event: event.map(|id| delivery(id, DeliveryKind::Delivered)),
        at: T0 + Duration::minutes(1),
    }
}

fn delivery(id: &str, kind: DeliveryKind) -> EventDelivery {
    EventDelivery {
        envelope: EventEnvelope {
            id: id.to_owned(),
            event_type: "test.event".to_owned(),
            livemode: false,
            created: T0,
            payload: "{}".to_owned(),
        },
        kind,
    }
}

fn failed() -> Unapplied {
    Unapplied {
        outcome: EventOutcome::Failed,
        error: Some("broken".to_owned()),
        purchase_id: None,
    }
}

fn session(id: &str) -> CheckoutSession {
    CheckoutSession {
        id: id.to_owned(),
        url: format!("https://pay/{id}"),
        expires_at: T0 + Duration::hours(1),
    }
}

/// A store with one user and one published course.
async fn seeded() -> (InMemoryStore, User, Course) {
    let store = InMemoryStore::new();
    let buyer = user(1, "buyer@example.com");
    let course = course(10, true, T0);
    store.create_user(&buyer).await.unwrap();
    store.create_course(&course).await.unwrap();
    (store, buyer, course)
}

#[tokio::test]
async fn emails_are_unique_case_insensitively_and_found_either_way() {
    let store = InMemoryStore::new();
    store
        .create_user(&user(1, "Ada@Example.com"))
        .await
        .unwrap();
    assert_eq!(
        store.create_user(&user(2, "ADA@example.COM")).await,
        Err(RepoError::Duplicate("email"))
    );
    assert_eq!(
        store.create_user(&user(1, "other@example.com")).await,
        Err(RepoError::Duplicate("id"))
    );
    let found = store
        .find_user_by_email(&Email::parse("ada@EXAMPLE.com").unwrap())
        .await
        .unwrap();
    assert_eq!(
        found.map(|u| u.id),
        Some(UserId::from_uuid(Uuid::from_u128(1)))
    );
    assert_eq!(
        store
            .find_user_by_email(&Email::parse("nobody@example.com").unwrap())
            .await,
        Ok(None)
    );
    assert_eq!(store.user_count(), 1);
}

#[tokio::test]
async fn courses_round_trip_update_and_list_newest_first_with_id_tie_break() {
    let store = InMemoryStore::new();
    let older = course(1, true, T0);
    let tie_low = course(2, true, T0 + Duration::hours(1));
    let tie_high = course(3, true, T0 + Duration::hours(1));
    let hidden = course(4, false, T0 + Duration::hours(2));
    for c in [&older, &tie_low, &tie_high, &hidden] {
        store.create_course(c).await.unwrap();
    }
    assert_eq!(
        store.create_course(&older).await,
        Err(RepoError::Duplicate("id"))
    );
    assert_eq!(
        store.get_course(older.id).await.unwrap().as_ref(),
        Some(&older)
    );

    let page = store
        .list_published_courses(PageRequest::new(1, 2))
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![tie_high.id, tie_low.id]
    );
    let page2 = store
        .list_published_courses(PageRequest::new(2, 2))
        .await
        .unwrap();
    assert_eq!(
        page2.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![older.id]
    );
    let page3 = store
        .list_published_courses(PageRequest::new(3, 2))
        .await
        .unwrap();
    assert!(page3.items.is_empty());
    assert_eq!(page3.total, 3);

    let mut changed = hidden.clone();
    changed.published = true;
    store.update_course(&changed).await.unwrap();
    assert_eq!(
        store
            .list_published_courses(PageRequest::new(1, 10))
            .await
            .unwrap()
            .items[0]
            .id,
        hidden.id
    );
    assert_eq!(
        store.update_course(&course(77, true, T0)).await,
        Err(RepoError::NotFound)
    );
}

#[tokio::test]
async fn only_one_purchase_per_user_and_course_holds_the_active_slot() {
    let (store, buyer, course) = seeded().await;
    let first = purchase(100, &buyer, &course, T0);
    store.create_purchase(&first).await.unwrap();
    assert_eq!(
        store.create_purchase(&first).await,
        Err(RepoError::Duplicate("id"))
    );
    let second = purchase(101, &buyer, &course, T0 + Duration::minutes(1));
    assert_eq!(
        store.create_purchase(&second).await,
        Err(RepoError::ActivePurchaseExists)
    );

    // Another user may buy the same course.
    let other = user(2, "other@example.com");
    store
        .create_purchase(&purchase(102, &other, &course, T0))
        .await
        .unwrap();

    // Once the first fails (expired), the slot is free.
    let applied = store
        .apply_facts(&update(first.id, vec![PaymentFact::CheckoutExpired], None))
        .await
        .unwrap();
    let Applied::Applied {
        purchase: failed, ..
    } = applied
    else {
        panic!("expected Applied")
    };
    assert!(!failed.holds_active_slot);
    store.create_purchase(&second).await.unwrap();
    let listed = store
        .list_for_user_and_course(buyer.id, course.id)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
}

#[tokio::test]
async fn concurrent_creations_let_exactly_one_win() {
    let (store, buyer, course) = seeded().await;
    let mut handles = Vec::new();
    for n in 0..20u128 {
        let store = store.clone();
        let purchase = purchase(200 + n, &buyer, &course, T0);
        handles.push(tokio::spawn(async move {
            store.create_purchase(&purchase).await
        }));
    }
    let mut wins = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(()) => wins += 1,
            Err(err) => assert_eq!(err, RepoError::ActivePurchaseExists),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn attach_checkout_sets_the_session_and_keeps_session_ids_unique() {
    let (store, buyer, course) = seeded().await;
    let first = purchase(100, &buyer, &course, T0);
    store.create_purchase(&first).await.unwrap();
    let at = T0 + Duration::seconds(5);
    let attached = store
        .attach_checkout(first.id, &session("cs_1"), at)
        .await
        .unwrap();
    assert_eq!(attached.checkout, Some(session("cs_1")));
    assert_eq!(attached.updated_at, at);
    assert_eq!(
        store
            .find_by_checkout_session("cs_1")
            .await
            .unwrap()
            .map(|p| p.id),
        Some(first.id)
    );
    assert_eq!(store.find_by_checkout_session("cs_2").await, Ok(None));
    // Re-attaching the same session to the same purchase is fine.
    store
        .attach_checkout(first.id, &session("cs_1"), at)
        .await
        .unwrap();

    let other = user(2, "other@example.com");
    let second = purchase(101, &other, &course, T0);
    store.create_purchase(&second).await.unwrap();
    assert_eq!(
        store.attach_checkout(second.id, &session("cs_1"), at).await,
        Err(RepoError::Duplicate("checkout_session_id"))
    );
    assert_eq!(
        store
            .attach_checkout(
                PurchaseId::from_uuid(Uuid::from_u128(5)),
                &session("cs_9"),
                at
            )
            .await,
        Err(RepoError::NotFound)
    );
}

#[tokio::test]
async fn apply_facts_is_exactly_once_per_event_id() {
    let (store, buyer, course) = seeded().await;
    let p = purchase(100, &buyer, &course, T0);
    store.create_purchase(&p).await.unwrap();

    let paid = update(
        p.id,
        vec![PaymentFact::PaymentSucceeded {
            amount: usd(1999),
            at: None,
        }],
        Some("evt_1"),
    );
    let Applied::Applied {
        purchase: after, ..
    } = store.apply_facts(&paid).await.unwrap()
    else {
        panic!("expected Applied")
    };
    assert!(after.unlocks_course());
    assert_eq!(after.updated_at, paid.at);

    // Same event id, different content: nothing is written.
    let replay = update(
        p.id,
        vec![PaymentFact::Refunded { total: usd(1999) }],
        Some("evt_1"),
    );
    assert_eq!(
        store.apply_facts(&replay).await,
        Ok(Applied::DuplicateEvent)
    );
    assert_eq!(store.get_purchase(p.id).await.unwrap(), Some(after.clone()));
    assert_eq!(store.recorded_event_ids(), vec!["evt_1".to_owned()]);

    // Updates without an event are applied every time (idempotent by their facts).
    let sync = update(
        p.id,
        vec![PaymentFact::PaymentSucceeded {
            amount: usd(1999),
            at: None,
        }],
        None,
    );
    assert_eq!(
        store.apply_facts(&sync).await,
        Ok(Applied::Applied {
            purchase: after,
            others: Vec::new()
        })
    );
    assert_eq!(store.recorded_event_ids().len(), 1);
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_apply_once() {
    let (store, buyer, course) = seeded().await;
    let p = purchase(100, &buyer, &course, T0);
    store.create_purchase(&p).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        let up = update(
            p.id,
            vec![PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: None,
            }],
            Some("evt_same"),
        );
        handles.push(tokio::spawn(async move {
            store.apply_facts(&up).await.unwrap()
        }));
    }
    let mut applied = 0;
    for handle in handles {
        if matches!(handle.await.unwrap(), Applied::Applied { .. }) {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(store.recorded_events().len(), 1);
    assert_eq!(store.recorded_events()[0].purchase_id, p.id);
}

#[tokio::test]
async fn unknown_purchase_is_not_found_and_the_event_id_is_not_recorded() {
    let (store, buyer, course) = seeded().await;
    let ghost = PurchaseId::from_uuid(Uuid::from_u128(12345));
    let up = update(ghost, vec![PaymentFact::CheckoutExpired], Some("evt_ghost"));
    assert_eq!(store.apply_facts(&up).await, Err(RepoError::NotFound));
    assert!(store.recorded_event_ids().is_empty());

    // The same event id still applies to a real purchase afterwards.
    let p = purchase(100, &buyer, &course, T0);
    store.create_purchase(&p).await.unwrap();
    let up = update(p.id, vec![PaymentFact::CheckoutExpired], Some("evt_ghost"));
    assert!(matches!(
        store.apply_facts(&up).await,
        Ok(Applied::Applied { .. })
    ));
}

#[tokio::test]
async fn payment_intents_link_once_and_belong_to_one_purchase() {
    let (store, buyer, course) = seeded().await;
    let first = purchase(100, &buyer, &course, T0);
    store.create_purchase(&first).await.unwrap();
    let mut up = update(first.id, vec![], None);
    up.payment_intent_id = Some("pi_1".to_owned());
    store.apply_facts(&up).await.unwrap();
    assert_eq!(
        store
            .find_by_payment_intent("pi_1")
            .await
            .unwrap()
            .map(|p| p.id),
        Some(first.id)
    );
    // A different intent later does not replace the first one.
    up.payment_intent_id = Some("pi_other".to_owned());
    let Applied::Applied { purchase: kept, .. } = store.apply_facts(&up).await.unwrap() else {
        panic!("expected Applied")
    };
    assert_eq!(kept.payment_intent_id.as_deref(), Some("pi_1"));

    let other = user(2, "other@example.com");
    let second = purchase(101, &other, &course, T0);
    store.create_purchase(&second).await.unwrap();
    let mut stolen = update(
        second.id,
        vec![PaymentFact::PaymentSucceeded {
            amount: usd(1999),
            at: None,
        }],
        Some("evt_x"),
    );
    stolen.payment_intent_id = Some("pi_1".to_owned());
    assert_eq!(
        store.apply_facts(&stolen).await,
        Err(RepoError::Duplicate("payment_intent_id"))
    );
    // Nothing was written: neither the facts nor the event id.
    assert_eq!(store.get_purchase(second.id).await.unwrap(), Some(second));
    assert!(store.recorded_event_ids().is_empty());
}

#[tokio::test]
async fn unlocked_listing_has_only_completed_purchases_with_their_courses() {
    let (store, buyer, course_a) = seeded().await;
    let course_b = course(11, true, T0);
    let course_c = course(12, true, T0);
    for c in [&course_b, &course_c] {
        store.create_course(c).await.unwrap();
    }
    let paid_a = purchase(100, &buyer, &course_a, T0);
    let paid_b = purchase(101, &buyer, &course_b, T0 + Duration::hours(1));
    let pending_c = purchase(102, &buyer, &course_c, T0 + Duration::hours(2));
    for p in [&paid_a, &paid_b, &pending_c] {
        store.create_purchase(p).await.unwrap();
    }
    for p in [&paid_a, &paid_b] {
        store
            .apply_facts(&update(
                p.id,
                vec![PaymentFact::PaymentSucceeded {
                    amount: usd(1999),
                    at: None,
                }],
                None,
            ))
            .await
            .unwrap();
    }
    // Someone else's completed purchase is not listed.
    let other = user(2, "other@example.com");
    let theirs = purchase(103, &other, &course_a, T0);
    store.create_purchase(&theirs).await.unwrap();
    store
        .apply_facts(&update(
            theirs.id,
            vec![PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: None,
            }],
            None,
        ))
        .await
        .unwrap();

    let unlocked = store.list_unlocked_for_user(buyer.id).await.unwrap();
    let ids: Vec<_> = unlocked
        .iter()
        .map(|pc| (pc.purchase.id, pc.course.id))
        .collect();
    assert_eq!(
        ids,
        vec![(paid_b.id, course_b.id), (paid_a.id, course_a.id)]
    );

    // A full refund locks the course again.
    store
        .apply_facts(&update(
            paid_b.id,
            vec![PaymentFact::Refunded { total: usd(1999) }],
            None,
        ))
        .await
        .unwrap();
    let unlocked = store.list_unlocked_for_user(buyer.id).await.unwrap();
    assert_eq!(
        unlocked.iter().map(|pc| pc.purchase.id).collect::<Vec<_>>(),
        vec![paid_a.id]
    );
}

#[tokio::test]
async fn the_session_generation_cannot_wrap_around() {
    let (store, buyer, _) = seeded().await;
    let mut worn = user(2, "worn@example.com");
    worn.session_generation = u32::MAX;
    store.create_user(&worn).await.unwrap();
    assert!(matches!(
        store.end_sessions(worn.id).await,
        Err(RepoError::Unexpected(_))
    ));
    assert_eq!(
        store
            .get_user(worn.id)
            .await
            .unwrap()
            .unwrap()
            .session_generation,
        u32::MAX
    );
    assert_eq!(store.end_sessions(buyer.id).await, Ok(1));
}

#[tokio::test]
async fn the_unavailable_switch_fails_every_call_and_writes_nothing() {
    let (store, buyer, course) = seeded().await;
    assert!(store.ping().await.is_ok());
    store.set_unavailable(true);
    assert!(matches!(store.ping().await, Err(RepoError::Unavailable(_))));
    assert!(matches!(
        store.get_user(buyer.id).await,
        Err(RepoError::Unavailable(_))
    ));
    let p = purchase(100, &buyer, &course, T0);
    assert!(matches!(
        store.create_purchase(&p).await,
        Err(RepoError::Unavailable(_))
    ));
    assert!(matches!(
        store.list_published_courses(PageRequest::new(1, 10)).await,
        Err(RepoError::Unavailable(_))
    ));
    assert!(matches!(
        store.end_sessions(buyer.id).await,
        Err(RepoError::Unavailable(_))
    ));
    assert!(matches!(
        store.claim_payments_mode(PaymentsMode::Sandbox).await,
        Err(RepoError::Unavailable(_))
    ));
    store.set_unavailable(false);
    assert_eq!(
        store
            .get_user(buyer.id)
            .await
            .unwrap()
            .unwrap()
            .session_generation,
        0
    );
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::StripeLive).await,
        Ok(DeploymentClaim::Recorded),
        "the refused claim recorded nothing"
    );
    assert!(store.all_purchases().is_empty());
    assert_eq!(
        store.get_user(buyer.id).await.unwrap().map(|u| u.id),
        Some(buyer.id)
    );
}

#[tokio::test]
async fn recorded_events_lists_the_events_whose_facts_were_merged_in_that_order() {
    let (store, buyer, course) = seeded().await;
    let p = purchase(100, &buyer, &course, T0);
    store.create_purchase(&p).await.unwrap();
    let paid = vec![PaymentFact::PaymentSucceeded {
        amount: usd(1999),
        at: None,
    }];

    // Recorded without merging (failed), then delivered again: not listed.
    store
        .record_event(
            &delivery("evt_failed", DeliveryKind::Delivered),
            &failed(),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .apply_facts(&update(p.id, paid.clone(), Some("evt_failed")))
            .await,
        Ok(Applied::DuplicateEvent)
    );
    assert!(store.recorded_event_ids().is_empty());

    store
        .apply_facts(&update(p.id, vec![], Some("evt_first")))
        .await
        .unwrap();
    // Replayed once fixed: merged now, so listed.
    let replay = FactUpdate {
        event: Some(delivery("evt_failed", DeliveryKind::Replayed)),
        ..update(p.id, paid, None)
    };
    assert!(matches!(
        store.apply_facts(&replay).await,
        Ok(Applied::Applied { .. })
    ));
    assert_eq!(
        store.apply_facts(&replay).await,
        Ok(Applied::DuplicateEvent)
    );
    assert_eq!(
        store.recorded_event_ids(),
        vec!["evt_first".to_owned(), "evt_failed".to_owned()]
    );
    let last = store.recorded_events().pop().unwrap();
    assert_eq!(
        last,
        RecordedEvent {
            event_id: "evt_failed".to_owned(),
            event_type: "test.event".to_owned(),
            purchase_id: p.id,
            payload: "{}".to_owned(),
            received_at: replay.at,
        }
    );
}

#[tokio::test]
async fn the_unavailable_switch_covers_the_inbox_the_audit_trail_and_the_new_queries() {
    let (store, buyer, course) = seeded().await;
    let p = purchase(100, &buyer, &course, T0);
    store.create_purchase(&p).await.unwrap();
    let page = PageRequest::new(1, 10);
    let entry = AuditEntry {
        at: T0,
        actor: AuditActor::System,
        action: AuditAction::Refund,
        purchase_id: Some(p.id),
        event_id: None,
        subject_user_id: None,
        amount: Some(usd(1999)),
        reason: "test".to_owned(),
    };
    let unavailable = |result: Result<(), RepoError>| {
        assert!(
            matches!(result, Err(RepoError::Unavailable(_))),
            "{result:?}"
        );
    };

    store.set_unavailable(true);
    let ev = delivery("evt_1", DeliveryKind::Delivered);
    unavailable(store.record_event(&ev, &failed(), T0).await.map(drop));
    unavailable(store.mark_failed("evt_1", "x").await);
    unavailable(store.get_event("evt_1").await.map(drop));
    unavailable(
        store
            .list_events(EventFilter::default(), page)
            .await
            .map(drop),
    );
    unavailable(store.known_event_ids(&["evt_1".to_owned()]).await.map(drop));
    unavailable(store.prune_payloads(T0, 10).await.map(drop));
    unavailable(store.append_audit(&entry).await);
    unavailable(store.list_audit(page).await.map(drop));
    let later = T0 + Duration::hours(1);
    unavailable(
        store
            .claim_for_reconciliation(later, later, later, 10)
            .await
            .map(drop),
    );
    unavailable(store.list_held(page).await.map(drop));
    unavailable(store.set_role(&buyer.email, Role::Admin).await.map(drop));
    unavailable(store.gateway_customer(buyer.id).await.map(drop));
    unavailable(
        store
            .link_gateway_customer(buyer.id, "cus_1")
            .await
            .map(drop),
    );
    unavailable(store.lease_refund(p.id, T0, later).await.map(drop));
    unavailable(store.release_refund(p.id, later).await);
    unavailable(
        store
            .revenue(&lms_ports::RevenueQuery::default())
            .await
            .map(drop),
    );
    store.set_unavailable(false);

    // Nothing was written: the event is unknown, the trail empty, the role, the customer,
    // the refund lease and the claim unchanged.
    assert_eq!(store.gateway_customer(buyer.id).await, Ok(None));
    assert!(matches!(
        store.lease_refund(p.id, T0, later).await,
        Ok(lms_ports::RefundLease::Granted(_))
    ));
    assert_eq!(store.get_event("evt_1").await, Ok(None));
    assert_eq!(store.list_audit(page).await.unwrap().total, 0);
    assert_eq!(
        store.get_user(buyer.id).await.unwrap().map(|u| u.role),
        Some(Role::Student)
    );
    let claimed = store
        .claim_for_reconciliation(later, later, later, 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|p| p.id).collect::<Vec<_>>(), vec![p.id]);
}

#[tokio::test]
async fn a_claim_of_limit_zero_claims_nothing() {
    let (store, buyer, course) = seeded().await;
    let p = purchase(100, &buyer, &course, T0);
    store.create_purchase(&p).await.unwrap();
    let later = T0 + Duration::hours(1);
    assert_eq!(
        store.claim_for_reconciliation(later, later, later, 0).await,
        Ok(vec![])
    );
    assert_eq!(
        store
            .claim_for_reconciliation(later, later, later + Duration::hours(1), 5)
            .await
            .map(|claimed| claimed.len()),
        Ok(1)
    );
}
