//! Customers, promotion codes, tax, presentment and receipts over real HTTP.

use super::*;

/// The text of the element with `id` in a page (the sandbox writes each on one line).
fn text_of(page: &str, id: &str) -> Option<String> {
    let start = page.find(&format!("id=\"{id}\""))?;
    let rest = &page[start..];
    let open = rest.find('>')? + 1;
    let close = rest[open..].find('<')?;
    Some(rest[open..open + close].to_owned())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn codes_allowed(purchase: &str) -> Vec<(&'static str, String)> {
    let mut form = session_form(purchase);
    form.push(("allow_promotion_codes", "true".into()));
    form
}

async fn session_with(sandbox: &Sandbox, key: &str, form: &[(&str, String)]) -> Value {
    let response = create(sandbox, key, form).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn customers_are_created_once_per_key_and_read_back() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let form = [
        ("email", "ada@example.com"),
        ("name", "Ada Lovelace"),
        ("metadata[user_id]", "user-1"),
    ];
    let first = post_form(&sandbox, "/v1/customers", Some("customer-user-1"), &form).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let id = first["id"].as_str().unwrap();
    assert!(id.starts_with("cus_"), "{first}");
    assert_eq!(first["object"], "customer");
    let replay = post_form(&sandbox, "/v1/customers", Some("customer-user-1"), &form).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(sandbox.customer_count(), 1);
    let conflicting = post_form(
        &sandbox,
        "/v1/customers",
        Some("customer-user-1"),
        &[("email", "other@example.com")],
    )
    .await;
    assert_eq!(conflicting.status(), 400);
    assert_eq!(
        conflicting.json::<Value>().await.unwrap()["error"]["type"],
        "idempotency_error"
    );
    let (status, read) = get_json(&sandbox, &format!("/v1/customers/{id}")).await;
    assert_eq!((status, &read), (200, &first));
    let (status, missing) = get_json(&sandbox, "/v1/customers/cus_nope").await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "resource_missing");
    post_form(&sandbox, "/v1/customers", Some("customer-user-2"), &form).await;
    assert_eq!(sandbox.customer_count(), 2);
    assert_eq!(sandbox.customers()[0], first);

    // A checkout names the customer.
    let mut checkout = session_form("p1");
    checkout.push(("customer", id.to_owned()));
    let session = session_with(&sandbox, "k1", &checkout).await;
    assert_eq!(session["customer"], id);
    assert!(sandbox.events().is_empty(), "customers emit no event");
}

