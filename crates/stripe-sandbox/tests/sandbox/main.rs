//! The sandbox over real HTTP: Stripe's REST semantics, the hosted page, webhook delivery.

#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use lms_stripe_sandbox::{signing, Chaos, DeliveryConfig, PaymentMethod, Sandbox, SandboxConfig};
use serde_json::Value;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod commerce;

fn session_form(purchase: &str) -> Vec<(&'static str, String)> {
    vec![
        ("mode", "payment".into()),
        ("line_items[0][price_data][currency]", "usd".into()),
        ("line_items[0][price_data][unit_amount]", "1999".into()),
        (
            "line_items[0][price_data][product_data][name]",
            "Rust <for> LMS".into(),
        ),
        ("line_items[0][quantity]", "1".into()),
        (
            "success_url",
            "http://shop.test/ok?session_id={CHECKOUT_SESSION_ID}".into(),
        ),
        ("cancel_url", "http://shop.test/cancel".into()),
        ("client_reference_id", purchase.into()),
        ("metadata[purchase_id]", purchase.into()),
        (
            "payment_intent_data[metadata][purchase_id]",
            purchase.into(),
        ),
    ]
}

async fn create(sandbox: &Sandbox, key: &str, form: &[(&str, String)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/checkout/sessions", sandbox.base_url()))
        .bearer_auth(sandbox.secret_key())
        .header("Idempotency-Key", key)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// One open session (idempotency key `k1`, purchase `p1`), as the API returned it.
async fn open_session(sandbox: &Sandbox) -> Value {
    create(sandbox, "k1", &session_form("p1"))
        .await
        .json()
        .await
        .unwrap()
}

fn pay_with_a_good_card(sandbox: &Sandbox, session: &Value) {
    sandbox
        .pay(
            session["id"].as_str().unwrap(),
            &PaymentMethod::Card("4242424242424242".into()),
        )
        .unwrap();
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_refuse_other_parameters() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let first = create(&sandbox, "checkout-p1", &session_form("p1")).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let replay = create(&sandbox, "checkout-p1", &session_form("p1")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);
    let conflict = create(&sandbox, "checkout-p1", &session_form("p2")).await;
    assert_eq!(conflict.status(), 400);
    let conflict: Value = conflict.json().await.unwrap();
    assert_eq!(conflict["error"]["type"], "idempotency_error");
}

#[tokio::test]
async fn a_key_refused_for_an_invalid_parameter_can_be_used_again_corrected() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let mut too_small = session_form("p1");
    for (key, value) in &mut too_small {
        if *key == "line_items[0][price_data][unit_amount]" {
            *value = "10".into();
        }
    }
    let refused = create(&sandbox, "checkout-p1", &too_small).await;
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["type"], "invalid_request_error");
    assert!(refused["error"]["param"].is_string(), "{refused}");
    // Nothing was saved for the key: the corrected request is executed, not refused as a
    // reuse with other parameters.
    let corrected = create(&sandbox, "checkout-p1", &session_form("p1")).await;
    assert_eq!(corrected.status(), 200);
    assert!(corrected.headers().get("idempotent-replayed").is_none());
    let session: Value = corrected.json().await.unwrap();
    assert_eq!(session["amount_total"], 1999);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_stripes_error_shape() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/checkout/sessions/cs_nope",
            sandbox.base_url()
        ))
        .bearer_auth("sk_test_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(!body.to_string().contains("sk_test_wrong"));
    let missing = reqwest::Client::new()
        .get(format!(
            "{}/v1/checkout/sessions/cs_nope",
            sandbox.base_url()
        ))
        .bearer_auth(sandbox.secret_key())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn chaos_fails_the_next_calls_without_touching_state() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    sandbox.set_chaos(Chaos {
        fail_next: vec![500, 429],
        ..Chaos::default()
    });
    assert_eq!(
        create(&sandbox, "k", &session_form("p1")).await.status(),
        500
    );
    assert_eq!(
        create(&sandbox, "k", &session_form("p1")).await.status(),
        429
    );
    assert_eq!(
        create(&sandbox, "k", &session_form("p1")).await.status(),
        200
    );
    assert!(sandbox.events().is_empty());
}

