//! Row types and their exact translation to and from domain values.
//!
//! Same rows as the PostgreSQL adapter, with SQLite's representations: ids are lower-case
//! hyphenated uuid text, instants are `i64` nanoseconds since the Unix epoch (UTC). Reading a
//! row re-validates it through the domain's parsers (`Email::parse`, `Currency::parse`, ...): a
//! row the domain would not accept is reported as [`RepoError::Unexpected`] instead of being
//! smuggled in. Writing an instant outside what an `i64` of nanoseconds holds (years 1677 to
//! 2262) is refused the same way.

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

/// The stored form of an id: lower-case, hyphenated (so text order is the uuid's byte order).
pub(crate) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn parse_id(raw: &str, what: &str) -> Result<Uuid, RepoError> {
    Uuid::parse_str(raw).map_err(|e| corrupt(what, e))
}

/// The stored form of an instant: nanoseconds since the Unix epoch.
///
/// # Errors
/// [`RepoError::Unexpected`] for an instant outside years 1677 to 2262.
pub(crate) fn nanos(at: OffsetDateTime) -> Result<i64, RepoError> {
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| {
        RepoError::Unexpected(format!(
            "instant {at} is outside the range the SQLite store holds (years 1677 to 2262)"
        ))
    })
}

fn instant(nanos: i64, what: &str) -> Result<OffsetDateTime, RepoError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|e| corrupt(what, e))
}

