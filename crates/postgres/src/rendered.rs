//! Hot statements whose SQL text is rendered once instead of on every call.
//!
//! diesel-async renders a query's SQL text each time it runs it, even when the prepared
//! statement is already cached: every column of the select list walked, every identifier quoted
//! into a fresh allocation. For the status read's join of three whole rows (66 columns) that
//! was 60 % of the repository call's instructions under callgrind, more than decoding the rows
//! (crates/bench/README.md, "Where the instructions go"). A statement here is built with
//! diesel's query builder as before, rendered once into [`Rendered`] text, and replayed with
//! each call's binds: the same SQL text and the same cached prepared statement, without the
//! rebuilding. Each statement's test compares its replay with the builder's output, binds
//! included, so the two cannot drift apart.
//!
//! For an `UPDATE` and an `INSERT .. ON CONFLICT DO UPDATE`, diesel does worse: it marks them
//! unsafe to cache (their text may depend on the values, a skipped `None` say), so each call
//! prepared its statement again, a round trip of its own. The webhook's inbox upsert and state
//! update bind every column whatever the values, so one text serves every call, and as their
//! own statement types they are prepared once per connection like the rest; so is the
//! outcome update of an event whose purchase is held for review.

use std::sync::LazyLock;

use diesel::dsl::AsSelect;
use diesel::expression::SelectableHelper;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::sql_types;
use uuid::Uuid;

use diesel::upsert::excluded;
use time::OffsetDateTime;

use crate::rows::{CourseRow, PurchaseRow, StateRow, UserRow, WebhookEventRow};
use crate::schema::{courses, purchases, users, webhook_events};

/// A statement's SQL text as diesel's builder wrote it, cut at its bind placeholders: `parts[i]`
/// is the text before `$(i + 1)`, the last part the text after the last bind.
#[derive(Debug)]
struct Rendered {
    parts: Vec<String>,
}

impl Rendered {
    /// Renders `query` and cuts its text at `$1` ..= `$binds`, which must each appear exactly
    /// once, in that order (diesel numbers them as it walks the query).
    fn of(query: &impl QueryFragment<Pg>, binds: usize) -> Result<Self, String> {
        let mut builder = diesel::pg::PgQueryBuilder::default();
        query
            .to_sql(&mut builder, &Pg)
            .map_err(|err| format!("rendering a statement: {err}"))?;
        let text = builder.finish();
        let mut parts = Vec::with_capacity(binds + 1);
        let mut rest = text.as_str();
        for n in 1..=binds {
            let placeholder = format!("${n}");
            let at = rest
                .match_indices(&placeholder)
                .find(|(at, _)| {
                    !rest[at + placeholder.len()..].starts_with(|c: char| c.is_ascii_digit())
                })
                .map(|(at, _)| at)
                .ok_or_else(|| format!("no {placeholder} in the rendered statement {text}"))?;
            parts.push(rest[..at].to_owned());
            rest = &rest[at + placeholder.len()..];
        }
        if rest.contains('$') {
            return Err(format!(
                "more than {binds} binds in the rendered statement {text}"
            ));
        }
        parts.push(rest.to_owned());
        Ok(Self { parts })
    }
}

/// The text of a rendered statement, or diesel's error for a statement that failed to render
/// (a bug the statement's test catches).
fn text(rendered: &Result<Rendered, String>) -> QueryResult<&Rendered> {
    rendered
        .as_ref()
        .map_err(|err| diesel::result::Error::QueryBuilderError(err.clone().into()))
}

/// Replays a [`Rendered`] statement: its parts with the binds, in the builder's order, between
/// them (`SqlType => value`, as `AstPass::push_bind_param` takes them).
macro_rules! replay {
    ($out:ident, $text:expr; $($sql_type:ty => $bind:expr),* $(,)?) => {{
        let text: &Rendered = $text;
        let mut parts = text.parts.iter();
        $(
            $out.push_sql(parts.next().map_or("", String::as_str));
            $out.push_bind_param::<$sql_type, _>($bind)?;
        )*
        $out.push_sql(parts.next().map_or("", String::as_str));
        Ok(())
    }};
}

