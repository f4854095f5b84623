//! Stripe mode (STRIPE_SECRET_KEY set), wired end to end by `Application::build`: the app talks
//! to an external Stripe stand-in (the sandbox started on its own, as a local emulator would
//! be) through STRIPE_API_BASE, and verifies its webhooks against STRIPE_WEBHOOK_SECRET.

use crate::offline::{free_port, Running, TempDir};
use lms_app::{Application, DemoSeed, Settings};
use lms_stripe_sandbox::{DeliveryConfig, PaymentMethod, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const KEY: &str = "sk_test_stripe_mode_key";
const WEBHOOK_SECRET: &str = "whsec_stripe_mode";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_the_app_uses_the_configured_api_base_and_webhook_secrets() {
    let port = free_port();
    let stripe = Sandbox::start(SandboxConfig {
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
    let dir = TempDir::new();
    let settings = Settings::from_pairs([
        ("DATABASE_URL", dir.database_url()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        ("HTTP_WORKERS", "1".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        (
            "JWT_SECRET",
            "0123456789abcdef0123456789abcdef-stripe-mode".to_owned(),
        ),
        ("STRIPE_SECRET_KEY", KEY.to_owned()),
        // Mid-rotation: the old secret first; the stand-in signs with the new one.
        (
            "STRIPE_WEBHOOK_SECRET",
            format!("whsec_retired_secret,{WEBHOOK_SECRET}"),
        ),
        ("STRIPE_API_BASE", stripe.base_url().to_owned()),
    ])
    .unwrap();
    let app = Application::build(settings).await.unwrap();
    assert!(app.sandbox().is_none(), "a key means no in-process sandbox");
    assert_eq!(
        app.demo_seed(),
        DemoSeed::Disabled,
        "no demo data with Stripe"
    );
    let app = Running::spawn(app);

    let instructor = app
        .sign_up("Stripe Mode", "teacher@example.com", "instructor")
        .await;
    let (status, body) = app
        .post(
            "/api/v1/courses",
            Some(&instructor),
            &json!({"title": "Stripe mode", "priceCents": 4200, "currency": "eur"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let course = body["course"]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(
            &format!("/api/v1/courses/{course}"),
            Some(&instructor),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let published = app
        .client
        .patch(app.url(&format!("/api/v1/courses/{course}")))
        .bearer_auth(&instructor)
        .json(&json!({"isPublished": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), StatusCode::OK);

    let student = app
        .sign_up("Stripe Mode", "learner@example.com", "student")
        .await;
    let session = &app.checkout(&student, &course).await;
    assert_eq!(session["amount_total"], 4200);
    assert_eq!(session["currency"], "eur");
    let url = session["url"].as_str().unwrap();
    assert!(url.starts_with(stripe.base_url()), "{url}");
    // The seed's default success URL with Stripe: the frontend on :5173.
    let stored = stripe.session(session["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        stored["success_url"],
        "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}"
    );

    stripe
        .pay(
            session["id"].as_str().unwrap(),
            &PaymentMethod::Card("4242424242424242".into()),
        )
        .unwrap();
    let path = format!("/api/v1/payments/courses/{course}/purchase-status");
    let deadline = Instant::now() + Duration::from_secs(15);
    let last: Value = loop {
        let (status, body) = app.get(&path, Some(&student)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["data"]["purchaseStatus"] == "completed" || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last["data"]["purchaseStatus"], "completed", "{last}");
    assert_eq!(last["data"]["isPurchased"], true);
    assert!(
        stripe
            .deliveries()
            .iter()
            .all(|delivery| delivery.status == Some(200)),
        "every signed delivery was accepted first time"
    );
    app.stop().await;
    stripe.stop().await;
}
