//! Diesel row types. The translation to and from domain values is `lms_sql_rows`' (shared
//! with the PostgreSQL adapter); a row here only moves its fields to and from that crate's
//! records.
//!
//! Same rows as the PostgreSQL adapter, with SQLite's representations ([`TextAndNanos`]): ids
//! are lower-case hyphenated uuid text, instants are `i64` nanoseconds since the Unix epoch
//! (UTC), event payloads JSON text (`lms_sql_rows::payload`). Writing an instant outside what an `i64` of nanoseconds holds (years 1677 to 2262)
//! is refused as [`RepoError::Unexpected`], like a stored row the domain refuses.

use crate::schema::{audit_log, courses, purchases, users, webhook_events};
use diesel::prelude::*;
use lms_domain::Purchase;
use lms_ports::RepoError;
use lms_sql_rows::{
    corrupt, AuditRecord, CourseRecord, Encoding, PurchaseRecord, RevenueRecord, StateRecord,
    UserRecord, WebhookEventRecord,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// Uuid text, `i64` nanoseconds and JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextAndNanos {}

impl Encoding for TextAndNanos {
    type Id = String;
    type Instant = i64;
    type Json = String;

    fn store_id(id: Uuid) -> String {
        id_text(id)
    }

    fn load_id(stored: String, what: &str) -> Result<Uuid, RepoError> {
        parse_id(&stored, what)
    }

    fn store_instant(at: OffsetDateTime) -> Result<i64, RepoError> {
        nanos(at)
    }

    fn load_instant(stored: i64, what: &str) -> Result<OffsetDateTime, RepoError> {
        instant(stored, what)
    }
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
    i64::try_from(at.unix_timestamp_nanos()).map_err(|e| {
        RepoError::unexpected(lms_ports::Context::new(
            format!(
                "instant {at} is outside the range the SQLite store holds (years 1677 to 2262)"
            ),
            e,
        ))
    })
}

pub(crate) fn instant(nanos: i64, what: &str) -> Result<OffsetDateTime, RepoError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|e| corrupt(what, e))
}

lms_sql_rows::row! {
    #[derive(Debug, Queryable, Selectable, Insertable)]
    #[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
    pub(crate) struct UserRow as UserRecord<TextAndNanos> {
        pub id: String,
        pub name: String,
        pub email: String,
        pub role: String,
        pub password_hash: String,
        pub session_generation: i64,
        pub created_at: i64,
    }
}

lms_sql_rows::row! {
    #[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
    #[diesel(table_name = courses, check_for_backend(diesel::sqlite::Sqlite), treat_none_as_null = true)]
    pub(crate) struct CourseRow as CourseRecord<TextAndNanos> {
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
}

lms_sql_rows::row! {
    /// A whole purchase row; see [`PurchaseRecord`]. By name too, for the SQL-text claim.
    #[derive(Debug, Queryable, QueryableByName, Selectable, Insertable)]
    #[diesel(table_name = purchases, check_for_backend(diesel::sqlite::Sqlite))]
    pub(crate) struct PurchaseRow as PurchaseRecord<TextAndNanos> {
        pub id: String,
        pub user_id: String,
        pub course_id: String,
        pub price_cents: i64,
        pub currency: String,
        pub checkout_session_id: Option<String>,
        pub checkout_url: Option<String>,
        pub checkout_expires_at: Option<i64>,
        #[diesel(embed)]
        pub state: StateRow,
        pub created_at: i64,
    }
}

lms_sql_rows::row! {
    /// The columns a fact update may change (its `UPDATE` sets them all); see [`StateRecord`].
    #[derive(Debug, Queryable, QueryableByName, Selectable, Insertable, AsChangeset)]
    #[diesel(table_name = purchases, check_for_backend(diesel::sqlite::Sqlite), treat_none_as_null = true)]
    pub(crate) struct StateRow mirrors StateRecord<TextAndNanos> {
        pub status: String,
        pub payment_intent_id: Option<String>,
        pub captured_cents: Option<i64>,
        pub captured_currency: Option<String>,
        pub paid_at: Option<i64>,
        pub bill_currency: Option<String>,
        pub bill_subtotal_cents: Option<i64>,
        pub bill_discount_cents: Option<i64>,
        pub bill_tax_cents: Option<i64>,
        pub bill_total_cents: Option<i64>,
        pub conversion_currency: Option<String>,
        pub conversion_subtotal_cents: Option<i64>,
        pub conversion_total_cents: Option<i64>,
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
        pub receipt_url: Option<String>,
        pub promotion_code: Option<String>,
        pub sale_currency: Option<String>,
        pub sale_gross_cents: Option<i64>,
        pub sale_discount_cents: Option<i64>,
        pub sale_tax_cents: Option<i64>,
        pub sale_paid_cents: Option<i64>,
        pub sale_refunded_cents: Option<i64>,
        pub sale_disputes_lost_cents: Option<i64>,
        pub sale_net_cents: Option<i64>,
        pub sold_at: Option<i64>,
        pub holds_active_slot: bool,
        pub updated_at: i64,
    }
}

impl StateRow {
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        StateRecord::from_domain(purchase).map(Self::from)
    }
}

lms_sql_rows::row! {
    /// An event inbox row; see [`WebhookEventRecord`].
    #[derive(Debug, Queryable, Selectable, Insertable)]
    #[diesel(table_name = webhook_events, check_for_backend(diesel::sqlite::Sqlite))]
    pub(crate) struct WebhookEventRow as WebhookEventRecord<TextAndNanos> {
        pub event_id: String,
        pub event_type: String,
        pub purchase_id: Option<String>,
        pub first_received_at: i64,
        pub payload: Option<String>,
        pub livemode: bool,
        pub created: i64,
        pub last_received_at: i64,
        pub delivery_count: i32,
        pub outcome: String,
        pub error: Option<String>,
    }
}

lms_sql_rows::row! {
    /// An audit entry without its id (assigned by SQLite in append order); see
    /// [`AuditRecord`].
    #[derive(Debug, Queryable, Selectable, Insertable)]
    #[diesel(table_name = audit_log, check_for_backend(diesel::sqlite::Sqlite))]
    pub(crate) struct AuditRow as AuditRecord<TextAndNanos> {
        pub at: i64,
        pub actor_kind: String,
        pub actor_user_id: Option<String>,
        pub action: String,
        pub purchase_id: Option<String>,
        pub event_id: Option<String>,
        pub subject_user_id: Option<String>,
        pub amount_cents: Option<i64>,
        pub currency: Option<String>,
        pub reason: String,
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
    fn rows_the_domain_refuses_are_unexpected() {
        let row = UserRow {
            id: "not-a-uuid".to_owned(),
            name: "Ada".to_owned(),
            email: "ada@example.com".to_owned(),
            role: "student".to_owned(),
            password_hash: "x".to_owned(),
            session_generation: 0,
            created_at: 0,
        };
        assert!(matches!(row.into_domain(), Err(RepoError::Unexpected(_))));
    }
}

lms_sql_rows::row! {
    /// One line of the revenue report, read by column name (the report is SQL text); see
    /// [`RevenueRecord`].
    #[derive(Debug, QueryableByName)]
    pub(crate) struct RevenueRow mirrors RevenueRecord<TextAndNanos> {
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub course_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub course_title: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub instructor_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub currency: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub purchases: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub gross: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub discounts: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub tax: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub paid: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub refunds: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub disputes_lost: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pub net: i64,
    }
}