/// [`PurchaseRepo::buyer_view`](lms_ports::PurchaseRepo::buyer_view)'s one statement: the user's
/// row, joined to the course's (if any) and to each of the user's purchases of it (served by
/// purchases_user_course_created_idx). Without `ORDER BY`: [`lms_sql_rows::buyer_view`] orders
/// the purchases, sparing the database a sort node on every status read.
#[derive(Debug, Clone, Copy, QueryId)]
pub(crate) struct BuyerViewQuery {
    pub user: Uuid,
    pub course: Uuid,
}

/// What [`BuyerViewQuery`] renders: the query diesel's builder writes.
fn buyer_view_built(user: Uuid, course: Uuid) -> impl QueryFragment<Pg> {
    users::table
        .left_join(courses::table.on(courses::id.eq(course)))
        .left_join(
            purchases::table.on(purchases::user_id
                .eq(users::id)
                .and(purchases::course_id.eq(course))),
        )
        .filter(users::id.eq(user))
        .select((
            UserRow::as_select(),
            Option::<CourseRow>::as_select(),
            Option::<PurchaseRow>::as_select(),
        ))
}

static BUYER_VIEW: LazyLock<Result<Rendered, String>> =
    LazyLock::new(|| Rendered::of(&buyer_view_built(Uuid::nil(), Uuid::nil()), 3));

impl Query for BuyerViewQuery {
    type SqlType = (
        AsSelect<UserRow, Pg>,
        AsSelect<Option<CourseRow>, Pg>,
        AsSelect<Option<PurchaseRow>, Pg>,
    );
}

impl QueryFragment<Pg> for BuyerViewQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The course twice (both joins), then the user.
        replay!(out, text(&BUYER_VIEW)?;
            sql_types::Uuid => &self.course,
            sql_types::Uuid => &self.course,
            sql_types::Uuid => &self.user,
        )
    }
}

/// [`lock_buyers_purchases`](crate::lock_buyers_purchases)'s statement: the purchase and its
/// buyer's other purchases of the course, in id order, `FOR NO KEY UPDATE`.
#[derive(Debug, Clone, Copy, QueryId)]
pub(crate) struct LockBuyersPurchases {
    pub purchase: Uuid,
}

/// [`LockBuyersPurchases`] for a delivery: only if the event's inbox row counts exactly
/// `deliveries`, the deliveries of it the transaction recorded (the event was new). A type of
/// its own: the prepared statement is cached by the statement's type.
#[derive(Debug, Clone, QueryId)]
pub(crate) struct LockForFirstDelivery {
    pub purchase: Uuid,
    pub event_id: String,
    pub deliveries: i32,
}

/// What the two locks render: the query diesel's builder writes (the delivery's condition,
/// its event and delivery count, only with `first_delivery_of`).
fn lock_buyers_purchases_built(
    purchase: Uuid,
    first_delivery_of: Option<(&str, i32)>,
) -> Box<dyn QueryFragment<Pg> + '_> {
    let target = diesel::alias!(purchases as target);
    let of_target = target.filter(target.field(purchases::id).eq(purchase));
    let buyers_purchases = purchases::table
        .filter(
            purchases::user_id.nullable().eq(of_target
                .select(target.field(purchases::user_id))
                .single_value()),
        )
        .filter(
            purchases::course_id.nullable().eq(of_target
                .select(target.field(purchases::course_id))
                .single_value()),
        )
        // One order for every locker, so that two of them never wait on each other.
        .order(purchases::id)
        .select(PurchaseRow::as_select());
    match first_delivery_of {
        None => Box::new(buyers_purchases.for_no_key_update()),
        // Evaluated once, before any row is read: a redelivery reads and locks nothing.
        Some((event_id, deliveries)) => Box::new(
            buyers_purchases
                .filter(diesel::dsl::exists(
                    webhook_events::table
                        .filter(webhook_events::event_id.eq(event_id))
                        .filter(webhook_events::delivery_count.eq(deliveries)),
                ))
                .for_no_key_update(),
        ),
    }
}

