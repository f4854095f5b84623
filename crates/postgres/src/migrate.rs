//! The embedded migrations of `migrations/postgres/` and the functions the app's `migrate` command uses.
//!
//! diesel_migrations is synchronous: it runs on a blocking thread over an
//! [`AsyncConnectionWrapper`], so no libpq is needed. The connection is made like the
//! store's (same TLS, lock and idle limits), with the longer
//! [`PgConnectionOptions::migration_statement_timeout`].

use crate::connection::{ConnectSpec, PgConnectionOptions, Purpose};
use crate::error::from_connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use lms_ports::{BoxError, Context, RepoError};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

/// The advisory lock key (`lms_migr` in ASCII) that makes instances starting together migrate
/// one after the other: the first applies the pending migrations, the others find none left.
pub const MIGRATION_LOCK: i64 = 0x6c6d_735f_6d69_6772;

async fn with_sync_connection<T, F>(
    url: &str,
    options: &PgConnectionOptions,
    work: F,
) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: FnOnce(&mut SyncPg) -> Result<T, RepoError> + Send + 'static,
{
    let spec = ConnectSpec::parse(url, options, Purpose::Migration)?;
    let connection = spec.establish().await.map_err(from_connection)?;
    // The wrapper blocks on this runtime's handle, which a blocking thread may do.
    tokio::task::spawn_blocking(move || work(&mut SyncPg::from(connection)))
        .await
        .map_err(|e| RepoError::unexpected(Context::new("migration task failed", e)))?
}

fn failed(error: BoxError) -> RepoError {
    RepoError::unexpected(Context::new("migration failed", error))
}

/// [`run_migrations_with`] the default [`PgConnectionOptions`].
///
/// # Errors
/// As [`run_migrations_with`].
pub async fn run_migrations(url: &str) -> Result<Vec<String>, RepoError> {
    run_migrations_with(url, &PgConnectionOptions::default()).await
}

/// Applies every pending migration; returns the versions applied (empty when up to date).
///
/// # Errors
/// [`RepoError::Unavailable`] when the database cannot be reached (refused, TLS or
/// certificate failure, authentication); [`RepoError::Unexpected`] for an invalid URL or
/// `sslmode`, and when a migration fails (it is rolled back), a statement running past
/// `migration_statement_timeout` or waiting past `lock_timeout` included.
pub async fn run_migrations_with(
    url: &str,
    options: &PgConnectionOptions,
) -> Result<Vec<String>, RepoError> {
    let wait = options.migration_statement_timeout;
    with_sync_connection(url, options, move |connection| {
        holding_migration_lock(connection, wait, |connection| {
            let applied = connection
                .run_pending_migrations(MIGRATIONS)
                .map_err(failed)?;
            Ok(applied.iter().map(ToString::to_string).collect())
        })
    })
    .await
}

/// Runs `work` holding the migration lock. Waiting for another instance's migrations may take
/// as long as they may run (`wait`, not the session's short `lock_timeout`); the migrations
/// themselves then run under the session's own limits again.
fn holding_migration_lock<T>(
    connection: &mut SyncPg,
    wait: std::time::Duration,
    work: impl FnOnce(&mut SyncPg) -> Result<T, RepoError>,
) -> Result<T, RepoError> {
    use diesel::connection::SimpleConnection;
    let lock_failed = |e: diesel::result::Error| {
        RepoError::unexpected(Context::new("taking the migration lock", e))
    };
    connection
        .batch_execute(&format!(
            "SET lock_timeout = {}; SELECT pg_advisory_lock({MIGRATION_LOCK}); RESET lock_timeout",
            wait.as_millis()
        ))
        .map_err(lock_failed)?;
    let outcome = work(connection);
    // Closing the connection would release it too; unlocking says so explicitly.
    let unlocked = connection
        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .map_err(lock_failed);
    let value = outcome?;
    unlocked?;
    Ok(value)
}

/// The versions of this build's migrations that the database has not applied, oldest first
/// (empty when it is up to date, or ahead of this build). Reads diesel's migrations table
/// without creating it, over a connection made like the store's.
///
/// # Errors
/// As [`run_migrations_with`] when the database cannot be reached or read.
pub async fn pending_migrations_with(
    url: &str,
    options: &PgConnectionOptions,
) -> Result<Vec<String>, RepoError> {
    use diesel::sql_types::{Bool, Text};
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }

    let read_failed = |e: diesel::result::Error| {
        RepoError::unexpected(Context::new("reading the applied migrations", e))
    };
    let spec = ConnectSpec::parse(url, options, Purpose::Migration)?;
    let mut connection = spec.establish().await.map_err(from_connection)?;
    let table =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists")
            .get_result::<Exists>(&mut connection)
            .await
            .map_err(read_failed)?;
    let applied: Vec<String> = if table.exists {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(&mut connection)
            .await
            .map_err(read_failed)?
            .into_iter()
            .map(|row| row.version)
            .collect()
    } else {
        Vec::new()
    };
    Ok(embedded_migration_versions()
        .into_iter()
        .filter(|version| !applied.contains(version))
        .collect())
}

/// Reverts every applied migration, newest first; returns the versions reverted.
///
/// # Errors
/// As [`run_migrations`].
pub async fn revert_all_migrations(url: &str) -> Result<Vec<String>, RepoError> {
    with_sync_connection(url, &PgConnectionOptions::default(), |connection| {
        let reverted = connection
            .revert_all_migrations(MIGRATIONS)
            .map_err(failed)?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
    .await
}

/// A fingerprint (16 hex digits) of the migrations embedded in this build: their file names
/// and contents. Two builds with the same fingerprint create the same schema, so a database
/// migrated by one (a test template, say) can stand in for a fresh migration by the other.
pub fn migrations_fingerprint() -> &'static str {
    env!("LMS_POSTGRES_MIGRATIONS_FINGERPRINT")
}

/// The versions of the migrations embedded in this build, oldest first.
pub fn embedded_migration_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|migrations| {
            migrations
                .iter()
                .map(|m| m.name().version().to_string())
                .collect()
        })
        .unwrap_or_default()
}
