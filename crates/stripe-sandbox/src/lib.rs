//! A local, stateful stand-in for the part of Stripe this product uses.
//!
//! Unlike stripe-mock it keeps state and sends webhooks: sessions created through its REST
//! subset can be paid on its hosted checkout page (or from a test), and the events Stripe
//! would send are signed like Stripe signs them and delivered at least once, with retries,
//! to a configured endpoint. Chaos switches make it duplicate and shuffle deliveries and fail
//! API calls, so the product's idempotency and retry logic are exercised for real; turning
//! webhook delivery off ([`Sandbox::set_webhook_delivery`]) loses deliveries for good while
//! `GET /v1/events` keeps listing the events, so a backfill from the event history can be
//! exercised too.
//!
//! Run it in-process with [`Sandbox::start`], or as the `stripe-sandbox` binary.
//!
//! # REST subset
//! `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `GET /v1/checkout/sessions?payment_intent=`, `POST /v1/checkout/sessions/{id}/expire`,
//! `POST /v1/refunds`, `GET /v1/events`, `POST /v1/customers` (`email`, `name`,
//! `metadata[...]`; `cus_...`, replayed per `Idempotency-Key` like every POST) and
//! `GET /v1/customers/{id}`, and `GET /v1/promotion_codes/{id}` for the fixed codes below
//! (their `code`, what the customer types). Customers emit no event (an endpoint enabled for the events the
//! product handles receives none from Stripe either). [`Sandbox::customers`] and
//! [`Sandbox::customer_count`] let a test count them.
//!
//! # Checkout settings the sandbox honours
//! - `customer=cus_...`: an existing customer (else 400 `resource_missing`), never together
//!   with `customer_email`; with automatic tax also `customer_update[address]=auto`, since the
//!   sandbox's customers have no address (Stripe refuses the same way). The session shows it
//!   in `customer`.
//! - `allow_promotion_codes=true`: the hosted page offers a promotion code field.
//! - `automatic_tax[enabled]=true` with `line_items[0][price_data][tax_behavior]` `exclusive`
//!   or `inclusive` (required: the sandbox is an account without a default tax behavior): a
//!   flat rate of [`SandboxConfig::tax_rate_bps`] basis points (`SANDBOX_TAX_RATE_BPS`,
//!   default 0) on what remains after the discount, rounded half-up; exclusive adds it,
//!   inclusive takes `amount - round(amount * 10000 / (10000 + bps))` out of the amount.
//! - `adaptive_pricing[enabled]=false`: never presented in [`SandboxConfig::presentment`].
//!
//! # Promotion codes
//! Fixed, case-insensitive, on sessions created with `allow_promotion_codes=true`
//! ([`PROMOTION_CODES`]):
//!
//! | code | takes off | promotion code id |
//! |------|-----------|-------------------|
//! | `SPRING25` | 25% of the price (half-up) | `promo_sandbox_spring25` |
//! | `TENOFF` | 1000 minor units of the price's currency (10.00; JPY 1000), at most the price | `promo_sandbox_tenoff` |
//! | `FREECOURSE` | 100% | `promo_sandbox_freecourse` |
//!
//! A wrong code shows an error on the page and changes nothing; a code that would leave less
//! than the currency's minimum charge (but more than nothing) is refused the same way. A
//! session made free completes with `payment_status: no_payment_required` and
//! `payment_intent: null`: no charge, no charge events, only `checkout.session.completed`.
//!
//! # What sessions and events carry
//! Sessions (and the events about them) carry Stripe's `amount_subtotal`, `amount_total`,
//! `total_details {amount_discount, amount_shipping, amount_tax}`, `discounts [{coupon,
//! promotion_code}]` and, when presented in another currency, `currency` and the amounts in
//! it with `currency_conversion {amount_subtotal, amount_total, fx_rate, source_currency}` in
//! the price's currency. A successful charge has a `receipt_url` under the page base that
//! serves a simple receipt (amount paid, refunded).

mod delivery;
mod http;
pub mod ledger;
mod page;
pub mod signing;

pub use delivery::{DeliveryConfig, DeliveryRecord};
pub use ledger::{
    Discount, PaymentMethod, PaymentOutcome, Presentment, PromotionCode, StripeError,
    PROMOTION_CODES,
};

use ledger::{Ledger, LedgerSettings};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// The Stripe API version whose object shapes the sandbox produces.
pub const API_VERSION: &str = "2024-06-20";

