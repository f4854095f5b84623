use crate::api::helpers::{TestApp, JWT_SECRET};
use lms_actix_api::auth::{JwtKeys, SessionClaim};
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
    assert_eq!(ok.json["message"], "Welcome back A student");
    assert_eq!(ok.json["user"]["id"], user.id.as_str());
    assert_eq!(ok.json["user"]["_id"], user.id.as_str());
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

    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let id = subject(&user.id, 0);
    let now = OffsetDateTime::now_utc();
    let expired = keys
        .issue_with_expiry(id, now - Duration::days(2), now - Duration::hours(1))
        .unwrap();
    let forged = JwtKeys::new(b"some-other-secret-some-other-secret!")
        .issue(id, now)
        .unwrap();
    // A valid signature for a user that does not exist (deleted): 401, not 404 or 500.
    let ghost = keys
        .issue(subject(&Uuid::new_v4().to_string(), 0), now)
        .unwrap();
    // The profile loads the account before the handler; the purchase-status poll reads it
    // with the purchases, in its use case: both refuse alike.
    for path in ["/api/v1/user/profile".to_owned(), status_path()] {
        for token in [
            None,
            Some("garbage"),
            Some(expired.as_str()),
            Some(forged.as_str()),
            Some(ghost.as_str()),
        ] {
            app.get(&path, token)
                .await
                .assert_error(401, "UNAUTHORIZED");
        }
    }
}

/// The purchase-status route of a course that does not exist: a honoured token gets 404
/// there, a refused one 401.
fn status_path() -> String {
    format!(
        "/api/v1/payments/courses/{}/purchase-status",
        Uuid::new_v4()
    )
}

fn subject(user_id: &str, session_generation: u32) -> SessionClaim {
    SessionClaim {
        user_id: user_id.parse::<UserId>().unwrap(),
        session_generation,
    }
}

/// `GET /api/v1/user/profile` with `token` as the session cookie.
async fn profile_by_cookie(app: &TestApp, token: &str) -> crate::api::helpers::Resp {
    app.send(
        app.client
            .get(app.url("/api/v1/user/profile"))
            .header("cookie", format!("token={token}")),
    )
    .await
}

async fn sign_in(app: &TestApp, user: &crate::api::helpers::TestUser) -> String {
    let resp = app
        .post(
            "/api/v1/user/signin",
            None,
            &json!({"email": user.email, "password": user.password}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json["token"].as_str().unwrap().to_owned()
}

async fn assert_refused(app: &TestApp, token: &str) {
    app.get("/api/v1/user/profile", Some(token))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get(&status_path(), Some(token))
        .await
        .assert_error(401, "UNAUTHORIZED");
    profile_by_cookie(app, token)
        .await
        .assert_error(401, "UNAUTHORIZED");
}

async fn assert_honoured(app: &TestApp, token: &str, user_id: &str) {
    let bearer = app.get("/api/v1/user/profile", Some(token)).await;
    assert_eq!(bearer.status, 200, "{}", bearer.text);
    assert_eq!(bearer.json["user"]["id"], user_id);
    let cookie = profile_by_cookie(app, token).await;
    assert_eq!(cookie.status, 200, "{}", cookie.text);
    app.get(&status_path(), Some(token))
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
}

async fn signout_ends_every_session_of_the_account_and_signing_in_again_works(app: TestApp) {
    let user = app.user("student").await;
    let other = app.user("student").await;
    let laptop = sign_in(&app, &user).await;
    let phone = sign_in(&app, &user).await;
    for token in [&user.token, &laptop, &phone] {
        assert_honoured(&app, token, &user.id).await;
    }

    let resp = app
        .post("/api/v1/user/signout", Some(&phone), &json!({}))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    assert!(resp.set_cookie().unwrap().contains("Max-Age=0"));

    // The token used, the other sign-in's and the sign-up's: all ended, by either carrier.
    for token in [&user.token, &laptop, &phone] {
        assert_refused(&app, token).await;
    }
    // Someone else's session is untouched.
    assert_honoured(&app, &other.token, &other.id).await;

    let again = sign_in(&app, &user).await;
    assert_honoured(&app, &again, &user.id).await;
    assert_refused(&app, &laptop).await;
}

async fn signout_without_a_live_token_answers_200_and_ends_nothing(app: TestApp) {
    let user = app.user("student").await;
    let cleared = |resp: &crate::api::helpers::Resp| {
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json["success"], true);
        let cookie = resp.set_cookie().unwrap();
        assert!(cookie.starts_with("token=;"), "{cookie}");
    };
    cleared(&app.post("/api/v1/user/signout", None, &json!({})).await);
    cleared(
        &app.post("/api/v1/user/signout", Some("garbage"), &json!({}))
            .await,
    );
    assert_honoured(&app, &user.token, &user.id).await;

    // By cookie, like a browser: the session ends.
    let current = sign_in(&app, &user).await;
    let by_cookie = app
        .send(
            app.client
                .post(app.url("/api/v1/user/signout"))
                .header("cookie", format!("token={current}"))
                .json(&json!({})),
        )
        .await;
    cleared(&by_cookie);
    assert_refused(&app, &current).await;

    // An ended token cannot end the next session.
    let next = sign_in(&app, &user).await;
    cleared(
        &app.post("/api/v1/user/signout", Some(&current), &json!({}))
            .await,
    );
    assert_honoured(&app, &next, &user.id).await;
}

async fn tokens_of_an_older_or_newer_generation_are_refused(app: TestApp) {
    let user = app.user("student").await;
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let now = OffsetDateTime::now_utc();
    // A token without the generation claim (issued before it existed) counts as generation 0:
    // honoured until the user signs out.
    let claims = json!({"userId": user.id, "iat": now.unix_timestamp(), "exp": (now + Duration::hours(1)).unix_timestamp()});
    let legacy = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_honoured(&app, &legacy, &user.id).await;
    let ahead = keys.issue(subject(&user.id, 1), now).unwrap();
    assert_refused(&app, &ahead).await;

    let resp = app
        .post("/api/v1/user/signout", Some(&user.token), &json!({}))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_refused(&app, &legacy).await;
    // Generation 1 is now the current one.
    assert_honoured(&app, &ahead, &user.id).await;
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
    signout_clears_the_cookie,
    signout_ends_every_session_of_the_account_and_signing_in_again_works,
    signout_without_a_live_token_answers_200_and_ends_nothing,
    tokens_of_an_older_or_newer_generation_are_refused
);
