use crate::helpers::{TestApp, JWT_SECRET};
use lms_actix_api::auth::JwtKeys;
use lms_domain::UserId;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

async fn signup_returns_user_and_token_sets_a_strict_cookie_and_never_the_hash(app: TestApp) {
    let resp = app
        .signup(&json!({"name": "Ada", "email": "Ada@Example.com", "password": "correct horse battery staple", "role": "instructor"}))
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    assert!(resp.json["message"].is_string());
    let user = &resp.json["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["role"], "instructor");
    assert!(user["id"].as_str().unwrap().parse::<Uuid>().is_ok());
    assert!(!resp.text.contains("argon2"), "hash leaked: {}", resp.text);
    assert!(
        !resp.text.to_lowercase().contains("password"),
        "{}",
        resp.text
    );

    let token = resp.json["token"].as_str().unwrap();
    let cookie = resp.set_cookie().unwrap();
    assert!(cookie.starts_with(&format!("token={token}")), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
}

async fn signup_defaults_to_student_and_refuses_admin_duplicates_and_bad_input(app: TestApp) {
    let ok = app
        .signup(&json!({"name": "Bo", "email": "bo@example.com", "password": "long enough pw"}))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.json["user"]["role"], "student");

    let dup = app
        .signup(&json!({"name": "Bo2", "email": "BO@example.com", "password": "long enough pw"}))
        .await;
    dup.assert_error(409, "EMAIL_TAKEN");

    let admin = app.signup(&json!({"name": "Eve", "email": "eve@example.com", "password": "long enough pw", "role": "admin"})).await;
    assert!(admin.status == 403 || admin.status == 422, "{}", admin.text);
    assert_eq!(admin.json["success"], false);

    let bad_email = app
        .signup(&json!({"name": "X", "email": "not-an-email", "password": "long enough pw"}))
        .await;
    bad_email.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(
        bad_email.json["errors"][0]["field"], "email",
        "{}",
        bad_email.text
    );

    let missing = app
        .signup(&json!({"name": "X", "email": "x@example.com"}))
        .await;
    missing.assert_error(422, "VALIDATION_ERROR");
    assert_eq!(
        missing.json["errors"][0]["field"], "password",
        "{}",
        missing.text
    );
}

async fn signin_sets_cookie_and_wrong_credentials_are_one_generic_401(app: TestApp) {
    let user = app.user("student").await;
    let ok = app
        .post(
            "/api/v1/user/signin",
            None,
            &json!({"email": user.email, "password": user.password}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["success"], true);
    assert_eq!(ok.json["user"]["id"], user.id.as_str());
    assert!(ok.set_cookie().unwrap().contains("HttpOnly"));

    let wrong = app
        .post(
            "/api/v1/user/signin",
            None,
            &json!({"email": user.email, "password": "nope nope nope"}),
        )
        .await;
    wrong.assert_error(401, "INVALID_CREDENTIALS");
    let unknown = app
        .post(
            "/api/v1/user/signin",
            None,
            &json!({"email": "ghost@example.com", "password": "nope nope nope"}),
        )
        .await;
    unknown.assert_error(401, "INVALID_CREDENTIALS");
    assert_eq!(wrong.json["message"], unknown.json["message"]);
}

async fn profile_accepts_bearer_or_cookie_and_refuses_anything_else(app: TestApp) {
    let user = app.user("student").await;

    let bearer = app.get("/api/v1/user/profile", Some(&user.token)).await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
    assert_eq!(bearer.json["user"]["id"], user.id.as_str());
    assert_eq!(bearer.json["user"]["enrolledCourses"], json!([]));

    let cookie = app
        .send(
            app.client
                .get(app.url("/api/v1/user/profile"))
                .header("cookie", format!("token={}", user.token)),
        )
        .await;
    assert_eq!(cookie.status, 200, "{}", cookie.text);

    app.get("/api/v1/user/profile", None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get("/api/v1/user/profile", Some("garbage"))
        .await
        .assert_error(401, "UNAUTHORIZED");

    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let id: UserId = user.id.parse().unwrap();
    let now = OffsetDateTime::now_utc();
    let expired = keys
        .issue_with_expiry(id, now - Duration::days(2), now - Duration::hours(1))
        .unwrap();
    app.get("/api/v1/user/profile", Some(&expired))
        .await
        .assert_error(401, "UNAUTHORIZED");

    let forged = JwtKeys::new(b"some-other-secret-some-other-secret!")
        .issue(id, now)
        .unwrap();
    app.get("/api/v1/user/profile", Some(&forged))
        .await
        .assert_error(401, "UNAUTHORIZED");

    // A valid signature for a user that does not exist (deleted): 401, not 404 or 500.
    let ghost = keys.issue(UserId::from_uuid(Uuid::new_v4()), now).unwrap();
    app.get("/api/v1/user/profile", Some(&ghost))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn signout_clears_the_cookie(app: TestApp) {
    let user = app.user("student").await;
    let resp = app
        .post("/api/v1/user/signout", Some(&user.token), &json!({}))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    let cookie = resp.set_cookie().unwrap();
    assert!(cookie.starts_with("token=;"), "{cookie}");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
}

crate::per_wiring!(
    signup_returns_user_and_token_sets_a_strict_cookie_and_never_the_hash,
    signup_defaults_to_student_and_refuses_admin_duplicates_and_bad_input,
    signin_sets_cookie_and_wrong_credentials_are_one_generic_401,
    profile_accepts_bearer_or_cookie_and_refuses_anything_else,
    signout_clears_the_cookie
);
