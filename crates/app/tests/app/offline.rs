//! The offline application through its library API: SQLite in a temporary directory, the
//! in-process Stripe sandbox, the demo seed, and a whole purchase over HTTP.

use lms_app::demo::{
    FREE_COURSE_TITLE, INSTRUCTOR_EMAIL, INSTRUCTOR_PASSWORD, PAID_COURSE_PRICE_CENTS,
    PAID_COURSE_TITLE,
};
use lms_app::{Application, DemoSeed, Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A temporary directory, removed at the end.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("lms-app-offline-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn database_url(&self) -> String {
        format!("sqlite://{}", self.0.join("lms.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Offline settings from an explicit map (never the process environment): no Stripe key,
/// free ports for the app and the sandbox.
pub(crate) fn offline_settings(
    database_url: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<Settings> {
    let mut pairs = vec![
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("PORT".to_owned(), "0".to_owned()),
        ("SANDBOX_PORT".to_owned(), "0".to_owned()),
        ("HTTP_WORKERS".to_owned(), "1".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ];
    for (key, value) in extra {
        pairs.retain(|(k, _)| k != key);
        pairs.push(((*key).to_owned(), (*value).to_owned()));
    }
    Ok(Settings::from_pairs(pairs)?)
}

/// What the binary does: settings, then build.
async fn start(pairs: &[(&str, &str)]) -> anyhow::Result<Application> {
    Application::build(Settings::from_pairs(pairs.iter().copied())?).await
}

/// A running app and a client that does not follow redirects.
pub(crate) struct Running {
    pub(crate) base_url: String,
    pub(crate) client: reqwest::Client,
    stop: actix_web::dev::ServerHandle,
}

/// A port nobody listens on at the moment of asking.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap()
}

impl Running {
    /// Signs a new user up (`role`: `student` or `instructor`); returns the session token.
    pub(crate) async fn sign_up(&self, name: &str, email: &str, role: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/user/signup",
                None,
                &json!({"name": name, "email": email, "password": "correct horse battery", "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Starts checkout of a course (201 expected); returns `data.session`.
    pub(crate) async fn checkout(&self, token: &str, course_id: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/payments/create-checkout-session",
                Some(token),
                &json!({"courseId": course_id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["session"].clone()
    }

    pub(crate) fn spawn(app: Application) -> Self {
        let base_url = app.base_url();
        let stop = app.server_handle();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            base_url,
            client,
            stop,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Value) {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub(crate) async fn published(&self) -> Vec<Value> {
        let (status, body) = self.get("/api/v1/courses/published", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    /// Signs the seeded demo instructor in with the documented password; the answer's body.
    pub(crate) async fn sign_in_demo_instructor(&self) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/user/signin",
                None,
                &json!({"email": INSTRUCTOR_EMAIL, "password": INSTRUCTOR_PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) async fn stop(self) {
        self.stop.stop(true).await;
    }
}

pub(crate) fn course_titled<'a>(courses: &'a [Value], title: &str) -> &'a Value {
    courses
        .iter()
        .find(|c| c["title"] == title)
        .unwrap_or_else(|| panic!("no course {title:?} in {courses:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_buys_the_seeded_course_through_the_sandbox() {
    let dir = TempDir::new();
    let app = Application::build(offline_settings(&dir.database_url(), &[]).unwrap())
        .await
        .unwrap();
    assert_eq!(app.demo_seed(), DemoSeed::Created);
    assert_ne!(app.port(), 0);
    assert_eq!(app.base_url(), format!("http://localhost:{}", app.port()));
    let sandbox = app
        .sandbox_handle()
        .expect("no Stripe key: the sandbox runs");
    assert!(app.sandbox().is_some());
    assert!(sandbox.base_url().starts_with("http://127.0.0.1:"));
    let app = Running::spawn(app);

    let (status, health) = app.get("/api/v1/healthcheck", None).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "OK");

    // The seed: exactly two published courses, one paid and one free, by the demo instructor.
    let courses = app.published().await;
    assert_eq!(courses.len(), 2, "{courses:?}");
    let paid = course_titled(&courses, PAID_COURSE_TITLE);
    assert_eq!(paid["priceCents"], PAID_COURSE_PRICE_CENTS);
    assert_eq!(paid["currency"], "USD");
    assert_eq!(paid["isPublished"], true);
    let free = course_titled(&courses, FREE_COURSE_TITLE);
    assert_eq!(free["priceCents"], 0);
    assert_eq!(free["isPublished"], true);
    assert_eq!(paid["instructorId"], free["instructorId"]);
    let paid_id = paid["id"].as_str().unwrap().to_owned();

    // The demo instructor can sign in with the documented password.
    let body = app.sign_in_demo_instructor().await;
    assert_eq!(body["user"]["role"], "instructor");
    assert_eq!(body["user"]["id"], paid["instructorId"]);

    let token = app
        .sign_up("Ada Student", "ada@example.com", "student")
        .await;

    let session = &app.checkout(&token, &paid_id).await;
    let session_id = session["id"].as_str().unwrap().to_owned();
    let page = session["url"].as_str().unwrap().to_owned();
    assert!(
        page.starts_with(&format!(
            "{}/checkout/pay/{session_id}/",
            sandbox.base_url()
        )),
        "the hosted page's URL ends with the session's secret: {page}"
    );
    assert_eq!(session["amount_total"], PAID_COURSE_PRICE_CENTS);

    // Not paid yet.
    let status_path = format!("/api/v1/payments/courses/{paid_id}/purchase-status");
    let (_, body) = app.get(&status_path, Some(&token)).await;
    assert_eq!(body["data"]["isPurchased"], false, "{body}");

    // The customer pays on the sandbox's hosted page.
    let paid_page = app
        .client
        .post(&page)
        .form(&[("method", "card"), ("card_number", "4242424242424242")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid_page.status(), StatusCode::SEE_OTHER);
    let location = paid_page.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("{}/payment/success?session_id={session_id}", app.base_url)
    );

    // The sandbox delivers the signed webhook to the app; no session_id hint is given, so only
    // the webhook can complete the purchase.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = app.get(&status_path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["data"]["purchaseStatus"] == "completed" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook never completed the purchase: {body}; deliveries {:?}",
            sandbox.deliveries()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["data"]["isPurchased"], true);
    assert!(
        sandbox.deliveries().iter().any(|d| d.status == Some(200)),
        "{:?}",
        sandbox.deliveries()
    );

    let (status, body) = app
        .get("/api/v1/payments/purchased-courses", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let purchased = body["data"].as_array().unwrap();
    assert_eq!(purchased.len(), 1, "{body}");
    assert_eq!(purchased[0]["id"], paid_id.as_str());
    assert_eq!(purchased[0]["amountCents"], PAID_COURSE_PRICE_CENTS);
    assert_eq!(purchased[0]["currency"], "USD");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_on_the_same_file_seeds_nothing() {
    let dir = TempDir::new();
    let first = Application::build(offline_settings(&dir.database_url(), &[]).unwrap())
        .await
        .unwrap();
    assert_eq!(first.demo_seed(), DemoSeed::Created);
    Running::spawn(first).stop().await;

    let second = Application::build(offline_settings(&dir.database_url(), &[]).unwrap())
        .await
        .unwrap();
    assert_eq!(second.demo_seed(), DemoSeed::AlreadyPresent);
    let second = Running::spawn(second);
    let courses = second.published().await;
    assert_eq!(courses.len(), 2, "{courses:?}");
    second.stop().await;

    // SEED_DEMO=false on a fresh store: nothing at all.
    let empty = TempDir::new();
    let bare = Application::build(
        offline_settings(&empty.database_url(), &[("SEED_DEMO", "false")]).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(bare.demo_seed(), DemoSeed::Disabled);
    let bare = Running::spawn(bare);
    assert!(bare.published().await.is_empty());
    bare.stop().await;
}

#[tokio::test]
async fn bad_settings_refuse_to_start_naming_the_variable() {
    let err = format!(
        "{:#}",
        start(&[("DATABASE_URL", "mysql://localhost/lms"), ("PORT", "0")])
            .await
            .unwrap_err()
    );
    assert!(err.contains("DATABASE_URL"), "{err}");

    let dir = TempDir::new();
    let database_url = dir.database_url();
    let err = format!(
        "{:#}",
        start(&[
            ("DATABASE_URL", database_url.as_str()),
            ("PORT", "0"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("STRIPE_SECRET_KEY", "sk_test_real_key"),
        ])
        .await
        .unwrap_err()
    );
    assert!(err.contains("STRIPE_WEBHOOK_SECRET"), "{err}");
    assert!(!err.contains("sk_test_real_key"), "{err}");

    // The sandbox's port is taken: the error names SANDBOX_PORT.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let err = format!(
        "{:#}",
        start(&[
            ("DATABASE_URL", database_url.as_str()),
            ("PORT", "0"),
            ("SANDBOX_PORT", port.as_str()),
        ])
        .await
        .unwrap_err()
    );
    assert!(err.contains("SANDBOX_PORT"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_storage_works_too() {
    let app = Application::build(offline_settings("sqlite::memory:", &[]).unwrap())
        .await
        .unwrap();
    assert_eq!(app.demo_seed(), DemoSeed::Created);
    let app = Running::spawn(app);
    assert_eq!(app.published().await.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_migrations_false_leaves_the_schema_to_the_migrate_command() {
    let dir = TempDir::new();
    let no_migrations = || {
        offline_settings(
            &dir.database_url(),
            &[("RUN_MIGRATIONS", "false"), ("SEED_DEMO", "false")],
        )
        .unwrap()
    };
    // Not migrated: the app cannot tell which payment mode the database belongs to, so it
    // refuses to start and says what to run.
    let err = format!(
        "{:#}",
        Application::build(no_migrations()).await.unwrap_err()
    );
    assert!(err.contains("lms-app migrate"), "{err}");

    // `migrate` applies the schema; a second run has nothing left to apply.
    let applied = lms_app::migrate(&no_migrations().database).await.unwrap();
    assert!(!applied.is_empty());
    assert!(lms_app::migrate(&no_migrations().database)
        .await
        .unwrap()
        .is_empty());

    let app = Running::spawn(Application::build(no_migrations()).await.unwrap());
    assert!(app.published().await.is_empty());
    app.stop().await;
}

/// On PostgreSQL too, and at once: the pending migrations are named before any pooled
/// connection is tried (those prepare statements on the schema's tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_migrations_false_on_postgres_names_the_missing_migrations() {
    let db = lms_test_db::TestDatabase::create("lms_app_unmigrated").await;
    let no_migrations = || {
        offline_settings(
            db.url(),
            &[
                ("APP_MODE", "demo"),
                ("RUN_MIGRATIONS", "false"),
                ("SEED_DEMO", "false"),
            ],
        )
        .unwrap()
    };
    let err = format!(
        "{:#}",
        Application::build(no_migrations()).await.unwrap_err()
    );
    let newest = lms_postgres::embedded_migration_versions().pop().unwrap();
    assert!(
        err.starts_with("DATABASE_URL: the database lacks")
            && err.contains(&newest)
            && err.contains("lms-app migrate"),
        "{err}"
    );

    lms_app::migrate(&no_migrations().database).await.unwrap();
    let app = Running::spawn(Application::build(no_migrations()).await.unwrap());
    assert!(app.published().await.is_empty());
    app.stop().await;
}

/// The database remembers the payment mode that first used it: simulated payments never land in
/// a Stripe database, nor test-mode purchases in a live one, whichever starts first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_refuses_a_payment_mode_other_than_its_own() {
    let stripe = |key: &'static str, database_url: &str| {
        Settings::from_pairs([
            ("APP_MODE", "stripe"),
            ("DATABASE_URL", database_url),
            ("PORT", "0"),
            ("JWT_SECRET", "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f"),
            ("STRIPE_SECRET_KEY", key),
            ("STRIPE_WEBHOOK_SECRET", "whsec_modes"),
            (
                "STRIPE_SUCCESS_URL",
                "https://learn.example.com/ok?session_id={CHECKOUT_SESSION_ID}",
            ),
            ("STRIPE_CANCEL_URL", "https://learn.example.com/cancel"),
            ("CORS_ORIGINS", "https://learn.example.com"),
            ("HTTP_WORKERS", "1"),
            ("SHUTDOWN_TIMEOUT_SECS", "1"),
        ])
        .unwrap()
    };
    let mismatch = |err: anyhow::Error| {
        let message = err.to_string();
        assert!(err.is::<lms_app::ModeMismatch>(), "{message}");
        assert!(message.starts_with("DATABASE_URL: "), "{message}");
        message
    };

    // A demo database: Stripe (test or live) is refused, the demo starts again.
    let demo_db = TempDir::new();
    let demo = Running::spawn(
        Application::build(offline_settings(&demo_db.database_url(), &[]).unwrap())
            .await
            .unwrap(),
    );
    demo.stop().await;
    for key in ["sk_test_modes", "sk_live_modes"] {
        let err = Application::build(stripe(key, &demo_db.database_url()))
            .await
            .unwrap_err();
        assert!(mismatch(err).contains("offline demo"));
    }
    let again = Application::build(offline_settings(&demo_db.database_url(), &[]).unwrap())
        .await
        .unwrap();
    assert_eq!(again.demo_seed(), DemoSeed::AlreadyPresent);
    Running::spawn(again).stop().await;

    // A Stripe test-mode database: a live key and the demo are refused.
    let test_db = TempDir::new();
    let test = Running::spawn(
        Application::build(stripe("rk_test_modes", &test_db.database_url()))
            .await
            .unwrap(),
    );
    test.stop().await;
    let err = Application::build(stripe("sk_live_modes", &test_db.database_url()))
        .await
        .unwrap_err();
    assert!(mismatch(err).contains("Stripe test mode"));
    let err = Application::build(offline_settings(&test_db.database_url(), &[]).unwrap())
        .await
        .unwrap_err();
    let message = mismatch(err);
    assert!(
        message.contains("Stripe test mode") && message.contains("offline demo"),
        "{message}"
    );
    // The same mode with another key of it is fine.
    let test = Application::build(stripe("sk_test_other", &test_db.database_url()))
        .await
        .unwrap();
    Running::spawn(test).stop().await;
}