static LOCK_BUYERS_PURCHASES: LazyLock<Result<Rendered, String>> =
    LazyLock::new(|| Rendered::of(&lock_buyers_purchases_built(Uuid::nil(), None), 4));

static LOCK_FOR_FIRST_DELIVERY: LazyLock<Result<Rendered, String>> =
    LazyLock::new(|| Rendered::of(&lock_buyers_purchases_built(Uuid::nil(), Some(("", 1))), 6));

/// The `LIMIT 1` of each subquery `single_value` writes.
static ONE_ROW: i64 = 1;

impl Query for LockBuyersPurchases {
    type SqlType = AsSelect<PurchaseRow, Pg>;
}

impl QueryFragment<Pg> for LockBuyersPurchases {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The buyer's subquery (`WHERE id = $n LIMIT $m`), then the course's.
        replay!(out, text(&LOCK_BUYERS_PURCHASES)?;
            sql_types::Uuid => &self.purchase,
            sql_types::BigInt => &ONE_ROW,
            sql_types::Uuid => &self.purchase,
            sql_types::BigInt => &ONE_ROW,
        )
    }
}

impl Query for LockForFirstDelivery {
    type SqlType = AsSelect<PurchaseRow, Pg>;
}

impl QueryFragment<Pg> for LockForFirstDelivery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The two subqueries', then the inbox row's.
        replay!(out, text(&LOCK_FOR_FIRST_DELIVERY)?;
            sql_types::Uuid => &self.purchase,
            sql_types::BigInt => &ONE_ROW,
            sql_types::Uuid => &self.purchase,
            sql_types::BigInt => &ONE_ROW,
            sql_types::Text => &self.event_id,
            sql_types::Integer => &self.deliveries,
        )
    }
}

/// [`upsert_event`](crate::upsert_event)'s statement for a gateway delivery: the inbox row
/// inserted, or its delivery counted; returns the count. Every column is bound, a `None` as
/// `NULL`, so that there is one statement text whatever the row holds.
#[derive(Debug, QueryId)]
pub(crate) struct UpsertDelivery {
    pub row: WebhookEventRow,
}

/// What [`UpsertDelivery`] renders: each column set from `row` by name.
fn upsert_delivery_built(row: &WebhookEventRow) -> impl QueryFragment<Pg> + '_ {
    use webhook_events as e;
    diesel::insert_into(e::table)
        .values((
            e::event_id.eq(&row.event_id),
            e::event_type.eq(&row.event_type),
            e::purchase_id.eq(&row.purchase_id),
            e::first_received_at.eq(&row.first_received_at),
            e::payload.eq(&row.payload),
            e::livemode.eq(&row.livemode),
            e::created.eq(&row.created),
            e::last_received_at.eq(&row.last_received_at),
            e::delivery_count.eq(&row.delivery_count),
            e::outcome.eq(&row.outcome),
            e::error.eq(&row.error),
        ))
        .on_conflict(e::event_id)
        .do_update()
        .set((
            e::delivery_count.eq(e::delivery_count + 1),
            e::last_received_at.eq(excluded(e::last_received_at)),
        ))
        .returning(e::delivery_count)
}

static UPSERT_DELIVERY: LazyLock<Result<Rendered, String>> = LazyLock::new(|| {
    let row = WebhookEventRow {
        event_id: String::new(),
        event_type: String::new(),
        purchase_id: None,
        first_received_at: OffsetDateTime::UNIX_EPOCH,
        payload: None,
        livemode: false,
        created: OffsetDateTime::UNIX_EPOCH,
        last_received_at: OffsetDateTime::UNIX_EPOCH,
        delivery_count: 1,
        outcome: String::new(),
        error: None,
    };
    let rendered = Rendered::of(&upsert_delivery_built(&row), 12);
    rendered
});

/// The `+ 1` of the delivery count.
static ONE_DELIVERY: i32 = 1;

impl Query for UpsertDelivery {
    type SqlType = sql_types::Integer;
}

