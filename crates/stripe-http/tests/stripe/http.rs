//! The HTTP side against a real local server standing in for Stripe (wiremock).

use crate::support::*;
use lms_domain::{CourseId, UserId};
use lms_ports::{
    CheckoutRequest, CustomerRequest, EventQuery, GatewayError, PaymentGateway, RefundRequest,
    RefundStatus, SessionPaymentStatus, SessionStatus, WebhookEvent,
};
use lms_stripe_http::{
    AdaptivePricing, CheckoutOptions, RetryPolicy, StripeConfig, StripeGateway, TaxBehavior,
    DEFAULT_API_VERSION,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SESSIONS: &str = "/v1/checkout/sessions";

fn checkout_request() -> CheckoutRequest {
    CheckoutRequest {
        purchase_id: purchase_id(0xabc),
        course_id: CourseId::from_uuid(Uuid::from_u128(0xc1)),
        user_id: UserId::from_uuid(Uuid::from_u128(0xa1)),
        course_title: "Rust & Async: the {hard} parts".to_owned(),
        amount: usd(1999),
        customer_id: None,
        customer_email: Some("student+1@example.com".to_owned()),
        expires_at: OffsetDateTime::from_unix_timestamp(NOW + 3600).unwrap(),
        idempotency_key: "checkout-00000000-0000-0000-0000-000000000abc".to_owned(),
    }
}

fn refund_request(reason: Option<&str>) -> RefundRequest {
    RefundRequest {
        purchase_id: purchase_id(0xabc),
        payment_intent_id: "pi_1PgafyB7WZ01zgkWSjxsAJo3".to_owned(),
        amount: usd(500),
        reason: reason.map(str::to_owned),
        idempotency_key: "refund-abc-1".to_owned(),
    }
}

fn stripe_error(kind: &str, code: &str, message: &str) -> Value {
    json!({"error": {"type": kind, "code": code, "message": message, "param": null, "doc_url": "https://stripe.com/docs/error-codes"}})
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn form(request: &Request) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(&request.body).unwrap()
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

async fn respond_once(server: &MockServer, verb: &str, route: &str, template: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(template)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
}

async fn respond_always(server: &MockServer, verb: &str, route: &str, template: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(template)
        .with_priority(5)
        .mount(server)
        .await;
}

fn ok_session() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(our_session(purchase_id(0xabc), "open", "unpaid"))
}

#[tokio::test]
async fn checkout_sends_the_exact_form_and_headers() {
    let server = MockServer::start().await;
    respond_always(&server, "POST", SESSIONS, ok_session()).await;
    let session = gateway(&server.uri())
        .create_checkout_session(&checkout_request())
        .await
        .unwrap();

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        header(request, "authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    assert_eq!(header(request, "stripe-version"), Some(DEFAULT_API_VERSION));
    assert_eq!(
        header(request, "idempotency-key"),
        Some("checkout-00000000-0000-0000-0000-000000000abc")
    );
    assert_eq!(
        header(request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let pid = "00000000-0000-0000-0000-000000000abc";
    let expected: Vec<(String, String)> = [
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", "1999"),
        (
            "line_items[0][price_data][product_data][name]",
            "Rust & Async: the {hard} parts",
        ),
        ("line_items[0][quantity]", "1"),
        ("success_url", SUCCESS_URL),
        ("cancel_url", CANCEL_URL),
        ("client_reference_id", pid),
        ("metadata[purchase_id]", pid),
        (
            "metadata[course_id]",
            "00000000-0000-0000-0000-0000000000c1",
        ),
        ("metadata[user_id]", "00000000-0000-0000-0000-0000000000a1"),
        ("payment_intent_data[metadata][purchase_id]", pid),
        ("expires_at", "1700003600"),
        ("customer_email", "student+1@example.com"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    assert_eq!(form(request), expected);
    // Brackets and the placeholder braces are percent-encoded on the wire, `&` in the title too.
    let raw = String::from_utf8(request.body.clone()).unwrap();
    assert!(
        raw.contains("line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=1999"),
        "{raw}"
    );
    assert!(
        raw.contains("session_id%3D%7BCHECKOUT_SESSION_ID%7D"),
        "{raw}"
    );
    assert!(raw.contains("student%2B1%40example.com"), "{raw}");

    assert_eq!(
        session.id,
        "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    assert_eq!(session.status, SessionStatus::Open);
    assert_eq!(session.payment_status, SessionPaymentStatus::Unpaid);
    assert_eq!(session.amount_total, 1999);
    assert_eq!(session.currency.code(), "USD");
    assert_eq!(session.purchase_id, Some(purchase_id(0xabc)));
    assert_eq!(session.expires_at.unix_timestamp(), NOW + 3600);
    assert!(session
        .url
        .unwrap()
        .starts_with("https://checkout.stripe.com/"));
}

#[tokio::test]
async fn checkout_without_email_omits_it_and_free_courses_never_reach_stripe() {
    let server = MockServer::start().await;
    respond_always(&server, "POST", SESSIONS, ok_session()).await;
    let gateway = gateway(&server.uri());
    let mut request = checkout_request();
    request.customer_email = None;
    gateway.create_checkout_session(&request).await.unwrap();
    let sent = form(&requests(&server).await[0]);
    assert!(sent.iter().all(|(key, _)| key != "customer_email"));

    request.amount = usd(0);
    let error = gateway.create_checkout_session(&request).await.unwrap_err();
    assert!(matches!(error, GatewayError::Rejected { .. }), "{error:?}");
    assert_eq!(
        requests(&server).await.len(),
        1,
        "a free course must not reach Stripe"
    );
}

async fn assert_retried_then_succeeds(first: ResponseTemplate) {
    let server = MockServer::start().await;
    respond_once(&server, "POST", SESSIONS, first).await;
    respond_always(&server, "POST", SESSIONS, ok_session()).await;
    let session = gateway(&server.uri())
        .create_checkout_session(&checkout_request())
        .await
        .unwrap();
    assert_eq!(session.amount_total, 1999);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    let keys: Vec<_> = received
        .iter()
        .map(|request| header(request, "idempotency-key"))
        .collect();
    assert_eq!(
        keys,
        vec![Some("checkout-00000000-0000-0000-0000-000000000abc"); 2]
    );
    assert_eq!(
        form(&received[0]),
        form(&received[1]),
        "a retry resends the same parameters"
    );
}

#[tokio::test]
async fn a_500_then_200_succeeds_with_the_same_idempotency_key() {
    assert_retried_then_succeeds(ResponseTemplate::new(500).set_body_json(stripe_error(
        "api_error",
        "",
        "Something went wrong",
    )))
    .await;
}

#[tokio::test]
async fn a_429_is_retried() {
    assert_retried_then_succeeds(ResponseTemplate::new(429).set_body_json(stripe_error(
        "invalid_request_error",
        "rate_limit",
        "Too many",
    )))
    .await;
}

#[tokio::test]
async fn a_409_is_retried() {
    assert_retried_then_succeeds(ResponseTemplate::new(409).set_body_json(stripe_error(
        "idempotency_error",
        "idempotency_key_in_use",
        "There is currently another in-progress request using this Idempotent Key",
    )))
    .await;
}

#[tokio::test]
async fn should_retry_true_on_a_409_is_retried_too() {
    assert_retried_then_succeeds(
        ResponseTemplate::new(409).insert_header("Stripe-Should-Retry", "true"),
    )
    .await;
}

#[tokio::test]
async fn should_retry_false_on_a_500_stops_after_one_attempt() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "POST",
        SESSIONS,
        ResponseTemplate::new(500)
            .insert_header("Stripe-Should-Retry", "false")
            .set_body_json(stripe_error("api_error", "", "Do not retry this")),
    )
    .await;
    let error = gateway(&server.uri())
        .create_checkout_session(&checkout_request())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unavailable(cause) if lms_ports::chain_text(&**cause).contains("Do not retry this")),
        "{error:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn retry_after_in_seconds_on_a_429_is_waited_out() {
    // Our own backoff here is at most 20 ms: only the header can make the retry wait 1 s.
    let started = Instant::now();
    assert_retried_then_succeeds(
        ResponseTemplate::new(429)
            .insert_header("Retry-After", "1")
            .set_body_json(stripe_error(
                "invalid_request_error",
                "rate_limit",
                "Too many",
            )),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000),
        "retried after {waited:?}"
    );
    assert!(waited < Duration::from_secs(4), "took {waited:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_on_a_503_is_waited_out() {
    // HTTP dates have whole seconds: two seconds ahead is at least one second of waiting.
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let started = Instant::now();
    assert_retried_then_succeeds(
        ResponseTemplate::new(503).insert_header("Retry-After", httpdate::fmt_http_date(at)),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "took {waited:?}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_fails_at_once() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "POST",
        SESSIONS,
        ResponseTemplate::new(503)
            .insert_header("Retry-After", "3600")
            .set_body_json(stripe_error("api_error", "", "Come back in an hour")),
    )
    .await;
    let started = Instant::now();
    let error = gateway(&server.uri())
        .create_checkout_session(&checkout_request())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unavailable(cause) if lms_ports::chain_text(&**cause).contains("Come back in an hour")),
        "{error:?}"
    );
    assert_eq!(
        requests(&server).await.len(),
        1,
        "an hour does not fit in the 5 s budget: no early retry"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn persistent_5xx_and_429_give_up_after_max_attempts_as_unavailable() {
    for status in [503, 429] {
        let server = MockServer::start().await;
        respond_always(&server, "POST", SESSIONS, ResponseTemplate::new(status)).await;
        let error = gateway(&server.uri())
            .create_checkout_session(&checkout_request())
            .await
            .unwrap_err();
        assert!(
            matches!(error, GatewayError::Unavailable(_)),
            "{status}: {error:?}"
        );
        assert_eq!(
            requests(&server).await.len(),
            3,
            "{status}: max_attempts is 3"
        );
    }
}

#[tokio::test]
async fn a_409_that_persists_becomes_a_rejection_after_the_retries() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "POST",
        SESSIONS,
        ResponseTemplate::new(409).set_body_json(stripe_error(
            "idempotency_error",
            "idempotency_key_in_use",
            "Another request with this key is in progress",
        )),
    )
    .await;
    let error = gateway(&server.uri())
        .create_checkout_session(&checkout_request())
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GatewayError::Rejected {
            code: Some("idempotency_key_in_use".to_owned()),
            message: "Another request with this key is in progress".to_owned()
        }
    );
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_are_typed() {
    let cases = [
        (
            400,
            stripe_error(
                "idempotency_error",
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters",
            ),
            GatewayError::Rejected {
                code: Some("idempotency_error".to_owned()),
                message: "Keys for idempotent requests can only be used with the same parameters"
                    .to_owned(),
            },
        ),
        (
            400,
            stripe_error(
                "invalid_request_error",
                "amount_too_small",
                "Amount must be at least $0.50 usd",
            ),
            GatewayError::Rejected {
                code: Some("amount_too_small".to_owned()),
                message: "Amount must be at least $0.50 usd".to_owned(),
            },
        ),
        (
            402,
            stripe_error("card_error", "card_declined", "Your card was declined."),
            GatewayError::Rejected {
                code: Some("card_declined".to_owned()),
                message: "Your card was declined.".to_owned(),
            },
        ),
        (
            404,
            stripe_error(
                "invalid_request_error",
                "resource_missing",
                "No such checkout.session",
            ),
            GatewayError::NotFound,
        ),
    ];
    for (status, body, expected) in cases {
        let server = MockServer::start().await;
        // Even when Stripe says retry, a 4xx would fail the same way again.
        respond_always(
            &server,
            "POST",
            SESSIONS,
            ResponseTemplate::new(status)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(body),
        )
        .await;
        let error = gateway(&server.uri())
            .create_checkout_session(&checkout_request())
            .await
            .unwrap_err();
        assert_eq!(error, expected, "{status}");
        assert_eq!(
            requests(&server).await.len(),
            1,
            "{status} must not be retried"
        );
    }
}

#[tokio::test]
async fn credential_errors_are_misconfiguration_and_never_leak_the_key() {
    for status in [401, 403] {
        let server = MockServer::start().await;
        // A stand-in that echoes the whole key back: the adapter must still not leak it.
        let body = stripe_error(
            "invalid_request_error",
            "",
            &format!("Invalid API Key provided: {SECRET_KEY}"),
        );
        respond_always(
            &server,
            "GET",
            &format!("{SESSIONS}/cs_test_1"),
            ResponseTemplate::new(status).set_body_json(body),
        )
        .await;
        let gateway = gateway(&server.uri());
        let error = gateway
            .retrieve_checkout_session("cs_test_1")
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Misconfigured(_)), "{error:?}");
        assert_eq!(requests(&server).await.len(), 1);
        // The whole cause chain reaches the log: no level of it may carry the key.
        let chain = lms_ports::chain_text(&error);
        for text in [
            chain.clone(),
            format!("{error:?}"),
            format!("{gateway:?}"),
            format!("{:?}", gateway.config()),
        ] {
            assert!(!text.contains(SECRET_KEY), "secret leaked in {text}");
            assert!(!text.contains("TopSecretKey"), "secret leaked in {text}");
        }
        assert!(chain.contains("[redacted]"), "{chain}");
    }
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_unavailable() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "GET",
        &format!("{SESSIONS}/cs_slow"),
        ok_session().set_delay(Duration::from_secs(3)),
    )
    .await;
    let config = config(&server.uri())
        .with_timeouts(Duration::from_secs(1), Duration::from_millis(200))
        .with_retry(RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        });
    let gateway = StripeGateway::new(config).unwrap();
    let started = Instant::now();
    let error = gateway
        .retrieve_checkout_session("cs_slow")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unavailable(cause) if lms_ports::chain_text(&**cause).contains("timed out")),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(requests(&server).await.len(), 2, "a timeout is retried");
}

