//! The sandbox's HTTP face: Stripe's REST subset (form-encoded, Bearer key, Stripe's error
//! shape, Idempotency-Key replay) and the hosted checkout page.

use crate::ledger::{Params, StripeError};
use crate::{lock, page, Inner, StoredResponse};
use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::Arc;

type State = web::Data<Arc<Inner>>;

pub(crate) fn server(listener: TcpListener, inner: Arc<Inner>) -> std::io::Result<Server> {
    let state = web::Data::new(inner);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/v1/checkout/sessions", web::post().to(create_session))
            .route("/v1/checkout/sessions", web::get().to(list_sessions))
            .route(
                "/v1/checkout/sessions/{id}",
                web::get().to(retrieve_session),
            )
            .route(
                "/v1/checkout/sessions/{id}/expire",
                web::post().to(expire_session),
            )
            .route("/v1/refunds", web::post().to(create_refund))
            .route("/v1/customers", web::post().to(create_customer))
            .route("/v1/customers/{id}", web::get().to(retrieve_customer))
            .route(
                "/v1/promotion_codes/{id}",
                web::get().to(retrieve_promotion_code),
            )
            .route("/v1/events", web::get().to(list_events))
            .route("/checkout/pay/{id}/{secret}", web::get().to(page::show))
            .route("/checkout/pay/{id}/{secret}", web::post().to(page::submit))
            .route("/receipts/payment/{token}", web::get().to(page::receipt))
            // A link without its secret is as unknown as a wrong one.
            .route("/checkout/pay/{id}", web::route().to(page::not_found))
            .default_service(web::to(|| async {
                error_response(&StripeError {
                    status: 404,
                    kind: "invalid_request_error",
                    code: Some("resource_missing"),
                    message: "Unrecognized request URL.".into(),
                    param: None,
                })
            }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

pub(crate) fn error_response(error: &StripeError) -> HttpResponse {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(error.body())
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK)).json(body)
}

/// Checks the API key and the chaos switches; `Err` is the response to send instead.
fn admit(req: &HttpRequest, inner: &Inner) -> Result<(), StripeError> {
    let expected = format!("Bearer {}", inner.config.secret_key);
    let presented = req
        .headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return Err(StripeError {
            status: 401,
            kind: "invalid_request_error",
            code: None,
            message: "Invalid API Key provided.".into(),
            param: None,
        });
    }
    let injected = {
        let mut chaos = lock(&inner.chaos);
        (!chaos.fail_next.is_empty()).then(|| chaos.fail_next.remove(0))
    };
    if let Some(status) = injected {
        let (kind, message) = if status == 429 {
            (
                "rate_limit_error",
                "Too many requests hit the API too quickly.",
            )
        } else {
            (
                "api_error",
                "An error occurred with our connection to Stripe. (sandbox chaos)",
            )
        };
        return Err(StripeError {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
        });
    }
    Ok(())
}

/// Runs a POST with Stripe's idempotency semantics: the first response for a key (scoped to
/// the path) is replayed with `Idempotent-Replayed: true` for the same parameters, and a reuse
/// with other parameters is refused with Stripe's 400 `idempotency_error`. A request refused
/// for an invalid parameter saves nothing, as at Stripe.
///
/// Stripe's 409 "another request with this key is in progress" cannot be observed here, by
/// design: the store's lock is held across the (synchronous, in-memory) work, so concurrent
/// requests with one key are serialized and the later ones are plain replays. The adapter's
/// handling of that 409 (retried with the same key) is tested against wiremock instead
/// (`lms-stripe-http`, `a_409_is_retried`).
fn idempotent(
    req: &HttpRequest,
    inner: &Inner,
    params: &Params,
    run: impl FnOnce() -> Result<Value, StripeError>,
) -> HttpResponse {
    let Some(key) = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return match run() {
            Ok(body) => json_response(200, &body),
            Err(error) => error_response(&error),
        };
    };
    if key.len() > 255 {
        return error_response(&StripeError::invalid(
            "idempotency_key_too_long",
            "Idempotency keys are at most 255 characters.",
            None,
        ));
    }
    let scoped = format!("{} {}", req.path(), key);
    let fingerprint = params.fingerprint();
    // Held across `run` so that concurrent requests with one key are answered one at a time.
    let mut store = lock(&inner.idempotency);
    if let Some(stored) = store.get(&scoped) {
        if stored.fingerprint != fingerprint {
            return error_response(&StripeError {
                status: 400,
                kind: "idempotency_error",
                code: Some("idempotency_key_in_use"),
                message: format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}'."),
                param: None,
            });
        }
        let mut response = json_response(stored.status, &stored.body);
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
            actix_web::http::header::HeaderValue::from_static("true"),
        );
        return response;
    }
    let (status, body, saved) = match run() {
        Ok(body) => (200, body, true),
        // Stripe saves no result when the parameters failed validation (the endpoint never
        // started): the key may be used again with corrected parameters. Nor does it save
        // 5xx answers (nothing here produces them, but keep the rule).
        Err(error) => {
            let parameter_error = error.status == 400
                && error.kind == "invalid_request_error"
                && error.param.is_some();
            let saved = !parameter_error && error.status < 500;
            (error.status, error.body(), saved)
        }
    };
    if saved {
        store.insert(
            scoped,
            StoredResponse {
                fingerprint,
                status,
                body: body.clone(),
            },
        );
    }
    json_response(status, &body)
}