impl QueryFragment<Pg> for UpsertDelivery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use sql_types::{Bool, Integer, Json, Nullable, Text, Timestamptz};
        let row = &self.row;
        // The row's columns in the table's order, then the count's increment.
        replay!(out, text(&UPSERT_DELIVERY)?;
            Text => &row.event_id,
            Text => &row.event_type,
            Nullable<sql_types::Uuid> => &row.purchase_id,
            Timestamptz => &row.first_received_at,
            Nullable<Json> => &row.payload,
            Bool => &row.livemode,
            Timestamptz => &row.created,
            Timestamptz => &row.last_received_at,
            Integer => &row.delivery_count,
            Text => &row.outcome,
            Nullable<Text> => &row.error,
            Integer => &ONE_DELIVERY,
        )
    }
}

/// [`write_merge`](crate::write_merge)'s `UPDATE` of a purchase's state: every column of
/// [`StateRow`] (its changeset sets `NULL` for a `None`), then the purchase's id.
#[derive(Debug)]
pub(crate) struct UpdatePurchaseState<'a> {
    pub purchase: Uuid,
    pub state: &'a StateRow,
}

// By hand: the derive wants a `'static` type.
impl QueryId for UpdatePurchaseState<'_> {
    type QueryId = UpdatePurchaseState<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

// Prepared statements are cached by the statement's type only where it has a static query id.
const _: () = assert!(UpsertDelivery::HAS_STATIC_QUERY_ID);
const _: () = assert!(UpdatePurchaseState::HAS_STATIC_QUERY_ID);
const _: () = assert!(SetEventOutcome::HAS_STATIC_QUERY_ID);

/// What [`UpdatePurchaseState`] renders.
fn update_purchase_state_built(purchase: Uuid, state: &StateRow) -> impl QueryFragment<Pg> + '_ {
    diesel::update(purchases::table.find(purchase)).set(state)
}

static UPDATE_PURCHASE_STATE: LazyLock<Result<Rendered, String>> = LazyLock::new(|| {
    Rendered::of(
        &update_purchase_state_built(Uuid::nil(), &distinct_state(OffsetDateTime::UNIX_EPOCH)),
        38,
    )
});

/// A state row whose every field differs from the others (its test tells them apart in the
/// binds), `at` its times.
fn distinct_state(at: OffsetDateTime) -> StateRow {
    let text = |n: u8| Some(format!("v{n}"));
    StateRow {
        status: "pending".to_owned(),
        payment_intent_id: text(1),
        captured_cents: Some(2),
        captured_currency: text(3),
        paid_at: Some(at),
        bill_currency: text(5),
        bill_subtotal_cents: Some(6),
        bill_discount_cents: Some(7),
        bill_tax_cents: Some(8),
        bill_total_cents: Some(9),
        conversion_currency: text(10),
        conversion_subtotal_cents: Some(11),
        conversion_total_cents: Some(12),
        attempt_failed: true,
        processing: false,
        async_payment_failed: true,
        checkout_expired: false,
        checkout_not_started: true,
        refunded_cents: Some(18),
        refunded_currency: text(19),
        dispute_opened: false,
        dispute_won: true,
        dispute_lost: false,
        accepted_by_operator: true,
        receipt_url: text(24),
        promotion_code: text(25),
        sale_currency: text(26),
        sale_gross_cents: Some(27),
        sale_discount_cents: Some(28),
        sale_tax_cents: Some(29),
        sale_paid_cents: Some(30),
        sale_refunded_cents: Some(31),
        sale_disputes_lost_cents: Some(32),
        sale_net_cents: None,
        sold_at: Some(at + time::Duration::SECOND),
        holds_active_slot: false,
        updated_at: at + time::Duration::MINUTE,
    }
}

impl Query for UpdatePurchaseState<'_> {
    type SqlType = sql_types::Untyped;
}

