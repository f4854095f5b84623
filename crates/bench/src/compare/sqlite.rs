//! The SQLite baseline: the app's statements ([`super::sql`]), in the app's order, run on the
//! same file through the same library the app uses (diesel's `SqliteConnection` over the
//! bundled SQLite of `libsqlite3-sys`, statements cached per connection), arranged as the
//! app's store arranges its connections (`crates/sqlite/src/lib.rs`):
//!
//! - one writer connection behind a fair (FIFO) async mutex, `busy_timeout`, `foreign_keys`,
//!   WAL and `synchronous = FULL`: a transaction (`BEGIN IMMEDIATE` .. `COMMIT`) takes it and
//!   runs whole on a blocking thread;
//! - [`READERS`] read connections (`query_only`): every statement outside a transaction takes
//!   one and runs on a blocking thread, as each repository read does.
//!
//! Rows are fetched, but only their first column is decoded (the app decodes them all: that is
//! the app's work, not the database's).

use super::sql::{Backend, Stmt};
use super::workload::{Item, Round, State};
use crate::{closed_loop_with, Run};
use anyhow::{anyhow, Context};
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

/// Read connections beside the writer: `lms_sqlite::SqliteOptions::default().readers`.
pub const READERS: usize = 4;
/// `lms_sqlite::DEFAULT_BUSY_TIMEOUT`, in milliseconds.
const BUSY_TIMEOUT_MS: u32 = 5000;

/// The writer's per-connection settings (`writer_setup` in `crates/sqlite/src/lib.rs`).
fn writer_setup() -> String {
    format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; \
         PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
    )
}

/// A reader's (`reader_setup`).
fn reader_setup() -> String {
    format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;"
    )
}

#[derive(QueryableByName)]
struct First {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = id)]
    _id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    delivery_count: i32,
}

/// The writer and the readers, shared by every concurrent client.
pub struct Store {
    writer: tokio::sync::Mutex<Option<SqliteConnection>>,
    readers: Mutex<Vec<SqliteConnection>>,
    reader_slots: Semaphore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// What one request works on, moved to a blocking thread.
struct Request {
    item: Arc<Item>,
    state: Arc<State>,
    delivery_count: i32,
    now: i64,
}

impl Store {
    /// Opens the file with the app's settings.
    ///
    /// # Errors
    /// When a connection cannot be opened or configured.
    pub fn open(file: &Path) -> anyhow::Result<Self> {
        let url = file.display().to_string();
        let mut writer = SqliteConnection::establish(&url).context("opening the SQLite file")?;
        writer.batch_execute(&writer_setup())?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let mut reader = SqliteConnection::establish(&url)?;
            reader.batch_execute(&reader_setup())?;
            readers.push(reader);
        }
        Ok(Self {
            writer: tokio::sync::Mutex::new(Some(writer)),
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
        })
    }

    /// Runs `statements` as one transaction on the writer, after the writes queued before.
    async fn write(&self, statements: Vec<Stmt>, request: Request) -> Result<(), String> {
        let mut guard = self.writer.lock().await;
        let mut conn = guard.take().ok_or("the writer was lost to a panic")?;
        let (conn, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = statements
                .iter()
                .try_for_each(|&stmt| execute(&mut conn, stmt, &request));
            if outcome.is_err() {
                let _ = conn.batch_execute("ROLLBACK");
            }
            (conn, outcome)
        })
        .await
        .map_err(|e| format!("a writer task failed: {e}"))?;
        *guard = Some(conn);
        outcome
    }

    /// Runs one statement on a read connection.
    async fn read(&self, stmt: Stmt, request: Request) -> Result<(), String> {
        let _slot = self
            .reader_slots
            .acquire()
            .await
            .map_err(|e| e.to_string())?;
        let mut conn = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or("no read connection left")?;
        let (conn, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = execute(&mut conn, stmt, &request);
            (conn, outcome)
        })
        .await
        .map_err(|e| format!("a reader task failed: {e}"))?;
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        outcome
    }

    /// One request: each transaction (`Begin` .. `Commit`) and each write outside one on the
    /// writer, each read on a reader, in order.
    async fn request(
        &self,
        sequence: &[Stmt],
        item: &Arc<Item>,
        state: &Arc<State>,
        delivery_count: i32,
    ) -> Result<(), String> {
        let now = nanos(OffsetDateTime::now_utc());
        let request = || Request {
            item: Arc::clone(item),
            state: Arc::clone(state),
            delivery_count,
            now,
        };
        let mut rest = sequence;
        while let Some((&stmt, after)) = rest.split_first() {
            if stmt == Stmt::Begin {
                let end = rest
                    .iter()
                    .position(|s| *s == Stmt::Commit)
                    .ok_or("a transaction without COMMIT")?;
                self.write(rest[..=end].to_vec(), request()).await?;
                rest = &rest[end + 1..];
            } else if stmt == Stmt::CountRedelivery {
                // A write outside a transaction: on the writer all the same.
                self.write(vec![stmt], request()).await?;
                rest = after;
            } else {
                self.read(stmt, request()).await?;
                rest = after;
            }
        }
        Ok(())
    }
}