#[tokio::test]
async fn the_total_budget_bounds_the_retries() {
    let server = MockServer::start().await;
    respond_always(&server, "POST", SESSIONS, ResponseTemplate::new(500)).await;
    let policy = RetryPolicy {
        max_attempts: 50,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(40),
        total_budget: Duration::from_millis(150),
    };
    let gateway = StripeGateway::new(config(&server.uri()).with_retry(policy)).unwrap();
    let started = Instant::now();
    let error = gateway
        .create_checkout_session(&checkout_request())
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unavailable(_)));
    let attempts = requests(&server).await.len();
    // Waits are 20..=40 ms each, so at most 150 / 20 + 1 attempts fit in the budget.
    assert!((2..=8).contains(&attempts), "{attempts} attempts");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_failures_are_retried_then_unavailable() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = gateway(&format!("http://127.0.0.1:{port}"));
    let error = gateway
        .create_checkout_session(&checkout_request())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Unavailable(cause) if lms_ports::chain_text(&**cause).contains("cannot reach")),
        "{error:?}"
    );
    assert!(!format!("{error:?}").contains(SECRET_KEY));
}

#[tokio::test]
async fn retrieve_reads_the_session_and_maps_it() {
    let server = MockServer::start().await;
    let mut body = our_session(purchase_id(7), "complete", "paid");
    body["url"] = Value::Null;
    respond_always(
        &server,
        "GET",
        &format!("{SESSIONS}/cs_test_42"),
        ResponseTemplate::new(200).set_body_json(body),
    )
    .await;
    let session = gateway(&server.uri())
        .retrieve_checkout_session("cs_test_42")
        .await
        .unwrap();
    assert_eq!(session.status, SessionStatus::Complete);
    assert_eq!(session.payment_status, SessionPaymentStatus::Paid);
    assert_eq!(session.url, None);
    assert_eq!(
        session.payment_intent_id.as_deref(),
        Some("pi_1PgafyB7WZ01zgkWSjxsAJo3")
    );
    assert_eq!(
        session.metadata.get("course_id").map(String::as_str),
        Some("00000000-0000-0000-0000-0000000000c1")
    );
    assert_eq!(
        session.facts(),
        vec![
            lms_domain::PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: None
            },
            bill_of(usd(1999)),
        ]
    );
    let received = requests(&server).await;
    assert_eq!(
        header(&received[0], "authorization"),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );
    assert_eq!(
        header(&received[0], "idempotency-key"),
        None,
        "GETs carry no idempotency key"
    );
}