impl QueryFragment<Pg> for UpdatePurchaseState<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
        let s = self.state;
        // StateRow's fields in their declared order (its changeset's), then `WHERE id`.
        replay!(out, text(&UPDATE_PURCHASE_STATE)?;
            Text => &s.status,
            Nullable<Text> => &s.payment_intent_id,
            Nullable<BigInt> => &s.captured_cents,
            Nullable<Text> => &s.captured_currency,
            Nullable<Timestamptz> => &s.paid_at,
            Nullable<Text> => &s.bill_currency,
            Nullable<BigInt> => &s.bill_subtotal_cents,
            Nullable<BigInt> => &s.bill_discount_cents,
            Nullable<BigInt> => &s.bill_tax_cents,
            Nullable<BigInt> => &s.bill_total_cents,
            Nullable<Text> => &s.conversion_currency,
            Nullable<BigInt> => &s.conversion_subtotal_cents,
            Nullable<BigInt> => &s.conversion_total_cents,
            Bool => &s.attempt_failed,
            Bool => &s.processing,
            Bool => &s.async_payment_failed,
            Bool => &s.checkout_expired,
            Bool => &s.checkout_not_started,
            Nullable<BigInt> => &s.refunded_cents,
            Nullable<Text> => &s.refunded_currency,
            Bool => &s.dispute_opened,
            Bool => &s.dispute_won,
            Bool => &s.dispute_lost,
            Bool => &s.accepted_by_operator,
            Nullable<Text> => &s.receipt_url,
            Nullable<Text> => &s.promotion_code,
            Nullable<Text> => &s.sale_currency,
            Nullable<BigInt> => &s.sale_gross_cents,
            Nullable<BigInt> => &s.sale_discount_cents,
            Nullable<BigInt> => &s.sale_tax_cents,
            Nullable<BigInt> => &s.sale_paid_cents,
            Nullable<BigInt> => &s.sale_refunded_cents,
            Nullable<BigInt> => &s.sale_disputes_lost_cents,
            Nullable<BigInt> => &s.sale_net_cents,
            Nullable<Timestamptz> => &s.sold_at,
            Bool => &s.holds_active_slot,
            Timestamptz => &s.updated_at,
            sql_types::Uuid => &self.purchase,
        )
    }
}

/// [`write_merge`](crate::write_merge)'s `UPDATE` of a delivered event's outcome, when the merge
/// decides it (a purchase held for review): `SET outcome = $1 WHERE event_id = $2`. Rare, but
/// diesel's own `UPDATE` would be prepared again on each call, a round trip of its own inside
/// the delivery's transaction.
#[derive(Debug)]
pub(crate) struct SetEventOutcome<'a> {
    pub event_id: &'a str,
    pub outcome: &'static str,
}

// By hand: the derive wants a `'static` type.
impl QueryId for SetEventOutcome<'_> {
    type QueryId = SetEventOutcome<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// [`EventInbox::count_redelivery`](lms_ports::EventInbox::count_redelivery)'s statement: the
/// event's delivery counted, in a transaction of its own whose commit does not wait for the WAL
/// to reach the disk. The `set_config(.., true)` in its `FROM` lasts until the end of the
/// statement's own (implicit) transaction, whose commit reads it: one statement, one round trip,
/// where `SET LOCAL` would need a `BEGIN` and a `COMMIT` around it. What that risks is what
/// [`commit_count_only`](crate::commit_count_only) risks: a crash of the database server just
/// after the answer loses this one count, never an event. Written by hand: diesel's `UPDATE`
/// has no `FROM`, and its own `UPDATE` would be prepared again on each call.
#[derive(Debug)]
pub(crate) struct CountRedelivery<'a> {
    pub event_id: &'a str,
    pub at: OffsetDateTime,
}

// By hand: the derive wants a `'static` type.
impl QueryId for CountRedelivery<'_> {
    type QueryId = CountRedelivery<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

const _: () = assert!(CountRedelivery::HAS_STATIC_QUERY_ID);

impl Query for CountRedelivery<'_> {
    type SqlType = sql_types::Untyped;
}

