//! The one JSON error envelope, and the only place where errors become status codes.
//!
//! `{"success": false, "status": "fail"|"error", "message", "code"}` (+ `errors` for validation).
//! `fail` for 4xx, `error` for 5xx. A 5xx body is always generic; its cause chain goes to the
//! log, once, each level in `error.chain` (outermost first), when the response is built.
//! The one exception, a 5xx asking the client to wait (503 `SERVER_BUSY`), carries a fixed
//! message saying so, with `Retry-After` and `retryAfter`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use lms_ports::{BoxError, WebhookRejection};
use serde::Serialize;
use std::fmt;

/// One invalid input field: the use cases' own, so a field the HTTP layer finds wrong (a body
/// serde cannot read) and one a use case refuses are the same thing on the wire.
pub use lms_use_cases::FieldError;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    /// Safe to show. For 5xx it is replaced by a generic message anyway, except for a 5xx that
    /// asks the client to wait (`retry_after`, e.g. 503 `SERVER_BUSY`): built from a fixed text,
    /// never from a cause, it tells the client what the wait is for.
    pub message: String,
    pub errors: Vec<FieldError>,
    /// The cause, its whole chain logged for a 5xx and never sent.
    pub cause: Option<BoxError>,
    /// For 429 and 503 that will clear by themselves: whole seconds the client should wait,
    /// sent as the `Retry-After` header and as `retryAfter` in the envelope.
    pub retry_after: Option<u64>,
}

/// What every 5xx says.
pub const GENERIC_5XX: &str = "Something went wrong on our side. Please try again later.";

/// What a 409 `REFUND_IN_PROGRESS` says: refunds of one purchase are made one at a time.
pub const REFUND_IN_PROGRESS: &str =
    "Another refund of this purchase is being made. Please try again in a moment.";

/// What a 409 `SELF_REFUND_UNAVAILABLE` says (self-service refunds are off).
pub const SELF_REFUND_UNAVAILABLE: &str =
    "Refunds cannot be requested here. Please contact the course's instructor or support.";

/// What a 503 `SERVER_BUSY` says (the server shed the request; nothing went wrong).
pub const BUSY_MESSAGE: &str = "The server is busy. Please try again shortly.";

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
            cause: None,
            retry_after: None,
        }
    }

    /// 429: this client sent too many requests of this kind; it may try again after the wait.
    pub fn too_many_requests(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
            .retry_after(retry_after)
    }

    /// Asks the client to wait before retrying (rounded up to whole seconds, at least 1).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let message = errors.first().map_or_else(
            || "The request is invalid.".to_owned(),
            |e| e.message.clone(),
        );
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_ERROR",
                message,
            )
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A 500 whose cause is logged, never shown.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                GENERIC_5XX,
            )
        }
    }

    /// Retryable: a dependency is down.
    pub fn unavailable(code: &'static str, cause: impl Into<BoxError>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, GENERIC_5XX)
        }
    }

    pub fn with_cause(mut self, cause: impl Into<BoxError>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Each level of the cause chain, outermost first; empty without a cause.
    pub fn cause_chain(&self) -> Vec<String> {
        self.cause.as_deref().map_or_else(Vec::new, |cause| {
            let cause: &(dyn std::error::Error + 'static) = cause;
            lms_ports::chain(cause).map(ToString::to_string).collect()
        })
    }

    /// The envelope body for a status, code and message.
    fn body(&self) -> Envelope<'_> {
        let server = self.status.is_server_error();
        Envelope {
            success: false,
            status: if server { "error" } else { "fail" },
            // A 5xx with a Retry-After is a deliberate, self-clearing refusal whose message is a
            // fixed text: "something went wrong" would contradict the wait it asks for.
            message: if server && self.retry_after.is_none() {
                GENERIC_5XX
            } else {
                &self.message
            },
            code: self.code,
            errors: if self.errors.is_empty() {
                None
            } else {
                Some(self.errors.iter().map(FieldBody::from).collect())
            },
            retry_after: self.retry_after,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

/// The cause is this error's source: whoever walks the chain sees it.
impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

/// A [`FieldError`] as the envelope spells it.
#[derive(Debug, Serialize)]
struct FieldBody<'a> {
    field: &'a str,
    message: &'a str,
}

impl<'a> From<&'a FieldError> for FieldBody<'a> {
    fn from(error: &'a FieldError) -> Self {
        Self {
            field: &error.field,
            message: &error.message,
        }
    }
}

#[derive(Debug, Serialize)]
struct Envelope<'a> {
    success: bool,
    status: &'static str,
    message: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldBody<'a>>>,
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if self.status.is_server_error() {
            // The one place a 5xx is logged: every level of its cause, never in the body.
            let chain = self.cause_chain();
            tracing::error!(
                status = self.status.as_u16(),
                code = self.code,
                error = chain.first().map(String::as_str),
                error.chain = ?chain,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = self.status.as_u16(),
                code = self.code,
                "request refused"
            );
        }
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs));
        }
        response.json(self.body())
    }
}

