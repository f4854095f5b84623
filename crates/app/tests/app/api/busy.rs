//! A password hasher at its concurrency bound: sign-in and sign-up answer 503 `SERVER_BUSY`
//! with a `Retry-After`, over the real server.

use crate::api::helpers::{Resp, TestApp, SUCCESS_URL};
use crate::api::wiring;
use lms_actix_api::limits::LimiterClock;
use lms_actix_api::ApiSettings;
use lms_in_memory::{FakeGateway, FakeHasher, InMemoryStore, ManualClock};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// The server over in-memory adapters and a [`FakeHasher`] the test can switch to busy.
struct BusyApp {
    base: String,
    client: reqwest::Client,
}

impl BusyApp {
    async fn post(&self, path: &str, body: &Value) -> Resp {
        let request = self.client.post(format!("{}{path}", self.base)).json(body);
        TestApp::read(request.send().await.unwrap()).await
    }
}

async fn spawn_with_hasher(hasher: &FakeHasher) -> BusyApp {
    let mut settings = ApiSettings::new(SUCCESS_URL);
    settings.workers = Some(1);
    settings.shutdown_timeout = Duration::from_secs(1);
    let parts = wiring::parts(
        InMemoryStore::new(),
        Arc::new(FakeGateway::new()),
        Arc::new(hasher.clone()),
        &ManualClock::default(),
        settings,
        LimiterClock::monotonic(),
    );
    BusyApp {
        base: wiring::serve(parts).await,
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn a_busy_hasher_answers_503_with_retry_after_for_sign_in_and_sign_up() {
    let hasher = FakeHasher::new();
    let app = spawn_with_hasher(&hasher).await;
    let credentials = json!({"email": "ada@example.com", "password": "correct horse battery"});
    let created = app
        .post(
            "/api/v1/user/signup",
            &json!({"name": "Ada", "email": "ada@example.com", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    hasher.set_busy(Some(Duration::from_millis(2500)));
    let unknown = json!({"email": "nobody@example.com", "password": "correct horse battery"});
    let new_account =
        json!({"name": "Bob", "email": "bob@example.com", "password": "correct horse battery"});
    for (path, body) in [
        ("/api/v1/user/signin", &credentials),
        ("/api/v1/user/signin", &unknown),
        ("/api/v1/user/signup", &new_account),
    ] {
        let resp = app.post(path, body).await;
        resp.assert_error(503, "SERVER_BUSY");
        // Whole seconds, rounded up.
        assert_eq!(
            resp.headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("3"),
            "{path}: {}",
            resp.text
        );
        assert_eq!(resp.json["retryAfter"], 3, "{path}: {}", resp.text);
        assert_eq!(
            resp.json["message"], "The server is busy. Please try again shortly.",
            "{path}: {}",
            resp.text
        );
        assert!(resp.set_cookie().is_none(), "{path}: {}", resp.text);
    }

    hasher.set_busy(None);
    let resp = app.post("/api/v1/user/signin", &credentials).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}
