//! Row types and their exact translation to and from domain values.
//!
//! Reading a row re-validates it through the domain's parsers (`Email::parse`,
//! `Currency::parse`, ...): a row the domain would not accept is reported as
//! [`RepoError::Unexpected`] instead of being smuggled in.

use crate::schema::{courses, processed_events, purchases, users};
use diesel::prelude::*;
use lms_domain::{
    CheckoutSession, Course, CourseId, CourseText, Currency, Email, Money, PaymentFacts, Purchase,
    PurchaseId, Role, User, UserId, UserName,
};
use lms_ports::{EventReceipt, RepoError};
use time::OffsetDateTime;
use uuid::Uuid;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> RepoError {
    RepoError::Unexpected(format!("stored {what} is invalid: {detail}"))
}

fn money(cents: i64, currency: &str, what: &str) -> Result<Money, RepoError> {
    let currency = Currency::parse(currency).map_err(|e| corrupt(what, e))?;
    Money::new(cents, currency).map_err(|e| corrupt(what, e))
}

fn optional_money(
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

fn split_money(money: Option<Money>) -> (Option<i64>, Option<String>) {
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

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

impl UserRow {
    pub fn from_domain(user: &User) -> Self {
        Self {
            id: user.id.as_uuid(),
            name: user.name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.name().to_owned(),
            password_hash: user.password_hash.clone(),
            created_at: user.created_at,
        }
    }

    pub fn into_domain(self) -> Result<User, RepoError> {
        Ok(User {
            id: UserId::from_uuid(self.id),
            name: UserName::parse(&self.name).map_err(|e| corrupt("user name", e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt("email", e))?,
            role: Role::from_name(&self.role).ok_or_else(|| corrupt("role", &self.role))?,
            password_hash: self.password_hash,
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = courses, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub(crate) struct CourseRow {
    pub id: Uuid,
    pub instructor_id: Uuid,
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub published: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl CourseRow {
    pub fn from_domain(course: &Course) -> Self {
        let owned = |text: &Option<CourseText>| text.as_ref().map(|t| t.as_str().to_owned());
        Self {
            id: course.id.as_uuid(),
            instructor_id: course.instructor_id.as_uuid(),
            title: course.title.as_str().to_owned(),
            subtitle: owned(&course.subtitle),
            description: owned(&course.description),
            category: owned(&course.category),
            level: owned(&course.level),
            price_cents: course.price.minor(),
            currency: course.price.currency().code().to_owned(),
            published: course.published,
            created_at: course.created_at,
            updated_at: course.updated_at,
        }
    }

    pub fn into_domain(self) -> Result<Course, RepoError> {
        Ok(Course {
            id: CourseId::from_uuid(self.id),
            instructor_id: UserId::from_uuid(self.instructor_id),
            title: text("title", self.title)?,
            subtitle: optional_text("subtitle", self.subtitle)?,
            description: optional_text("description", self.description)?,
            category: optional_text("category", self.category)?,
            level: optional_text("level", self.level)?,
            price: money(self.price_cents, &self.currency, "course price")?,
            published: self.published,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A whole purchase row. `status` is written for humans and indexes; on load the status is
/// derived from the facts by the domain, never read back.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = purchases, check_for_backend(diesel::pg::Pg))]
pub(crate) struct PurchaseRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub course_id: Uuid,
    pub status: String,
    pub price_cents: i64,
    pub currency: String,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub checkout_expires_at: Option<OffsetDateTime>,
    pub payment_intent_id: Option<String>,
    pub paid_in_full: bool,
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
    pub holds_active_slot: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl PurchaseRow {
    pub fn from_domain(purchase: &Purchase) -> Self {
        let facts = &purchase.facts;
        let (mismatched_payment_cents, mismatched_payment_currency) =
            split_money(facts.mismatched_payment);
        let (refunded_cents, refunded_currency) = split_money(facts.refunded);
        let checkout = purchase.checkout.as_ref();
        Self {
            id: purchase.id.as_uuid(),
            user_id: purchase.user_id.as_uuid(),
            course_id: purchase.course_id.as_uuid(),
            status: purchase.status().as_str().to_owned(),
            price_cents: purchase.price.minor(),
            currency: purchase.price.currency().code().to_owned(),
            checkout_session_id: checkout.map(|c| c.id.clone()),
            checkout_url: checkout.map(|c| c.url.clone()),
            checkout_expires_at: checkout.map(|c| c.expires_at),
            payment_intent_id: purchase.payment_intent_id.clone(),
            paid_in_full: facts.paid_in_full,
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
            holds_active_slot: purchase.holds_active_slot,
            created_at: purchase.created_at,
            updated_at: purchase.updated_at,
        }
    }

    pub fn into_domain(self) -> Result<Purchase, RepoError> {
        let checkout = match (
            self.checkout_session_id,
            self.checkout_url,
            self.checkout_expires_at,
        ) {
            (Some(id), Some(url), Some(expires_at)) => Some(CheckoutSession {
                id,
                url,
                expires_at,
            }),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "checkout session",
                    "id, url and expiry must be set together",
                ))
            }
        };
        let facts = PaymentFacts {
            paid_in_full: self.paid_in_full,
            mismatched_payment: optional_money(
                self.mismatched_payment_cents,
                self.mismatched_payment_currency.as_deref(),
                "mismatched payment",
            )?,
            attempt_failed: self.attempt_failed,
            processing: self.processing,
            async_payment_failed: self.async_payment_failed,
            checkout_expired: self.checkout_expired,
            checkout_not_started: self.checkout_not_started,
            refunded: optional_money(
                self.refunded_cents,
                self.refunded_currency.as_deref(),
                "refund",
            )?,
            dispute_opened: self.dispute_opened,
            dispute_won: self.dispute_won,
            dispute_lost: self.dispute_lost,
        };
        Ok(Purchase {
            id: PurchaseId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            course_id: CourseId::from_uuid(self.course_id),
            price: money(self.price_cents, &self.currency, "purchase price")?,
            checkout,
            payment_intent_id: self.payment_intent_id,
            facts,
            holds_active_slot: self.holds_active_slot,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// What a fact update may change: the facts, the derived status, the slot, the payment intent.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = purchases, treat_none_as_null = true)]
pub(crate) struct FactsChangeset {
    pub status: String,
    pub payment_intent_id: Option<String>,
    pub paid_in_full: bool,
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
    pub holds_active_slot: bool,
    pub updated_at: OffsetDateTime,
}

impl FactsChangeset {
    pub fn from_domain(purchase: &Purchase) -> Self {
        let row = PurchaseRow::from_domain(purchase);
        Self {
            status: row.status,
            payment_intent_id: row.payment_intent_id,
            paid_in_full: row.paid_in_full,
            mismatched_payment_cents: row.mismatched_payment_cents,
            mismatched_payment_currency: row.mismatched_payment_currency,
            attempt_failed: row.attempt_failed,
            processing: row.processing,
            async_payment_failed: row.async_payment_failed,
            checkout_expired: row.checkout_expired,
            checkout_not_started: row.checkout_not_started,
            refunded_cents: row.refunded_cents,
            refunded_currency: row.refunded_currency,
            dispute_opened: row.dispute_opened,
            dispute_won: row.dispute_won,
            dispute_lost: row.dispute_lost,
            holds_active_slot: row.holds_active_slot,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = processed_events)]
pub(crate) struct NewProcessedEvent {
    pub event_id: String,
    pub event_type: String,
    pub purchase_id: Uuid,
    pub received_at: OffsetDateTime,
    pub payload: serde_json::Value,
}

impl NewProcessedEvent {
    pub fn new(event: &EventReceipt, purchase_id: PurchaseId, received_at: OffsetDateTime) -> Self {
        // The gateway sends JSON; anything else is still kept for audit, as a JSON string.
        let payload = serde_json::from_str(&event.payload)
            .unwrap_or_else(|_| serde_json::Value::String(event.payload.clone()));
        Self {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            purchase_id: purchase_id.as_uuid(),
            received_at,
            payload,
        }
    }
}