/// Maps actix's JSON extractor errors to the envelope (wired through `JsonConfig`).
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            payload_too_large()
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "The request body must be JSON (Content-Type: application/json).",
        ),
        JsonPayloadError::Deserialize(inner) => json_body_error(inner),
        JsonPayloadError::Payload(actix_web::error::PayloadError::Overflow) => payload_too_large(),
        _ => ApiError::bad_request("INVALID_BODY", "The request body could not be read."),
    };
    api.into()
}

/// A JSON body serde could not read: 422 naming the field when the JSON is well-formed but a
/// field is missing or mistyped, 400 `INVALID_JSON` otherwise. For the routes that read their
/// (optional) body themselves as well as for the JSON extractor.
pub fn json_body_error(err: &serde_json::Error) -> ApiError {
    if err.is_data() {
        ApiError::validation(vec![FieldError::new(field_of(err), err.to_string())])
    } else {
        ApiError::bad_request("INVALID_JSON", "The request body is not valid JSON.")
    }
}

/// serde_json names the field in messages like "missing field `title`"; pull it out.
fn field_of(err: &serde_json::Error) -> std::borrow::Cow<'static, str> {
    let text = err.to_string();
    text.split('`')
        .nth(1)
        .map_or(std::borrow::Cow::Borrowed("body"), |field| {
            std::borrow::Cow::Owned(field.to_owned())
        })
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "The request body is too large.",
    )
}

/// Maps query-string errors (`?page=abc`) to the envelope.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::validation(vec![FieldError::new("query", err.to_string())]).into()
}

/// Maps path-parameter errors to the envelope.
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request("INVALID_PATH", err.to_string()).into()
}

/// Unknown route.
pub async fn not_found() -> HttpResponse {
    ApiError::not_found("Route not found.").error_response()
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "Method not allowed on this route.",
    )
    .error_response()
}

/// Machine code for a status, for errors produced outside our handlers.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        s if s.is_server_error() => "INTERNAL_ERROR",
        _ => "REQUEST_FAILED",
    }
}

fn message_for(status: StatusCode) -> String {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large.".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed on this route.".to_owned(),
        StatusCode::NOT_FOUND => "Route not found.".to_owned(),
        s => s.canonical_reason().unwrap_or("Request failed").to_owned() + ".",
    }
}

/// Safety net (an `ErrorHandlers` default handler): any 4xx/5xx response that is not already
/// our JSON envelope (actix's own extractor errors, CORS refusals, ...) is rewritten into it.
/// 5xx bodies are replaced by the generic one; the original error is logged.
///
/// # Errors
/// Never; the signature is what `ErrorHandlers` expects.
pub fn envelope_fallback<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    if let Some(err) = res.response().error() {
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %err, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %err, "request refused");
        }
    }
    let cors_refusal = res
        .response()
        .error()
        .and_then(|err| err.as_error::<actix_cors::CorsError>())
        .map(|err| format!("{err}."));
    let api = match cors_refusal {
        Some(message) if !status.is_server_error() => {
            ApiError::new(status, "CORS_REJECTED", message)
        }
        _ => ApiError::new(status, code_for(status), message_for(status)),
    };
    let (req, res) = res.into_parts();
    let mut rebuilt = api.error_response();
    // Keep headers such as Allow or CORS ones; only the body and its type change.
    for (name, value) in res.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().append(name.clone(), value.clone());
        }
    }
    rebuilt.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let res = ServiceResponse::new(req, rebuilt).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

/// The answer to a token that is invalid, expired, of an ended session or of a deleted account.
pub(crate) const SESSION_ENDED: &str =
    "Your session is invalid or has expired. Please sign in again.";

