//! Refunds of one purchase are made one at a time: every refund path holds the purchase's
//! refund lease around plan-and-call, a second one meanwhile is refused, and the lease is
//! given back whatever happened.

use crate::support::{usd, World};
use async_trait::async_trait;
use lms_domain::{PaymentFact, Purchase, PurchaseId, PurchaseStatus, User};
use lms_in_memory::{FakeEvent, FakeGateway};
use lms_ports::{
    CheckoutRequest, Clock, CustomerRequest, EventPage, EventQuery, GatewayError, GatewaySession,
    PaymentGateway, PurchaseRepo, RefundLease, RefundOutcome, RefundRequest, WebhookEvent,
    WebhookRejection,
};
use lms_use_cases::{Operator, Services, UseCaseError, UseCaseSettings, REFUND_LEASE};
use std::sync::Arc;
use tokio::sync::Notify;

const PRICE: i64 = 1999;

/// The fake gateway, except that a refund waits at the gateway until the test lets it go:
/// the moment a concurrent refund would plan against the same amount left.
struct PausingGateway {
    inner: FakeGateway,
    /// Notified when a refund reaches the gateway.
    entered: Arc<Notify>,
    /// The refund at the gateway goes on once notified.
    release: Arc<Notify>,
}

#[async_trait]
impl PaymentGateway for PausingGateway {
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError> {
        self.inner.create_checkout_session(request).await
    }

    async fn create_customer(&self, request: &CustomerRequest) -> Result<String, GatewayError> {
        self.inner.create_customer(request).await
    }

    async fn promotion_code_text(
        &self,
        promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        self.inner.promotion_code_text(promotion_code_id).await
    }

    async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        self.inner.retrieve_checkout_session(session_id).await
    }

    async fn find_session_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError> {
        self.inner
            .find_session_by_payment_intent(payment_intent_id)
            .await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        self.entered.notify_one();
        self.release.notified().await;
        self.inner.refund(request).await
    }

    async fn expire_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        self.inner.expire_checkout_session(session_id).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        self.inner.list_events(query).await
    }

    fn decode_stored_event(&self, payload: &[u8]) -> Result<WebhookEvent, WebhookRejection> {
        self.inner.decode_stored_event(payload)
    }

    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookEvent, WebhookRejection> {
        self.inner.verify_webhook(payload, signature_header)
    }
}

/// The world's store and clock behind a pausing gateway; `(services, entered, release)`.
fn pausing(world: &World, settings: UseCaseSettings) -> (Services, Arc<Notify>, Arc<Notify>) {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let gateway = PausingGateway {
        inner: world.gateway.clone(),
        entered: Arc::clone(&entered),
        release: Arc::clone(&release),
    };
    let services = Services::with_store(
        world.store.clone(),
        Arc::new(gateway),
        Arc::new(world.hasher.clone()),
        Arc::new(world.clock.clone()),
        settings,
    );
    (services, entered, release)
}

/// Waits until a refund is at the gateway (a refund that fails before it would leave the test
/// waiting forever).
async fn at_gateway(entered: &Notify) {
    tokio::time::timeout(std::time::Duration::from_secs(10), entered.notified())
        .await
        .unwrap_or_else(|_| panic!("no refund reached the gateway"));
}

/// Starts an admin's refund of `cents` and returns once it holds the lease and waits at the
/// gateway.
async fn admin_refund_at_gateway(
    world: &World,
    services: &Services,
    entered: &Notify,
    purchase: PurchaseId,
    cents: i64,
) -> tokio::task::JoinHandle<Result<Purchase, UseCaseError>> {
    let admin = world.admin().await;
    let refund = tokio::spawn({
        let services = services.clone();
        async move { services.refund(&admin, purchase, Some(cents), None).await }
    });
    at_gateway(entered).await;
    refund
}

async fn completed(world: &World) -> (User, User, Purchase) {
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_lease").await;
    (teacher, buyer, purchase)
}

#[tokio::test]
async fn of_two_concurrent_partial_refunds_exceeding_the_payment_one_is_refused() {
    let world = World::new();
    let (teacher, _, purchase) = completed(&world).await;
    let (services, entered, release) = pausing(&world, UseCaseSettings::default());

    // The first refund holds the lease and waits at the gateway.
    let first = admin_refund_at_gateway(&world, &services, &entered, purchase.id, 1200).await;
    assert_eq!(
        services
            .refund(&teacher, purchase.id, Some(1000), None)
            .await
            .unwrap_err(),
        UseCaseError::RefundInProgress
    );
    release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.refunded_amount(), usd(1200));

    // Asked again, the second is planned against what is left now: 7.99 is all there is.
    assert!(matches!(
        world
            .services
            .refund(&teacher, purchase.id, Some(1000), None)
            .await,
        Err(UseCaseError::Validation(_))
    ));
    let refunds = world.gateway.refunds();
    assert_eq!(
        refunds.iter().map(|r| r.amount).collect::<Vec<_>>(),
        vec![usd(1200)],
        "the gateway saw one refund"
    );
    let stored = world.purchase(purchase.id).await;
    assert!(stored.refunded_amount().minor() <= stored.captured().unwrap().minor());
    assert_eq!(stored.status(), PurchaseStatus::Completed);
}