/// How the sandbox behaves.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The only API key accepted (`Authorization: Bearer ...`).
    pub secret_key: String,
    /// Secrets that sign every webhook (several while "rolling" a secret).
    pub webhook_secrets: Vec<String>,
    /// Where events are POSTed; `None` keeps them for the caller to fetch.
    pub webhook_url: Option<String>,
    pub delivery: DeliveryConfig,
    /// How long a bank debit takes to settle after checkout.
    pub settlement_delay: Duration,
    /// The address a browser reaches the sandbox at, when it is not the one it listens on (a
    /// container's published port, a proxy): hosted pages' links start with it. `None`:
    /// [`Sandbox::base_url`]. An `http://` or `https://` origin, optionally with a path prefix.
    pub public_base_url: Option<String>,
    /// The flat tax rate, in basis points (0 to 10000; 825 = 8.25%), of sessions created with
    /// `automatic_tax[enabled]=true` (exclusive or inclusive per the line item's
    /// `tax_behavior`). The binary reads `SANDBOX_TAX_RATE_BPS` ([`parse_tax_rate_bps`]).
    pub tax_rate_bps: u32,
    /// Present every session whose price is in another currency in this one, at a fixed rate,
    /// with Stripe's `currency_conversion`, as Adaptive Pricing does for a customer abroad
    /// (unless the session was created with `adaptive_pricing[enabled]=false`). `None`: every
    /// session is in its price's currency.
    pub presentment: Option<Presentment>,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("webhook_url", &self.webhook_url)
            .field("delivery", &self.delivery)
            .field("public_base_url", &self.public_base_url)
            .field("tax_rate_bps", &self.tax_rate_bps)
            .field("presentment", &self.presentment)
            .finish_non_exhaustive()
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            secret_key: "sk_test_sandbox".into(),
            webhook_secrets: vec!["whsec_sandbox".into()],
            webhook_url: None,
            delivery: DeliveryConfig::default(),
            settlement_delay: Duration::from_secs(2),
            public_base_url: None,
            tax_rate_bps: 0,
            presentment: None,
        }
    }
}

/// The largest flat tax rate the sandbox accepts: 100%.
pub const MAX_TAX_RATE_BPS: u32 = 10_000;

/// Reads a tax rate in basis points (`SANDBOX_TAX_RATE_BPS`): a whole number from 0 to
/// [`MAX_TAX_RATE_BPS`].
///
/// # Errors
/// A sentence saying what is wrong, to follow the variable's name.
pub fn parse_tax_rate_bps(raw: &str) -> Result<u32, String> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|bps| *bps <= MAX_TAX_RATE_BPS)
        .ok_or_else(|| {
            format!(
                "must be a tax rate in basis points from 0 to {MAX_TAX_RATE_BPS} (825 = 8.25%), got {raw:?}"
            )
        })
}

/// Switches that make the sandbox misbehave the way the real network does.
#[derive(Debug, Clone, Default)]
pub struct Chaos {
    /// HTTP statuses (e.g. 500, 429) returned, one per call, by the next API calls.
    pub fail_next: Vec<u16>,
    /// Deliver every event twice.
    pub duplicate_deliveries: bool,
    /// Deliver each batch of new events in random order.
    pub shuffle_deliveries: bool,
    /// Wait this long before each delivery.
    pub delivery_delay: Duration,
}

struct StoredResponse {
    fingerprint: String,
    status: u16,
    body: Value,
}