#[tokio::test]
async fn a_wrong_code_shows_an_error_and_a_right_one_lowers_the_amount_due() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = session_with(&sandbox, "k1", &codes_allowed("p1")).await;
    let id = session["id"].as_str().unwrap();
    let url = session["url"].as_str().unwrap().to_owned();
    let client = no_redirects();
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(r#"<label for="promotion-code">Promotion code</label>"#),
        "{page}"
    );
    assert!(page.contains(r#"id="apply-promotion-code""#));
    assert_eq!(text_of(&page, "amount-due").as_deref(), Some("19.99 USD"));

    let wrong = client
        .post(&url)
        .form(&[("method", "promotion_code"), ("promotion_code", "SPRING2")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let wrong = wrong.text().await.unwrap();
    assert_eq!(
        text_of(&wrong, "error").as_deref(),
        Some("This code is invalid.")
    );
    assert_eq!(text_of(&wrong, "amount-due").as_deref(), Some("19.99 USD"));
    assert!(sandbox.events().is_empty(), "nothing charged");

    let applied = client
        .post(&url)
        .form(&[("method", "promotion_code"), ("promotion_code", "spring25")])
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 200);
    let applied = applied.text().await.unwrap();
    // 25% of 19.99 = 4.9975 -> 5.00 off.
    assert_eq!(
        text_of(&applied, "amount-due").as_deref(),
        Some("14.99 USD")
    );
    assert_eq!(
        text_of(&applied, "amount-subtotal").as_deref(),
        Some("19.99 USD")
    );
    assert_eq!(
        text_of(&applied, "amount-discount").as_deref(),
        Some("-5.00 USD")
    );
    assert_eq!(
        text_of(&applied, "promotion-code-applied").as_deref(),
        Some("SPRING25 applied.")
    );
    assert!(applied.contains("Pay 14.99 USD"));

    let paid = client
        .post(&url)
        .form(&[("method", "card"), ("card_number", "4242 4242 4242 4242")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    let completed = &sandbox.events_of_type("checkout.session.completed")[0]["data"]["object"];
    assert_eq!(completed["id"], id);
    assert_eq!(completed["amount_subtotal"], 1999);
    assert_eq!(completed["amount_total"], 1499);
    assert_eq!(completed["total_details"]["amount_discount"], 500);
    assert_eq!(
        completed["discounts"][0]["promotion_code"],
        "promo_sandbox_spring25"
    );
    let charge = &sandbox.events_of_type("charge.succeeded")[0]["data"]["object"];
    assert_eq!(charge["amount"], 1499);
}

#[tokio::test]
async fn a_session_without_codes_has_no_code_field_and_refuses_one() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = open_session(&sandbox).await;
    let url = session["url"].as_str().unwrap().to_owned();
    let client = no_redirects();
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("promotion-code"), "{page}");
    let forced = client
        .post(&url)
        .form(&[
            ("method", "promotion_code"),
            ("promotion_code", "FREECOURSE"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 400);
    assert_eq!(
        sandbox.session(session["id"].as_str().unwrap()).unwrap()["amount_total"],
        1999
    );
}

#[tokio::test]
async fn a_free_code_completes_the_order_without_a_payment() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = session_with(&sandbox, "k1", &codes_allowed("p1")).await;
    let id = session["id"].as_str().unwrap();
    let url = session["url"].as_str().unwrap().to_owned();
    let client = no_redirects();
    let applied = client
        .post(&url)
        .form(&[
            ("method", "promotion_code"),
            ("promotion_code", "FREECOURSE"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&applied, "amount-due").as_deref(), Some("0.00 USD"));
    assert!(!applied.contains("card_number"), "nothing to pay by card");
    assert_eq!(text_of(&applied, "pay").as_deref(), Some("Complete order"));
    let completed = client
        .post(&url)
        .form(&[("method", "card")])
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 303);
    assert_eq!(
        completed.headers()["location"],
        format!("http://shop.test/ok?session_id={id}").as_str()
    );
    let session = sandbox.session(id).unwrap();
    assert_eq!(session["payment_status"], "no_payment_required");
    assert_eq!(session["payment_intent"], Value::Null);
    let types: Vec<Value> = sandbox.events().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(
        types,
        ["checkout.session.completed"],
        "no charge, no charge event"
    );
}

#[tokio::test]
async fn the_tax_rate_setting_taxes_sessions_with_automatic_tax() {
    let sandbox = Sandbox::start(SandboxConfig {
        tax_rate_bps: 825,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut form = codes_allowed("p1");
    form.extend([
        ("automatic_tax[enabled]", "true".to_owned()),
        (
            "line_items[0][price_data][tax_behavior]",
            "exclusive".to_owned(),
        ),
    ]);
    let session = session_with(&sandbox, "k1", &form).await;
    // 19.99 * 8.25% = 1.649... -> 1.65.
    assert_eq!(session["total_details"]["amount_tax"], 165);
    assert_eq!(session["amount_total"], 2164);
    let id = session["id"].as_str().unwrap();
    let page = no_redirects()
        .get(session["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&page, "amount-tax").as_deref(), Some("1.65 USD"));
    assert_eq!(text_of(&page, "amount-due").as_deref(), Some("21.64 USD"));
    // With 10.00 off, the tax is on the 9.99 left: 0.824... -> 0.82.
    let discounted = sandbox.apply_promotion_code(id, "TENOFF").unwrap();
    assert_eq!(discounted["total_details"]["amount_tax"], 82);
    assert_eq!(discounted["amount_total"], 1081);

    let untaxed = session_with(&sandbox, "k2", &session_form("p2")).await;
    assert_eq!(untaxed["amount_total"], 1999, "no automatic tax, no tax");

    let over = Sandbox::start(SandboxConfig {
        tax_rate_bps: 10_001,
        ..SandboxConfig::default()
    })
    .await;
    assert_eq!(over.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(lms_stripe_sandbox::parse_tax_rate_bps(" 825 "), Ok(825));
    for bad in ["", "-1", "8.25", "10001"] {
        assert!(
            lms_stripe_sandbox::parse_tax_rate_bps(bad).is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_presentment_currency_converts_sessions_as_stripe_shapes_it() {
    let sandbox = Sandbox::start(SandboxConfig {
        presentment: Some(lms_stripe_sandbox::Presentment::parse("eur", "0.925").unwrap()),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let session = open_session(&sandbox).await;
    assert_eq!(session["currency"], "eur");
    // 19.99 * 0.925 = 18.49075 -> 18.49.
    assert_eq!(session["amount_total"], 1849);
    assert_eq!(
        session["currency_conversion"],
        serde_json::json!({"amount_subtotal": 1999, "amount_total": 1999, "fx_rate": "0.925", "source_currency": "usd"})
    );
    let page = no_redirects()
        .get(session["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&page, "amount-due").as_deref(), Some("18.49 EUR"));
    assert!(text_of(&page, "conversion").unwrap().contains("19.99 USD"));
    pay_with_a_good_card(&sandbox, &session);
    let charge = &sandbox.events_of_type("charge.succeeded")[0]["data"]["object"];
    assert_eq!(
        (&charge["amount"], &charge["currency"]),
        (&1849.into(), &"eur".into())
    );
}

#[tokio::test]
async fn a_charge_receipt_is_served_at_its_receipt_url() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let session = open_session(&sandbox).await;
    pay_with_a_good_card(&sandbox, &session);
    let charge = sandbox.events_of_type("charge.succeeded")[0]["data"]["object"].clone();
    let receipt_url = charge["receipt_url"].as_str().unwrap().to_owned();
    assert!(
        receipt_url.starts_with(&format!("{}/receipts/payment/", sandbox.base_url())),
        "{receipt_url}"
    );
    let client = no_redirects();
    let page = client.get(&receipt_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert_eq!(
        text_of(&page, "receipt-amount").as_deref(),
        Some("19.99 USD")
    );
    assert_eq!(
        text_of(&page, "receipt-refunded").as_deref(),
        Some("0.00 USD")
    );
    assert_eq!(
        text_of(&page, "receipt-product").as_deref(),
        Some("Rust &lt;for&gt; LMS")
    );
    // A refund shows on the same receipt, and the refund event links it too.
    let pi = sandbox.session(session["id"].as_str().unwrap()).unwrap()["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    post_form(
        &sandbox,
        "/v1/refunds",
        Some("r1"),
        &[("payment_intent", &pi), ("amount", "500")],
    )
    .await;
    let refunded = &sandbox.events_of_type("charge.refunded")[0]["data"]["object"];
    assert_eq!(refunded["receipt_url"], receipt_url.as_str());
    let page = client
        .get(&receipt_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text_of(&page, "receipt-refunded").as_deref(),
        Some("5.00 USD")
    );
    let unknown = client
        .get(format!("{}/receipts/payment/nope", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
