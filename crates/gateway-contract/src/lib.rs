//! The contract of [`PaymentGateway`], written once and run against every adapter.
//!
//! An adapter's test binary implements [`GatewayWorld`] (the gateway plus the means to act as
//! the customer and to obtain a webhook the gateway itself signed) and instantiates the whole
//! suite with [`gateway_contract_tests!`]. Each check panics with a message on violation.
//!
//! Bills: every world's gateway accepts a 25%-off and a 100%-off promotion code
//! ([`Promotion`]) on the sessions it opens, and can open a session on which it charges tax at
//! [`CONTRACT_TAX_RATE_BPS`] on top of the price. How a world gets there differs (the fake is
//! scripted, the sandbox configured); what the gateway then reports must not.

#![expect(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "this crate is a test suite"
)]

use async_trait::async_trait;
use lms_domain::{Bill, CourseId, Currency, Money, PaymentFact, PurchaseId, UserId};
use lms_ports::{
    CheckoutRequest, CustomerRequest, EventQuery, GatewayError, GatewayEvent, GatewaySession,
    PaymentGateway, RefundRequest, RefundStatus, SessionPaymentStatus, SessionStatus, WebhookEvent,
    WebhookRejection,
};

/// The tax rate of a session opened with [`GatewayWorld::open_taxed_session`], in basis
/// points, exclusive (added on top of what remains after any discount, rounded half-up).
pub const CONTRACT_TAX_RATE_BPS: i64 = 1000;

/// A promotion code every world's gateway accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion {
    /// 25% of the price off (half-up).
    QuarterOff,
    /// The whole price off: nothing to pay.
    Free,
}

impl Promotion {
    /// What the customer types for it on the payment page.
    pub const fn typed(self) -> &'static str {
        match self {
            Promotion::QuarterOff => "SPRING25",
            Promotion::Free => "FREECOURSE",
        }
    }
}
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A gateway adapter and the outside world around it.
#[async_trait]
pub trait GatewayWorld: Send + Sync {
    fn gateway(&self) -> &dyn PaymentGateway;

    /// The customer pays the session in full on the hosted page.
    async fn customer_pays(&self, session_id: &str);

    /// The `checkout.session.completed`-like webhook (body, signature header) the gateway sent
    /// for a session the customer paid, signed as the gateway signs it.
    async fn completion_webhook(&self, session_id: &str) -> (Vec<u8>, String);

    /// Opens a checkout for `request` on which the gateway charges tax at
    /// [`CONTRACT_TAX_RATE_BPS`], exclusive.
    async fn open_taxed_session(&self, request: &CheckoutRequest) -> GatewaySession;

    /// The customer enters `promotion`'s code on the open session's payment page; returns
    /// the gateway's id of that promotion code. When [`GatewayWorld::customer_pays`] then
    /// finds nothing due, the customer completes the order without paying.
    async fn customer_applies_code(&self, session_id: &str, promotion: Promotion) -> String;

    /// How many customers exist at the gateway.
    async fn customer_count(&self) -> usize;

    /// The customer the gateway opened a session for, as the gateway records it.
    async fn session_customer(&self, session_id: &str) -> Option<String>;
}

fn request(amount_minor: i64) -> CheckoutRequest {
    let purchase_id = PurchaseId::from_uuid(Uuid::new_v4());
    CheckoutRequest {
        purchase_id,
        course_id: CourseId::from_uuid(Uuid::new_v4()),
        user_id: UserId::from_uuid(Uuid::new_v4()),
        course_title: "Contract testing in Rust".into(),
        amount: Money::new(amount_minor, Currency::USD).unwrap(),
        customer_id: None,
        customer_email: Some("student@example.com".into()),
        // Whole seconds: gateways keep unix seconds.
        expires_at: OffsetDateTime::from_unix_timestamp(
            (OffsetDateTime::now_utc() + Duration::hours(2)).unix_timestamp(),
        )
        .unwrap(),
        idempotency_key: format!("checkout-{purchase_id}"),
    }
}

/// A checkout session opened for a fresh purchase of `amount_minor` US cents.
async fn open_session(
    world: &dyn GatewayWorld,
    amount_minor: i64,
) -> (CheckoutRequest, GatewaySession) {
    let request = request(amount_minor);
    let session = world
        .gateway()
        .create_checkout_session(&request)
        .await
        .unwrap();
    (request, session)
}

