//! Diesel row types. The translation to and from domain values is `lms_sql_rows`' (shared
//! with the SQLite adapter); a row here only moves its fields to and from that crate's
//! records. PostgreSQL stores ids and instants natively ([`Native`]).

use std::io::Write as _;

use crate::schema::{audit_log, courses, purchases, users, webhook_events};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use lms_domain::Purchase;
use lms_ports::RepoError;
use lms_sql_rows::{
    AuditRecord, CourseRecord, Native, PurchaseRecord, RevenueRecord, StateRecord, UserRecord,
    WebhookEventRecord,
};
use time::OffsetDateTime;
use uuid::Uuid;

lms_sql_rows::row! {
    #[derive(Debug, Queryable, Selectable, Insertable)]
    #[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
    pub(crate) struct UserRow as UserRecord<Native> {
        pub id: Uuid,
        pub name: String,
        pub email: String,
        pub role: String,
        pub password_hash: String,
        pub session_generation: i64,
        pub created_at: OffsetDateTime,
    }
}

lms_sql_rows::row! {
    #[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
    #[diesel(table_name = courses, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
    pub(crate) struct CourseRow as CourseRecord<Native> {
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
}

lms_sql_rows::row! {
    /// A whole purchase row; see [`PurchaseRecord`]. By name too, for the SQL-text claim.
    #[derive(Debug, Queryable, QueryableByName, Selectable, Insertable)]
    #[diesel(table_name = purchases, check_for_backend(diesel::pg::Pg))]
    pub(crate) struct PurchaseRow as PurchaseRecord<Native> {
        pub id: Uuid,
        pub user_id: Uuid,
        pub course_id: Uuid,
        pub price_cents: i64,
        pub currency: String,
        pub checkout_session_id: Option<String>,
        pub checkout_url: Option<String>,
        pub checkout_expires_at: Option<OffsetDateTime>,
        #[diesel(embed)]
        pub state: StateRow,
        pub created_at: OffsetDateTime,
    }
}

lms_sql_rows::row! {
    /// The columns a fact update may change (its `UPDATE` sets them all); see [`StateRecord`].
    #[derive(Debug, Queryable, QueryableByName, Selectable, Insertable, AsChangeset)]
    #[diesel(table_name = purchases, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
    pub(crate) struct StateRow mirrors StateRecord<Native> {
        pub status: String,
        pub payment_intent_id: Option<String>,
        pub captured_cents: Option<i64>,
        pub captured_currency: Option<String>,
        pub paid_at: Option<OffsetDateTime>,
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
        pub sold_at: Option<OffsetDateTime>,
        pub holds_active_slot: bool,
        pub updated_at: OffsetDateTime,
    }
}

impl StateRow {
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        StateRecord::from_domain(purchase).map(Self::from)
    }
}

/// An event payload as the `json` column keeps it: the JSON text byte for byte. Read and
/// written as text (`json`'s binary wire format is its text), never through a JSON value, so
/// that the inbox gives back exactly the body received (see `lms_sql_rows::payload`).
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Json)]
pub(crate) struct JsonText(String);

impl From<String> for JsonText {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<JsonText> for String {
    fn from(json: JsonText) -> Self {
        json.0
    }
}

impl FromSql<diesel::sql_types::Json, Pg> for JsonText {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(Self(String::from_utf8(value.as_bytes().to_vec())?))
    }
}

impl ToSql<diesel::sql_types::Json, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

lms_sql_rows::row! {
    /// An event inbox row; see [`WebhookEventRecord`].
    #[derive(Debug, Clone, Queryable, Selectable, Insertable)]
    #[diesel(table_name = webhook_events, check_for_backend(diesel::pg::Pg))]
    pub(crate) struct WebhookEventRow as WebhookEventRecord<Native<JsonText>> {
        pub event_id: String,
        pub event_type: String,
        pub purchase_id: Option<Uuid>,
        pub first_received_at: OffsetDateTime,
        pub payload: Option<JsonText>,
        pub livemode: bool,
        pub created: OffsetDateTime,
        pub last_received_at: OffsetDateTime,
        pub delivery_count: i32,
        pub outcome: String,
        pub error: Option<String>,
    }
}

lms_sql_rows::row! {
    /// An audit entry without its id (assigned by the database in append order); see
    /// [`AuditRecord`].
    #[derive(Debug, Queryable, Selectable, Insertable)]
    #[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
    pub(crate) struct AuditRow as AuditRecord<Native> {
        pub at: OffsetDateTime,
        pub actor_kind: String,
        pub actor_user_id: Option<Uuid>,
        pub action: String,
        pub purchase_id: Option<Uuid>,
        pub event_id: Option<String>,
        pub subject_user_id: Option<Uuid>,
        pub amount_cents: Option<i64>,
        pub currency: Option<String>,
        pub reason: String,
    }
}

lms_sql_rows::row! {
    /// One line of the revenue report, read by column name (the report is SQL text); see
    /// [`RevenueRecord`].
    #[derive(Debug, QueryableByName)]
    pub(crate) struct RevenueRow mirrors RevenueRecord<Native> {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        pub course_id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub course_title: String,
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        pub instructor_id: Uuid,
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
