//! `spawn_app()`: the real server on 127.0.0.1:0, assembled by `Application::assemble` over
//! swappable adapters, with typed request helpers and handles on the adapters to assert stored
//! state.

use crate::api::wiring::{self, Commerce, CountingGateway};
use governor::clock::FakeRelativeClock;
use lms_actix_api::limits::{LimiterClock, RateLimits};
use lms_actix_api::ApiSettings;
use lms_app::{AppParts, WorkerSettings};
use lms_domain::{Currency, Money, PaymentFact, Purchase, PurchaseId};
use lms_in_memory::{FakeEvent, FakeGateway, InMemoryStore, ManualClock};
use lms_ports::{
    AuditLog, CourseRepo, EventInbox, GatewayError, PaymentGateway, PurchaseRepo, RefundStatus,
    StorageHealth, UserRepo,
};
use lms_postgres::PgStore;
use lms_stripe_sandbox::Sandbox;
use lms_test_db::TestDatabase;
use lms_use_cases::Services;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const SUCCESS_URL: &str =
    "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}";
pub const FRONTEND: &str = "http://localhost:5173";

/// Which adapters sit behind the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// InMemoryStore + FakeGateway.
    Memory,
    /// PgStore on a fresh database + the Stripe adapter against the Stripe sandbox.
    PostgresStripe,
    /// PgStore pointed at a port where no database listens (+ the fake gateway).
    DeadPostgres,
}

/// The gateway handle a test can script and inspect.
pub enum Gateway {
    Fake(FakeGateway),
    Stripe {
        sandbox: Arc<Sandbox>,
        /// Calls that reached the gateway port.
        calls: Arc<AtomicUsize>,
    },
}

/// A gateway failure to script, in terms both wirings can produce.
#[derive(Debug, Clone, Copy)]
pub enum Outage {
    /// Connection trouble or 5xx: retryable.
    Unavailable,
    /// Our credentials are refused.
    Misconfigured,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub memory: Option<InMemoryStore>,
    pub purchases: Arc<dyn PurchaseRepo>,
    /// The use cases over the server's own adapters, for what only the operator may do (make a
    /// user admin: `Operator::CommandLine`).
    pub services: Services,
    pub gateway: Gateway,
    pub clock: ManualClock,
    /// The rate limiters' time: advance it to let a limited client in again.
    pub limiter_clock: FakeRelativeClock,
    /// Keeps the per-test database alive; dropping it drops the database.
    _db: Option<TestDatabase>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts the error envelope with an exact status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.json["success"], false, "body: {}", self.text);
        assert_eq!(self.json["code"], code, "body: {}", self.text);
        let kind = if status >= 500 { "error" } else { "fail" };
        assert_eq!(self.json["status"], kind, "body: {}", self.text);
        assert!(
            self.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.text
        );
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "body: {}",
            self.text
        );
    }
}

/// A signed-up user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
}

/// What a checkout returned, enough to build gateway events about it.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub purchase_id: String,
    pub session_id: String,
    pub url: String,
    pub amount_cents: i64,
    pub currency: String,
}

pub async fn spawn_app_with(wiring: Wiring) -> TestApp {
    spawn_app_tuned(wiring, |_| {}).await
}

/// As [`spawn_app_with`], with checkouts billing promotion codes, tax or another currency and
/// the use cases set as `commerce` says.
pub async fn spawn_app_commerce(wiring: Wiring, commerce: Commerce) -> TestApp {
    spawn_app_running(wiring, |_| {}, WorkerSettings::off(), commerce).await
}

/// As [`spawn_app_with`], with the API settings adjusted by `tune` first. The abuse limits are
/// off unless `tune` sets them, so tests of other behaviour sign up and in freely.
pub async fn spawn_app_tuned(wiring: Wiring, tune: impl FnOnce(&mut ApiSettings)) -> TestApp {
    spawn_app_running(wiring, tune, WorkerSettings::off(), Commerce::default()).await
}

/// As [`spawn_app_with`], with the background `workers` running while the app serves (on the
/// test's manual clock; their intervals are real time).
pub async fn spawn_app_with_workers(wiring: Wiring, workers: WorkerSettings) -> TestApp {
    spawn_app_running(wiring, |_| {}, workers, Commerce::default()).await
}