impl QueryFragment<Pg> for CountRedelivery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            r#"UPDATE "webhook_events" SET "delivery_count" = "webhook_events"."delivery_count" + 1, "last_received_at" = "#,
        );
        out.push_bind_param::<sql_types::Timestamptz, _>(&self.at)?;
        out.push_sql(
            r#" FROM (SELECT set_config('synchronous_commit', 'off', true)) AS "relaxed" WHERE "webhook_events"."event_id" = "#,
        );
        out.push_bind_param::<sql_types::Text, _>(&self.event_id)
    }
}

/// Prepares, on a new connection, the statements [`write_merge_and_commit`] pipelines with
/// `COMMIT` ([`UpdatePurchaseState`], [`SetEventOutcome`], and `COMMIT` itself), by running
/// each once in a transaction that changes nothing: the updates match no row (the nil id, an
/// empty event id). diesel-async keeps a connection's prepared statements for its whole life,
/// so from then on each of them goes out on its future's first poll, never behind a round
/// trip of its own, which is what lets `COMMIT` follow them safely. Also `BEGIN`, which goes
/// out ahead of every delivery's first statements, and the `SET LOCAL` a redelivery sends
/// with its `COMMIT` ([`commit_count_only`]).
///
/// [`commit_count_only`]: crate::commit_count_only
/// [`write_merge_and_commit`]: crate::write_merge_and_commit
pub(crate) async fn prepare_pipelined_writes(
    conn: &diesel_async::AsyncPgConnection,
) -> QueryResult<()> {
    use crate::group_commit::{execute, Begin, Commit, CommitWithoutFlushWait};
    use diesel_async::RunQueryDsl;
    let state = distinct_state(OffsetDateTime::UNIX_EPOCH);
    execute(conn, Begin).await?;
    UpdatePurchaseState {
        purchase: Uuid::nil(),
        state: &state,
    }
    .execute(&mut &*conn)
    .await?;
    SetEventOutcome {
        event_id: "",
        outcome: "held",
    }
    .execute(&mut &*conn)
    .await?;
    execute(conn, CommitWithoutFlushWait).await?;
    execute(conn, Commit).await
}

/// What [`SetEventOutcome`] renders.
fn set_event_outcome_built<'a>(event_id: &'a str, outcome: &'a str) -> impl QueryFragment<Pg> + 'a {
    diesel::update(webhook_events::table.find(event_id)).set(webhook_events::outcome.eq(outcome))
}

static SET_EVENT_OUTCOME: LazyLock<Result<Rendered, String>> =
    LazyLock::new(|| Rendered::of(&set_event_outcome_built("", ""), 2));

impl Query for SetEventOutcome<'_> {
    type SqlType = sql_types::Untyped;
}

