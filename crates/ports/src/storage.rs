//! Storage ports: users, courses, purchases, and the payments mode a database was written in.
//!
//! # Shared error contract
//! Every method returns [`RepoError`]. Besides the business variants each method names,
//! any method may fail with [`RepoError::Unavailable`] (the store cannot be reached or timed
//! out: retrying later may succeed, and nothing was written) or [`RepoError::Unexpected`]
//! (anything else; nothing was written). Both keep their cause as their source. No adapter
//! type (diesel, sqlx, ...) crosses this boundary.

use crate::error::{same_cause, BoxError};
use crate::gateway::EventEnvelope;
use async_trait::async_trait;
use lms_domain::{
    Course, CourseId, Currency, Email, Money, PaymentDetails, PaymentFact, Purchase, PurchaseId,
    Role, User, UserId,
};
use thiserror::Error;
use time::OffsetDateTime;

#[derive(Debug, Error)]
pub enum RepoError {
    /// A unique field is already taken; names the field (`"email"`, `"checkout_session_id"`).
    #[error("a record with this {0} already exists")]
    Duplicate(&'static str),
    /// Another purchase of the same user and course holds the active slot.
    #[error("the user already has an active purchase of this course")]
    ActivePurchaseExists,
    /// The record to change does not exist.
    #[error("record not found")]
    NotFound,
    /// Retryable: the store could not be reached, was busy, or a connection, statement or lock
    /// wait timed out. Nothing was written; the same call later may succeed.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else (a broken invariant, a corrupt record, an unknown database error); nothing
    /// was written.
    #[error("unexpected storage error")]
    Unexpected(#[source] BoxError),
}

impl RepoError {
    /// A retryable failure keeping `cause` as its source.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// An opaque failure keeping `cause` as its source.
    pub fn unexpected(cause: impl Into<BoxError>) -> Self {
        Self::Unexpected(cause.into())
    }
}

/// Business variants compare by value. Opaque ones have no equality of their own: they are
/// equal when they are the same variant with causes that read the same at every level.
impl PartialEq for RepoError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Duplicate(a), Self::Duplicate(b)) => a == b,
            (Self::ActivePurchaseExists, Self::ActivePurchaseExists)
            | (Self::NotFound, Self::NotFound) => true,
            (Self::Unavailable(a), Self::Unavailable(b))
            | (Self::Unexpected(a), Self::Unexpected(b)) => same_cause(a, b),
            _ => false,
        }
    }
}

/// One page of a listing, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    pub const MAX_LIMIT: u32 = 100;

    /// Clamps to sane bounds: page >= 1, 1 <= limit <= 100.
    pub fn new(page: u32, limit: u32) -> Self {
        Self {
            page: page.max(1),
            limit: limit.clamp(1, Self::MAX_LIMIT),
        }
    }

    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many items exist across all pages.
    pub total: u64,
}

#[async_trait]
pub trait UserRepo: Send + Sync + 'static {
    /// # Errors
    /// [`RepoError::Duplicate`]`("email")` when the email (case-insensitively) is taken.
    async fn create_user(&self, user: &User) -> Result<(), RepoError>;

    /// # Errors
    /// Only the shared ones; an unknown id is `Ok(None)`.
    async fn get_user(&self, id: UserId) -> Result<Option<User>, RepoError>;

    /// # Errors
    /// Only the shared ones; an unknown email is `Ok(None)`.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError>;

    /// Sets the role of the user with this email and returns the user as saved.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when no user has this email.
    async fn set_role(&self, email: &Email, role: Role) -> Result<User, RepoError>;

    /// Ends every session of the user: atomically adds one to its
    /// [`User::session_generation`] and returns the new value. Of concurrent calls none is
    /// lost: `n` calls on a user at generation `g` leave it at `g + n`, each call returning a
    /// different value.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when no user has this id (nothing is written);
    /// [`RepoError::Unexpected`] when the generation is already `u32::MAX` (four billion
    /// sign-outs; nothing is written).
    async fn end_sessions(&self, id: UserId) -> Result<u32, RepoError>;

    /// The user's customer at the payment gateway, once linked.
    ///
    /// # Errors
    /// Only the shared ones; an unknown user, like one never linked, is `Ok(None)`.
    async fn gateway_customer(&self, id: UserId) -> Result<Option<String>, RepoError>;

    /// Links the user to a customer at the payment gateway, unless already linked, and
    /// returns the customer now linked: the first link stays, so of concurrent links all
    /// callers get the same customer.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when no user has this id (nothing is written).
    async fn link_gateway_customer(
        &self,
        id: UserId,
        customer_id: &str,
    ) -> Result<String, RepoError>;
}

