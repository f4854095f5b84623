//! Stored records (one field per column) and their exact translation to and from domain
//! values.

use lms_domain::{
    CheckoutSession, Course, CourseId, CourseText, Currency, Email, Money, PaymentFacts, Purchase,
    PurchaseId, Role, User, UserId, UserName,
};
use lms_ports::{Page, PageRequest, PurchasedCourse, RepoError};

use crate::{corrupt, Encoding};

fn money(cents: i64, currency: &str, what: &str) -> Result<Money, RepoError> {
    let currency = Currency::parse(currency).map_err(|e| corrupt(what, e))?;
    Money::new(cents, currency).map_err(|e| corrupt(what, e))
}

pub(crate) fn optional_money(
    cents: Option<i64>,
    currency: Option<&str>,
    what: &str,
) -> Result<Option<Money>, RepoError> {
    match (cents, currency) {
        (Some(cents), Some(currency)) => money(cents, currency, what).map(Some),
        (None, None) => Ok(None),
        _ => Err(corrupt(
            what,
            "amount and currency must both be set or both be empty",
        )),
    }
}

pub(crate) fn split_money(money: Option<Money>) -> (Option<i64>, Option<String>) {
    match money {
        Some(money) => (
            Some(money.minor()),
            Some(money.currency().code().to_owned()),
        ),
        None => (None, None),
    }
}

fn text(field: &'static str, raw: String) -> Result<CourseText, RepoError> {
    // Any length the domain accepts for that field; the stored text was trimmed on the way in.
    let parsed = match field {
        "title" => CourseText::title(&raw),
        "subtitle" => CourseText::subtitle(&raw),
        "description" => CourseText::description(&raw),
        "category" => CourseText::category(&raw),
        _ => CourseText::level(&raw),
    };
    parsed.map_err(|e| corrupt(field, e))
}

fn optional_text(
    field: &'static str,
    raw: Option<String>,
) -> Result<Option<CourseText>, RepoError> {
    raw.map(|raw| text(field, raw)).transpose()
}

/// A stored record and the domain value it holds.
pub trait Record: Sized {
    type Domain;

    /// # Errors
    /// [`RepoError::Unexpected`] for an instant the backend cannot hold.
    fn from_domain(value: &Self::Domain) -> Result<Self, RepoError>;

    /// # Errors
    /// [`RepoError::Unexpected`] for a record the domain refuses.
    fn into_domain(self) -> Result<Self::Domain, RepoError>;
}

/// A `users` row.
#[derive(Debug)]
pub struct UserRecord<E: Encoding> {
    pub id: E::Id,
    pub name: String,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    /// [`User::session_generation`], widened to `bigint` (SQL has no unsigned type).
    pub session_generation: i64,
    pub created_at: E::Instant,
}

/// A stored session generation, as the domain holds it.
///
/// # Errors
/// [`RepoError::Unexpected`] for a value outside `u32` (the schema's CHECK refuses those).
pub fn session_generation(stored: i64) -> Result<u32, RepoError> {
    u32::try_from(stored).map_err(|e| corrupt("session generation", e))
}

impl<E: Encoding> Record for UserRecord<E> {
    type Domain = User;

    fn from_domain(user: &User) -> Result<Self, RepoError> {
        Ok(Self {
            id: E::store_id(user.id.as_uuid()),
            name: user.name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.name().to_owned(),
            password_hash: user.password_hash.clone(),
            session_generation: i64::from(user.session_generation),
            created_at: E::store_instant(user.created_at)?,
        })
    }

    fn into_domain(self) -> Result<User, RepoError> {
        Ok(User {
            id: UserId::from_uuid(E::load_id(self.id, "user id")?),
            name: UserName::parse(&self.name).map_err(|e| corrupt("user name", e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt("email", e))?,
            role: Role::from_name(&self.role)
                .ok_or_else(|| corrupt("role", format!("unknown role {:?}", self.role)))?,
            password_hash: self.password_hash,
            session_generation: session_generation(self.session_generation)?,
            created_at: E::load_instant(self.created_at, "user creation time")?,
        })
    }
}

/// A `courses` row.
#[derive(Debug)]
pub struct CourseRecord<E: Encoding> {
    pub id: E::Id,
    pub instructor_id: E::Id,
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub published: bool,
    pub created_at: E::Instant,
    pub updated_at: E::Instant,
}

impl<E: Encoding> Record for CourseRecord<E> {
    type Domain = Course;

    fn from_domain(course: &Course) -> Result<Self, RepoError> {
        let owned = |text: &Option<CourseText>| text.as_ref().map(|t| t.as_str().to_owned());
        Ok(Self {
            id: E::store_id(course.id.as_uuid()),
            instructor_id: E::store_id(course.instructor_id.as_uuid()),
            title: course.title.as_str().to_owned(),
            subtitle: owned(&course.subtitle),
            description: owned(&course.description),
            category: owned(&course.category),
            level: owned(&course.level),
            price_cents: course.price.minor(),
            currency: course.price.currency().code().to_owned(),
            published: course.published,
            created_at: E::store_instant(course.created_at)?,
            updated_at: E::store_instant(course.updated_at)?,
        })
    }

