//! Every guard and path of `start_checkout`.

use crate::support::{usd, World};
use lms_domain::{CourseId, PaymentFact, PurchaseStatus};
use lms_in_memory::GatewayCall;
use lms_ports::{Clock, GatewayError, PurchaseRepo};
use lms_use_cases::{CheckoutStarted, Resource, UseCaseError, UseCaseSettings};
use time::Duration;

#[tokio::test]
async fn a_paid_checkout_stores_a_pending_purchase_and_opens_a_session() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let now = world.clock.now();

    let (purchase, session) = world.checkout(&buyer, &course).await;

    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    assert!(purchase.holds_active_slot);
    assert_eq!(
        (purchase.user_id, purchase.course_id, purchase.price),
        (buyer.id, course.id, usd(1999))
    );
    let stored = purchase.checkout.clone().unwrap();
    assert_eq!(stored.id, session.id);
    assert_eq!(Some(stored.url.as_str()), session.url.as_deref());
    assert!(stored
        .url
        .starts_with("https://checkout.fake.test/pay/cs_fake_"));
    assert_eq!(world.purchase(purchase.id).await, purchase);

    let requests = world.gateway.checkout_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.idempotency_key, format!("checkout-{}", purchase.id));
    assert_eq!(request.amount, usd(1999));
    assert_eq!(request.purchase_id, purchase.id);
    assert_eq!(
        request.expires_at,
        now + UseCaseSettings::DEFAULT_CHECKOUT_TTL
    );
    assert!(
        UseCaseSettings::DEFAULT_CHECKOUT_TTL < Duration::hours(24),
        "inside the gateway's limit"
    );
    // The buyer's customer at the gateway, made for this first checkout, carries the e-mail.
    let customers = world.gateway.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(
        request.customer_id.as_deref(),
        Some(customers[0].id.as_str())
    );
    assert_eq!(request.customer_email, None);
    assert_eq!(
        (
            customers[0].request.email.as_str(),
            customers[0].request.idempotency_key.clone()
        ),
        (buyer.email.as_str(), format!("customer-{}", buyer.id))
    );
    assert_eq!(request.course_title, "Rust for the web");
}

#[tokio::test]
async fn unknown_and_unpublished_courses_are_not_found_and_touch_nothing() {
    let world = World::new();
    let (_, hidden, buyer) = world.shop(1999, false).await;

    let unknown = CourseId::from_uuid(uuid::Uuid::new_v4());
    assert_eq!(
        world.services.start_checkout(&buyer, unknown).await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    assert_eq!(
        world.services.start_checkout(&buyer, hidden.id).await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    assert!(world.store.all_purchases().is_empty());
    assert_eq!(world.gateway.call_count(), 0);
}

#[tokio::test]
async fn instructors_cannot_buy_their_own_course() {
    let world = World::new();
    let teacher = world.instructor().await;
    let course = world.course(&teacher, 1999, true).await;
    assert_eq!(
        world.services.start_checkout(&teacher, course.id).await,
        Err(UseCaseError::OwnCourse)
    );
    assert!(world.store.all_purchases().is_empty());
    assert_eq!(world.gateway.call_count(), 0);
}

#[tokio::test]
async fn an_open_session_is_reused_without_calling_the_gateway_again() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.clock.advance(Duration::hours(1));

    let (reused, reused_session) = world.reused_checkout(&buyer, &course).await;
    assert_eq!(reused.id, purchase.id);
    assert_eq!(reused_session.id, session.id);
    assert_eq!(reused_session.url, session.url);
    assert_eq!(reused_session.amount_total, 1999);
    assert_eq!(reused_session.expires_at, session.expires_at);
    // The first checkout's customer and session; nothing since.
    assert_eq!(world.gateway.call_count(), 2);
    assert_eq!(world.store.all_purchases().len(), 1);
}

#[tokio::test]
async fn a_stale_expired_session_is_synced_and_a_new_checkout_starts() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (old, old_session) = world.checkout(&buyer, &course).await;
    world.clock.advance(Duration::hours(25));
    world.gateway.expire_session(&old_session.id);

    let (new, new_session) = world.checkout(&buyer, &course).await;

    assert_ne!(new.id, old.id);
    assert_ne!(new_session.id, old_session.id);
    let old = world.purchase(old.id).await;
    assert_eq!(old.status(), PurchaseStatus::Failed);
    assert!(!old.holds_active_slot);
    assert!(new.holds_active_slot);
    // Customer and session, the stale session asked about, a new session for the same customer.
    let calls = world.gateway.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls[2],
        GatewayCall::RetrieveCheckoutSession(old_session.id.clone())
    );
    assert!(matches!(&calls[3], GatewayCall::CreateCheckoutSession(_)));
}