async fn create_session(req: HttpRequest, body: web::Bytes, inner: State) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(error) => return error_response(&error),
    };
    let page_base = lock(&inner.page_base).clone();
    let response = idempotent(&req, &inner, &params, || {
        inner
            .ledger()
            .create_session(&params, inner.now(), &page_base)
    });
    inner.new_events.notify_one();
    response
}

async fn create_customer(req: HttpRequest, body: web::Bytes, inner: State) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(error) => return error_response(&error),
    };
    idempotent(&req, &inner, &params, || {
        inner.ledger().create_customer(&params, inner.now())
    })
}

async fn retrieve_customer(
    req: HttpRequest,
    path: web::Path<String>,
    inner: State,
) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    match inner.ledger().customer(&path) {
        Ok(customer) => json_response(200, &customer),
        Err(error) => error_response(&error),
    }
}

/// `GET /v1/promotion_codes/{id}`: one of the fixed [`crate::PROMOTION_CODES`], shaped as
/// Stripe's object (the fields this product reads, and a few that make it recognisable).
async fn retrieve_promotion_code(
    req: HttpRequest,
    path: web::Path<String>,
    inner: State,
) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    match crate::PROMOTION_CODES
        .iter()
        .find(|promotion| promotion.id == path.as_str())
    {
        Some(promotion) => json_response(
            200,
            &json!({
                "id": promotion.id,
                "object": "promotion_code",
                "active": true,
                "code": promotion.code,
                "coupon": { "id": promotion.coupon, "object": "coupon" },
                "livemode": false,
            }),
        ),
        None => error_response(&StripeError::not_found("promotion_code", &path)),
    }
}

async fn retrieve_session(req: HttpRequest, path: web::Path<String>, inner: State) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let mut ledger = inner.ledger();
    ledger.expire_due(inner.now());
    match ledger.session(&path) {
        Ok(session) => json_response(200, &session),
        Err(error) => error_response(&error),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    payment_intent: Option<String>,
    limit: Option<usize>,
}

async fn list_sessions(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    inner: State,
) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let Some(payment_intent) = query.payment_intent.as_deref() else {
        return error_response(&StripeError::invalid(
            "parameter_missing",
            "this sandbox lists sessions by payment_intent only",
            Some("payment_intent"),
        ));
    };
    let mut data = inner.ledger().sessions_by_payment_intent(payment_intent);
    data.truncate(query.limit.unwrap_or(10).clamp(1, 100));
    json_response(
        200,
        &json!({"object": "list", "data": data, "has_more": false, "url": "/v1/checkout/sessions"}),
    )
}

async fn expire_session(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    inner: State,
) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let params = Params::parse(&body).unwrap_or_default();
    let response = idempotent(&req, &inner, &params, || {
        inner.ledger().expire_session(&path, inner.now())
    });
    inner.new_events.notify_one();
    response
}

async fn create_refund(req: HttpRequest, body: web::Bytes, inner: State) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(error) => return error_response(&error),
    };
    let response = idempotent(&req, &inner, &params, || {
        inner.ledger().create_refund(&params, inner.now())
    });
    inner.new_events.notify_one();
    response
}

/// What `GET /v1/events` was asked for, as Stripe reads it.
#[derive(Debug, Default)]
struct EventsQuery {
    limit: Option<usize>,
    starting_after: Option<String>,
    /// `types[]=...` (or `types[0]=...`), repeated: exact event types.
    types: Vec<String>,
    /// `type=...`: one type, or a group with `*` as a wildcard (`checkout.session.*`).
    type_pattern: Option<String>,
    /// `created[gt|gte|lt|lte]=<unix>`, or `created=<unix>` for one second.
    created_gt: Option<i64>,
    created_gte: Option<i64>,
    created_lt: Option<i64>,
    created_lte: Option<i64>,
}