async fn spawn_app_running(
    wiring: Wiring,
    tune: impl FnOnce(&mut ApiSettings),
    workers: WorkerSettings,
    commerce: Commerce,
) -> TestApp {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let mut api = ApiSettings::new(SUCCESS_URL);
    api.cookie_secure = true;
    api.cors_origins = vec![FRONTEND.to_owned()];
    api.workers = Some(1);
    api.shutdown_timeout = Duration::from_secs(1);
    api.rate_limits = RateLimits::off();
    tune(&mut api);
    let limiter_clock = FakeRelativeClock::default();
    let use_cases = commerce.use_cases;
    let parts = |store, gateway| AppParts {
        workers,
        use_cases,
        ..wiring::parts(
            store,
            gateway,
            wiring::fast_hasher(),
            &clock,
            api,
            LimiterClock::manual(limiter_clock.clone()),
        )
    };
    let services;
    let (base, memory, purchases, gateway, db): (_, _, Arc<dyn PurchaseRepo>, _, _) = match wiring {
        Wiring::Memory => {
            let store = InMemoryStore::new();
            let gateway = FakeGateway::new();
            let app_parts = parts((), Arc::new(gateway.clone())).with_store(store.clone());
            services = services_over(&app_parts);
            let base = wiring::serve(app_parts).await;
            let purchases = Arc::new(store.clone());
            (base, Some(store), purchases, Gateway::Fake(gateway), None)
        }
        Wiring::DeadPostgres => {
            // Nothing listens on port 1.
            let store = PgStore::connect_lazy(
                "postgres://postgres@127.0.0.1:1/none",
                1,
                Duration::from_millis(500),
            );
            let gateway = FakeGateway::new();
            let app_parts = parts((), Arc::new(gateway.clone())).with_store(store.clone());
            services = services_over(&app_parts);
            let base = wiring::serve(app_parts).await;
            (base, None, Arc::new(store), Gateway::Fake(gateway), None)
        }
        Wiring::PostgresStripe => {
            let db = TestDatabase::migrated("lms_api_test").await;
            let store = PgStore::connect_lazy(db.url(), 5, Duration::from_secs(10));
            let sandbox = Arc::new(wiring::sandbox(&commerce).await);
            let stripe: Arc<dyn PaymentGateway> =
                Arc::new(wiring::stripe_gateway(&sandbox, &clock, commerce.checkout));
            let (counting, calls) = CountingGateway::new(stripe);
            let app_parts = parts((), Arc::new(counting)).with_store(store.clone());
            services = services_over(&app_parts);
            let base = wiring::serve(app_parts).await;
            (
                base,
                None,
                Arc::new(store),
                Gateway::Stripe { sandbox, calls },
                Some(db),
            )
        }
    };
    TestApp {
        base,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        memory,
        purchases,
        services,
        gateway,
        clock,
        limiter_clock,
        _db: db,
    }
}

