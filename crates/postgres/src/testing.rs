//! Test support (the `testing` feature): a database of its own for one test.
//!
//! [`TestDatabase`] creates `<prefix>_<uuid>` through a maintenance connection to
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), optionally
//! migrates it, and drops it `WITH (FORCE)` when the guard is dropped, whether the test passed
//! or failed. Enable it from a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! lms-postgres = { workspace = true, features = ["testing"] }
//! ```

// Test support: a setup that fails is a failed test, reported as a panic like any other.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failing unwrap is a failing test"
)]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Where test databases are created and dropped from: `TEST_DATABASE_URL`, or the local
/// server's `postgres` database.
pub fn maintenance_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `database` (query string kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{database}?{query}"),
        None => format!("{host_part}/{database}"),
    }
}

async fn maintenance_connection() -> AsyncPgConnection {
    AsyncPgConnection::establish(&maintenance_url())
        .await
        .expect("PostgreSQL must be reachable at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)")
}

/// A database of its own for one test; dropped with the guard.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database `<prefix>_<uuid>`.
    pub async fn create(prefix: &str) -> Self {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        let mut conn = maintenance_connection().await;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = with_database(&maintenance_url(), &name);
        Self { name, url }
    }

    /// [`TestDatabase::create`], then every embedded migration.
    pub async fn migrated(prefix: &str) -> Self {
        let db = Self::create(prefix).await;
        crate::run_migrations(&db.url).await.unwrap();
        db
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of this database (it may carry the maintenance URL's credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A plain connection to this database, to look at rows behind the store's back.
    pub async fn connection(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&maintenance_url()).await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_urls_point_at_the_test_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