/// Runs one statement with the request's binds, as the app's diesel query binds them.
fn execute(conn: &mut SqliteConnection, stmt: Stmt, request: &Request) -> Result<(), String> {
    let sql = stmt.text(Backend::Sqlite);
    let item = &request.item;
    let failed = |err: diesel::result::Error| format!("{stmt:?}: {err}");
    let one_row = |rows: Vec<First>, what: &str| {
        if rows.is_empty() {
            Err(format!("{stmt:?}: no {what}"))
        } else {
            Ok(())
        }
    };
    match stmt {
        Stmt::Begin | Stmt::Commit => conn.batch_execute(sql).map_err(failed),
        Stmt::CountRedelivery => {
            let counted = diesel::sql_query(sql)
                .bind::<Integer, _>(1)
                .bind::<BigInt, _>(request.now)
                .bind::<Text, _>(&item.event_id)
                .execute(conn)
                .map_err(failed)?;
            if counted == 1 {
                Ok(())
            } else {
                Err(format!("the redelivery counted {counted} events"))
            }
        }
        Stmt::UpsertEvent => {
            let count: Count = diesel::sql_query(sql)
                .bind::<Text, _>(&item.event_id)
                .bind::<Text, _>(&item.event_type)
                .bind::<Nullable<Text>, _>(Some(item.purchase_id.to_string()))
                .bind::<BigInt, _>(request.now)
                .bind::<Nullable<Text>, _>(Some(&item.payload))
                .bind::<Bool, _>(item.livemode)
                .bind::<BigInt, _>(nanos(item.created))
                .bind::<BigInt, _>(request.now)
                .bind::<Integer, _>(1)
                .bind::<Text, _>("applied")
                .bind::<Integer, _>(1)
                .get_result(conn)
                .map_err(failed)?;
            if count.delivery_count == request.delivery_count {
                Ok(())
            } else {
                Err(format!(
                    "the inbox upsert returned delivery count {}, expected {}",
                    count.delivery_count, request.delivery_count
                ))
            }
        }
        Stmt::LockPurchases => {
            let rows = diesel::sql_query(sql)
                .bind::<Text, _>(item.purchase_id.to_string())
                .bind::<BigInt, _>(1)
                .bind::<Text, _>(item.purchase_id.to_string())
                .bind::<BigInt, _>(1)
                .load(conn)
                .map_err(failed)?;
            one_row(rows, "purchase")
        }
        Stmt::UpdatePurchase => {
            let state = &request.state;
            let updated = diesel::sql_query(sql)
                .bind::<Text, _>(&state.status)
                .bind::<Nullable<Text>, _>(Some(&item.payment_intent))
                .bind::<Nullable<BigInt>, _>(state.captured_cents)
                .bind::<Nullable<Text>, _>(&state.captured_currency)
                .bind::<Nullable<BigInt>, _>(Some(nanos(item.created)))
                .bind::<Nullable<Text>, _>(&state.bill_currency)
                .bind::<Nullable<BigInt>, _>(state.bill_subtotal_cents)
                .bind::<Nullable<BigInt>, _>(state.bill_discount_cents)
                .bind::<Nullable<BigInt>, _>(state.bill_tax_cents)
                .bind::<Nullable<BigInt>, _>(state.bill_total_cents)
                .bind::<Nullable<Text>, _>(&state.conversion_currency)
                .bind::<Nullable<BigInt>, _>(state.conversion_subtotal_cents)
                .bind::<Nullable<BigInt>, _>(state.conversion_total_cents)
                .bind::<Bool, _>(state.attempt_failed)
                .bind::<Bool, _>(state.processing)
                .bind::<Bool, _>(state.async_payment_failed)
                .bind::<Bool, _>(state.checkout_expired)
                .bind::<Bool, _>(state.checkout_not_started)
                .bind::<Nullable<BigInt>, _>(state.refunded_cents)
                .bind::<Nullable<Text>, _>(&state.refunded_currency)
                .bind::<Bool, _>(state.dispute_opened)
                .bind::<Bool, _>(state.dispute_won)
                .bind::<Bool, _>(state.dispute_lost)
                .bind::<Bool, _>(state.accepted_by_operator)
                .bind::<Nullable<Text>, _>(&state.receipt_url)
                .bind::<Nullable<Text>, _>(&state.promotion_code)
                .bind::<Nullable<Text>, _>(&state.sale_currency)
                .bind::<Nullable<BigInt>, _>(state.sale_gross_cents)
                .bind::<Nullable<BigInt>, _>(state.sale_discount_cents)
                .bind::<Nullable<BigInt>, _>(state.sale_tax_cents)
                .bind::<Nullable<BigInt>, _>(state.sale_paid_cents)
                .bind::<Nullable<BigInt>, _>(state.sale_refunded_cents)
                .bind::<Nullable<BigInt>, _>(state.sale_disputes_lost_cents)
                .bind::<Nullable<BigInt>, _>(state.sale_net_cents)
                // sold_at: when the payment completed, as paid_at.
                .bind::<Nullable<BigInt>, _>(
                    state.sale_currency.as_ref().map(|_| nanos(item.created)),
                )
                .bind::<Bool, _>(state.holds_active_slot)
                .bind::<BigInt, _>(request.now)
                .bind::<Text, _>(item.purchase_id.to_string())
                .execute(conn)
                .map_err(failed)?;
            if updated == 1 {
                Ok(())
            } else {
                Err(format!("the purchase update changed {updated} rows"))
            }
        }
        Stmt::BuyerView => {
            let rows = diesel::sql_query(sql)
                .bind::<Text, _>(item.course_id.to_string())
                .bind::<Text, _>(item.course_id.to_string())
                .bind::<Text, _>(item.user_id.to_string())
                .load(conn)
                .map_err(failed)?;
            one_row(rows, "user")
        }
    }
}

/// Runs the round from its `concurrency` clients sharing one [`Store`] (closed loop).
///
/// # Errors
/// When there is nothing to run or a client task panics.
pub async fn run(store: Arc<Store>, round: Round) -> anyhow::Result<Run> {
    let Round {
        sequence,
        items,
        requests,
        concurrency,
        state,
        delivery_count,
    } = round;
    let items: Arc<Vec<Arc<Item>>> = Arc::new(items.iter().cloned().map(Arc::new).collect());
    if items.is_empty() {
        return Err(anyhow!("no items"));
    }
    let workers: Vec<Arc<Store>> = (0..concurrency).map(|_| Arc::clone(&store)).collect();
    closed_loop_with(workers, requests, move |store, i| {
        let (items, state) = (Arc::clone(&items), Arc::clone(&state));
        async move {
            let item = &items[i % items.len()];
            let outcome = store.request(sequence, item, &state, delivery_count).await;
            (store, outcome)
        }
    })
    .await
}
