//! The operator's commands as an operator runs them: the real binary, with the same variables
//! as the server it sits beside (`admin grant|revoke`, `events list|replay|sync`,
//! `reconcile`). The server runs in-process: in Stripe mode against an in-process sandbox
//! (PostgreSQL), or as the offline demo (SQLite).

use crate::cli::command;
use crate::offline::{free_port, offline_settings, Running, TempDir};
use lms_app::{Application, Settings};
use lms_ports::{AuditAction, AuditActor, AuditLog, PageRequest};
use lms_stripe_sandbox::{DeliveryConfig, PaymentMethod, Sandbox, SandboxConfig};
use lms_test_db::TestDatabase;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Output;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const KEY: &str = "sk_test_operator_commands";
const WEBHOOK_SECRET: &str = "whsec_operator_commands";
const JWT: &str = "0123456789abcdef0123456789abcdef-operator";

/// What a command did.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The summary: the last line of stdout.
    pub(crate) fn summary(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default()
    }

    #[track_caller]
    pub(crate) fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }
}

/// The binary with a server's configuration.
pub(crate) struct Cli {
    env: Vec<(String, String)>,
}

impl Cli {
    pub(crate) fn run(&self, args: &[&str]) -> Ran {
        let pairs: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Ran::from(command(&pairs).args(args).output().unwrap())
    }
}

/// A server in Stripe mode on its own PostgreSQL database, a sandbox delivering its webhooks,
/// and the command line configured like the server.
struct StripeWorld {
    sandbox: Sandbox,
    app: Running,
    cli: Cli,
    _db: TestDatabase,
}