async fn retrieve(world: &dyn GatewayWorld, session_id: &str) -> GatewaySession {
    world
        .gateway()
        .retrieve_checkout_session(session_id)
        .await
        .unwrap()
}

/// A session opened as [`open_session`] and paid in full by the customer.
async fn paid_session(
    world: &dyn GatewayWorld,
    amount_minor: i64,
) -> (CheckoutRequest, GatewaySession) {
    let (request, session) = open_session(world, amount_minor).await;
    world.customer_pays(&session.id).await;
    (request, session)
}

/// The payment intent of a session the customer paid.
async fn paid_intent(world: &dyn GatewayWorld, amount_minor: i64) -> (CheckoutRequest, String) {
    let (request, session) = paid_session(world, amount_minor).await;
    let payment_intent = retrieve(world, &session.id)
        .await
        .payment_intent_id
        .expect("a paid session names its payment intent");
    (request, payment_intent)
}

pub async fn a_new_session_is_open_unpaid_and_echoes_the_purchase(world: &dyn GatewayWorld) {
    let (request, session) = open_session(world, 1999).await;
    assert_eq!(session.status, SessionStatus::Open);
    assert_eq!(session.payment_status, SessionPaymentStatus::Unpaid);
    assert_eq!(session.amount_total, 1999);
    assert_eq!(session.currency, Currency::USD);
    assert_eq!(session.purchase_id, Some(request.purchase_id));
    assert_eq!(session.expires_at, request.expires_at);
    assert!(
        session
            .url
            .as_deref()
            .is_some_and(|url| url.starts_with("http")),
        "an open session has a payment page"
    );
    assert_eq!(
        session.metadata.get("purchase_id"),
        Some(&request.purchase_id.to_string())
    );
    assert_eq!(
        session.metadata.get("course_id"),
        Some(&request.course_id.to_string())
    );
    assert_eq!(
        session.metadata.get("user_id"),
        Some(&request.user_id.to_string())
    );
    assert_eq!(
        session.bill,
        Some(Bill::of_price(request.amount)),
        "without a code or tax, the price is billed as it is"
    );
    assert!(
        session.facts().is_empty(),
        "an open unpaid session proves nothing yet"
    );
}

pub async fn the_same_idempotency_key_returns_the_same_session(world: &dyn GatewayWorld) {
    let (request, first) = open_session(world, 1999).await;
    let again = world
        .gateway()
        .create_checkout_session(&request)
        .await
        .unwrap();
    assert_eq!(again.id, first.id);
    let (_, other) = open_session(world, 1999).await;
    assert_ne!(other.id, first.id, "another purchase gets another session");
}

pub async fn an_unknown_session_is_not_found(world: &dyn GatewayWorld) {
    let error = world
        .gateway()
        .retrieve_checkout_session("cs_test_does_not_exist")
        .await
        .unwrap_err();
    assert_eq!(error, GatewayError::NotFound);
}

pub async fn a_paid_session_proves_the_payment(world: &dyn GatewayWorld) {
    let (request, session) = paid_session(world, 2500).await;
    let paid = retrieve(world, &session.id).await;
    assert_eq!(paid.status, SessionStatus::Complete);
    assert_eq!(paid.payment_status, SessionPaymentStatus::Paid);
    assert_eq!(
        paid.facts(),
        vec![
            PaymentFact::PaymentSucceeded {
                amount: request.amount,
                at: None
            },
            PaymentFact::Billed(Bill::of_price(request.amount)),
        ]
    );
    let payment_intent = paid.payment_intent_id.clone().expect("payment intent");
    let found = world
        .gateway()
        .find_session_by_payment_intent(&payment_intent)
        .await
        .unwrap();
    assert_eq!(found.map(|s| s.id), Some(session.id));
    assert_eq!(
        world
            .gateway()
            .find_session_by_payment_intent("pi_test_unknown")
            .await
            .unwrap(),
        None
    );
}

