//! Embedded SQLite adapter of the storage ports: [`SqliteStore`] implements [`UserRepo`],
//! [`CourseRepo`], [`PurchaseRepo`], [`EventInbox`], [`AuditLog`], [`DeploymentRegistry`] and
//! [`StorageHealth`] exactly as the PostgreSQL adapter does (same schema, same constraint
//! meanings, same contract suite), in one local file and with SQLite compiled in: nothing to
//! install or start on a fresh machine.
//!
//! # Connections and concurrency
//! SQLite allows one writer at a time. The store keeps
//! * **one writer connection** behind a fair (FIFO) tokio mutex: every write (and the
//!   migrations) takes it, so writes are serialised in the process without busy-waiting, and
//!   each multi-statement write is one `BEGIN IMMEDIATE` transaction (the write lock is taken
//!   up front, so another process sharing the file cannot interleave or deadlock it; its
//!   waits are bounded by `busy_timeout`);
//! * **a small pool of read connections** (`query_only`), which read concurrently with the
//!   writer thanks to WAL mode, each read seeing the last committed state.
//!
//! An in-memory database (`:memory:`) has a single connection, the writer, which then also
//! serves the reads: every connection to `:memory:` would otherwise be a database of its own.
//!
//! Every operation runs as one closure on a blocking thread, through diesel-async's
//! [`SyncConnectionWrapper`]: a transaction is begun, run and committed (or rolled back) inside
//! that closure, so a caller that gives up waiting (a cancelled request) can never leave the
//! writer inside an open transaction.
//!
//! Each connection gets `foreign_keys = ON` and `busy_timeout`; the file is put in WAL mode
//! with `synchronous = FULL` (a committed webhook is on disk before Stripe hears 200).
//!
//! # Migrations
//! [`SqliteStore::open`] runs the pending embedded migrations (`crates/sqlite/migrations/`)
//! before returning: the schema is part of the binary and the file is local, so there is no
//! separate `migrate` step to forget. [`SqliteStore::open_with`] with
//! [`SqliteOptions::migrate`] `false` leaves the schema alone, for [`SqliteStore::run_migrations`]
//! and [`SqliteStore::revert_all_migrations`].

mod error;
mod migrate;
mod rows;
mod schema;
mod target;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diesel::connection::{AnsiTransactionManager, TransactionManager, TransactionManagerStatus};
use diesel::prelude::*;
use diesel::query_builder::InsertStatement;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use lms_domain::{
    CheckoutSession, Course, CourseId, Email, Purchase, PurchaseId, PurchaseStatus, Role, User,
    UserId,
};
use lms_ports::{
    Applied, AuditEntry, AuditLog, BuyerView, CourseRepo, DeliveryKind, DeploymentClaim,
    DeploymentRegistry, EventDelivery, EventFilter, EventInbox, EventOutcome, FactUpdate,
    InboxRecord, Page, PageRequest, PaymentsMode, PurchaseRepo, PurchasedCourse, Recorded,
    RefundLease, RepoError, RevenueLine, RevenueQuery, StorageHealth, Unapplied, UserRepo,
};
use lms_sql_rows::RefundLeaseMiss;
use time::OffsetDateTime;

use crate::error::{from_connection, from_diesel, from_pool, TxError};
use crate::rows::{
    id_text, instant, nanos, AuditRow, CourseRow, PurchaseRow, RevenueRow, StateRow, UserRow,
    WebhookEventRow,
};
use crate::schema::{audit_log, courses, deployment, purchases, users, webhook_events};
use crate::target::Target;

pub use crate::migrate::embedded_migration_versions;

/// A diesel SQLite connection driven from async code: each call runs on a blocking thread.
type Conn = SyncConnectionWrapper<SqliteConnection>;

/// How long a request waits for the writer or a read connection before failing with
/// [`RepoError::Unavailable`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long SQLite waits for a lock held by another connection (another process sharing the
/// file, or the writer checkpointing) before failing with [`RepoError::Unavailable`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Read connections besides the writer (ignored in memory, where there is only one
    /// connection; 0 makes the writer serve the reads too).
    pub readers: u32,
    /// See [`DEFAULT_ACQUIRE_TIMEOUT`].
    pub acquire_timeout: Duration,
    /// See [`DEFAULT_BUSY_TIMEOUT`].
    pub busy_timeout: Duration,
    /// Run the pending embedded migrations when opening.
    pub migrate: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            readers: 4,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            migrate: true,
        }
    }
}

/// The SQLite store. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    writer: tokio::sync::Mutex<Conn>,
    /// `None` in memory (or with no readers configured): the writer serves the reads.
    readers: Option<Pool<Conn>>,
    acquire_timeout: Duration,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("SqliteStore");
        debug.field("database", &self.inner.target.describe());
        if let Some(readers) = &self.inner.readers {
            let state = readers.state();
            debug
                .field("read_connections", &state.connections)
                .field("idle_read_connections", &state.idle_connections);
        }
        debug.finish_non_exhaustive()
    }
}

/// `busy_timeout` takes a C int of milliseconds.
fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

/// Per-connection settings of the writer. `journal_mode` is stored in the file: once WAL,
/// every later connection opens it in WAL (in memory it stays `memory`).
fn writer_setup(busy_timeout: Duration) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; \
         PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
        millis(busy_timeout)
    )
}

/// Per-connection settings of a reader: a write through it fails instead of bypassing the
/// writer's serialisation.
fn reader_setup(busy_timeout: Duration) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;",
        millis(busy_timeout)
    )
}

/// Runs `work` on the connection's blocking thread. Should `work` panic (a bug), the panic
/// is reported as [`RepoError::Unexpected`] and any transaction it left open is rolled back:
/// otherwise every later write on the connection would run inside that transaction, never
/// committed.
async fn on<T, F>(conn: &mut Conn, work: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: FnOnce(&mut SqliteConnection) -> Result<T, RepoError> + Send + 'static,
{
    conn.spawn_blocking(move |conn| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(RepoError::unexpected("a storage operation panicked")));
        close_dangling_transaction(conn);
        Ok(outcome)
    })
    .await
    .map_err(from_diesel)?
}