#[tokio::test]
async fn the_hosted_page_declines_then_accepts_and_redirects_like_stripe() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session: Value = open_session(&sandbox).await;
    let url = session["url"].as_str().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Rust &lt;for&gt; LMS"),
        "product name is shown, escaped"
    );
    assert!(page.contains("19.99 USD"));
    let declined = client
        .post(&url)
        .form(&[("method", "card"), ("card_number", "4000 0000 0000 0002")])
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), 402);
    assert!(declined.text().await.unwrap().contains("declined"));
    let paid = client
        .post(&url)
        .form(&[("method", "card"), ("card_number", "4242 4242 4242 4242")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    let id = session["id"].as_str().unwrap();
    assert_eq!(
        paid.headers()["location"],
        format!("http://shop.test/ok?session_id={id}").as_str()
    );
    assert_eq!(sandbox.session(id).unwrap()["payment_status"], "paid");
}

#[tokio::test]
async fn the_page_refuses_a_link_without_its_secret_and_the_session_stays_unpaid() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session: Value = open_session(&sandbox).await;
    let id = session["id"].as_str().unwrap();
    let url = session["url"].as_str().unwrap().to_owned();
    let (without_secret, secret) = url.rsplit_once('/').unwrap();
    assert_eq!(
        without_secret,
        format!("{}/checkout/pay/{id}", sandbox.base_url())
    );
    let mut wrong = secret.to_owned().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = format!("{without_secret}/{}", String::from_utf8(wrong).unwrap());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let good_card = [("method", "card"), ("card_number", "4242 4242 4242 4242")];

    for refused in [
        without_secret.to_owned(),
        format!("{without_secret}/"),
        wrong,
        format!(
            "{}/checkout/pay/cs_test_unknown/{secret}",
            sandbox.base_url()
        ),
    ] {
        let page = client.get(&refused).send().await.unwrap();
        assert_eq!(page.status(), 404, "GET {refused}");
        let paid = client.post(&refused).form(&good_card).send().await.unwrap();
        assert_eq!(paid.status(), 404, "POST {refused}");
        let bank = client
            .post(&refused)
            .form(&[("method", "bank_debit")])
            .send()
            .await
            .unwrap();
        assert_eq!(bank.status(), 404, "POST {refused}");
    }
    let untouched = sandbox.session(id).unwrap();
    assert_eq!(untouched["status"], "open");
    assert_eq!(untouched["payment_status"], "unpaid");
    assert_eq!(untouched["payment_intent"], Value::Null);
    assert!(sandbox.events().is_empty());

    let page = client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("action=\"/checkout/pay/{id}/{secret}\"")));
    let paid = client.post(&url).form(&good_card).send().await.unwrap();
    assert_eq!(paid.status(), 303);
    assert_eq!(sandbox.session(id).unwrap()["payment_status"], "paid");
}

#[tokio::test]
async fn cancel_goes_back_to_the_cancel_url() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session: Value = open_session(&sandbox).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(session["url"].as_str().unwrap())
        .form(&[("method", "cancel")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "http://shop.test/cancel");
}

#[tokio::test]
async fn webhooks_are_signed_like_stripe_and_retried_until_acknowledged() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .mount(&endpoint)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&endpoint)
        .await;
    let config = SandboxConfig {
        webhook_url: Some(format!("{}/hook", endpoint.uri())),
        webhook_secrets: vec!["whsec_old".into(), "whsec_new".into()],
        delivery: DeliveryConfig {
            initial_backoff: Duration::from_millis(10),
            ..DeliveryConfig::default()
        },
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await.unwrap();
    let session: Value = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    assert!(sandbox.wait_for_deliveries(Duration::from_secs(10)).await);

    let received = endpoint.received_requests().await.unwrap();
    let failures = sandbox
        .deliveries()
        .iter()
        .filter(|d| d.status == Some(500))
        .count();
    assert_eq!(
        failures, 2,
        "the first two attempts were refused and retried"
    );
    assert_eq!(received.len(), 3 + 2, "three events, two extra attempts");
    for request in &received {
        let header = request
            .headers
            .get("Stripe-Signature")
            .unwrap()
            .to_str()
            .unwrap();
        let t: i64 = header
            .split(',')
            .find_map(|item| item.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        let v1: Vec<&str> = header
            .split(',')
            .filter_map(|item| item.strip_prefix("v1="))
            .collect();
        assert_eq!(
            v1,
            [
                signing::sign(&request.body, t, "whsec_old"),
                signing::sign(&request.body, t, "whsec_new")
            ]
        );
    }
    let types: Vec<String> = sandbox
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed"
        ]
    );
}

