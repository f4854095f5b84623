//! The PostgreSQL baseline: the app's statements ([`super::sql`]), in the app's order, sent
//! by `tokio-postgres` straight to the same database, one connection per concurrent client
//! (as `pgbench -c C` would), every statement prepared once per connection before the clock
//! starts, as diesel-async's statement cache does for the app. One round trip per statement,
//! as the app does, except the runs the app pipelines ([`Stmt::pipelined`]: `BEGIN`, the
//! inbox upsert and the lock; a first delivery's `UPDATE` and `COMMIT`), sent together. Transaction control is prepared too, as the app
//! sends it. Bind values have the app's types; the JSON payload goes over the wire as its
//! text, as the app's `JsonText` sends it.

use super::sql::{Backend, Stmt};
use super::workload::{Item, Round, State};
use crate::{closed_loop_with, Run};
use anyhow::Context;
use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

/// JSON text sent as is (`json`'s binary format is its text).
#[derive(Debug)]
struct RawJson<'a>(&'a str);

impl ToSql for RawJson<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON
    }

    to_sql_checked!();
}

/// One client: a connection and its prepared statements.
pub struct Worker {
    client: Client,
    prepared: HashMap<Stmt, Statement>,
    connection: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Worker {
    /// Connects to `url` and prepares the statements of `sequence`.
    ///
    /// # Errors
    /// When the connection or a statement fails.
    pub async fn connect(url: &str, sequence: &[Stmt]) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .context("connecting the baseline client to PostgreSQL")?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut prepared = HashMap::new();
        for &stmt in sequence {
            if prepared.contains_key(&stmt) {
                continue;
            }
            let sql = stmt.text(Backend::Postgres).to_owned();
            // diesel declares each bind's type; the server infers the same ones from the
            // columns.
            let statement = client
                .prepare_typed(&sql, &[])
                .await
                .with_context(|| format!("preparing {sql}"))?;
            prepared.insert(stmt, statement);
        }
        Ok(Self {
            client,
            prepared,
            connection,
        })
    }

    fn statement(&self, stmt: Stmt) -> Result<&Statement, String> {
        self.prepared
            .get(&stmt)
            .ok_or_else(|| format!("{stmt:?} was not prepared"))
    }

    /// Runs one request's statements for `item`. `delivery_count` is what the inbox upsert
    /// must return (1: first delivery, 2: duplicate); `state` is what the `UPDATE` writes.
    async fn request(
        &self,
        sequence: &[Stmt],
        item: &Item,
        state: &State,
        delivery_count: i32,
    ) -> Result<(), String> {
        let now = OffsetDateTime::now_utc();
        let mut rest = sequence;
        while !rest.is_empty() {
            let run = 1 + rest
                .windows(2)
                .take_while(|pair| Stmt::pipelined(Backend::Postgres, pair[0], pair[1]))
                .count();
            let (run, after) = rest.split_at(run);
            let execute = |stmt| self.execute(stmt, item, state, delivery_count, now);
            // A run is sent together, as the app sends it (tokio-postgres pipelines the queries
            // of one client polled at the same time); every answer is checked, in order.
            match *run {
                [stmt] => execute(stmt).await?,
                [first, second] => {
                    let (first, second) = tokio::join!(execute(first), execute(second));
                    first.and(second)?;
                }
                [first, second, third] => {
                    let (first, second, third) =
                        tokio::join!(execute(first), execute(second), execute(third));
                    first.and(second).and(third)?;
                }
                _ => {
                    return Err(format!(
                        "no pipelined run of {} statements: {run:?}",
                        run.len()
                    ))
                }
            }
            rest = after;
        }
        Ok(())
    }

