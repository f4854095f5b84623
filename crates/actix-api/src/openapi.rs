//! The OpenAPI 3.1 document of the REST API, derived from the handlers' own attributes and the
//! types they serialise, served at `GET /api/v1/openapi.json` and committed as
//! `docs/openapi.json` (a test keeps the two equal).
//!
//! The error envelope is described here once, with a reusable response for each error status
//! most routes share; a route's own codes (409s, `INVALID_CREDENTIALS`, `INVALID_WEBHOOK`) are
//! written next to its handler.

use crate::auth::TOKEN_COOKIE;
use crate::error::{BUSY_MESSAGE, GENERIC_5XX};
use crate::routes;
use actix_web::HttpResponse;
use serde_json::{json, Value};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

/// The API's description: every route of [`routes::configure`], the shared components and the
/// two ways to send the session token.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "LMS payments API",
        description = "Students buy courses through Stripe Checkout; Stripe confirms by \
            webhook; the frontend asks whether a course is unlocked. JSON keys are camelCase, \
            ids are UUID strings, money is integer minor units with an ISO 4217 code.\n\n\
            Every 4xx and 5xx is the error envelope (`fail` for 4xx, `error` for 5xx; a 5xx \
            never shows internal detail). Besides the statuses listed per operation, any route \
            answers 405 `METHOD_NOT_ALLOWED` to a wrong method, an unknown path answers 404 \
            `NOT_FOUND`, and a browser request from an origin outside `CORS_ORIGINS` is \
            refused with `CORS_REJECTED`. Every response carries `x-request-id`.",
    ),
    paths(
        routes::health::healthcheck,
        routes::users::sign_up,
        routes::users::sign_in,
        routes::users::sign_out,
        routes::users::profile,
        routes::courses::create,
        routes::courses::published,
        routes::courses::get,
        routes::courses::update,
        routes::payments::create_checkout_session,
        routes::payments::webhook,
        routes::payments::purchase_status,
        routes::payments::purchased_courses,
        routes::payments::purchase_history,
        routes::payments::refund,
        routes::payments::refund_request,
        routes::revenue::revenue,
        routes::admin::events,
        routes::admin::event,
        routes::admin::replay,
        routes::admin::held_purchases,
        routes::admin::accept_held,
        routes::admin::refund_held,
        routes::admin::audit,
        serve,
    ),
    components(
        schemas(ErrorEnvelope, FieldErrorBody),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            CourseNotFound,
            PurchaseNotFound,
            EventNotFound,
            NotHeld,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            TooManyRequests,
            InternalError,
            PaymentProviderError,
            Unavailable,
            UnavailableOrBusy,
            UnavailableOrProvider,
        ),
    ),
    modifiers(&SessionToken),
    tags(
        (name = "health", description = "Whether the server and its database work."),
        (name = "users", description = "Accounts and sessions."),
        (name = "courses", description = "Courses and their publication."),
        (name = "payments", description = "Checkout, Stripe's webhook, unlocking and refunds."),
        (name = "instructor", description = "What instructors (and admins) see of their \
            sales: the revenue report, as JSON or CSV."),
        (name = "admin", description = "Operations, for admins only: the event inbox and \
            its replay, purchases held for review and their resolution, the audit trail."),
        (name = "meta", description = "This document."),
    ),
)]
pub struct ApiDoc;

/// The session JWT travels in the `token` cookie (browsers) or as a Bearer token; routes that
/// need it list both, either one is enough.
#[derive(Debug)]
struct SessionToken;

impl Modify for SessionToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "cookie_token",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                TOKEN_COOKIE,
                "The session JWT (HS256, one day), set by sign-up and sign-in: HttpOnly, \
                 SameSite=Strict, Secure when configured.",
            ))),
        );
        components.add_security_scheme(
            "bearer_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The same JWT as `Authorization: Bearer <token>`; it wins over the \
                         cookie when both are sent.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served and committed: pretty-printed, keys sorted, one final newline.
pub fn document_json() -> String {
    let mut value = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    // Sorted whatever serde_json's map is (it keeps insertion order with `preserve_order`), so
    // the committed file does not change with the features another crate turns on.
    value.sort_all_objects();
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// The OpenAPI document
///
/// This very document, generated from the code.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object,
        content_type = "application/json")),
)]
pub async fn serve() -> HttpResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.get_or_init(document_json).as_str())
}