#[tokio::test]
async fn duplicate_delivery_chaos_sends_each_event_twice() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&endpoint)
        .await;
    let config = SandboxConfig {
        webhook_url: Some(endpoint.uri()),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await.unwrap();
    sandbox.set_chaos(Chaos {
        duplicate_deliveries: true,
        shuffle_deliveries: true,
        ..Chaos::default()
    });
    let session: Value = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    assert!(sandbox.wait_for_deliveries(Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(endpoint.received_requests().await.unwrap().len(), 6);
}

#[tokio::test]
async fn the_clock_expires_sessions_and_events_list_newest_first() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session: Value = open_session(&sandbox).await;
    sandbox.advance_clock(Duration::from_secs(25 * 3600));
    let id = session["id"].as_str().unwrap();
    assert_eq!(sandbox.session(id).unwrap()["status"], "expired");
    let list: Value = reqwest::Client::new()
        .get(format!("{}/v1/events?limit=1", sandbox.base_url()))
        .bearer_auth(sandbox.secret_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["type"], "checkout.session.expired");
    assert_eq!(list["has_more"], false);
}

/// A form POST to the sandbox's API, with an optional idempotency key.
async fn post_form(
    sandbox: &Sandbox,
    path: &str,
    key: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", sandbox.base_url()))
        .bearer_auth(sandbox.secret_key())
        .form(form);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn get_json(sandbox: &Sandbox, path_and_query: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sandbox.base_url()))
        .bearer_auth(sandbox.secret_key())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn expire_over_http_closes_an_open_session_only() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = open_session(&sandbox).await;
    let id = session["id"].as_str().unwrap();
    let expire = format!("/v1/checkout/sessions/{id}/expire");
    let expired = post_form(&sandbox, &expire, None, &[]).await;
    assert_eq!(expired.status(), 200);
    let expired: Value = expired.json().await.unwrap();
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["url"], Value::Null);
    assert_eq!(sandbox.events_of_type("checkout.session.expired").len(), 1);
    // Stripe: only an open session can be expired; the error has Stripe's shape.
    let again = post_form(&sandbox, &expire, None, &[]).await;
    assert_eq!(again.status(), 400);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["error"]["type"], "invalid_request_error");
    assert!(again["error"]["message"].is_string(), "{again}");
    let unknown = post_form(&sandbox, "/v1/checkout/sessions/cs_nope/expire", None, &[]).await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn refunds_over_http_replay_per_idempotency_key_and_refuse_other_parameters() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    let id = session["id"].as_str().unwrap();
    let pi = sandbox.session(id).unwrap()["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = [
        ("payment_intent", pi.as_str()),
        ("amount", "500"),
        ("metadata[purchase_id]", "p1"),
    ];
    let first = post_form(&sandbox, "/v1/refunds", Some("refund-p1-1"), &form).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["amount"], 500);
    assert_eq!(first["metadata"]["purchase_id"], "p1");

    let replay = post_form(&sandbox, "/v1/refunds", Some("refund-p1-1"), &form).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(
        replay["id"], first["id"],
        "the same refund, not a second one"
    );
    assert_eq!(
        sandbox.events_of_type("charge.refunded").len(),
        1,
        "a replay refunds nothing more"
    );

    let other = [("payment_intent", pi.as_str()), ("amount", "700")];
    let conflict = post_form(&sandbox, "/v1/refunds", Some("refund-p1-1"), &other).await;
    assert_eq!(conflict.status(), 400);
    let conflict: Value = conflict.json().await.unwrap();
    assert_eq!(conflict["error"]["type"], "idempotency_error");

    // A new key is a new refund: the rest of the charge.
    let rest = post_form(
        &sandbox,
        "/v1/refunds",
        Some("refund-p1-2"),
        &[("payment_intent", pi.as_str())],
    )
    .await;
    assert_eq!(rest.status(), 200);
    assert_eq!(rest.json::<Value>().await.unwrap()["amount"], 1499);
}