#[async_trait]
pub trait CourseRepo: Send + Sync + 'static {
    /// # Errors
    /// [`RepoError::Duplicate`]`("id")` when the id exists.
    async fn create_course(&self, course: &Course) -> Result<(), RepoError>;

    /// # Errors
    /// Only the shared ones; an unknown id is `Ok(None)`.
    async fn get_course(&self, id: CourseId) -> Result<Option<Course>, RepoError>;

    /// Overwrites every field of an existing course.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when no course has this id.
    async fn update_course(&self, course: &Course) -> Result<(), RepoError>;

    /// Published courses, newest first (ties broken by id, so pages never overlap).
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_published_courses(&self, page: PageRequest) -> Result<Page<Course>, RepoError>;
}

/// How an event reached processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    /// Delivered by the gateway (a webhook, or read from its event history by a sync): the
    /// first delivery records it, later ones only count.
    Delivered,
    /// An operator re-runs a stored event: it is processed again unless it was already
    /// applied or held.
    Replayed,
}

/// A verified event being processed, as the inbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDelivery {
    pub envelope: EventEnvelope,
    pub kind: DeliveryKind,
}

/// What became of a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventOutcome {
    /// Its facts were merged into its purchase.
    Applied,
    /// Its facts were merged, and its purchase is held for review (a payment that does not
    /// match the price).
    Held,
    /// A type this product does not act on.
    Ignored,
    /// About no purchase of ours.
    Unmatched,
    /// Could not be applied for a reason retrying will not fix (the error says which); an
    /// operator replays it once the cause is fixed.
    Failed,
}

impl EventOutcome {
    pub const ALL: [EventOutcome; 5] = [
        EventOutcome::Applied,
        EventOutcome::Held,
        EventOutcome::Ignored,
        EventOutcome::Unmatched,
        EventOutcome::Failed,
    ];

    /// The stored name: `applied`, `held`, `ignored`, `unmatched`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Held => "held",
            EventOutcome::Ignored => "ignored",
            EventOutcome::Unmatched => "unmatched",
            EventOutcome::Failed => "failed",
        }
    }

    /// The outcome a stored name (exactly as [`EventOutcome::as_str`] writes it) means.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == stored)
    }

    /// The outcome of an event whose facts were merged into `purchase`.
    pub fn of_applied(purchase: &Purchase) -> Self {
        if purchase.review_reason().is_some() {
            EventOutcome::Held
        } else {
            EventOutcome::Applied
        }
    }

    /// Applied and held events changed their purchase; a replay leaves them alone.
    pub const fn is_settled(self) -> bool {
        matches!(self, EventOutcome::Applied | EventOutcome::Held)
    }
}