// `crate::error` builds the real one; a test checks that the two have the same keys.
/// The body of every 4xx and 5xx.
#[derive(Debug, ToSchema)]
#[schema(example = json!(example(404, "COURSE_NOT_FOUND", "Course not found.")))]
#[expect(
    dead_code,
    reason = "describes the error envelope for the OpenAPI document only"
)]
pub struct ErrorEnvelope {
    /// Always false.
    success: bool,
    /// `fail` for a 4xx, `error` for a 5xx.
    #[schema(schema_with = envelope_status_schema)]
    status: (),
    /// Safe to show; generic for a 5xx.
    message: String,
    /// The machine-readable code (see the route's examples and `docs/API.md`).
    #[schema(example = "COURSE_NOT_FOUND")]
    code: String,
    /// Present for 422 only: each invalid field.
    #[schema(nullable = false)]
    errors: Option<Vec<FieldErrorBody>>,
    /// Present for answers that clear by themselves (429, the busy 503): the same number of
    /// seconds as the `Retry-After` header.
    #[schema(rename = "retryAfter", minimum = 1, nullable = false)]
    retry_after: Option<u64>,
    /// The request's id, as in the `x-request-id` header and the logs: quote it when reporting
    /// an error.
    #[schema(rename = "requestId", example = "7c1e9a52-3b8d-4f0e-9a61-2d4c5b6e7f80")]
    request_id: String,
}

fn envelope_status_schema() -> utoipa::openapi::schema::Object {
    crate::dto::wire_names(["fail", "error"], "fail")
}

/// One invalid field of a 422.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "describes the error envelope for the OpenAPI document only"
)]
pub struct FieldErrorBody {
    #[schema(example = "priceCents")]
    field: String,
    #[schema(example = "price must not be negative")]
    message: String,
}

/// An error envelope for the examples: the status decides `fail` or `error`.
pub(crate) fn example(status: u16, code: &str, message: &str) -> Value {
    json!({
        "success": false,
        "status": if status >= 500 { "error" } else { "fail" },
        "message": message,
        "code": code,
    })
}

/// A user object for the examples.
pub(crate) fn user_example() -> Value {
    json!({
        "id": "0b5f8a4e-4c1e-4d0a-9a57-3f1c2b7d9e10",
        "_id": "0b5f8a4e-4c1e-4d0a-9a57-3f1c2b7d9e10",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "role": "student",
        "createdAt": "2025-01-01T12:00:00Z",
    })
}

/// A course object for the examples.
pub(crate) fn course_example() -> Value {
    json!({
        "id": "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f",
        "_id": "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f",
        "title": "Rust for web backends",
        "subtitle": "From zero to a payments API",
        "description": null,
        "category": "programming",
        "level": "intermediate",
        "priceCents": 1999,
        "price": 19.99,
        "currency": "USD",
        "isPublished": true,
        "instructorId": "7c6b5a49-3827-4615-9504-f3e2d1c0b9a8",
        "instructor": "7c6b5a49-3827-4615-9504-f3e2d1c0b9a8",
        "createdAt": "2025-01-01T12:00:00Z",
        "updatedAt": "2025-01-02T08:30:00Z",
    })
}

// The reusable error responses. Each wraps the envelope; only the examples differ.

