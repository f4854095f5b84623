//! Storage ports: users, courses, purchases, and the payments mode a database was written in.
//!
//! # Shared error contract
//! Every method returns [`RepoError`]. Besides the business variants each method names,
//! any method may fail with [`RepoError::Unavailable`] (the store cannot be reached or timed
//! out: retrying later may succeed, and nothing was written) or [`RepoError::Unexpected`]
//! (anything else; nothing was written). Both keep their cause as their source. No adapter
//! type (diesel, sqlx, ...) crosses this boundary.

use crate::error::{same_cause, BoxError};
use async_trait::async_trait;
use lms_domain::{Course, CourseId, Email, PaymentFact, Purchase, PurchaseId, User, UserId};
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

/// The event a fact update comes from, recorded so that it is applied at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReceipt {
    /// The gateway's event id (`evt_...`): the deduplication key.
    pub event_id: String,
    pub event_type: String,
    /// The raw event JSON, kept for audit and replay.
    pub payload: String,
}

/// Facts to merge into one purchase, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactUpdate {
    pub purchase_id: PurchaseId,
    pub facts: Vec<PaymentFact>,
    /// The gateway payment this update revealed, linked if the purchase has none yet.
    pub payment_intent_id: Option<String>,
    /// `Some` for a webhook event (applied at most once per event id); `None` for facts
    /// learned by asking the gateway, which are idempotent by nature.
    pub event: Option<EventReceipt>,
    pub at: OffsetDateTime,
}

/// What [`PurchaseRepo::apply_facts`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per webhook; boxing buys nothing"
)]
pub enum Applied {
    /// The update was applied; the purchase as saved (possibly unchanged, if the facts were
    /// already known).
    Applied(Purchase),
    /// The event id was already recorded: nothing was written.
    DuplicateEvent,
}

/// A completed purchase with its course, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchasedCourse {
    pub purchase: Purchase,
    pub course: Course,
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

    /// Applies facts exactly once: in one atomic unit, records the event id (if any), loads
    /// and locks the purchase, merges the facts, links the payment intent, saves. A
    /// redelivered or concurrent duplicate event writes nothing and returns
    /// [`Applied::DuplicateEvent`].
    ///
    /// # Errors
    /// [`RepoError::NotFound`] for an unknown purchase (nothing is recorded, not even the
    /// event id); [`RepoError::Duplicate`]`("payment_intent_id")` when another purchase is
    /// linked to that payment intent.
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

    /// The user's purchases that unlock their course (status completed), with the course,
    /// newest first (ties broken by id). One round trip: no query per purchase.
    ///
    /// # Errors
    /// Only the shared ones.
    async fn list_unlocked_for_user(&self, user: UserId)
        -> Result<Vec<PurchasedCourse>, RepoError>;
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