impl std::fmt::Display for EventOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outcome that changed no purchase, for [`EventInbox::record_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unapplied {
    /// [`EventOutcome::Ignored`], [`EventOutcome::Unmatched`] or [`EventOutcome::Failed`].
    pub outcome: EventOutcome,
    /// Why it failed, in words safe to show an operator (no secret).
    pub error: Option<String>,
    /// The purchase it concerns, when known.
    pub purchase_id: Option<PurchaseId>,
}

/// What [`EventInbox::record_event`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The outcome was written (a new event, or a replay of an unsettled one).
    Written,
    /// A redelivery: only its delivery count and last receipt time changed. Or a replay of an
    /// event already applied or held: nothing changed.
    Duplicate,
}

/// One event in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRecord {
    pub event_id: String,
    pub event_type: String,
    pub livemode: bool,
    /// When the gateway created it.
    pub created: OffsetDateTime,
    pub first_received_at: OffsetDateTime,
    pub last_received_at: OffsetDateTime,
    /// How many times the gateway delivered it (replays do not count).
    pub delivery_count: u32,
    pub outcome: EventOutcome,
    pub error: Option<String>,
    pub purchase_id: Option<PurchaseId>,
    /// `None` once pruned by [`EventInbox::prune_payloads`].
    pub payload: Option<String>,
}

/// Which inbox events to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub outcome: Option<EventOutcome>,
    /// Only events first received at or after this instant.
    pub since: Option<OffsetDateTime>,
}

/// Facts to merge into one purchase, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactUpdate {
    pub purchase_id: PurchaseId,
    pub facts: Vec<PaymentFact>,
    /// The gateway payment this update revealed, linked if the purchase has none yet.
    pub payment_intent_id: Option<String>,
    /// Receipt page and promotion code this update revealed; each kept if the purchase has
    /// none yet ([`Purchase::absorb`]).
    pub details: PaymentDetails,
    /// `Some` for an event (applied at most once per event id, and recorded in the inbox with
    /// its outcome in the same atomic unit); `None` for facts learned by asking the gateway or
    /// decided by an operator, which are idempotent by nature.
    pub event: Option<EventDelivery>,
    /// When it happens: the receipt time of an event.
    pub at: OffsetDateTime,
}

/// What [`PurchaseRepo::apply_facts`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per webhook; boxing buys nothing"
)]
pub enum Applied {
    /// The update was applied.
    Applied {
        /// The purchase as saved (possibly unchanged, if the facts were already known).
        purchase: Purchase,
        /// The same buyer's other purchases of the same course (newest first, ties broken by
        /// id), read in the same atomic unit and serialized with every other update of any of
        /// them: of two purchases of one buyer and course updated at the same time, the one
        /// updated second sees the first as saved. This is how a double payment is noticed
        /// (two purchases that both unlock the course) without a read after the commit that
        /// could miss the other one.
        others: Vec<Purchase>,
    },
    /// The event was already recorded: a redelivery only counted (delivery count and last
    /// receipt time), a replay of an applied or held event changed nothing.
    DuplicateEvent,
}

/// What [`PurchaseRepo::lease_refund`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per refund; boxing buys nothing"
)]
pub enum RefundLease {
    /// The lease is ours until the time asked for: the purchase as stored when taken.
    Granted(Purchase),
    /// Another refund of this purchase holds the lease until then.
    Busy { until: OffsetDateTime },
}

/// Which sales the revenue report sums: those of one instructor's courses (all courses when
/// `None`), sold in `[sold_from, sold_before)` (unbounded where `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevenueQuery {
    pub instructor: Option<UserId>,
    pub sold_from: Option<OffsetDateTime>,
    pub sold_before: Option<OffsetDateTime>,
}

/// The sales of one course in one currency: the sums of their [`lms_domain::Sale`]s, in
/// minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueLine {
    pub course_id: CourseId,
    pub course_title: String,
    pub instructor_id: UserId,
    pub currency: Currency,
    /// How many purchases paid for the course.
    pub purchases: u64,
    pub gross: i64,
    pub discounts: i64,
    pub tax: i64,
    pub paid: i64,
    pub refunds: i64,
    pub disputes_lost: i64,
    pub net: i64,
}

/// A purchase with its course, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchasedCourse {
    pub purchase: Purchase,
    pub course: Course,
}

/// One buyer's standing on one course, as a purchase-status read needs it: the account, the
/// course and the buyer's purchases of it, read together ([`PurchaseRepo::buyer_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerView {
    pub user: User,
    /// `None`: no such course.
    pub course: Option<Course>,
    /// Every purchase of the user for the course, newest first (ties broken by id), as
    /// [`PurchaseRepo::list_for_user_and_course`] lists them.
    pub purchases: Vec<Purchase>,
}