#[tokio::test]
async fn a_stale_session_that_was_paid_completes_the_purchase_instead() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (old, old_session) = world.checkout(&buyer, &course).await;
    world.gateway.pay_session(&old_session.id, "pi_late");
    world.clock.advance(Duration::hours(25));

    assert_eq!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::AlreadyPurchased)
    );
    let old = world.purchase(old.id).await;
    assert!(old.unlocks_course());
    assert_eq!(old.payment_intent_id.as_deref(), Some("pi_late"));
    assert_eq!(world.store.all_purchases().len(), 1);
    assert_eq!(world.gateway.session_count(), 1);
}

#[tokio::test]
async fn a_session_close_to_expiry_but_still_open_is_handed_out_from_the_gateway() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world.clock.set(session.expires_at - Duration::minutes(2));

    let (reused, from_gateway) = world.reused_checkout(&buyer, &course).await;
    assert_eq!((reused.id, &from_gateway.id), (purchase.id, &session.id));
    assert_eq!(
        world.gateway.calls()[2],
        GatewayCall::RetrieveCheckoutSession(session.id)
    );
    assert_eq!(world.gateway.call_count(), 3);
}

#[tokio::test]
async fn a_settling_payment_blocks_a_new_checkout() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let (purchase, _) = world.checkout(&buyer, &course).await;
    world
        .event(
            "evt_processing",
            &purchase,
            &[PaymentFact::PaymentProcessing],
        )
        .await;

    assert_eq!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::PaymentInProgress)
    );
    // The first checkout's customer and session only.
    assert_eq!(world.gateway.call_count(), 2);
    assert_eq!(world.store.all_purchases().len(), 1);
}

#[tokio::test]
async fn a_completed_purchase_refuses_another_checkout() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    world.paid_purchase(&buyer, &course, "pi_1").await;
    let calls = world.gateway.call_count();

    assert_eq!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::AlreadyPurchased)
    );
    assert_eq!(world.gateway.call_count(), calls);
    assert_eq!(world.store.all_purchases().len(), 1);
}

#[tokio::test]
async fn a_free_course_enrols_at_once_without_the_gateway() {
    let world = World::new();
    let (_, course, buyer) = world.shop(0, true).await;

    let started = world
        .services
        .start_checkout(&buyer, course.id)
        .await
        .unwrap();
    let CheckoutStarted::FreeEnrollment { purchase } = &started else {
        panic!("expected free enrolment")
    };
    assert!(started.session().is_none());
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(
        world.purchase(purchase.id).await.status(),
        PurchaseStatus::Completed
    );
    assert_eq!(world.gateway.call_count(), 0);
    assert_eq!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::AlreadyPurchased)
    );
    let unlocked = world.services.purchased_courses(&buyer).await.unwrap();
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0].course.id, course.id);
    assert_eq!(world.gateway.call_count(), 0);
}

#[tokio::test]
async fn a_gateway_failure_leaves_no_active_purchase_and_a_retry_succeeds() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    world
        .gateway
        .fail_next(1, GatewayError::unavailable("timeout"));

    let failed = world.services.start_checkout(&buyer, course.id).await;
    assert_eq!(
        failed,
        Err(UseCaseError::Gateway(GatewayError::unavailable("timeout")))
    );
    let purchases = world.store.all_purchases();
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0].status(), PurchaseStatus::Failed);
    assert!(purchases[0].facts.checkout_not_started);
    assert!(!purchases[0].holds_active_slot);
    assert!(purchases[0].checkout.is_none());

    let (retry, _) = world.checkout(&buyer, &course).await;
    assert_ne!(retry.id, purchases[0].id);
    assert!(world.purchase(retry.id).await.holds_active_slot);
    assert_eq!(world.gateway.session_count(), 1);
}