impl QueryFragment<Pg> for SetEventOutcome<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The `SET`, then the `WHERE`.
        replay!(out, text(&SET_EVENT_OUTCOME)?;
            sql_types::Text => &self.outcome,
            sql_types::Text => &self.event_id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::JsonText;

    #[test]
    fn the_buyer_view_replays_the_builders_sql_and_binds() {
        let (user, course) = (Uuid::new_v4(), Uuid::new_v4());
        let built = diesel::debug_query::<Pg, _>(&buyer_view_built(user, course)).to_string();
        let query = BuyerViewQuery { user, course };
        let replayed = diesel::debug_query::<Pg, _>(&query).to_string();
        assert_eq!(replayed, built);
        assert!(built.contains(&user.to_string()) && built.contains(&course.to_string()));
    }

    #[test]
    fn the_locks_replay_the_builders_sql_and_binds() {
        let purchase = Uuid::new_v4();
        let event_id = "evt_1MqqbKLt4dXK03v5";
        let cases = [
            (
                diesel::debug_query::<Pg, _>(&LockBuyersPurchases { purchase }).to_string(),
                lock_buyers_purchases_built(purchase, None),
            ),
            (
                diesel::debug_query::<Pg, _>(&LockForFirstDelivery {
                    purchase,
                    event_id: event_id.to_owned(),
                    deliveries: 3,
                })
                .to_string(),
                lock_buyers_purchases_built(purchase, Some((event_id, 3))),
            ),
        ];
        for (replayed, built) in cases {
            let built = diesel::debug_query::<Pg, _>(&built).to_string();
            assert_eq!(replayed, built);
            assert!(built.contains("FOR NO KEY UPDATE"), "{built}");
        }
    }

    #[test]
    fn the_inbox_upsert_replays_the_builders_sql_and_binds() {
        let at = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap();
        let every_column = WebhookEventRow {
            event_id: "evt_1".to_owned(),
            event_type: "checkout.session.completed".to_owned(),
            purchase_id: Some(Uuid::new_v4()),
            first_received_at: at,
            payload: Some(JsonText::from(r#"{"id":"evt_1"}"#.to_owned())),
            livemode: true,
            created: at - time::Duration::SECOND,
            last_received_at: at + time::Duration::SECOND,
            delivery_count: 2,
            outcome: "applied".to_owned(),
            error: Some("why".to_owned()),
        };
        let no_options = WebhookEventRow {
            purchase_id: None,
            payload: None,
            error: None,
            ..every_column.clone()
        };
        for row in [every_column, no_options] {
            let built = diesel::debug_query::<Pg, _>(&upsert_delivery_built(&row)).to_string();
            // What diesel would prepare again on every call, the replay prepares once.
            assert!(!upsert_delivery_built(&row)
                .is_safe_to_cache_prepared(&Pg)
                .unwrap());
            let upsert = UpsertDelivery { row };
            assert!(upsert.is_safe_to_cache_prepared(&Pg).unwrap());
            let replayed = diesel::debug_query::<Pg, _>(&upsert).to_string();
            assert_eq!(replayed, built);
            assert!(
                built.contains("ON CONFLICT") && built.contains("evt_1"),
                "{built}"
            );
        }
    }

    #[test]
    fn the_state_update_replays_the_builders_sql_and_binds() {
        let purchase = Uuid::new_v4();
        let state = distinct_state(OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap());
        let built = diesel::debug_query::<Pg, _>(&update_purchase_state_built(purchase, &state))
            .to_string();
        let replayed = diesel::debug_query::<Pg, _>(&UpdatePurchaseState {
            purchase,
            state: &state,
        })
        .to_string();
        assert_eq!(replayed, built);
        assert!(built.contains(&purchase.to_string()), "{built}");
        let built = update_purchase_state_built(purchase, &state);
        assert!(!built.is_safe_to_cache_prepared(&Pg).unwrap());
        let replayed = UpdatePurchaseState {
            purchase,
            state: &state,
        };
        assert!(replayed.is_safe_to_cache_prepared(&Pg).unwrap());
    }

    #[test]
    fn the_event_outcome_update_replays_the_builders_sql_and_binds() {
        let built = set_event_outcome_built("evt_1", "held");
        assert!(!built.is_safe_to_cache_prepared(&Pg).unwrap());
        let built = diesel::debug_query::<Pg, _>(&built).to_string();
        let replayed = SetEventOutcome {
            event_id: "evt_1",
            outcome: "held",
        };
        assert!(replayed.is_safe_to_cache_prepared(&Pg).unwrap());
        assert_eq!(diesel::debug_query::<Pg, _>(&replayed).to_string(), built);
        assert!(
            built.contains("UPDATE") && built.contains(r#"["held", "evt_1"]"#),
            "{built}"
        );
    }

    #[test]
    fn a_statement_is_cut_at_each_placeholder_and_nothing_else() {
        let query = users::table
            .filter(users::id.eq(Uuid::nil()))
            .filter(users::session_generation.eq(1_i64))
            .select(users::id);
        let rendered = Rendered::of(&query, 2).unwrap();
        assert_eq!(rendered.parts.len(), 3);
        assert!(rendered.parts[0].ends_with("= "), "{rendered:?}");
        assert!(!rendered.parts.concat().contains('$'), "{rendered:?}");
        let too_few = Rendered::of(&query, 1).unwrap_err();
        assert!(too_few.contains("more than 1 binds"), "{too_few}");
        let too_many = Rendered::of(&query, 3).unwrap_err();
        assert!(too_many.contains("no $3"), "{too_many}");
    }
}
