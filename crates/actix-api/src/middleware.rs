//! Cross-cutting HTTP concerns: request ids with tracing spans, request metrics, security
//! headers, CORS.

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{DefaultHeaders, Next};
use metrics::SharedString;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The request id header, read from the client when sane and always returned.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?.trim();
    let sane = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    sane.then(|| value.to_owned())
}

/// Opens a span per request carrying `request_id`, logs its outcome, counts it in
/// `lms_http_requests_total` and `lms_http_request_duration_seconds`, and returns the id as
/// `x-request-id`.
///
/// # Errors
/// An inner service's error, unchanged.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
    );
    let method = req.method().clone();
    let started = Instant::now();
    // Inner layers turn errors into responses (handlers, `ErrorHandlers`); an `Err` here is
    // passed on for actix to render. The request must not be cloned before routing.
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            // No route pattern is known here: the request went with the error.
            let status = err.as_response_error().status_code();
            record_request(&method, None, status, started.elapsed());
            return Err(err);
        }
    };
    let elapsed = started.elapsed();
    record_request(
        &method,
        res.request().match_pattern(),
        res.status(),
        elapsed,
    );
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "request completed"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    if res.status().is_client_error() || res.status().is_server_error() {
        res = with_request_id_in_envelope(res, &id).await;
    }
    Ok(res)
}

/// Adds `"requestId"` to an error envelope, so a user reporting an error can quote the id
/// the logs carry. Only error answers pay for re-reading the body; anything that is not a
/// JSON object (it always is, by `ErrorHandlers`) is passed on untouched.
async fn with_request_id_in_envelope(
    res: ServiceResponse<BoxBody>,
    id: &str,
) -> ServiceResponse<BoxBody> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return res;
    }
    let (req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        // An unreadable error body: say so in the log and send an empty one rather than fail.
        Err(_) => {
            tracing::warn!("an error body could not be read to add its request id");
            return ServiceResponse::new(req, head.set_body(BoxBody::new(())));
        }
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut envelope)) => {
            envelope.insert("requestId".to_owned(), serde_json::Value::from(id));
            serde_json::to_vec(&envelope).map_or(bytes, actix_web::web::Bytes::from)
        }
        _ => bytes,
    };
    let mut response = head.set_body(BoxBody::new(body));
    response.headers_mut().remove(header::CONTENT_LENGTH);
    ServiceResponse::new(req, response)
}

/// The route label of a request that matched no route (404s of unknown paths): raw paths
/// would give every scanner's guess a time series of its own.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Counts the request under its route pattern (`/api/v1/courses/{courseId}`, never the raw
/// path) and status, and observes its latency in seconds. The two series share their labels
/// rather than copy them: this runs on every request.
fn record_request(
    method: &Method,
    pattern: Option<String>,
    status: actix_web::http::StatusCode,
    elapsed: Duration,
) {
    let route = pattern.map_or(SharedString::const_str(UNMATCHED_ROUTE), |pattern| {
        SharedString::from_shared(Arc::from(pattern))
    });
    let method = method_label(method);
    metrics::counter!(
        "lms_http_requests_total",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.as_u16().to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "lms_http_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(elapsed.as_secs_f64());
}

/// The method as a label, without a copy for the standard methods.
fn method_label(method: &Method) -> SharedString {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    let name = method.as_str();
    STANDARD
        .into_iter()
        .find(|standard| *standard == name)
        .map_or_else(
            || SharedString::from_owned(name.to_owned()),
            SharedString::const_str,
        )
}

/// Headers every response carries.
pub fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((
            HeaderName::from_static("permissions-policy"),
            "interest-cohort=()",
        ));
    if hsts {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// CORS for the configured frontend origins, with credentials (the session cookie).
pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID,
        ])
        .expose_headers([REQUEST_ID])
        .supports_credentials()
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
