//! What a baseline request works on, the purchase state its `UPDATE` writes, and the checks
//! that the app and the baselines left the database in the same state (untimed, over
//! connections of their own).

use super::setup::Paid;
use super::sql::Stmt;
use crate::Data;
use anyhow::{anyhow, ensure};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::QueryableByName;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// One baseline round: `requests` requests of `sequence`, the i-th on
/// `items[i % items.len()]`, from `concurrency` clients. The inbox upsert must return
/// `delivery_count` (1: first delivery, 2: duplicate); the purchase `UPDATE` writes `state`.
#[derive(Debug, Clone)]
pub struct Round {
    pub sequence: &'static [Stmt],
    pub items: Arc<Vec<Item>>,
    pub requests: usize,
    pub concurrency: usize,
    pub state: Arc<State>,
    pub delivery_count: i32,
}

/// One request's data: the event (for the webhook workloads) and the purchase it is about
/// (for all).
#[derive(Debug, Clone)]
pub struct Item {
    pub event_id: String,
    pub event_type: String,
    pub purchase_id: Uuid,
    pub user_id: Uuid,
    pub course_id: Uuid,
    /// The body the app receives (`Sandbox::signed` sends `event.to_string()`), stored as
    /// the inbox payload.
    pub payload: String,
    pub livemode: bool,
    pub created: OffsetDateTime,
    pub payment_intent: String,
}

impl Item {
    /// From a paid purchase's event (its metadata names the purchase, buyer and course).
    ///
    /// # Errors
    /// When the event lacks one of them.
    pub fn from_paid(paid: &Paid) -> anyhow::Result<Self> {
        let event = &paid.event;
        let metadata = &event["data"]["object"]["metadata"];
        let id = |name: &str| {
            metadata[name]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .ok_or_else(|| anyhow!("the event has no metadata.{name}: {event}"))
        };
        let created = event["created"]
            .as_i64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .ok_or_else(|| anyhow!("the event has no created time: {event}"))?;
        Ok(Self {
            event_id: paid.event_id().to_owned(),
            event_type: event["type"].as_str().unwrap_or_default().to_owned(),
            purchase_id: id("purchase_id")?,
            user_id: id("user_id")?,
            course_id: id("course_id")?,
            payload: event.to_string(),
            livemode: event["livemode"].as_bool().unwrap_or(false),
            created,
            payment_intent: paid.payment_intent().to_owned(),
        })
    }
}

/// A purchase's state columns but the per-purchase ones (payment intent, paid at, sold at,
/// updated at): what the app's first delivery left, which the baseline's `UPDATE` writes
/// again. The bench's courses all cost the same, so the captured payment, the bill and the
/// sale are the same for every purchase.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct State {
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub captured_cents: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub captured_currency: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub bill_currency: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub bill_subtotal_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub bill_discount_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub bill_tax_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub bill_total_cents: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub conversion_currency: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub conversion_subtotal_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub conversion_total_cents: Option<i64>,
    #[diesel(sql_type = Bool)]
    pub attempt_failed: bool,
    #[diesel(sql_type = Bool)]
    pub processing: bool,
    #[diesel(sql_type = Bool)]
    pub async_payment_failed: bool,
    #[diesel(sql_type = Bool)]
    pub checkout_expired: bool,
    #[diesel(sql_type = Bool)]
    pub checkout_not_started: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub refunded_cents: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub refunded_currency: Option<String>,
    #[diesel(sql_type = Bool)]
    pub dispute_opened: bool,
    #[diesel(sql_type = Bool)]
    pub dispute_won: bool,
    #[diesel(sql_type = Bool)]
    pub dispute_lost: bool,
    #[diesel(sql_type = Bool)]
    pub accepted_by_operator: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub receipt_url: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub promotion_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub sale_currency: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_gross_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_discount_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_tax_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_paid_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_refunded_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_disputes_lost_cents: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub sale_net_cents: Option<i64>,
    #[diesel(sql_type = Bool)]
    pub holds_active_slot: bool,
}

const STATE_COLUMNS: &str = "status, captured_cents, captured_currency, bill_currency, \
    bill_subtotal_cents, bill_discount_cents, bill_tax_cents, bill_total_cents, \
    conversion_currency, conversion_subtotal_cents, conversion_total_cents, attempt_failed, \
    processing, async_payment_failed, checkout_expired, checkout_not_started, refunded_cents, \
    refunded_currency, dispute_opened, dispute_won, dispute_lost, accepted_by_operator, \
    receipt_url, promotion_code, sale_currency, sale_gross_cents, sale_discount_cents, \
    sale_tax_cents, sale_paid_cents, sale_refunded_cents, sale_disputes_lost_cents, \
    sale_net_cents, holds_active_slot";

/// A state with how many purchases are in it.
#[derive(Debug, Clone, QueryableByName)]
struct StateCount {
    #[diesel(embed)]
    state: State,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// An inbox row's kind with how many rows are of it.
#[derive(Debug, Clone, QueryableByName)]
struct EventKind {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    delivery_count: i32,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl State {
    /// The state of one purchase (a uuid, so written into the text).
    ///
    /// # Errors
    /// When the database cannot be read or the purchase is unknown.
    pub async fn of(data: &Data, purchase: Uuid) -> anyhow::Result<Self> {
        let query = format!("SELECT {STATE_COLUMNS} FROM purchases WHERE id = '{purchase}'");
        let mut rows: Vec<Self> = data.load(query).await?;
        rows.pop().ok_or_else(|| anyhow!("no purchase {purchase}"))
    }
}

/// Every purchase is in one state, `expected`, and every inbox row is a `type` event applied
/// and delivered twice: what the app's rounds and the baselines' rounds both leave. With
/// `but_peers`, the purchases made for the peer (pending in the app's tables: the peer
/// completed its own copies, `peer_purchases`) are left out. Returns how many purchases and
/// inbox rows there are.
///
/// # Errors
/// The first difference found.
pub async fn same_end_state(
    data: &Data,
    expected: &State,
    event_type: &str,
    but_peers: bool,
) -> anyhow::Result<(i64, i64)> {
    let filter = if but_peers {
        "WHERE id NOT IN (SELECT id FROM peer_purchases)"
    } else {
        ""
    };
    let states: Vec<StateCount> = data
        .load(format!(
            "SELECT {STATE_COLUMNS}, count(*) AS n FROM purchases {filter} GROUP BY {STATE_COLUMNS}"
        ))
        .await?;
    ensure!(
        states.len() == 1 && states[0].state == *expected,
        "the purchases are not all in the state the app's first delivery left ({expected:?}): {states:?}"
    );
    let kinds: Vec<EventKind> = data
        .load(
            "SELECT event_type, outcome, delivery_count, count(*) AS n FROM webhook_events \
             GROUP BY event_type, outcome, delivery_count"
                .to_owned(),
        )
        .await?;
    ensure!(
        kinds.len() == 1
            && kinds[0].event_type == event_type
            && kinds[0].outcome == "applied"
            && kinds[0].delivery_count == 2,
        "the inbox rows are not all {event_type}, applied, delivered twice: {kinds:?}"
    );
    Ok((states[0].n, kinds[0].n))
}