#[tokio::test]
async fn ids_cannot_escape_their_path_segment() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "GET",
        "/v1/refunds",
        ResponseTemplate::new(200).set_body_json(json!({})),
    )
    .await;
    let error = gateway(&server.uri())
        .retrieve_checkout_session("../../refunds")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GatewayError::NotFound,
        "wiremock answers 404 for the encoded path"
    );
    let received = requests(&server).await;
    assert_eq!(
        received[0].url.path(),
        "/v1/checkout/sessions/..%2F..%2Frefunds"
    );
}

#[tokio::test]
async fn find_by_payment_intent_queries_the_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SESSIONS))
        .and(query_param("payment_intent", "pi_found"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "url": SESSIONS,
            "data": [our_session(purchase_id(9), "complete", "paid")],
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(SESSIONS))
        .and(query_param("payment_intent", "pi_none"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "has_more": false, "data": []})),
        )
        .mount(&server)
        .await;
    let gateway = gateway(&server.uri());
    let found = gateway
        .find_session_by_payment_intent("pi_found")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.purchase_id, Some(purchase_id(9)));
    assert_eq!(
        gateway
            .find_session_by_payment_intent("pi_none")
            .await
            .unwrap(),
        None
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn refund_sends_a_mapped_reason_and_marks_it_as_ours() {
    let server = MockServer::start().await;
    let refund = with(
        fixture("refund"),
        json!({"amount": 500, "status": "pending", "payment_intent": "pi_1PgafyB7WZ01zgkWSjxsAJo3"}),
    );
    respond_always(
        &server,
        "POST",
        "/v1/refunds",
        ResponseTemplate::new(200).set_body_json(refund),
    )
    .await;
    let gateway = gateway(&server.uri());

    let outcome = gateway
        .refund(&refund_request(Some("requested_by_customer")))
        .await
        .unwrap();
    assert_eq!(outcome.refund_id, "re_1Pgc72B7WZ01zgkWqPvrRrPE");
    assert_eq!(outcome.status, RefundStatus::Pending);
    assert_eq!(outcome.amount, usd(500));
    gateway
        .refund(&refund_request(Some("course content was wrong")))
        .await
        .unwrap();
    gateway.refund(&refund_request(None)).await.unwrap();

    let received = requests(&server).await;
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    let pid = "00000000-0000-0000-0000-000000000abc";
    assert_eq!(
        form(&received[0]),
        pairs(&[
            ("payment_intent", "pi_1PgafyB7WZ01zgkWSjxsAJo3"),
            ("amount", "500"),
            ("reason", "requested_by_customer"),
            ("metadata[purchase_id]", pid),
        ])
    );
    assert_eq!(
        form(&received[1]),
        pairs(&[
            ("payment_intent", "pi_1PgafyB7WZ01zgkWSjxsAJo3"),
            ("amount", "500"),
            ("metadata[reason]", "course content was wrong"),
            ("metadata[purchase_id]", pid),
        ])
    );
    assert_eq!(
        form(&received[2]),
        pairs(&[
            ("payment_intent", "pi_1PgafyB7WZ01zgkWSjxsAJo3"),
            ("amount", "500"),
            ("metadata[purchase_id]", pid)
        ])
    );
    for request in &received {
        assert_eq!(header(request, "idempotency-key"), Some("refund-abc-1"));
        assert_eq!(
            header(request, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
}

#[tokio::test]
async fn refund_errors_are_typed() {
    let server = MockServer::start().await;
    respond_once(
        &server,
        "POST",
        "/v1/refunds",
        ResponseTemplate::new(400).set_body_json(stripe_error(
            "invalid_request_error",
            "charge_already_refunded",
            "Charge ch_1 has already been refunded.",
        )),
    )
    .await;
    respond_always(
        &server,
        "POST",
        "/v1/refunds",
        ResponseTemplate::new(404).set_body_json(stripe_error(
            "invalid_request_error",
            "resource_missing",
            "No such payment_intent",
        )),
    )
    .await;
    let gateway = gateway(&server.uri());
    assert_eq!(
        gateway.refund(&refund_request(None)).await.unwrap_err(),
        GatewayError::Rejected {
            code: Some("charge_already_refunded".to_owned()),
            message: "Charge ch_1 has already been refunded.".to_owned()
        }
    );
    assert_eq!(
        gateway.refund(&refund_request(None)).await.unwrap_err(),
        GatewayError::NotFound
    );
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_garbled_success_body_is_unexpected() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "GET",
        &format!("{SESSIONS}/cs_x"),
        ResponseTemplate::new(200).set_body_string("<html>"),
    )
    .await;
    let error = gateway(&server.uri())
        .retrieve_checkout_session("cs_x")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unexpected(_)), "{error:?}");
    assert_eq!(requests(&server).await.len(), 1, "a 2xx is never retried");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "GET",
        &format!("{SESSIONS}/cs_moved"),
        ResponseTemplate::new(302)
            .insert_header("Location", format!("{}/elsewhere", server.uri()).as_str()),
    )
    .await;
    respond_always(&server, "GET", "/elsewhere", ok_session()).await;
    let error = gateway(&server.uri())
        .retrieve_checkout_session("cs_moved")
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unexpected(_)), "{error:?}");
    let received = requests(&server).await;
    assert_eq!(received.len(), 1, "the Location was not requested");
}