#[tokio::test]
async fn the_events_list_pages_with_a_cursor_and_filters_by_creation_time() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    // charge.succeeded, payment_intent.succeeded, checkout.session.completed
    let all: Vec<Value> = sandbox.events();
    assert_eq!(all.len(), 3);

    let (status, first) = get_json(&sandbox, "/v1/events?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(first["object"], "list");
    assert_eq!(first["has_more"], true);
    let page: Vec<&Value> = first["data"].as_array().unwrap().iter().collect();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], all[2]["id"], "newest first");
    assert_eq!(page[1]["id"], all[1]["id"]);

    let cursor = page[1]["id"].as_str().unwrap();
    let (_, second) = get_json(
        &sandbox,
        &format!("/v1/events?limit=2&starting_after={cursor}"),
    )
    .await;
    assert_eq!(second["has_more"], false);
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["id"], all[0]["id"]);

    let created = all[0]["created"].as_i64().unwrap();
    let (_, none) = get_json(
        &sandbox,
        &format!("/v1/events?created[gte]={}", created + 1),
    )
    .await;
    assert_eq!(none["data"], Value::Array(vec![]));
    let (_, some) = get_json(&sandbox, &format!("/v1/events?created[gte]={created}")).await;
    assert_eq!(some["data"].as_array().unwrap().len(), 3);

    let (status, missing) = get_json(&sandbox, "/v1/events?starting_after=evt_unknown").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn concurrent_requests_with_one_key_are_serialized_into_one_session() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let form = session_form("p1");
    let answers = create_concurrently(&sandbox, &form, 8).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "no 409 in flight: {body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one session for one key: {ids:?}");
}

/// `count` simultaneous creates with the key `same-key`.
async fn create_concurrently(
    sandbox: &Sandbox,
    form: &[(&str, String)],
    count: usize,
) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let url = format!("{}/v1/checkout/sessions", sandbox.base_url());
        let key = sandbox.secret_key().to_owned();
        let form: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        tasks.spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", "same-key")
                .form(&form)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn hosted_pages_link_to_the_public_url_while_the_api_stays_on_loopback() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = SandboxConfig {
        public_base_url: Some("http://localhost:8080/".into()),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start_on(listener, config).await.unwrap();
    assert_eq!(
        sandbox.base_url(),
        format!("http://127.0.0.1:{port}"),
        "every interface is dialled over loopback"
    );
    assert_eq!(sandbox.page_base(), "http://localhost:8080");
    let session = open_session(&sandbox).await;
    let url = session["url"].as_str().unwrap();
    let prefix = "http://localhost:8080/checkout/pay/";
    assert!(url.starts_with(prefix), "{url} starts with the public base");
    let path = &url[prefix.len()..];
    let page = reqwest::get(format!("{}/checkout/pay/{path}", sandbox.base_url()))
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the link's path is served");
}

#[tokio::test]
async fn a_public_url_that_cannot_be_a_link_base_is_refused_at_start() {
    for url in [
        "localhost:8080",
        "ftp://localhost",
        "http://",
        "http://localhost/?a=b",
        "https://localhost/#top",
        "http://local host",
    ] {
        let config = SandboxConfig {
            public_base_url: Some(url.into()),
            ..SandboxConfig::default()
        };
        let err = Sandbox::start(config).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{url}");
        assert!(err.to_string().contains(url), "{err}");
    }
}

