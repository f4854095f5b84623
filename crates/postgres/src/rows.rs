//! Diesel row types. The translation to and from domain values is `lms_sql_rows`' (shared
//! with the SQLite adapter); a row here only moves its fields to and from that crate's
//! records. PostgreSQL stores ids and instants natively ([`Native`]).

use crate::schema::{courses, processed_events, purchases, users};
use diesel::prelude::*;
use lms_domain::{Purchase, PurchaseId};
use lms_ports::{EventReceipt, RepoError};
use lms_sql_rows::{CourseRecord, Native, PurchaseRecord, StateRecord, UserRecord};
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
    /// A whole purchase row; see [`PurchaseRecord`].
    #[derive(Debug, Queryable, Selectable, Insertable)]
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
    #[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
    #[diesel(table_name = purchases, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
    pub(crate) struct StateRow mirrors StateRecord<Native> {
        pub status: String,
        pub payment_intent_id: Option<String>,
        pub paid_in_full: bool,
        pub paid_at: Option<OffsetDateTime>,
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
}

impl StateRow {
    pub fn from_domain(purchase: &Purchase) -> Result<Self, RepoError> {
        StateRecord::from_domain(purchase).map(Self::from)
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
