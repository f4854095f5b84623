//! The [`PaymentGateway`] adapter for Stripe over HTTP.

use crate::config::{AdaptivePricing, ConfigError, StripeConfig};
use crate::events::{parse_event, relevant_event_types};
use crate::objects::{
    StripeCustomer, StripeErrorBody, StripeEventList, StripeList, StripePromotionCode,
    StripeRefund, StripeSession,
};
use crate::signature::verify_signature;
use async_trait::async_trait;
use lms_domain::{Currency, Money};
use lms_ports::{
    CheckoutRequest, Context, CustomerRequest, EventPage, EventQuery, GatewayError, GatewaySession,
    PaymentGateway, RefundOutcome, RefundRequest, RefundStatus, WebhookEvent, WebhookRejection,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

/// Refund reasons Stripe understands; any other reason goes to `metadata[reason]`.
const STRIPE_REFUND_REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// The page size `GET /v1/events` accepts: 1 to 100.
const MAX_EVENTS_PAGE: u32 = 100;

/// The Stripe adapter. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct StripeGateway {
    config: StripeConfig,
    http: reqwest::Client,
}

impl fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeGateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why building the adapter failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// How one attempt ended, before deciding whether to retry.
enum Attempt {
    Success(Vec<u8>),
    Status {
        status: StatusCode,
        should_retry: Option<bool>,
        /// How long the server asked us to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        body: Vec<u8>,
    },
    Transport {
        timeout: bool,
        /// Without its URL: a path may carry ids, and the error reaches the log.
        error: reqwest::Error,
    },
}

