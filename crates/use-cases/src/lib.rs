//! The use cases of the LMS payments backend.
//!
//! [`Services`] holds every port (as `Arc<dyn ..>`) and exposes one async method per use case:
//! accounts ([`Services::sign_up`], [`Services::sign_in`], ...), courses
//! ([`Services::create_course`], ...), payments ([`Services::start_checkout`],
//! [`Services::handle_webhook`], [`Services::purchase_status`], [`Services::refund`], ...) and
//! [`Services::health`]. Errors are [`UseCaseError`]s with business variants; the HTTP adapter
//! alone maps them to status codes.
//!
//! Depends only on the domain and the ports: no web framework, database or HTTP client.
//!
//! Shape of the API:
//! - [`Services::with_store`] builds the services from one store implementing every storage port.
//! - [`UseCaseSettings::new`] validates the checkout TTL (30 min..=24 h).
//! - [`CheckoutStarted`] has accessors [`CheckoutStarted::purchase`] / [`CheckoutStarted::session`].
//! - [`CourseChanges`] carries `currency` as well as `price_cents` (a price is an amount and a currency).
//!
//! Choices worth knowing:
//! - Checkout expiry is `purchase.created_at + checkout_ttl`, so resuming an interrupted creation
//!   sends identical parameters under the same idempotency key (`checkout-<purchase id>`).
//! - A purchase left without a session (a crash between storing and attaching) is resumed while
//!   at least 30 minutes of its expiry remain, otherwise closed with `CheckoutNotStarted`.
//! - A stale session the gateway answers `NotFound` for is closed with `CheckoutExpired`.
//! - A stale session still open at the gateway (inside the 5-minute reuse margin) is handed out
//!   again as `Reused` rather than opening a second payable session.
//! - `update_course` answers `NotFound` for an unpublished course the actor may not manage, and
//!   `Forbidden` for a published one.
//! - Refund idempotency key: `<purpose>-<purchase id>-<refunded so far>-<amount>` (minor units;
//!   purposes `refund`, `review-refund`, `double-payment`, `self-refund`): no free text, so a
//!   retried request gets the gateway's first answer.
//! - Every refund takes the purchase's refund lease around plan-and-call (at most
//!   [`REFUND_LEASE`]); a second refund of the same purchase meanwhile is
//!   [`UseCaseError::RefundInProgress`], so refunds never together exceed the payment.
//! - Each buyer has one customer at the gateway (idempotency key `customer-<user id>`), created
//!   at their first checkout, linked to the user and sent with every checkout after.
//! - Buyers may refund their own purchase within [`UseCaseSettings::self_refund_window`] after
//!   paying ([`Services::request_refund`]); off by default.
//! - [`Services::purchase_status`] asks the gateway about a session only while its purchase is
//!   pending (completed, failed and refunded cannot change by a session retrieval), and at most
//!   once per [`UseCaseSettings::gateway_sync_min_interval`] per purchase; a throttled poll answers from
//!   storage.

mod accounts;
mod courses;
mod error;
mod events;
mod operations;
mod payments;
mod refunds;
mod revenue;

pub use accounts::{SessionClaim, SignUp};
pub use courses::{CourseChanges, NewCourse};
pub use error::{refund_window_text, FieldError, Resource, UseCaseError};
pub use events::{RunProgress, Tally, WebhookOutcome, EVENT_HISTORY};
pub use lms_ports::{Page, PageRequest, PurchasedCourse};
pub use operations::{Operator, Reconciled, RECONCILE_LEASE};
pub use payments::{CheckoutStarted, PurchaseStatusView};
pub use refunds::REFUND_LEASE;
pub use revenue::{RevenueReport, RevenueRequest, RevenueTotals};

use events::RecentEvents;
use payments::SyncThrottle;

use lms_ports::{
    AuditLog, Clock, CourseRepo, EventInbox, PasswordHasher, PaymentGateway, PurchaseRepo,
    StorageHealth, UserRepo,
};
use std::fmt;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Tunables of the use cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UseCaseSettings {
    /// How long a checkout session stays open (the gateway accepts 30 minutes to 24 hours).
    pub checkout_ttl: Duration,
    /// The least time between two checkout-session retrievals for one purchase on behalf of
    /// [`Services::purchase_status`]: a success page polling every second must not become a
    /// gateway call per poll. Zero asks every time. Default 5 seconds.
    pub gateway_sync_min_interval: Duration,
    /// Whether a second payment for a course the buyer already owns (two tabs, a late
    /// payment of an expired checkout) is refunded automatically. Default on; off, it is
    /// logged as an error and left to an operator.
    pub auto_refund_double_payments: bool,
    /// How long after paying a buyer may have a purchase refunded by asking
    /// ([`Services::request_refund`]); `None` (the default) turns self-service refunds off.
    pub self_refund_window: Option<Duration>,
}

impl UseCaseSettings {
    pub const MIN_CHECKOUT_TTL: Duration = Duration::minutes(30);
    pub const MAX_CHECKOUT_TTL: Duration = Duration::hours(24);
    /// The default stays a few minutes inside the gateway's 24-hour limit: expiry counts from
    /// the purchase's creation on our clock, and the gateway checks it against its own.
    pub const DEFAULT_CHECKOUT_TTL: Duration = Duration::minutes(24 * 60 - 5);
    pub const DEFAULT_GATEWAY_SYNC_MIN_INTERVAL: Duration = Duration::seconds(5);
    /// Beyond this, a customer back from the payment page would wait too long to see the
    /// payment the gateway already knows about.
    pub const MAX_GATEWAY_SYNC_MIN_INTERVAL: Duration = Duration::minutes(5);
    /// The longest self-service refund window: a year, past which a refund is a matter for
    /// an operator (and card networks no longer guarantee one).
    pub const MAX_SELF_REFUND_WINDOW: Duration = Duration::days(365);