#[async_trait]
pub trait PurchaseRepo: Send + Sync + 'static {
    /// Inserts a new purchase. When it holds the active slot (it always does when new), no
    /// other purchase of the same user and course may hold it: checked atomically, so of
    /// concurrent creations exactly one wins.
    ///
    /// # Errors
    /// [`RepoError::ActivePurchaseExists`] when another purchase holds the slot;
    /// [`RepoError::Duplicate`]`("id")` when the id exists.
    async fn create_purchase(&self, purchase: &Purchase) -> Result<(), RepoError>;

    /// Records the checkout session of a purchase (the only field set outside fact updates).
    ///
    /// # Errors
    /// [`RepoError::NotFound`] for an unknown purchase; [`RepoError::Duplicate`]`("checkout_session_id")`
    /// when another purchase already has this session.
    async fn attach_checkout(
        &self,
        id: PurchaseId,
        session: &lms_domain::CheckoutSession,
        at: OffsetDateTime,
    ) -> Result<Purchase, RepoError>;

    /// Applies facts exactly once: in one atomic unit, records the event in the inbox (if
    /// any), loads and locks the purchase together with the buyer's other purchases of the
    /// same course (returned as [`Applied::Applied`]'s `others`), merges the facts, links the
    /// payment intent, saves.
    ///
    /// The event's inbox row is written with outcome [`EventOutcome::of_applied`] of the
    /// saved purchase, `purchase_id` set, no error, and (for a first delivery) delivery count
    /// 1 and both receipt times `update.at`.
    /// - A redelivered or concurrent duplicate of a [`DeliveryKind::Delivered`] event only adds
    ///   one to the row's delivery count and sets its last receipt time (whatever its
    ///   outcome), merges nothing and returns [`Applied::DuplicateEvent`].
    /// - A [`DeliveryKind::Replayed`] event whose row is applied or held changes nothing and
    ///   returns [`Applied::DuplicateEvent`]; one whose row is ignored, unmatched or failed
    ///   (or that has no row) is applied, and its row's outcome, error and purchase are
    ///   overwritten (receipt times and delivery count stay). Concurrent replays apply once.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] for an unknown purchase (nothing is recorded, not even the
    /// event); [`RepoError::Duplicate`]`("payment_intent_id")` when another purchase is
    /// linked to that payment intent (nothing is recorded).
    async fn apply_facts(&self, update: &FactUpdate) -> Result<Applied, RepoError>;

    /// # Errors
    /// Only the shared ones; unknown is `Ok(None)`.
    async fn get_purchase(&self, id: PurchaseId) -> Result<Option<Purchase>, RepoError>;

    /// # Errors
    /// Only the shared ones; unknown is `Ok(None)`.
    async fn find_by_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<Option<Purchase>, RepoError>;

    /// # Errors
    /// Only the shared ones; unknown is `Ok(None)`.
    async fn find_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<Purchase>, RepoError>;

    /// Every purchase of `user` for `course`, newest first (ties broken by id).
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_for_user_and_course(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Vec<Purchase>, RepoError>;

    /// The user, the course and the user's purchases of it, as one consistent read (on SQL
    /// stores, one statement: the frontend polls this, so it is one round trip). `Ok(None)`
    /// when the user does not exist, whatever the course.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn buyer_view(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Option<BuyerView>, RepoError>;

    /// Claims up to `limit` pending purchases created before `created_before` for one
    /// reconciliation pass, oldest first: those not held for review (no mismatched payment)
    /// whose previous claim ran out (`now` is at or past it, or never claimed). Each claimed
    /// purchase is not claimed again before `claimed_until`, so instances running
    /// concurrently get disjoint batches and a purchase the gateway cannot settle yet is
    /// asked about again only after its lease. Only the claim is written.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn claim_for_reconciliation(
        &self,
        created_before: OffsetDateTime,
        now: OffsetDateTime,
        claimed_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Purchase>, RepoError>;

    /// Pending purchases held for review (a captured payment that does not match the price,
    /// not accepted by an operator), oldest first (ties broken by id).
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_held(&self, page: PageRequest) -> Result<Page<Purchase>, RepoError>;

    /// The user's purchases that unlock their course (status completed), with the course,
    /// newest first (ties broken by id). One round trip: no query per purchase.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_unlocked_for_user(&self, user: UserId)
        -> Result<Vec<PurchasedCourse>, RepoError>;

    /// Every purchase of `user`, whatever its status, with its course (as it is now), newest
    /// first (ties broken by id), one page of them; `total` counts them all. One round trip
    /// for the page and its count: no query per purchase. A page past the end is empty and
    /// still carries the total.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_for_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<PurchasedCourse>, RepoError>;

    /// Takes the refund lease of a purchase, so that refunds of one purchase are planned and
    /// made one at a time: granted when no lease is held or the last one ran out (`now` is at
    /// or past it), and then held until `until` or [`PurchaseRepo::release_refund`]. Of
    /// concurrent takers exactly one is granted. A lease that is never released (a crash
    /// mid-refund) runs out by itself. Only the lease is written.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] for an unknown purchase.
    async fn lease_refund(
        &self,
        id: PurchaseId,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<RefundLease, RepoError>;

    /// Gives back the refund lease that [`PurchaseRepo::lease_refund`] granted until `until`.
    /// A lease with another end is left alone: after this one ran out, someone else took it
    /// and is refunding now. A purchase without a lease is left as is.
    ///
    /// # Errors
    /// Only the shared ones; an unknown purchase is not an error.
    async fn release_refund(&self, id: PurchaseId, until: OffsetDateTime) -> Result<(), RepoError>;

    /// The revenue report: per course and currency, the sums of the [`Purchase::sale`] of
    /// every purchase the query selects (by the sale's time), ordered by course title, course
    /// id and currency. Courses without sales in the range are left out. One round trip.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn revenue(&self, query: &RevenueQuery) -> Result<Vec<RevenueLine>, RepoError>;
}

/// The durable record of every verified gateway event and what became of it. Events whose
/// facts were merged are recorded by [`PurchaseRepo::apply_facts`] in the same atomic unit;
/// this port records the rest and reads them all back.
#[async_trait]
pub trait EventInbox: Send + Sync + 'static {
    /// Records an event that changed no purchase.
    /// - [`DeliveryKind::Delivered`]: a new event id is inserted with `outcome`, delivery count
    ///   1 and both receipt times `at` ([`Recorded::Written`]); a known one only gets one more
    ///   delivery and `at` as its last receipt time ([`Recorded::Duplicate`]), whatever its
    ///   outcome.
    /// - [`DeliveryKind::Replayed`]: a row that is not applied or held gets `outcome`, error and
    ///   purchase overwritten ([`Recorded::Written`]; inserted as for a delivery if missing); an
    ///   applied or held one is left alone ([`Recorded::Duplicate`]).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] when `outcome.outcome` is applied or held (those are written
    /// by [`PurchaseRepo::apply_facts`] only); nothing is written.
    async fn record_event(
        &self,
        delivery: &EventDelivery,
        outcome: &Unapplied,
        at: OffsetDateTime,
    ) -> Result<Recorded, RepoError>;

    /// Counts one more delivery of an event the inbox already holds, whatever its outcome:
    /// one added to its delivery count and `at` as its last receipt time, as a redelivery
    /// through [`EventInbox::record_event`] or [`PurchaseRepo::apply_facts`] counts it. Returns
    /// whether the event was there; when it was not, nothing is written. For a caller that
    /// expects a redelivery: it needs neither the event's body nor its purchase, and it is one
    /// statement where a first delivery's recording is a transaction.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn count_redelivery(&self, event_id: &str, at: OffsetDateTime)
        -> Result<bool, RepoError>;

    /// Marks a recorded event failed with `error`, whatever its outcome: its facts were
    /// applied, but what had to follow them did not happen (an automatic refund the gateway
    /// refused). A replay then runs it again (facts merge idempotently) and retries what
    /// followed. Delivery count and receipt times stay.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when no event has this id.
    async fn mark_failed(&self, event_id: &str, error: &str) -> Result<(), RepoError>;

    /// # Errors
    /// Only the shared ones; unknown is `Ok(None)`.
    async fn get_event(&self, event_id: &str) -> Result<Option<InboxRecord>, RepoError>;

    /// Events matching `filter`, most recently first received first (ties broken by id).
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_events(
        &self,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<InboxRecord>, RepoError>;

    /// Which of `event_ids` the inbox holds, in any order.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn known_event_ids(&self, event_ids: &[String]) -> Result<Vec<String>, RepoError>;

    /// Drops the payload of up to `limit` events first received before `received_before`
    /// (oldest first); their rows and outcomes stay. Returns how many were pruned, so a caller
    /// repeats while it gets `limit`.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn prune_payloads(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, RepoError>;
}

/// Who did something an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditActor {
    /// A signed-in user (an admin or the course's instructor).
    User(UserId),
    /// The operator at the command line (`lms-app ...`).
    Operator,
    /// The service itself (an automatic refund).
    System,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A refund asked of the gateway (by an admin or instructor, or by the buyer).
    Refund,
    /// A purchase held for review accepted: it unlocks.
    AcceptHeld,
    /// A purchase held for review refunded.
    RefundHeld,
    /// A second payment for a course the buyer already owned, refunded automatically.
    RefundDoublePayment,
    /// A stored event processed again.
    ReplayEvent,
    /// A user made admin.
    GrantAdmin,
    /// A user's admin role taken back.
    RevokeAdmin,
}

