//! The embedded migrations of `migrations/sqlite/` at the workspace root (next to PostgreSQL's
//! `migrations/postgres/`). They run on the store's writer connection (the only connection of
//! an in-memory database), so the store offers them as methods: [`crate::SqliteStore::run_migrations`], [`crate::SqliteStore::revert_all_migrations`].

use diesel::migration::MigrationSource;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use lms_ports::{BoxError, Context, RepoError};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

fn failed(error: BoxError) -> RepoError {
    RepoError::unexpected(Context::new("migration failed", error))
}

/// Applies every pending migration, each in its own transaction; returns the versions applied.
pub(crate) fn run_pending(connection: &mut SqliteConnection) -> Result<Vec<String>, RepoError> {
    let applied = connection
        .run_pending_migrations(MIGRATIONS)
        .map_err(failed)?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Reverts every applied migration, newest first; returns the versions reverted.
pub(crate) fn revert_all(connection: &mut SqliteConnection) -> Result<Vec<String>, RepoError> {
    let reverted = connection
        .revert_all_migrations(MIGRATIONS)
        .map_err(failed)?;
    Ok(reverted.iter().map(ToString::to_string).collect())
}

/// The versions of the migrations embedded in this build, oldest first.
pub fn embedded_migration_versions() -> Vec<String> {
    MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
        .map(|migrations| {
            migrations
                .iter()
                .map(|m| m.name().version().to_string())
                .collect()
        })
        .unwrap_or_default()
}