impl From<lms_use_cases::UseCaseError> for ApiError {
    fn from(err: lms_use_cases::UseCaseError) -> Self {
        use lms_ports::GatewayError as G;
        use lms_use_cases::{Resource, UseCaseError as E};
        match err {
            E::Validation(fields) => ApiError::validation(fields),
            E::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Invalid email or password.",
            ),
            E::EmailTaken => {
                ApiError::conflict("EMAIL_TAKEN", "An account with this email already exists.")
            }
            E::SessionEnded => ApiError::unauthorized(SESSION_ENDED),
            E::Forbidden => ApiError::forbidden("You are not allowed to do this."),
            E::NotFound(Resource::Course) => ApiError::new(
                StatusCode::NOT_FOUND,
                "COURSE_NOT_FOUND",
                "Course not found.",
            ),
            E::NotFound(Resource::Purchase) => ApiError::new(
                StatusCode::NOT_FOUND,
                "PURCHASE_NOT_FOUND",
                "Purchase not found.",
            ),
            E::NotFound(Resource::User) => ApiError::not_found("User not found."),
            E::NotFound(Resource::Event) => {
                ApiError::new(StatusCode::NOT_FOUND, "EVENT_NOT_FOUND", "Event not found.")
            }
            E::AlreadyPurchased => ApiError::conflict(
                "ALREADY_PURCHASED",
                "You have already purchased this course.",
            ),
            E::OwnCourse => {
                ApiError::conflict("OWN_COURSE", "Instructors cannot buy their own course.")
            }
            E::PaymentInProgress => ApiError::conflict(
                "PAYMENT_IN_PROGRESS",
                "A payment for this course is already in progress. Please wait for it to complete.",
            ),
            E::NotRefundable(reason) => ApiError::conflict(
                "NOT_REFUNDABLE",
                format!("This purchase cannot be refunded: {reason}."),
            ),
            E::RefundInProgress => ApiError::conflict("REFUND_IN_PROGRESS", REFUND_IN_PROGRESS),
            E::SelfRefundUnavailable => {
                ApiError::conflict("SELF_REFUND_UNAVAILABLE", SELF_REFUND_UNAVAILABLE)
            }
            E::RefundWindowClosed { window_days } => ApiError::conflict(
                "REFUND_WINDOW_CLOSED",
                format!(
                    "This purchase can no longer be refunded: {}.",
                    lms_use_cases::refund_window_text(window_days)
                ),
            ),
            E::NotHeld => ApiError::conflict(
                "NOT_HELD",
                "This purchase is not held for review: it never was, or it was already resolved.",
            ),
            // Admin-only: the reason is about the stored event (pruned, undecodable), not about
            // the server, and the operator needs it to decide what to do instead.
            E::NotReplayable(reason) => ApiError::conflict(
                "NOT_REPLAYABLE",
                format!("This event cannot be replayed: {reason}."),
            ),
            E::WebhookRejected(rejection) => {
                ApiError::bad_request("INVALID_WEBHOOK", webhook_rejected(&rejection))
            }
            E::Gateway(gateway) => match gateway {
                G::Unavailable(_) => ApiError::unavailable("PAYMENT_PROVIDER_UNAVAILABLE", gateway),
                G::Rejected { .. } | G::NotFound | G::Misconfigured(_) | G::Unexpected(_) => {
                    ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "PAYMENT_PROVIDER_ERROR",
                        GENERIC_5XX,
                    )
                    .with_cause(gateway)
                }
            },
            E::Busy { retry_after } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "SERVER_BUSY", BUSY_MESSAGE)
                    .retry_after(retry_after)
            }
            // The use case's error itself is the cause: the log reads from the top.
            unavailable @ E::Unavailable(_) => {
                ApiError::unavailable("SERVICE_UNAVAILABLE", unavailable)
            }
            unexpected @ E::Unexpected(_) => ApiError::internal(unexpected),
        }
    }
}

/// What the sender of a refused webhook reads. A malformed one also says what was wrong: its
/// reasons are about the sender's bytes (a serde message, an unreadable header), not about us.
fn webhook_rejected(rejection: &WebhookRejection) -> String {
    let reasons: Vec<String> = lms_ports::chain(rejection)
        .skip(1)
        .map(ToString::to_string)
        .collect();
    if reasons.is_empty() {
        format!("Webhook rejected: {rejection}.")
    } else {
        format!("Webhook rejected: {rejection} ({}).", reasons.join(": "))
    }
}