    /// # Errors
    /// [`UseCaseError::Validation`] on `checkoutTtl` when outside 30 minutes..=24 hours.
    pub fn new(checkout_ttl: Duration) -> Result<Self, UseCaseError> {
        if checkout_ttl < Self::MIN_CHECKOUT_TTL || checkout_ttl > Self::MAX_CHECKOUT_TTL {
            return Err(UseCaseError::field(
                "checkoutTtl",
                "must be between 30 minutes and 24 hours",
            ));
        }
        Ok(Self {
            checkout_ttl,
            ..Self::default()
        })
    }

    /// Sets [`UseCaseSettings::gateway_sync_min_interval`].
    ///
    /// # Errors
    /// [`UseCaseError::Validation`] on `gatewaySyncMinInterval` when negative or over 5 minutes.
    pub fn with_gateway_sync_min_interval(
        mut self,
        interval: Duration,
    ) -> Result<Self, UseCaseError> {
        if interval.is_negative() || interval > Self::MAX_GATEWAY_SYNC_MIN_INTERVAL {
            return Err(UseCaseError::field(
                "gatewaySyncMinInterval",
                "must be between 0 seconds and 5 minutes",
            ));
        }
        self.gateway_sync_min_interval = interval;
        Ok(self)
    }

    /// Sets [`UseCaseSettings::auto_refund_double_payments`].
    pub fn with_auto_refund_double_payments(mut self, on: bool) -> Self {
        self.auto_refund_double_payments = on;
        self
    }

    /// Sets [`UseCaseSettings::self_refund_window`] (`None`: off).
    ///
    /// # Errors
    /// [`UseCaseError::Validation`] on `selfRefundWindow` unless a whole number of days from
    /// 1 to 365.
    pub fn with_self_refund_window(
        mut self,
        window: Option<Duration>,
    ) -> Result<Self, UseCaseError> {
        if let Some(window) = window {
            let whole_days = window == Duration::days(window.whole_days());
            if !whole_days || window < Duration::DAY || window > Self::MAX_SELF_REFUND_WINDOW {
                return Err(UseCaseError::field(
                    "selfRefundWindow",
                    "must be a whole number of days from 1 to 365",
                ));
            }
        }
        self.self_refund_window = window;
        Ok(self)
    }
}

impl Default for UseCaseSettings {
    fn default() -> Self {
        Self {
            checkout_ttl: Self::DEFAULT_CHECKOUT_TTL,
            gateway_sync_min_interval: Self::DEFAULT_GATEWAY_SYNC_MIN_INTERVAL,
            auto_refund_double_payments: true,
            self_refund_window: None,
        }
    }
}

/// Every use case, over the ports. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub users: Arc<dyn UserRepo>,
    pub courses: Arc<dyn CourseRepo>,
    pub purchases: Arc<dyn PurchaseRepo>,
    pub inbox: Arc<dyn EventInbox>,
    pub audit: Arc<dyn AuditLog>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub health: Arc<dyn StorageHealth>,
    pub settings: UseCaseSettings,
    /// When each purchase's session was last retrieved for a status poll; shared by clones.
    sync_throttle: Arc<SyncThrottle>,
    /// The events lately recorded through this process; shared by clones.
    recent_events: Arc<RecentEvents>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The state of the store, for the health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReport {
    /// Whether the store answered.
    pub database_ok: bool,
    /// A short detail safe to show (the cause of a failure goes to the log only).
    pub database_detail: String,
    pub checked_at: OffsetDateTime,
}

impl HealthReport {
    pub fn is_healthy(&self) -> bool {
        self.database_ok
    }
}

impl Services {
    /// Builds the services from one store implementing every storage port.
    pub fn with_store<S>(
        store: S,
        gateway: Arc<dyn PaymentGateway>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        settings: UseCaseSettings,
    ) -> Self
    where
        S: UserRepo + CourseRepo + PurchaseRepo + EventInbox + AuditLog + StorageHealth + Clone,
    {
        Self {
            users: Arc::new(store.clone()),
            courses: Arc::new(store.clone()),
            purchases: Arc::new(store.clone()),
            inbox: Arc::new(store.clone()),
            audit: Arc::new(store.clone()),
            health: Arc::new(store),
            gateway,
            hasher,
            clock,
            settings,
            sync_throttle: Arc::new(SyncThrottle::default()),
            recent_events: Arc::new(RecentEvents::default()),
        }
    }

    /// Pings the store.
    pub async fn health(&self) -> HealthReport {
        let checked_at = self.clock.now();
        match self.health.ping().await {
            Ok(detail) => HealthReport {
                database_ok: true,
                database_detail: detail,
                checked_at,
            },
            Err(err) => {
                tracing::error!(error = %lms_ports::chain_text(&err), "storage health check failed");
                HealthReport {
                    database_ok: false,
                    database_detail: "unreachable".to_owned(),
                    checked_at,
                }
            }
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

pub(crate) fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}
