//! The binary as an operator runs it: configuration errors, `migrate`, `serve` + SIGTERM, and
//! the offline demo started with no configuration at all.

use crate::offline::free_port;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_lms-app");
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

pub(crate) fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    // No stray configuration: empty environment, and a directory without config.toml.
    cmd.env_clear().current_dir(std::env::temp_dir());
    // Tests run side by side: each metrics listener on a free port, unless the test says.
    cmd.env("METRICS_ADDR", "127.0.0.1:0");
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
    let port = free_port().to_string();
    let stripe = |overrides: &[(&'static str, &str)]| {
        let mut env = base_env("postgres://lms:db-password@127.0.0.1:5432/none");
        env.push(("PORT", port.clone()));
        for (key, value) in overrides {
            env.retain(|(k, _)| k != key);
            if !value.is_empty() {
                env.push((key, (*value).to_owned()));
            }
        }
        env
    };
    let live = [
        ("STRIPE_SECRET_KEY", "sk_live_cli_secret"),
        (
            "STRIPE_SUCCESS_URL",
            "https://learn.example.com/ok?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("STRIPE_CANCEL_URL", "https://learn.example.com/cancel"),
        ("CORS_ORIGINS", "https://learn.example.com"),
    ];
    let with_live = |extra: (&'static str, &'static str)| {
        let mut pairs = live.to_vec();
        pairs.retain(|(k, _)| *k != extra.0);
        pairs.push(extra);
        stripe(&pairs)
    };
    // (environment, variable the one line must name)
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        // The Stripe key went missing: no silent fallback to simulated payments.
        (stripe(&[("STRIPE_SECRET_KEY", "")]), "APP_MODE"),
        (
            vec![("HOST", "0.0.0.0".to_owned()), ("PORT", port.clone())],
            "APP_MODE",
        ),
        (
            vec![("JWT_SECRET", JWT.to_owned()), ("PORT", port.clone())],
            "APP_MODE",
        ),
        (
            vec![("COOKIE_SECURE", "true".to_owned()), ("PORT", port.clone())],
            "APP_MODE",
        ),
        (stripe(&[("APP_MODE", "demo")]), "APP_MODE"),
        (
            stripe(&[("STRIPE_WEBHOOK_SECRET", "")]),
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            stripe(&[("STRIPE_WEBHOOK_SECRET", "sk_test_pasted_by_mistake")]),
            "STRIPE_WEBHOOK_SECRET",
        ),
        (
            stripe(&[("STRIPE_SECRET_KEY", "pk_test_publishable")]),
            "STRIPE_SECRET_KEY",
        ),
        // Quotes kept by `docker run --env-file`.
        (
            stripe(&[("DATABASE_URL", "\"postgres://lms:db-password@db:5432/lms\"")]),
            "DATABASE_URL",
        ),
        (stripe(&[("DATABASE_URL", "data/lms.db")]), "DATABASE_URL"),
        (
            stripe(&[(
                "DATABASE_URL",
                "postgres://lms:db-password@127.0.0.1:5432/none?sslmode=sometimes",
            )]),
            "DATABASE_URL",
        ),
        (
            stripe(&[("DATABASE_URL", "sqlite::memory:")]),
            "DATABASE_URL",
        ),
        (
            vec![("DATABASE_URL", "mysql://x/y".to_owned())],
            "DATABASE_URL",
        ),
        (stripe(&[("JWT_SECRET", "too-short")]), "JWT_SECRET"),
        (
            stripe(&[("JWT_SECRET", "change-me-change-me-change-me-change-me")]),
            "JWT_SECRET",
        ),
        (
            stripe(&[("JWT_SECRET", "abababababababababababababababababab")]),
            "JWT_SECRET",
        ),
        (stripe(&[("SEED_DEMO", "true")]), "SEED_DEMO"),
        (stripe(&[("PORT", "http")]), "PORT"),
        (
            stripe(&[("STRIPE_SECRET_KEY", "sk_live_cli_secret")]),
            "STRIPE_SUCCESS_URL",
        ),
        (
            with_live(("CORS_ORIGINS", "http://localhost:5173")),
            "CORS_ORIGINS",
        ),
        (with_live(("COOKIE_SECURE", "false")), "COOKIE_SECURE"),
        (
            stripe(&[("SIGN_IN_LIMIT_PER_IP", "lots")]),
            "SIGN_IN_LIMIT_PER_IP",
        ),
        (
            stripe(&[("STRIPE_ALLOW_PROMOTION_CODES", "maybe")]),
            "STRIPE_ALLOW_PROMOTION_CODES",
        ),
        (
            stripe(&[("STRIPE_AUTOMATIC_TAX", "vat")]),
            "STRIPE_AUTOMATIC_TAX",
        ),
        (
            stripe(&[("STRIPE_TAX_BEHAVIOR", "inclusive")]),
            "STRIPE_TAX_BEHAVIOR",
        ),
        (
            stripe(&[("STRIPE_ADAPTIVE_PRICING", "always")]),
            "STRIPE_ADAPTIVE_PRICING",
        ),
        (
            stripe(&[("SELF_REFUND_WINDOW_DAYS", "400")]),
            "SELF_REFUND_WINDOW_DAYS",
        ),
        (
            vec![
                ("SANDBOX_TAX_RATE_BPS", "20%".to_owned()),
                ("PORT", port.clone()),
            ],
            "SANDBOX_TAX_RATE_BPS",
        ),
    ];
    for (env, variable) in &cases {
        let started = Instant::now();
        let out = run(env, &["serve"]);
        assert!(started.elapsed() < Duration::from_secs(20), "{env:?}");
        assert_eq!(
            out.status.code(),
            Some(78),
            "{env:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains(&format!("{variable}: ")),
            "{variable}: {stderr}"
        );
        for secret in [
            "sk_test_cli_secret",
            "sk_live_cli_secret",
            "whsec_cli_secret",
            "db-password",
            JWT,
        ] {
            assert!(!stderr.contains(secret), "{stderr}");
        }
        // It stopped before binding anything or logging that it listens.
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{env:?}"
        );
    }

    let out = run(&base_env("postgres://x/y"), &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_and_version_describe_every_command() {
    let help = command(&[]).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "serve",
        "migrate",
        "healthcheck",
        "events",
        "reconcile",
        "admin",
        "--version",
        ".env.example",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // The README shows this very text.
    let readme = include_str!("../../../../README.md");
    assert!(
        readme.contains(text.trim_end()),
        "README.md's `lms-app --help` block differs from the binary's:\n{text}"
    );
    // Every command and subcommand has help, naming its options.
    let commands: &[(&[&str], &[&str])] = &[
        (&["serve"], &[]),
        (&["migrate"], &[]),
        (&["healthcheck"], &["--url", "--timeout"]),
        (&["events"], &["list", "replay", "sync"]),
        (&["events", "list"], &["--outcome", "--since", "unmatched"]),
        (&["events", "replay"], &["--failed", "EVT_ID"]),
        (&["events", "sync"], &["--since", "RFC 3339"]),
        (&["reconcile"], &["--older-than"]),
        (&["admin"], &["grant", "revoke"]),
        (&["admin", "grant"], &["EMAIL"]),
        (&["admin", "revoke"], &["EMAIL", "--role"]),
    ];
    for (sub, needles) in commands {
        let help = command(&[]).args(*sub).arg("--help").output().unwrap();
        assert!(help.status.success(), "{sub:?}");
        let text = String::from_utf8_lossy(&help.stdout);
        for needle in *needles {
            assert!(text.contains(needle), "{sub:?} {needle}: {text}");
        }
    }
    let version = command(&[]).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("lms-app {}", env!("CARGO_PKG_VERSION"))
    );
}

