//! Test support: a PostgreSQL database of its own for one test.
//!
//! [`TestDatabase`] creates a database through a maintenance connection to
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) and drops it
//! `WITH (FORCE)` when the guard is dropped, whether the test passed or failed.
//!
//! - [`TestDatabase::migrated`] clones a **template** holding lms-postgres' migrations
//!   (`CREATE DATABASE .. TEMPLATE`), which costs a file copy instead of running every
//!   migration. The template is named after [`lms_postgres::migrations_fingerprint`], so it
//!   is built once per migration set, by whichever test process needs it first, under a
//!   PostgreSQL advisory lock (nextest runs every test in a process of its own), and any
//!   edit to a migration makes a new one.
//! - [`TestDatabase::create`] makes an empty database, for tests of the migrations.
//! - The first database a process asks for **sweeps** what crashed runs left: test databases
//!   whose creating process is gone (each process keeps a session open whose
//!   `application_name` carries the token in its databases' names; a killed process loses
//!   it), or older than a day, and templates of other migration sets older than a day.
//!   Only names this crate makes (`lms_tdb_..`, see `names`) are ever dropped.
//!
//! ```toml
//! [dev-dependencies]
//! lms-test-db.workspace = true
//! ```

// Test support: a setup that fails is a failed test, reported as a panic like any other.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failing set-up is a failing test"
)]

mod names;
pub mod schema;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::sql_types::{Bool, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// A test database older than this is dropped by the sweep whoever made it: no test runs
/// for a day, so its process is hung or the liveness check could not see it.
const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// A test database whose owner session is gone is dropped once it is this old: a sweep's
/// reading of the sessions and of the databases are not one snapshot, so a database created
/// a moment ago might look orphaned to it.
const ORPHAN_GRACE: Duration = Duration::from_secs(120);
/// The advisory lock under which templates are built and stale ones dropped ("lms_tdb!").
const TEMPLATE_LOCK: i64 = 0x6c6d_735f_7464_6221;
const OWNER_APPLICATION_NAME: &str = "lms_tdb_owner_";

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

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh name for a database this process creates.
fn next_name(label: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    names::test_database(label, now_unix(), owner_token(), n)
}

/// This process's token. The first call opens the liveness session (a connection that
/// lives as long as the process, on a thread of its own, its `application_name` carrying the
/// token) before any database is named after it.
fn owner_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let token = uuid::Uuid::new_v4().simple().to_string()[..names::TOKEN_LEN].to_owned();
        let application_name = format!("{OWNER_APPLICATION_NAME}{token}");
        let (ready, opened) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("lms-test-db-owner".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the liveness session");
                runtime.block_on(async move {
                    let session = async {
                        let mut conn = AsyncPgConnection::establish(&maintenance_url()).await?;
                        conn.batch_execute(&format!("SET application_name = '{application_name}'"))
                            .await?;
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(conn)
                    };
                    match session.await {
                        Ok(conn) => {
                            let _ = ready.send(Ok(()));
                            // Held until the process ends; the server then ends the session.
                            let _conn = conn;
                            std::future::pending::<()>().await;
                        }
                        Err(error) => {
                            let _ = ready.send(Err(error.to_string()));
                        }
                    }
                });
            })
            .expect("a thread for the liveness session");
        match opened.recv() {
            Ok(Ok(())) => token,
            Ok(Err(error)) => panic!("PostgreSQL must be reachable at TEST_DATABASE_URL: {error}"),
            Err(_) => panic!("the liveness session's thread ended"),
        }
    })
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    value: bool,
}

async fn execute(conn: &mut AsyncPgConnection, sql: &str) -> Result<(), diesel::result::Error> {
    diesel::sql_query(sql).execute(conn).await.map(drop)
}

async fn names_of(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect()
}

/// Drops what crashed runs left, once per process (see the crate's documentation).
async fn sweep_once(conn: &mut AsyncPgConnection) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::Relaxed) {
        return;
    }
    // Sessions first: a database created after this reading is younger than the grace.
    let live: Vec<String> = names_of(
        conn,
        "SELECT application_name AS name FROM pg_stat_activity \
         WHERE application_name LIKE 'lms\\_tdb\\_owner\\_%'",
    )
    .await;
    let live: Vec<&str> = live
        .iter()
        .filter_map(|a| a.strip_prefix(OWNER_APPLICATION_NAME))
        .collect();
    let now = now_unix();
    let candidates = names_of(
        conn,
        "SELECT datname AS name FROM pg_database \
         WHERE datname LIKE 'lms\\_tdb\\_%' AND NOT datistemplate",
    )
    .await;
    for name in candidates {
        let Some(parsed) = names::parse(&name) else {
            continue;
        };
        let age = now.saturating_sub(parsed.created_unix);
        let orphaned = !live.contains(&parsed.token) && age > ORPHAN_GRACE.as_secs();
        if orphaned || age > MAX_AGE.as_secs() {
            match execute(
                conn,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await
            {
                Ok(()) => eprintln!("lms-test-db: dropped {name}, left by an earlier run"),
                Err(error) => eprintln!("lms-test-db: could not drop leftover {name}: {error}"),
            }
        }
    }
}