impl StripeGateway {
    /// # Errors
    /// [`BuildError`] when the configuration is invalid or the TLS client cannot be built.
    pub fn new(config: StripeConfig) -> Result<Self, BuildError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("lms-stripe-http/", env!("CARGO_PKG_VERSION")))
            // Stripe never redirects; following one could carry the key somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(BuildError::Http)?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    fn url(&self, segments: &[&str]) -> Result<Url, GatewayError> {
        let mut url = self.config.api_base.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                GatewayError::misconfigured("the Stripe API base cannot hold a path")
            })?;
            path.pop_if_empty();
            // Each segment is percent-encoded: an id can never escape its path position.
            path.extend(segments);
        }
        Ok(url)
    }

    fn headers(&self, idempotency_key: Option<&str>) -> Result<HeaderMap, GatewayError> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::try_from(format!("Bearer {}", self.config.secret_key.expose()))
            .map_err(|_| {
                GatewayError::misconfigured("the Stripe secret key is not a valid header value")
            })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            "Stripe-Version",
            HeaderValue::try_from(self.config.api_version.as_str()).map_err(|error| {
                GatewayError::misconfigured(Context::new("invalid Stripe-Version", error))
            })?,
        );
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 255 {
                return Err(GatewayError::unexpected(
                    "idempotency key must be 1 to 255 characters",
                ));
            }
            headers.insert(
                "Idempotency-Key",
                HeaderValue::try_from(key).map_err(|error| {
                    GatewayError::unexpected(Context::new(
                        "idempotency key is not a valid header value",
                        error,
                    ))
                })?,
            );
        }
        Ok(headers)
    }

    /// Sends one logical request, retrying per the policy with the SAME idempotency key, and
    /// decodes the 2xx body.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        form: Option<&[(String, String)]>,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let headers = self.headers(idempotency_key)?;
        let body = form
            .map(serde_urlencoded::to_string)
            .transpose()
            .map_err(|error| {
                GatewayError::unexpected(Context::new("cannot encode the form", error))
            })?;
        let policy = self.config.retry;
        let started = Instant::now();
        let path = url.path().to_owned();
        let operation = operation(&method, &path);
        let mut attempt_number = 1_u32;
        loop {
            let remaining = policy.total_budget.saturating_sub(started.elapsed());
            let attempt = self
                .attempt(
                    method.clone(),
                    url.clone(),
                    headers.clone(),
                    body.clone(),
                    remaining,
                )
                .await;
            metrics::counter!(
                "lms_stripe_requests_total",
                "operation" => operation,
                "status" => attempt.status_label(),
            )
            .increment(1);
            let retryable = match &attempt {
                Attempt::Success(bytes) => {
                    record_call(operation, "ok", started.elapsed());
                    return self.decode(bytes);
                }
                Attempt::Status {
                    status,
                    should_retry,
                    ..
                } => is_retryable(*status, *should_retry),
                Attempt::Transport { .. } => true,
            };
            if retryable && attempt_number < policy.max_attempts {
                let backoff = policy.backoff(attempt_number, random_u64());
                // A server that says how long to wait (429/503 `Retry-After`) is obeyed when
                // that is longer than our own backoff; if it does not fit in the budget, the
                // request fails now rather than retrying too early.
                let wait = attempt
                    .retry_after()
                    .map_or(backoff, |asked| asked.max(backoff));
                if started.elapsed() + wait < policy.total_budget {
                    tracing::warn!(
                        %method,
                        path,
                        attempt = attempt_number,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        outcome = %attempt.summary(),
                        "retrying Stripe request"
                    );
                    metrics::counter!("lms_stripe_retries_total", "operation" => operation)
                        .increment(1);
                    tokio::time::sleep(wait).await;
                    attempt_number += 1;
                    continue;
                }
            }
            // Stripe's typed error (type, code, decline_code, param) goes to the log in full;
            // the port's error keeps the code and the message.
            let detail = match &attempt {
                Attempt::Status { status, body, .. } => Some((
                    status.as_u16(),
                    serde_json::from_slice::<StripeErrorBody>(body)
                        .unwrap_or_default()
                        .error,
                )),
                Attempt::Success(_) | Attempt::Transport { .. } => None,
            };
            let error = self.final_error(attempt);
            record_call(operation, "error", started.elapsed());
            let status = detail.as_ref().map(|(status, _)| *status);
            let detail = detail.map(|(_, detail)| detail).unwrap_or_default();
            tracing::warn!(
                %method,
                path,
                attempts = attempt_number,
                status,
                stripe_error_type = detail.kind.as_deref(),
                stripe_error_code = detail.code.as_deref(),
                stripe_decline_code = detail.decline_code.as_deref(),
                stripe_error_param = detail.param.as_deref(),
                error = %error,
                "Stripe request failed"
            );
            return Err(error);
        }
    }

    /// A form POST under `segments`, with its idempotency key (kept across retries).
    async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, GatewayError> {
        let url = self.url(segments)?;
        self.call(Method::POST, url, Some(form), Some(idempotency_key))
            .await
    }

    async fn attempt(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<String>,
        remaining: Duration,
    ) -> Attempt {
        let timeout = self
            .config
            .request_timeout
            .min(remaining.max(Duration::from_millis(1)));
        let mut request = self
            .http
            .request(method, url)
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return Attempt::Transport {
                    timeout: error.is_timeout(),
                    error: error.without_url(),
                }
            }
        };
        let status = response.status();
        let should_retry = response
            .headers()
            .get("Stripe-Should-Retry")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| match value.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            });
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, std::time::SystemTime::now()));
        match response.bytes().await {
            Ok(body) if status.is_success() => Attempt::Success(body.to_vec()),
            Ok(body) => Attempt::Status {
                status,
                should_retry,
                retry_after,
                body: body.to_vec(),
            },
            Err(error) => Attempt::Transport {
                timeout: error.is_timeout(),
                error: error.without_url(),
            },
        }
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, GatewayError> {
        serde_json::from_slice(bytes).map_err(|error| {
            GatewayError::unexpected(Context::new("unexpected Stripe response", error))
        })
    }

    /// Maps the last attempt to the port's error, never leaking the secret key.
    fn final_error(&self, attempt: Attempt) -> GatewayError {
        match attempt {
            Attempt::Success(_) => GatewayError::unexpected("success treated as failure"),
            Attempt::Transport {
                timeout: true,
                error,
            } => GatewayError::unavailable(Context::new("request to Stripe timed out", error)),
            Attempt::Transport {
                timeout: false,
                error,
            } => GatewayError::unavailable(Context::new("cannot reach Stripe", error)),
            Attempt::Status { status, body, .. } => {
                map_status(status, &body, self.config.secret_key.expose())
            }
        }
    }

    fn session(&self, session: StripeSession) -> Result<GatewaySession, GatewayError> {
        session
            .into_gateway_session()
            .map_err(GatewayError::unexpected)
    }

    /// Whether events must say `livemode: true`: the key's mode decides.
    fn expects_livemode(&self) -> bool {
        self.config.secret_key.mode().is_live()
    }

    /// The `GET /v1/events` URL for one page of `query`, asking only for the event types this
    /// adapter acts on.
    fn events_url(&self, query: &EventQuery) -> Result<Url, GatewayError> {
        let mut url = self.url(&["v1", "events"])?;
        {
            let mut pairs = url.query_pairs_mut();
            // Stripe's `created` is whole seconds: flooring keeps an event created in the
            // same second as `created_from` (a duplicate costs nothing, a gap would).
            pairs.append_pair(
                "created[gte]",
                &query.created_from.unix_timestamp().to_string(),
            );
            // Outside 1..=100 Stripe refuses the whole request; the page says whether more remain.
            pairs.append_pair("limit", &query.limit.clamp(1, MAX_EVENTS_PAGE).to_string());
            if let Some(cursor) = query
                .starting_after
                .as_deref()
                .filter(|cursor| !cursor.is_empty())
            {
                pairs.append_pair("starting_after", cursor);
            }
            for event_type in relevant_event_types() {
                pairs.append_pair("types[]", event_type);
            }
        }
        Ok(url)
    }

    /// The form Stripe receives for a checkout session (exposed for inspection in tests): the
    /// purchase, and the checkout options of the configuration.
    pub fn checkout_form(&self, request: &CheckoutRequest) -> Vec<(String, String)> {
        let purchase_id = request.purchase_id.to_string();
        let options = self.config.checkout;
        let mut form = vec![
            ("mode", "payment".to_owned()),
            (
                "line_items[0][price_data][currency]",
                request.amount.currency().code().to_ascii_lowercase(),
            ),
            (
                "line_items[0][price_data][unit_amount]",
                request.amount.minor().to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]",
                request.course_title.clone(),
            ),
        ];
        if let Some(behavior) = options.automatic_tax {
            form.push((
                "line_items[0][price_data][tax_behavior]",
                behavior.as_str().to_owned(),
            ));
        }
        form.extend([
            ("line_items[0][quantity]", "1".to_owned()),
            ("success_url", self.config.success_url.clone()),
            ("cancel_url", self.config.cancel_url.clone()),
            ("client_reference_id", purchase_id.clone()),
            ("metadata[purchase_id]", purchase_id.clone()),
            ("metadata[course_id]", request.course_id.to_string()),
            ("metadata[user_id]", request.user_id.to_string()),
            ("payment_intent_data[metadata][purchase_id]", purchase_id),
            (
                "expires_at",
                request.expires_at.unix_timestamp().to_string(),
            ),
        ]);
        let customer = request
            .customer_id
            .as_deref()
            .map(str::trim)
            .filter(|customer| !customer.is_empty());
        if let Some(customer) = customer {
            // The customer's own e-mail receives the receipt; Stripe refuses both at once.
            form.push(("customer", customer.to_owned()));
            if options.automatic_tax.is_some() {
                // Tax needs the customer's address: Stripe refuses a customer without one
                // unless Checkout may save the address it collects.
                form.push(("customer_update[address]", "auto".to_owned()));
            }
        } else if let Some(email) = request
            .customer_email
            .as_deref()
            .filter(|email| !email.trim().is_empty())
        {
            form.push(("customer_email", email.trim().to_owned()));
        }
        if options.allow_promotion_codes {
            form.push(("allow_promotion_codes", "true".to_owned()));
        }
        if options.automatic_tax.is_some() {
            form.push(("automatic_tax[enabled]", "true".to_owned()));
        }
        if options.adaptive_pricing == AdaptivePricing::Off {
            form.push(("adaptive_pricing[enabled]", "false".to_owned()));
        }
        form.into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect()
    }

    /// The form Stripe receives for a customer (exposed for inspection in tests).
    pub fn customer_form(request: &CustomerRequest) -> Vec<(String, String)> {
        let mut form = vec![("email".to_owned(), request.email.trim().to_owned())];
        if !request.name.trim().is_empty() {
            form.push(("name".to_owned(), request.name.trim().to_owned()));
        }
        form.push(("metadata[user_id]".to_owned(), request.user_id.to_string()));
        form
    }

    /// The form Stripe receives for a refund (exposed for inspection in tests).
    pub fn refund_form(request: &RefundRequest) -> Vec<(String, String)> {
        let mut form = vec![
            (
                "payment_intent".to_owned(),
                request.payment_intent_id.clone(),
            ),
            ("amount".to_owned(), request.amount.minor().to_string()),
        ];
        if let Some(reason) = request
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
        {
            if STRIPE_REFUND_REASONS.contains(&reason) {
                form.push(("reason".to_owned(), reason.to_owned()));
            } else {
                // Stripe caps metadata values at 500 characters.
                let kept: String = reason.chars().take(500).collect();
                form.push(("metadata[reason]".to_owned(), kept));
            }
        }
        form.push((
            "metadata[purchase_id]".to_owned(),
            request.purchase_id.to_string(),
        ));
        form
    }
}

