//! Two app processes on one PostgreSQL database, as a deployment with two replicas runs them:
//! a webhook storm over HTTP with every event delivered twice and split across both instances,
//! concurrent checkouts of one course by one user on both, and both reconcilers running; one
//! instance groups its webhook commits, the other does not. Every effect must happen exactly
//! once, and both instances must answer the same.

use crate::cli::{command, terminate};
use crate::offline::free_port;
use crate::operator::eventually;
use lms_domain::{CourseId, PurchaseStatus, UserId};
use lms_ports::{AuditLog, EventFilter, EventInbox, PageRequest, PurchaseRepo};
use lms_postgres::PgStore;
use lms_stripe_sandbox::{PaymentMethod, Sandbox, SandboxConfig};
use lms_test_db::TestDatabase;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk_test_two_instances";
const WEBHOOK_SECRET: &str = "whsec_two_instances";
const JWT: &str = "0123456789abcdef0123456789abcdef-instances";
const CARD: &str = "4242424242424242";

/// One app process and what it logged.
struct Instance {
    name: &'static str,
    base: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    fn start(name: &'static str, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let port_text = port.to_string();
        pairs.push(("PORT", &port_text));
        let mut child = command(&pairs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            name,
            base: format!("http://127.0.0.1:{port}"),
            child,
            logs,
            reader: Some(reader),
        }
    }

    fn logged(&self, message: &str) -> usize {
        let needle = format!("\"message\":\"{message}\"");
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(&needle))
            .count()
    }

    fn stop(mut self) -> Vec<String> {
        let status = terminate(&mut self.child);
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let logs = self.logs.lock().unwrap().clone();
        assert!(status.success(), "{} stopped with {status:?}", self.name);
        logs
    }
}

/// A JSON client of one instance.
#[derive(Clone)]
struct Http {
    client: reqwest::Client,
}

impl Http {
    async fn send(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, instance: &str, path: &str, token: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{instance}{path}")), Some(token))
            .await
    }

    async fn post(
        &self,
        instance: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, Value) {
        self.send(
            self.client.post(format!("{instance}{path}")).json(body),
            token,
        )
        .await
    }