#[test]
fn the_adapter_and_its_config_never_show_the_key() {
    let config =
        StripeConfig::new(SECRET_KEY, "whsec_one,whsec_two", SUCCESS_URL, CANCEL_URL).unwrap();
    let gateway = StripeGateway::new(config.clone()).unwrap();
    for text in [
        format!("{config:?}"),
        format!("{gateway:?}"),
        format!("{:#?}", gateway),
    ] {
        assert!(!text.contains("TopSecretKey"), "{text}");
        assert!(
            !text.contains("whsec_one") && !text.contains("whsec_two"),
            "{text}"
        );
    }
}

/// Captures what the adapter logs, in the current thread, while a future runs.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn failures_log_stripes_typed_error_and_never_the_key() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "POST",
        SESSIONS,
        ResponseTemplate::new(402).set_body_json(json!({"error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "param": "payment_method",
            "message": format!("Declined for key {SECRET_KEY}"),
        }})),
    )
    .await;
    respond_always(&server, "GET", SESSIONS, ResponseTemplate::new(500)).await;
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let gateway = gateway(&server.uri());
    let error = gateway
        .create_checkout_session(&checkout_request())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Rejected { code: Some(code), .. } if code == "card_declined"),
        "{error:?}"
    );
    gateway
        .find_session_by_payment_intent("pi_123")
        .await
        .unwrap_err();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("Stripe request failed"), "{text}");
    for field in [
        "status=402",
        "stripe_error_type=\"card_error\"",
        "stripe_error_code=\"card_declined\"",
        "stripe_decline_code=\"insufficient_funds\"",
        "stripe_error_param=\"payment_method\"",
        "status=500",
        "retrying Stripe request",
    ] {
        assert!(text.contains(field), "{field} missing from: {text}");
    }
    assert!(
        !text.contains(SECRET_KEY),
        "the key leaked into the log: {text}"
    );
    assert!(!format!("{error:?}").contains(SECRET_KEY));
}