/// The `operation` label of the Stripe metrics, from the request's shape: never the path
/// itself, which carries ids.
fn operation(method: &Method, path: &str) -> &'static str {
    let resource = path.find("/v1/").map_or(path, |at| &path[at + 4..]);
    let segments: Vec<&str> = resource.split('/').filter(|s| !s.is_empty()).collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["checkout", "sessions"]) => "create_checkout_session",
        ("GET", ["checkout", "sessions"]) => "list_checkout_sessions",
        ("GET", ["checkout", "sessions", _]) => "retrieve_checkout_session",
        ("POST", ["checkout", "sessions", _, "expire"]) => "expire_checkout_session",
        ("POST", ["refunds"]) => "create_refund",
        ("POST", ["customers"]) => "create_customer",
        ("GET", ["promotion_codes", _]) => "retrieve_promotion_code",
        ("GET", ["events"]) => "list_events",
        _ => "other",
    }
}

/// Observes one logical call (every attempt and wait included) in
/// `lms_stripe_call_duration_seconds`.
fn record_call(operation: &'static str, outcome: &'static str, elapsed: Duration) {
    metrics::histogram!(
        "lms_stripe_call_duration_seconds",
        "operation" => operation,
        "outcome" => outcome,
    )
    .record(elapsed.as_secs_f64());
}