    /// Signs up on `instance`; (user id, token).
    async fn sign_up(&self, instance: &str, email: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .post(
                instance,
                "/api/v1/user/signup",
                None,
                &json!({"name": "Replica User", "email": email, "password": "correct horse battery", "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["user"]["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn checkout(&self, instance: &str, token: &str, course: &str) -> (u16, Value) {
        self.post(
            instance,
            "/api/v1/payments/create-checkout-session",
            Some(token),
            &json!({"courseId": course}),
        )
        .await
    }

    async fn status(&self, instance: &str, token: &str, course: &str) -> Value {
        let (status, body) = self
            .get(
                instance,
                &format!("/api/v1/payments/courses/{course}/purchase-status"),
                token,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    async fn wait_healthy(&self, instance: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self
                .client
                .get(format!("{instance}/api/v1/healthcheck"))
                .send()
                .await
            {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "{instance} never became healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_apply_every_effect_exactly_once() {
    // Stripe: the sandbox, which sends no webhook itself; the test delivers each event twice.
    let sandbox = Sandbox::start(SandboxConfig {
        secret_key: KEY.to_owned(),
        webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
        webhook_url: None,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    // An empty database: both instances migrate it at once (under the advisory lock).
    let db = TestDatabase::create("lms_instances").await;
    let env: Vec<(&str, String)> = [
        ("APP_MODE", "stripe"),
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET", JWT),
        ("STRIPE_SECRET_KEY", KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", sandbox.base_url()),
        ("HOST", "127.0.0.1"),
        ("HTTP_WORKERS", "2"),
        ("SHUTDOWN_TIMEOUT_SECS", "2"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info"),
        // Both reconcilers on every pending purchase, every second, two at a time.
        ("RECONCILE_INTERVAL", "1s"),
        ("RECONCILE_OLDER_THAN", "0s"),
        ("RECONCILE_BATCH", "2"),
        ("RECONCILE_RATE", "50"),
        ("DATABASE_POOL_SIZE", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    // B groups its webhook commits (the default: two lanes per HTTP worker), A does not: both
    // kinds of instance share the inbox, and every effect still happens once.
    let mut one_per_event = env.clone();
    one_per_event.push(("DATABASE_GROUP_COMMIT", "off".to_owned()));
    let a = Instance::start("instance A", &one_per_event);
    let mut grouped: Vec<(&str, String)> = env
        .iter()
        .filter(|(key, _)| *key != "RUST_LOG")
        .cloned()
        .collect();
    // Its groups, logged at debug level, show that its deliveries took that path.
    grouped.push((
        "RUST_LOG",
        "info,lms_postgres::group_commit=debug".to_owned(),
    ));
    let b = Instance::start("instance B", &grouped);
    let http = Http {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };
    http.wait_healthy(&a.base).await;
    http.wait_healthy(&b.base).await;
    let (a_url, b_url) = (a.base.clone(), b.base.clone());
    let on = |i: usize| if i.is_multiple_of(2) { &a_url } else { &b_url };

    // A course, created on A and published on B.
    let (_, instructor) = http
        .sign_up(&a_url, "teacher@example.com", "instructor")
        .await;
    let (status, body) = http
        .post(
            &a_url,
            "/api/v1/courses",
            Some(&instructor),
            &json!({"title": "Replicas", "priceCents": 4900, "currency": "usd"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let course = body["course"]["id"].as_str().unwrap().to_owned();
    let published = http
        .client
        .patch(format!("{b_url}/api/v1/courses/{course}"))
        .bearer_auth(&instructor)
        .json(&json!({"isPublished": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);

    // One user checks out the course eight times at once, half on each instance: one
    // purchase, one session, handed to every request.
    let (eager_id, eager) = http.sign_up(&b_url, "eager@example.com", "student").await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let (http, instance, token, course) =
                (http.clone(), on(i).clone(), eager.clone(), course.clone());
            tokio::spawn(async move { http.checkout(&instance, &token, &course).await })
        })
        .collect();
    let mut sessions = BTreeSet::new();
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        assert!(status == 201 || status == 200, "{status}: {body}");
        sessions.insert(body["data"]["session"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(sessions.len(), 1, "one session for all: {sessions:?}");
    let eager_session = sessions.into_iter().next().unwrap();
    sandbox
        .pay(&eager_session, &PaymentMethod::Card(CARD.into()))
        .unwrap();

    // Four more buyers, alternating instances: three pay (one after a decline), one never does.
    let mut buyers = vec![(eager_id, eager)];
    for i in 0..4 {
        let (id, token) = http
            .sign_up(on(i), &format!("buyer{i}@example.com"), "student")
            .await;
        let (status, body) = http.checkout(on(i + 1), &token, &course).await;
        assert_eq!(status, 201, "{body}");
        let session = body["data"]["session"]["id"].as_str().unwrap().to_owned();
        if i == 1 {
            let declined = sandbox
                .pay(&session, &PaymentMethod::Card("4000000000000002".into()))
                .unwrap();
            assert!(matches!(
                declined,
                lms_stripe_sandbox::PaymentOutcome::Declined(_)
            ));
        }
        if i != 3 {
            sandbox
                .pay(&session, &PaymentMethod::Card(CARD.into()))
                .unwrap();
        }
        buyers.push((id, token));
    }

    // The storm: every event Stripe emitted, delivered twice, once to each instance, all at
    // once.
    let events = sandbox.events();
    assert!(events.len() >= 8, "{events:?}");
    let deliveries: Vec<_> = events
        .iter()
        .flat_map(|event| {
            [
                (event.clone(), a_url.clone()),
                (event.clone(), b_url.clone()),
            ]
        })
        .map(|(event, instance)| {
            let (body, signature) = sandbox.signed(&event);
            let client = http.client.clone();
            tokio::spawn(async move {
                let response = client
                    .post(format!("{instance}/api/v1/payments/webhook"))
                    .header("content-type", "application/json")
                    .header("Stripe-Signature", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (
                    event["id"].as_str().unwrap().to_owned(),
                    response.status().as_u16(),
                )
            })
        })
        .collect();
    for delivery in deliveries {
        let (event, status) = delivery.await.unwrap();
        assert_eq!(status, 200, "{event}");
    }

    // B logs a group before answering its deliveries, but its log reaches this test through a
    // pipe and a reader thread, which may still be behind the last answers.
    eventually("instance B logged a grouped commit", || async {
        b.logged("group committed") > 0
    })
    .await;
    assert_eq!(a.logged("group committed"), 0);

    // Let both reconcilers run over what is still pending.
    eventually("both reconcilers have run", || async {
        a.logged("reconciler started") == 1 && b.logged("reconciler started") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Both instances answer the same, and the payments are where they belong.
    let course_id: CourseId = course.parse().unwrap();
    let store = PgStore::connect_lazy(db.url(), 2, Duration::from_secs(10));
    for (i, (user_id, token)) in buyers.iter().enumerate() {
        let from_a = http.status(&a_url, token, &course).await;
        let from_b = http.status(&b_url, token, &course).await;
        assert_eq!(from_a, from_b, "buyer {i}");
        let expected = if i == 4 { "pending" } else { "completed" };
        assert_eq!(from_a["purchaseStatus"], expected, "buyer {i}: {from_a}");
        // One purchase per buyer and course, holding the slot.
        let user: UserId = user_id.parse().unwrap();
        let purchases = store
            .list_for_user_and_course(user, course_id)
            .await
            .unwrap();
        assert_eq!(purchases.len(), 1, "buyer {i}: {purchases:?}");
        assert!(purchases[0].holds_active_slot, "buyer {i}");
        let status = if i == 4 {
            PurchaseStatus::Pending
        } else {
            PurchaseStatus::Completed
        };
        assert_eq!(purchases[0].status(), status, "buyer {i}");
    }

    // One inbox row per event, each delivered twice, none failed.
    let mut inbox = BTreeMap::new();
    for page in 1.. {
        let found = store
            .list_events(
                EventFilter::default(),
                PageRequest::new(page, PageRequest::MAX_LIMIT),
            )
            .await
            .unwrap();
        let short = found.items.len() < PageRequest::MAX_LIMIT as usize;
        for record in found.items {
            assert!(
                inbox.insert(record.event_id.clone(), record).is_none(),
                "listed twice"
            );
        }
        if short {
            break;
        }
    }
    let sent: BTreeSet<String> = events
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(inbox.keys().cloned().collect::<BTreeSet<_>>(), sent);
    for record in inbox.values() {
        assert_eq!(record.delivery_count, 2, "{record:?}");
        assert_ne!(
            record.outcome,
            lms_ports::EventOutcome::Failed,
            "{record:?}"
        );
    }
    // No money moved back: nobody paid twice, so nothing was refunded, and nothing audited.
    assert!(sandbox.events_of_type("charge.refunded").is_empty());
    assert_eq!(
        store
            .list_audit(PageRequest::new(1, 10))
            .await
            .unwrap()
            .total,
        0
    );

    // Both stop cleanly with their workers; between them they reconciled.
    let logs: Vec<String> = [a.stop(), b.stop()].concat();
    assert!(
        logs.iter()
            .any(|line| line.contains("\"message\":\"purchase reconciled\"")),
        "a reconciler reconciled something"
    );
    assert!(
        !logs.iter().any(|line| line.contains("\"level\":\"ERROR\"")),
        "no error logged: {:#?}",
        logs.iter()
            .filter(|line| line.contains("\"level\":\"ERROR\""))
            .collect::<Vec<_>>()
    );
    sandbox.stop().await;
}