    fn into_domain(self) -> Result<Course, RepoError> {
        Ok(Course {
            id: CourseId::from_uuid(E::load_id(self.id, "course id")?),
            instructor_id: UserId::from_uuid(E::load_id(self.instructor_id, "instructor id")?),
            title: text("title", self.title)?,
            subtitle: optional_text("subtitle", self.subtitle)?,
            description: optional_text("description", self.description)?,
            category: optional_text("category", self.category)?,
            level: optional_text("level", self.level)?,
            price: money(self.price_cents, &self.currency, "course price")?,
            published: self.published,
            created_at: E::load_instant(self.created_at, "course creation time")?,
            updated_at: E::load_instant(self.updated_at, "course update time")?,
        })
    }
}

/// A whole `purchases` row: what is fixed when the purchase begins or its checkout is
/// attached, and its [`StateRecord`].
#[derive(Debug)]
pub struct PurchaseRecord<E: Encoding> {
    pub id: E::Id,
    pub user_id: E::Id,
    pub course_id: E::Id,
    pub price_cents: i64,
    pub currency: String,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub checkout_expires_at: Option<E::Instant>,
    pub state: StateRecord<E>,
    pub created_at: E::Instant,
}

/// The columns of a `purchases` row a fact update may change: the facts, the derived status,
/// the slot, the payment intent and `updated_at` (never the ids, the price, the checkout
/// session, or the reconciliation lease `reconcile_after`, which is no part of the purchase).
/// `status` is written for humans and indexes; on load the status is derived from the facts
/// by the domain, never read back.
#[derive(Debug)]
pub struct StateRecord<E: Encoding> {
    pub status: String,
    pub payment_intent_id: Option<String>,
    pub paid_in_full: bool,
    /// `NULL` for a purchase paid without a reported time, or stored before times were kept.
    pub paid_at: Option<E::Instant>,
    pub mismatched_payment_cents: Option<i64>,
    pub mismatched_payment_currency: Option<String>,
    pub attempt_failed: bool,
    pub processing: bool,
    pub async_payment_failed: bool,
    pub checkout_expired: bool,
    pub checkout_not_started: bool,
    pub refunded_cents: Option<i64>,
    pub refunded_currency: Option<String>,
    pub dispute_opened: bool,
    pub dispute_won: bool,
    pub dispute_lost: bool,
    pub accepted_by_operator: bool,
    pub holds_active_slot: bool,
    pub updated_at: E::Instant,
}

impl<E: Encoding> StateRecord<E> {
    /// The state of `purchase`, as a fact update writes it.
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] for an instant of the purchase the backend cannot hold (any
    /// of them, as when the whole row is written).
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        PurchaseRecord::<E>::from_domain(purchase).map(|record| record.state)
    }
}

impl<E: Encoding> Record for PurchaseRecord<E> {
    type Domain = Purchase;

    fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        let facts = &purchase.facts;
        let (mismatched_payment_cents, mismatched_payment_currency) =
            split_money(facts.mismatched_payment);
        let (refunded_cents, refunded_currency) = split_money(facts.refunded);
        let checkout = purchase.checkout.as_ref();
        let checkout_expires_at = checkout
            .map(|c| E::store_instant(c.expires_at))
            .transpose()?;
        let created_at = E::store_instant(purchase.created_at)?;
        let paid_at = facts.paid_at.map(E::store_instant).transpose()?;
        Ok(Self {
            id: E::store_id(purchase.id.as_uuid()),
            user_id: E::store_id(purchase.user_id.as_uuid()),
            course_id: E::store_id(purchase.course_id.as_uuid()),
            price_cents: purchase.price.minor(),
            currency: purchase.price.currency().code().to_owned(),
            checkout_session_id: checkout.map(|c| c.id.clone()),
            checkout_url: checkout.map(|c| c.url.clone()),
            checkout_expires_at,
            state: StateRecord {
                status: purchase.status().as_str().to_owned(),
                payment_intent_id: purchase.payment_intent_id.clone(),
                paid_in_full: facts.paid_in_full,
                paid_at,
                mismatched_payment_cents,
                mismatched_payment_currency,
                attempt_failed: facts.attempt_failed,
                processing: facts.processing,
                async_payment_failed: facts.async_payment_failed,
                checkout_expired: facts.checkout_expired,
                checkout_not_started: facts.checkout_not_started,
                refunded_cents,
                refunded_currency,
                dispute_opened: facts.dispute_opened,
                dispute_won: facts.dispute_won,
                dispute_lost: facts.dispute_lost,
                accepted_by_operator: facts.accepted_by_operator,
                holds_active_slot: purchase.holds_active_slot,
                updated_at: E::store_instant(purchase.updated_at)?,
            },
            created_at,
        })
    }

    fn into_domain(self) -> Result<Purchase, RepoError> {
        let checkout = match (
            self.checkout_session_id,
            self.checkout_url,
            self.checkout_expires_at,
        ) {
            (Some(id), Some(url), Some(expires_at)) => Some(CheckoutSession {
                id,
                url,
                expires_at: E::load_instant(expires_at, "checkout expiry")?,
            }),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "checkout session",
                    "id, url and expiry must be set together",
                ))
            }
        };
        let state = self.state;
        let facts = PaymentFacts {
            paid_in_full: state.paid_in_full,
            paid_at: state
                .paid_at
                .map(|at| E::load_instant(at, "purchase payment time"))
                .transpose()?,
            mismatched_payment: optional_money(
                state.mismatched_payment_cents,
                state.mismatched_payment_currency.as_deref(),
                "mismatched payment",
            )?,
            attempt_failed: state.attempt_failed,
            processing: state.processing,
            async_payment_failed: state.async_payment_failed,
            checkout_expired: state.checkout_expired,
            checkout_not_started: state.checkout_not_started,
            refunded: optional_money(
                state.refunded_cents,
                state.refunded_currency.as_deref(),
                "refund",
            )?,
            dispute_opened: state.dispute_opened,
            dispute_won: state.dispute_won,
            dispute_lost: state.dispute_lost,
            accepted_by_operator: state.accepted_by_operator,
        };
        Ok(Purchase {
            id: PurchaseId::from_uuid(E::load_id(self.id, "purchase id")?),
            user_id: UserId::from_uuid(E::load_id(self.user_id, "purchase user id")?),
            course_id: CourseId::from_uuid(E::load_id(self.course_id, "purchase course id")?),
            price: money(self.price_cents, &self.currency, "purchase price")?,
            checkout,
            payment_intent_id: state.payment_intent_id,
            facts,
            holds_active_slot: state.holds_active_slot,
            created_at: E::load_instant(self.created_at, "purchase creation time")?,
            updated_at: E::load_instant(state.updated_at, "purchase update time")?,
        })
    }
}