// ---- Expiring a session ---------------------------------------------------------------------

const EXPIRE: &str = "/v1/checkout/sessions/cs_test_1/expire";

fn expired_session() -> ResponseTemplate {
    let mut body = our_session(purchase_id(0xabc), "expired", "unpaid");
    body["url"] = Value::Null;
    ResponseTemplate::new(200).set_body_json(body)
}

#[tokio::test]
async fn expire_posts_to_the_session_and_returns_it_closed() {
    let server = MockServer::start().await;
    respond_always(&server, "POST", EXPIRE, expired_session()).await;
    let gateway = gateway(&server.uri());
    let session = gateway.expire_checkout_session("cs_test_1").await.unwrap();
    assert_eq!(session.status, SessionStatus::Expired);
    assert_eq!(session.url, None);
    assert_eq!(session.purchase_id, Some(purchase_id(0xabc)));
    assert_eq!(
        session.facts(),
        vec![lms_domain::PaymentFact::CheckoutExpired]
    );
    gateway.expire_checkout_session("cs_test_1").await.unwrap();

    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    for request in &received {
        assert_eq!(request.method.as_str(), "POST");
        assert!(request.body.is_empty(), "expire takes no parameters");
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {SECRET_KEY}").as_str())
        );
        assert_eq!(header(request, "stripe-version"), Some(DEFAULT_API_VERSION));
        assert!(
            header(request, "idempotency-key").is_some_and(|key| key.starts_with("expire-")),
            "a POST always carries an idempotency key"
        );
    }
    assert_ne!(
        header(&received[0], "idempotency-key"),
        header(&received[1], "idempotency-key"),
        "two calls are two requests: the second must not replay the first's answer"
    );
}

#[tokio::test]
async fn expire_retries_a_5xx_with_the_same_idempotency_key() {
    let server = MockServer::start().await;
    respond_once(&server, "POST", EXPIRE, ResponseTemplate::new(503)).await;
    respond_always(&server, "POST", EXPIRE, expired_session()).await;
    let session = gateway(&server.uri())
        .expire_checkout_session("cs_test_1")
        .await
        .unwrap();
    assert_eq!(session.status, SessionStatus::Expired);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert!(header(&received[0], "idempotency-key").is_some());
    assert_eq!(
        header(&received[0], "idempotency-key"),
        header(&received[1], "idempotency-key")
    );
}

#[tokio::test]
async fn expiring_a_closed_session_is_rejected_and_an_unknown_one_is_not_found() {
    let server = MockServer::start().await;
    // What Stripe answers for a session that is no longer open.
    respond_always(
        &server,
        "POST",
        EXPIRE,
        ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of `complete`.",
            "request_log_url": "https://dashboard.stripe.com/test/logs/req_1",
            "type": "invalid_request_error",
        }})),
    )
    .await;
    respond_always(
        &server,
        "POST",
        "/v1/checkout/sessions/cs_unknown/expire",
        ResponseTemplate::new(404).set_body_json(stripe_error(
            "invalid_request_error",
            "resource_missing",
            "No such checkout.session: 'cs_unknown'",
        )),
    )
    .await;
    let gateway = gateway(&server.uri());
    let error = gateway
        .expire_checkout_session("cs_test_1")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, GatewayError::Rejected { message, .. } if message.contains("can be expired")),
        "{error:?}"
    );
    assert_eq!(
        gateway.expire_checkout_session("cs_unknown").await,
        Err(GatewayError::NotFound)
    );
    assert_eq!(requests(&server).await.len(), 2, "4xx are not retried");
    assert_eq!(
        gateway.expire_checkout_session("").await,
        Err(GatewayError::NotFound)
    );
    assert_eq!(requests(&server).await.len(), 2, "no id, no request");
}

// ---- Listing events -------------------------------------------------------------------------

const EVENTS: &str = "/v1/events";