/// Templates of other migration sets older than [`MAX_AGE`]; called under the lock.
async fn drop_stale_templates(conn: &mut AsyncPgConnection, current: &str) {
    let stale = names_of(
        conn,
        &format!(
            "SELECT datname AS name FROM pg_database \
             WHERE datname LIKE 'lms\\_tdb\\_template\\_%' AND datname <> '{current}' \
             AND coalesce(substring(shobj_description(oid, 'pg_database') FROM 'created ([0-9]+)')::bigint, 0) < {}",
            now_unix().saturating_sub(MAX_AGE.as_secs())
        ),
    )
    .await;
    for name in stale {
        let dropped = async {
            execute(conn, &format!("ALTER DATABASE {name} IS_TEMPLATE false")).await?;
            execute(
                conn,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await
        };
        match dropped.await {
            Ok(()) => eprintln!("lms-test-db: dropped {name}, a template of older migrations"),
            Err(error) => eprintln!("lms-test-db: could not drop stale template {name}: {error}"),
        }
    }
}

async fn is_template(conn: &mut AsyncPgConnection, name: &str) -> bool {
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate) AS value",
    )
    .bind::<Text, _>(name)
    .get_result::<Flag>(conn)
    .await
    .unwrap()
    .value
}

/// The template for this build's migrations, built if absent. Whoever holds the advisory lock
/// builds it under a test database's name (so a crash leaves something the sweep drops),
/// marks it a template that takes no connections, then renames it: the template's name
/// never stands for a half-migrated database.
async fn ensure_template(conn: &mut AsyncPgConnection) -> String {
    let template = names::template(lms_postgres::migrations_fingerprint());
    if is_template(conn, &template).await {
        return template;
    }
    execute(conn, &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .await
        .unwrap();
    if !is_template(conn, &template).await {
        drop_stale_templates(conn, &template).await;
        let build = next_name("build");
        execute(conn, &format!("CREATE DATABASE {build}"))
            .await
            .unwrap();
        if let Err(error) =
            lms_postgres::run_migrations(&with_database(&maintenance_url(), &build)).await
        {
            let _ = execute(
                conn,
                &format!("DROP DATABASE IF EXISTS {build} WITH (FORCE)"),
            )
            .await;
            panic!("migrating the test template failed: {error}");
        }
        for statement in [
            format!("ALTER DATABASE {build} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
            format!(
                "COMMENT ON DATABASE {build} IS 'lms-test-db template, created {}'",
                now_unix()
            ),
            // Waits (up to 5 s, PostgreSQL's own limit) for the migration's session to end.
            format!("ALTER DATABASE {build} RENAME TO {template}"),
        ] {
            execute(conn, &statement).await.unwrap();
        }
    }
    execute(conn, &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .await
        .unwrap();
    template
}

/// A database of its own for one test; dropped with the guard.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database. `prefix` labels it (`lms_tdb_<label>_..`, see the crate's
    /// documentation), so a leftover says which tests made it.
    pub async fn create(prefix: &str) -> Self {
        let name = next_name(&names::label(prefix));
        let mut conn = maintenance_connection().await;
        sweep_once(&mut conn).await;
        execute(&mut conn, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Self::named(name)
    }

    /// A database holding every embedded migration of lms-postgres, as
    /// [`TestDatabase::create`] and `lms_postgres::run_migrations` would leave it, cloned from
    /// the template.
    pub async fn migrated(prefix: &str) -> Self {
        let name = next_name(&names::label(prefix));
        let mut conn = maintenance_connection().await;
        sweep_once(&mut conn).await;
        let template = ensure_template(&mut conn).await;
        execute(
            &mut conn,
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        )
        .await
        .unwrap();
        Self::named(name)
    }

    fn named(name: String) -> Self {
        let url = with_database(&maintenance_url(), &name);
        Self { name, url }
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
                execute(
                    &mut conn,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            // The sweep of a later run drops it once this process is gone.
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