/// Decides whether a failed status is worth another attempt with the same key.
/// 400/401/402/403/404 are never retried (the request would fail the same way). Otherwise
/// Stripe's `Stripe-Should-Retry` header decides when present; without it, 409 (idempotent
/// request in flight), 429 and 5xx are retried.
fn is_retryable(status: StatusCode, should_retry: Option<bool>) -> bool {
    if matches!(status.as_u16(), 400..=404) {
        return false;
    }
    should_retry.unwrap_or(matches!(status.as_u16(), 409 | 429) || status.is_server_error())
}

/// What Stripe answered to a request that failed: the cause of the port's error. Its message
/// is Stripe's, with the secret key removed.
#[derive(Debug, thiserror::Error)]
#[error("Stripe answered HTTP {status}: {message}")]
struct StripeAnswer {
    status: u16,
    message: String,
}

/// Maps a failed answer to the port's error. Stripe echoes a masked key in 401 messages (a
/// stand-in might echo it whole), so every text taken from the body loses `secret_key` first.
fn map_status(status: StatusCode, body: &[u8], secret_key: &str) -> GatewayError {
    let scrub = |text: String| {
        if !secret_key.is_empty() && text.contains(secret_key) {
            text.replace(secret_key, "[redacted]")
        } else {
            text
        }
    };
    let detail = serde_json::from_slice::<StripeErrorBody>(body)
        .unwrap_or_default()
        .error;
    let message = scrub(
        detail
            .message
            .clone()
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
    );
    let code = detail
        .code
        .clone()
        .or_else(|| detail.decline_code.clone())
        .or_else(|| detail.kind.clone())
        .map(scrub);
    let answer = || StripeAnswer {
        status: status.as_u16(),
        message: message.clone(),
    };
    match status.as_u16() {
        404 => GatewayError::NotFound,
        401 | 403 => {
            GatewayError::misconfigured(Context::new("Stripe refused our credentials", answer()))
        }
        429 => GatewayError::unavailable(Context::new("rate limited by Stripe", answer())),
        424 => GatewayError::unavailable(Context::new("Stripe dependency failed", answer())),
        300..=399 => GatewayError::unexpected(Context::new("unexpected redirect", answer())),
        500..=599 => GatewayError::unavailable(answer()),
        _ => GatewayError::Rejected { code, message },
    }
}

