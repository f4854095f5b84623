//! A stateful wiremock stand-in for the slice of Stripe's REST API the adapter calls, plus
//! Stripe-shaped webhook events signed like Stripe signs them.

use lms_domain::PaymentFact;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const SECRET_KEY: &str = "sk_test_api_suite";
pub const WEBHOOK_SECRET: &str = "whsec_api_suite";

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Value>,
    /// Idempotency key -> session id.
    keys: HashMap<String, String>,
    failures: VecDeque<u16>,
    /// Every API call received, in order.
    calls: usize,
    refunds: Vec<i64>,
    refund_status: Option<&'static str>,
}

/// Handle on the stand-in: script failures, pay sessions, inspect calls.
#[derive(Clone)]
pub struct StripeStandIn {
    pub server: Arc<MockServer>,
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Copy)]
enum Endpoint {
    CreateSession,
    RetrieveSession,
    ListSessions,
    Refund,
}

struct Responder {
    endpoint: Endpoint,
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn form(request: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn stripe_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"type": kind, "message": message}}))
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.state);
        state.calls += 1;
        let authorised = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
        if !authorised {
            return stripe_error(401, "invalid_request_error", "Invalid API Key provided");
        }
        if let Some(status) = state.failures.pop_front() {
            return stripe_error(status, "api_error", "scripted failure");
        }
        match self.endpoint {
            Endpoint::CreateSession => {
                let key = request
                    .headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if let Some(id) = state.keys.get(&key) {
                    return ResponseTemplate::new(200).set_body_json(state.sessions[id].clone());
                }
                let form = form(request);
                let id = format!("cs_test_{}", uuid::Uuid::new_v4().simple());
                let metadata: Map<String, Value> = form
                    .iter()
                    .filter_map(|(k, v)| {
                        let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                        Some((key.to_owned(), json!(v)))
                    })
                    .collect();
                let session = json!({
                    "id": id,
                    "object": "checkout.session",
                    "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                    "status": "open",
                    "payment_status": "unpaid",
                    "amount_total": form["line_items[0][price_data][unit_amount]"].parse::<i64>().unwrap(),
                    "currency": form["line_items[0][price_data][currency]"],
                    "expires_at": form["expires_at"].parse::<i64>().unwrap(),
                    "metadata": metadata,
                    "client_reference_id": form["client_reference_id"],
                    "payment_intent": null,
                    "livemode": false,
                });
                state.keys.insert(key, id.clone());
                state.sessions.insert(id, session.clone());
                ResponseTemplate::new(200).set_body_json(session)
            }
            Endpoint::RetrieveSession => {
                let id = request.url.path().rsplit('/').next().unwrap_or_default();
                match state.sessions.get(id) {
                    Some(session) => ResponseTemplate::new(200).set_body_json(session.clone()),
                    None => stripe_error(404, "invalid_request_error", "No such checkout.session"),
                }
            }
            Endpoint::ListSessions => {
                let intent = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "payment_intent")
                    .map(|(_, v)| v.into_owned());
                let data: Vec<Value> = state
                    .sessions
                    .values()
                    .filter(|s| {
                        intent.is_some() && s["payment_intent"].as_str() == intent.as_deref()
                    })
                    .cloned()
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"object": "list", "data": data, "has_more": false}))
            }
            Endpoint::Refund => {
                let form = form(request);
                let amount: i64 = form
                    .get("amount")
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_default();
                state.refunds.push(amount);
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": format!("re_{}", uuid::Uuid::new_v4().simple()),
                    "object": "refund",
                    "amount": amount,
                    "currency": "usd",
                    "status": state.refund_status.unwrap_or("succeeded"),
                    "payment_intent": form.get("payment_intent"),
                }))
            }
        }
    }
}