/// Stripe accepts at most this many `types[]`.
const MAX_EVENT_TYPES: usize = 20;

impl EventsQuery {
    /// Reads the query string as Stripe does: repeated `types[]`, bracketed `created` bounds,
    /// and a 400 for a parameter it does not know (rather than silently listing everything).
    fn parse(query: &str) -> Result<Self, StripeError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|err| {
            StripeError::invalid(
                "parameter_invalid_string",
                format!("malformed query string: {err}"),
                None,
            )
        })?;
        let integer = |key: &str, value: &str| {
            value.parse::<i64>().map_err(|_| {
                StripeError::invalid(
                    "parameter_invalid_integer",
                    format!("Invalid integer: {value}"),
                    Some(key),
                )
            })
        };
        let mut parsed = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    let limit = integer(&key, &value)?;
                    parsed.limit = Some(usize::try_from(limit.clamp(1, 100)).unwrap_or(1));
                }
                "starting_after" => parsed.starting_after = Some(value),
                "type" => parsed.type_pattern = Some(value),
                "created" => {
                    let at = integer(&key, &value)?;
                    (parsed.created_gte, parsed.created_lte) = (Some(at), Some(at));
                }
                "created[gt]" => parsed.created_gt = Some(integer(&key, &value)?),
                "created[gte]" => parsed.created_gte = Some(integer(&key, &value)?),
                "created[lt]" => parsed.created_lt = Some(integer(&key, &value)?),
                "created[lte]" => parsed.created_lte = Some(integer(&key, &value)?),
                _ if is_types_item(&key) => {
                    if !value.is_empty() {
                        parsed.types.push(value);
                    }
                }
                _ => {
                    return Err(StripeError::invalid(
                        "parameter_unknown",
                        format!("Received unknown parameter: {key}"),
                        Some(&key),
                    ))
                }
            }
        }
        if parsed.type_pattern.is_some() && !parsed.types.is_empty() {
            return Err(StripeError::invalid(
                "parameter_invalid_string",
                "You may pass either type or types, but not both.",
                Some("types"),
            ));
        }
        if parsed.types.len() > MAX_EVENT_TYPES {
            return Err(StripeError::invalid(
                "parameter_invalid_array",
                format!("types may hold at most {MAX_EVENT_TYPES} event types."),
                Some("types"),
            ));
        }
        Ok(parsed)
    }

    /// Whether the filters (not the cursor) keep `event`.
    fn matches(&self, event: &Value) -> bool {
        let event_type = event["type"].as_str().unwrap_or_default();
        let created = event["created"].as_i64().unwrap_or(0);
        let type_ok = match &self.type_pattern {
            Some(pattern) => type_matches(pattern, event_type),
            None => self.types.is_empty() || self.types.iter().any(|t| t == event_type),
        };
        type_ok
            && self.created_gt.is_none_or(|gt| created > gt)
            && self.created_gte.is_none_or(|gte| created >= gte)
            && self.created_lt.is_none_or(|lt| created < lt)
            && self.created_lte.is_none_or(|lte| created <= lte)
    }
}

/// `types[]` or an indexed `types[N]`: both are how form encoders write an array.
fn is_types_item(key: &str) -> bool {
    key.strip_prefix("types[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit()))
}

/// Stripe's `type` filter: `*` stands for any run of characters (`checkout.session.*`).
fn type_matches(pattern: &str, event_type: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = event_type.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `GET /v1/events`: newest first, cursor pagination with `starting_after`, filtered by
/// `types[]` or `type` and by `created` bounds.
async fn list_events(req: HttpRequest, inner: State) -> HttpResponse {
    if let Err(error) = admit(&req, &inner) {
        return error_response(&error);
    }
    let query = match EventsQuery::parse(req.query_string()) {
        Ok(query) => query,
        Err(error) => return error_response(&error),
    };
    let limit = query.limit.unwrap_or(10);
    let events: Vec<Value> = inner.ledger().events().iter().rev().cloned().collect();
    // The cursor is a place in the whole history, whatever the filters keep.
    let start = match &query.starting_after {
        Some(cursor) => match events.iter().position(|e| e["id"] == cursor.as_str()) {
            Some(index) => index + 1,
            None => return error_response(&StripeError::not_found("event", cursor)),
        },
        None => 0,
    };
    let mut matching = events[start..].iter().filter(|e| query.matches(e));
    let data: Vec<Value> = matching.by_ref().take(limit).cloned().collect();
    let has_more = matching.next().is_some();
    json_response(
        200,
        &json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/events"}),
    )
}