#[tokio::test]
async fn a_gateway_rejection_is_reported_as_such() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let rejection = || GatewayError::Rejected {
        code: Some("amount_too_small".to_owned()),
        message: "no".to_owned(),
    };
    world.gateway.fail_next(1, rejection());
    assert_eq!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::Gateway(rejection()))
    );
    assert!(world
        .store
        .all_purchases()
        .iter()
        .all(|p| !p.holds_active_slot));
}

#[tokio::test]
async fn a_purchase_stored_without_its_session_is_resumed_with_the_same_idempotency_key() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let orphan = world.orphan_purchase(&buyer, &course).await;

    let (resumed, session) = world.checkout(&buyer, &course).await;
    assert_eq!(resumed.id, orphan.id);
    assert_eq!(resumed.checkout.map(|s| s.id), Some(session.id));
    assert_eq!(
        world.gateway.checkout_requests()[0].idempotency_key,
        format!("checkout-{}", orphan.id)
    );
    assert_eq!(world.store.all_purchases().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checkouts_end_with_one_purchase_and_one_session() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let mut handles = Vec::new();
    for _ in 0..10 {
        let services = world.services.clone();
        let buyer = buyer.clone();
        handles.push(tokio::spawn(async move {
            services.start_checkout(&buyer, course.id).await
        }));
    }
    let mut sessions = Vec::new();
    for handle in handles {
        let started = handle.await.unwrap().unwrap();
        sessions.push(started.session().unwrap().id.clone());
    }
    sessions.dedup();
    assert_eq!(sessions.len(), 1);
    assert_eq!(world.store.all_purchases().len(), 1);
    assert_eq!(world.gateway.session_count(), 1);
}

#[tokio::test]
async fn storage_outage_is_reported_as_unavailable() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    world.store.set_unavailable(true);
    assert!(matches!(
        world.services.start_checkout(&buyer, course.id).await,
        Err(UseCaseError::Unavailable(_))
    ));
    world.store.set_unavailable(false);
    assert!(world.store.all_purchases().is_empty());
    assert_eq!(world.gateway.call_count(), 0);
}

#[tokio::test]
async fn a_stale_session_the_gateway_no_longer_knows_is_closed_and_a_new_checkout_starts() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let now = world.clock.now();
    let old = world.orphan_purchase(&buyer, &course).await;
    let gone = lms_domain::CheckoutSession {
        id: "cs_gone".to_owned(),
        url: "https://checkout.fake.test/pay/cs_gone".to_owned(),
        expires_at: now + Duration::hours(1),
    };
    world
        .store
        .attach_checkout(old.id, &gone, now)
        .await
        .unwrap();
    world.clock.advance(Duration::hours(2));

    let (new, _) = world.checkout(&buyer, &course).await;
    assert_ne!(new.id, old.id);
    let old = world.purchase(old.id).await;
    assert_eq!(old.status(), PurchaseStatus::Failed);
    assert!(old.facts.checkout_expired);
    let calls = world.gateway.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0],
        GatewayCall::RetrieveCheckoutSession("cs_gone".to_owned())
    );
    assert!(matches!(&calls[1], GatewayCall::CreateCustomer(_)));
}

#[tokio::test]
async fn an_old_purchase_whose_checkout_never_started_is_closed_not_resumed() {
    let world = World::new();
    let (_, course, buyer) = world.shop(1999, true).await;
    let orphan = world.orphan_purchase(&buyer, &course).await;
    // Too late to open a session with the original expiry (less than 30 minutes left).
    world
        .clock
        .advance(UseCaseSettings::DEFAULT_CHECKOUT_TTL - Duration::minutes(29));

    let (new, _) = world.checkout(&buyer, &course).await;
    assert_ne!(new.id, orphan.id);
    let orphan = world.purchase(orphan.id).await;
    assert_eq!(orphan.status(), PurchaseStatus::Failed);
    assert!(orphan.facts.checkout_not_started);
    let requests = world.gateway.checkout_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].purchase_id, new.id);
}
