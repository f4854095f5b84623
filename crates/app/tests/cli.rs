//! The binary as an operator runs it: configuration errors, `migrate`, `serve` + SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lms-app");
const JWT: &str = "0123456789abcdef0123456789abcdef-jwt";

fn maintenance_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database, dropped at the end.
struct Db {
    name: String,
}

impl Db {
    async fn create() -> Self {
        let name = format!("lms_cli_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&maintenance_url())
            .await
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        let base = maintenance_url();
        let (base, _) = base.rsplit_once('/').unwrap();
        format!("{base}/{}", self.name)
    }

    async fn drop_now(self) {
        let mut conn = AsyncPgConnection::establish(&maintenance_url())
            .await
            .unwrap();
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    // No stray configuration: empty environment, and a directory without config.toml.
    cmd.env_clear().current_dir(std::env::temp_dir());
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

fn base_env(database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("JWT_SECRET", JWT.to_owned()),
        ("STRIPE_SECRET_KEY", "sk_test_cli_secret".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", "whsec_cli_secret".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ]
}

fn run(env: &[(&str, String)], args: &[&str]) -> Output {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    command(&pairs).args(args).output().unwrap()
}

#[test]
fn invalid_configuration_refuses_to_start_naming_the_variable_and_hiding_secrets() {
    let mut env = base_env("postgres://postgres@127.0.0.1:5432/none");
    env.retain(|(k, _)| *k != "JWT_SECRET");
    env.push(("JWT_SECRET", "too-short".to_owned()));
    let out = run(&env, &["serve"]);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("sk_test_cli_secret") && !stderr.contains("whsec_cli_secret"),
        "{stderr}"
    );

    env.retain(|(k, _)| *k != "STRIPE_SECRET_KEY" && *k != "JWT_SECRET");
    env.push(("JWT_SECRET", JWT.to_owned()));
    let out = run(&env, &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STRIPE_SECRET_KEY"));

    let out = run(&base_env("postgres://x/y"), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[tokio::test]
async fn migrate_then_serve_then_stop_gracefully_on_sigterm() {
    let db = Db::create().await;
    let env = base_env(&db.url());
    let migrated = run(&env, &["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let logs = String::from_utf8_lossy(&migrated.stdout);
    assert!(logs.contains("migrations applied"), "{logs}");

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = env;
    env.push(("PORT", port.to_string()));
    env.push(("HOST", "127.0.0.1".to_owned()));
    env.push(("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut child = command(&pairs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(response) = http_get(port, "/api/v1/healthcheck") {
            break response;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"OK\""), "{health}");
    assert!(
        health.to_ascii_lowercase().contains("x-request-id:"),
        "{health}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no graceful stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(
        stdout.contains("\"request_id\""),
        "request spans carry request_id: {stdout}"
    );
    for secret in ["sk_test_cli_secret", "whsec_cli_secret", JWT] {
        assert!(!stdout.contains(secret), "secret in logs");
    }
    db.drop_now().await;
}