/// An event's text as it sits in a pretty-printed list, one level deeper than on its own.
fn as_listed(event: &str) -> String {
    event.replace('\n', "\n    ")
}

/// A `GET /v1/events` answer holding these events, pretty-printed as Stripe does.
fn event_list(events: &[&str], has_more: bool) -> ResponseTemplate {
    let data = events
        .iter()
        .map(|event| as_listed(event))
        .collect::<Vec<_>>()
        .join(",\n    ");
    let body = format!(
        "{{\n  \"object\": \"list\",\n  \"data\": [\n    {data}\n  ],\n  \"has_more\": {has_more},\n  \"url\": \"/v1/events\"\n}}"
    );
    ResponseTemplate::new(200).set_body_raw(body, "application/json")
}

fn query(created_from: i64, starting_after: Option<&str>, limit: u32) -> EventQuery {
    EventQuery {
        created_from: OffsetDateTime::from_unix_timestamp(created_from).unwrap(),
        starting_after: starting_after.map(str::to_owned),
        limit,
    }
}

fn query_pairs(request: &Request) -> Vec<(String, String)> {
    request
        .url
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

#[tokio::test]
async fn list_events_asks_for_the_types_acted_on_since_a_time_and_keeps_each_events_text() {
    let server = MockServer::start().await;
    let paid = event(
        "evt_paid",
        "checkout.session.completed",
        our_session(purchase_id(1), "complete", "paid"),
        false,
    );
    // A type acted on, but about no purchase of ours: listed and ignored, like its webhook.
    let foreign = event("evt_foreign", "charge.succeeded", fixture("charge"), false);
    respond_always(&server, "GET", EVENTS, event_list(&[&paid, &foreign], true)).await;
    let page = gateway(&server.uri())
        .list_events(&query(NOW - 3600, None, 2))
        .await
        .unwrap();

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let expected: Vec<(String, String)> = [
        ("created[gte]", (NOW - 3600).to_string()),
        ("limit", "2".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .chain(
        lms_stripe_http::relevant_event_types()
            .map(|event_type| ("types[]".to_owned(), event_type.to_owned())),
    )
    .collect();
    assert_eq!(query_pairs(&received[0]), expected);
    assert_eq!(header(&received[0], "idempotency-key"), None);
    assert!(
        received[0]
            .url
            .query()
            .unwrap()
            .contains("types%5B%5D=checkout.session.completed&"),
        "{:?}",
        received[0].url.query()
    );

    assert!(page.has_more);
    assert_eq!(page.events.len(), 2);
    let WebhookEvent::Relevant(first) = &page.events[0] else {
        panic!("a paid session of ours is relevant: {:?}", page.events[0]);
    };
    assert_eq!(first.envelope.id, "evt_paid");
    assert_eq!(
        first.envelope.payload,
        as_listed(&paid),
        "the event's exact text, as Stripe sent it"
    );
    assert_eq!(first.locator.purchase_id, Some(purchase_id(1)));
    assert_eq!(
        first.facts,
        vec![
            lms_domain::PaymentFact::PaymentSucceeded {
                amount: usd(1999),
                at: Some(OffsetDateTime::from_unix_timestamp(NOW - 5).unwrap())
            },
            bill_of(usd(1999)),
        ]
    );
    let WebhookEvent::Ignored(second) = &page.events[1] else {
        panic!("nothing to correlate: {:?}", page.events[1]);
    };
    assert_eq!(second.id, "evt_foreign");
    assert_eq!(second.payload, as_listed(&foreign));
    // Each listed event decodes again, from its payload, to itself.
    for listed in &page.events {
        assert_eq!(
            gateway(&server.uri()).decode_stored_event(listed.envelope().payload.as_bytes()),
            Ok(listed.clone())
        );
    }
}

#[tokio::test]
async fn list_events_pages_with_the_cursor_until_nothing_remains() {
    let server = MockServer::start().await;
    let refunded = |id: &str| {
        event(
            id,
            "charge.refunded",
            with(
                fixture("charge"),
                json!({"payment_intent": "pi_1", "amount_refunded": 100, "currency": "usd"}),
            ),
            false,
        )
    };
    let (c, b, a) = (refunded("evt_c"), refunded("evt_b"), refunded("evt_a"));
    Mock::given(method("GET"))
        .and(path(EVENTS))
        .and(wiremock::matchers::query_param_is_missing("starting_after"))
        .respond_with(event_list(&[&c, &b], true))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(EVENTS))
        .and(query_param("starting_after", "evt_b"))
        .respond_with(event_list(&[&a], false))
        .mount(&server)
        .await;
    let gateway = gateway(&server.uri());
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = gateway
            .list_events(&query(NOW - 60, cursor.as_deref(), 2))
            .await
            .unwrap();
        ids.extend(page.events.iter().map(|event| event.envelope().id.clone()));
        if !page.has_more {
            break;
        }
        cursor = page.events.last().map(|event| event.envelope().id.clone());
    }
    assert_eq!(ids, ["evt_c", "evt_b", "evt_a"]);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert!(query_pairs(&received[1]).contains(&("starting_after".into(), "evt_b".into())));
    assert!(query_pairs(&received[1]).contains(&("created[gte]".into(), (NOW - 60).to_string())));
}

#[tokio::test]
async fn list_events_keeps_the_page_size_within_stripes_bounds() {
    let server = MockServer::start().await;
    respond_always(&server, "GET", EVENTS, event_list(&[], false)).await;
    let gateway = gateway(&server.uri());
    for (asked, sent) in [(0, "1"), (1, "1"), (100, "100"), (5000, "100")] {
        let page = gateway
            .list_events(&query(NOW, Some(""), asked))
            .await
            .unwrap();
        assert_eq!(page.events, vec![]);
        assert!(!page.has_more);
        let received = requests(&server).await;
        let pairs = query_pairs(received.last().unwrap());
        assert!(
            pairs.contains(&("limit".into(), sent.into())),
            "{asked}: {pairs:?}"
        );
        assert!(
            pairs.iter().all(|(key, _)| key != "starting_after"),
            "an empty cursor is no cursor"
        );
    }
}

#[tokio::test]
async fn list_events_retries_a_5xx_and_maps_errors_like_every_call() {
    let server = MockServer::start().await;
    respond_once(&server, "GET", EVENTS, ResponseTemplate::new(500)).await;
    respond_always(&server, "GET", EVENTS, event_list(&[], false)).await;
    let retrying = gateway(&server.uri());
    assert!(retrying.list_events(&query(NOW, None, 10)).await.is_ok());
    assert_eq!(requests(&server).await.len(), 2);

    let server = MockServer::start().await;
    respond_always(
        &server,
        "GET",
        EVENTS,
        ResponseTemplate::new(404).set_body_json(stripe_error(
            "invalid_request_error",
            "resource_missing",
            "No such event: 'evt_gone'",
        )),
    )
    .await;
    assert_eq!(
        gateway(&server.uri())
            .list_events(&query(NOW, Some("evt_gone"), 10))
            .await,
        Err(GatewayError::NotFound)
    );
}

#[tokio::test]
async fn a_listed_event_that_cannot_be_decoded_is_unexpected() {
    let mut unpaid_amount = our_session(purchase_id(1), "complete", "paid");
    unpaid_amount["amount_total"] = Value::Null;
    let good = event(
        "evt_good",
        "checkout.session.expired",
        our_session(purchase_id(1), "expired", "unpaid"),
        false,
    );
    let other_mode = event(
        "evt_live",
        "checkout.session.expired",
        our_session(purchase_id(1), "expired", "unpaid"),
        true,
    );
    let broken = event(
        "evt_broken",
        "checkout.session.completed",
        unpaid_amount,
        false,
    );
    let no_has_more = ResponseTemplate::new(200).set_body_raw(
        format!("{{\"object\":\"list\",\"data\":[{good}]}}"),
        "application/json",
    );
    for answer in [
        event_list(&[&good, &other_mode], false),
        event_list(&[&broken, &good], false),
        no_has_more,
    ] {
        let server = MockServer::start().await;
        respond_always(&server, "GET", EVENTS, answer).await;
        let error = gateway(&server.uri())
            .list_events(&query(NOW, None, 10))
            .await
            .unwrap_err();
        assert!(matches!(error, GatewayError::Unexpected(_)), "{error:?}");
        assert_eq!(requests(&server).await.len(), 1, "a 2xx is never retried");
    }
}

// ---- Customers and checkout options ---------------------------------------------------------

const CUSTOMERS: &str = "/v1/customers";

fn customer_request() -> CustomerRequest {
    CustomerRequest {
        user_id: UserId::from_uuid(Uuid::from_u128(0xa1)),
        email: "student+1@example.com".to_owned(),
        name: "Ada Lovelace".to_owned(),
        idempotency_key: "customer-00000000-0000-0000-0000-0000000000a1".to_owned(),
    }
}

fn ok_customer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "cus_NffrFeUfNV2Hib",
        "object": "customer",
        "email": "student+1@example.com",
        "name": "Ada Lovelace",
        "metadata": {"user_id": "00000000-0000-0000-0000-0000000000a1"},
        "livemode": false,
    }))
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_customer_is_created_with_its_user_and_idempotency_key() {
    let server = MockServer::start().await;
    respond_once(
        &server,
        "POST",
        CUSTOMERS,
        ResponseTemplate::new(500).set_body_json(stripe_error("api_error", "", "try again")),
    )
    .await;
    respond_always(&server, "POST", CUSTOMERS, ok_customer()).await;
    let id = gateway(&server.uri())
        .create_customer(&customer_request())
        .await
        .unwrap();
    assert_eq!(id, "cus_NffrFeUfNV2Hib");
    let received = requests(&server).await;
    assert_eq!(received.len(), 2, "a 500 is retried");
    for request in &received {
        assert_eq!(
            header(request, "idempotency-key"),
            Some("customer-00000000-0000-0000-0000-0000000000a1")
        );
        assert_eq!(
            header(request, "authorization"),
            Some(format!("Bearer {SECRET_KEY}").as_str())
        );
        assert_eq!(
            form(request),
            pairs(&[
                ("email", "student+1@example.com"),
                ("name", "Ada Lovelace"),
                ("metadata[user_id]", "00000000-0000-0000-0000-0000000000a1"),
            ])
        );
    }
}