impl StripeStandIn {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State::default()));
        let responder = |endpoint| Responder {
            endpoint,
            state: Arc::clone(&state),
        };
        Mock::given(method("POST"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(responder(Endpoint::CreateSession))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/checkout/sessions"))
            .respond_with(responder(Endpoint::ListSessions))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/checkout/sessions/[^/]+$"))
            .respond_with(responder(Endpoint::RetrieveSession))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/refunds"))
            .respond_with(responder(Endpoint::Refund))
            .mount(&server)
            .await;
        Self {
            server: Arc::new(server),
            state,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The next `count` API calls fail with `status`.
    pub fn fail_next(&self, count: usize, status: u16) {
        lock(&self.state)
            .failures
            .extend(std::iter::repeat_n(status, count));
    }

    pub fn call_count(&self) -> usize {
        lock(&self.state).calls
    }

    pub fn refunds(&self) -> Vec<i64> {
        lock(&self.state).refunds.clone()
    }

    pub fn set_refund_pending(&self) {
        lock(&self.state).refund_status = Some("pending");
    }

    /// The customer pays on the hosted page (no webhook yet).
    pub fn pay_session(&self, session_id: &str, payment_intent: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(session) = state.sessions.get_mut(session_id) else {
            return false;
        };
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["payment_intent"] = json!(payment_intent);
        session["url"] = Value::Null;
        true
    }
}

/// A Stripe event carrying `facts` about one checkout, and its `Stripe-Signature` header.
pub fn signed_event(
    event_id: &str,
    event_type: &str,
    checkout: &crate::api::helpers::Checkout,
    facts: &[PaymentFact],
    now: i64,
) -> (Vec<u8>, String) {
    let payment_intent = format!("pi_{}", checkout.purchase_id.replace('-', ""));
    let currency = checkout.currency.to_ascii_lowercase();
    let session = |status: &str, payment_status: &str, amount: i64| {
        json!({
            "id": checkout.session_id,
            "object": "checkout.session",
            "status": status,
            "payment_status": payment_status,
            "amount_total": amount,
            "currency": currency,
            "client_reference_id": checkout.purchase_id,
            "metadata": {"purchase_id": checkout.purchase_id},
            "payment_intent": payment_intent,
            "expires_at": now + 3600,
            "url": null,
        })
    };
    let object = match facts {
        // `charge.*` events carry the charge, linked by the payment intent's metadata.
        [PaymentFact::PaymentSucceeded { amount }] if event_type.starts_with("charge.") => json!({
            "id": format!("ch_{}", checkout.purchase_id.replace('-', "")),
            "object": "charge",
            "amount": amount.minor(),
            "amount_captured": amount.minor(),
            "amount_refunded": 0,
            "captured": true,
            "paid": true,
            "status": "succeeded",
            "refunded": false,
            "currency": currency,
            "payment_intent": payment_intent,
            "metadata": {"purchase_id": checkout.purchase_id},
        }),
        [PaymentFact::PaymentSucceeded { amount }] => session("complete", "paid", amount.minor()),
        [PaymentFact::PaymentProcessing] => session("complete", "unpaid", checkout.amount_cents),
        [PaymentFact::CheckoutExpired] => {
            let mut expired = session("expired", "unpaid", checkout.amount_cents);
            expired["payment_intent"] = Value::Null;
            expired
        }
        [PaymentFact::Refunded { total }] => json!({
            "id": format!("ch_{}", checkout.purchase_id.replace('-', "")),
            "object": "charge",
            "amount": checkout.amount_cents,
            "amount_captured": checkout.amount_cents,
            "amount_refunded": total.minor(),
            "refunded": total.minor() >= checkout.amount_cents,
            "currency": currency,
            "payment_intent": payment_intent,
            "metadata": {"purchase_id": checkout.purchase_id},
        }),
        [] => json!({"id": "cus_123", "object": "customer"}),
        other => panic!("no Stripe event shape for {other:?}"),
    };
    let event = json!({
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": now,
        "livemode": false,
        "api_version": "2024-06-20",
        "data": {"object": object},
    });
    let body = serde_json::to_vec(&event).unwrap();
    let signature = lms_stripe_http::compute_signature(WEBHOOK_SECRET.as_bytes(), now, &body);
    (body, format!("t={now},v1={signature}"))
}