#[tokio::test]
async fn a_refund_whose_lease_ran_out_gives_back_only_its_own() {
    let world = World::new();
    let (teacher, _, purchase) = completed(&world).await;
    let (services, entered, release) = pausing(&world, UseCaseSettings::default());

    // The first refund waits at the gateway past the end of its lease.
    let first = admin_refund_at_gateway(&world, &services, &entered, purchase.id, 500).await;
    world.clock.advance(REFUND_LEASE);
    // Another instance takes the run-out lease and is refunding now.
    let now = world.clock.now();
    let second_until = now + REFUND_LEASE;
    assert!(matches!(
        world
            .store
            .lease_refund(purchase.id, now, second_until)
            .await
            .unwrap(),
        RefundLease::Granted(_)
    ));
    release.notify_one();
    first.await.unwrap().unwrap();

    // The first gave back its own lease, not the second's: a third refund waits its turn.
    assert_eq!(
        world
            .services
            .refund(&teacher, purchase.id, Some(500), None)
            .await
            .unwrap_err(),
        UseCaseError::RefundInProgress
    );
    world
        .store
        .release_refund(purchase.id, second_until)
        .await
        .unwrap();
    world
        .services
        .refund(&teacher, purchase.id, Some(500), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_held_refund_and_a_self_refund_wait_their_turn_too() {
    let settings = UseCaseSettings::default()
        .with_self_refund_window(Some(time::Duration::days(14)))
        .unwrap();
    let world = World::with_settings(settings);
    let (_, buyer, purchase) = completed(&world).await;
    // Someone else (another instance) holds the lease.
    let now = world.clock.now();
    assert!(matches!(
        world
            .store
            .lease_refund(purchase.id, now, now + REFUND_LEASE)
            .await
            .unwrap(),
        RefundLease::Granted(_)
    ));
    assert_eq!(
        world
            .services
            .request_refund(&buyer, purchase.id, None)
            .await
            .unwrap_err(),
        UseCaseError::RefundInProgress
    );
    let admin = world.admin().await;
    assert_eq!(
        world
            .services
            .refund(&admin, purchase.id, None, None)
            .await
            .unwrap_err(),
        UseCaseError::RefundInProgress
    );
    assert!(world.gateway.refunds().is_empty());
    // A lease never given back (a crash) runs out by itself.
    world.clock.advance(REFUND_LEASE);
    let refunded = world
        .services
        .request_refund(&buyer, purchase.id, None)
        .await
        .unwrap();
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
}

#[tokio::test]
async fn the_lease_is_given_back_after_a_refusal_a_gateway_failure_and_a_success() {
    let world = World::new();
    let (teacher, _, purchase) = completed(&world).await;

    // Refused by the plan.
    assert!(matches!(
        world
            .services
            .refund(&teacher, purchase.id, Some(PRICE + 1), None)
            .await,
        Err(UseCaseError::Validation(_))
    ));
    // Failed at the gateway.
    world
        .gateway
        .fail_next(1, GatewayError::Unavailable("timeout".into()));
    assert!(matches!(
        world
            .services
            .refund(&teacher, purchase.id, Some(500), None)
            .await,
        Err(UseCaseError::Gateway(_))
    ));
    // Each time the next one is let in, without waiting for the lease to run out.
    world
        .services
        .refund(&teacher, purchase.id, Some(500), None)
        .await
        .unwrap();
    let now = world.clock.now();
    assert!(
        matches!(
            world
                .store
                .lease_refund(purchase.id, now, now + REFUND_LEASE)
                .await
                .unwrap(),
            RefundLease::Granted(_)
        ),
        "given back after the success too"
    );
}

#[tokio::test]
async fn a_held_purchase_is_refunded_against_what_it_is_when_leased() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    // Not through the session (which bills the price): the gateway knows the payment from
    // the event announcing it.
    let overpaid = FakeEvent::new("evt_held_lease", "checkout.session.completed")
        .with_session(&session.id)
        .with_payment_intent("pi_held_lease")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(PRICE + 100),
            at: None,
        });
    world.webhook(&overpaid).await.unwrap();
    assert!(world.purchase(purchase.id).await.review_reason().is_some());
    let admin = world.admin().await;
    let (services, entered, release) = pausing(&world, UseCaseSettings::default());
    let first = tokio::spawn({
        let services = services.clone();
        let id = purchase.id;
        let admin = admin.clone();
        async move {
            services
                .refund_held(Operator::Admin(&admin), id, "wrong amount")
                .await
        }
    });
    at_gateway(&entered).await;
    assert_eq!(
        services
            .refund_held(Operator::Admin(&admin), purchase.id, "again")
            .await
            .unwrap_err(),
        UseCaseError::RefundInProgress
    );
    release.notify_one();
    assert_eq!(
        first.await.unwrap().unwrap().status(),
        PurchaseStatus::Refunded
    );
    // Resolved now: nothing is held any more.
    assert_eq!(
        world
            .services
            .refund_held(Operator::Admin(&admin), purchase.id, "again")
            .await
            .unwrap_err(),
        UseCaseError::NotHeld
    );
    assert_eq!(world.gateway.refunds().len(), 1);
}
