//! PostgreSQL adapter of the storage ports: [`PgStore`] implements [`UserRepo`], [`CourseRepo`],
//! [`PurchaseRepo`], [`EventInbox`], [`AuditLog`], [`DeploymentRegistry`] and [`StorageHealth`]
//! with diesel + diesel-async over a bb8 pool (pure Rust, no libpq). The schema lives in
//! `migrations/postgres/` at the workspace root and is embedded here ([`run_migrations`],
//! [`revert_all_migrations`]).
//!
//! Exactly-once webhook application, with the event's inbox row, is one transaction; see
//! [`PgStore::apply_facts`]'s implementation for the statements it costs.

mod connection;
mod error;
mod group_commit;
mod migrate;
mod per_runtime;
mod rendered;
mod rows;
mod schema;

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use diesel::connection::{InstrumentationEvent, TransactionDepthChange};
use diesel::prelude::*;
use diesel::query_builder::InsertStatement;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel::upsert::excluded;
use diesel_async::methods::ExecuteDsl;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager,
};
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

use crate::connection::{ConnectSpec, ConnectionFailures, Purpose};
use crate::error::{from_connection, from_diesel, from_pool, TxError};
use crate::group_commit::{execute, in_order, Begin, Commit, CommitWithoutFlushWait, GroupCommit};
use crate::per_runtime::PerRuntime;
use crate::rendered::{
    BuyerViewQuery, CountRedelivery, LockBuyersPurchases, LockForFirstDelivery, SetEventOutcome,
    UpdatePurchaseState, UpsertDelivery,
};
use crate::rows::{
    AuditRow, CourseRow, PurchaseRow, RevenueRow, StateRow, UserRow, WebhookEventRow,
};
use crate::schema::{audit_log, courses, deployment, purchases, users, webhook_events};

pub use crate::connection::{check_database_url, PgConnectionOptions};
pub use crate::group_commit::MAX_GROUP as GROUP_COMMIT_MAX_EVENTS;
pub use crate::migrate::{
    embedded_migration_versions, migrations_fingerprint, pending_migrations_with,
    revert_all_migrations, run_migrations, run_migrations_with, MIGRATION_LOCK,
};

/// How long a request waits for a pooled connection (or for the database to accept one)
/// before failing with [`RepoError::Unavailable`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store. Cheap to clone: clones share its pools.
///
/// One pool per tokio runtime that uses the store, each of up to `pool_size` connections made
/// on first use, so that each HTTP worker drives its own connections on its own thread
/// (`per_runtime`): with one shared pool, a `perf` profile under webhook load found 12 % of
/// the app's CPU on the main thread, driving the connections the start-up had opened.
#[derive(Clone)]
pub struct PgStore {
    pools: Arc<RuntimePools>,
}

struct RuntimePools {
    /// `None`: the settings were invalid, and every connection attempt says so.
    spec: Option<Arc<ConnectSpec>>,
    pool_size: u32,
    acquire_timeout: Duration,
    /// Every runtime's pool reports here why it could not open a connection.
    connection_failures: ConnectionFailures,
    by_runtime: PerRuntime<Pool<AsyncPgConnection>>,
    /// Set by [`PgStore::with_group_commit`]: webhook deliveries go there.
    group_commit: std::sync::OnceLock<GroupCommit>,
}