    /// Runs one statement with the request's binds.
    async fn execute(
        &self,
        stmt: Stmt,
        item: &Item,
        state: &State,
        delivery_count: i32,
        now: OffsetDateTime,
    ) -> Result<(), String> {
        let failed = |stmt: Stmt, err: &dyn std::fmt::Display| format!("{stmt:?}: {err}");
        match stmt {
            Stmt::Begin | Stmt::Commit => {
                self.client
                    .execute(self.statement(stmt)?, &[])
                    .await
                    .map_err(|e| failed(stmt, &e))?;
            }
            Stmt::UpsertEvent => {
                let row = self
                    .client
                    .query_one(
                        self.statement(stmt)?,
                        &[
                            &item.event_id,
                            &item.event_type,
                            &item.purchase_id,
                            &now,
                            &RawJson(&item.payload),
                            &item.livemode,
                            &item.created,
                            &now,
                            &1_i32,
                            &"applied",
                            &None::<&str>,
                            &1_i32,
                        ],
                    )
                    .await
                    .map_err(|e| failed(stmt, &e))?;
                let count: i32 = row.try_get(0).map_err(|e| failed(stmt, &e))?;
                if count != delivery_count {
                    return Err(format!(
                            "the inbox upsert returned delivery count {count}, expected {delivery_count}"
                        ));
                }
            }
            Stmt::CountRedelivery => {
                let counted = self
                    .client
                    .execute(self.statement(stmt)?, &[&now, &item.event_id])
                    .await
                    .map_err(|e| failed(stmt, &e))?;
                if counted != 1 {
                    return Err(format!("the redelivery counted {counted} events"));
                }
            }
            Stmt::LockPurchases => {
                let rows = self
                    .client
                    .query(
                        self.statement(stmt)?,
                        &[
                            &item.purchase_id,
                            &1_i64,
                            &item.purchase_id,
                            &1_i64,
                            &item.event_id,
                            &1_i32,
                        ],
                    )
                    .await
                    .map_err(|e| failed(stmt, &e))?;
                // A redelivery's lock reads nothing.
                if rows.is_empty() == (delivery_count == 1) {
                    return Err(format!(
                        "the lock of delivery {delivery_count} of purchase {} read {} rows",
                        item.purchase_id,
                        rows.len()
                    ));
                }
            }
            Stmt::UpdatePurchase => {
                let updated = self
                    .client
                    .execute(
                        self.statement(stmt)?,
                        &[
                            &state.status,
                            &Some(item.payment_intent.as_str()),
                            &state.captured_cents,
                            &state.captured_currency,
                            &Some(item.created),
                            &state.bill_currency,
                            &state.bill_subtotal_cents,
                            &state.bill_discount_cents,
                            &state.bill_tax_cents,
                            &state.bill_total_cents,
                            &state.conversion_currency,
                            &state.conversion_subtotal_cents,
                            &state.conversion_total_cents,
                            &state.attempt_failed,
                            &state.processing,
                            &state.async_payment_failed,
                            &state.checkout_expired,
                            &state.checkout_not_started,
                            &state.refunded_cents,
                            &state.refunded_currency,
                            &state.dispute_opened,
                            &state.dispute_won,
                            &state.dispute_lost,
                            &state.accepted_by_operator,
                            &state.receipt_url,
                            &state.promotion_code,
                            &state.sale_currency,
                            &state.sale_gross_cents,
                            &state.sale_discount_cents,
                            &state.sale_tax_cents,
                            &state.sale_paid_cents,
                            &state.sale_refunded_cents,
                            &state.sale_disputes_lost_cents,
                            &state.sale_net_cents,
                            // sold_at: when the payment completed, as paid_at.
                            &state.sale_currency.as_ref().map(|_| item.created),
                            &state.holds_active_slot,
                            &now,
                            &item.purchase_id,
                        ],
                    )
                    .await
                    .map_err(|e| failed(stmt, &e))?;
                if updated != 1 {
                    return Err(format!("the purchase update changed {updated} rows"));
                }
            }
            Stmt::BuyerView => {
                let rows = self
                    .client
                    .query(
                        self.statement(stmt)?,
                        &[&item.course_id, &item.course_id, &item.user_id],
                    )
                    .await
                    .map_err(|e| failed(stmt, &e))?;
                if rows.is_empty() {
                    return Err(format!("{stmt:?}: no user {}", item.user_id));
                }
            }
        }
        Ok(())
    }
}

/// `concurrency` connections with `sequence` prepared on each.
///
/// # Errors
/// When a connection cannot be made or a statement prepared.
pub async fn connect(
    url: &str,
    sequence: &[Stmt],
    concurrency: usize,
) -> anyhow::Result<Vec<Worker>> {
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        workers.push(Worker::connect(url, sequence).await?);
    }
    Ok(workers)
}

/// Runs the round from the workers' connections (closed loop, one client each; the round's
/// concurrency is the number of workers).
///
/// # Errors
/// When a client task panics.
pub async fn run(workers: Vec<Worker>, round: Round) -> anyhow::Result<Run> {
    let Round {
        sequence,
        items,
        requests,
        state,
        delivery_count,
        ..
    } = round;
    closed_loop_with(workers, requests, move |worker, i| {
        let (items, state) = (Arc::clone(&items), Arc::clone(&state));
        async move {
            let item = &items[i % items.len()];
            let mut outcome = worker.request(sequence, item, &state, delivery_count).await;
            if outcome.is_err() && sequence.contains(&Stmt::Begin) {
                // Leave the connection usable for the next request (the error is kept).
                if let Err(err) = worker.client.batch_execute("ROLLBACK").await {
                    outcome = outcome.map_err(|first| format!("{first}; ROLLBACK: {err}"));
                }
            }
            (worker, outcome)
        }
    })
    .await
}
