//! How PgStore connects, against the local server: TLS as `sslmode` asks, the session limits
//! on every pooled connection, and statements that would hang cut short by them.
//!
//! The TLS checks need a server with `ssl = on` (Debian's cluster has it, with its
//! self-signed certificate); against one without TLS they say so and pass, except in CI.

#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use lms_domain::UserId;
use lms_ports::{RepoError, UserRepo};
use lms_postgres::{run_migrations_with, PgConnectionOptions, PgStore};
use lms_test_db::{maintenance_url, TestDatabase};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    value: bool,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn store(url: &str, options: &PgConnectionOptions) -> PgStore {
    PgStore::connect_lazy_with(url, 2, Duration::from_secs(10), options).unwrap()
}

async fn encrypted(store: &PgStore) -> bool {
    let mut conn = store.pooled_connection().await.unwrap();
    diesel::sql_query(
        "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS value",
    )
    .get_result::<Flag>(&mut conn)
    .await
    .unwrap()
    .value
}

async fn show(store: &PgStore, setting: &str) -> String {
    let mut conn = store.pooled_connection().await.unwrap();
    diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
        .get_result::<Setting>(&mut conn)
        .await
        .unwrap()
        .value
}

/// Whether the server offers TLS; when it does not, a TLS check has nothing to look at.
async fn server_has_tls() -> bool {
    let mut conn = AsyncPgConnection::establish(&maintenance_url())
        .await
        .unwrap();
    let on = diesel::sql_query("SELECT current_setting('ssl') = 'on' AS value")
        .get_result::<Flag>(&mut conn)
        .await
        .unwrap()
        .value;
    if !on {
        assert!(
            std::env::var_os("CI").is_none(),
            "the test server must have ssl = on in CI"
        );
        eprintln!("skipped: the PostgreSQL server at TEST_DATABASE_URL has ssl = off");
    }
    on
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_encrypts_and_disable_does_not() {
    if !server_has_tls().await {
        return;
    }
    let db = TestDatabase::migrated("lms_conn").await;
    let options = PgConnectionOptions::default();

    let required = store(&with_param(db.url(), "sslmode=require"), &options);
    assert!(encrypted(&required).await);

    let disabled = store(&with_param(db.url(), "sslmode=disable"), &options);
    assert!(!encrypted(&disabled).await);

    // No sslmode means libpq's `prefer`: encrypted when the server offers it.
    let preferred = store(db.url(), &options);
    assert!(encrypted(&preferred).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_no_trusted_root_vouches_for() {
    if !server_has_tls().await {
        return;
    }
    let db = TestDatabase::migrated("lms_conn").await;
    let url = with_param(db.url(), "sslmode=verify-full");
    let options = PgConnectionOptions::default();

    let Err(RepoError::Unavailable(cause)) = PgStore::connect_with(&url, 1, &options).await else {
        panic!("a self-signed server certificate must not pass verify-full");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(message.contains("certificate"), "{message}");

    // Migrations connect the same way.
    let Err(RepoError::Unavailable(cause)) = run_migrations_with(&url, &options).await else {
        panic!("migrations must verify the server like the store");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_accepts_the_servers_certificate_given_as_the_root() {
    if !server_has_tls().await {
        return;
    }
    let mut conn = AsyncPgConnection::establish(&maintenance_url())
        .await
        .unwrap();
    let cert_file = diesel::sql_query("SELECT current_setting('ssl_cert_file') AS value")
        .get_result::<Setting>(&mut conn)
        .await
        .unwrap()
        .value;
    if std::fs::read(&cert_file).is_err() {
        eprintln!("skipped: the server's certificate {cert_file} is not readable here");
        return;
    }
    // The server's own (self-signed) certificate is the one root that vouches for it; its
    // host name is not compared under verify-ca.
    let db = TestDatabase::migrated("lms_conn").await;
    let url = with_param(
        db.url(),
        &format!("sslmode=verify-ca&sslrootcert={cert_file}"),
    );
    let verified = PgStore::connect_with(&url, 1, &PgConnectionOptions::default())
        .await
        .unwrap();
    assert!(encrypted(&verified).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_sslmode_is_refused_before_any_connection() {
    let url = with_param(&maintenance_url(), "sslmode=sometimes");
    let options = PgConnectionOptions::default();
    let Err(RepoError::Unexpected(cause)) =
        PgStore::connect_lazy_with(&url, 1, Duration::from_secs(1), &options)
    else {
        panic!("a bogus sslmode must be refused");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(message.contains("sslmode"), "{message}");
    assert!(matches!(
        run_migrations_with(&url, &options).await,
        Err(RepoError::Unexpected(cause)) if lms_ports::chain_text(&*cause).contains("sslmode")
    ));
}

/// The directory of the test server's Unix socket, when the server runs on this machine and
/// listens on one; in CI it must.
async fn local_socket_directory(over_tcp: &PgStore) -> Option<String> {
    let directories = show(over_tcp, "unix_socket_directories").await;
    let port = show(over_tcp, "port").await;
    let found = directories
        .split(',')
        .map(str::trim)
        .find(|dir| {
            std::path::Path::new(dir)
                .join(format!(".s.PGSQL.{port}"))
                .exists()
        })
        .map(str::to_owned);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the test server must listen on a Unix socket of this machine in CI"
        );
        eprintln!("skipped: no Unix socket of the test server on this machine ({directories:?})");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_whose_host_is_the_socket_directory_connects_through_the_unix_socket() {
    let db = TestDatabase::migrated("lms_conn").await;
    let options = PgConnectionOptions::default();
    let over_tcp = store(db.url(), &options);
    let Some(directory) = local_socket_directory(&over_tcp).await else {
        return;
    };
    let user = show(&over_tcp, "session_authorization").await;
    let url = format!(
        "postgres://{}@{}/{}",
        utf8_percent_encode(&user, NON_ALPHANUMERIC),
        utf8_percent_encode(&directory, NON_ALPHANUMERIC),
        db.name()
    );

    let local = store(&url, &options);
    let mut conn = local.pooled_connection().await.unwrap();
    // The server's own address is NULL exactly when the session came through a Unix socket.
    let over_socket = diesel::sql_query("SELECT inet_server_addr() IS NULL AS value")
        .get_result::<Flag>(&mut conn)
        .await
        .unwrap()
        .value;
    assert!(over_socket, "{url}");
    drop(conn);
    // The store works there as over TCP, session limits included.
    assert_eq!(show(&local, "lock_timeout").await, "5s");
    assert!(local
        .get_user(UserId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
    // The server offers no TLS on a socket: a URL that requires it is refused, not served in
    // the clear.
    let required = PgStore::connect_lazy_with(
        &with_param(&url, "sslmode=require"),
        1,
        Duration::from_millis(500),
        &options,
    )
    .unwrap();
    let refused = required.pooled_connection().await.err().unwrap();
    assert!(
        lms_ports::chain_text(&refused).contains("server does not support TLS"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_carry_the_configured_session_limits() {
    let db = TestDatabase::migrated("lms_conn").await;
    let defaults = store(db.url(), &PgConnectionOptions::default());
    assert_eq!(show(&defaults, "statement_timeout").await, "15s");
    assert_eq!(show(&defaults, "lock_timeout").await, "5s");
    assert_eq!(
        show(&defaults, "idle_in_transaction_session_timeout").await,
        "30s"
    );

    let chosen = store(
        db.url(),
        &PgConnectionOptions {
            statement_timeout: Duration::from_millis(1234),
            lock_timeout: Duration::from_secs(2),
            idle_in_transaction_timeout: Duration::from_secs(45),
            ..PgConnectionOptions::default()
        },
    );
    // Both pool connections, not only the first.
    let (a, b) = tokio::join!(
        show(&chosen, "statement_timeout"),
        show(&chosen, "statement_timeout")
    );
    assert_eq!((a.as_str(), b.as_str()), ("1234ms", "1234ms"));
    assert_eq!(show(&chosen, "lock_timeout").await, "2s");
    assert_eq!(
        show(&chosen, "idle_in_transaction_session_timeout").await,
        "45s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_timeout_is_cancelled_instead_of_hanging() {
    let db = TestDatabase::migrated("lms_conn").await;
    let short = store(
        db.url(),
        &PgConnectionOptions {
            statement_timeout: Duration::from_millis(200),
            ..PgConnectionOptions::default()
        },
    );
    let mut conn = short.pooled_connection().await.unwrap();
    let started = Instant::now();
    let error = diesel::sql_query("SELECT pg_sleep(30)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{error}");
    assert!(error.to_string().contains("statement timeout"), "{error}");
}

/// Holds an exclusive lock on `users` from a session of its own until dropped.
async fn lock_users(url: &str) -> AsyncPgConnection {
    let mut holder = AsyncPgConnection::establish(url).await.unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    holder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_call_stuck_behind_a_lock_fails_as_unavailable_keeping_the_server_message() {
    let db = TestDatabase::migrated("lms_conn").await;
    let _holder = lock_users(db.url()).await;
    let user = UserId::from_uuid(Uuid::new_v4());

    // The lock wait is cut by lock_timeout...
    let by_lock = store(
        db.url(),
        &PgConnectionOptions {
            lock_timeout: Duration::from_millis(200),
            ..PgConnectionOptions::default()
        },
    );
    let started = Instant::now();
    let Err(RepoError::Unavailable(cause)) = by_lock.get_user(user).await else {
        panic!("a lock wait past lock_timeout must fail");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(message.contains("lock timeout"), "{message}");

    // ...and, with no lock limit, by statement_timeout.
    let by_statement = store(
        db.url(),
        &PgConnectionOptions {
            lock_timeout: Duration::ZERO,
            statement_timeout: Duration::from_millis(200),
            ..PgConnectionOptions::default()
        },
    );
    let started = Instant::now();
    let Err(RepoError::Unavailable(cause)) = by_statement.get_user(user).await else {
        panic!("a statement past statement_timeout must fail");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(message.contains("statement timeout"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_waiting_for_a_lock_fails_within_lock_timeout() {
    let db = TestDatabase::create("lms_conn").await;
    let _holder = {
        // A table the first migration will not need: the lock limit shows on the session
        // through a migration that must wait for it.
        let mut holder = AsyncPgConnection::establish(db.url()).await.unwrap();
        holder
            .batch_execute(
                "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP); \
                 BEGIN; LOCK TABLE __diesel_schema_migrations IN ACCESS EXCLUSIVE MODE",
            )
            .await
            .unwrap();
        holder
    };
    let options = PgConnectionOptions {
        lock_timeout: Duration::from_millis(200),
        migration_statement_timeout: Duration::from_secs(60),
        ..PgConnectionOptions::default()
    };
    let started = Instant::now();
    let Err(RepoError::Unexpected(cause)) = run_migrations_with(db.url(), &options).await else {
        panic!("a migration waiting past lock_timeout must fail");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(started.elapsed() < Duration::from_secs(10), "{message}");
    assert!(message.contains("lock timeout"), "{message}");
}

/// Instances that start together on one database migrate one after the other: exactly one
/// applies the migrations, the others wait for it and find nothing left, and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_migrating_at_once_apply_each_migration_once() {
    let db = TestDatabase::create("lms_conn").await;
    let options = PgConnectionOptions::default();
    let runs = (0..4).map(|_| {
        let (url, options) = (db.url().to_owned(), options.clone());
        tokio::spawn(async move { run_migrations_with(&url, &options).await })
    });
    let mut applied: Vec<Vec<String>> = Vec::new();
    for run in runs {
        applied.push(run.await.unwrap().unwrap());
    }
    let expected = lms_postgres::embedded_migration_versions();
    assert!(!expected.is_empty());
    let nonempty: Vec<_> = applied.iter().filter(|a| !a.is_empty()).collect();
    assert_eq!(nonempty.len(), 1, "{applied:?}");
    assert_eq!(nonempty[0].len(), expected.len(), "{applied:?}");
    assert!(run_migrations_with(db.url(), &options)
        .await
        .unwrap()
        .is_empty());
}

/// The migration lock is real: while another session holds it, a migration waits (and
/// creates nothing); once released, it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_waits_for_the_instance_holding_the_migration_lock() {
    let db = TestDatabase::create("lms_conn").await;
    let mut holder = AsyncPgConnection::establish(db.url()).await.unwrap();
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({})",
            lms_postgres::MIGRATION_LOCK
        ))
        .await
        .unwrap();
    let url = db.url().to_owned();
    let migration =
        tokio::spawn(
            async move { run_migrations_with(&url, &PgConnectionOptions::default()).await },
        );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !migration.is_finished(),
        "the migration must wait for the lock"
    );
    let mut probe = AsyncPgConnection::establish(db.url()).await.unwrap();
    let tables: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')",
    ))
    .get_result(&mut probe)
    .await
    .unwrap();
    assert_eq!(tables, 0, "nothing migrated while the lock is held");
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_unlock({})",
            lms_postgres::MIGRATION_LOCK
        ))
        .await
        .unwrap();
    let applied = migration.await.unwrap().unwrap();
    assert_eq!(applied, lms_postgres::embedded_migration_versions());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_server_closed_is_replaced_without_failing_a_call() {
    let db = TestDatabase::migrated("lms_conn").await;
    let store = PgStore::connect_lazy_with(
        db.url(),
        1,
        Duration::from_secs(10),
        &PgConnectionOptions::default(),
    )
    .unwrap();
    let pid_of = |store: &PgStore| {
        let store = store.clone();
        async move {
            #[derive(QueryableByName)]
            struct Pid {
                #[diesel(sql_type = diesel::sql_types::Integer)]
                pid: i32,
            }
            let mut conn = store.pooled_connection().await.unwrap();
            diesel::sql_query("SELECT pg_backend_pid() AS pid")
                .get_result::<Pid>(&mut conn)
                .await
                .unwrap()
                .pid
        }
    };
    let first = pid_of(&store).await;
    let mut admin = AsyncPgConnection::establish(db.url()).await.unwrap();
    diesel::sql_query(format!("SELECT pg_terminate_backend({first})"))
        .execute(&mut admin)
        .await
        .unwrap();
    // The client notices the closed socket on its own; give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The pool's only connection is gone: the next call gets a new one and succeeds.
    assert!(store
        .get_user(UserId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
    assert_ne!(pid_of(&store).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_waits_out_the_pool_says_why_no_connection_could_be_opened() {
    // No schema: every new connection fails to prepare the statements it pipelines.
    let db = TestDatabase::create("lms_conn").await;
    let store = PgStore::connect_lazy_with(
        db.url(),
        2,
        Duration::from_millis(500),
        &PgConnectionOptions::default(),
    )
    .unwrap();
    let Err(RepoError::Unavailable(cause)) =
        store.get_user(UserId::from_uuid(Uuid::new_v4())).await
    else {
        panic!("a database without the schema cannot serve a call");
    };
    let message = lms_ports::chain_text(&*cause);
    assert!(
        message.starts_with("timed out waiting for a database connection; opening one failed"),
        "{message}"
    );
    assert!(message.contains("does not exist"), "{message}");
}