#[tokio::test]
async fn customer_errors_are_mapped_like_every_call() {
    let server = MockServer::start().await;
    respond_always(
        &server,
        "POST",
        CUSTOMERS,
        ResponseTemplate::new(400).set_body_json(stripe_error(
            "invalid_request_error",
            "email_invalid",
            "Invalid email address: student",
        )),
    )
    .await;
    assert_eq!(
        gateway(&server.uri())
            .create_customer(&customer_request())
            .await,
        Err(GatewayError::Rejected {
            code: Some("email_invalid".to_owned()),
            message: "Invalid email address: student".to_owned(),
        })
    );
    assert_eq!(requests(&server).await.len(), 1, "a 400 is not retried");

    let unauthorized = MockServer::start().await;
    respond_always(&unauthorized, "POST", CUSTOMERS, ResponseTemplate::new(401)).await;
    assert!(matches!(
        gateway(&unauthorized.uri())
            .create_customer(&customer_request())
            .await,
        Err(GatewayError::Misconfigured(_))
    ));
    // A nameless user sends no empty name.
    let anonymous = MockServer::start().await;
    respond_always(&anonymous, "POST", CUSTOMERS, ok_customer()).await;
    let nameless = CustomerRequest {
        name: " ".to_owned(),
        ..customer_request()
    };
    gateway(&anonymous.uri())
        .create_customer(&nameless)
        .await
        .unwrap();
    let sent = form(&requests(&anonymous).await[0]);
    assert!(sent.iter().all(|(key, _)| key != "name"), "{sent:?}");
}