/// The ids of a `GET /v1/events` answer, in order.
fn listed_ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ids of the sandbox's events of these types, newest first (as the list gives them).
fn newest_first_of(sandbox: &Sandbox, types: &[&str]) -> Vec<String> {
    sandbox
        .events()
        .iter()
        .rev()
        .filter(|event| types.iter().any(|t| event["type"] == *t))
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_events_list_filters_by_types_like_stripe() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    // charge.succeeded, payment_intent.succeeded, checkout.session.completed
    let ours = newest_first_of(
        &sandbox,
        &["checkout.session.completed", "charge.succeeded"],
    );
    assert_eq!(ours.len(), 2);

    for query in [
        "types[]=checkout.session.completed&types[]=charge.succeeded",
        // Brackets percent-encoded, as form encoders (the Stripe adapter's included) send them.
        "types%5B%5D=checkout.session.completed&types%5B%5D=charge.succeeded",
        // Indexed, as Stripe's own SDKs send arrays.
        "types[0]=charge.succeeded&types[1]=checkout.session.completed",
        // A type no event has changes nothing; an empty one is no filter item.
        "types[]=charge.succeeded&types[]=charge.refunded&types[]=&types[]=checkout.session.completed",
    ] {
        let (status, list) = get_json(&sandbox, &format!("/v1/events?{query}")).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(listed_ids(&list), ours, "{query}");
        assert_eq!(list["has_more"], false, "{query}");
    }

    // The cursor steps over what the filter leaves out (payment_intent.succeeded).
    let (_, first) = get_json(
        &sandbox,
        "/v1/events?limit=1&types[]=checkout.session.completed&types[]=charge.succeeded",
    )
    .await;
    assert_eq!(listed_ids(&first), ours[..1]);
    assert_eq!(first["has_more"], true);
    let (_, second) = get_json(
        &sandbox,
        &format!(
            "/v1/events?limit=1&starting_after={}&types[]=checkout.session.completed&types[]=charge.succeeded",
            ours[0]
        ),
    )
    .await;
    assert_eq!(listed_ids(&second), ours[1..]);
    assert_eq!(second["has_more"], false);

    // `type`: one type, or a group with a wildcard.
    for (pattern, types) in [
        ("charge.succeeded", vec!["charge.succeeded"]),
        ("checkout.session.*", vec!["checkout.session.completed"]),
        (
            "*.succeeded",
            vec!["charge.succeeded", "payment_intent.succeeded"],
        ),
        (
            "*",
            vec![
                "charge.succeeded",
                "payment_intent.succeeded",
                "checkout.session.completed",
            ],
        ),
        ("charge", vec![]),
    ] {
        let (status, list) = get_json(&sandbox, &format!("/v1/events?type={pattern}")).await;
        assert_eq!(status, 200, "{pattern}");
        assert_eq!(
            listed_ids(&list),
            newest_first_of(&sandbox, &types),
            "{pattern}"
        );
    }
}

