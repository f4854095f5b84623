//! Abuse limits on sign-in and sign-up over the real server, on the limiters' manual clock.
//!
//! Limiting lives in the HTTP adapter alone and reads no storage, so these run on the memory
//! wiring only. A second client address is a real one: the test client binds 127.0.0.2.

use crate::api::helpers::{spawn_app_tuned, Resp, TestApp, TestUser, Wiring};
use lms_actix_api::limits::{parse_networks, RateLimit, RateLimits};
use lms_actix_api::ApiSettings;
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

const OTHER_CLIENT: &str = "127.0.0.2";

async fn spawn(limits: RateLimits, tune: impl FnOnce(&mut ApiSettings)) -> TestApp {
    spawn_app_tuned(Wiring::Memory, |settings| {
        settings.rate_limits = limits;
        tune(settings);
    })
    .await
}

/// A client whose connections come from `source` (any 127/8 address is local on Linux).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn sign_in_via(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Resp {
    let mut request = client
        .post(app.url("/api/v1/user/signin"))
        .json(&json!({"email": email, "password": password}));
    if let Some(chain) = forwarded_for {
        request = request.header("X-Forwarded-For", chain);
    }
    app.send(request).await
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Resp {
    sign_in_via(app, &app.client, email, password, None).await
}

async fn sign_up_via(app: &TestApp, client: &reqwest::Client, forwarded_for: Option<&str>) -> Resp {
    let email = format!("new-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut request = client
        .post(app.url("/api/v1/user/signup"))
        .json(&json!({"name": "New", "email": email, "password": "correct horse battery staple"}));
    if let Some(chain) = forwarded_for {
        request = request.header("X-Forwarded-For", chain);
    }
    app.send(request).await
}

/// The 429 envelope with `Retry-After` and `retryAfter` both `secs`.
#[track_caller]
fn assert_limited(resp: &Resp, secs: u64) {
    resp.assert_error(429, "TOO_MANY_REQUESTS");
    assert_eq!(
        resp.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some(secs.to_string().as_str()),
        "{}",
        resp.text
    );
    assert_eq!(resp.json["retryAfter"], secs, "{}", resp.text);
}

async fn student(app: &TestApp) -> TestUser {
    app.user("student").await
}

#[tokio::test]
async fn failed_sign_ins_for_one_email_end_in_429_even_with_the_right_password() {
    let app = spawn(
        RateLimits::only(None, RateLimit::per_minute(3), None),
        |_| {},
    )
    .await;
    let ada = student(&app).await;
    for _ in 0..3 {
        sign_in(&app, &ada.email, "wrong password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    // One attempt back every 20 s: the password is not even checked.
    let refused = sign_in(&app, &ada.email, &ada.password).await;
    assert_limited(&refused, 20);
    assert_eq!(refused.set_cookie(), None);
    // The e-mail however it is written, and from another address.
    let shouted = format!("  {} ", ada.email.to_uppercase());
    assert_limited(&sign_in(&app, &shouted, &ada.password).await, 20);
    let elsewhere = client_from(OTHER_CLIENT);
    assert_limited(
        &sign_in_via(&app, &elsewhere, &ada.email, &ada.password, None).await,
        20,
    );

    // Another account, from another address, is not held back.
    let bob = student(&app).await;
    let resp = sign_in_via(&app, &elsewhere, &bob.email, &bob.password, None).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

#[tokio::test]
async fn an_email_is_let_in_again_after_the_window_and_a_success_forgives_its_failures() {
    let app = spawn(
        RateLimits::only(None, RateLimit::per_minute(3), None),
        |_| {},
    )
    .await;
    let ada = student(&app).await;
    for _ in 0..3 {
        sign_in(&app, &ada.email, "wrong password").await;
    }
    assert_limited(&sign_in(&app, &ada.email, &ada.password).await, 20);

    app.limiter_clock.advance(Duration::from_secs(19));
    assert_limited(&sign_in(&app, &ada.email, &ada.password).await, 1);
    app.limiter_clock.advance(Duration::from_secs(1));
    let back = sign_in(&app, &ada.email, &ada.password).await;
    assert_eq!(back.status, 200, "{}", back.text);

    // The success cleared the count: three failures again before the next refusal.
    for _ in 0..3 {
        sign_in(&app, &ada.email, "wrong password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    assert_limited(&sign_in(&app, &ada.email, "wrong password").await, 20);
    // A full window later the whole budget is back.
    app.limiter_clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        sign_in(&app, &ada.email, "wrong password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
}

#[tokio::test]
async fn one_address_is_limited_across_emails_and_a_spoofed_forwarded_for_does_not_dodge_it() {
    let app = spawn(
        RateLimits::only(RateLimit::per_minute(3), None, None),
        |_| {},
    )
    .await;
    for n in 0..3 {
        sign_in(&app, &format!("nobody{n}@example.com"), "whatever")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    assert_limited(&sign_in(&app, "nobody9@example.com", "whatever").await, 20);
    // 127.0.0.1 is no trusted proxy: whatever it forwards, it is the client.
    for spoofed in ["203.0.113.7", "198.51.100.1, 203.0.113.8", "127.0.0.2"] {
        let resp = sign_in_via(&app, &app.client, "x@example.com", "pw", Some(spoofed)).await;
        assert_limited(&resp, 20);
    }
    // A different address has its own budget.
    let elsewhere = client_from(OTHER_CLIENT);
    sign_in_via(&app, &elsewhere, "x@example.com", "whatever", None)
        .await
        .assert_error(401, "INVALID_CREDENTIALS");

    app.limiter_clock.advance(Duration::from_secs(20));
    sign_in(&app, "x@example.com", "whatever")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn sign_ups_are_limited_per_address_and_come_back_as_the_window_passes() {
    let app = spawn(RateLimits::only(None, None, RateLimit::per_hour(2)), |_| {}).await;
    for _ in 0..2 {
        let resp = sign_up_via(&app, &app.client, None).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
    }
    let refused = sign_up_via(&app, &app.client, None).await;
    assert_limited(&refused, 1800);
    assert_limited(
        &sign_up_via(&app, &app.client, Some("203.0.113.7")).await,
        1800,
    );
    let elsewhere = client_from(OTHER_CLIENT);
    assert_eq!(sign_up_via(&app, &elsewhere, None).await.status, 201);

    app.limiter_clock.advance(Duration::from_secs(1800));
    assert_eq!(sign_up_via(&app, &app.client, None).await.status, 201);
    assert_limited(&sign_up_via(&app, &app.client, None).await, 1800);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let app = spawn(
        RateLimits::only(RateLimit::per_minute(2), None, None),
        |settings| {
            settings.trusted_proxies = parse_networks("127.0.0.1").unwrap();
        },
    )
    .await;
    let via_proxy = |chain: &'static str| {
        let app = &app;
        async move { sign_in_via(app, &app.client, "x@example.com", "pw", Some(chain)).await }
    };
    for _ in 0..2 {
        via_proxy("203.0.113.7")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    assert_limited(&via_proxy("203.0.113.7").await, 30);
    // The client cannot prepend its way out: the right-most untrusted entry is the client.
    assert_limited(&via_proxy("198.51.100.99, 203.0.113.7").await, 30);
    via_proxy("203.0.113.8")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");

    // 127.0.0.2 is not a trusted proxy: its header is ignored and it is keyed by itself.
    let elsewhere = client_from(OTHER_CLIENT);
    for _ in 0..2 {
        sign_in_via(&app, &elsewhere, "x@example.com", "pw", Some("203.0.113.9"))
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    assert_limited(
        &sign_in_via(
            &app,
            &elsewhere,
            "x@example.com",
            "pw",
            Some("203.0.113.10"),
        )
        .await,
        30,
    );
    via_proxy("203.0.113.9")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn the_default_settings_limit_and_off_does_not() {
    let defaults = ApiSettings::new("http://localhost/ok").rate_limits;
    assert_eq!(defaults, RateLimits::default());
    let app = spawn(defaults, |_| {}).await;
    let ada = student(&app).await;
    for _ in 0..10 {
        sign_in(&app, &ada.email, "wrong password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    assert_limited(&sign_in(&app, &ada.email, &ada.password).await, 6);

    let open = spawn(RateLimits::off(), |_| {}).await;
    let bob = student(&open).await;
    for _ in 0..40 {
        sign_in(&open, &bob.email, "wrong password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
}
