//! The embedded migrations of `migrations/` and the functions the app's `migrate` command uses.
//!
//! diesel_migrations is synchronous: it runs on a blocking thread over an
//! [`AsyncConnectionWrapper`], so no libpq is needed.

use crate::error::from_connection;
use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use lms_ports::RepoError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

type SyncPg = AsyncConnectionWrapper<AsyncPgConnection>;

async fn with_sync_connection<T, F>(url: &str, work: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: FnOnce(&mut SyncPg) -> Result<T, RepoError> + Send + 'static,
{
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut connection = SyncPg::establish(&url).map_err(|e| from_connection(&e))?;
        work(&mut connection)
    })
    .await
    .map_err(|e| RepoError::Unexpected(format!("migration task failed: {e}")))?
}

fn failed(error: &(dyn std::error::Error + Send + Sync)) -> RepoError {
    RepoError::Unexpected(format!("migration failed: {error}"))
}

/// Applies every pending migration; returns the versions applied (empty when up to date).
///
/// # Errors
/// [`RepoError::Unavailable`] when the database cannot be reached; [`RepoError::Unexpected`]
/// when a migration fails (it is rolled back).
pub async fn run_migrations(url: &str) -> Result<Vec<String>, RepoError> {
    with_sync_connection(url, |connection| {
        let applied = connection
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| failed(&*e))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
}

/// Reverts every applied migration, newest first; returns the versions reverted.
///
/// # Errors
/// As [`run_migrations`].
pub async fn revert_all_migrations(url: &str) -> Result<Vec<String>, RepoError> {
    with_sync_connection(url, |connection| {
        let reverted = connection
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| failed(&*e))?;
        Ok(reverted.iter().map(ToString::to_string).collect())
    })
    .await
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
