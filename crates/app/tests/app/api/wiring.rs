//! What each wiring puts behind the API. Every wiring is assembled by
//! `lms_app::Application::assemble`, the composition root the binary uses too; only the parts
//! differ. The per-test PostgreSQL database is `lms_test_db::TestDatabase`.

use async_trait::async_trait;
use lms_actix_api::limits::LimiterClock;
use lms_actix_api::{ApiSettings, SessionKey};
use lms_app::{AppParts, Application, WorkerSettings};
use lms_in_memory::ManualClock;
use lms_password_argon2::Argon2Hasher;
use lms_ports::{
    AuditLog, CheckoutRequest, CourseRepo, CustomerRequest, EventInbox, EventPage, EventQuery,
    GatewayError, GatewaySession, PasswordHasher, PaymentGateway, PurchaseRepo, RefundOutcome,
    RefundRequest, StorageHealth, UserRepo, WebhookEvent, WebhookRejection,
};
use lms_stripe_http::{CheckoutOptions, RetryPolicy, StripeConfig, StripeGateway};
use lms_stripe_sandbox::{Presentment, Sandbox, SandboxConfig};
use lms_use_cases::UseCaseSettings;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub const SECRET_KEY: &str = "sk_test_api_suite";
pub const WEBHOOK_SECRET: &str = "whsec_api_suite";
/// Where the sandbox's hosted pages claim to live: the frontend only ever redirects there,
/// and the suite checks that the API hands out an `https://` link untouched.
pub const SANDBOX_PAGE_BASE: &str = "https://checkout.sandbox.test";

/// The parts every wiring shares; the store, gateway and hasher are the wiring's.
pub fn parts<S>(
    store: S,
    gateway: Arc<dyn PaymentGateway>,
    hasher: Arc<dyn PasswordHasher>,
    clock: &ManualClock,
    api: ApiSettings,
    limiter_clock: LimiterClock,
) -> AppParts<S> {
    AppParts {
        store,
        gateway,
        hasher,
        clock: Arc::new(clock.clone()),
        use_cases: UseCaseSettings::default(),
        api,
        jwt_secret: SessionKey::parse(crate::api::helpers::JWT_SECRET).unwrap(),
        limiter_clock,
        seed_demo: false,
        // The tests drive time themselves; a test that wants a worker turns it on.
        workers: WorkerSettings::off(),
        listener: TcpListener::bind("127.0.0.1:0").unwrap(),
    }
}

pub fn fast_hasher() -> Arc<dyn PasswordHasher> {
    Arc::new(Argon2Hasher::fast_for_tests().unwrap())
}

/// Assembles the app and serves it in the background; returns its address.
pub async fn serve<S>(parts: AppParts<S>) -> String
where
    S: UserRepo + CourseRepo + PurchaseRepo + EventInbox + AuditLog + StorageHealth + Clone,
{
    let app = Application::assemble(parts).await.unwrap();
    // Its own address rather than `base_url` (`localhost` may resolve to IPv6 first).
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// What a wiring's checkouts bill beyond the price, and the use cases' settings: promotion
/// codes, tax, a presentment currency, the self-refund window. Everything off by default.
#[derive(Debug, Clone, Default)]
pub struct Commerce {
    pub use_cases: UseCaseSettings,
    /// What the Stripe adapter creates every checkout with.
    pub checkout: CheckoutOptions,
    /// The sandbox's flat tax rate for checkouts with automatic tax.
    pub tax_rate_bps: u32,
    /// The currency the sandbox presents every checkout in (Adaptive Pricing).
    pub presentment: Option<Presentment>,
}

/// The Stripe sandbox the adapter talks to. It delivers no webhooks itself: each test sends
/// the events it is about, in the order it wants.
pub async fn sandbox(commerce: &Commerce) -> Sandbox {
    let sandbox = Sandbox::start(SandboxConfig {
        secret_key: SECRET_KEY.to_owned(),
        webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
        webhook_url: None,
        tax_rate_bps: commerce.tax_rate_bps,
        presentment: commerce.presentment.clone(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    sandbox.set_page_base(SANDBOX_PAGE_BASE);
    sandbox
}

/// The real Stripe adapter against the sandbox, on the test's clock.
pub fn stripe_gateway(
    sandbox: &Sandbox,
    clock: &ManualClock,
    checkout: CheckoutOptions,
) -> StripeGateway {
    let mut config = StripeConfig::new(
        SECRET_KEY,
        WEBHOOK_SECRET,
        crate::api::helpers::SUCCESS_URL,
        "http://localhost:5173/payment/cancel",
    )
    .unwrap()
    .with_api_base(sandbox.base_url())
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    // Injected failures must reach the API, not be retried away.
    .with_retry(RetryPolicy::none());
    config.checkout = checkout;
    StripeGateway::new(config).unwrap()
}

/// Counts the calls that reach the gateway port (every method but `verify_webhook`, as the
/// fake gateway counts them), so that "the gateway was not asked" is checked on this wiring too.
pub struct CountingGateway {
    inner: Arc<dyn PaymentGateway>,
    calls: Arc<AtomicUsize>,
}

impl CountingGateway {
    pub fn new(inner: Arc<dyn PaymentGateway>) -> (Self, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let gateway = Self {
            inner,
            calls: Arc::clone(&calls),
        };
        (gateway, calls)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl PaymentGateway for CountingGateway {
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError> {
        self.count();
        self.inner.create_checkout_session(request).await
    }

    async fn create_customer(&self, request: &CustomerRequest) -> Result<String, GatewayError> {
        self.count();
        self.inner.create_customer(request).await
    }

    async fn promotion_code_text(
        &self,
        promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        self.count();
        self.inner.promotion_code_text(promotion_code_id).await
    }

    async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        self.count();
        self.inner.retrieve_checkout_session(session_id).await
    }

    async fn find_session_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError> {
        self.count();
        self.inner
            .find_session_by_payment_intent(payment_intent_id)
            .await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        self.count();
        self.inner.refund(request).await
    }

    async fn expire_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        self.count();
        self.inner.expire_checkout_session(session_id).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        self.count();
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