/// A transport error's description without the URL's query (which may carry ids) or headers.
fn describe(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body interrupted"
    } else {
        "request failed"
    }
}

/// Reads a `Retry-After` value: delta-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015
/// 07:28:00 GMT`, measured against `now`; a date in the past means no wait). Anything else is
/// ignored (`None`), leaving our own backoff in charge.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // An absurd number of seconds saturates; the retry budget then refuses to wait.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl Attempt {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Attempt::Status { retry_after, .. } => *retry_after,
            Attempt::Success(_) | Attempt::Transport { .. } => None,
        }
    }

    /// The `status` label of `lms_stripe_requests_total`: the HTTP status, or how the
    /// transport failed.
    fn status_label(&self) -> String {
        match self {
            Attempt::Success(_) => "200".to_owned(),
            Attempt::Status { status, .. } => status.as_u16().to_string(),
            Attempt::Transport { timeout: true, .. } => "timeout".to_owned(),
            Attempt::Transport { timeout: false, .. } => "transport_error".to_owned(),
        }
    }

    fn summary(&self) -> String {
        match self {
            Attempt::Success(_) => "success".to_owned(),
            Attempt::Status { status, .. } => format!("HTTP {}", status.as_u16()),
            Attempt::Transport { error, .. } => describe(error).to_owned(),
        }
    }
}

