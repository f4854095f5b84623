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
    let id = ledger
        .create_session(&session_params("1999"), NOW, "")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (ledger, id)
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