impl StripeWorld {
    async fn start() -> Self {
        let port = free_port();
        let sandbox = Sandbox::start(SandboxConfig {
            secret_key: KEY.to_owned(),
            webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
            webhook_url: Some(format!("http://127.0.0.1:{port}/api/v1/payments/webhook")),
            delivery: DeliveryConfig {
                initial_backoff: Duration::from_millis(20),
                ..DeliveryConfig::default()
            },
            ..SandboxConfig::default()
        })
        .await
        .unwrap();
        let db = TestDatabase::migrated("lms_operator").await;
        // What the server and the commands share.
        let shared: Vec<(String, String)> = [
            ("APP_MODE", "stripe"),
            ("DATABASE_URL", db.url()),
            ("JWT_SECRET", JWT),
            ("STRIPE_SECRET_KEY", KEY),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("STRIPE_API_BASE", sandbox.base_url()),
            // Only the commands reconcile here.
            ("RECONCILE_INTERVAL", "off"),
            ("LOG_FORMAT", "text"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut serve = shared.clone();
        for (key, value) in [
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("HTTP_WORKERS", "1".to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        ] {
            serve.push((key.to_owned(), value));
        }
        let app = Application::build(Settings::from_pairs(serve).unwrap())
            .await
            .unwrap();
        Self {
            sandbox,
            app: Running::spawn(app),
            cli: Cli { env: shared },
            _db: db,
        }
    }

    /// A published course of a new instructor; its id.
    async fn course(&self) -> String {
        let instructor = self
            .app
            .sign_up("An Instructor", "teacher@example.com", "instructor")
            .await;
        let (status, body) = self
            .app
            .post(
                "/api/v1/courses",
                Some(&instructor),
                &json!({"title": "Operations", "priceCents": 2500, "currency": "usd"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let course = body["course"]["id"].as_str().unwrap().to_owned();
        let published = self
            .app
            .client
            .patch(self.app.url(&format!("/api/v1/courses/{course}")))
            .bearer_auth(&instructor)
            .json(&json!({"isPublished": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), StatusCode::OK);
        course
    }

    /// purchase-status without a session hint: only webhooks and reconciliation move it.
    async fn status(&self, token: &str, course: &str) -> Value {
        let (status, body) = self
            .app
            .get(
                &format!("/api/v1/payments/courses/{course}/purchase-status"),
                Some(token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
    }

    /// A student who checked out and paid by card while the sandbox delivered no webhook:
    /// (token, purchase id). The payment's events exist at Stripe only.
    async fn paid_without_webhooks(&self, course: &str, email: &str) -> (String, String) {
        let student = self.app.sign_up("A Student", email, "student").await;
        let session = self.app.checkout(&student, course).await;
        let purchase = session["client_reference_id"].as_str().unwrap().to_owned();
        self.sandbox.set_webhook_delivery(false);
        self.sandbox
            .pay(
                session["id"].as_str().unwrap(),
                &PaymentMethod::Card("4242424242424242".into()),
            )
            .unwrap();
        assert!(!self.sandbox.dropped_events().is_empty());
        // Deliveries under way finish; nothing of the payment arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let data = self.status(&student, course).await;
        assert_eq!(data["purchaseStatus"], "pending", "{data}");
        (student, purchase)
    }

    async fn stop(self) {
        self.app.stop().await;
        self.sandbox.stop().await;
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// A verified `checkout.session.completed` about a session and payment of no purchase of ours.
fn foreign_event(sandbox: &Sandbox, event_id: &str) -> (Vec<u8>, String) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    sandbox.signed(&json!({
        "id": event_id,
        "object": "event",
        "api_version": lms_stripe_sandbox::API_VERSION,
        "created": now,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": "cs_test_another_shop",
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": "paid",
            "amount_total": 1200,
            "currency": "usd",
            "client_reference_id": null,
            "metadata": {},
            "payment_intent": "pi_another_shop",
            "expires_at": now + 3600,
            "url": null,
            "livemode": false,
        }},
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_list_shows_an_unmatched_webhook_and_replay_names_an_unknown_event() {
    let world = StripeWorld::start().await;
    let (body, signature) = foreign_event(&world.sandbox, "evt_another_shop");
    let response = world
        .app
        .client
        .post(world.app.url("/api/v1/payments/webhook"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let listed = world.cli.run(&["events", "list", "--outcome", "unmatched"]);
    listed.assert_success();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "a header, the event, the count: {listed:#?}"
    );
    assert!(lines[0].starts_with("EVENT"), "{listed:#?}");
    assert!(
        lines[1].starts_with("evt_another_shop ")
            && lines[1].contains("checkout.session.completed")
            && lines[1].contains("unmatched"),
        "{listed:#?}"
    );
    assert_eq!(listed.summary(), "1 event unmatched");
    // Nothing failed; a time filter after the delivery leaves it out.
    let failed = world.cli.run(&["events", "list", "--outcome", "failed"]);
    assert_eq!(failed.assert_success().stdout, "0 events failed\n");
    let later = rfc3339(OffsetDateTime::now_utc() + time::Duration::minutes(1));
    let none = world.cli.run(&["events", "list", "--since", &later]);
    assert!(
        none.assert_success()
            .summary()
            .starts_with("0 events since "),
        "{none:#?}"
    );

    // An unknown id: exit 1, and the message says what is wrong and where to look.
    let unknown = world.cli.run(&["events", "replay", "evt_never_received"]);
    assert_eq!(unknown.code, Some(1), "{unknown:#?}");
    assert!(
        unknown
            .stderr
            .contains("cannot replay evt_never_received: no such event in the inbox"),
        "{unknown:#?}"
    );
    // The stored one replays through the same path: still about nothing of ours.
    let replayed = world.cli.run(&["events", "replay", "evt_another_shop"]);
    replayed.assert_success();
    assert!(
        replayed.stdout.contains("evt_another_shop: unmatched"),
        "{replayed:#?}"
    );
    assert_eq!(replayed.summary(), "1 event: unmatched 1");
    // Both at once: the known one is replayed, the unknown one named, and the run fails.
    let mixed = world
        .cli
        .run(&["events", "replay", "evt_another_shop", "evt_never_received"]);
    assert_eq!(mixed.code, Some(1), "{mixed:#?}");
    assert!(
        mixed.stdout.contains("evt_another_shop: unmatched"),
        "{mixed:#?}"
    );
    assert!(
        mixed.stderr.contains("1 event of 2 could not be replayed"),
        "{mixed:#?}"
    );
    // Nothing failed, so there is nothing to replay.
    let none_failed = world.cli.run(&["events", "replay", "--failed"]);
    assert_eq!(none_failed.assert_success().summary(), "0 events");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_sync_applies_the_events_whose_delivery_was_lost() {
    let world = StripeWorld::start().await;
    let course = world.course().await;
    let before = rfc3339(OffsetDateTime::now_utc() - time::Duration::minutes(1));
    let (student, _) = world
        .paid_without_webhooks(&course, "student@example.com")
        .await;
    let dropped = world.sandbox.dropped_events();

    let synced = world.cli.run(&["events", "sync", "--since", &before]);
    synced.assert_success();
    assert!(
        synced.summary().contains("applied"),
        "the payment's events were applied: {synced:#?}"
    );
    // Progress, as plain lines since stderr is not a terminal.
    assert!(
        synced.stderr.contains("events read from Stripe: "),
        "{synced:#?}"
    );
    let data = world.status(&student, &course).await;
    assert_eq!(data["purchaseStatus"], "completed", "{data}");
    assert_eq!(data["isPurchased"], true);

    // Every lost event of a type the product acts on is in the inbox now (the sync asks
    // Stripe for those types only).
    let listed = world.cli.run(&["events", "list"]);
    listed.assert_success();
    let handled: Vec<String> = world
        .sandbox
        .events()
        .iter()
        .filter(|event| {
            let kind = event["type"].as_str().unwrap();
            kind.starts_with("checkout.session.") || kind.starts_with("charge.")
        })
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .filter(|id| dropped.contains(id))
        .collect();
    assert!(!handled.is_empty(), "{dropped:?}");
    for id in &handled {
        assert!(listed.stdout.contains(id.as_str()), "{id}: {listed:#?}");
    }
    // A second sync finds nothing new.
    let again = world.cli.run(&["events", "sync", "--since", &before]);
    assert_eq!(again.assert_success().summary(), "0 events");
    // Stripe keeps 30 days: an older start is refused, as a failed run.
    let ancient = rfc3339(OffsetDateTime::now_utc() - time::Duration::days(31));
    let refused = world.cli.run(&["events", "sync", "--since", &ancient]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(refused.stderr.contains("30 days"), "{refused:#?}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_completes_a_purchase_whose_webhook_never_came() {
    let world = StripeWorld::start().await;
    let course = world.course().await;
    let (student, purchase) = world
        .paid_without_webhooks(&course, "student@example.com")
        .await;

    // RECONCILE_OLDER_THAN (30m by default): nothing is due yet.
    let early = world.cli.run(&["reconcile"]);
    assert_eq!(early.assert_success().summary(), "0 purchases");
    assert_eq!(
        world.status(&student, &course).await["purchaseStatus"],
        "pending"
    );

    let reconciled = world.cli.run(&["reconcile", "--older-than", "0s"]);
    reconciled.assert_success();
    assert_eq!(reconciled.summary(), "1 purchase: completed 1");
    assert!(
        reconciled
            .stderr
            .contains(&format!("purchase {purchase}: completed")),
        "{reconciled:#?}"
    );
    let data = world.status(&student, &course).await;
    assert_eq!(data["purchaseStatus"], "completed", "{data}");
    assert_eq!(data["isPurchased"], true);
    // Done: nothing is pending any more.
    let again = world.cli.run(&["reconcile", "--older-than", "0s"]);
    assert_eq!(again.assert_success().summary(), "0 purchases");

    // Stripe down for a purchase: the run says which one failed and why, and exits 1.
    let (other, other_purchase) = world
        .paid_without_webhooks(&course, "second@example.com")
        .await;
    let mut chaos = world.sandbox.chaos();
    chaos.fail_next = vec![503; 3];
    world.sandbox.set_chaos(chaos);
    let failed = world.cli.run(&["reconcile", "--older-than", "0s"]);
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    assert_eq!(failed.summary(), "1 purchase: error 1");
    assert!(
        failed.stderr.contains(&format!(
            "purchase {other_purchase}: error: payment provider unavailable"
        )),
        "{failed:#?}"
    );
    assert!(
        failed
            .stderr
            .contains("error: 1 purchase could not be reconciled (see above); each is tried again once its lease of 10m ends"),
        "{failed:#?}"
    );
    assert_eq!(
        world.status(&other, &course).await["purchaseStatus"],
        "pending"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_grant_and_revoke_change_a_signed_up_users_role() {
    let dir = TempDir::new();
    let database_url = dir.database_url();
    let app = Running::spawn(
        Application::build(offline_settings(&database_url, &[]).unwrap())
            .await
            .unwrap(),
    );
    let token = app
        .sign_up("Ada Operator", "ada@example.com", "student")
        .await;
    let profile = |token: String| {
        let app = &app;
        async move {
            let (status, body) = app.get("/api/v1/user/profile", Some(&token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["user"].clone()
        }
    };
    // The offline demo's configuration: the database alone.
    let cli = Cli {
        env: vec![("DATABASE_URL".to_owned(), database_url.clone())],
    };

    let granted = cli.run(&["admin", "grant", "ada@example.com"]);
    granted.assert_success();
    let user = profile(token.clone()).await;
    assert_eq!(user["role"], "admin", "{user}");
    assert_eq!(
        granted.stdout,
        format!(
            "ada@example.com (user {}) is now admin\n",
            user["id"].as_str().unwrap()
        )
    );

    let revoked = cli.run(&["admin", "revoke", "ADA@example.com", "--role", "instructor"]);
    revoked.assert_success();
    assert!(
        revoked.stdout.ends_with("is now instructor\n"),
        "{revoked:#?}"
    );
    assert_eq!(profile(token.clone()).await["role"], "instructor");

    // Both are in the audit trail, as the operator's.
    let store = lms_sqlite::SqliteStore::open(&database_url).await.unwrap();
    let trail = store.list_audit(PageRequest::new(1, 10)).await.unwrap();
    let actions: Vec<(AuditAction, AuditActor)> = trail
        .items
        .iter()
        .map(|entry| (entry.action, entry.actor))
        .collect();
    assert_eq!(
        actions,
        [
            (AuditAction::RevokeAdmin, AuditActor::Operator),
            (AuditAction::GrantAdmin, AuditActor::Operator)
        ]
    );

    // Nobody by that email: exit 1 and a message that says so.
    let unknown = cli.run(&["admin", "grant", "nobody@example.com"]);
    assert_eq!(unknown.code, Some(1), "{unknown:#?}");
    assert_eq!(
        unknown.stderr,
        "error: no user has the email nobody@example.com: they must sign up first\n"
    );
    let invalid = cli.run(&["admin", "grant", "not-an-email"]);
    assert_eq!(invalid.code, Some(1), "{invalid:#?}");
    assert!(invalid.stderr.contains("email"), "{invalid:#?}");
    // Storage-only commands work in demo mode; those that talk to Stripe say why they cannot.
    let listed = cli.run(&["events", "list"]);
    assert!(
        listed.assert_success().summary().ends_with("events"),
        "{listed:#?}"
    );
    for args in [
        &["reconcile"][..],
        &["events", "sync", "--since", "2026-01-01T00:00:00Z"],
        &["events", "replay", "--failed"],
    ] {
        let refused = cli.run(args);
        assert_eq!(refused.code, Some(78), "{args:?}: {refused:#?}");
        let lines: Vec<&str> = refused.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{refused:#?}");
        assert!(
            lines[0].starts_with("configuration error: APP_MODE: ")
                && lines[0].contains("APP_MODE=stripe"),
            "{refused:#?}"
        );
    }
    app.stop().await;
}

#[test]
fn the_commands_refuse_a_bad_configuration_with_exit_78() {
    // A Stripe key without the rest: the same one-line refusal as `serve`.
    let cli = Cli {
        env: vec![
            ("STRIPE_SECRET_KEY".to_owned(), KEY.to_owned()),
            (
                "DATABASE_URL".to_owned(),
                "postgres://postgres@127.0.0.1:1/none".to_owned(),
            ),
        ],
    };
    for args in [&["reconcile"][..], &["admin", "grant", "a@example.com"]] {
        let ran = cli.run(args);
        assert_eq!(ran.code, Some(78), "{ran:#?}");
        assert!(
            ran.stderr
                .starts_with("configuration error: STRIPE_WEBHOOK_SECRET: "),
            "{ran:#?}"
        );
    }
    let bad_value = Cli {
        env: vec![("RECONCILE_BATCH".to_owned(), "0".to_owned())],
    };
    let ran = bad_value.run(&["reconcile"]);
    assert_eq!(ran.code, Some(78), "{ran:#?}");
    assert!(
        ran.stderr
            .starts_with("configuration error: RECONCILE_BATCH: "),
        "{ran:#?}"
    );
    // A malformed argument is clap's usage error (2), before any configuration is read.
    let ran = bad_value.run(&["events", "sync", "--since", "yesterday"]);
    assert_eq!(ran.code, Some(2), "{ran:#?}");
    assert!(ran.stderr.contains("RFC 3339"), "{ran:#?}");
}

/// Waits until `check` holds, or fails after 20 s with `what`.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
