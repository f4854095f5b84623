use crate::api::helpers::{spawn_app_with, TestApp, Wiring};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

async fn healthcheck_reports_ok_then_503_when_the_database_is_down(app: TestApp) {
    let ok = app.get("/api/v1/healthcheck", None).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["status"], "OK");
    assert!(ok.json["timeStamp"].is_string());
    let databases = &ok.json["services"]["databases"];
    assert_eq!(databases["status"], "healthy", "{}", ok.text);
    assert_eq!(databases["details"]["isConnected"], true);
    assert_eq!(databases["details"]["readyState"], "connected");
    assert_eq!(ok.json["services"]["server"]["status"], "healthy");
    assert!(ok.json["services"]["server"]["uptime"].is_number());
    assert!(
        ok.json["services"]["server"]["memoryUsage"]["rss"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    // Public: nothing about the store's version, address or pool.
    for internal in [
        "postgres",
        "sqlite",
        "pool",
        "version",
        "://",
        "/tmp",
        "127.0.0.1",
    ] {
        assert!(
            !ok.text.to_lowercase().contains(internal),
            "{internal}: {}",
            ok.text
        );
    }

    if app.break_store() {
        let down = app.get("/api/v1/healthcheck", None).await;
        assert_eq!(down.status, 503, "{}", down.text);
        let databases = &down.json["services"]["databases"];
        assert_eq!(databases["status"], "unhealthy");
        assert_eq!(databases["details"]["isConnected"], false);
        assert_eq!(databases["details"]["readyState"], "disconnected");
        assert_ne!(down.json["status"], "OK");
        assert!(down.json["timeStamp"].is_string());
        assert!(
            !down.text.to_lowercase().contains("unavailable:"),
            "{}",
            down.text
        );
    }
}

async fn storage_outage_on_a_normal_route_is_a_generic_5xx(app: TestApp) {
    let user = app.user("student").await;
    if !app.break_store() {
        return;
    }
    let resp = app.get("/api/v1/user/profile", Some(&user.token)).await;
    assert!(resp.status == 503 || resp.status == 500, "{}", resp.text);
    assert_eq!(resp.json["status"], "error");
    assert_eq!(resp.json["message"], lms_actix_api::error::GENERIC_5XX);
    assert!(
        !resp.text.to_lowercase().contains("storage"),
        "{}",
        resp.text
    );
    let courses = app.get("/api/v1/courses/published", None).await;
    assert!(courses.status >= 500);
    assert_eq!(courses.json["message"], lms_actix_api::error::GENERIC_5XX);
}

crate::per_wiring!(
    healthcheck_reports_ok_then_503_when_the_database_is_down,
    storage_outage_on_a_normal_route_is_a_generic_5xx
);

/// The real database adapter, unreachable: health says 503 with the same shape, and every
/// route that needs the store answers a generic 5xx envelope (never the driver's error).
#[tokio::test]
async fn an_unreachable_postgres_is_503_everywhere_with_generic_bodies() {
    let app = crate::api::helpers::spawn_app_with(crate::api::helpers::Wiring::DeadPostgres).await;
    let health = app.get("/api/v1/healthcheck", None).await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.json["services"]["databases"]["status"], "unhealthy");
    assert_eq!(health.json["services"]["server"]["status"], "healthy");
    assert!(health.json["timeStamp"].is_string());
    // The same shape as the 200: every key the seed frontend reads is there.
    assert!(health.json["status"].is_string());
    assert_eq!(
        health.json["services"]["databases"]["details"]["isConnected"],
        false
    );
    assert!(health.json["services"]["server"]["uptime"].is_number());
    assert!(health.json["services"]["server"]
        .get("memoryUsage")
        .is_some());

    let signup = app
        .signup(&serde_json::json!({"name": "A", "email": "a@b.io", "password": "long enough pw"}))
        .await;
    signup.assert_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(signup.json["message"], lms_actix_api::error::GENERIC_5XX);
    let listing = app.get("/api/v1/courses/published", None).await;
    listing.assert_error(503, "SERVICE_UNAVAILABLE");
    // A genuine webhook that cannot be stored is a 5xx, so the gateway delivers it again.
    let checkout = crate::api::helpers::Checkout {
        purchase_id: uuid::Uuid::new_v4().to_string(),
        session_id: "cs_fake_x".to_owned(),
        url: String::new(),
        amount_cents: 1999,
        currency: "usd".to_owned(),
    };
    let (body, signature) = app.event(
        "evt_cannot_store",
        "checkout.session.completed",
        &checkout,
        &[lms_domain::PaymentFact::PaymentProcessing],
    );
    let webhook = app.webhook(body, Some(&signature)).await;
    webhook.assert_error(503, "SERVICE_UNAVAILABLE");
    for leak in ["127.0.0.1", "connection", "postgres", "refused"] {
        assert!(
            !listing.text.to_lowercase().contains(leak),
            "{}",
            listing.text
        );
        assert!(
            !health.text.to_lowercase().contains(leak),
            "{}",
            health.text
        );
    }
}

/// Everything the JSON log writes while a test runs.
#[derive(Clone, Default)]
struct LogLines(Arc<Mutex<Vec<u8>>>);

impl LogLines {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogLines {
    type Writer = LogLines;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_logs_its_whole_cause_chain_once_and_sends_none_of_it() {
    let logs = LogLines::default();
    // Global: the server answers on threads of its own. Only this test installs one.
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::ERROR)
            .with_writer(logs.clone())
            .finish(),
    )
    .unwrap();
    let app = spawn_app_with(Wiring::Memory).await;
    let user = app.user("student").await;
    assert!(app.break_store());

    let resp = app.get("/api/v1/user/profile", Some(&user.token)).await;
    resp.assert_error(503, "SERVICE_UNAVAILABLE");

    let levels = [
        "a dependency is unavailable",
        "storage unavailable",
        "in-memory store switched off",
    ];
    let failed: Vec<_> = logs
        .lines()
        .into_iter()
        .filter(|line| line["fields"]["message"] == "request failed")
        .collect();
    assert_eq!(failed.len(), 1, "logged once: {failed:?}");
    let fields = &failed[0]["fields"];
    assert_eq!(fields["status"], 503);
    assert_eq!(fields["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(fields["error"], levels[0]);
    let chain = fields["error.chain"].as_str().unwrap();
    assert_eq!(chain, format!("{levels:?}"), "each level, outermost first");
    for level in levels {
        assert!(!resp.text.contains(level), "{level:?} sent: {}", resp.text);
    }
    assert_eq!(resp.json["message"], lms_actix_api::error::GENERIC_5XX);
}