pub async fn refunds_are_bounded_by_what_was_paid(world: &dyn GatewayWorld) {
    let (request, payment_intent) = paid_intent(world, 2000).await;
    let refund = |amount: i64, key: &str| RefundRequest {
        purchase_id: request.purchase_id,
        payment_intent_id: payment_intent.clone(),
        amount: Money::new(amount, Currency::USD).unwrap(),
        reason: Some("requested_by_customer".into()),
        idempotency_key: format!("refund-{}-{key}", request.purchase_id),
    };
    let partial = world.gateway().refund(&refund(500, "a")).await.unwrap();
    assert_eq!(partial.status, RefundStatus::Succeeded);
    assert_eq!(partial.amount.minor(), 500);
    let replayed = world.gateway().refund(&refund(500, "a")).await.unwrap();
    assert_eq!(
        replayed.refund_id, partial.refund_id,
        "the same key never refunds twice"
    );
    let too_much = world
        .gateway()
        .refund(&refund(1501, "b"))
        .await
        .unwrap_err();
    assert!(
        matches!(too_much, GatewayError::Rejected { .. }),
        "over-refund: {too_much:?}"
    );
    let rest = world.gateway().refund(&refund(1500, "c")).await.unwrap();
    assert_eq!(rest.amount.minor(), 1500);
}

pub async fn refunding_an_unknown_payment_is_not_found(world: &dyn GatewayWorld) {
    let request = RefundRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::new_v4()),
        payment_intent_id: "pi_test_unknown".into(),
        amount: Money::new(100, Currency::USD).unwrap(),
        reason: None,
        idempotency_key: format!("refund-{}", Uuid::new_v4()),
    };
    assert_eq!(
        world.gateway().refund(&request).await.unwrap_err(),
        GatewayError::NotFound
    );
}

pub async fn a_signed_completion_webhook_carries_the_payment(world: &dyn GatewayWorld) {
    let (request, session) = paid_session(world, 1999).await;
    let (body, signature) = world.completion_webhook(&session.id).await;
    let WebhookEvent::Relevant(event) = world
        .gateway()
        .verify_webhook(&body, Some(&signature))
        .unwrap()
    else {
        panic!("a completed checkout is relevant");
    };
    assert!(!event.envelope.id.is_empty());
    assert!(
        !event.envelope.livemode,
        "a test deployment hears test events"
    );
    assert_eq!(event.locator.purchase_id, Some(request.purchase_id));
    assert_eq!(
        event.locator.checkout_session_id.as_deref(),
        Some(session.id.as_str())
    );
    // With the time the payment completed: what a buyer's purchase is dated by.
    assert!(
        event.facts.iter().any(|fact| matches!(
            fact,
            PaymentFact::PaymentSucceeded { amount, at: Some(_) } if *amount == request.amount
        )),
        "{:?}",
        event.facts
    );
    assert_eq!(event.envelope.payload.as_bytes(), body.as_slice());
}

pub async fn tampered_or_unsigned_webhooks_are_rejected(world: &dyn GatewayWorld) {
    let (_request, session) = paid_session(world, 1999).await;
    let (body, signature) = world.completion_webhook(&session.id).await;
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("1999", "9999")
        .into_bytes();
    assert_ne!(tampered, body);
    assert_eq!(
        world
            .gateway()
            .verify_webhook(&tampered, Some(&signature))
            .unwrap_err(),
        WebhookRejection::BadSignature
    );
    assert_eq!(
        world.gateway().verify_webhook(&body, None).unwrap_err(),
        WebhookRejection::BadSignature
    );
}