pub(crate) fn send_sigterm(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Waits (at most 10 s) for the process to stop by itself.
pub(crate) fn wait_for_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no graceful stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and waits for the process to stop by itself.
pub(crate) fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    send_sigterm(child);
    wait_for_exit(child)
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

    // The container probe: healthy against this instance (same configuration), unhealthy
    // against a port nobody listens on.
    let probe = command(&pairs).arg("healthcheck").output().unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let nobody = format!("http://127.0.0.1:{}/api/v1/healthcheck", free_port());
    let probe = command(&[])
        .args(["healthcheck", "--timeout", "2s", "--url", nobody.as_str()])
        .output()
        .unwrap();
    assert_eq!(probe.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&probe.stderr).contains("unhealthy"));

    // A request in flight when SIGTERM arrives is finished, not cut: half of its body is sent
    // before the signal and the rest after it.
    let body =
        r#"{"name":"Late Student","email":"late@example.com","password":"correct horse battery"}"#;
    let (head, tail) = body.split_at(20);
    let mut in_flight = TcpStream::connect(("127.0.0.1", port)).unwrap();
    in_flight
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        in_flight,
        "POST /api/v1/user/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    in_flight.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    send_sigterm(&child);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server waits for the request in flight"
    );
    in_flight.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    in_flight.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains("late@example.com"), "{response}");
    let status = wait_for_exit(&mut child);
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