/// `LIMIT` and `OFFSET` of a page (an offset beyond `i64` is clamped: it selects nothing).
/// A SQL `count(*)` as a page's total (a count is never negative).
pub fn total(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// One page of a listing: `rows` turned into domain values, with the listing's `count`.
///
/// # Errors
/// The first row `into_domain` refuses.
pub fn page<R, T>(
    rows: Vec<R>,
    count: i64,
    into_domain: impl Fn(R) -> Result<T, RepoError>,
) -> Result<Page<T>, RepoError> {
    Ok(Page {
        items: rows
            .into_iter()
            .map(into_domain)
            .collect::<Result<_, _>>()?,
        total: total(count),
    })
}

pub fn limit_offset(page: PageRequest) -> (i64, i64) {
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    (i64::from(page.limit), offset)
}

/// The purchases among `rows` (candidates, each with its course: the adapters select those paid
/// in full, a fact every unlocking purchase has) that unlock their course as the domain derives
/// it, in the order given. The stored status column plays no part.
///
/// # Errors
/// [`RepoError::Unexpected`] for a record the domain refuses.
pub fn unlocked<E: Encoding>(
    rows: impl IntoIterator<Item = (PurchaseRecord<E>, CourseRecord<E>)>,
) -> Result<Vec<PurchasedCourse>, RepoError> {
    let mut unlocked = Vec::new();
    for (purchase, course) in rows {
        let purchase = purchase.into_domain()?;
        if purchase.unlocks_course() {
            unlocked.push(PurchasedCourse {
                purchase,
                course: course.into_domain()?,
            });
        }
    }
    Ok(unlocked)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::Native;
    use uuid::Uuid;

    fn user_record(email: &str) -> UserRecord<Native> {
        UserRecord {
            id: Uuid::new_v4(),
            name: "Ada".to_owned(),
            email: email.to_owned(),
            role: "student".to_owned(),
            password_hash: "x".to_owned(),
            session_generation: 0,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn session_generations_fit_u32_or_are_corrupt() {
        let mut record = user_record("ada@example.com");
        record.session_generation = i64::from(u32::MAX);
        assert_eq!(record.into_domain().unwrap().session_generation, u32::MAX);
        for stored in [-1, i64::from(u32::MAX) + 1] {
            assert!(matches!(
                session_generation(stored),
                Err(RepoError::Unexpected(_))
            ));
        }
    }

    #[test]
    fn records_round_trip_and_refused_ones_are_unexpected() {
        let user = user_record("ada@example.com").into_domain().unwrap();
        let again = UserRecord::<Native>::from_domain(&user).unwrap();
        assert_eq!(again.into_domain().unwrap(), user);
        assert!(matches!(
            user_record("not an email").into_domain(),
            Err(RepoError::Unexpected(_))
        ));
    }

    #[test]
    fn pages_become_limit_and_offset() {
        assert_eq!(limit_offset(PageRequest::new(3, 20)), (20, 40));
        assert_eq!(limit_offset(PageRequest::new(1, 1)), (1, 0));
    }

    #[test]
    fn money_needs_both_halves() {
        assert_eq!(optional_money(None, None, "refund").unwrap(), None);
        assert!(matches!(
            optional_money(Some(1), None, "refund"),
            Err(RepoError::Unexpected(_))
        ));
        assert_eq!(
            split_money(Some(money(1999, "USD", "price").unwrap())),
            (Some(1999), Some("USD".to_owned()))
        );
    }
}