impl AuditAction {
    pub const ALL: [AuditAction; 7] = [
        AuditAction::Refund,
        AuditAction::AcceptHeld,
        AuditAction::RefundHeld,
        AuditAction::RefundDoublePayment,
        AuditAction::ReplayEvent,
        AuditAction::GrantAdmin,
        AuditAction::RevokeAdmin,
    ];

    /// The stored name: `refund`, `accept_held`, `refund_held`, `refund_double_payment`,
    /// `replay_event`, `grant_admin`, `revoke_admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Refund => "refund",
            AuditAction::AcceptHeld => "accept_held",
            AuditAction::RefundHeld => "refund_held",
            AuditAction::RefundDoublePayment => "refund_double_payment",
            AuditAction::ReplayEvent => "replay_event",
            AuditAction::GrantAdmin => "grant_admin",
            AuditAction::RevokeAdmin => "revoke_admin",
        }
    }

    /// The action a stored name (exactly as [`AuditAction::as_str`] writes it) means.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == stored)
    }
}

/// One line of the audit trail: who did what, when, to what, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: OffsetDateTime,
    pub actor: AuditActor,
    pub action: AuditAction,
    pub purchase_id: Option<PurchaseId>,
    pub event_id: Option<String>,
    /// A user the action concerned (a role granted), when not a purchase's.
    pub subject_user_id: Option<UserId>,
    /// The money moved (a refund's amount), when any.
    pub amount: Option<Money>,
    /// Why, in the actor's words (or the system's).
    pub reason: String,
}