/// Stripe's refusals, plus any parameter the sandbox does not know: silently listing everything
/// would hide a client's mistake.
#[tokio::test]
async fn the_events_list_refuses_bad_or_unknown_parameters() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let too_many: String = (0..21)
        .map(|n| format!("types[]=type.{n}"))
        .collect::<Vec<_>>()
        .join("&");
    for (query, param) in [
        ("type=charge.succeeded&types[]=charge.failed", "types"),
        (too_many.as_str(), "types"),
        ("created[gte]=yesterday", "created[gte]"),
        ("typo[]=charge.succeeded", "typo[]"),
    ] {
        let (status, body) = get_json(&sandbox, &format!("/v1/events?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{query}");
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    let (_, unknown) = get_json(&sandbox, "/v1/events?typo[]=x").await;
    assert_eq!(unknown["error"]["code"], "parameter_unknown");
}

#[tokio::test]
async fn the_events_list_filters_by_creation_bounds() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let paid = open_session(&sandbox).await;
    let unpaid: Value = create(&sandbox, "k2", &session_form("p2"))
        .await
        .json()
        .await
        .unwrap();
    pay_with_a_good_card(&sandbox, &paid);
    let paid_at = sandbox.events()[0]["created"].as_i64().unwrap();
    // A day later the unpaid session expires: one event, far from the three others.
    sandbox.advance_clock(Duration::from_secs(25 * 3600));
    let expiry = sandbox.events_of_type("checkout.session.expired");
    assert_eq!(expiry.len(), 1);
    assert_eq!(expiry[0]["data"]["object"]["id"], unpaid["id"]);
    let expiry_id = expiry[0]["id"].as_str().unwrap().to_owned();
    let payment = newest_first_of(
        &sandbox,
        &[
            "checkout.session.completed",
            "payment_intent.succeeded",
            "charge.succeeded",
        ],
    );
    assert_eq!(payment.len(), 3);
    let mut everything = vec![expiry_id.clone()];
    everything.extend(payment.iter().cloned());

    let after = paid_at + 1;
    for (query, expected) in [
        (format!("created[gte]={paid_at}"), everything.clone()),
        (format!("created[gte]={after}"), vec![expiry_id.clone()]),
        (format!("created[gt]={paid_at}"), vec![expiry_id.clone()]),
        (format!("created[lt]={after}"), payment.clone()),
        (format!("created[lte]={paid_at}"), payment.clone()),
        (format!("created[lt]={paid_at}"), vec![]),
        (format!("created={paid_at}"), payment.clone()),
        (
            format!("created[gte]={paid_at}&created[lt]={after}&types[]=charge.succeeded"),
            newest_first_of(&sandbox, &["charge.succeeded"]),
        ),
        (
            format!("created[gte]={after}&types[]=checkout.session.completed"),
            vec![],
        ),
    ] {
        let (status, list) = get_json(&sandbox, &format!("/v1/events?{query}")).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(listed_ids(&list), expected, "{query}");
    }
    // Bounds and the cursor together: after the expiry, from the payment's second on.
    let (_, page) = get_json(
        &sandbox,
        &format!("/v1/events?created[gte]={paid_at}&starting_after={expiry_id}&limit=2"),
    )
    .await;
    assert_eq!(listed_ids(&page), payment[..2]);
    assert_eq!(page["has_more"], true);
}

#[tokio::test]
async fn with_webhook_delivery_off_events_are_listed_but_never_delivered() {
    let endpoint = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&endpoint)
        .await;
    let config = SandboxConfig {
        webhook_url: Some(endpoint.uri()),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start(config).await.unwrap();
    assert!(sandbox.webhook_delivery(), "on by default");
    sandbox.set_webhook_delivery(false);
    sandbox.set_webhook_delivery(false);
    assert!(!sandbox.webhook_delivery());

    let session = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    let emitted: Vec<String> = sandbox
        .events()
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emitted.len(), 3);
    assert_eq!(sandbox.dropped_events(), emitted);
    assert!(
        sandbox.wait_for_deliveries(Duration::from_secs(5)).await,
        "nothing is pending: the dropped events will never be delivered"
    );
    // Longer than the delivery worker's idle wake-up: it has seen the events and dropped them.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(endpoint.received_requests().await.unwrap().is_empty());
    assert!(sandbox.deliveries().is_empty());
    let (_, list) = get_json(&sandbox, "/v1/events").await;
    assert_eq!(listed_ids(&list).len(), 3, "the history still has them");

    // Back on: what is emitted from now on is delivered, the dropped events still are not.
    sandbox.set_webhook_delivery(true);
    assert!(sandbox.webhook_delivery());
    let id = session["id"].as_str().unwrap();
    let pi = sandbox.session(id).unwrap()["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let refund = post_form(
        &sandbox,
        "/v1/refunds",
        Some("refund-1"),
        &[("payment_intent", pi.as_str())],
    )
    .await;
    assert_eq!(refund.status(), 200);
    assert!(sandbox.wait_for_deliveries(Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered: Vec<String> = endpoint
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| {
            serde_json::from_slice::<Value>(&request.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let refund_events: Vec<String> = sandbox.events()[3..]
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refund_events.len(), 2, "charge.refunded, refund.created");
    let mut sorted = delivered.clone();
    sorted.sort();
    let mut expected = refund_events.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_eq!(sandbox.dropped_events(), emitted);
}