fn close_dangling_transaction(conn: &mut SqliteConnection) {
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    if matches!(status.transaction_depth(), Ok(None)) {
        return;
    }
    tracing::error!("a storage operation left a transaction open; rolling it back");
    *status = TransactionManagerStatus::default();
    // Fails only when SQLite has no transaction open, which is what we want.
    let _ = diesel::connection::SimpleConnection::batch_execute(conn, "ROLLBACK");
}

impl SqliteStore {
    /// Opens (creating it, and its directory, if needed) the database at `target` with the
    /// default [`SqliteOptions`], and runs the pending migrations. `target` is
    /// `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, a plain path, or `:memory:`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the file cannot be opened or created (or stays locked
    /// by another process beyond the busy timeout); [`RepoError::Unexpected`] for an empty
    /// path or a failed migration.
    pub async fn open(target: &str) -> Result<Self, RepoError> {
        Self::open_with(target, SqliteOptions::default()).await
    }

    /// [`SqliteStore::open`] with explicit options.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_with(target: &str, options: SqliteOptions) -> Result<Self, RepoError> {
        let target = Target::parse(target)?;
        target.ensure_directory()?;
        let mut writer = Conn::establish(&target.url)
            .await
            .map_err(from_connection)?;
        writer
            .batch_execute(&writer_setup(options.busy_timeout))
            .await
            .map_err(from_diesel)?;
        let readers = (!target.in_memory() && options.readers > 0)
            .then(|| reader_pool(&target.url, &options));
        let store = Self {
            inner: Arc::new(Inner {
                target,
                writer: tokio::sync::Mutex::new(writer),
                readers,
                acquire_timeout: options.acquire_timeout,
            }),
        };
        if options.migrate {
            let applied = store.run_migrations().await?;
            if !applied.is_empty() {
                tracing::info!(?applied, database = %store.inner.target.describe(), "SQLite migrations applied");
            }
        }
        Ok(store)
    }

    /// Applies every pending embedded migration; returns the versions applied (empty when up
    /// to date).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] when a migration fails (it is rolled back).
    pub async fn run_migrations(&self) -> Result<Vec<String>, RepoError> {
        self.write(migrate::run_pending).await
    }

    /// Reverts every applied migration, newest first; returns the versions reverted.
    ///
    /// # Errors
    /// As [`SqliteStore::run_migrations`].
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>, RepoError> {
        self.write(migrate::revert_all).await
    }

    /// Runs `work` on the writer connection, after the writes queued before it.
    async fn write<T, F>(&self, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, RepoError> + Send + 'static,
    {
        let mut writer = tokio::time::timeout(self.inner.acquire_timeout, self.inner.writer.lock())
            .await
            .map_err(|_| RepoError::unavailable("timed out waiting for the SQLite writer"))?;
        on(&mut writer, work).await
    }

    /// Inserts one row, on the writer.
    async fn insert<T, R>(&self, table: T, row: R) -> Result<(), RepoError>
    where
        T: Table + Send + 'static,
        R: Insertable<T> + Send + 'static,
        InsertStatement<T, R::Values>: ExecuteDsl<SqliteConnection>,
    {
        self.write(move |conn| {
            diesel::insert_into(table)
                .values(row)
                .execute(conn)
                .map(drop)
                .map_err(from_diesel)
        })
        .await
    }

    /// Runs `work` on a read connection (the writer when there is none).
    async fn read<T, F>(&self, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, RepoError> + Send + 'static,
    {
        match &self.inner.readers {
            Some(readers) => {
                let mut conn = readers.get().await.map_err(from_pool)?;
                on(&mut conn, work).await
            }
            None => self.write(work).await,
        }
    }
}

/// Read connections, made on first use and configured as they are made.
fn reader_pool(url: &str, options: &SqliteOptions) -> Pool<Conn> {
    let setup = reader_setup(options.busy_timeout);
    let mut config = ManagerConfig::<Conn>::default();
    // A local file does not go away between uses: no test query on checkout.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let setup = setup.clone();
        Box::pin(async move {
            let mut conn = Conn::establish(&url).await?;
            conn.batch_execute(&setup)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::<Conn>::new_with_config(url, config);
    Pool::builder()
        .max_size(options.readers)
        .connection_timeout(options.acquire_timeout)
        .build_unchecked(manager)
}

/// What a `.first()` query found, if anything, as a domain value.
fn found<R, T>(
    row: QueryResult<R>,
    into_domain: fn(R) -> Result<T, RepoError>,
) -> Result<Option<T>, RepoError> {
    row.optional()
        .map_err(from_diesel)?
        .map(into_domain)
        .transpose()
}

/// A page's total, as the ports count it.
/// `lower(email)`, as the unique index users_email_key has it.
fn lower_email() -> diesel::expression::SqlLiteral<diesel::sql_types::Text> {
    diesel::dsl::sql::<diesel::sql_types::Text>("lower(email)")
}

#[async_trait]
impl UserRepo for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), RepoError> {
        self.insert(users::table, UserRow::from_domain(user)?).await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        let id = id_text(id.as_uuid());
        self.read(move |conn| {
            let row = users::table
                .find(id)
                .select(UserRow::as_select())
                .first(conn);
            found(row, UserRow::into_domain)
        })
        .await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        let email = email.as_str().to_lowercase();
        self.read(move |conn| {
            // `lower(email)` matches the unique index users_email_key.
            let row = users::table
                .filter(lower_email().eq(email))
                .select(UserRow::as_select())
                .first(conn);
            found(row, UserRow::into_domain)
        })
        .await
    }

    async fn set_role(&self, email: &Email, role: Role) -> Result<User, RepoError> {
        let email = email.as_str().to_lowercase();
        self.write(move |conn| {
            // One statement, by the same `lower(email)` as find_user_by_email.
            diesel::update(users::table.filter(lower_email().eq(email)))
                .set(users::role.eq(role.name()))
                .returning(UserRow::as_returning())
                .get_result(conn)
                .optional()
                .map_err(from_diesel)?
                .ok_or(RepoError::NotFound)?
                .into_domain()
        })
        .await
    }

    async fn end_sessions(&self, id: UserId) -> Result<u32, RepoError> {
        let id = id_text(id.as_uuid());
        self.write(move |conn| {
            // One statement on the one writer: increments cannot interleave. Past u32::MAX,
            // users_session_generation_check fails it and nothing is written.
            let generation: Option<i64> = diesel::update(users::table.find(id))
                .set(users::session_generation.eq(users::session_generation + 1))
                .returning(users::session_generation)
                .get_result(conn)
                .optional()
                .map_err(from_diesel)?;
            lms_sql_rows::session_generation(generation.ok_or(RepoError::NotFound)?)
        })
        .await
    }

    async fn gateway_customer(&self, id: UserId) -> Result<Option<String>, RepoError> {
        let id = id_text(id.as_uuid());
        self.read(move |conn| {
            let customer: Option<Option<String>> = users::table
                .find(id)
                .select(users::gateway_customer_id)
                .first(conn)
                .optional()
                .map_err(from_diesel)?;
            Ok(customer.flatten())
        })
        .await
    }

    async fn link_gateway_customer(
        &self,
        id: UserId,
        customer_id: &str,
    ) -> Result<String, RepoError> {
        let (id, customer_id) = (id_text(id.as_uuid()), customer_id.to_owned());
        self.write(move |conn| {
            // One statement links, first link wins (lms_sql_rows' commerce module); when it
            // writes nothing, the customer already linked is read back.
            let linked: Option<Option<String>> = diesel::update(
                users::table
                    .find(&id)
                    .filter(users::gateway_customer_id.is_null()),
            )
            .set(users::gateway_customer_id.eq(customer_id))
            .returning(users::gateway_customer_id)
            .get_result(conn)
            .optional()
            .map_err(from_diesel)?;
            if let Some(Some(linked)) = linked {
                return Ok(linked);
            }
            let found: Option<Option<String>> = users::table
                .find(&id)
                .select(users::gateway_customer_id)
                .first(conn)
                .optional()
                .map_err(from_diesel)?;
            lms_sql_rows::linked_gateway_customer(found)
        })
        .await
    }
}

#[async_trait]
impl CourseRepo for SqliteStore {
    async fn create_course(&self, course: &Course) -> Result<(), RepoError> {
        self.insert(courses::table, CourseRow::from_domain(course)?)
            .await
    }

    async fn get_course(&self, id: CourseId) -> Result<Option<Course>, RepoError> {
        let id = id_text(id.as_uuid());
        self.read(move |conn| {
            let row = courses::table
                .find(id)
                .select(CourseRow::as_select())
                .first(conn);
            found(row, CourseRow::into_domain)
        })
        .await
    }

    async fn update_course(&self, course: &Course) -> Result<(), RepoError> {
        let row = CourseRow::from_domain(course)?;
        self.write(move |conn| {
            let updated = diesel::update(courses::table.find(row.id.clone()))
                .set(&row)
                .execute(conn)
                .map_err(from_diesel)?;
            if updated == 0 {
                return Err(RepoError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn list_published_courses(&self, page: PageRequest) -> Result<Page<Course>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let (count, rows) = self
            .read(move |conn| {
                // Count and page in one read transaction (one snapshot), so the total
                // matches the items.
                conn.transaction(|conn| {
                    let count: i64 = courses::table
                        .filter(courses::published.eq(true))
                        .count()
                        .get_result(conn)?;
                    let rows: Vec<CourseRow> = courses::table
                        .filter(courses::published.eq(true))
                        .order((courses::created_at.desc(), courses::id.desc()))
                        .limit(limit)
                        .offset(offset)
                        .select(CourseRow::as_select())
                        .load(conn)?;
                    Ok::<_, DieselError>((count, rows))
                })
                .map_err(from_diesel)
            })
            .await?;
        lms_sql_rows::page(rows, count, CourseRow::into_domain)
    }
}

fn load_purchase(conn: &mut SqliteConnection, id: &str) -> Result<Option<Purchase>, TxError> {
    let row = purchases::table
        .find(id)
        .select(PurchaseRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(PurchaseRow::into_domain).transpose()?)
}

/// The purchase `id` and every other purchase of its buyer for its course (usually none), in
/// one statement. No row: no such purchase.
fn load_buyers_purchases(conn: &mut SqliteConnection, id: &str) -> Result<Vec<Purchase>, TxError> {
    let target = diesel::alias!(purchases as target);
    let of_target = target.filter(target.field(purchases::id).eq(id.to_owned()));
    let rows: Vec<PurchaseRow> = purchases::table
        .filter(
            purchases::user_id.nullable().eq(of_target
                .clone()
                .select(target.field(purchases::user_id))
                .single_value()),
        )
        .filter(
            purchases::course_id.nullable().eq(of_target
                .select(target.field(purchases::course_id))
                .single_value()),
        )
        .select(PurchaseRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(PurchaseRow::into_domain)
        .collect::<Result<_, _>>()?)
}

/// The outcomes a replay leaves alone ([`EventOutcome::is_settled`]).
const SETTLED: [&str; 2] = [EventOutcome::Applied.as_str(), EventOutcome::Held.as_str()];

/// The inbox upsert of `lms_sql_rows`' inbox module, for an event that comes as `kind`; `row` is
/// what a first delivery writes. One statement: `INSERT INTO webhook_events .. ON CONFLICT
/// (event_id) DO UPDATE SET .. [WHERE ..] RETURNING delivery_count`. An unknown purchase (of
/// the inserted row, or the one a replay sets) fails webhook_events_purchase_id_fkey, the
/// table's only foreign key: [`RepoError::NotFound`].
fn upsert_event(
    conn: &mut SqliteConnection,
    kind: DeliveryKind,
    row: WebhookEventRow,
) -> Result<Recorded, TxError> {
    let upsert = diesel::insert_into(webhook_events::table)
        .values(row)
        .on_conflict(webhook_events::event_id)
        .do_update();
    let written = match kind {
        DeliveryKind::Delivered => {
            let count: Result<i32, DieselError> = upsert
                .set((
                    webhook_events::delivery_count.eq(webhook_events::delivery_count + 1),
                    webhook_events::last_received_at.eq(excluded(webhook_events::last_received_at)),
                ))
                .returning(webhook_events::delivery_count)
                .get_result(conn);
            // Inserted rows count one delivery; a counted redelivery, two or more.
            count.map(|count| count == 1)
        }
        // `FilterDsl::filter` by name: on an upsert it is the `DO UPDATE .. WHERE`.
        DeliveryKind::Replayed => diesel::query_dsl::methods::FilterDsl::filter(
            upsert.set((
                webhook_events::outcome.eq(excluded(webhook_events::outcome)),
                webhook_events::error.eq(excluded(webhook_events::error)),
                webhook_events::purchase_id.eq(excluded(webhook_events::purchase_id)),
            )),
            webhook_events::outcome.ne_all(SETTLED),
        )
        .returning(webhook_events::delivery_count)
        .get_result::<i32>(conn)
        .optional()
        .map(|replayed| replayed.is_some()),
    };
    match written {
        Ok(true) => Ok(Recorded::Written),
        Ok(false) => Ok(Recorded::Duplicate),
        Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
            Err(TxError::Repo(RepoError::NotFound))
        }
        Err(other) => Err(TxError::Db(other)),
    }
}

/// The body of [`SqliteStore::apply_facts`]'s `BEGIN IMMEDIATE` transaction (which holds the
/// database's write lock from its first statement, so nothing interleaves). Statements:
/// 1. (events only) the inbox upsert ([`upsert_event`]) of a row saying `applied`, with the
///    purchase and no error. A redelivery only counts (delivery count, last receipt time) and
///    stops here, committed: [`Applied::DuplicateEvent`]. A replay of an applied or held event
///    changes nothing and stops here too. An unknown purchase fails the foreign key, which
///    rolls back as `NotFound`;
/// 2. the purchase and its buyer's other purchases of the course ([`load_buyers_purchases`]:
///    the write lock already serialises their updates);
/// 3. (only if the merge changed anything) `UPDATE purchases SET <facts, details, status,
///    sale, slot, payment intent, updated_at> WHERE id = ?`;
/// 4. (events only, and only when the saved purchase is held for review)
///    `UPDATE webhook_events SET outcome = 'held' WHERE event_id = ?`: the outcome depends on
///    the merge, and writing the row first is what lets a duplicate stop at statement 1.
fn apply_in_transaction(
    conn: &mut SqliteConnection,
    update: &FactUpdate,
) -> Result<Applied, TxError> {
    let purchase_id = id_text(update.purchase_id.as_uuid());
    if let Some(event) = &update.event {
        let row = WebhookEventRow::from_domain(&lms_sql_rows::first_delivery(
            &event.envelope,
            EventOutcome::Applied,
            None,
            Some(update.purchase_id),
            update.at,
        ))?;
        if upsert_event(conn, event.kind, row)? == Recorded::Duplicate {
            return Ok(Applied::DuplicateEvent);
        }
    }
    let (mut purchase, others) = lms_sql_rows::purchase_and_others(
        load_buyers_purchases(conn, &purchase_id)?,
        update.purchase_id,
    )?;
    let changed = purchase.absorb(
        &update.facts,
        update.payment_intent_id.as_deref(),
        &update.details,
        update.at,
    );
    if changed {
        diesel::update(purchases::table.find(&purchase_id))
            .set(StateRow::from_domain(&purchase)?)
            .execute(conn)?;
    }
    if let Some(event) = &update.event {
        let outcome = EventOutcome::of_applied(&purchase);
        if outcome != EventOutcome::Applied {
            diesel::update(webhook_events::table.find(&event.envelope.id))
                .set(webhook_events::outcome.eq(outcome.as_str()))
                .execute(conn)?;
        }
    }
    Ok(Applied::Applied { purchase, others })
}

/// [`PurchaseRepo::claim_for_reconciliation`] in one statement (SQL text: diesel's query
/// builder cannot express a subquery on the table being updated). Binds: `created_before`,
/// `now`, `claimed_until`, `limit`. The single writer runs it whole, so concurrent claims
/// (other stores on the file included: the statement takes the write lock) get disjoint
/// batches. Held purchases (pending with a captured payment) wait for an operator instead.
/// Served by purchases_pending_created_idx.
const CLAIM_FOR_RECONCILIATION: &str = "\
    UPDATE purchases SET reconcile_after = ?3 \
    WHERE id IN (SELECT id FROM purchases \
                 WHERE status = 'pending' AND captured_cents IS NULL \
                   AND created_at < ?1 AND (reconcile_after IS NULL OR reconcile_after <= ?2) \
                 ORDER BY created_at, id LIMIT ?4) \
    RETURNING *";

/// [`EventInbox::prune_payloads`] in one statement, as [`CLAIM_FOR_RECONCILIATION`]. Binds:
/// `received_before`, `limit`. Served by webhook_events_prune_idx.
const PRUNE_PAYLOADS: &str = "\
    UPDATE webhook_events SET payload = NULL \
    WHERE event_id IN (SELECT event_id FROM webhook_events \
                       WHERE payload IS NOT NULL AND first_received_at < ?1 \
                       ORDER BY first_received_at, event_id LIMIT ?2)";

/// [`PurchaseRepo::revenue`]: the sums of the `sale_*` columns the domain derived, per course
/// and currency, in one statement, as on PostgreSQL. [`revenue_statement`] adds the query's
/// filters between [`REVENUE_SELECT`] and [`REVENUE_GROUPED`]. Titles sort byte-wise
/// (SQLite's `BINARY`), as every store sorts them. Served by purchases_sold_course_idx or
/// purchases_sold_at_idx.
const REVENUE_SELECT: &str = "\
    SELECT courses.id AS course_id, courses.title AS course_title, \
           courses.instructor_id AS instructor_id, purchases.sale_currency AS currency, \
           count(*) AS purchases, \
           sum(purchases.sale_gross_cents) AS gross, \
           sum(purchases.sale_discount_cents) AS discounts, \
           sum(purchases.sale_tax_cents) AS tax, \
           sum(purchases.sale_paid_cents) AS paid, \
           sum(purchases.sale_refunded_cents) AS refunds, \
           sum(purchases.sale_disputes_lost_cents) AS disputes_lost, \
           sum(purchases.sale_net_cents) AS net \
    FROM purchases INNER JOIN courses ON courses.id = purchases.course_id \
    WHERE purchases.sold_at IS NOT NULL";

/// The end of [`REVENUE_SELECT`]: grouped by course and currency, ordered by title, course id
/// and currency code.
const REVENUE_GROUPED: &str = " \
    GROUP BY courses.id, purchases.sale_currency \
    ORDER BY courses.title, courses.id, purchases.sale_currency";

/// The revenue statement of `query` (its instants already in nanoseconds): only the filters it
/// sets, each with its bind.
fn revenue_statement(
    instructor: Option<String>,
    sold_from: Option<i64>,
    sold_before: Option<i64>,
) -> diesel::query_builder::BoxedSqlQuery<
    'static,
    diesel::sqlite::Sqlite,
    diesel::query_builder::SqlQuery,
> {
    let mut sql = String::from(REVENUE_SELECT);
    if instructor.is_some() {
        sql += " AND courses.instructor_id = ?";
    }
    if sold_from.is_some() {
        sql += " AND purchases.sold_at >= ?";
    }
    if sold_before.is_some() {
        sql += " AND purchases.sold_at < ?";
    }
    sql += REVENUE_GROUPED;
    let mut statement = diesel::sql_query(sql).into_boxed();
    if let Some(instructor) = instructor {
        statement = statement.bind::<diesel::sql_types::Text, _>(instructor);
    }
    if let Some(from) = sold_from {
        statement = statement.bind::<BigInt, _>(from);
    }
    if let Some(before) = sold_before {
        statement = statement.bind::<BigInt, _>(before);
    }
    statement
}

fn load_purchases<Q>(conn: &mut SqliteConnection, query: Q) -> Result<Vec<Purchase>, RepoError>
where
    Q: diesel::query_dsl::methods::LoadQuery<'static, SqliteConnection, PurchaseRow>,
{
    let rows: Vec<PurchaseRow> = query.load(conn).map_err(from_diesel)?;
    rows.into_iter().map(PurchaseRow::into_domain).collect()
}

#[async_trait]
impl PurchaseRepo for SqliteStore {
    async fn create_purchase(&self, purchase: &Purchase) -> Result<(), RepoError> {
        // purchases_active_slot_key (partial unique index) refuses a second slot holder; the
        // writer's serialisation makes "of concurrent creations, one wins" immediate.
        self.insert(purchases::table, PurchaseRow::from_domain(purchase)?)
            .await
    }

    async fn attach_checkout(
        &self,
        id: PurchaseId,
        session: &CheckoutSession,
        at: OffsetDateTime,
    ) -> Result<Purchase, RepoError> {
        let id = id_text(id.as_uuid());
        let (session_id, url) = (session.id.clone(), session.url.clone());
        let expires_at = nanos(session.expires_at)?;
        let at = nanos(at)?;
        self.write(move |conn| {
            // One statement; the same change as the domain's Purchase::attach_checkout.
            diesel::update(purchases::table.find(id))
                .set((
                    purchases::checkout_session_id.eq(session_id),
                    purchases::checkout_url.eq(url),
                    purchases::checkout_expires_at.eq(expires_at),
                    purchases::updated_at.eq(at),
                ))
                .returning(PurchaseRow::as_returning())
                .get_result(conn)
                .optional()
                .map_err(from_diesel)?
                .ok_or(RepoError::NotFound)?
                .into_domain()
        })
        .await
    }

    async fn apply_facts(&self, update: &FactUpdate) -> Result<Applied, RepoError> {
        let owned = update.clone();
        let applied = self
            .write(move |conn| {
                conn.immediate_transaction(|conn| apply_in_transaction(conn, &owned))
                    .map_err(RepoError::from)
            })
            .await?;
        if let Applied::Applied { purchase, .. } = &applied {
            tracing::debug!(purchase_id = %purchase.id, status = purchase.status().as_str(), "facts applied");
        }
        Ok(applied)
    }

    async fn get_purchase(&self, id: PurchaseId) -> Result<Option<Purchase>, RepoError> {
        let id = id_text(id.as_uuid());
        self.read(move |conn| load_purchase(conn, &id).map_err(RepoError::from))
            .await
    }

    async fn find_by_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<Option<Purchase>, RepoError> {
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            let row = purchases::table
                .filter(purchases::checkout_session_id.eq(session_id))
                .select(PurchaseRow::as_select())
                .first(conn);
            found(row, PurchaseRow::into_domain)
        })
        .await
    }

    async fn find_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<Purchase>, RepoError> {
        let payment_intent_id = payment_intent_id.to_owned();
        self.read(move |conn| {
            let row = purchases::table
                .filter(purchases::payment_intent_id.eq(payment_intent_id))
                .select(PurchaseRow::as_select())
                .first(conn);
            found(row, PurchaseRow::into_domain)
        })
        .await
    }

    async fn list_for_user_and_course(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Vec<Purchase>, RepoError> {
        let (user, course) = (id_text(user.as_uuid()), id_text(course.as_uuid()));
        self.read(move |conn| {
            let query = purchases::table
                .filter(purchases::user_id.eq(user))
                .filter(purchases::course_id.eq(course))
                .order((purchases::created_at.desc(), purchases::id.desc()))
                .select(PurchaseRow::as_select());
            load_purchases(conn, query)
        })
        .await
    }

    async fn buyer_view(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Option<BuyerView>, RepoError> {
        let (user, course) = (id_text(user.as_uuid()), id_text(course.as_uuid()));
        self.read(move |conn| {
            // One statement, as on PostgreSQL (served by purchases_user_course_created_idx),
            // and likewise unordered: `lms_sql_rows::buyer_view` orders the purchases.
            let rows: Vec<(UserRow, Option<CourseRow>, Option<PurchaseRow>)> = users::table
                .left_join(courses::table.on(courses::id.eq(course.clone())))
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
                .load(conn)
                .map_err(from_diesel)?;
            lms_sql_rows::buyer_view(rows.into_iter().map(|(user, course, purchase)| {
                (
                    user.into(),
                    course.map(Into::into),
                    purchase.map(Into::into),
                )
            }))
        })
        .await
    }

    async fn claim_for_reconciliation(
        &self,
        created_before: OffsetDateTime,
        now: OffsetDateTime,
        claimed_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Purchase>, RepoError> {
        let (created_before, now, claimed_until) =
            (nanos(created_before)?, nanos(now)?, nanos(claimed_until)?);
        let rows: Vec<PurchaseRow> = self
            .write(move |conn| {
                diesel::sql_query(CLAIM_FOR_RECONCILIATION)
                    .bind::<BigInt, _>(created_before)
                    .bind::<BigInt, _>(now)
                    .bind::<BigInt, _>(claimed_until)
                    .bind::<BigInt, _>(i64::from(limit))
                    .load(conn)
                    .map_err(from_diesel)
            })
            .await?;
        let mut claimed = rows
            .into_iter()
            .map(PurchaseRow::into_domain)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING follows no order.
        claimed.sort_by_key(|purchase| (purchase.created_at, purchase.id.as_uuid()));
        Ok(claimed)
    }

    async fn list_held(&self, page: PageRequest) -> Result<Page<Purchase>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        // Held: pending with a captured payment (one that paid for the course, as billed or
        // accepted by an operator, would have completed it).
        let held = || {
            purchases::table
                .filter(purchases::status.eq(PurchaseStatus::Pending.as_str()))
                .filter(purchases::captured_cents.is_not_null())
        };
        let (count, rows) = self
            .read(move |conn| {
                // Count and page in one read transaction (one snapshot).
                conn.transaction(|conn| {
                    let count: i64 = held().count().get_result(conn)?;
                    let rows: Vec<PurchaseRow> = held()
                        .order((purchases::created_at, purchases::id))
                        .limit(limit)
                        .offset(offset)
                        .select(PurchaseRow::as_select())
                        .load(conn)?;
                    Ok::<_, DieselError>((count, rows))
                })
                .map_err(from_diesel)
            })
            .await?;
        lms_sql_rows::page(rows, count, PurchaseRow::into_domain)
    }

    async fn list_unlocked_for_user(
        &self,
        user: UserId,
    ) -> Result<Vec<PurchasedCourse>, RepoError> {
        let user = id_text(user.as_uuid());
        let rows: Vec<(PurchaseRow, CourseRow)> = self
            .read(move |conn| {
                // One query. It narrows on a recorded fact, not on the stored status column
                // (derived, kept for humans): a captured payment is necessary to unlock, and the
                // domain decides the rest, so the listing cannot drift from the status the
                // domain derives.
                purchases::table
                    .inner_join(courses::table)
                    .filter(purchases::user_id.eq(user))
                    .filter(purchases::captured_cents.is_not_null())
                    .order((purchases::created_at.desc(), purchases::id.desc()))
                    .select((PurchaseRow::as_select(), CourseRow::as_select()))
                    .load(conn)
                    .map_err(from_diesel)
            })
            .await?;
        lms_sql_rows::unlocked(rows.into_iter().map(|(p, c)| (p.into(), c.into())))
    }

    async fn list_for_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<PurchasedCourse>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let user = id_text(user.as_uuid());
        let (count, rows) = self
            .read(move |conn| {
                let mine = || purchases::table.filter(purchases::user_id.eq(user.clone()));
                // One read transaction (one snapshot), one query in the usual case, served by
                // purchases_user_created_idx: the page with the count of every row it was cut
                // from (a window over the whole filtered join, taken before LIMIT).
                conn.transaction(|conn| {
                    let rows: Vec<(PurchaseRow, CourseRow, i64)> = mine()
                        .inner_join(courses::table)
                        .order((purchases::created_at.desc(), purchases::id.desc()))
                        .limit(limit)
                        .offset(offset)
                        .select((
                            PurchaseRow::as_select(),
                            CourseRow::as_select(),
                            diesel::dsl::sql::<diesel::sql_types::BigInt>("count(*) OVER ()"),
                        ))
                        .load(conn)?;
                    let count = match rows.as_slice().first() {
                        Some((_, _, count)) => *count,
                        // An empty page carries no count: only a page past the end asks again.
                        None if offset == 0 => 0,
                        None => mine().count().get_result(conn)?,
                    };
                    Ok::<_, DieselError>((count, rows))
                })
                .map_err(from_diesel)
            })
            .await?;
        let items = rows
            .into_iter()
            .map(|(purchase, course, _)| {
                Ok(PurchasedCourse {
                    purchase: purchase.into_domain()?,
                    course: course.into_domain()?,
                })
            })
            .collect::<Result<_, RepoError>>()?;
        Ok(Page {
            items,
            total: lms_sql_rows::total(count),
        })
    }

    async fn lease_refund(
        &self,
        id: PurchaseId,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<RefundLease, RepoError> {
        let id = id_text(id.as_uuid());
        let (now_nanos, until_nanos) = (nanos(now)?, nanos(until)?);
        self.write(move |conn| {
            // lms_sql_rows' commerce module: one atomic UPDATE takes the lease; a miss is read
            // to tell an unknown purchase from a busy one. On the one writer nothing comes
            // between the two, except another process sharing the file.
            for _ in 0..lms_sql_rows::REFUND_LEASE_ATTEMPTS {
                let free = purchases::refund_lease_until
                    .is_null()
                    .or(purchases::refund_lease_until.le(now_nanos));
                let taken = diesel::update(purchases::table.find(&id).filter(free))
                    .set(purchases::refund_lease_until.eq(until_nanos))
                    .returning(PurchaseRow::as_returning())
                    .get_result(conn)
                    .optional()
                    .map_err(from_diesel)?;
                if let Some(row) = taken {
                    return Ok(RefundLease::Granted(row.into_domain()?));
                }
                let held: Option<Option<i64>> = purchases::table
                    .find(&id)
                    .select(purchases::refund_lease_until)
                    .first(conn)
                    .optional()
                    .map_err(from_diesel)?;
                let held = held
                    .map(|lease| {
                        lease
                            .map(|until| instant(until, "refund lease"))
                            .transpose()
                    })
                    .transpose()?;
                match RefundLeaseMiss::of(held, now) {
                    RefundLeaseMiss::NotFound => return Err(RepoError::NotFound),
                    RefundLeaseMiss::Busy { until } => return Ok(RefundLease::Busy { until }),
                    RefundLeaseMiss::Retry => {}
                }
            }
            Err(lms_sql_rows::refund_lease_contended())
        })
        .await
    }

    async fn release_refund(&self, id: PurchaseId, until: OffsetDateTime) -> Result<(), RepoError> {
        let id = id_text(id.as_uuid());
        let until_nanos = nanos(until)?;
        self.write(move |conn| {
            // Only this caller's lease is written.
            diesel::update(
                purchases::table
                    .find(id)
                    .filter(purchases::refund_lease_until.eq(until_nanos)),
            )
            .set(purchases::refund_lease_until.eq(None::<i64>))
            .execute(conn)
            .map(drop)
            .map_err(from_diesel)
        })
        .await
    }

    async fn revenue(&self, query: &RevenueQuery) -> Result<Vec<RevenueLine>, RepoError> {
        let instructor = query.instructor.map(|id| id_text(id.as_uuid()));
        let sold_from = query.sold_from.map(nanos).transpose()?;
        let sold_before = query.sold_before.map(nanos).transpose()?;
        let rows: Vec<RevenueRow> = self
            .read(move |conn| {
                revenue_statement(instructor, sold_from, sold_before)
                    .load(conn)
                    .map_err(from_diesel)
            })
            .await?;
        rows.into_iter()
            .map(|row| lms_sql_rows::RevenueRecord::from(row).into_line())
            .collect()
    }
}

/// The inbox rows `filter` selects.
fn filtered_events(
    filter: EventFilter,
) -> Result<webhook_events::BoxedQuery<'static, diesel::sqlite::Sqlite>, RepoError> {
    let mut query = webhook_events::table.into_boxed();
    if let Some(outcome) = filter.outcome {
        query = query.filter(webhook_events::outcome.eq(outcome.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(webhook_events::first_received_at.ge(nanos(since)?));
    }
    Ok(query)
}

/// Event ids per `IN (..)` list: far below SQLite's limit on bound parameters.
const IDS_PER_QUERY: usize = 500;

#[async_trait]
impl EventInbox for SqliteStore {
    async fn record_event(
        &self,
        delivery: &EventDelivery,
        outcome: &Unapplied,
        at: OffsetDateTime,
    ) -> Result<Recorded, RepoError> {
        if outcome.outcome.is_settled() {
            return Err(RepoError::unexpected(format!(
                "an event {} is recorded by apply_facts, with its facts",
                outcome.outcome
            )));
        }
        let row = WebhookEventRow::from_domain(&lms_sql_rows::first_delivery(
            &delivery.envelope,
            outcome.outcome,
            outcome.error.clone(),
            outcome.purchase_id,
            at,
        ))?;
        let kind = delivery.kind;
        // One statement on the writer.
        self.write(move |conn| upsert_event(conn, kind, row).map_err(RepoError::from))
            .await
    }

    async fn count_redelivery(
        &self,
        event_id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        let event_id = event_id.to_owned();
        let at = nanos(at)?;
        // One statement on the writer, as a redelivery's upsert.
        self.write(move |conn| {
            diesel::update(webhook_events::table.find(event_id))
                .set((
                    webhook_events::delivery_count.eq(webhook_events::delivery_count + 1),
                    webhook_events::last_received_at.eq(at),
                ))
                .execute(conn)
                .map(|counted| counted == 1)
                .map_err(from_diesel)
        })
        .await
    }

    async fn mark_failed(&self, event_id: &str, error: &str) -> Result<(), RepoError> {
        let (event_id, error) = (event_id.to_owned(), error.to_owned());
        self.write(move |conn| {
            let marked = diesel::update(webhook_events::table.find(event_id))
                .set((
                    webhook_events::outcome.eq(EventOutcome::Failed.as_str()),
                    webhook_events::error.eq(error),
                ))
                .execute(conn)
                .map_err(from_diesel)?;
            if marked == 0 {
                return Err(RepoError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<InboxRecord>, RepoError> {
        let event_id = event_id.to_owned();
        self.read(move |conn| {
            let row = webhook_events::table
                .find(event_id)
                .select(WebhookEventRow::as_select())
                .first(conn);
            found(row, WebhookEventRow::into_domain)
        })
        .await
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<InboxRecord>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        // Checked before reading: an instant the store cannot hold is refused.
        filtered_events(filter)?;
        let (count, rows) = self
            .read(move |conn| {
                // Count and page in one read transaction (one snapshot), so the total
                // matches the items.
                conn.transaction(|conn| {
                    let count: i64 = filtered_events(filter)?.count().get_result(conn)?;
                    let rows: Vec<WebhookEventRow> = filtered_events(filter)?
                        .order((
                            webhook_events::first_received_at.desc(),
                            webhook_events::event_id.desc(),
                        ))
                        .limit(limit)
                        .offset(offset)
                        .select(WebhookEventRow::as_select())
                        .load(conn)?;
                    Ok::<_, TxError>((count, rows))
                })
                .map_err(RepoError::from)
            })
            .await?;
        lms_sql_rows::page(rows, count, WebhookEventRow::into_domain)
    }

    async fn known_event_ids(&self, event_ids: &[String]) -> Result<Vec<String>, RepoError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let event_ids = event_ids.to_vec();
        self.read(move |conn| {
            let mut known = Vec::new();
            for chunk in event_ids.chunks(IDS_PER_QUERY) {
                let found: Vec<String> = webhook_events::table
                    .filter(webhook_events::event_id.eq_any(chunk))
                    .select(webhook_events::event_id)
                    .load(conn)
                    .map_err(from_diesel)?;
                known.extend(found);
            }
            Ok(known)
        })
        .await
    }

    async fn prune_payloads(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, RepoError> {
        let received_before = nanos(received_before)?;
        let pruned = self
            .write(move |conn| {
                diesel::sql_query(PRUNE_PAYLOADS)
                    .bind::<BigInt, _>(received_before)
                    .bind::<BigInt, _>(i64::from(limit))
                    .execute(conn)
                    .map_err(from_diesel)
            })
            .await?;
        Ok(u64::try_from(pruned).unwrap_or(0))
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), RepoError> {
        self.insert(audit_log::table, AuditRow::from_domain(entry)?)
            .await
    }

    async fn list_audit(&self, page: PageRequest) -> Result<Page<AuditEntry>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let (count, rows) = self
            .read(move |conn| {
                conn.transaction(|conn| {
                    let count: i64 = audit_log::table.count().get_result(conn)?;
                    // The id is the append order: the later appended first among equal times.
                    let rows: Vec<AuditRow> = audit_log::table
                        .order((audit_log::at.desc(), audit_log::id.desc()))
                        .limit(limit)
                        .offset(offset)
                        .select(AuditRow::as_select())
                        .load(conn)?;
                    Ok::<_, DieselError>((count, rows))
                })
                .map_err(from_diesel)
            })
            .await?;
        lms_sql_rows::page(rows, count, AuditRow::into_domain)
    }
}

#[async_trait]
impl DeploymentRegistry for SqliteStore {
    async fn claim_payments_mode(&self, mode: PaymentsMode) -> Result<DeploymentClaim, RepoError> {
        let recorded_at = nanos(OffsetDateTime::now_utc())?;
        self.write(move |conn| {
            // The statements of lms_sql_rows' deployment module, in one `BEGIN IMMEDIATE`
            // transaction: another process sharing the file cannot slip between them.
            conn.immediate_transaction(|conn| {
                let inserted = diesel::insert_into(deployment::table)
                    .values((
                        deployment::id.eq(lms_sql_rows::DEPLOYMENT_ROW_ID),
                        deployment::payments_mode.eq(mode.as_str()),
                        deployment::recorded_at.eq(recorded_at),
                    ))
                    .on_conflict(deployment::id)
                    .do_nothing()
                    .execute(conn)?;
                if inserted == 1 {
                    return Ok(DeploymentClaim::Recorded);
                }
                let recorded: String = deployment::table
                    .find(lms_sql_rows::DEPLOYMENT_ROW_ID)
                    .select(deployment::payments_mode)
                    .first(conn)?;
                Ok(lms_sql_rows::deployment_claim(mode, &recorded)?)
            })
            .map_err(|error: TxError| RepoError::from(error))
        })
        .await
    }
}

#[async_trait]
impl StorageHealth for SqliteStore {
    async fn ping(&self) -> Result<String, RepoError> {
        let version: String = self
            .read(|conn| {
                diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
                    "sqlite_version()",
                ))
                .get_result(conn)
                .map_err(|e| match from_diesel(e) {
                    RepoError::Unexpected(cause) => RepoError::Unavailable(cause),
                    other => other,
                })
            })
            .await?;
        Ok(format!(
            "sqlite {version}, {}",
            self.inner.target.describe()
        ))
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_inside_a_transaction_rolls_it_back_and_the_writer_goes_on() {
        let store = SqliteStore::open(":memory:").await.unwrap();
        let user = lms_storage_contract::new_user("ada@example.com", lms_domain::Role::Student);
        let row = UserRow::from_domain(&user).unwrap();
        let result: Result<(), RepoError> = store
            .write(move |conn| {
                conn.immediate_transaction(|conn| {
                    diesel::insert_into(users::table)
                        .values(row)
                        .execute(conn)?;
                    panic!("a bug");
                    #[expect(
                        unreachable_code,
                        reason = "the test panics inside the transaction on purpose"
                    )]
                    Ok::<_, TxError>(())
                })
                .map_err(RepoError::from)
            })
            .await;
        assert!(matches!(result, Err(RepoError::Unexpected(_))));
        assert_eq!(store.get_user(user.id).await.unwrap(), None, "rolled back");

        // The next write is a transaction of its own, committed.
        store.create_user(&user).await.unwrap();
        let in_transaction = store
            .write(|conn| {
                Ok(AnsiTransactionManager::transaction_manager_status_mut(conn)
                    .transaction_depth()
                    .map_err(from_diesel)?
                    .is_some())
            })
            .await
            .unwrap();
        assert!(!in_transaction);
        assert_eq!(store.get_user(user.id).await.unwrap(), Some(user));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_connections_refuse_writes() {
        let dir = std::env::temp_dir().join(format!("lms-sqlite-unit-{}", uuid::Uuid::new_v4()));
        let path = dir.join("lms.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let user = lms_storage_contract::new_user("ada@example.com", lms_domain::Role::Student);
        let row = UserRow::from_domain(&user).unwrap();
        let result = store
            .read(move |conn| {
                diesel::insert_into(users::table)
                    .values(row)
                    .execute(conn)
                    .map_err(from_diesel)
            })
            .await;
        assert!(
            matches!(result, Err(RepoError::Unexpected(_))),
            "{result:?}"
        );
        assert_eq!(store.get_user(user.id).await.unwrap(), None);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_sql_text_statements_name_the_stored_pending_status() {
        let pending = format!("status = '{}'", PurchaseStatus::Pending.as_str());
        assert!(CLAIM_FOR_RECONCILIATION.contains(&pending));
    }

    #[test]
    fn busy_timeouts_fit_sqlite_s_int() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), i32::MAX);
    }
}