/// The append-only audit trail of refunds, review decisions and role changes.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends an entry.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), RepoError>;

    /// Entries newest first (ties: the later appended first).
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_audit(&self, page: PageRequest) -> Result<Page<AuditEntry>, RepoError>;
}

/// How the app takes payments. A database remembers the first mode that served it
/// ([`DeploymentRegistry`]): its purchases only mean something to that payment backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentsMode {
    /// The offline Stripe stand-in: payments are simulated.
    Sandbox,
    /// A Stripe account in test mode.
    StripeTest,
    /// A Stripe account in live mode: real money.
    StripeLive,
}

impl PaymentsMode {
    pub const ALL: [PaymentsMode; 3] = [
        PaymentsMode::Sandbox,
        PaymentsMode::StripeTest,
        PaymentsMode::StripeLive,
    ];

    /// The stored name: `sandbox`, `stripe_test`, `stripe_live`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PaymentsMode::Sandbox => "sandbox",
            PaymentsMode::StripeTest => "stripe_test",
            PaymentsMode::StripeLive => "stripe_live",
        }
    }

    /// The mode a stored name (exactly as [`PaymentsMode::as_str`] writes it) means.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == stored)
    }
}

impl std::fmt::Display for PaymentsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`DeploymentRegistry::claim_payments_mode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentClaim {
    /// No mode was recorded: this one now is (the first start on this database).
    Recorded,
    /// This mode was already recorded.
    Matches,
    /// Another mode was recorded; it stays recorded. The caller must not serve this database.
    Conflict { recorded: PaymentsMode },
}

/// The payments mode a database belongs to, so that a database written by one payment
/// backend is never served by another (a live Stripe key over test-mode purchases, the
/// sandbox over a Stripe database).
#[async_trait]
pub trait DeploymentRegistry: Send + Sync + 'static {
    /// Records `mode` as the database's payments mode unless one is recorded already, and
    /// says which case it was. Atomic: of concurrent first claims (two instances starting at
    /// once) exactly one is [`DeploymentClaim::Recorded`]; the others see its mode. A database
    /// that holds data but no recorded mode (created before modes were recorded) is claimed
    /// by the first caller, like an empty one.
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] when the recorded mode is not one this build knows (nothing
    /// is written).
    async fn claim_payments_mode(&self, mode: PaymentsMode) -> Result<DeploymentClaim, RepoError>;
}

/// Liveness of the store, for the health check.
#[async_trait]
pub trait StorageHealth: Send + Sync + 'static {
    /// A cheap round trip; `Ok` carries a short human-readable detail.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the store cannot be reached.
    async fn ping(&self) -> Result<String, RepoError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payments_modes_round_trip_their_stored_names_and_nothing_else_parses() {
        for mode in PaymentsMode::ALL {
            assert_eq!(PaymentsMode::parse(mode.as_str()), Some(mode));
            assert_eq!(mode.to_string(), mode.as_str());
        }
        for stored in ["", "Sandbox", "stripe", "live", " stripe_live"] {
            assert_eq!(PaymentsMode::parse(stored), None, "{stored:?}");
        }
    }
}
