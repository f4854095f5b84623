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

use std::sync::LazyLock;

use diesel::dsl::AsSelect;
use diesel::expression::SelectableHelper;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};
use diesel::sql_types;
use uuid::Uuid;

use crate::rows::{CourseRow, PurchaseRow, UserRow};
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

/// [`PurchaseRepo::buyer_view`](lms_ports::PurchaseRepo::buyer_view)'s one statement: the user's
/// row, joined to the course's (if any) and to each of the user's purchases of it (served by
/// purchases_user_course_created_idx, newest first).
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
        .order((purchases::created_at.desc(), purchases::id.desc()))
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
        let text = text(&BUYER_VIEW)?;
        // The binds in the builder's order: the course twice (both joins), then the user.
        out.push_sql(&text.parts[0]);
        out.push_bind_param::<sql_types::Uuid, _>(&self.course)?;
        out.push_sql(&text.parts[1]);
        out.push_bind_param::<sql_types::Uuid, _>(&self.course)?;
        out.push_sql(&text.parts[2]);
        out.push_bind_param::<sql_types::Uuid, _>(&self.user)?;
        out.push_sql(&text.parts[3]);
        Ok(())
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
        let text = text(&LOCK_BUYERS_PURCHASES)?;
        // The binds in the builder's order: the buyer's subquery, then the course's.
        walk_subqueries(&mut out, text, &self.purchase)?;
        out.push_sql(&text.parts[4]);
        Ok(())
    }
}

impl Query for LockForFirstDelivery {
    type SqlType = AsSelect<PurchaseRow, Pg>;
}

impl QueryFragment<Pg> for LockForFirstDelivery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let text = text(&LOCK_FOR_FIRST_DELIVERY)?;
        // The binds in the builder's order: the two subqueries', then the inbox row's.
        walk_subqueries(&mut out, text, &self.purchase)?;
        out.push_sql(&text.parts[4]);
        out.push_bind_param::<sql_types::Text, _>(&self.event_id)?;
        out.push_sql(&text.parts[5]);
        out.push_bind_param::<sql_types::Integer, _>(&self.deliveries)?;
        out.push_sql(&text.parts[6]);
        Ok(())
    }
}

/// The first four parts of a lock and their binds: the subqueries reading the purchase's buyer
/// and course, each `WHERE id = $n LIMIT $m`.
fn walk_subqueries<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    text: &'b Rendered,
    purchase: &'b Uuid,
) -> QueryResult<()> {
    for subquery in [0, 2] {
        out.push_sql(&text.parts[subquery]);
        out.push_bind_param::<sql_types::Uuid, _>(purchase)?;
        out.push_sql(&text.parts[subquery + 1]);
        out.push_bind_param::<sql_types::BigInt, _>(&ONE_ROW)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
