//! The binary's JSON logs as an operator's log pipeline reads them: with `LOG_FORMAT=json`
//! every stdout line is one JSON object; request logs carry the request's `request_id`, and the
//! checkout and webhook logs carry `purchase_id` and `event_id`.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lms-app");

/// The binary's working directory (its SQLite file lands in `data/`), removed at the end.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("lms-logs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary in demo mode with JSON logs, its stdout read line by line on a thread.
struct Demo {
    child: std::process::Child,
    lines: Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    logs: Vec<String>,
    _dir: WorkDir,
}

impl Demo {
    fn start() -> Self {
        let dir = WorkDir::new();
        let mut child = Command::new(BIN)
            .env_clear()
            .current_dir(&dir.0)
            .envs([
                ("PORT", "0"),
                ("SANDBOX_PORT", "0"),
                ("HTTP_WORKERS", "1"),
                ("SHUTDOWN_TIMEOUT_SECS", "2"),
                ("LOG_FORMAT", "json"),
                ("RUST_LOG", "info"),
                // Beside other tests: the metrics listener on a free port.
                ("METRICS_ADDR", "127.0.0.1:0"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            reader: Some(reader),
            logs: Vec::new(),
            _dir: dir,
        }
    }

    /// A started demo once it listens, and its base URL (from its `listening` line).
    fn start_listening() -> (Self, String) {
        let mut demo = Self::start();
        let listening = demo.wait_until("listening", |_| true);
        let base = listening["url"].as_str().unwrap().to_owned();
        (demo, base)
    }

    /// Reads log lines until one has `message` and satisfies `also`; returns it.
    fn wait_until(&mut self, message: &str, also: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no {message:?} in: {:#?}", self.logs));
            self.logs.push(line.clone());
            let event: Value = serde_json::from_str(&line).unwrap_or_else(|err| {
                panic!("a log line that is not JSON ({err}): {line}");
            });
            if event["message"] == message && also(&event) {
                return event;
            }
        }
    }

    /// Stops the process (SIGTERM, graceful) and returns every line it wrote.
    fn stop(mut self) -> Vec<String> {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no graceful stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.logs.extend(self.lines.try_iter());
        std::mem::take(&mut self.logs)
    }
}

/// A field of an event, or of the spans it was logged in (innermost first).
fn field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(value) = event.get(name) {
        return Some(value);
    }
    event
        .get("spans")
        .and_then(Value::as_array)
        .and_then(|spans| spans.iter().rev().find_map(|span| span.get(name)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_request_purchase_and_event_ids() {
    let (mut demo, base) = Demo::start_listening();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // A request that fails, with the caller's own request id.
    let failing = client
        .post(format!("{base}/api/v1/payments/create-checkout-session"))
        .header("x-request-id", "logs-test-unauthorized")
        .json(&json!({"courseId": uuid::Uuid::new_v4().to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(failing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(failing.headers()["x-request-id"], "logs-test-unauthorized");

    // A purchase: sign up, check out, pay on the sandbox's page, wait for the webhook.
    let courses: Value = client
        .get(format!("{base}/api/v1/courses/published"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paid = courses["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|course| course["priceCents"].as_i64().unwrap_or(0) > 0)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let signup: Value = client
        .post(format!("{base}/api/v1/user/signup"))
        .json(&json!({"name": "Log Reader", "email": "logs@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().unwrap().to_owned();
    let checkout = client
        .post(format!("{base}/api/v1/payments/create-checkout-session"))
        .bearer_auth(&token)
        .json(&json!({"courseId": paid}))
        .send()
        .await
        .unwrap();
    assert_eq!(checkout.status(), StatusCode::CREATED);
    let checkout: Value = checkout.json().await.unwrap();
    let purchase_id = checkout["data"]["purchase"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = checkout["data"]["session"]["url"].as_str().unwrap();
    let paid_page = client
        .post(page)
        .form(&[("method", "card"), ("card_number", "4242424242424242")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid_page.status(), StatusCode::SEE_OTHER);
    let applied = demo.wait_until("webhook applied", |event| {
        field(event, "event_type") == Some(&json!("checkout.session.completed"))
    });

    let logs = demo.stop();
    assert!(!logs.is_empty());
    let events: Vec<Value> = logs
        .iter()
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("a log line that is not JSON ({err}): {line}"));
            assert!(event.is_object(), "{line}");
            assert!(
                event["level"].is_string() && event["timestamp"].is_string(),
                "{line}"
            );
            // The spans once, as a list ending with the current one; not again as `span`.
            assert!(event.get("span").is_none(), "{line}");
            event
        })
        .collect();

    // Every request's completion is logged inside its span, with its id.
    let completed: Vec<&Value> = events
        .iter()
        .filter(|event| event["message"] == "request completed")
        .collect();
    assert!(completed.len() >= 5, "{logs:#?}");
    for event in &completed {
        let id = field(event, "request_id").and_then(Value::as_str);
        assert!(
            id.is_some_and(|id| !id.is_empty()),
            "no request_id: {event}"
        );
    }
    let failed = completed
        .iter()
        .find(|event| field(event, "request_id") == Some(&json!("logs-test-unauthorized")))
        .unwrap_or_else(|| panic!("the failing request is logged: {logs:#?}"));
    assert_eq!(failed["status"], 401, "{failed}");

    // The checkout names its purchase; the webhook its event and purchase, inside the
    // delivery's request.
    let created = events
        .iter()
        .find(|event| event["message"] == "checkout session created")
        .unwrap_or_else(|| panic!("{logs:#?}"));
    assert_eq!(field(created, "purchase_id"), Some(&json!(purchase_id)));
    assert!(field(created, "request_id").is_some(), "{created}");
    assert_eq!(field(&applied, "purchase_id"), Some(&json!(purchase_id)));
    let event_id = field(&applied, "event_id").and_then(Value::as_str).unwrap();
    assert!(event_id.starts_with("evt_"), "{applied}");
    assert!(field(&applied, "request_id").is_some(), "{applied}");
    assert_eq!(
        field(&applied, "event_type"),
        Some(&json!("checkout.session.completed"))
    );
}

/// Piped stdout gets its lines in batches (crates/app/src/log_output.rs): a request answered
/// just before SIGTERM is still in the output once the process has exited, after the lines of
/// the shutdown it preceded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_answered_just_before_a_graceful_stop_is_still_logged() {
    let (demo, base) = Demo::start_listening();
    let answered = reqwest::Client::new()
        .get(format!("{base}/api/v1/healthcheck"))
        .header("x-request-id", "logs-test-last-request")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::OK);

    let logs = demo.stop();
    let last_request = logs
        .iter()
        .position(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["message"] == "request completed"
                && field(&event, "request_id") == Some(&json!("logs-test-last-request"))
        })
        .unwrap_or_else(|| panic!("the last request is not in the output: {logs:#?}"));
    let stopped = logs
        .iter()
        .rposition(|line| serde_json::from_str::<Value>(line).unwrap()["message"] == "stopped")
        .unwrap_or_else(|| panic!("no \"stopped\" line: {logs:#?}"));
    assert!(stopped > last_request, "{logs:#?}");
}