/// Jitter only needs to spread clients apart, not be unpredictable: the std hasher's random
/// keys (fresh per `RandomState`) mixed with the clock are enough, without a rand dependency.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    #[tracing::instrument(skip_all, fields(purchase_id = %request.purchase_id))]
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError> {
        if request.amount.is_zero() {
            return Err(GatewayError::Rejected {
                code: Some("amount_zero".to_owned()),
                message: "a free course does not go through checkout".to_owned(),
            });
        }
        let form = self.checkout_form(request);
        let session: StripeSession = self
            .post(
                &["v1", "checkout", "sessions"],
                &form,
                &request.idempotency_key,
            )
            .await?;
        self.session(session)
    }

    #[tracing::instrument(skip_all, fields(user_id = %request.user_id))]
    async fn create_customer(&self, request: &CustomerRequest) -> Result<String, GatewayError> {
        let form = Self::customer_form(request);
        let customer: StripeCustomer = self
            .post(&["v1", "customers"], &form, &request.idempotency_key)
            .await?;
        if customer.id.is_empty() {
            return Err(GatewayError::unexpected(
                "Stripe created a customer without an id",
            ));
        }
        Ok(customer.id)
    }

    #[tracing::instrument(skip(self))]
    async fn promotion_code_text(
        &self,
        promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        if promotion_code_id.is_empty() {
            return Ok(None);
        }
        let url = self.url(&["v1", "promotion_codes", promotion_code_id])?;
        match self
            .call::<StripePromotionCode>(Method::GET, url, None, None)
            .await
        {
            Ok(promotion_code) => Ok(Some(promotion_code.code)),
            Err(GatewayError::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    #[tracing::instrument(skip(self))]
    async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        if session_id.is_empty() {
            return Err(GatewayError::NotFound);
        }
        let url = self.url(&["v1", "checkout", "sessions", session_id])?;
        let session: StripeSession = self.call(Method::GET, url, None, None).await?;
        self.session(session)
    }

    #[tracing::instrument(skip(self))]
    async fn find_session_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError> {
        if payment_intent_id.is_empty() {
            return Ok(None);
        }
        let mut url = self.url(&["v1", "checkout", "sessions"])?;
        url.query_pairs_mut()
            .append_pair("payment_intent", payment_intent_id)
            .append_pair("limit", "1");
        let list: StripeList<StripeSession> = self.call(Method::GET, url, None, None).await?;
        list.data
            .into_iter()
            .next()
            .map(|session| self.session(session))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(purchase_id = %request.purchase_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let form = Self::refund_form(request);
        let refund: StripeRefund = self
            .post(&["v1", "refunds"], &form, &request.idempotency_key)
            .await?;
        let currency = Currency::parse(&refund.currency).map_err(|error| {
            GatewayError::unexpected(Context::new(
                format!("unsupported refund currency {:?}", refund.currency),
                error,
            ))
        })?;
        let amount = Money::new(refund.amount, currency).map_err(|error| {
            GatewayError::unexpected(Context::new("unusable refund amount", error))
        })?;
        let status = match refund.status.as_deref() {
            Some("succeeded") => RefundStatus::Succeeded,
            Some("failed") => RefundStatus::Failed,
            Some("canceled") => RefundStatus::Canceled,
            // `pending`, `requires_action`, or anything newer: not final yet.
            _ => RefundStatus::Pending,
        };
        Ok(RefundOutcome {
            refund_id: refund.id,
            status,
            amount,
        })
    }

    #[tracing::instrument(skip(self))]
    async fn expire_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        if session_id.is_empty() {
            return Err(GatewayError::NotFound);
        }
        // One key per call, kept across its retries: a retry whose first attempt did expire
        // the session gets that answer replayed, while a later call asks afresh and hears
        // that the session is no longer open (a key derived from the session id would replay
        // the first success to every later call for a day).
        let idempotency_key = format!("expire-{:016x}{:016x}", random_u64(), random_u64());
        let session: StripeSession = self
            .post(
                &["v1", "checkout", "sessions", session_id, "expire"],
                &[],
                &idempotency_key,
            )
            .await?;
        self.session(session)
    }

    #[tracing::instrument(skip_all, fields(starting_after = query.starting_after.as_deref()))]
    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        let url = self.events_url(query)?;
        let list: StripeEventList = self.call(Method::GET, url, None, None).await?;
        let expect_livemode = self.expects_livemode();
        let events = list
            .data
            .iter()
            .map(|event| {
                // The event's own text, as a webhook would have carried it: what the inbox
                // keeps and what `decode_stored_event` reads back.
                parse_event(event.get().as_bytes(), expect_livemode).map_err(|rejection| {
                    GatewayError::unexpected(Context::new(
                        "Stripe listed an event this adapter cannot decode",
                        rejection,
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventPage {
            events,
            has_more: list.has_more,
        })
    }

    fn decode_stored_event(&self, payload: &[u8]) -> Result<WebhookEvent, WebhookRejection> {
        // The signature was checked when the body arrived; its timestamp is long stale by now.
        parse_event(payload, self.expects_livemode())
    }

    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookEvent, WebhookRejection> {
        verify_signature(
            payload,
            signature_header,
            &self.config.webhook_secrets,
            self.config.webhook_tolerance,
            self.config.clock.now(),
        )?;
        parse_event(payload, self.expects_livemode())
    }
}

/// Maps a Stripe Checkout Session JSON object to the port's [`GatewaySession`].
///
/// # Errors
/// [`GatewayError::Unexpected`] when a needed field is missing or unusable (unknown status,
/// unsupported currency, no amount).
pub fn session_from_json(json: &[u8]) -> Result<GatewaySession, GatewayError> {
    let session: StripeSession = serde_json::from_slice(json)
        .map_err(|error| GatewayError::unexpected(Context::new("not a checkout session", error)))?;
    session
        .into_gateway_session()
        .map_err(GatewayError::unexpected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_without_ids() {
        let op = |method: Method, path: &str| operation(&method, path);
        assert_eq!(
            op(Method::POST, "/v1/checkout/sessions"),
            "create_checkout_session"
        );
        assert_eq!(
            op(Method::GET, "/v1/checkout/sessions"),
            "list_checkout_sessions"
        );
        assert_eq!(
            op(Method::GET, "/stripe/v1/checkout/sessions/cs_test_1"),
            "retrieve_checkout_session"
        );
        assert_eq!(
            op(Method::POST, "/v1/checkout/sessions/cs_test_1/expire"),
            "expire_checkout_session"
        );
        assert_eq!(op(Method::POST, "/v1/refunds"), "create_refund");
        assert_eq!(op(Method::GET, "/v1/events"), "list_events");
        assert_eq!(op(Method::POST, "/v1/customers"), "create_customer");
        assert_eq!(
            op(Method::GET, "/v1/promotion_codes/promo_1"),
            "retrieve_promotion_code"
        );
        assert_eq!(op(Method::DELETE, "/v1/customers/cus_1"), "other");
    }

    #[test]
    fn retry_rules() {
        let code = |n| StatusCode::from_u16(n).unwrap_or(StatusCode::IM_A_TEAPOT);
        for status in [400, 401, 402, 403, 404] {
            assert!(!is_retryable(code(status), None), "{status}");
            assert!(!is_retryable(code(status), Some(true)), "{status}");
        }
        for status in [409, 429, 500, 502, 503] {
            assert!(is_retryable(code(status), None), "{status}");
            assert!(!is_retryable(code(status), Some(false)), "{status}");
        }
        assert!(!is_retryable(code(422), None));
        assert!(is_retryable(code(424), Some(true)));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // 2015-10-21T07:28:00Z is 1_445_412_480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO),
            "a date already past means retry now"
        );
        for junk in ["", "-1", "1.5", "soon", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }

    const KEY: &str = "sk_test_secret_key_for_tests";

    #[test]
    fn stripe_answers_stay_the_source_with_the_key_scrubbed() {
        let body = format!(
            r#"{{"error":{{"type":"invalid_request_error","message":"Invalid API Key provided: {KEY}"}}}}"#
        );
        let error = map_status(StatusCode::UNAUTHORIZED, body.as_bytes(), KEY);
        assert!(matches!(error, GatewayError::Misconfigured(_)));
        let chain = lms_ports::chain_text(&error);
        assert_eq!(
            chain,
            "payment provider misconfigured: Stripe refused our credentials: Stripe answered HTTP 401: Invalid API Key provided: [redacted]"
        );
        let rejected = map_status(
            StatusCode::BAD_REQUEST,
            format!(r#"{{"error":{{"code":"{KEY}","message":"bad {KEY}"}}}}"#).as_bytes(),
            KEY,
        );
        assert!(!format!("{rejected:?}").contains(KEY), "{rejected:?}");
    }

    #[test]
    fn status_mapping_reads_stripe_error_bodies() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card was declined."}}"#;
        assert_eq!(
            map_status(StatusCode::PAYMENT_REQUIRED, body, KEY),
            GatewayError::Rejected {
                code: Some("card_declined".into()),
                message: "Your card was declined.".into()
            }
        );
        assert_eq!(
            map_status(StatusCode::NOT_FOUND, b"not json", KEY),
            GatewayError::NotFound
        );
        assert!(matches!(
            map_status(StatusCode::UNAUTHORIZED, b"", KEY),
            GatewayError::Misconfigured(_)
        ));
        assert!(matches!(
            map_status(StatusCode::BAD_GATEWAY, b"<html>", KEY),
            GatewayError::Unavailable(_)
        ));
        assert_eq!(
            map_status(StatusCode::CONFLICT, b"{}", KEY),
            GatewayError::Rejected {
                code: None,
                message: "HTTP 409".into()
            }
        );
    }
}