#[tokio::test]
async fn a_checkout_for_a_customer_names_it_instead_of_the_email() {
    let server = MockServer::start().await;
    respond_always(&server, "POST", SESSIONS, ok_session()).await;
    let request = CheckoutRequest {
        customer_id: Some("cus_NffrFeUfNV2Hib".to_owned()),
        ..checkout_request()
    };
    gateway(&server.uri())
        .create_checkout_session(&request)
        .await
        .unwrap();
    let sent = form(&requests(&server).await[0]);
    assert!(sent.contains(&("customer".to_owned(), "cus_NffrFeUfNV2Hib".to_owned())));
    assert!(
        sent.iter()
            .all(|(key, _)| key != "customer_email" && key != "customer_update[address]"),
        "{sent:?}"
    );
}

fn gateway_with(api_base: &str, checkout: CheckoutOptions) -> StripeGateway {
    StripeGateway::new(config(api_base).with_checkout(checkout)).unwrap()
}

#[test]
fn checkout_options_shape_the_form() {
    let pid = "00000000-0000-0000-0000-000000000abc";
    let all_on = CheckoutOptions {
        allow_promotion_codes: true,
        automatic_tax: Some(TaxBehavior::Inclusive),
        adaptive_pricing: AdaptivePricing::Off,
    };
    let request = CheckoutRequest {
        customer_id: Some("cus_1".to_owned()),
        ..checkout_request()
    };
    assert_eq!(
        gateway_with("http://127.0.0.1:9", all_on).checkout_form(&request),
        pairs(&[
            ("mode", "payment"),
            ("line_items[0][price_data][currency]", "usd"),
            ("line_items[0][price_data][unit_amount]", "1999"),
            (
                "line_items[0][price_data][product_data][name]",
                "Rust & Async: the {hard} parts",
            ),
            ("line_items[0][price_data][tax_behavior]", "inclusive"),
            ("line_items[0][quantity]", "1"),
            ("success_url", SUCCESS_URL),
            ("cancel_url", CANCEL_URL),
            ("client_reference_id", pid),
            ("metadata[purchase_id]", pid),
            (
                "metadata[course_id]",
                "00000000-0000-0000-0000-0000000000c1",
            ),
            ("metadata[user_id]", "00000000-0000-0000-0000-0000000000a1"),
            ("payment_intent_data[metadata][purchase_id]", pid),
            ("expires_at", "1700003600"),
            ("customer", "cus_1"),
            ("customer_update[address]", "auto"),
            ("allow_promotion_codes", "true"),
            ("automatic_tax[enabled]", "true"),
            ("adaptive_pricing[enabled]", "false"),
        ])
    );
    // Exclusive tax for a buyer without a customer: nothing to save the address to.
    let exclusive = CheckoutOptions {
        allow_promotion_codes: false,
        automatic_tax: Some(TaxBehavior::Exclusive),
        adaptive_pricing: AdaptivePricing::Auto,
    };
    let form = gateway_with("http://127.0.0.1:9", exclusive).checkout_form(&checkout_request());
    let tail: Vec<(String, String)> = form[form.len() - 2..].to_vec();
    assert_eq!(
        tail,
        pairs(&[
            ("customer_email", "student+1@example.com"),
            ("automatic_tax[enabled]", "true"),
        ])
    );
    assert!(form.contains(&(
        "line_items[0][price_data][tax_behavior]".to_owned(),
        "exclusive".to_owned()
    )));
    // The defaults send none of them, as before the options existed.
    let plain =
        gateway_with("http://127.0.0.1:9", CheckoutOptions::default()).checkout_form(&request);
    for key in [
        "line_items[0][price_data][tax_behavior]",
        "customer_update[address]",
        "allow_promotion_codes",
        "automatic_tax[enabled]",
        "adaptive_pricing[enabled]",
    ] {
        assert!(
            plain.iter().all(|(sent, _)| sent != key),
            "{key}: {plain:?}"
        );
    }
}

#[tokio::test]
async fn the_options_reach_stripe_on_the_wire() {
    let server = MockServer::start().await;
    respond_always(&server, "POST", SESSIONS, ok_session()).await;
    let options = CheckoutOptions {
        allow_promotion_codes: true,
        automatic_tax: None,
        adaptive_pricing: AdaptivePricing::Off,
    };
    gateway_with(&server.uri(), options)
        .create_checkout_session(&checkout_request())
        .await
        .unwrap();
    let raw = String::from_utf8(requests(&server).await[0].body.clone()).unwrap();
    assert!(raw.contains("&allow_promotion_codes=true"), "{raw}");
    assert!(
        raw.ends_with("&adaptive_pricing%5Benabled%5D=false"),
        "{raw}"
    );
}
