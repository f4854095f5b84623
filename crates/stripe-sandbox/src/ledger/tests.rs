use super::*;

const NOW: i64 = 1_700_000_000;

fn params(pairs: &[(&str, &str)]) -> Params {
    Params(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn session_params(amount: &str) -> Params {
    params(&[
        ("mode", "payment"),
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][price_data][unit_amount]", amount),
        (
            "line_items[0][price_data][product_data][name]",
            "Rust for LMS",
        ),
        ("line_items[0][quantity]", "1"),
        (
            "success_url",
            "http://shop/ok?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "http://shop/cancel"),
        ("client_reference_id", "purchase-1"),
        ("metadata[purchase_id]", "purchase-1"),
        ("payment_intent_data[metadata][purchase_id]", "purchase-1"),
        ("expires_at", &(NOW + 3600).to_string()),
    ])
}

/// A ledger holding one open 19.99 USD session, and that session's id.
fn open_session() -> (Ledger, String) {
    let mut ledger = Ledger::default();
    let id = create_session(&mut ledger, "1999");
    (ledger, id)
}

/// A session for `amount` created in `ledger` at `NOW`: its id.
fn create_session(ledger: &mut Ledger, amount: &str) -> String {
    ledger
        .create_session(&session_params(amount), NOW, "")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// [`open_session`] paid with 4242...: the ledger, the session id and its payment intent.
fn paid_session() -> (Ledger, String, String) {
    let (mut ledger, id) = open_session();
    ledger
        .pay(&id, &PaymentMethod::Card("4242424242424242".into()), NOW)
        .unwrap();
    let pi = ledger.session(&id).unwrap()["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    (ledger, id, pi)
}

fn types(ledger: &Ledger) -> Vec<String> {
    ledger
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_created_session_is_open_unpaid_and_carries_our_references() {
    let mut ledger = Ledger::default();
    let session = ledger
        .create_session(&session_params("1999"), NOW, "http://sandbox")
        .unwrap();
    assert_eq!(session["status"], "open");
    assert_eq!(session["payment_status"], "unpaid");
    assert_eq!(session["amount_total"], 1999);
    assert_eq!(session["client_reference_id"], "purchase-1");
    assert_eq!(session["metadata"]["purchase_id"], "purchase-1");
    assert_eq!(session["payment_intent"], Value::Null);
    assert!(session["url"]
        .as_str()
        .unwrap()
        .starts_with("http://sandbox/checkout/pay/cs_test_"));
    assert!(session.get("line_items_sandbox").is_none());
}

/// The secret at the end of a session's hosted-page URL.
fn page_secret(session: &Value) -> String {
    let url = session["url"].as_str().unwrap();
    url.rsplit('/').next().unwrap().to_owned()
}

#[test]
fn the_hosted_page_opens_only_with_the_secret_its_url_carries() {
    let mut ledger = Ledger::default();
    let session = ledger
        .create_session(&session_params("1999"), NOW, "http://sandbox")
        .unwrap();
    let id = session["id"].as_str().unwrap();
    let secret = page_secret(&session);
    assert_eq!(
        session["url"],
        format!("http://sandbox/checkout/pay/{id}/{secret}").as_str()
    );
    // 256 bits, hex.
    assert_eq!(secret.len(), 64);
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));

    assert!(ledger.session_for_page(id, &secret).is_some());
    assert!(ledger.session_for_page(id, "").is_none());
    let mut wrong = secret.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    assert!(ledger
        .session_for_page(id, &String::from_utf8(wrong).unwrap())
        .is_none());
    assert!(ledger.session_for_page(id, &secret[..32]).is_none());
    assert!(ledger
        .session_for_page("cs_test_unknown", &secret)
        .is_none());

    // Another session's secret opens only that other session.
    let other = ledger
        .create_session(&session_params("2500"), NOW, "http://sandbox")
        .unwrap();
    assert_ne!(page_secret(&other), secret);
    assert!(ledger.session_for_page(id, &page_secret(&other)).is_none());
}

#[test]
fn only_the_url_field_shows_the_page_secret() {
    let mut ledger = Ledger::default();
    let session = ledger
        .create_session(&session_params("1999"), NOW, "http://sandbox")
        .unwrap();
    let id = session["id"].as_str().unwrap().to_owned();
    let secret = page_secret(&session);
    let without_url = |mut value: Value| {
        value.as_object_mut().unwrap().remove("url");
        value.to_string()
    };
    assert!(!without_url(ledger.session(&id).unwrap()).contains(&secret));
    ledger
        .pay(&id, &PaymentMethod::Card("4242424242424242".into()), NOW)
        .unwrap();
    for event in ledger.events() {
        assert!(!event.to_string().contains(&secret), "{event}");
    }
    // A closed session has no URL any more, as at Stripe.
    assert_eq!(ledger.session(&id).unwrap()["url"], Value::Null);
}

#[test]
fn session_creation_enforces_stripe_rules() {
    let mut ledger = Ledger::default();
    let too_small = ledger
        .create_session(&session_params("49"), NOW, "")
        .unwrap_err();
    assert_eq!(too_small.code, Some("amount_too_small"));
    let mut missing = session_params("1999");
    missing.0.retain(|(k, _)| k != "success_url");
    assert_eq!(
        ledger
            .create_session(&missing, NOW, "")
            .unwrap_err()
            .param
            .as_deref(),
        Some("success_url")
    );
    let mut soon = session_params("1999");
    soon.0.push(("expires_at".into(), (NOW + 60).to_string()));
    assert_eq!(
        ledger
            .create_session(&soon, NOW, "")
            .unwrap_err()
            .param
            .as_deref(),
        Some("expires_at")
    );
}

#[test]
fn a_declined_card_then_a_good_one_completes_the_same_session() {
    let (mut ledger, id) = open_session();
    let declined = ledger
        .pay(&id, &PaymentMethod::Card("4000 0000 0000 0002".into()), NOW)
        .unwrap();
    assert!(matches!(declined, PaymentOutcome::Declined(_)));
    assert_eq!(ledger.session(&id).unwrap()["status"], "open");
    assert_eq!(
        ledger
            .pay(&id, &PaymentMethod::Card("4242424242424242".into()), NOW)
            .unwrap(),
        PaymentOutcome::Paid
    );
    let session = ledger.session(&id).unwrap();
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "paid");
    assert_eq!(
        types(&ledger),
        [
            "charge.failed",
            "charge.succeeded",
            "payment_intent.succeeded",
            "checkout.session.completed"
        ]
    );
    let charge = &ledger.events()[1]["data"]["object"];
    assert_eq!(
        charge["metadata"]["purchase_id"], "purchase-1",
        "charges carry the payment intent's metadata"
    );
    assert_eq!(charge["payment_intent"], session["payment_intent"]);
    assert!(
        ledger
            .pay(&id, &PaymentMethod::Card("4242424242424242".into()), NOW)
            .is_err(),
        "a complete session cannot be paid twice"
    );
}

#[test]
fn bank_debits_complete_unpaid_then_settle() {
    let (mut ledger, id) = open_session();
    assert_eq!(
        ledger.pay(&id, &PaymentMethod::BankDebit, NOW).unwrap(),
        PaymentOutcome::Processing
    );
    assert_eq!(ledger.session(&id).unwrap()["payment_status"], "unpaid");
    ledger.settle(&id, false, NOW).unwrap();
    assert_eq!(
        types(&ledger),
        [
            "checkout.session.completed",
            "charge.failed",
            "checkout.session.async_payment_failed"
        ]
    );
}

#[test]
fn sessions_expire_on_time_and_on_request() {
    let (mut ledger, id) = open_session();
    ledger.expire_due(NOW + 3599);
    assert_eq!(ledger.session(&id).unwrap()["status"], "open");
    ledger.expire_due(NOW + 3600);
    assert_eq!(ledger.session(&id).unwrap()["status"], "expired");
    assert_eq!(ledger.session(&id).unwrap()["url"], Value::Null);
    assert_eq!(types(&ledger), ["checkout.session.expired"]);
    assert_eq!(
        ledger.expire_session(&id, NOW).unwrap_err().code,
        Some("checkout_session_not_open")
    );
}

#[test]
fn only_sessions_still_open_expire_and_each_once() {
    let (mut ledger, paid, _) = paid_session();
    let open = create_session(&mut ledger, "2999");
    let before = types(&ledger).len();
    ledger.expire_due(NOW + 3600);
    assert_eq!(ledger.session(&paid).unwrap()["status"], "complete");
    assert_eq!(ledger.session(&open).unwrap()["status"], "expired");
    ledger.expire_due(NOW + 7200);
    assert_eq!(
        types(&ledger)[before..],
        ["checkout.session.expired"],
        "the paid session passed over, the open one expired once"
    );
}

#[test]
fn refunds_accumulate_and_cannot_exceed_the_charge() {
    let (mut ledger, _, pi) = paid_session();
    let partial = ledger
        .create_refund(&params(&[("payment_intent", &pi), ("amount", "500")]), NOW)
        .unwrap();
    assert_eq!(partial["amount"], 500);
    let too_much = ledger
        .create_refund(&params(&[("payment_intent", &pi), ("amount", "1500")]), NOW)
        .unwrap_err();
    assert_eq!(too_much.code, Some("amount_too_large"));
    let rest = ledger
        .create_refund(&params(&[("payment_intent", &pi)]), NOW)
        .unwrap();
    assert_eq!(rest["amount"], 1499);
    let refunded: Vec<&Value> = ledger
        .events()
        .iter()
        .filter(|e| e["type"] == "charge.refunded")
        .collect();
    assert_eq!(refunded.len(), 2);
    assert_eq!(refunded[1]["data"]["object"]["amount_refunded"], 1999);
    assert_eq!(refunded[1]["data"]["object"]["refunded"], true);
    assert_eq!(
        ledger
            .create_refund(&params(&[("payment_intent", &pi)]), NOW)
            .unwrap_err()
            .code,
        Some("charge_already_refunded")
    );
}

#[test]
fn disputes_open_and_close() {
    let (mut ledger, _, pi) = paid_session();
    let dispute = ledger.open_dispute(&pi, NOW).unwrap();
    ledger
        .close_dispute(dispute["id"].as_str().unwrap(), false, NOW)
        .unwrap();
    let closed = ledger.events().last().unwrap();
    assert_eq!(closed["type"], "charge.dispute.closed");
    assert_eq!(closed["data"]["object"]["status"], "lost");
    assert_eq!(closed["data"]["object"]["payment_intent"], pi.as_str());
}

#[test]
fn fingerprints_ignore_parameter_order() {
    let a = params(&[("a", "1"), ("b", "2")]);
    let b = params(&[("b", "2"), ("a", "1")]);
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(
        a.fingerprint(),
        params(&[("a", "1"), ("b", "3")]).fingerprint()
    );
}

/// [`session_params`] with more parameters.
fn with_params(base: Params, more: &[(&str, &str)]) -> Params {
    let mut all = base;
    all.0
        .extend(more.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    all
}

fn create(ledger: &mut Ledger, params: &Params) -> Value {
    ledger
        .create_session(params, NOW, "http://sandbox")
        .unwrap()
}

fn id_of(session: &Value) -> String {
    session["id"].as_str().unwrap().to_owned()
}

fn good_card() -> PaymentMethod {
    PaymentMethod::Card("4242424242424242".into())
}

#[test]
fn a_plain_session_bills_its_price_in_stripes_shape() {
    let (ledger, id) = open_session();
    let session = ledger.session(&id).unwrap();
    assert_eq!(session["amount_subtotal"], 1999);
    assert_eq!(session["amount_total"], 1999);
    assert_eq!(
        session["total_details"],
        json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0})
    );
    assert_eq!(session["currency_conversion"], Value::Null);
    assert_eq!(session["discounts"], json!([]));
    assert_eq!(session["allow_promotion_codes"], Value::Null);
    assert_eq!(session["automatic_tax"]["enabled"], false);
    assert_eq!(session["adaptive_pricing"]["enabled"], true);
    assert_eq!(session["customer"], Value::Null);
}

#[test]
fn automatic_tax_applies_the_flat_rate_per_the_tax_behavior() {
    let mut ledger = Ledger::new(LedgerSettings {
        tax_rate_bps: 1000,
        presentment: None,
    });
    let taxed = |behavior: &str| {
        with_params(
            session_params("2000"),
            &[
                ("automatic_tax[enabled]", "true"),
                ("line_items[0][price_data][tax_behavior]", behavior),
            ],
        )
    };
    let exclusive = create(&mut ledger, &taxed("exclusive"));
    assert_eq!(
        (
            &exclusive["amount_subtotal"],
            &exclusive["total_details"]["amount_tax"],
            &exclusive["amount_total"]
        ),
        (&json!(2000), &json!(200), &json!(2200))
    );
    assert_eq!(exclusive["automatic_tax"]["enabled"], true);
    let inclusive = create(&mut ledger, &taxed("inclusive"));
    assert_eq!(inclusive["total_details"]["amount_tax"], 182);
    assert_eq!(inclusive["amount_total"], 2000);
    // Without automatic tax the rate does not apply, whatever the tax behavior says.
    let untaxed = create(
        &mut ledger,
        &with_params(
            session_params("2000"),
            &[("line_items[0][price_data][tax_behavior]", "exclusive")],
        ),
    );
    assert_eq!(untaxed["amount_total"], 2000);
    // The tax behavior is required with automatic tax, and must be a known one.
    for behavior in ["unspecified", "both"] {
        let refused = ledger
            .create_session(&taxed(behavior), NOW, "")
            .unwrap_err();
        assert_eq!(
            refused.param.as_deref(),
            Some("line_items[0][price_data][tax_behavior]"),
            "{behavior}"
        );
    }
    let without = with_params(
        session_params("2000"),
        &[("automatic_tax[enabled]", "true")],
    );
    assert_eq!(
        ledger.create_session(&without, NOW, "").unwrap_err().code,
        Some("tax_behavior_required")
    );
    let not_a_boolean = with_params(session_params("2000"), &[("automatic_tax[enabled]", "yes")]);
    assert_eq!(
        ledger
            .create_session(&not_a_boolean, NOW, "")
            .unwrap_err()
            .code,
        Some("parameter_invalid_boolean")
    );
}

#[test]
fn customers_are_created_and_named_by_checkouts_as_stripe_allows() {
    let mut ledger = Ledger::default();
    let customer = ledger
        .create_customer(
            &params(&[
                ("email", "ada@example.com"),
                ("name", "Ada"),
                ("metadata[user_id]", "user-1"),
            ]),
            NOW,
        )
        .unwrap();
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    assert!(customer_id.starts_with("cus_test_"), "{customer_id}");
    assert_eq!(customer["email"], "ada@example.com");
    assert_eq!(customer["metadata"]["user_id"], "user-1");
    assert_eq!(ledger.customer(&customer_id).unwrap(), customer);
    assert_eq!(ledger.customer("cus_unknown").unwrap_err().status, 404);
    assert_eq!(ledger.customers().len(), 1);

    let for_customer = with_params(session_params("1999"), &[("customer", &customer_id)]);
    let session = create(&mut ledger, &for_customer);
    assert_eq!(session["customer"], customer_id.as_str());
    assert_eq!(session["customer_email"], Value::Null);

    let unknown = with_params(session_params("1999"), &[("customer", "cus_unknown")]);
    assert_eq!(
        ledger
            .create_session(&unknown, NOW, "")
            .unwrap_err()
            .param
            .as_deref(),
        Some("customer")
    );
    let both = with_params(
        session_params("1999"),
        &[
            ("customer", &customer_id),
            ("customer_email", "ada@example.com"),
        ],
    );
    assert_eq!(
        ledger
            .create_session(&both, NOW, "")
            .unwrap_err()
            .param
            .as_deref(),
        Some("customer_email")
    );
    // Automatic tax needs the address Checkout collects saved to the customer.
    let taxed = with_params(
        for_customer.clone(),
        &[
            ("automatic_tax[enabled]", "true"),
            ("line_items[0][price_data][tax_behavior]", "exclusive"),
        ],
    );
    assert_eq!(
        ledger.create_session(&taxed, NOW, "").unwrap_err().code,
        Some("customer_tax_location_invalid")
    );
    let saving = with_params(taxed, &[("customer_update[address]", "auto")]);
    assert_eq!(
        create(&mut ledger, &saving)["customer"],
        customer_id.as_str()
    );
}

fn codes_allowed(amount: &str) -> Params {
    with_params(session_params(amount), &[("allow_promotion_codes", "true")])
}

#[test]
fn a_promotion_code_discounts_the_session_and_its_payment() {
    let mut ledger = Ledger::default();
    let id = id_of(&create(&mut ledger, &codes_allowed("2000")));
    // A declined attempt made a payment intent for the full price first.
    ledger
        .pay(&id, &PaymentMethod::Card("4000000000000002".into()), NOW)
        .unwrap();
    let session = ledger.apply_promotion_code(&id, " spring25", NOW).unwrap();
    assert_eq!(session["amount_subtotal"], 2000);
    assert_eq!(session["total_details"]["amount_discount"], 500);
    assert_eq!(session["amount_total"], 1500);
    assert_eq!(
        session["discounts"],
        json!([{"coupon": "sandbox_25_percent_off", "promotion_code": "promo_sandbox_spring25"}])
    );
    assert_eq!(
        ledger.pay(&id, &good_card(), NOW).unwrap(),
        PaymentOutcome::Paid
    );
    let charge = ledger
        .events()
        .iter()
        .find(|e| e["type"] == "charge.succeeded")
        .unwrap()["data"]["object"]
        .clone();
    assert_eq!(
        charge["amount"], 1500,
        "the payment intent was discounted too"
    );
    let completed = ledger.events().last().unwrap();
    assert_eq!(completed["type"], "checkout.session.completed");
    assert_eq!(completed["data"]["object"]["amount_total"], 1500);
    assert_eq!(
        completed["data"]["object"]["discounts"][0]["promotion_code"],
        "promo_sandbox_spring25"
    );
}

#[test]
fn a_code_is_refused_without_changing_anything() {
    let mut ledger = Ledger::default();
    let plain = id_of(&create(&mut ledger, &session_params("2000")));
    assert_eq!(
        ledger
            .apply_promotion_code(&plain, "SPRING25", NOW)
            .unwrap_err()
            .code,
        Some("promotion_codes_not_allowed")
    );
    let id = id_of(&create(&mut ledger, &codes_allowed("2000")));
    let before = ledger.session(&id).unwrap();
    assert_eq!(
        ledger
            .apply_promotion_code(&id, "SPRING2", NOW)
            .unwrap_err()
            .code,
        Some("promotion_code_invalid")
    );
    assert_eq!(ledger.session(&id).unwrap(), before);
    // 10.00 off 10.30 would leave 0.30, below the 0.50 minimum.
    let small = id_of(&create(&mut ledger, &codes_allowed("1030")));
    assert_eq!(
        ledger
            .apply_promotion_code(&small, "TENOFF", NOW)
            .unwrap_err()
            .code,
        Some("amount_too_small")
    );
    assert_eq!(ledger.session(&small).unwrap()["amount_total"], 1030);
    // A closed session takes no code.
    ledger.expire_session(&id, NOW).unwrap();
    assert_eq!(
        ledger
            .apply_promotion_code(&id, "SPRING25", NOW)
            .unwrap_err()
            .code,
        Some("checkout_session_not_open")
    );
    assert_eq!(types(&ledger), ["checkout.session.expired"]);
}

#[test]
fn a_later_code_replaces_the_earlier_one() {
    let mut ledger = Ledger::default();
    let id = id_of(&create(&mut ledger, &codes_allowed("2000")));
    ledger.apply_promotion_code(&id, "SPRING25", NOW).unwrap();
    let session = ledger.apply_promotion_code(&id, "TENOFF", NOW).unwrap();
    assert_eq!(session["total_details"]["amount_discount"], 1000);
    assert_eq!(session["amount_total"], 1000);
    assert_eq!(session["discounts"].as_array().unwrap().len(), 1);
}

#[test]
fn a_free_session_completes_without_a_payment_or_charge() {
    let mut ledger = Ledger::default();
    let id = id_of(&create(&mut ledger, &codes_allowed("2000")));
    ledger
        .pay(&id, &PaymentMethod::Card("4000000000000002".into()), NOW)
        .unwrap();
    let earlier_intent = ledger.session(&id).unwrap()["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = ledger.apply_promotion_code(&id, "freecourse", NOW).unwrap();
    assert_eq!(session["amount_total"], 0);
    assert_eq!(
        ledger.pay(&id, &PaymentMethod::BankDebit, NOW).unwrap(),
        PaymentOutcome::NoPaymentRequired
    );
    let session = ledger.session(&id).unwrap();
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "no_payment_required");
    assert_eq!(session["payment_intent"], Value::Null);
    assert_eq!(
        ledger.payment_intents[&earlier_intent]["status"],
        "canceled"
    );
    assert_eq!(
        types(&ledger),
        ["charge.failed", "checkout.session.completed"]
    );
    let completed = &ledger.events()[1]["data"]["object"];
    assert_eq!(completed["payment_status"], "no_payment_required");
    assert_eq!(completed["payment_intent"], Value::Null);
    assert_eq!(completed["total_details"]["amount_discount"], 2000);
}

#[test]
fn a_successful_charge_links_its_receipt() {
    let mut ledger = Ledger::default();
    let id = id_of(&create(&mut ledger, &session_params("1999")));
    ledger.pay(&id, &good_card(), NOW).unwrap();
    let charge = &ledger.events()[0]["data"]["object"];
    let url = charge["receipt_url"].as_str().unwrap();
    let token = url
        .strip_prefix("http://sandbox/receipts/payment/")
        .unwrap();
    assert_eq!(token.len(), 64);
    let (receipted, name) = ledger.receipt(token).unwrap();
    assert_eq!(receipted["id"], charge["id"]);
    assert_eq!(name, "Rust for LMS");
    assert!(ledger.receipt("nope").is_none());
    // A declined attempt has no receipt.
    let mut declined = Ledger::default();
    let id = id_of(&create(&mut declined, &session_params("1999")));
    declined
        .pay(&id, &PaymentMethod::Card("4000000000000002".into()), NOW)
        .unwrap();
    assert_eq!(
        declined.events()[0]["data"]["object"]["receipt_url"],
        Value::Null
    );
}

#[test]
fn a_presented_session_carries_its_currency_conversion() {
    let mut ledger = Ledger::new(LedgerSettings {
        tax_rate_bps: 0,
        presentment: Some(Presentment::parse("eur", "0.925").unwrap()),
    });
    let session = create(&mut ledger, &codes_allowed("2000"));
    assert_eq!(session["currency"], "eur");
    assert_eq!(session["amount_subtotal"], 1850);
    assert_eq!(session["amount_total"], 1850);
    assert_eq!(
        session["currency_conversion"],
        json!({"amount_subtotal": 2000, "amount_total": 2000, "fx_rate": "0.925", "source_currency": "usd"})
    );
    let id = id_of(&session);
    let discounted = ledger.apply_promotion_code(&id, "SPRING25", NOW).unwrap();
    assert_eq!(discounted["amount_total"], 1387, "1850 - round(462.5)");
    assert_eq!(discounted["currency_conversion"]["amount_total"], 1500);
    ledger.pay(&id, &good_card(), NOW).unwrap();
    let charge = &ledger.events()[0]["data"]["object"];
    assert_eq!(
        (&charge["amount"], &charge["currency"]),
        (&json!(1387), &json!("eur"))
    );

    // Adaptive Pricing turned off for the session: the price's own currency.
    let off = create(
        &mut ledger,
        &with_params(
            session_params("2000"),
            &[("adaptive_pricing[enabled]", "false")],
        ),
    );
    assert_eq!(off["currency"], "usd");
    assert_eq!(off["currency_conversion"], Value::Null);
    assert_eq!(off["adaptive_pricing"]["enabled"], false);
}