pub(crate) struct Inner {
    config: SandboxConfig,
    ledger: Mutex<Ledger>,
    idempotency: Mutex<HashMap<String, StoredResponse>>,
    chaos: Mutex<Chaos>,
    deliveries: Mutex<Vec<DeliveryRecord>>,
    /// Ranges of event indexes (the ledger's order) emitted while webhook delivery was off:
    /// never delivered. The last one is open (`None`) while delivery is still off.
    undelivered: Mutex<Vec<(usize, Option<usize>)>>,
    clock_offset_secs: AtomicI64,
    new_events: Notify,
    page_base: Mutex<String>,
    stopped: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the ledger half-updated in a way that
    // matters for a test double; keep serving.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
            + self.clock_offset_secs.load(Ordering::Relaxed)
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        lock(&self.ledger)
    }

    /// Whether the event at `index` was emitted while webhook delivery was off.
    fn is_dropped(&self, index: usize) -> bool {
        lock(&self.undelivered)
            .iter()
            .any(|(start, end)| index >= *start && end.is_none_or(|end| index < end))
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    inner: Arc<Inner>,
    base_url: String,
    server: actix_web::dev::ServerHandle,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts on an ephemeral local port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0")?, config).await
    }

    /// Starts on the given listener (the `stripe-sandbox` binary binds a fixed port). A
    /// listener on every interface (`0.0.0.0`, `::`) is reached over loopback by
    /// [`Sandbox::base_url`]; browsers elsewhere need [`SandboxConfig::public_base_url`].
    ///
    /// # Errors
    /// When the server cannot be started on the listener, or `public_base_url` is not an
    /// `http(s)://` URL without query or fragment ([`std::io::ErrorKind::InvalidInput`]).
    pub async fn start_on(listener: TcpListener, config: SandboxConfig) -> std::io::Result<Self> {
        let base_url = format!("http://{}", reachable(listener.local_addr()?));
        let page_base = match &config.public_base_url {
            Some(url) => public_base(url)?,
            None => base_url.clone(),
        };
        if config.tax_rate_bps > MAX_TAX_RATE_BPS {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "tax rate of {} basis points is above {MAX_TAX_RATE_BPS}",
                    config.tax_rate_bps
                ),
            ));
        }
        let ledger = Ledger::new(LedgerSettings {
            tax_rate_bps: config.tax_rate_bps,
            presentment: config.presentment.clone(),
        });
        let inner = Arc::new(Inner {
            config,
            ledger: Mutex::new(ledger),
            idempotency: Mutex::new(HashMap::new()),
            chaos: Mutex::new(Chaos::default()),
            deliveries: Mutex::new(Vec::new()),
            undelivered: Mutex::new(Vec::new()),
            clock_offset_secs: AtomicI64::new(0),
            new_events: Notify::new(),
            page_base: Mutex::new(page_base),
            stopped: AtomicBool::new(false),
        });
        let server = http::server(listener, Arc::clone(&inner))?;
        let handle = server.handle();
        tokio::spawn(server);
        if inner.config.webhook_url.is_some() {
            tokio::spawn(delivery::run(Arc::clone(&inner)));
        }
        Ok(Self {
            inner,
            base_url,
            server: handle,
        })
    }

    /// The API base URL to configure the Stripe adapter with (`http://127.0.0.1:PORT`), from
    /// this machine.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Where hosted checkout pages' links start: [`SandboxConfig::public_base_url`] (or what
    /// [`Sandbox::set_page_base`] set), else [`Sandbox::base_url`].
    pub fn page_base(&self) -> String {
        lock(&self.inner.page_base).clone()
    }

    /// The key the sandbox accepts.
    pub fn secret_key(&self) -> &str {
        &self.inner.config.secret_key
    }

    /// Where hosted checkout pages link to from now on, when the sandbox is reached under
    /// another address (e.g. mounted behind the app). Replaces
    /// [`SandboxConfig::public_base_url`]; defaults to [`Sandbox::base_url`].
    pub fn set_page_base(&self, base: &str) {
        *lock(&self.inner.page_base) = base.trim_end_matches('/').to_owned();
    }

    pub fn set_chaos(&self, chaos: Chaos) {
        *lock(&self.inner.chaos) = chaos;
    }

    /// The chaos switches as they stand (`fail_next` shrinks as injected failures are served).
    pub fn chaos(&self) -> Chaos {
        lock(&self.inner.chaos).clone()
    }

    /// Turns webhook delivery off (`false`) or back on (`true`; the default). Every event
    /// emitted while it is off is dropped: never delivered, not even once delivery is back on
    /// (deliveries lost for good, or an endpoint disabled meanwhile), yet listed by
    /// `GET /v1/events` like any other, so a backfill from the event history can find it.
    /// Deliveries already under way finish. Without a webhook URL nothing is delivered anyway.
    pub fn set_webhook_delivery(&self, on: bool) {
        // Read where the history stands under the ledger's lock, so that no event is emitted
        // between reading it and switching: an event is dropped iff emitted while off.
        let ledger = self.inner.ledger();
        let emitted = ledger.events().len();
        let mut undelivered = lock(&self.inner.undelivered);
        match (on, undelivered.last_mut()) {
            (false, Some((_, None))) | (true, None | Some((_, Some(_)))) => {}
            (false, _) => undelivered.push((emitted, None)),
            (true, Some((_, end @ None))) => *end = Some(emitted),
        }
    }

    /// Whether webhook delivery is on ([`Sandbox::set_webhook_delivery`]).
    pub fn webhook_delivery(&self) -> bool {
        !matches!(lock(&self.inner.undelivered).last(), Some((_, None)))
    }

    /// The ids of the events emitted while webhook delivery was off, oldest first.
    pub fn dropped_events(&self) -> Vec<String> {
        self.events()
            .iter()
            .enumerate()
            .filter(|(index, _)| self.inner.is_dropped(*index))
            .filter_map(|(_, event)| event["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// Moves the sandbox's clock (session expiry) forward.
    pub fn advance_clock(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.inner
            .clock_offset_secs
            .fetch_add(secs, Ordering::Relaxed);
        let now = self.inner.now();
        self.inner.ledger().expire_due(now);
        self.inner.new_events.notify_one();
    }

    /// Pays (or fails to pay) a session as the customer would on the hosted page. A session a
    /// promotion code made free completes without a payment, whatever the method
    /// ([`PaymentOutcome::NoPaymentRequired`]).
    ///
    /// # Errors
    /// When the session is unknown or no longer open.
    pub fn pay(
        &self,
        session_id: &str,
        method: &PaymentMethod,
    ) -> Result<PaymentOutcome, StripeError> {
        let outcome = self
            .inner
            .ledger()
            .pay(session_id, method, self.inner.now());
        self.inner.new_events.notify_one();
        outcome
    }

    /// Applies a promotion code to an open session as the customer would on the hosted page
    /// ([`PROMOTION_CODES`]); returns the session as the API now shows it.
    ///
    /// # Errors
    /// When the session is unknown, closed or created without `allow_promotion_codes`, the
    /// code is unknown, or it would leave less than the minimum charge (but not nothing).
    pub fn apply_promotion_code(&self, session_id: &str, code: &str) -> Result<Value, StripeError> {
        self.inner
            .ledger()
            .apply_promotion_code(session_id, code, self.inner.now())
    }

    /// Every customer created (`POST /v1/customers`), oldest first.
    pub fn customers(&self) -> Vec<Value> {
        self.inner.ledger().customers().to_vec()
    }

    /// How many customers exist.
    pub fn customer_count(&self) -> usize {
        self.inner.ledger().customers().len()
    }

    /// Settles a bank debit now, successfully or not.
    ///
    /// # Errors
    /// When nothing is settling for the session.
    pub fn settle(&self, session_id: &str, succeeded: bool) -> Result<(), StripeError> {
        let result = self
            .inner
            .ledger()
            .settle(session_id, succeeded, self.inner.now());
        self.inner.new_events.notify_one();
        result
    }

    /// Opens a dispute on a paid payment intent; returns the dispute id.
    ///
    /// # Errors
    /// When the payment intent has no captured charge.
    pub fn open_dispute(&self, payment_intent: &str) -> Result<String, StripeError> {
        let dispute = self
            .inner
            .ledger()
            .open_dispute(payment_intent, self.inner.now());
        self.inner.new_events.notify_one();
        Ok(dispute?["id"].as_str().unwrap_or_default().to_owned())
    }

    /// # Errors
    /// When the dispute is unknown.
    pub fn close_dispute(&self, dispute_id: &str, won: bool) -> Result<(), StripeError> {
        let result = self
            .inner
            .ledger()
            .close_dispute(dispute_id, won, self.inner.now());
        self.inner.new_events.notify_one();
        result.map(drop)
    }

    /// The current state of a session, as the API would return it.
    ///
    /// # Errors
    /// When the session is unknown.
    pub fn session(&self, id: &str) -> Result<Value, StripeError> {
        self.inner.ledger().session(id)
    }

    /// Every event emitted so far, oldest first.
    pub fn events(&self) -> Vec<Value> {
        self.inner.ledger().events().to_vec()
    }

    /// The events of one type, oldest first.
    pub fn events_of_type(&self, event_type: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|event| event["type"] == event_type)
            .collect()
    }

    /// A Stripe-signed `(body, Stripe-Signature header)` for an event, signed now.
    pub fn signed(&self, event: &Value) -> (Vec<u8>, String) {
        let body = event.to_string().into_bytes();
        let header =
            signing::signature_header(&body, self.inner.now(), &self.inner.config.webhook_secrets);
        (body, header)
    }

    /// Every delivery attempt so far.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.inner.deliveries).clone()
    }

    /// Waits until every event emitted so far has been delivered with a 2xx (those dropped
    /// while delivery was off excepted: they never will be), or the timeout passes.
    /// Returns whether everything was delivered.
    pub async fn wait_for_deliveries(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let events: Vec<String> = self
                .events()
                .iter()
                .enumerate()
                .filter(|(index, _)| !self.inner.is_dropped(*index))
                .filter_map(|(_, e)| e["id"].as_str().map(str::to_owned))
                .collect();
            let delivered = self.deliveries();
            let all = events.iter().all(|id| {
                delivered
                    .iter()
                    .any(|d| &d.event_id == id && d.status.is_some_and(|s| (200..300).contains(&s)))
            });
            if all {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and the delivery worker.
    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

/// The listener's address as this machine connects to it: an unspecified address (every
/// interface) is not one a client can dial everywhere, its loopback is.
fn reachable(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

/// A public base URL as pages' links use it: `http(s)://host[:port][/prefix]`, no trailing
/// slash. Anything else would hand the browser a link that cannot work.
fn public_base(url: &str) -> std::io::Result<String> {
    let invalid = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("public base URL {url:?} {why}"),
        )
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid("must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    if url.contains(['?', '#']) || url.contains(char::is_whitespace) {
        return Err(invalid("must hold no query, fragment or white space"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
        self.inner.new_events.notify_one();
        // Stop without waiting: a test runtime may already be shutting down.
        let handle = self.server.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { handle.stop(false).await });
        }
    }
}