pub async fn an_open_session_can_be_expired_once(world: &dyn GatewayWorld) {
    let since = OffsetDateTime::now_utc() - Duration::minutes(1);
    let (request, session) = open_session(world, 1999).await;
    let closed = world
        .gateway()
        .expire_checkout_session(&session.id)
        .await
        .unwrap();
    assert_eq!(closed.id, session.id);
    assert_eq!(closed.status, SessionStatus::Expired);
    assert_eq!(closed.payment_status, SessionPaymentStatus::Unpaid);
    assert_eq!(closed.url, None, "a closed session has no payment page");
    assert_eq!(closed.purchase_id, Some(request.purchase_id));
    assert_eq!(closed.facts(), vec![PaymentFact::CheckoutExpired]);
    let retrieved = retrieve(world, &session.id).await;
    assert_eq!(retrieved.status, SessionStatus::Expired);
    assert_eq!(retrieved.facts(), vec![PaymentFact::CheckoutExpired]);
    let again = world
        .gateway()
        .expire_checkout_session(&session.id)
        .await
        .unwrap_err();
    assert!(
        matches!(again, GatewayError::Rejected { .. }),
        "a second expiry: {again:?}"
    );
    // The gateway tells of the expiry like of any other change.
    let expiries: Vec<_> = list_all(world, since, 100)
        .await
        .into_iter()
        .filter_map(|event| match event {
            WebhookEvent::Relevant(event)
                if event.locator.checkout_session_id.as_deref() == Some(session.id.as_str()) =>
            {
                Some(event)
            }
            _ => None,
        })
        .collect();
    assert_eq!(expiries.len(), 1, "{expiries:?}");
    assert_eq!(expiries[0].facts, vec![PaymentFact::CheckoutExpired]);
    assert_eq!(expiries[0].locator.purchase_id, Some(request.purchase_id));
}

pub async fn a_paid_session_cannot_be_expired(world: &dyn GatewayWorld) {
    let (_request, session) = paid_session(world, 1999).await;
    let error = world
        .gateway()
        .expire_checkout_session(&session.id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GatewayError::Rejected { .. }),
        "expiring a paid session: {error:?}"
    );
    let still = retrieve(world, &session.id).await;
    assert_eq!(
        (still.status, still.payment_status),
        (SessionStatus::Complete, SessionPaymentStatus::Paid)
    );
}

pub async fn expiring_an_unknown_session_is_not_found(world: &dyn GatewayWorld) {
    assert_eq!(
        world
            .gateway()
            .expire_checkout_session("cs_test_does_not_exist")
            .await
            .unwrap_err(),
        GatewayError::NotFound
    );
}

/// Every event created at or after `since`, page by page (`limit` a page), newest first;
/// checks that each page but the last says more remain.
async fn list_all(
    world: &dyn GatewayWorld,
    since: OffsetDateTime,
    limit: u32,
) -> Vec<WebhookEvent> {
    let mut events = Vec::new();
    let mut starting_after: Option<String> = None;
    for _ in 0..100 {
        let page = world
            .gateway()
            .list_events(&EventQuery {
                created_from: since,
                starting_after: starting_after.take(),
                limit,
            })
            .await
            .unwrap();
        assert!(
            page.events.len() <= limit as usize,
            "a page holds at most its limit"
        );
        starting_after = page.events.last().map(|event| event.envelope().id.clone());
        events.extend(page.events);
        if !page.has_more {
            return events;
        }
        assert!(starting_after.is_some(), "more remain after an empty page");
    }
    panic!("the event history never ended");
}

pub async fn the_events_of_a_paid_checkout_are_listed_newest_first(world: &dyn GatewayWorld) {
    let since = OffsetDateTime::now_utc() - Duration::minutes(1);
    let (request, session) = paid_session(world, 2100).await;
    let events = list_all(world, since, 100).await;
    assert!(!events.is_empty(), "a paid checkout leaves events");
    for pair in events.windows(2) {
        assert!(
            pair[0].envelope().created >= pair[1].envelope().created,
            "newest first: {:?}",
            events
                .iter()
                .map(|e| e.envelope().created)
                .collect::<Vec<_>>()
        );
    }
    let mut completions = 0;
    for event in &events {
        // Only the types the adapter acts on are asked for, and these are all about our
        // purchase: nothing listed here is ignored.
        let WebhookEvent::Relevant(event) = event else {
            panic!("an event the adapter does not act on was listed: {event:?}");
        };
        assert!(event.envelope.created >= since - Duration::seconds(1));
        assert!(!event.envelope.livemode);
        let ours = event.locator.purchase_id == Some(request.purchase_id)
            || event.locator.checkout_session_id.as_deref() == Some(session.id.as_str());
        assert!(ours, "an event of another purchase: {event:?}");
        if event.locator.checkout_session_id.as_deref() == Some(session.id.as_str())
            && event.facts.iter().any(|fact| {
                matches!(fact, PaymentFact::PaymentSucceeded { amount, at: Some(_) } if *amount == request.amount)
            })
        {
            completions += 1;
        }
    }
    assert_eq!(completions, 1, "the session's completion, once: {events:?}");
}