fn optional_nanos(at: Option<OffsetDateTime>) -> Result<Option<i64>, RepoError> {
    at.map(nanos).transpose()
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
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl UserRow {
    pub fn from_domain(user: &User) -> Result<Self, RepoError> {
        Ok(Self {
            id: id_text(user.id.as_uuid()),
            name: user.name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.name().to_owned(),
            password_hash: user.password_hash.clone(),
            created_at: nanos(user.created_at)?,
        })
    }

    pub fn into_domain(self) -> Result<User, RepoError> {
        Ok(User {
            id: UserId::from_uuid(parse_id(&self.id, "user id")?),
            name: UserName::parse(&self.name).map_err(|e| corrupt("user name", e))?,
            email: Email::parse(&self.email).map_err(|e| corrupt("email", e))?,
            role: Role::from_name(&self.role).ok_or_else(|| corrupt("role", &self.role))?,
            password_hash: self.password_hash,
            created_at: instant(self.created_at, "user creation time")?,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = courses, check_for_backend(diesel::sqlite::Sqlite), treat_none_as_null = true)]
pub(crate) struct CourseRow {
    pub id: String,
    pub instructor_id: String,
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub price_cents: i64,
    pub currency: String,
    pub published: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl CourseRow {
    pub fn from_domain(course: &Course) -> Result<Self, RepoError> {
        let owned = |text: &Option<CourseText>| text.as_ref().map(|t| t.as_str().to_owned());
        Ok(Self {
            id: id_text(course.id.as_uuid()),
            instructor_id: id_text(course.instructor_id.as_uuid()),
            title: course.title.as_str().to_owned(),
            subtitle: owned(&course.subtitle),
            description: owned(&course.description),
            category: owned(&course.category),
            level: owned(&course.level),
            price_cents: course.price.minor(),
            currency: course.price.currency().code().to_owned(),
            published: course.published,
            created_at: nanos(course.created_at)?,
            updated_at: nanos(course.updated_at)?,
        })
    }

    pub fn into_domain(self) -> Result<Course, RepoError> {
        Ok(Course {
            id: CourseId::from_uuid(parse_id(&self.id, "course id")?),
            instructor_id: UserId::from_uuid(parse_id(&self.instructor_id, "instructor id")?),
            title: text("title", self.title)?,
            subtitle: optional_text("subtitle", self.subtitle)?,
            description: optional_text("description", self.description)?,
            category: optional_text("category", self.category)?,
            level: optional_text("level", self.level)?,
            price: money(self.price_cents, &self.currency, "course price")?,
            published: self.published,
            created_at: instant(self.created_at, "course creation time")?,
            updated_at: instant(self.updated_at, "course update time")?,
        })
    }
}

/// A whole purchase row. `status` is written for humans and indexes; on load the status is
/// derived from the facts by the domain, never read back.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = purchases, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct PurchaseRow {
    pub id: String,
    pub user_id: String,
    pub course_id: String,
    pub status: String,
    pub price_cents: i64,
    pub currency: String,
    pub checkout_session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub checkout_expires_at: Option<i64>,
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
    pub created_at: i64,
    pub updated_at: i64,
}

impl PurchaseRow {
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        let facts = &purchase.facts;
        let (mismatched_payment_cents, mismatched_payment_currency) =
            split_money(facts.mismatched_payment);
        let (refunded_cents, refunded_currency) = split_money(facts.refunded);
        let checkout = purchase.checkout.as_ref();
        Ok(Self {
            id: id_text(purchase.id.as_uuid()),
            user_id: id_text(purchase.user_id.as_uuid()),
            course_id: id_text(purchase.course_id.as_uuid()),
            status: purchase.status().as_str().to_owned(),
            price_cents: purchase.price.minor(),
            currency: purchase.price.currency().code().to_owned(),
            checkout_session_id: checkout.map(|c| c.id.clone()),
            checkout_url: checkout.map(|c| c.url.clone()),
            checkout_expires_at: optional_nanos(checkout.map(|c| c.expires_at))?,
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
            created_at: nanos(purchase.created_at)?,
            updated_at: nanos(purchase.updated_at)?,
        })
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
                expires_at: instant(expires_at, "checkout expiry")?,
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
            id: PurchaseId::from_uuid(parse_id(&self.id, "purchase id")?),
            user_id: UserId::from_uuid(parse_id(&self.user_id, "purchase user id")?),
            course_id: CourseId::from_uuid(parse_id(&self.course_id, "purchase course id")?),
            price: money(self.price_cents, &self.currency, "purchase price")?,
            checkout,
            payment_intent_id: self.payment_intent_id,
            facts,
            holds_active_slot: self.holds_active_slot,
            created_at: instant(self.created_at, "purchase creation time")?,
            updated_at: instant(self.updated_at, "purchase update time")?,
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
    pub updated_at: i64,
}

impl FactsChangeset {
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        let row = PurchaseRow::from_domain(purchase)?;
        Ok(Self {
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
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = processed_events)]
pub(crate) struct NewProcessedEvent {
    pub event_id: String,
    pub event_type: String,
    pub purchase_id: String,
    pub received_at: i64,
    pub payload: String,
}

impl NewProcessedEvent {
    pub fn new(
        event: &EventReceipt,
        purchase_id: PurchaseId,
        received_at: OffsetDateTime,
    ) -> Result<Self, RepoError> {
        Ok(Self {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            purchase_id: id_text(purchase_id.as_uuid()),
            received_at: nanos(received_at)?,
            payload: json_payload(&event.payload),
        })
    }
}

/// The payload as stored: the gateway's JSON byte for byte; anything else is still kept for
/// audit, as a JSON string (the column only holds JSON, as Postgres' `jsonb` column does).
fn json_payload(raw: &str) -> String {
    if serde_json::from_str::<serde_json::Value>(raw).is_ok() {
        raw.to_owned()
    } else {
        serde_json::Value::String(raw.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_to_the_nanosecond() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_789).unwrap();
        assert_eq!(instant(nanos(at).unwrap(), "t").unwrap(), at);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(nanos(before_epoch).unwrap(), -1);
        // Offsets do not matter: the same instant is the same number.
        let shifted = at.to_offset(time::macros::offset!(+5:30));
        assert_eq!(nanos(shifted).unwrap(), nanos(at).unwrap());
    }

    #[test]
    fn instants_beyond_an_i64_of_nanoseconds_are_refused_not_wrapped() {
        let far = time::macros::datetime!(2300-01-01 0:00 UTC);
        assert!(matches!(nanos(far), Err(RepoError::Unexpected(_))));
        let early = time::macros::datetime!(1600-01-01 0:00 UTC);
        assert!(matches!(nanos(early), Err(RepoError::Unexpected(_))));
    }

    #[test]
    fn ids_are_stored_so_that_text_order_is_uuid_order() {
        let mut ids: Vec<Uuid> = (0..64).map(|_| Uuid::new_v4()).collect();
        let mut texts: Vec<String> = ids.iter().copied().map(id_text).collect();
        ids.sort();
        texts.sort();
        assert_eq!(texts, ids.into_iter().map(id_text).collect::<Vec<_>>());
        assert_eq!(
            id_text(Uuid::from_u128(0xABCD)),
            "00000000-0000-0000-0000-00000000abcd"
        );
    }

    #[test]
    fn payloads_are_always_json() {
        assert_eq!(json_payload(r#"{"id":"evt_1"}"#), r#"{"id":"evt_1"}"#);
        assert_eq!(json_payload("not json"), r#""not json""#);
        assert_eq!(json_payload(r#"say "hi""#), r#""say \"hi\"""#);
    }

    #[test]
    fn rows_the_domain_refuses_are_unexpected() {
        let row = UserRow {
            id: "not-a-uuid".to_owned(),
            name: "Ada".to_owned(),
            email: "ada@example.com".to_owned(),
            role: "student".to_owned(),
            password_hash: "x".to_owned(),
            created_at: 0,
        };
        assert!(matches!(row.into_domain(), Err(RepoError::Unexpected(_))));
    }
}