/// A fresh empty working directory, removed at the end.
struct WorkDir(std::path::PathBuf);

impl WorkDir {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("lms-cli-offline-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn migrate_works_on_sqlite_too() {
    let dir = WorkDir::new();
    let env = [("DATABASE_URL", "sqlite://lms.db".to_owned())];
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = command(&pairs)
        .current_dir(&dir.0)
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let logs = String::from_utf8_lossy(&first.stdout);
    assert!(logs.contains("migrations applied"), "{logs}");
    assert!(
        !logs.contains("count=0"),
        "first run applies migrations: {logs}"
    );
    assert!(dir.0.join("lms.db").exists());
    let second = command(&pairs)
        .current_dir(&dir.0)
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(second.status.success());
    let logs = String::from_utf8_lossy(&second.stdout);
    assert!(logs.contains("count=0"), "nothing left to apply: {logs}");
}

#[test]
fn with_no_configuration_the_binary_runs_offline_then_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = WorkDir::new();
    // Only what a test needs to run beside others: free ports, one worker, JSON to parse.
    let mut child = command(&[
        ("PORT", "0"),
        ("SANDBOX_PORT", "0"),
        ("HTTP_WORKERS", "1"),
        ("SHUTDOWN_TIMEOUT_SECS", "2"),
        ("LOG_FORMAT", "json"),
    ])
    .current_dir(&dir.0)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs = Vec::new();
    let url = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the app logs that it listens");
        logs.push(line.clone());
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["message"] == "listening" {
            break event["url"].as_str().unwrap().to_owned();
        }
    };
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(url, format!("http://localhost:{port}"));

    let health = http_get(port, "/api/v1/healthcheck").unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let courses = http_get(port, "/api/v1/courses/published").unwrap();
    assert!(courses.starts_with("HTTP/1.1 200"), "{courses}");
    assert!(courses.contains("Rust for Web Developers"), "{courses}");
    assert!(
        dir.0.join("data").join("lms.db").exists(),
        "default SQLite file"
    );

    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
    reader.join().unwrap();
    logs.extend(lines_rx.try_iter());
    let logs = logs.join("\n");
    let simulated = logs
        .lines()
        .find(|line| line.contains("PAYMENTS ARE SIMULATED"))
        .unwrap_or_else(|| panic!("the sandbox warning is logged: {logs}"));
    assert!(simulated.contains("\"level\":\"WARN\""), "{simulated}");
    assert!(logs.contains("demo data created"), "{logs}");
    assert!(logs.contains("JWT_SECRET is not set"), "{logs}");
    for secret in ["whsec_", "sk_test_sandbox_"] {
        assert!(
            !logs.contains(secret),
            "a generated secret is logged: {logs}"
        );
    }
}
