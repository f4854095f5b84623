use crate::api::helpers::{TestApp, FRONTEND};
use serde_json::json;

async fn unknown_routes_and_wrong_methods_get_the_envelope(app: TestApp) {
    app.get("/api/v1/nope", None)
        .await
        .assert_error(404, "NOT_FOUND");
    // `/` is the storefront; an unknown path outside the API still gets the envelope.
    app.get("/no-such-page", None)
        .await
        .assert_error(404, "NOT_FOUND");
    let wrong = app.get("/api/v1/user/signup", None).await;
    wrong.assert_error(405, "METHOD_NOT_ALLOWED");
    app.send(app.client.delete(app.url("/api/v1/courses/published")))
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    app.get("/api/v1/payments/webhook", None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    // The frontend's hot read: the paths beside it are unknown, its other methods wrong.
    let course = "/api/v1/payments/courses/3f2b8c1e-0d5a-4c7b-9e61-2a4f8d9c0b17";
    app.send(
        app.client
            .post(app.url(&format!("{course}/purchase-status"))),
    )
    .await
    .assert_error(405, "METHOD_NOT_ALLOWED");
    app.get(course, None).await.assert_error(404, "NOT_FOUND");
    app.get(&format!("{course}/purchase-state"), None)
        .await
        .assert_error(404, "NOT_FOUND");
    app.get("/api/v1/payments/courses//purchase-status", None)
        .await
        .assert_error(404, "NOT_FOUND");
}

async fn malformed_json_wrong_content_type_and_oversized_bodies(app: TestApp) {
    let malformed = app
        .send(
            app.client
                .post(app.url("/api/v1/user/signup"))
                .header("content-type", "application/json")
                .body("{\"name\": "),
        )
        .await;
    malformed.assert_error(400, "INVALID_JSON");

    let wrong_type = app
        .send(
            app.client
                .post(app.url("/api/v1/user/signup"))
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    wrong_type.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");

    let huge =
        json!({"name": "x".repeat(17 * 1024), "email": "a@b.io", "password": "long enough pw"});
    app.signup(&huge)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
}

async fn request_ids_and_security_headers_are_on_every_response(app: TestApp) {
    let resp = app.get("/api/v1/nope", None).await;
    let id = resp.headers.get("x-request-id").unwrap().to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            resp.headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    let echoed = app
        .send(
            app.client
                .get(app.url("/api/v1/healthcheck"))
                .header("x-request-id", "abc-123"),
        )
        .await;
    assert_eq!(echoed.headers.get("x-request-id").unwrap(), "abc-123");
    let hostile = app
        .send(
            app.client
                .get(app.url("/api/v1/healthcheck"))
                .header("x-request-id", "a b\"<script>"),
        )
        .await;
    assert_ne!(
        hostile.headers.get("x-request-id").unwrap(),
        "a b\"<script>"
    );
}

async fn cors_allows_the_frontend_with_credentials_only(app: TestApp) {
    let preflight = app
        .send(
            app.client
                .request(
                    reqwest::Method::OPTIONS,
                    app.url("/api/v1/payments/create-checkout-session"),
                )
                .header("origin", FRONTEND)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type"),
        )
        .await;
    assert!(
        preflight.status == 200 || preflight.status == 204,
        "{}",
        preflight.text
    );
    assert_eq!(
        preflight
            .headers
            .get("access-control-allow-origin")
            .unwrap(),
        FRONTEND
    );
    assert_eq!(
        preflight
            .headers
            .get("access-control-allow-credentials")
            .unwrap(),
        "true"
    );

    let foreign = app
        .send(
            app.client
                .get(app.url("/api/v1/healthcheck"))
                .header("origin", "https://evil.example"),
        )
        .await;
    assert!(foreign.headers.get("access-control-allow-origin").is_none());
    let foreign_preflight = app
        .send(
            app.client
                .request(
                    reqwest::Method::OPTIONS,
                    app.url("/api/v1/payments/create-checkout-session"),
                )
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "POST"),
        )
        .await;
    assert!(foreign_preflight
        .headers
        .get("access-control-allow-origin")
        .is_none());
    foreign_preflight.assert_error(400, "CORS_REJECTED");
}

crate::per_wiring!(
    unknown_routes_and_wrong_methods_get_the_envelope,
    malformed_json_wrong_content_type_and_oversized_bodies,
    request_ids_and_security_headers_are_on_every_response,
    cors_allows_the_frontend_with_credentials_only
);