/// The use cases over the same adapters as the server assembled from `parts` (clones of a
/// store share its data).
fn services_over<S>(parts: &AppParts<S>) -> Services
where
    S: UserRepo + CourseRepo + PurchaseRepo + EventInbox + AuditLog + StorageHealth + Clone,
{
    Services::with_store(
        parts.store.clone(),
        Arc::clone(&parts.gateway),
        Arc::clone(&parts.hasher),
        Arc::clone(&parts.clock),
        parts.use_cases,
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn read(response: reqwest::Response) -> Resp {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        Self::read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    pub async fn signup(&self, body: &Value) -> Resp {
        self.post("/api/v1/user/signup", None, body).await
    }

    /// Signs up a fresh user with a unique email.
    pub async fn user(&self, role: &str) -> TestUser {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        let password = "correct horse battery staple".to_owned();
        let resp = self
            .signup(&json!({"name": format!("A {role}"), "email": email, "password": password, "role": role}))
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        TestUser {
            id: resp.json["user"]["id"].as_str().unwrap().to_owned(),
            email,
            password,
            token: resp.json["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn create_course(&self, instructor: &TestUser, price_cents: i64) -> Value {
        let resp = self
            .post(
                "/api/v1/courses",
                Some(&instructor.token),
                &json!({"title": "Rust for the Web", "subtitle": "Hexagonal", "priceCents": price_cents, "currency": "usd"}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        resp.json["course"].clone()
    }

    /// Creates and publishes a course; returns its id.
    pub async fn published_course(&self, instructor: &TestUser, price_cents: i64) -> String {
        let course = self.create_course(instructor, price_cents).await;
        let id = course["id"].as_str().unwrap().to_owned();
        let resp = self
            .patch(
                &format!("/api/v1/courses/{id}"),
                Some(&instructor.token),
                &json!({"isPublished": true}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        id
    }

    pub async fn checkout_raw(&self, student: &TestUser, course_id: &str) -> Resp {
        self.post(
            "/api/v1/payments/create-checkout-session",
            Some(&student.token),
            &json!({"courseId": course_id}),
        )
        .await
    }

    pub async fn checkout(&self, student: &TestUser, course_id: &str) -> Checkout {
        let resp = self.checkout_raw(student, course_id).await;
        assert!(resp.status == 201 || resp.status == 200, "{}", resp.text);
        let session = &resp.json["data"]["session"];
        Checkout {
            purchase_id: session["client_reference_id"].as_str().unwrap().to_owned(),
            session_id: session["id"].as_str().unwrap().to_owned(),
            url: session["url"].as_str().unwrap().to_owned(),
            amount_cents: session["amount_total"].as_i64().unwrap(),
            currency: session["currency"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn status_of(&self, student: &TestUser, course_id: &str) -> Resp {
        self.get(
            &format!("/api/v1/payments/courses/{course_id}/purchase-status"),
            Some(&student.token),
        )
        .await
    }

    pub async fn webhook(&self, body: Vec<u8>, signature: Option<&str>) -> Resp {
        let mut request = self
            .client
            .post(self.url("/api/v1/payments/webhook"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        self.send(request).await
    }

    pub async fn purchase(&self, id: &str) -> Purchase {
        let id: PurchaseId = id.parse().unwrap();
        self.purchases.get_purchase(id).await.unwrap().unwrap()
    }

    // ---- gateway events, in the wiring's own format ---------------------------------------

    fn money(cents: i64, currency: &str) -> Money {
        Money::new(cents, Currency::parse(currency).unwrap()).unwrap()
    }

    /// A signed event carrying `facts` about the checkout's purchase, in the wiring's format.
    pub fn event(
        &self,
        event_id: &str,
        event_type: &str,
        checkout: &Checkout,
        facts: &[PaymentFact],
    ) -> (Vec<u8>, String) {
        match &self.gateway {
            Gateway::Fake(_) => {
                use lms_ports::Clock;
                // Stamped like the sandbox's events, so both wirings date payments alike.
                let mut event = FakeEvent::new(event_id, event_type)
                    .created_at(self.clock.now())
                    .for_purchase(checkout.purchase_id.parse().unwrap())
                    .with_session(checkout.session_id.clone())
                    .with_payment_intent(Self::payment_intent_of(checkout));
                for fact in facts {
                    event = event.with_fact(*fact);
                }
                FakeGateway::signed_event(&event)
            }
            Gateway::Stripe { sandbox, .. } => {
                use lms_ports::Clock;
                let now = self.clock.now().unix_timestamp();
                crate::api::stripe_events::signed_event(
                    sandbox, event_id, event_type, checkout, facts, now,
                )
            }
        }
    }

    /// `checkout.session.completed`, paid.
    pub fn paid_event(&self, event_id: &str, checkout: &Checkout) -> (Vec<u8>, String) {
        self.succeeded_event(event_id, "checkout.session.completed", checkout)
    }

    /// `charge.succeeded` alone (no `checkout.session.completed`): the charge names the
    /// purchase through the payment intent's metadata.
    pub fn charge_succeeded_event(&self, event_id: &str, checkout: &Checkout) -> (Vec<u8>, String) {
        self.succeeded_event(event_id, "charge.succeeded", checkout)
    }

    /// A payment of the checkout's full amount, reported by an event of `event_type`.
    fn succeeded_event(
        &self,
        event_id: &str,
        event_type: &str,
        checkout: &Checkout,
    ) -> (Vec<u8>, String) {
        // The gateway's own state follows the event (its refunds need a captured payment).
        self.pay_session(&checkout.session_id, &Self::payment_intent_of(checkout));
        let amount = Self::money(checkout.amount_cents, &checkout.currency);
        self.event(
            event_id,
            event_type,
            checkout,
            // No time of its own: the event's is the payment's, at Stripe as in the fake.
            &[PaymentFact::PaymentSucceeded { amount, at: None }],
        )
    }

    pub fn refunded_event(
        &self,
        event_id: &str,
        checkout: &Checkout,
        total_cents: i64,
    ) -> (Vec<u8>, String) {
        let total = Self::money(total_cents, &checkout.currency);
        self.event(
            event_id,
            "charge.refunded",
            checkout,
            &[PaymentFact::Refunded { total }],
        )
    }

    pub fn processing_event(&self, event_id: &str, checkout: &Checkout) -> (Vec<u8>, String) {
        self.event(
            event_id,
            "checkout.session.completed",
            checkout,
            &[PaymentFact::PaymentProcessing],
        )
    }

    pub fn expired_event(&self, event_id: &str, checkout: &Checkout) -> (Vec<u8>, String) {
        self.event(
            event_id,
            "checkout.session.expired",
            checkout,
            &[PaymentFact::CheckoutExpired],
        )
    }

    /// Buys `course_id` for `student` end to end: checkout, then a signed paid webhook.
    pub async fn buy(&self, student: &TestUser, course_id: &str) -> Checkout {
        let checkout = self.checkout(student, course_id).await;
        let (body, signature) =
            self.paid_event(&format!("evt_paid_{}", Uuid::new_v4().simple()), &checkout);
        let resp = self.webhook(body, Some(&signature)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        checkout
    }

    /// Makes the store fail every call (memory wiring only).
    pub fn break_store(&self) -> bool {
        match &self.memory {
            Some(store) => {
                store.set_unavailable(true);
                true
            }
            None => false,
        }
    }

    /// The payment intent the events of a checkout carry.
    pub fn payment_intent_of(checkout: &Checkout) -> String {
        format!("pi_{}", checkout.purchase_id.replace('-', ""))
    }

    // ---- gateway scripting, whatever the wiring -------------------------------------------

    pub fn fail_gateway_next(&self, count: usize, outage: Outage) {
        match (&self.gateway, outage) {
            (Gateway::Fake(fake), Outage::Unavailable) => fake.fail_next(
                count,
                GatewayError::Unavailable("connect timeout to 10.0.0.1 secret sk_test_123".into()),
            ),
            (Gateway::Fake(fake), Outage::Misconfigured) => {
                fake.fail_next(
                    count,
                    GatewayError::Misconfigured("401 invalid api key sk_test_123".into()),
                );
            }
            (Gateway::Stripe { sandbox, .. }, outage) => {
                let status = match outage {
                    Outage::Unavailable => 503,
                    Outage::Misconfigured => 401,
                };
                let mut chaos = sandbox.chaos();
                chaos.fail_next.extend(std::iter::repeat_n(status, count));
                sandbox.set_chaos(chaos);
            }
        }
    }

    pub fn gateway_calls(&self) -> usize {
        match &self.gateway {
            Gateway::Fake(fake) => fake.call_count(),
            Gateway::Stripe { calls, .. } => calls.load(Ordering::SeqCst),
        }
    }

    /// The amounts of the refunds the gateway was asked for.
    pub fn gateway_refunds(&self) -> Vec<i64> {
        match &self.gateway {
            Gateway::Fake(fake) => fake.refunds().iter().map(|r| r.amount.minor()).collect(),
            Gateway::Stripe { sandbox, .. } => sandbox
                .events_of_type("refund.created")
                .iter()
                .map(|event| event["data"]["object"]["amount"].as_i64().unwrap())
                .collect(),
        }
    }

    /// Refunds are accepted but not yet confirmed (the webhook will confirm). Only the fake
    /// gateway can be told so; the sandbox, like Stripe for cards, confirms a refund at once.
    /// Returns whether refunds are now pending.
    pub fn set_refund_pending(&self) -> bool {
        match &self.gateway {
            Gateway::Fake(fake) => {
                fake.set_refund_status(RefundStatus::Pending);
                true
            }
            Gateway::Stripe { .. } => false,
        }
    }

    /// The customer pays on the payment page, after entering `promotion_code` (one of the
    /// sandbox's: SPRING25, TENOFF, FREECOURSE), and the gateway's own
    /// `checkout.session.completed` and, when something was charged, `charge.succeeded` (with
    /// its receipt page) are delivered. The sandbox bills what its settings say; the fake
    /// gateway bills `fake_bill`, which the test computed by hand, so that both wirings must
    /// end the same.
    pub async fn pay_on_page(
        &self,
        checkout: &Checkout,
        promotion_code: Option<&str>,
        fake_bill: lms_domain::Bill,
    ) {
        let mut deliveries = Vec::new();
        match &self.gateway {
            Gateway::Fake(fake) => {
                use lms_ports::Clock;
                let session = &checkout.session_id;
                if let Some(code) = promotion_code {
                    let promotion = lms_stripe_sandbox::PromotionCode::find(code).unwrap();
                    // The fake knows the sandbox's codes as the sandbox does.
                    fake.register_promotion_code(promotion.id, promotion.code);
                    assert!(fake.apply_promotion_code(session, promotion.id));
                }
                let intent = Self::payment_intent_of(checkout);
                let charged = !fake_bill.total().is_zero();
                if charged {
                    assert!(fake.pay_session_billed(session, &intent, fake_bill));
                } else {
                    assert!(fake.complete_session_without_payment(session, fake_bill));
                }
                let completed = fake
                    .events()
                    .into_iter()
                    .rev()
                    .find(|event| {
                        event.event_type == "checkout.session.completed"
                            && event.checkout_session_id.as_deref() == Some(session.as_str())
                    })
                    .unwrap();
                deliveries.push(FakeGateway::signed_event(&completed));
                if charged {
                    let charge = FakeEvent::new(
                        format!("evt_charge_{}", Uuid::new_v4().simple()),
                        "charge.succeeded",
                    )
                    .created_at(self.clock.now())
                    .with_payment_intent(intent.clone())
                    .with_receipt_url(format!("https://receipts.fake.test/{intent}"))
                    .with_fact(PaymentFact::PaymentSucceeded {
                        amount: fake_bill.total(),
                        at: None,
                    });
                    deliveries.push(FakeGateway::signed_event(&charge));
                }
            }
            Gateway::Stripe { sandbox, .. } => {
                use lms_ports::Clock;
                let session = &checkout.session_id;
                if let Some(code) = promotion_code {
                    sandbox.apply_promotion_code(session, code).unwrap();
                }
                sandbox
                    .pay(
                        session,
                        &lms_stripe_sandbox::PaymentMethod::Card(
                            crate::api::stripe_events::GOOD_CARD.to_owned(),
                        ),
                    )
                    .unwrap();
                let now = self.clock.now().unix_timestamp();
                for event in crate::api::stripe_events::events_about(sandbox, session) {
                    deliveries.push(crate::api::stripe_events::resigned(&event, now));
                }
            }
        }
        for (body, signature) in deliveries {
            let resp = self.webhook(body, Some(&signature)).await;
            assert_eq!(resp.status, 200, "{}", resp.text);
        }
    }

    /// The customers created at the gateway, oldest first (their ids).
    pub fn gateway_customers(&self) -> Vec<String> {
        match &self.gateway {
            Gateway::Fake(fake) => fake.customers().into_iter().map(|c| c.id).collect(),
            Gateway::Stripe { sandbox, .. } => sandbox
                .customers()
                .iter()
                .map(|customer| customer["id"].as_str().unwrap().to_owned())
                .collect(),
        }
    }

    /// The gateway customer a checkout was created for.
    pub fn checkout_customer(&self, checkout: &Checkout) -> Option<String> {
        match &self.gateway {
            Gateway::Fake(fake) => fake
                .checkout_requests()
                .into_iter()
                .find(|request| request.purchase_id.to_string() == checkout.purchase_id)
                .and_then(|request| request.customer_id),
            Gateway::Stripe { sandbox, .. } => sandbox.session(&checkout.session_id).unwrap()
                ["customer"]
                .as_str()
                .map(str::to_owned),
        }
    }

    /// The customer pays on the hosted page; no webhook is sent. The sandbox names the
    /// payment intent itself; the fake gateway takes `payment_intent`.
    pub fn pay_session(&self, session_id: &str, payment_intent: &str) -> bool {
        match &self.gateway {
            Gateway::Fake(fake) => fake.pay_session(session_id, payment_intent),
            Gateway::Stripe { sandbox, .. } => crate::api::stripe_events::pay(sandbox, session_id),
        }
    }
}

/// Instantiates each listed `async fn(TestApp)` once per wiring.
#[macro_export]
macro_rules! per_wiring {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::api::helpers::spawn_app_with($crate::api::helpers::Wiring::Memory).await).await;
                }
            )*
        }
        mod postgres_stripe {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::api::helpers::spawn_app_with($crate::api::helpers::Wiring::PostgresStripe).await).await;
                }
            )*
        }
    };
}

/// As [`per_wiring!`], each test on an app whose checkouts and use cases are set up by the
/// `Commerce` its setup function (in the calling module) returns.
#[macro_export]
macro_rules! per_wiring_commerce {
    ($($name:ident => $setup:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::api::helpers::spawn_app_commerce($crate::api::helpers::Wiring::Memory, super::$setup()).await).await;
                }
            )*
        }
        mod postgres_stripe {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::api::helpers::spawn_app_commerce($crate::api::helpers::Wiring::PostgresStripe, super::$setup()).await).await;
                }
            )*
        }
    };
}