/// What the pools hold now, summed.
#[derive(Debug, Default)]
struct PoolTotals {
    pools: u32,
    connections: u32,
    idle_connections: u32,
    max_connections: u32,
    waiting: u64,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the URL: it may carry a password.
        let totals = self.totals();
        f.debug_struct("PgStore")
            .field("pools", &totals.pools)
            .field("connections", &totals.connections)
            .field("idle_connections", &totals.idle_connections)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Sets the pool gauges (`lms_db_pool_connections`, `lms_db_pool_idle_connections`,
    /// `lms_db_pool_max_connections`, `lms_db_pool_waiting`, labelled `pool="postgres"`, summed
    /// over the runtimes' pools) and, with [`PgStore::with_group_commit`],
    /// `lms_db_group_commit_backlog`, from the state now; the metrics listener calls it at each
    /// scrape so the values are never stale. The group commit worker counts
    /// `lms_db_group_commits_total` and `lms_db_group_committed_events_total` itself.
    pub fn record_pool_metrics(&self) {
        let totals = self.totals();
        metrics::gauge!("lms_db_pool_connections", "pool" => "postgres")
            .set(f64::from(totals.connections));
        metrics::gauge!("lms_db_pool_idle_connections", "pool" => "postgres")
            .set(f64::from(totals.idle_connections));
        metrics::gauge!("lms_db_pool_max_connections", "pool" => "postgres")
            .set(f64::from(totals.max_connections));
        // Requests waiting for a connection right now: a full pool shows here first.
        metrics::gauge!("lms_db_pool_waiting", "pool" => "postgres").set(totals.waiting as f64);
        if let Some(backlog) = self.group_commit_backlog() {
            metrics::gauge!("lms_db_group_commit_backlog").set(backlog as f64);
        }
    }

    fn totals(&self) -> PoolTotals {
        let mut totals = PoolTotals::default();
        for pool in self.pools.by_runtime.all() {
            let state = pool.state();
            totals.pools += 1;
            totals.connections += state.connections;
            totals.idle_connections += state.idle_connections;
            totals.max_connections += pool.config().max_size;
            totals.waiting += state.statistics.pending_gets();
        }
        totals
    }

    /// Builds the pool with the default [`PgConnectionOptions`] and checks that the database
    /// answers.
    ///
    /// # Errors
    /// As [`PgStore::connect_with`].
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, RepoError> {
        Self::connect_with(url, pool_size, &PgConnectionOptions::default()).await
    }

    /// Builds the pool and checks that the database answers.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when no connection can be made within
    /// [`DEFAULT_ACQUIRE_TIMEOUT`] (refused, TLS or certificate failure, authentication);
    /// [`RepoError::Unexpected`] for an invalid URL or `sslmode`.
    pub async fn connect_with(
        url: &str,
        pool_size: u32,
        options: &PgConnectionOptions,
    ) -> Result<Self, RepoError> {
        let spec = ConnectSpec::parse(url, options, Purpose::Pool)?;
        // One connection outside the pool first: the pool retries until its timeout and
        // then says only that it timed out, while this says why (refused, certificate, ...).
        drop(spec.establish().await.map_err(from_connection)?);
        let store = Self::pool(Some(spec), pool_size, DEFAULT_ACQUIRE_TIMEOUT);
        store.ping().await?;
        Ok(store)
    }

    /// [`PgStore::connect_lazy_with`] with the default [`PgConnectionOptions`]. An invalid
    /// URL is logged here and surfaces as [`RepoError::Unexpected`] on first use.
    /// Must be called inside a tokio runtime.
    pub fn connect_lazy(url: &str, pool_size: u32, acquire_timeout: Duration) -> Self {
        let spec = ConnectSpec::parse(url, &PgConnectionOptions::default(), Purpose::Pool)
            .inspect_err(|error| {
                tracing::error!(%error, "invalid PostgreSQL connection settings");
            })
            .ok();
        Self::pool(spec, pool_size, acquire_timeout)
    }

    /// Builds the pool without connecting: connections are made on first use, each with the
    /// URL's TLS (`sslmode`) and `options`' limits, and a request that cannot get one within
    /// `acquire_timeout` fails with [`RepoError::Unavailable`] (so the service can start, and
    /// report itself unhealthy, while the database is down). Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] naming `DATABASE_URL` for an invalid URL, an unknown or
    /// unsupported `sslmode` or an unreadable `sslrootcert`; the URL is never echoed.
    pub fn connect_lazy_with(
        url: &str,
        pool_size: u32,
        acquire_timeout: Duration,
        options: &PgConnectionOptions,
    ) -> Result<Self, RepoError> {
        let spec = ConnectSpec::parse(url, options, Purpose::Pool)?;
        Ok(Self::pool(Some(spec), pool_size, acquire_timeout))
    }

    fn pool(spec: Option<ConnectSpec>, pool_size: u32, acquire_timeout: Duration) -> Self {
        Self {
            pools: Arc::new(RuntimePools {
                spec: spec.map(Arc::new),
                pool_size,
                acquire_timeout,
                connection_failures: ConnectionFailures::default(),
                by_runtime: PerRuntime::new(),
                group_commit: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Applies webhook deliveries ([`DeliveryKind::Delivered`] events) in groups: those that
    /// arrive while a group is being applied share the next group's transaction, on one of
    /// `lanes` connections of the store's own per runtime that delivers them (the app: per
    /// HTTP worker), each driven by a task on that runtime; every event of a purchase that
    /// one runtime delivers takes the same lane. Replays, reconciliation and every other write
    /// keep a transaction each. The guarantees and their cost are in the `group_commit`
    /// module's documentation. A second call changes nothing.
    #[must_use]
    pub fn with_group_commit(self, lanes: usize) -> Self {
        // Lost to a concurrent call: the other one's lanes are used; neither has started any.
        let _ = self
            .pools
            .group_commit
            .set(GroupCommit::new(self.pools.spec.clone(), lanes));
        self
    }

    /// With [`PgStore::with_group_commit`], the webhook deliveries waiting for the next group
    /// (the one being applied not counted); `None` without it.
    pub fn group_commit_backlog(&self) -> Option<usize> {
        self.pools.group_commit.get().map(GroupCommit::backlog)
    }

    /// With grouped commits: how many groups failed their three-round-trip path and ran again
    /// one event at a time (an event that fails, a lock or statement timeout), since the start.
    pub fn group_commit_retries(&self) -> Option<u64> {
        self.pools.group_commit.get().map(GroupCommit::retried)
    }

    /// The pool of the runtime this runs on, made on its first use there.
    fn runtime_pool(&self) -> Pool<AsyncPgConnection> {
        self.pools.by_runtime.current(|| {
            new_pool(
                self.pools.spec.clone(),
                self.pools.pool_size,
                self.pools.acquire_timeout,
                self.pools.connection_failures.clone(),
            )
        })
    }

    /// A pooled connection. A wait that times out says why no connection could be opened
    /// meanwhile, if one could not.
    async fn conn(&self) -> Result<PooledConnection<'static, AsyncPgConnection>, RepoError> {
        let asked = std::time::Instant::now();
        self.runtime_pool()
            .get_owned()
            .await
            .map_err(|error| from_pool(error, self.pools.connection_failures.since(asked)))
    }

    /// Inserts one row.
    async fn insert<T, R>(&self, table: T, row: R) -> Result<(), RepoError>
    where
        T: Table,
        R: Insertable<T>,
        InsertStatement<T, R::Values>: ExecuteDsl<AsyncPgConnection> + Send + 'static,
    {
        let mut conn = self.conn().await?;
        diesel::insert_into(table)
            .values(row)
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(from_diesel)
    }
}

/// One runtime's pool: connections made on first use, each with the spec's TLS and limits and
/// the statements a delivery pipelines with its `COMMIT` prepared
/// ([`rendered::prepare_pipelined_writes`]); a connection that cannot prepare them (a schema
/// not migrated, say) is not handed out.
fn new_pool(
    spec: Option<Arc<ConnectSpec>>,
    pool_size: u32,
    acquire_timeout: Duration,
    failures: ConnectionFailures,
) -> Pool<AsyncPgConnection> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // Before each use, ask the connection whether it is still open instead of sending
    // `SELECT 1` (the default): the client learns that the server closed it (a restart, an
    // idle timeout, a terminated backend) as soon as its socket ends, so the check costs
    // no round trip, where the query cost one per checkout.
    // `a_pooled_connection_the_server_closed_is_replaced_without_failing_a_call`.
    config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
        Box::pin(async move {
            if PoolableConnection::is_broken(conn) {
                Err(diesel::result::Error::BrokenTransactionManager)
            } else {
                Ok(())
            }
        })
    }));
    config.custom_setup = Box::new(move |_url| {
        let spec = spec.clone();
        Box::pin(async move {
            let Some(spec) = spec else {
                return Err(diesel::ConnectionError::InvalidConnectionUrl(
                    "invalid connection settings".to_owned(),
                ));
            };
            let conn = spec.establish().await?;
            rendered::prepare_pipelined_writes(&conn)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    // The URL lives in the connection spec; the manager's copy is never used.
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config("", config);
    Pool::builder()
        .max_size(pool_size.max(1))
        .connection_timeout(acquire_timeout)
        .error_sink(Box::new(failures))
        .build_unchecked(manager)
}

diesel::define_sql_function! {
    /// PostgreSQL's `lower(text)`.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `at` at the resolution `timestamptz` stores (microseconds; diesel truncates the rest), so
/// that what [`PurchaseRepo::apply_facts`] returns equals what a later read returns.
fn stored_precision(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
        .unwrap_or(at)
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
#[async_trait]
impl UserRepo for PgStore {
    async fn create_user(&self, user: &User) -> Result<(), RepoError> {
        self.insert(users::table, UserRow::from_domain(user)?).await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        let mut conn = self.conn().await?;
        let row = users::table
            .find(id.as_uuid())
            .select(UserRow::as_select())
            .first(&mut conn)
            .await;
        found(row, UserRow::into_domain)
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        let mut conn = self.conn().await?;
        // `lower(email)` matches the unique index users_email_key.
        let row = users::table
            .filter(lower(users::email).eq(email.as_str().to_lowercase()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await;
        found(row, UserRow::into_domain)
    }

    async fn set_role(&self, email: &Email, role: Role) -> Result<User, RepoError> {
        let mut conn = self.conn().await?;
        // One statement, by the same `lower(email)` as find_user_by_email (users_email_key).
        let row = diesel::update(
            users::table.filter(lower(users::email).eq(email.as_str().to_lowercase())),
        )
        .set(users::role.eq(role.name()))
        .returning(UserRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(from_diesel)?;
        row.ok_or(RepoError::NotFound)?.into_domain()
    }

    async fn end_sessions(&self, id: UserId) -> Result<u32, RepoError> {
        let mut conn = self.conn().await?;
        // One statement: the row lock serialises concurrent increments, none is lost. Past
        // u32::MAX, users_session_generation_check fails it and nothing is written.
        let generation: Option<i64> = diesel::update(users::table.find(id.as_uuid()))
            .set(users::session_generation.eq(users::session_generation + 1))
            .returning(users::session_generation)
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(from_diesel)?;
        lms_sql_rows::session_generation(generation.ok_or(RepoError::NotFound)?)
    }

    async fn gateway_customer(&self, id: UserId) -> Result<Option<String>, RepoError> {
        let mut conn = self.conn().await?;
        let customer: Option<Option<String>> = users::table
            .find(id.as_uuid())
            .select(users::gateway_customer_id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(from_diesel)?;
        Ok(customer.flatten())
    }

    async fn link_gateway_customer(
        &self,
        id: UserId,
        customer_id: &str,
    ) -> Result<String, RepoError> {
        let mut conn = self.conn().await?;
        // One statement links, first link wins: a concurrent link waits for the row lock and
        // then finds the customer set, so it writes nothing (lms_sql_rows' commerce module).
        let linked: Option<Option<String>> = diesel::update(
            users::table
                .find(id.as_uuid())
                .filter(users::gateway_customer_id.is_null()),
        )
        .set(users::gateway_customer_id.eq(customer_id))
        .returning(users::gateway_customer_id)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(from_diesel)?;
        if let Some(Some(linked)) = linked {
            return Ok(linked);
        }
        // Already linked (or no such user): a statement of its own sees the committed link.
        let found: Option<Option<String>> = users::table
            .find(id.as_uuid())
            .select(users::gateway_customer_id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(from_diesel)?;
        lms_sql_rows::linked_gateway_customer(found)
    }
}

#[async_trait]
impl CourseRepo for PgStore {
    async fn create_course(&self, course: &Course) -> Result<(), RepoError> {
        self.insert(courses::table, CourseRow::from_domain(course)?)
            .await
    }

    async fn get_course(&self, id: CourseId) -> Result<Option<Course>, RepoError> {
        let mut conn = self.conn().await?;
        let row = courses::table
            .find(id.as_uuid())
            .select(CourseRow::as_select())
            .first(&mut conn)
            .await;
        found(row, CourseRow::into_domain)
    }

    async fn update_course(&self, course: &Course) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        let updated = diesel::update(courses::table.find(course.id.as_uuid()))
            .set(CourseRow::from_domain(course)?)
            .execute(&mut conn)
            .await
            .map_err(from_diesel)?;
        if updated == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    async fn list_published_courses(&self, page: PageRequest) -> Result<Page<Course>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let mut conn = self.conn().await?;
        // Count and page from one snapshot, so the total matches the items.
        let (count, rows) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let count: i64 = courses::table
                    .filter(courses::published.eq(true))
                    .count()
                    .get_result(conn)
                    .await?;
                let rows: Vec<CourseRow> = courses::table
                    .filter(courses::published.eq(true))
                    .order((courses::created_at.desc(), courses::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .select(CourseRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((count, rows))
            })
            .await
            .map_err(from_diesel)?;
        lms_sql_rows::page(rows, count, CourseRow::into_domain)
    }
}

/// Loads and locks, for the rest of the transaction, the purchase `id` and every other
/// purchase of its buyer for its course (usually none), in id order. Locking them all
/// serialises fact updates of any of them, so the update that comes second sees the first
/// as committed: that is what [`Applied::Applied`]'s `others` promises. `FOR NO KEY UPDATE`
/// (not `FOR UPDATE`): it does not conflict with the `FOR KEY SHARE` lock the foreign key
/// check of a concurrent `webhook_events` insert takes, which would deadlock two different
/// events of one purchase. No row: no such purchase.
///
/// With `first_delivery_of` (an event, and how many deliveries of it the transaction's
/// upserts recorded: one, or more in a group), only if that event's inbox row counts exactly
/// those, as the upserts before it leave an event that was new: sent with the upsert, before
/// its answer, the lock of a redelivery then reads and locks nothing.
async fn lock_buyers_purchases(
    conn: &AsyncPgConnection,
    id: PurchaseId,
    first_delivery_of: Option<(&str, i32)>,
) -> QueryResult<Vec<PurchaseRow>> {
    let purchase = id.as_uuid();
    match first_delivery_of {
        None => LockBuyersPurchases { purchase }.load(&mut &*conn).await,
        Some((event_id, deliveries)) => {
            LockForFirstDelivery {
                purchase,
                event_id: event_id.to_owned(),
                deliveries,
            }
            .load(&mut &*conn)
            .await
        }
    }
}

/// The outcomes a replay leaves alone ([`EventOutcome::is_settled`]).
const SETTLED: [&str; 2] = [EventOutcome::Applied.as_str(), EventOutcome::Held.as_str()];

/// The inbox upsert of `lms_sql_rows`' inbox module, for an event that comes as `kind`; `row` is
/// what a first delivery writes. One statement: `INSERT INTO webhook_events .. ON CONFLICT
/// (event_id) DO UPDATE SET .. [WHERE ..] RETURNING delivery_count`.
async fn upsert_event(
    mut conn: &AsyncPgConnection,
    kind: DeliveryKind,
    row: WebhookEventRow,
) -> QueryResult<Recorded> {
    let written = match kind {
        DeliveryKind::Delivered => {
            let count: i32 = UpsertDelivery { row }.get_result(&mut conn).await?;
            // Inserted rows count one delivery; a counted redelivery, two or more.
            count == 1
        }
        // `FilterDsl::filter` by name: on an upsert it is the `DO UPDATE .. WHERE`.
        DeliveryKind::Replayed => diesel::query_dsl::methods::FilterDsl::filter(
            diesel::insert_into(webhook_events::table)
                .values(row)
                .on_conflict(webhook_events::event_id)
                .do_update()
                .set((
                    webhook_events::outcome.eq(excluded(webhook_events::outcome)),
                    webhook_events::error.eq(excluded(webhook_events::error)),
                    webhook_events::purchase_id.eq(excluded(webhook_events::purchase_id)),
                )),
            webhook_events::outcome.ne_all(SETTLED),
        )
        .returning(webhook_events::delivery_count)
        .get_result::<i32>(&mut conn)
        .await
        .optional()?
        .is_some(),
    };
    Ok(if written {
        Recorded::Written
    } else {
        Recorded::Duplicate
    })
}

/// The body of [`PgStore::apply_facts`]'s transaction. Statements, in order:
/// 1. (events only) the inbox upsert ([`upsert_event`]) of a row saying `applied`, with the
///    purchase and no error. A redelivery only counts (delivery count, last receipt time) and
///    stops here, committed: [`Applied::DuplicateEvent`]. A replay of an applied or held event
///    changes nothing and stops here too. A concurrent duplicate waits here for the first to
///    commit or roll back. An unknown purchase fails the foreign key (of the inserted row, or
///    of the purchase a replay sets), which rolls back as `NotFound`;
/// 2. the purchase and its buyer's other purchases of the course, locked
///    ([`lock_buyers_purchases`]). For a delivery, sent with statement 1 without waiting for
///    its answer (pipelined: one round trip for both), on the condition that statement 1 left
///    a first delivery (a redelivery's lock reads nothing); when statement 1 fails, this one
///    fails with it and the first error is the one reported. For a replay, after statement 1;
/// 3. (only if the merge changed anything) `UPDATE purchases SET <facts, details, status,
///    sale, slot, payment intent, updated_at> WHERE id = $1`;
/// 4. (events only, and only when the saved purchase is held for review)
///    `UPDATE webhook_events SET outcome = 'held' WHERE event_id = $1`: the outcome depends on
///    the merge, and writing the row first is what lets a duplicate stop at statement 1.
///
/// Plus BEGIN, sent with statement 1, and COMMIT, sent with statements 3 and 4 for a first
/// delivery and after statement 1's answer for a redelivery, whose commit does not wait for
/// the disk ([`apply_with_pipelined_begin`], [`commit_count_only`]): two round trips either
/// way, in one transaction. Under a grouped commit's savepoint, this runs without either.
async fn apply_in_transaction(
    conn: &AsyncPgConnection,
    update: &FactUpdate,
) -> Result<Applied, TxError> {
    let Some(merged) = record_lock_and_merge(conn, update).await? else {
        return Ok(Applied::DuplicateEvent);
    };
    write_merge(conn, update, &merged).await?;
    Ok(merged.into_applied())
}

/// Statements 1 and 2 of [`apply_in_transaction`], and the update merged into what they
/// locked. `None`: the event was already recorded (a redelivery, or a replay of an applied or
/// held event), and there is nothing to write.
async fn record_lock_and_merge(
    conn: &AsyncPgConnection,
    update: &FactUpdate,
) -> Result<Option<Merged>, TxError> {
    let at = stored_precision(update.at);
    let locked = match &update.event {
        Some(event) => {
            let row = inbox_row(update, event, at)?;
            match event.kind {
                DeliveryKind::Delivered => {
                    let (recorded, locked) = record_and_lock(conn, update, event, row).await;
                    if recorded? == Recorded::Duplicate {
                        return Ok(None);
                    }
                    locked?
                }
                // Rare (an operator's replay): one after the other.
                DeliveryKind::Replayed => {
                    if upsert_event(conn, event.kind, row).await? == Recorded::Duplicate {
                        return Ok(None);
                    }
                    lock_buyers_purchases(conn, update.purchase_id, None).await?
                }
            }
        }
        None => lock_buyers_purchases(conn, update.purchase_id, None).await?,
    };
    Ok(Some(Merged::of(update, locked, at, &[])?))
}

/// [`apply_in_transaction`] in a transaction of its own, in two round trips for a first
/// delivery: `BEGIN` goes out with statements 1 and 2 instead of a round trip ahead of them
/// (diesel's `transaction` waits for `BEGIN`'s answer), and `COMMIT` with statements 3 and 4
/// ([`write_merge_and_commit`]) instead of a round trip after them. A redelivery costs two:
/// whether to write is known only from statement 1's answer ([`commit_count_only`]). A `BEGIN`
/// that fails fails the statements sent with it (the connection is gone) and nothing is
/// committed.
async fn apply_with_pipelined_begin(
    conn: &mut AsyncPgConnection,
    update: &FactUpdate,
) -> Result<Applied, TxError> {
    // The connection counts as in a transaction before `BEGIN` is sent and until `COMMIT` is
    // answered: a request cancelled in between (its client gone) leaves the pool a connection
    // it discards, never one with a transaction open. Rollback is diesel's, which counts it
    // out again.
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::IncreaseDepth)?;
    conn.instrumentation()
        .on_connection_event(InstrumentationEvent::begin_transaction(NonZeroU32::MIN));
    let (begun, merged) = {
        let conn = &*conn;
        tokio::join!(execute(conn, Begin), record_lock_and_merge(conn, update))
    };
    let written = match begun.map_err(TxError::from).and(merged) {
        Ok(None) => commit_count_only(conn)
            .await
            .map(|()| None)
            .map_err(TxError::from),
        Ok(Some(merged)) => write_merge_and_commit(conn, update, &merged)
            .await
            .map(|()| Some(merged))
            .map_err(TxError::from),
        Err(error) => Err(error),
    };
    match written {
        Ok(merged) => {
            count_out_committed(conn)?;
            Ok(merged.map_or(Applied::DuplicateEvent, Merged::into_applied))
        }
        Err(error) => {
            // The statement's error is the one to report. Where `COMMIT` went out, the server
            // has already ended the transaction and this `ROLLBACK` only counts it out; a failed
            // rollback leaves the connection marked broken, and the pool discards it.
            let _rolled_back = AnsiTransactionManager::rollback_transaction(conn).await;
            Err(error)
        }
    }
}

/// Commits a transaction that found its event already recorded: all it wrote is the inbox
/// row's delivery count and last receipt time. So its `COMMIT` does not wait for the WAL to
/// reach the disk (`synchronous_commit` off for this transaction alone, sent with the
/// `COMMIT`: the same round trip). What that risks: a crash of the database server within a
/// fraction of a second after the answer loses that one count. Never the event, nor what it
/// applied: the delivery that recorded them committed with the flush, and a duplicate waits
/// for that commit before it sees the row. Measured in `crates/bench/README.md`.
async fn commit_count_only(conn: &AsyncPgConnection) -> QueryResult<()> {
    let (relaxed, committed) =
        tokio::join!(execute(conn, CommitWithoutFlushWait), execute(conn, Commit));
    relaxed.and(committed)
}

/// Counts out the transaction whose pipelined `COMMIT` the server confirmed, as diesel's own
/// commit does after its answer.
fn count_out_committed(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    conn.instrumentation()
        .on_connection_event(InstrumentationEvent::commit_transaction(NonZeroU32::MIN));
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::DecreaseDepth)
}

/// The inbox row statement 1 of [`apply_in_transaction`] writes for `event`: applied, to the
/// update's purchase, no error.
fn inbox_row(
    update: &FactUpdate,
    event: &EventDelivery,
    at: OffsetDateTime,
) -> Result<WebhookEventRow, RepoError> {
    WebhookEventRow::from_domain(&lms_sql_rows::first_delivery(
        &event.envelope,
        EventOutcome::Applied,
        None,
        Some(update.purchase_id),
        at,
    ))
}

/// Statements 1 and 2 of [`apply_in_transaction`] for a delivery, pipelined: the inbox upsert,
/// and the lock on the condition that the upsert left a first delivery.
async fn record_and_lock(
    conn: &AsyncPgConnection,
    update: &FactUpdate,
    event: &EventDelivery,
    row: WebhookEventRow,
) -> (QueryResult<Recorded>, QueryResult<Vec<PurchaseRow>>) {
    tokio::join!(
        upsert_event(conn, event.kind, row),
        lock_buyers_purchases(conn, update.purchase_id, Some((&event.envelope.id, 1)))
    )
}

/// An update merged into the purchase it locked, not yet written.
struct Merged {
    purchase: Purchase,
    others: Vec<Purchase>,
    /// What statement 3 writes, if the merge changed the purchase. Converted here, so that
    /// writing cannot fail before the statement is sent.
    state: Option<StateRow>,
    /// The event's outcome when it is not `applied` (statement 4 is needed).
    outcome: Option<EventOutcome>,
}

impl Merged {
    /// Merges `update` into the purchase among the `locked` rows. `saved_before`: purchases
    /// this transaction saved after those rows were read (a group whose locks were sent
    /// before its writes); they replace their stale rows, as reading them again would.
    fn of(
        update: &FactUpdate,
        locked: Vec<PurchaseRow>,
        at: OffsetDateTime,
        saved_before: &[Purchase],
    ) -> Result<Self, RepoError> {
        let locked = locked
            .into_iter()
            .map(|row| {
                let read = row.into_domain()?;
                Ok(saved_before
                    .iter()
                    .rev()
                    .find(|saved| saved.id == read.id)
                    .cloned()
                    .unwrap_or(read))
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        let (mut purchase, others) = lms_sql_rows::purchase_and_others(locked, update.purchase_id)?;
        let changed = purchase.absorb(
            &update.facts,
            update.payment_intent_id.as_deref(),
            &update.details,
            at,
        );
        let state = if changed {
            Some(StateRow::from_domain(&purchase)?)
        } else {
            None
        };
        let outcome = update
            .event
            .as_ref()
            .map(|_| EventOutcome::of_applied(&purchase))
            .filter(|outcome| *outcome != EventOutcome::Applied);
        Ok(Self {
            purchase,
            others,
            state,
            outcome,
        })
    }

    /// Whether the merge changed the purchase.
    fn changed(&self) -> bool {
        self.state.is_some()
    }

    fn into_applied(self) -> Applied {
        Applied::Applied {
            purchase: self.purchase,
            others: self.others,
        }
    }
}

/// A statement whose future sends it when first polled (its statement prepared), or fails
/// before anything is sent.
type Write<'a> = Pin<Box<dyn Future<Output = QueryResult<()>> + Send + 'a>>;

/// Statements 3 and 4 of [`apply_in_transaction`], each only if `merged` needs it, in order.
fn merge_writes<'a>(
    conn: &'a AsyncPgConnection,
    update: &'a FactUpdate,
    merged: &'a Merged,
) -> Vec<Write<'a>> {
    let mut writes: Vec<Write<'a>> = Vec::with_capacity(2);
    if let Some(state) = &merged.state {
        let statement = UpdatePurchaseState {
            purchase: update.purchase_id.as_uuid(),
            state,
        };
        writes.push(Box::pin(async move {
            statement.execute(&mut &*conn).await.map(drop)
        }));
    }
    if let (Some(event), Some(outcome)) = (&update.event, merged.outcome) {
        let statement = SetEventOutcome {
            event_id: &event.envelope.id,
            outcome: outcome.as_str(),
        };
        writes.push(Box::pin(async move {
            statement.execute(&mut &*conn).await.map(drop)
        }));
    }
    writes
}

/// Statements 3 and 4 of [`apply_in_transaction`], pipelined; the first error if any failed.
async fn write_merge(
    conn: &AsyncPgConnection,
    update: &FactUpdate,
    merged: &Merged,
) -> QueryResult<()> {
    in_order(merge_writes(conn, update, merged))
        .await
        .into_iter()
        .collect()
}

/// Statements 3 and 4 of [`apply_in_transaction`] and `COMMIT`, pipelined: one round trip.
///
/// `COMMIT` must never reach the server ahead of a write, or without one that failed before
/// being sent: it would commit the inbox row without the purchase's update. So it is sent
/// only after each write's first poll has either sent the write or failed; on such a failure
/// nothing more is sent (`Err`, and the caller rolls back). A write is sent by its first poll
/// because every connection of the pool has its statement prepared from the start
/// ([`rendered::prepare_pipelined_writes`]); an unprepared one would first wait a round trip
/// for its preparation, holding the connection's statement cache, which `COMMIT` would then
/// wait for too (diesel-async's cache lock is first come, first served), so even then it
/// would go out behind the write. A write the server refuses aborts the transaction: the
/// `COMMIT` behind it ends the transaction as a rollback (PostgreSQL answers it `ROLLBACK`,
/// not an error), and the write's error is the one returned.
async fn write_merge_and_commit(
    conn: &AsyncPgConnection,
    update: &FactUpdate,
    merged: &Merged,
) -> QueryResult<()> {
    let mut writes = merge_writes(conn, update, merged);
    let mut written: Vec<Option<QueryResult<()>>> = writes.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (write, result) in writes.iter_mut().zip(written.iter_mut()) {
            if let Poll::Ready(output) = write.as_mut().poll(cx) {
                *result = Some(output);
            }
        }
        Poll::Ready(())
    })
    .await;
    if let Some(Err(error)) = written
        .iter_mut()
        .find_map(|result| result.take_if(|output| output.is_err()))
    {
        return Err(error);
    }
    let pending = writes
        .into_iter()
        .zip(written)
        .map(|(write, result)| match result {
            Some(done) => Box::pin(std::future::ready(done)) as Write<'_>,
            None => write,
        })
        .collect();
    let (written, committed) = tokio::join!(in_order(pending), execute(conn, Commit));
    written
        .into_iter()
        .collect::<QueryResult<()>>()
        .and(committed)
}

async fn load_purchases<Q>(
    conn: &mut AsyncPgConnection,
    query: Q,
) -> Result<Vec<Purchase>, RepoError>
where
    Q: diesel_async::methods::LoadQuery<'static, AsyncPgConnection, PurchaseRow> + Send + 'static,
{
    let rows: Vec<PurchaseRow> = query.load(conn).await.map_err(from_diesel)?;
    rows.into_iter().map(PurchaseRow::into_domain).collect()
}

/// [`PurchaseRepo::claim_for_reconciliation`] in one statement (SQL text: diesel's query
/// builder cannot express a subquery on the table being updated). Binds: `created_before`,
/// `now`, `claimed_until`, `limit`. A row another instance is claiming (or a webhook is
/// updating) is locked, so it is skipped rather than waited for: concurrent claims get
/// disjoint batches. A row claimed and committed meanwhile is re-checked against the lease
/// when locked, and left out. Held purchases (pending with a captured payment) wait for an
/// operator instead. Served by purchases_pending_created_idx.
const CLAIM_FOR_RECONCILIATION: &str = "\
    UPDATE purchases SET reconcile_after = $3 \
    WHERE id IN (SELECT id FROM purchases \
                 WHERE status = 'pending' AND captured_cents IS NULL \
                   AND created_at < $1 AND (reconcile_after IS NULL OR reconcile_after <= $2) \
                 ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
    RETURNING *";

/// [`EventInbox::prune_payloads`] in one statement, as [`CLAIM_FOR_RECONCILIATION`]. Binds:
/// `received_before`, `limit`. Rows locked by a concurrent prune (or a redelivery being
/// counted) are skipped, not waited for: each prune clears a batch of its own, and the next
/// pass gets the rest. Served by webhook_events_prune_idx.
const PRUNE_PAYLOADS: &str = "\
    UPDATE webhook_events SET payload = NULL \
    WHERE event_id IN (SELECT event_id FROM webhook_events \
                       WHERE payload IS NOT NULL AND first_received_at < $1 \
                       ORDER BY first_received_at, event_id LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// [`PurchaseRepo::revenue`]: the sums of the `sale_*` columns the domain derived, per course
/// and currency, in one statement (SQL text: diesel's query builder cannot group by a table's
/// key and select its other columns). [`revenue_statement`] adds the query's filters between
/// [`REVENUE_SELECT`] and [`REVENUE_GROUPED`]. `sum(bigint)` is `numeric`: cast back (a sum
/// past `bigint` fails rather than wraps). Titles sort byte-wise (`COLLATE "C"`), as every
/// store sorts them, whatever the database's collation. Served by purchases_sold_course_idx
/// (one instructor: their courses by courses_instructor_idx, then each course's sales in the
/// range) or purchases_sold_at_idx (every course, by date range).
const REVENUE_SELECT: &str = "\
    SELECT courses.id AS course_id, courses.title AS course_title, \
           courses.instructor_id AS instructor_id, purchases.sale_currency AS currency, \
           count(*) AS purchases, \
           sum(purchases.sale_gross_cents)::bigint AS gross, \
           sum(purchases.sale_discount_cents)::bigint AS discounts, \
           sum(purchases.sale_tax_cents)::bigint AS tax, \
           sum(purchases.sale_paid_cents)::bigint AS paid, \
           sum(purchases.sale_refunded_cents)::bigint AS refunds, \
           sum(purchases.sale_disputes_lost_cents)::bigint AS disputes_lost, \
           sum(purchases.sale_net_cents)::bigint AS net \
    FROM purchases INNER JOIN courses ON courses.id = purchases.course_id \
    WHERE purchases.sold_at IS NOT NULL";

/// The end of [`REVENUE_SELECT`]: grouped by course (its key, so its title and instructor
/// follow) and currency, ordered by title, course id and currency code.
const REVENUE_GROUPED: &str = " \
    GROUP BY courses.id, purchases.sale_currency \
    ORDER BY courses.title COLLATE \"C\", courses.id, purchases.sale_currency COLLATE \"C\"";

/// The revenue statement of `query`: only the filters it sets, each with its bind, so that
/// the planner sees the real bounds and picks the index that serves them.
fn revenue_statement(
    query: &RevenueQuery,
) -> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery>
{
    let mut sql = String::from(REVENUE_SELECT);
    let mut binds = 0;
    let mut placeholder = || {
        binds += 1;
        format!("${binds}")
    };
    if query.instructor.is_some() {
        sql += &format!(" AND courses.instructor_id = {}", placeholder());
    }
    if query.sold_from.is_some() {
        sql += &format!(" AND purchases.sold_at >= {}", placeholder());
    }
    if query.sold_before.is_some() {
        sql += &format!(" AND purchases.sold_at < {}", placeholder());
    }
    sql += REVENUE_GROUPED;
    let mut statement = diesel::sql_query(sql).into_boxed();
    if let Some(instructor) = query.instructor {
        statement = statement.bind::<diesel::sql_types::Uuid, _>(instructor.as_uuid());
    }
    if let Some(from) = query.sold_from {
        statement = statement.bind::<Timestamptz, _>(from);
    }
    if let Some(before) = query.sold_before {
        statement = statement.bind::<Timestamptz, _>(before);
    }
    statement
}

#[async_trait]
impl PurchaseRepo for PgStore {
    async fn create_purchase(&self, purchase: &Purchase) -> Result<(), RepoError> {
        // purchases_active_slot_key (partial unique index) decides between concurrent creations.
        self.insert(purchases::table, PurchaseRow::from_domain(purchase)?)
            .await
    }

    async fn attach_checkout(
        &self,
        id: PurchaseId,
        session: &CheckoutSession,
        at: OffsetDateTime,
    ) -> Result<Purchase, RepoError> {
        let mut conn = self.conn().await?;
        // One statement; the same change as the domain's Purchase::attach_checkout.
        let row = diesel::update(purchases::table.find(id.as_uuid()))
            .set((
                purchases::checkout_session_id.eq(&session.id),
                purchases::checkout_url.eq(&session.url),
                purchases::checkout_expires_at.eq(session.expires_at),
                purchases::updated_at.eq(at),
            ))
            .returning(PurchaseRow::as_returning())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(from_diesel)?;
        row.ok_or(RepoError::NotFound)?.into_domain()
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(purchase_id = %update.purchase_id, event_id = update.event.as_ref().map(|e| e.envelope.id.as_str()))
    )]
    async fn apply_facts(&self, update: &FactUpdate) -> Result<Applied, RepoError> {
        let applied = match (&update.event, self.pools.group_commit.get()) {
            (Some(event), Some(group_commit)) if event.kind == DeliveryKind::Delivered => {
                group_commit.apply(update).await?
            }
            _ => {
                let mut conn = self.conn().await?;
                apply_with_pipelined_begin(&mut conn, update).await?
            }
        };
        if let Applied::Applied { purchase, .. } = &applied {
            tracing::debug!(status = purchase.status().as_str(), "facts applied");
        } else {
            tracing::debug!("duplicate event: only counted, nothing merged");
        }
        Ok(applied)
    }

    async fn get_purchase(&self, id: PurchaseId) -> Result<Option<Purchase>, RepoError> {
        let mut conn = self.conn().await?;
        let row = purchases::table
            .find(id.as_uuid())
            .select(PurchaseRow::as_select())
            .first(&mut conn)
            .await;
        found(row, PurchaseRow::into_domain)
    }

    async fn find_by_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<Option<Purchase>, RepoError> {
        let mut conn = self.conn().await?;
        let row = purchases::table
            .filter(purchases::checkout_session_id.eq(session_id))
            .select(PurchaseRow::as_select())
            .first(&mut conn)
            .await;
        found(row, PurchaseRow::into_domain)
    }

    async fn find_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<Purchase>, RepoError> {
        let mut conn = self.conn().await?;
        let row = purchases::table
            .filter(purchases::payment_intent_id.eq(payment_intent_id))
            .select(PurchaseRow::as_select())
            .first(&mut conn)
            .await;
        found(row, PurchaseRow::into_domain)
    }

    async fn list_for_user_and_course(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Vec<Purchase>, RepoError> {
        let mut conn = self.conn().await?;
        let query = purchases::table
            .filter(purchases::user_id.eq(user.as_uuid()))
            .filter(purchases::course_id.eq(course.as_uuid()))
            .order((purchases::created_at.desc(), purchases::id.desc()))
            .select(PurchaseRow::as_select());
        load_purchases(&mut conn, query).await
    }

    async fn buyer_view(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Option<BuyerView>, RepoError> {
        let mut conn = self.conn().await?;
        let query = BuyerViewQuery {
            user: user.as_uuid(),
            course: course.as_uuid(),
        };
        let rows: Vec<(UserRow, Option<CourseRow>, Option<PurchaseRow>)> =
            query.load(&mut conn).await.map_err(from_diesel)?;
        lms_sql_rows::buyer_view(rows.into_iter().map(|(user, course, purchase)| {
            (
                user.into(),
                course.map(Into::into),
                purchase.map(Into::into),
            )
        }))
    }

    async fn claim_for_reconciliation(
        &self,
        created_before: OffsetDateTime,
        now: OffsetDateTime,
        claimed_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Purchase>, RepoError> {
        let mut conn = self.conn().await?;
        let rows: Vec<PurchaseRow> = diesel::sql_query(CLAIM_FOR_RECONCILIATION)
            .bind::<Timestamptz, _>(created_before)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(claimed_until)
            .bind::<BigInt, _>(i64::from(limit))
            .load(&mut conn)
            .await
            .map_err(from_diesel)?;
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
        let mut conn = self.conn().await?;
        let (count, rows) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let count: i64 = held().count().get_result(conn).await?;
                let rows: Vec<PurchaseRow> = held()
                    .order((purchases::created_at, purchases::id))
                    .limit(limit)
                    .offset(offset)
                    .select(PurchaseRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((count, rows))
            })
            .await
            .map_err(from_diesel)?;
        lms_sql_rows::page(rows, count, PurchaseRow::into_domain)
    }

    async fn list_unlocked_for_user(
        &self,
        user: UserId,
    ) -> Result<Vec<PurchasedCourse>, RepoError> {
        let mut conn = self.conn().await?;
        // One query. It narrows on a recorded fact, not on the stored status column (derived,
        // kept for humans): a captured payment is necessary to unlock, and the domain decides
        // the rest, so the listing cannot drift from the status the domain derives.
        let rows: Vec<(PurchaseRow, CourseRow)> = purchases::table
            .inner_join(courses::table)
            .filter(purchases::user_id.eq(user.as_uuid()))
            .filter(purchases::captured_cents.is_not_null())
            .order((purchases::created_at.desc(), purchases::id.desc()))
            .select((PurchaseRow::as_select(), CourseRow::as_select()))
            .load(&mut conn)
            .await
            .map_err(from_diesel)?;
        lms_sql_rows::unlocked(rows.into_iter().map(|(p, c)| (p.into(), c.into())))
    }

    async fn list_for_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<PurchasedCourse>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let mine = || purchases::table.filter(purchases::user_id.eq(user.as_uuid()));
        let mut conn = self.conn().await?;
        // One query, served by purchases_user_created_idx: the page with the count of every
        // row it was cut from (a window over the whole filtered join, taken before LIMIT).
        let rows: Vec<(PurchaseRow, CourseRow, i64)> = mine()
            .inner_join(courses::table)
            .order((purchases::created_at.desc(), purchases::id.desc()))
            .limit(limit)
            .offset(offset)
            .select((
                PurchaseRow::as_select(),
                CourseRow::as_select(),
                diesel::dsl::sql::<BigInt>("count(*) OVER ()"),
            ))
            .load(&mut conn)
            .await
            .map_err(from_diesel)?;
        let count = match rows.as_slice().first() {
            Some((_, _, count)) => *count,
            // An empty page carries no count: only a page past the end asks again.
            None if offset == 0 => 0,
            None => mine()
                .count()
                .get_result(&mut conn)
                .await
                .map_err(from_diesel)?,
        };
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
        let mut conn = self.conn().await?;
        // lms_sql_rows' commerce module: one atomic UPDATE takes the lease (of concurrent
        // takers, the row lock lets one through and the others re-check and miss); a miss is
        // read to tell an unknown purchase from a busy one.
        for _ in 0..lms_sql_rows::REFUND_LEASE_ATTEMPTS {
            let free = purchases::refund_lease_until
                .is_null()
                .or(purchases::refund_lease_until.le(now));
            let taken = diesel::update(purchases::table.find(id.as_uuid()).filter(free))
                .set(purchases::refund_lease_until.eq(until))
                .returning(PurchaseRow::as_returning())
                .get_result(&mut conn)
                .await
                .optional()
                .map_err(from_diesel)?;
            if let Some(row) = taken {
                return Ok(RefundLease::Granted(row.into_domain()?));
            }
            let held: Option<Option<OffsetDateTime>> = purchases::table
                .find(id.as_uuid())
                .select(purchases::refund_lease_until)
                .first(&mut conn)
                .await
                .optional()
                .map_err(from_diesel)?;
            match RefundLeaseMiss::of(held, now) {
                RefundLeaseMiss::NotFound => return Err(RepoError::NotFound),
                RefundLeaseMiss::Busy { until } => return Ok(RefundLease::Busy { until }),
                RefundLeaseMiss::Retry => {}
            }
        }
        Err(lms_sql_rows::refund_lease_contended())
    }

    async fn release_refund(&self, id: PurchaseId, until: OffsetDateTime) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        // Only this caller's lease is written. `until` binds truncated to microseconds, as it
        // was stored, so the comparison is exact.
        diesel::update(
            purchases::table
                .find(id.as_uuid())
                .filter(purchases::refund_lease_until.eq(until)),
        )
        .set(purchases::refund_lease_until.eq(None::<OffsetDateTime>))
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(from_diesel)
    }

    async fn revenue(&self, query: &RevenueQuery) -> Result<Vec<RevenueLine>, RepoError> {
        let mut conn = self.conn().await?;
        let rows: Vec<RevenueRow> = revenue_statement(query)
            .load(&mut conn)
            .await
            .map_err(from_diesel)?;
        rows.into_iter()
            .map(|row| lms_sql_rows::RevenueRecord::from(row).into_line())
            .collect()
    }
}

/// The inbox rows `filter` selects.
fn filtered_events(filter: EventFilter) -> webhook_events::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = webhook_events::table.into_boxed();
    if let Some(outcome) = filter.outcome {
        query = query.filter(webhook_events::outcome.eq(outcome.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(webhook_events::first_received_at.ge(since));
    }
    query
}

#[async_trait]
impl EventInbox for PgStore {
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
        let conn = self.conn().await?;
        // One autocommit statement.
        upsert_event(&conn, delivery.kind, row)
            .await
            .map_err(from_diesel)
    }

    async fn count_redelivery(
        &self,
        event_id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        let conn = self.conn().await?;
        let counted = CountRedelivery {
            event_id,
            at: stored_precision(at),
        }
        .execute(&mut &*conn)
        .await
        .map_err(from_diesel)?;
        Ok(counted == 1)
    }

    async fn mark_failed(&self, event_id: &str, error: &str) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        let marked = diesel::update(webhook_events::table.find(event_id))
            .set((
                webhook_events::outcome.eq(EventOutcome::Failed.as_str()),
                webhook_events::error.eq(error),
            ))
            .execute(&mut conn)
            .await
            .map_err(from_diesel)?;
        if marked == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<InboxRecord>, RepoError> {
        let mut conn = self.conn().await?;
        let row = webhook_events::table
            .find(event_id)
            .select(WebhookEventRow::as_select())
            .first(&mut conn)
            .await;
        found(row, WebhookEventRow::into_domain)
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<InboxRecord>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let mut conn = self.conn().await?;
        // Count and page from one snapshot, so the total matches the items.
        let (count, rows) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let count: i64 = filtered_events(filter).count().get_result(conn).await?;
                let rows: Vec<WebhookEventRow> = filtered_events(filter)
                    .order((
                        webhook_events::first_received_at.desc(),
                        webhook_events::event_id.desc(),
                    ))
                    .limit(limit)
                    .offset(offset)
                    .select(WebhookEventRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((count, rows))
            })
            .await
            .map_err(from_diesel)?;
        lms_sql_rows::page(rows, count, WebhookEventRow::into_domain)
    }

    async fn known_event_ids(&self, event_ids: &[String]) -> Result<Vec<String>, RepoError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        // `event_id = ANY($1)`: one parameter, however many ids.
        webhook_events::table
            .filter(webhook_events::event_id.eq_any(event_ids))
            .select(webhook_events::event_id)
            .load(&mut conn)
            .await
            .map_err(from_diesel)
    }

    async fn prune_payloads(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, RepoError> {
        let mut conn = self.conn().await?;
        let pruned = diesel::sql_query(PRUNE_PAYLOADS)
            .bind::<Timestamptz, _>(received_before)
            .bind::<BigInt, _>(i64::from(limit))
            .execute(&mut conn)
            .await
            .map_err(from_diesel)?;
        Ok(u64::try_from(pruned).unwrap_or(0))
    }
}

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), RepoError> {
        self.insert(audit_log::table, AuditRow::from_domain(entry)?)
            .await
    }

    async fn list_audit(&self, page: PageRequest) -> Result<Page<AuditEntry>, RepoError> {
        let (limit, offset) = lms_sql_rows::limit_offset(page);
        let mut conn = self.conn().await?;
        let (count, rows) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(async |conn| {
                let count: i64 = audit_log::table.count().get_result(conn).await?;
                // The id is the append order: the later appended first among equal times.
                let rows: Vec<AuditRow> = audit_log::table
                    .order((audit_log::at.desc(), audit_log::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .select(AuditRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, diesel::result::Error>((count, rows))
            })
            .await
            .map_err(from_diesel)?;
        lms_sql_rows::page(rows, count, AuditRow::into_domain)
    }
}

#[async_trait]
impl DeploymentRegistry for PgStore {
    async fn claim_payments_mode(&self, mode: PaymentsMode) -> Result<DeploymentClaim, RepoError> {
        let mut conn = self.conn().await?;
        // Two autocommit statements (see lms_sql_rows' deployment module): a concurrent first
        // claim makes this insert wait for its commit and then do nothing, and the select,
        // a statement of its own, sees the committed row.
        let inserted = diesel::insert_into(deployment::table)
            .values((
                deployment::id.eq(lms_sql_rows::DEPLOYMENT_ROW_ID),
                deployment::payments_mode.eq(mode.as_str()),
            ))
            .on_conflict(deployment::id)
            .do_nothing()
            .execute(&mut conn)
            .await
            .map_err(from_diesel)?;
        if inserted == 1 {
            return Ok(DeploymentClaim::Recorded);
        }
        let recorded: String = deployment::table
            .find(lms_sql_rows::DEPLOYMENT_ROW_ID)
            .select(deployment::payments_mode)
            .first(&mut conn)
            .await
            .map_err(from_diesel)?;
        lms_sql_rows::deployment_claim(mode, &recorded)
    }
}

#[async_trait]
impl StorageHealth for PgStore {
    async fn ping(&self) -> Result<String, RepoError> {
        let mut conn = self.conn().await?;
        diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
            .execute(&mut conn)
            .await
            .map_err(|e| match from_diesel(e) {
                RepoError::Unexpected(cause) => RepoError::Unavailable(cause),
                other => other,
            })?;
        drop(conn);
        let totals = self.totals();
        Ok(format!(
            "postgres reachable; pools: {} ({} connections, {} idle)",
            totals.pools, totals.connections, totals.idle_connections
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_text_statements_name_the_stored_pending_status() {
        let pending = format!("status = '{}'", PurchaseStatus::Pending.as_str());
        assert!(CLAIM_FOR_RECONCILIATION.contains(&pending));
    }

    #[test]
    fn timestamps_keep_microseconds_and_drop_the_rest() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_789).unwrap();
        assert_eq!(
            stored_precision(at).unix_timestamp_nanos(),
            1_780_000_000_123_456_000
        );
        let exact = OffsetDateTime::from_unix_timestamp_nanos(1_780_000_000_123_456_000).unwrap();
        assert_eq!(stored_precision(exact), exact);
    }
}