pub async fn the_event_history_pages_with_a_cursor(world: &dyn GatewayWorld) {
    let since = OffsetDateTime::now_utc() - Duration::minutes(1);
    paid_session(world, 1999).await;
    paid_session(world, 2999).await;
    let (_, open) = open_session(world, 3999).await;
    world
        .gateway()
        .expire_checkout_session(&open.id)
        .await
        .unwrap();
    let at_once = list_all(world, since, 100).await;
    assert!(
        at_once.len() >= 3,
        "two payments and an expiry: {at_once:?}"
    );
    let ids = |events: &[WebhookEvent]| -> Vec<String> {
        events
            .iter()
            .map(|event| event.envelope().id.clone())
            .collect()
    };
    let one_by_one = list_all(world, since, 1).await;
    assert_eq!(ids(&one_by_one), ids(&at_once));
    let two_by_two = list_all(world, since, 2).await;
    assert_eq!(ids(&two_by_two), ids(&at_once));
    let mut unique = ids(&at_once);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), at_once.len(), "no event is listed twice");
}

pub async fn no_events_are_listed_from_the_future(world: &dyn GatewayWorld) {
    paid_session(world, 1999).await;
    let page = world
        .gateway()
        .list_events(&EventQuery {
            created_from: OffsetDateTime::now_utc() + Duration::hours(1),
            starting_after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(page.events.is_empty(), "{:?}", page.events);
    assert!(!page.has_more);
}

pub async fn a_listed_or_delivered_event_decodes_again_from_its_payload(world: &dyn GatewayWorld) {
    let since = OffsetDateTime::now_utc() - Duration::minutes(1);
    let (_request, session) = paid_session(world, 1999).await;
    let events = list_all(world, since, 100).await;
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(
            world
                .gateway()
                .decode_stored_event(event.envelope().payload.as_bytes())
                .as_ref(),
            Ok(event),
            "the payload kept decodes to the event listed"
        );
    }
    // A delivered webhook, kept and decoded again much later, is the event it was.
    let (body, signature) = world.completion_webhook(&session.id).await;
    let verified = world
        .gateway()
        .verify_webhook(&body, Some(&signature))
        .unwrap();
    assert_eq!(world.gateway().decode_stored_event(&body), Ok(verified));
    assert!(matches!(
        world.gateway().decode_stored_event(b"not an event"),
        Err(WebhookRejection::Malformed(_))
    ));
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

fn usd_bill(subtotal: i64, discount: i64, tax: i64, total: i64) -> Bill {
    Bill::new(usd(subtotal), usd(discount), usd(tax), usd(total), None).unwrap()
}

fn customer_request(user_id: UserId) -> CustomerRequest {
    CustomerRequest {
        user_id,
        email: format!("{user_id}@example.com"),
        name: "Ada Lovelace".into(),
        idempotency_key: format!("customer-{user_id}"),
    }
}

pub async fn customers_are_created_once_per_idempotency_key(world: &dyn GatewayWorld) {
    let user = UserId::from_uuid(Uuid::new_v4());
    let first = world
        .gateway()
        .create_customer(&customer_request(user))
        .await
        .unwrap();
    assert!(!first.is_empty());
    let again = world
        .gateway()
        .create_customer(&customer_request(user))
        .await
        .unwrap();
    assert_eq!(again, first, "a retried creation returns the same customer");
    assert_eq!(
        world.customer_count().await,
        1,
        "one customer at the gateway"
    );
    let other = world
        .gateway()
        .create_customer(&customer_request(UserId::from_uuid(Uuid::new_v4())))
        .await
        .unwrap();
    assert_ne!(other, first, "another user gets another customer");
    assert_eq!(world.customer_count().await, 2);
}

pub async fn a_checkout_for_a_customer_is_the_customers(world: &dyn GatewayWorld) {
    let customer = world
        .gateway()
        .create_customer(&customer_request(UserId::from_uuid(Uuid::new_v4())))
        .await
        .unwrap();
    // The e-mail stays in the request: the adapter knows not to send both.
    let request = CheckoutRequest {
        customer_id: Some(customer.clone()),
        ..request(1999)
    };
    let session = world
        .gateway()
        .create_checkout_session(&request)
        .await
        .unwrap();
    assert_eq!(world.session_customer(&session.id).await, Some(customer));
    let (_, plain) = open_session(world, 1999).await;
    assert_eq!(world.session_customer(&plain.id).await, None);
}

/// The webhook the gateway sent when the session completed, verified.
async fn completion_event(world: &dyn GatewayWorld, session_id: &str) -> GatewayEvent {
    let (body, signature) = world.completion_webhook(session_id).await;
    match world
        .gateway()
        .verify_webhook(&body, Some(&signature))
        .unwrap()
    {
        WebhookEvent::Relevant(event) => event,
        other => panic!("a completed checkout is relevant: {other:?}"),
    }
}

/// Checks that the session, retrieved after payment, and its completion webhook both report
/// `bill`, a payment of its total, and `promotion_code`.
async fn assert_billed(
    world: &dyn GatewayWorld,
    session_id: &str,
    bill: Bill,
    promotion_code: Option<&str>,
) {
    let session = retrieve(world, session_id).await;
    assert_eq!(session.status, SessionStatus::Complete);
    assert_eq!(session.bill, Some(bill));
    assert_eq!(session.amount_total, bill.total().minor());
    assert_eq!(
        session.facts(),
        vec![
            PaymentFact::PaymentSucceeded {
                amount: bill.total(),
                at: None
            },
            PaymentFact::Billed(bill),
        ]
    );
    let event = completion_event(world, session_id).await;
    assert!(
        event.facts.iter().any(|fact| matches!(
            fact,
            PaymentFact::PaymentSucceeded { amount, at: Some(_) } if *amount == bill.total()
        )),
        "{:?}",
        event.facts
    );
    assert!(
        event.facts.contains(&PaymentFact::Billed(bill)),
        "{:?}",
        event.facts
    );
    assert_eq!(event.details.promotion_code.as_deref(), promotion_code);
}

pub async fn a_promotion_code_is_named_as_the_customer_typed_it(world: &dyn GatewayWorld) {
    for promotion in [Promotion::QuarterOff, Promotion::Free] {
        let (_request, session) = open_session(world, 2000).await;
        let id = world.customer_applies_code(&session.id, promotion).await;
        let text = world
            .gateway()
            .promotion_code_text(&id)
            .await
            .expect("the gateway answers");
        assert_eq!(text.as_deref(), Some(promotion.typed()), "{id}");
    }
    let unknown = world
        .gateway()
        .promotion_code_text("promo_never_created")
        .await
        .expect("the gateway answers");
    assert_eq!(unknown, None);
}

pub async fn a_discounted_checkout_reports_its_bill_and_code(world: &dyn GatewayWorld) {
    let (_request, session) = open_session(world, 2000).await;
    let code = world
        .customer_applies_code(&session.id, Promotion::QuarterOff)
        .await;
    assert!(!code.is_empty());
    let discounted = retrieve(world, &session.id).await;
    assert_eq!(discounted.bill, Some(usd_bill(2000, 500, 0, 1500)));
    assert_eq!(discounted.amount_total, 1500);
    world.customer_pays(&session.id).await;
    assert_billed(
        world,
        &session.id,
        usd_bill(2000, 500, 0, 1500),
        Some(&code),
    )
    .await;
    // What can be refunded is what was paid.
    let payment_intent = retrieve(world, &session.id)
        .await
        .payment_intent_id
        .expect("a paid session names its payment intent");
    let refund = |amount: i64, key: &str| RefundRequest {
        purchase_id: PurchaseId::from_uuid(Uuid::new_v4()),
        payment_intent_id: payment_intent.clone(),
        amount: usd(amount),
        reason: None,
        idempotency_key: format!("refund-{}-{key}", session.id),
    };
    assert!(matches!(
        world.gateway().refund(&refund(1501, "a")).await,
        Err(GatewayError::Rejected { .. })
    ));
    assert_eq!(
        world
            .gateway()
            .refund(&refund(1500, "b"))
            .await
            .unwrap()
            .amount,
        usd(1500)
    );
}

pub async fn a_taxed_checkout_reports_its_tax(world: &dyn GatewayWorld) {
    let request = request(2000);
    let session = world.open_taxed_session(&request).await;
    let tax = 2000 * CONTRACT_TAX_RATE_BPS / 10_000;
    assert_eq!(session.bill, Some(usd_bill(2000, 0, tax, 2000 + tax)));
    assert_eq!(session.amount_total, 2000 + tax);
    assert_eq!(session.purchase_id, Some(request.purchase_id));
    world.customer_pays(&session.id).await;
    assert_billed(world, &session.id, usd_bill(2000, 0, tax, 2000 + tax), None).await;
}

pub async fn a_discount_is_taken_before_the_tax(world: &dyn GatewayWorld) {
    let session = world.open_taxed_session(&request(2000)).await;
    let code = world
        .customer_applies_code(&session.id, Promotion::QuarterOff)
        .await;
    world.customer_pays(&session.id).await;
    let tax = 1500 * CONTRACT_TAX_RATE_BPS / 10_000;
    assert_billed(
        world,
        &session.id,
        usd_bill(2000, 500, tax, 1500 + tax),
        Some(&code),
    )
    .await;
}

pub async fn a_checkout_made_free_completes_without_a_payment(world: &dyn GatewayWorld) {
    let (request, session) = open_session(world, 2000).await;
    let code = world
        .customer_applies_code(&session.id, Promotion::Free)
        .await;
    world.customer_pays(&session.id).await;
    let free = usd_bill(2000, 2000, 0, 0);
    let completed = retrieve(world, &session.id).await;
    assert_eq!(
        (completed.status, completed.payment_status),
        (
            SessionStatus::Complete,
            SessionPaymentStatus::NoPaymentRequired
        )
    );
    assert_eq!(completed.payment_intent_id, None, "nothing was charged");
    assert_eq!(completed.bill, Some(free));
    assert_eq!(
        completed.facts(),
        vec![
            PaymentFact::PaymentSucceeded {
                amount: usd(0),
                at: None
            },
            PaymentFact::Billed(free),
        ]
    );
    let event = completion_event(world, &session.id).await;
    assert_eq!(event.locator.purchase_id, Some(request.purchase_id));
    assert_eq!(event.locator.payment_intent_id, None);
    assert!(
        event.facts.iter().any(|fact| matches!(
            fact,
            PaymentFact::PaymentSucceeded { amount, at: Some(_) } if *amount == usd(0)
        )),
        "{:?}",
        event.facts
    );
    assert!(event.facts.contains(&PaymentFact::Billed(free)));
    assert_eq!(event.details.promotion_code.as_deref(), Some(code.as_str()));
}

/// Expands to one `#[tokio::test]` per contract check; `$world` is an async expression
/// building a fresh [`GatewayWorld`] for each test.
#[macro_export]
macro_rules! gateway_contract_tests {
    ($world:expr) => {
        $crate::gateway_contract_tests!(@each $world;
            a_new_session_is_open_unpaid_and_echoes_the_purchase,
            the_same_idempotency_key_returns_the_same_session,
            an_unknown_session_is_not_found,
            a_paid_session_proves_the_payment,
            refunds_are_bounded_by_what_was_paid,
            refunding_an_unknown_payment_is_not_found,
            a_signed_completion_webhook_carries_the_payment,
            tampered_or_unsigned_webhooks_are_rejected,
            an_open_session_can_be_expired_once,
            a_paid_session_cannot_be_expired,
            expiring_an_unknown_session_is_not_found,
            the_events_of_a_paid_checkout_are_listed_newest_first,
            the_event_history_pages_with_a_cursor,
            no_events_are_listed_from_the_future,
            a_listed_or_delivered_event_decodes_again_from_its_payload,
            customers_are_created_once_per_idempotency_key,
            a_checkout_for_a_customer_is_the_customers,
            a_discounted_checkout_reports_its_bill_and_code,
            a_promotion_code_is_named_as_the_customer_typed_it,
            a_taxed_checkout_reports_its_tax,
            a_discount_is_taken_before_the_tax,
            a_checkout_made_free_completes_without_a_payment,
        );
    };
    (@each $world:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let world = $world.await;
                $crate::$check(&world).await;
            }
        )+
    };
}