/// The request cannot be read: malformed JSON or an unreadable body.
#[derive(Debug, ToResponse)]
#[response(examples(
    ("INVALID_JSON" = (value = json!(example(400, "INVALID_JSON", "The request body is not valid JSON.")))),
    ("INVALID_BODY" = (value = json!(example(400, "INVALID_BODY", "The request body could not be read.")))),
))]
pub struct BadRequest(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// No token, an invalid or expired one, or one ended by sign-out.
#[derive(Debug, ToResponse)]
#[response(
    example = json!(example(401, "UNAUTHORIZED", "Authentication required. Please sign in.")),
    headers(("WWW-Authenticate" = String, description = "`Bearer`")),
)]
pub struct Unauthorized(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// Authenticated but not allowed.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(403, "FORBIDDEN", "You are not allowed to do this.")))]
pub struct Forbidden(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// No such course, or an unpublished one that is not the caller's.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(404, "COURSE_NOT_FOUND", "Course not found.")))]
pub struct CourseNotFound(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// No such purchase the caller may see.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(404, "PURCHASE_NOT_FOUND", "Purchase not found.")))]
pub struct PurchaseNotFound(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// No such event in the inbox.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(404, "EVENT_NOT_FOUND", "Event not found.")))]
pub struct EventNotFound(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// The purchase is not held for review: it never was, or it was already resolved.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(
    409,
    "NOT_HELD",
    "This purchase is not held for review: it never was, or it was already resolved.",
)))]
pub struct NotHeld(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// JSON over 16 KiB, a webhook over 256 KiB.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(413, "PAYLOAD_TOO_LARGE", "The request body is too large.")))]
pub struct PayloadTooLarge(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// A body that is not `application/json`.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(
    415,
    "UNSUPPORTED_MEDIA_TYPE",
    "The request body must be JSON (Content-Type: application/json).",
)))]
pub struct UnsupportedMediaType(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// Invalid fields, each listed in `errors`.
#[derive(Debug, ToResponse)]
#[response(example = json!({
    "success": false,
    "status": "fail",
    "message": "missing field `priceCents` at line 1 column 28",
    "code": "VALIDATION_ERROR",
    "errors": [{"field": "priceCents", "message": "missing field `priceCents` at line 1 column 28"}],
}))]
pub struct ValidationFailed(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// Too many sign-in or sign-up attempts from this client address (or for this e-mail).
#[derive(Debug, ToResponse)]
#[response(
    example = json!({
        "success": false,
        "status": "fail",
        "message": "Too many sign-in attempts. Please try again later.",
        "code": "TOO_MANY_REQUESTS",
        "retryAfter": 42,
    }),
    headers(("Retry-After" = u64, description = "Seconds to wait; the same as `retryAfter`.")),
)]
pub struct TooManyRequests(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// A bug or an unexpected failure; the cause goes to the log, never to the body.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(500, "INTERNAL_ERROR", GENERIC_5XX)))]
pub struct InternalError(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// Stripe refused or failed the request.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(502, "PAYMENT_PROVIDER_ERROR", GENERIC_5XX)))]
pub struct PaymentProviderError(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// The database cannot be reached: retry later.
#[derive(Debug, ToResponse)]
#[response(example = json!(example(503, "SERVICE_UNAVAILABLE", GENERIC_5XX)))]
pub struct Unavailable(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// The database cannot be reached, or every password-hashing slot is taken (`SERVER_BUSY`,
/// with `Retry-After`).
#[derive(Debug, ToResponse)]
#[response(
    examples(
        ("SERVICE_UNAVAILABLE" = (value = json!(example(503, "SERVICE_UNAVAILABLE", GENERIC_5XX)))),
        ("SERVER_BUSY" = (value = json!({
            "success": false,
            "status": "error",
            "message": BUSY_MESSAGE,
            "code": "SERVER_BUSY",
            "retryAfter": 1,
        }))),
    ),
    headers(("Retry-After" = u64, description = "With `SERVER_BUSY` only: seconds to wait.")),
)]
pub struct UnavailableOrBusy(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

/// The database or Stripe cannot be reached: retry later.
#[derive(Debug, ToResponse)]
#[response(examples(
    ("SERVICE_UNAVAILABLE" = (value = json!(example(503, "SERVICE_UNAVAILABLE", GENERIC_5XX)))),
    ("PAYMENT_PROVIDER_UNAVAILABLE" = (value = json!(example(503, "PAYMENT_PROVIDER_UNAVAILABLE", GENERIC_5XX)))),
))]
pub struct UnavailableOrProvider(#[expect(dead_code, reason = "documentation only")] ErrorEnvelope);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ApiError, FieldError};
    use crate::ApiSettings;
    use actix_web::http::{Method, StatusCode};
    use actix_web::test::{call_service, init_service, read_body, TestRequest};
    use actix_web::App;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// `(METHOD, path)` of every operation in the document.
    fn documented_operations() -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let mut operations = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    operations.insert((method.to_ascii_uppercase(), path.clone()));
                }
            }
        }
        operations
    }

    /// `(METHOD, path)` of every route `routes::configure` registers, read from its source:
    /// each `resource("...")` and the `web::<method>()` calls that follow it.
    fn registered_operations() -> BTreeSet<(String, String)> {
        let source = include_str!("routes/mod.rs");
        let scope = source
            .split_once("web::scope(\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(scope, _)| scope)
            .unwrap();
        let mut operations = BTreeSet::new();
        for block in source.split("resource(\"").skip(1) {
            let (path, rest) = block.split_once('"').unwrap();
            for method in ["get", "post", "put", "patch", "delete"] {
                if rest.contains(&format!("web::{method}()")) {
                    operations.insert((method.to_ascii_uppercase(), format!("{scope}{path}")));
                }
            }
        }
        operations
    }

    #[test]
    fn committed_document_is_current() {
        let generated = document_json();
        let path = committed_path();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is stale: the routes or their types changed. Regenerate it with \
             `UPDATE_OPENAPI=1 cargo nextest run -p lms-actix-api openapi` and commit it."
        );
    }

    #[test]
    fn every_registered_route_is_documented_and_nothing_else() {
        let registered = registered_operations();
        assert!(
            registered.len() >= 15,
            "the route table was not read: {registered:?}"
        );
        let documented = documented_operations();
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        let unregistered: Vec<_> = documented.difference(&registered).collect();
        assert!(
            undocumented.is_empty() && unregistered.is_empty(),
            "routes without a #[utoipa::path] listed in ApiDoc: {undocumented:?}; \
             documented but not registered: {unregistered:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_both_session_schemes() {
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["cookie_token"]["in"], "cookie");
        assert_eq!(schemes["cookie_token"]["name"], TOKEN_COOKIE);
        assert_eq!(schemes["bearer_jwt"]["scheme"], "bearer");
        let webhook = &doc["paths"]["/api/v1/payments/webhook"]["post"];
        assert_eq!(webhook["parameters"][0]["name"], "Stripe-Signature");
        assert_eq!(webhook["parameters"][0]["in"], "header");
    }

    /// The documented envelope has exactly the keys the real one can carry.
    #[actix_web::test]
    async fn the_documented_envelope_is_the_real_one() {
        // Through the request-id middleware, which adds `requestId` to every error envelope.
        let app = init_service(
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::middleware::request_id,
                ))
                .route(
                    "/fails",
                    actix_web::web::get().to(|| async {
                        Err::<actix_web::HttpResponse, _>(
                            ApiError::validation(vec![FieldError::new("title", "missing")])
                                .retry_after(std::time::Duration::from_secs(3)),
                        )
                    }),
                ),
        )
        .await;
        let res = call_service(
            &app,
            TestRequest::get()
                .uri("/fails")
                .insert_header(("x-request-id", "req-42"))
                .to_request(),
        )
        .await;
        let body = read_body(res).await;
        let real: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(real["requestId"], "req-42");
        let doc: Value = serde_json::from_str(&document_json()).unwrap();
        let schema = &doc["components"]["schemas"];
        let keys = |value: &Value| -> BTreeSet<String> {
            value.as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(&real), keys(&schema["ErrorEnvelope"]["properties"]));
        assert_eq!(
            keys(&real["errors"][0]),
            keys(&schema["FieldErrorBody"]["properties"])
        );
    }

    /// The served bytes are the generated ones, and every documented operation reaches a
    /// handler (no 404 or 405) while every other method on its path answers 405.
    #[actix_web::test]
    async fn served_document_is_generated_and_documented_routes_exist() {
        let settings = ApiSettings::new("http://localhost/ok");
        let app = init_service(
            App::new()
                .configure(|cfg| routes::configure(cfg, &settings))
                .default_service(actix_web::web::to(crate::error::not_found)),
        )
        .await;

        let res = call_service(
            &app,
            TestRequest::get().uri("/api/v1/openapi.json").to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(read_body(res).await, document_json().as_bytes());

        let documented = documented_operations();
        for (method, path) in &documented {
            let uri = path
                .replace("{courseId}", "00000000-0000-4000-8000-000000000000")
                .replace("{purchaseId}", "00000000-0000-4000-8000-000000000000")
                .replace("{eventId}", "evt_test");
            for other in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let request = TestRequest::default()
                    .method(Method::from_bytes(other.as_bytes()).unwrap())
                    .uri(&uri)
                    .to_request();
                // Without the app's state the handlers answer 500: routed, which is the point.
                let status = call_service(&app, request).await.status();
                if other == method {
                    assert!(
                        status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                        "{method} {path} is documented but answers {status}"
                    );
                } else if !documented.contains(&(other.to_owned(), path.clone())) {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{other} {path} is routed but not documented"
                    );
                }
            }
        }
    }
}
