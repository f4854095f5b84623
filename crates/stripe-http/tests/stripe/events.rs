//! Event mapping, from Stripe's own example objects wrapped in the event envelope.

use crate::support::*;
use lms_domain::{Bill, Conversion, Currency, DisputeOutcome, Money, PaymentDetails, PaymentFact};
use lms_ports::{
    EventEnvelope, GatewayError, GatewayEvent, PaymentGateway, PurchaseLocator, WebhookEvent,
    WebhookRejection,
};
use lms_stripe_http::session_from_json;
use serde_json::{json, Value};

const PI: &str = "pi_1PgafyB7WZ01zgkWSjxsAJo3";
const CS: &str = "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY";

fn relevant(event_type: &str, object: Value) -> GatewayEvent {
    let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let body = event("evt_1", event_type, object, false);
    match deliver(&gateway, &body) {
        Ok(WebhookEvent::Relevant(event)) => {
            assert_eq!(event.envelope.id, "evt_1");
            assert_eq!(event.envelope.event_type, event_type);
            assert!(!event.envelope.livemode);
            assert_eq!(event.envelope.created.unix_timestamp(), NOW - 5);
            assert_eq!(
                event.envelope.payload, body,
                "the raw body is kept verbatim"
            );
            event
        }
        other => panic!("{event_type}: expected a relevant event, got {other:?}"),
    }
}

/// A payment as these events report it: at the event's `created`.
fn paid(amount: Money) -> PaymentFact {
    PaymentFact::PaymentSucceeded {
        amount,
        at: Some(time::OffsetDateTime::from_unix_timestamp(NOW - 5).unwrap()),
    }
}

fn outcome(event_type: &str, object: Value) -> Result<WebhookEvent, WebhookRejection> {
    let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    deliver(&gateway, &event("evt_2", event_type, object, false))
}

/// Asserts that the event is authentic but ignored, its whole envelope kept for the inbox.
fn assert_ignored(event_type: &str, object: Value) {
    let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let body = event("evt_2", event_type, object, false);
    assert_eq!(
        deliver(&gateway, &body),
        Ok(WebhookEvent::Ignored(EventEnvelope {
            id: "evt_2".to_owned(),
            event_type: event_type.to_owned(),
            livemode: false,
            created: time::OffsetDateTime::from_unix_timestamp(NOW - 5).unwrap(),
            payload: body.clone(),
        })),
        "{event_type}"
    );
}

fn session_locator(purchase: u128) -> PurchaseLocator {
    PurchaseLocator {
        purchase_id: Some(purchase_id(purchase)),
        checkout_session_id: Some(CS.to_owned()),
        payment_intent_id: Some(PI.to_owned()),
    }
}

fn our_charge(fields: Value) -> Value {
    let base = with(
        fixture("charge"),
        json!({
            "amount": 1999,
            "amount_captured": 1999,
            "captured": true,
            "payment_intent": PI,
            "metadata": {"purchase_id": purchase_id(3).to_string()},
        }),
    );
    with(base, fields)
}

#[test]
fn completed_and_paid_or_async_succeeded_is_a_success_with_the_amount() {
    for event_type in [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    ] {
        let event = relevant(event_type, our_session(purchase_id(1), "complete", "paid"));
        assert_eq!(
            event.facts,
            vec![paid(usd(1999)), bill_of(usd(1999))],
            "{event_type}"
        );
        assert_eq!(event.locator, session_locator(1), "{event_type}");
    }
}

#[test]
fn completed_but_unpaid_is_processing() {
    let event = relevant(
        "checkout.session.completed",
        our_session(purchase_id(1), "complete", "unpaid"),
    );
    assert_eq!(
        event.facts,
        vec![PaymentFact::PaymentProcessing, bill_of(usd(1999))]
    );
}

#[test]
fn the_purchase_id_falls_back_to_metadata_and_garbage_is_not_an_id() {
    let mut session = our_session(purchase_id(5), "complete", "paid");
    session["client_reference_id"] = Value::Null;
    assert_eq!(
        relevant("checkout.session.completed", session.clone()).locator,
        session_locator(5)
    );
    session["client_reference_id"] = json!("not-a-uuid");
    session["metadata"] = json!({});
    let locator = relevant("checkout.session.completed", session).locator;
    assert_eq!(locator.purchase_id, None);
    assert_eq!(locator.checkout_session_id.as_deref(), Some(CS));
}

#[test]
fn an_expanded_payment_intent_still_yields_its_id() {
    let mut session = our_session(purchase_id(1), "complete", "paid");
    session["payment_intent"] = with(fixture("payment_intent"), json!({"status": "succeeded"}));
    assert_eq!(
        relevant("checkout.session.completed", session).locator,
        session_locator(1)
    );
}

#[test]
fn async_payment_failure_and_expiry() {
    let failed = relevant(
        "checkout.session.async_payment_failed",
        our_session(purchase_id(1), "complete", "unpaid"),
    );
    assert_eq!(
        failed.facts,
        vec![PaymentFact::AsyncPaymentFailed, bill_of(usd(1999))]
    );
    let mut expired_session = our_session(purchase_id(1), "expired", "unpaid");
    expired_session["payment_intent"] = Value::Null;
    let expired = relevant("checkout.session.expired", expired_session);
    assert_eq!(expired.facts, vec![PaymentFact::CheckoutExpired]);
    assert_eq!(expired.locator.payment_intent_id, None);
    assert_eq!(expired.locator.checkout_session_id.as_deref(), Some(CS));
}

#[test]
fn a_jpy_payment_keeps_its_zero_decimal_amount() {
    let session = with(
        our_session(purchase_id(1), "complete", "paid"),
        json!({"amount_total": 2500, "amount_subtotal": 2500, "currency": "jpy"}),
    );
    let event = relevant("checkout.session.completed", session);
    let jpy = Money::new(2500, Currency::parse("JPY").unwrap()).unwrap();
    assert_eq!(event.facts, vec![paid(jpy), bill_of(jpy)]);
}

#[test]
fn an_unsupported_currency_is_relevant_but_carries_no_money_fact() {
    let session = with(
        our_session(purchase_id(1), "complete", "paid"),
        json!({"currency": "xof"}),
    );
    let event = relevant("checkout.session.completed", session);
    assert!(event.facts.is_empty());
    assert_eq!(event.locator, session_locator(1));
    let charge = our_charge(json!({"currency": "zzz"}));
    assert!(relevant("charge.refunded", charge).facts.is_empty());
}

#[test]
fn a_paid_session_without_its_amount_is_an_invalid_payload() {
    let mut session = our_session(purchase_id(1), "complete", "paid");
    session["amount_total"] = Value::Null;
    assert!(matches!(
        outcome("checkout.session.completed", session),
        Err(WebhookRejection::Malformed(_))
    ));
    let mut session = our_session(purchase_id(1), "complete", "paid");
    session.as_object_mut().unwrap().remove("payment_status");
    assert!(matches!(
        outcome("checkout.session.completed", session),
        Err(WebhookRejection::Malformed(_))
    ));
    let mut session = our_session(purchase_id(1), "complete", "paid");
    session.as_object_mut().unwrap().remove("id");
    assert!(matches!(
        outcome("checkout.session.completed", session),
        Err(WebhookRejection::Malformed(_))
    ));
}

#[test]
fn charge_succeeded_uses_amount_captured_else_amount() {
    let event = relevant("charge.succeeded", our_charge(json!({})));
    assert_eq!(event.facts, vec![paid(usd(1999))]);
    assert_eq!(
        event.locator,
        PurchaseLocator {
            purchase_id: Some(purchase_id(3)),
            checkout_session_id: None,
            payment_intent_id: Some(PI.to_owned())
        }
    );
    let uncaptured = relevant(
        "charge.succeeded",
        our_charge(json!({"amount_captured": 0, "amount": 1500})),
    );
    assert_eq!(uncaptured.facts, vec![paid(usd(1500))]);
    let missing = our_charge(json!({}));
    let mut missing = missing;
    missing.as_object_mut().unwrap().remove("amount_captured");
    assert_eq!(
        relevant("charge.succeeded", missing).facts,
        vec![paid(usd(1999))]
    );
}

#[test]
fn charges_correlate_by_payment_intent_when_metadata_is_missing() {
    let event = relevant(
        "charge.failed",
        our_charge(json!({"metadata": {}, "status": "failed", "paid": false})),
    );
    assert_eq!(event.facts, vec![PaymentFact::PaymentAttemptFailed]);
    assert_eq!(
        event.locator,
        PurchaseLocator {
            purchase_id: None,
            checkout_session_id: None,
            payment_intent_id: Some(PI.to_owned())
        }
    );
}

#[test]
fn a_charge_with_nothing_to_correlate_is_not_ours() {
    // The fixture as Stripe publishes it: no metadata, no payment intent.
    assert_ignored("charge.succeeded", fixture("charge"));
}

#[test]
fn charge_refunded_reports_the_cumulative_total() {
    let charge = our_charge(json!({"amount_refunded": 700, "refunded": false}));
    let event = relevant("charge.refunded", charge);
    assert_eq!(event.facts, vec![PaymentFact::Refunded { total: usd(700) }]);
    assert_eq!(event.locator.purchase_id, Some(purchase_id(3)));
}

#[test]
fn disputes_open_and_close() {
    let dispute = |status: &str| {
        with(
            fixture("dispute"),
            json!({"status": status, "payment_intent": PI}),
        )
    };
    let opened = relevant("charge.dispute.created", dispute("needs_response"));
    assert_eq!(opened.facts, vec![PaymentFact::DisputeOpened]);
    assert_eq!(
        opened.locator,
        PurchaseLocator {
            purchase_id: None,
            checkout_session_id: None,
            payment_intent_id: Some(PI.to_owned())
        }
    );
    assert_eq!(
        relevant("charge.dispute.closed", dispute("won")).facts,
        vec![PaymentFact::DisputeClosed(DisputeOutcome::Won)]
    );
    assert_eq!(
        relevant("charge.dispute.closed", dispute("lost")).facts,
        vec![PaymentFact::DisputeClosed(DisputeOutcome::Lost)]
    );
    assert_ignored("charge.dispute.closed", dispute("warning_closed"));
}

#[test]
fn a_dispute_on_an_expanded_charge_correlates_through_it() {
    let dispute = with(
        fixture("dispute"),
        json!({"status": "lost", "charge": our_charge(json!({}))}),
    );
    let event = relevant("charge.dispute.closed", dispute);
    assert_eq!(
        event.locator,
        PurchaseLocator {
            purchase_id: Some(purchase_id(3)),
            checkout_session_id: None,
            payment_intent_id: Some(PI.to_owned())
        }
    );
    // The fixture as published: a charge id only and no payment intent: nothing to correlate.
    assert_ignored("charge.dispute.created", fixture("dispute"));
}

#[test]
fn other_event_types_are_ignored() {
    for (event_type, object) in [
        ("plan.created", fixture("event")["data"]["object"].clone()),
        ("payment_intent.succeeded", fixture("payment_intent")),
        ("refund.created", fixture("refund")),
        (
            "checkout.session.something_new",
            our_session(purchase_id(1), "open", "unpaid"),
        ),
    ] {
        assert_ignored(event_type, object);
    }
}

#[test]
fn the_raw_fixture_event_is_ignored_and_unknown_fields_are_tolerated() {
    let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let body = serde_json::to_string(&fixture("event")).unwrap();
    assert_eq!(
        deliver(&gateway, &body),
        Ok(WebhookEvent::Ignored(EventEnvelope {
            id: "evt_1Pgc76B7WZ01zgkWwyRHS12y".to_owned(),
            event_type: "plan.created".to_owned(),
            livemode: false,
            created: time::OffsetDateTime::from_unix_timestamp(1_234_567_890).unwrap(),
            payload: body.clone(),
        }))
    );
    let mut extra = our_session(purchase_id(1), "complete", "paid");
    extra["brand_new_field"] = json!({"nested": [1, 2, 3]});
    assert_eq!(relevant("checkout.session.completed", extra).facts.len(), 2);
}

#[test]
fn envelopes_missing_what_is_used_are_invalid() {
    let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let valid: Value = serde_json::from_str(&event(
        "evt_3",
        "checkout.session.completed",
        our_session(purchase_id(1), "complete", "paid"),
        false,
    ))
    .unwrap();
    for field in ["id", "type", "created", "livemode", "data"] {
        let mut broken = valid.clone();
        broken.as_object_mut().unwrap().remove(field);
        let body = serde_json::to_string(&broken).unwrap();
        assert!(
            matches!(
                deliver(&gateway, &body),
                Err(WebhookRejection::Malformed(_))
            ),
            "without {field}"
        );
    }
    for body in ["[]", "null", "42", r#"{"id": 1}"#] {
        assert!(
            matches!(deliver(&gateway, body), Err(WebhookRejection::Malformed(_))),
            "{body}"
        );
    }
}

#[test]
fn session_json_maps_to_the_port_session() {
    let body = serde_json::to_vec(&our_session(purchase_id(8), "open", "unpaid")).unwrap();
    let session = session_from_json(&body).unwrap();
    assert_eq!(session.id, CS);
    assert_eq!(session.purchase_id, Some(purchase_id(8)));
    assert_eq!(session.payment_intent_id.as_deref(), Some(PI));
    assert_eq!(session.metadata.len(), 3);
    assert_eq!(session.currency, Currency::USD);
    assert!(session.facts().is_empty());

    let expired = with(
        our_session(purchase_id(8), "expired", "unpaid"),
        json!({"url": null, "client_reference_id": "junk", "metadata": null}),
    );
    let session = session_from_json(&serde_json::to_vec(&expired).unwrap()).unwrap();
    assert_eq!(session.url, None);
    assert_eq!(session.purchase_id, None);
    assert!(session.metadata.is_empty());
    assert_eq!(session.facts(), vec![PaymentFact::CheckoutExpired]);

    // Stripe's published example has no amount or currency: not usable as one of our sessions.
    let raw = serde_json::to_vec(&fixture("checkout_session")).unwrap();
    assert!(matches!(
        session_from_json(&raw),
        Err(GatewayError::Unexpected(_))
    ));
    let odd_currency = serde_json::to_vec(&with(
        our_session(purchase_id(8), "open", "unpaid"),
        json!({"currency": "xxx"}),
    ))
    .unwrap();
    assert!(matches!(
        session_from_json(&odd_currency),
        Err(GatewayError::Unexpected(_))
    ));
    let odd_status = serde_json::to_vec(&with(
        our_session(purchase_id(8), "archived", "unpaid"),
        json!({}),
    ))
    .unwrap();
    assert!(matches!(
        session_from_json(&odd_status),
        Err(GatewayError::Unexpected(_))
    ));
}

#[test]
fn the_types_asked_for_are_the_types_acted_on() {
    assert_eq!(
        lms_stripe_http::relevant_event_types().collect::<Vec<_>>(),
        [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
            "charge.succeeded",
            "charge.failed",
            "charge.refunded",
            "charge.dispute.created",
            "charge.dispute.closed",
        ]
    );
    // Each of them, about one of our purchases, is acted on.
    let session = our_session(purchase_id(1), "complete", "paid");
    let dispute = with(
        fixture("dispute"),
        json!({"status": "won", "payment_intent": PI}),
    );
    for event_type in lms_stripe_http::relevant_event_types() {
        let object = match event_type.split('.').nth(1) {
            Some("session") => session.clone(),
            Some("dispute") => dispute.clone(),
            _ => our_charge(json!({"amount_refunded": 100})),
        };
        relevant(event_type, object);
    }
}

/// A gateway whose clock is a month past the events: no signature would still be fresh.
fn gateway_a_month_later(key: &str) -> lms_stripe_http::StripeGateway {
    let (gateway, clock) = webhook_gateway(WEBHOOK_SECRET, key);
    clock.set(NOW + 30 * 24 * 3600);
    gateway
}

#[test]
fn a_stored_event_decodes_as_its_verified_webhook_did_without_a_signature() {
    let (at_arrival, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let later = gateway_a_month_later(SECRET_KEY);
    for body in [
        event(
            "evt_paid",
            "checkout.session.completed",
            our_session(purchase_id(1), "complete", "paid"),
            false,
        ),
        event(
            "evt_other",
            "payment_intent.succeeded",
            fixture("payment_intent"),
            false,
        ),
        event(
            "evt_uncorrelated",
            "charge.succeeded",
            fixture("charge"),
            false,
        ),
    ] {
        let verified = deliver(&at_arrival, &body).unwrap();
        assert_eq!(
            later.decode_stored_event(body.as_bytes()),
            Ok(verified.clone())
        );
        assert_eq!(verified.envelope().payload, body);
    }
    // A paid session's facts, dated by the event, not by when it is decoded again.
    let body = event(
        "evt_paid",
        "checkout.session.completed",
        our_session(purchase_id(1), "complete", "paid"),
        false,
    );
    let Ok(WebhookEvent::Relevant(decoded)) = later.decode_stored_event(body.as_bytes()) else {
        panic!("a paid session is relevant");
    };
    assert_eq!(decoded.facts, vec![paid(usd(1999)), bill_of(usd(1999))]);
    assert_eq!(decoded.locator, session_locator(1));
}

#[test]
fn a_stored_event_of_the_other_mode_is_refused() {
    let object = our_session(purchase_id(1), "complete", "paid");
    let live = event(
        "evt_live",
        "checkout.session.completed",
        object.clone(),
        true,
    );
    let test = event("evt_test", "checkout.session.completed", object, false);
    assert_eq!(
        gateway_a_month_later(SECRET_KEY).decode_stored_event(live.as_bytes()),
        Err(WebhookRejection::WrongMode)
    );
    let live_gateway = gateway_a_month_later(LIVE_KEY);
    assert_eq!(
        live_gateway.decode_stored_event(test.as_bytes()),
        Err(WebhookRejection::WrongMode)
    );
    let Ok(WebhookEvent::Relevant(decoded)) = live_gateway.decode_stored_event(live.as_bytes())
    else {
        panic!("a live event decodes at a live deployment");
    };
    assert!(decoded.envelope.livemode);
}

#[test]
fn a_malformed_stored_event_is_refused() {
    let gateway = gateway_a_month_later(SECRET_KEY);
    let mut unpaid_amount = our_session(purchase_id(1), "complete", "paid");
    unpaid_amount["amount_total"] = Value::Null;
    let broken = event("evt_4", "checkout.session.completed", unpaid_amount, false);
    let not_utf8 = [b'{', 0xff, 0xfe, b'}'];
    for body in [
        b"".as_slice(),
        b"not json",
        b"{}",
        br#"{"id":"evt_5","type":"charge.succeeded","created":1,"livemode":false}"#,
        broken.as_bytes(),
        &not_utf8,
    ] {
        assert!(
            matches!(
                gateway.decode_stored_event(body),
                Err(WebhookRejection::Malformed(_))
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

fn money(minor: i64, code: &str) -> Money {
    Money::new(minor, Currency::parse(code).unwrap()).unwrap()
}

fn usd_bill(subtotal: i64, discount: i64, tax: i64, total: i64) -> PaymentFact {
    PaymentFact::Billed(
        Bill::new(usd(subtotal), usd(discount), usd(tax), usd(total), None).unwrap(),
    )
}

/// One of our sessions, 20.00 USD, with a 25% promotion code and 10% exclusive tax.
fn discounted_taxed_session(promotion_code: Value) -> Value {
    with(
        our_session(purchase_id(1), "complete", "paid"),
        json!({
            "amount_subtotal": 2000,
            "total_details": {"amount_discount": 500, "amount_shipping": 0, "amount_tax": 150},
            "amount_total": 1650,
            "discounts": [{"coupon": "Z4OV52SU", "promotion_code": promotion_code}],
        }),
    )
}

#[test]
fn a_discounted_taxed_session_reports_its_bill_and_promotion_code() {
    let event = relevant(
        "checkout.session.completed",
        discounted_taxed_session(json!("promo_1QSpring25")),
    );
    assert_eq!(
        event.facts,
        vec![paid(usd(1650)), usd_bill(2000, 500, 150, 1650)]
    );
    assert_eq!(
        event.details,
        PaymentDetails {
            receipt_url: None,
            promotion_code: Some("promo_1QSpring25".to_owned()),
        }
    );
    // Expanded, the promotion code is an object whose id is the code's.
    let expanded = relevant(
        "checkout.session.async_payment_succeeded",
        discounted_taxed_session(json!({
            "id": "promo_1QSpring25",
            "object": "promotion_code",
            "code": "SPRING25",
            "active": true,
        })),
    );
    assert_eq!(
        expanded.details.promotion_code.as_deref(),
        Some("promo_1QSpring25")
    );
    assert_eq!(expanded.facts, event.facts);
    // A coupon applied without a code names none.
    let coupon_only = relevant(
        "checkout.session.completed",
        discounted_taxed_session(Value::Null),
    );
    assert_eq!(coupon_only.details, PaymentDetails::default());
}

#[test]
fn a_converted_session_bills_in_the_presented_currency_with_the_price_beside() {
    // Stripe's published session as it is, with its `total_details` and `currency_conversion`
    // (source: usd), presented in EUR; only what the fixture leaves null is filled in.
    let session = with(
        fixture("checkout_session"),
        json!({
            "status": "complete",
            "payment_status": "paid",
            "currency": "eur",
            "amount_subtotal": 1_431_000_000,
            "amount_total": 1_028_000_000,
            "client_reference_id": purchase_id(1).to_string(),
        }),
    );
    assert_eq!(
        session["currency_conversion"],
        json!({"amount_subtotal": 1_555_417_355_i64, "amount_total": 1_117_121_693_i64, "fx_rate": "291452898", "source_currency": "usd"})
    );
    let event = relevant("checkout.session.completed", session);
    let bill = Bill::new(
        money(1_431_000_000, "EUR"),
        money(406_046_392, "EUR"),
        money(1_424_534_716, "EUR"),
        money(1_028_000_000, "EUR"),
        Some(Conversion::new(usd(1_555_417_355), usd(1_117_121_693)).unwrap()),
    )
    .unwrap();
    assert_eq!(
        event.facts,
        vec![paid(money(1_028_000_000, "EUR")), PaymentFact::Billed(bill)]
    );
    assert_eq!(event.locator, session_locator(1));
}

#[test]
fn a_session_made_free_by_a_code_is_a_payment_of_nothing_with_its_bill() {
    let session = with(
        our_session(purchase_id(1), "complete", "no_payment_required"),
        json!({
            "amount_subtotal": 2000,
            "total_details": {"amount_discount": 2000, "amount_shipping": 0, "amount_tax": 0},
            "amount_total": 0,
            "payment_intent": null,
            "discounts": [{"coupon": "FREE", "promotion_code": "promo_1QFree"}],
        }),
    );
    let event = relevant("checkout.session.completed", session);
    assert_eq!(event.facts, vec![paid(usd(0)), usd_bill(2000, 2000, 0, 0)]);
    assert_eq!(event.locator.payment_intent_id, None);
    assert_eq!(
        event.details.promotion_code.as_deref(),
        Some("promo_1QFree")
    );
}

#[test]
fn a_bill_that_cannot_be_represented_is_left_out_and_the_payment_kept() {
    let base = our_session(purchase_id(1), "complete", "paid");
    let mut without_details = base.clone();
    without_details
        .as_object_mut()
        .unwrap()
        .remove("total_details");
    let mut without_subtotal = base.clone();
    without_subtotal["amount_subtotal"] = Value::Null;
    for (what, session) in [
        (
            "an unsupported source currency",
            with(
                base.clone(),
                json!({"currency_conversion": {"amount_subtotal": 1_000_000, "amount_total": 1_000_000, "fx_rate": "0.001", "source_currency": "xof"}}),
            ),
        ),
        (
            "a conversion without its currency",
            with(
                base.clone(),
                json!({"currency_conversion": {"amount_subtotal": 1999, "amount_total": 1999}}),
            ),
        ),
        (
            "a negative tax",
            with(
                base.clone(),
                json!({"total_details": {"amount_discount": 0, "amount_tax": -1}}),
            ),
        ),
        ("no total_details", without_details),
        ("no amount_subtotal", without_subtotal),
    ] {
        let event = relevant("checkout.session.completed", session);
        assert_eq!(event.facts, vec![paid(usd(1999))], "{what}");
    }
}

#[test]
fn an_expired_session_bills_nothing_but_names_its_code() {
    let session = with(
        our_session(purchase_id(1), "expired", "unpaid"),
        json!({"discounts": [{"promotion_code": "promo_1QSpring25"}]}),
    );
    let event = relevant("checkout.session.expired", session);
    assert_eq!(event.facts, vec![PaymentFact::CheckoutExpired]);
    assert_eq!(
        event.details.promotion_code.as_deref(),
        Some("promo_1QSpring25")
    );
}

#[test]
fn a_charge_names_its_receipt_page() {
    let receipt = fixture("charge")["receipt_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(receipt.starts_with("https://"), "the fixture has one");
    for event_type in ["charge.succeeded", "charge.refunded"] {
        let event = relevant(event_type, our_charge(json!({"amount_refunded": 100})));
        assert_eq!(
            event.details,
            PaymentDetails {
                receipt_url: Some(receipt.clone()),
                promotion_code: None,
            },
            "{event_type}"
        );
    }
    let failed = relevant("charge.failed", our_charge(json!({"status": "failed"})));
    assert_eq!(failed.details, PaymentDetails::default());
    let without = relevant("charge.succeeded", our_charge(json!({"receipt_url": null})));
    assert_eq!(without.details, PaymentDetails::default());
}

#[test]
fn a_retrieved_session_carries_its_bill() {
    let open = session_from_json(
        &serde_json::to_vec(&our_session(purchase_id(8), "open", "unpaid")).unwrap(),
    )
    .unwrap();
    assert_eq!(open.bill, Some(Bill::of_price(usd(1999))));
    assert!(open.facts().is_empty(), "an open session proves nothing");

    let discounted = session_from_json(
        &serde_json::to_vec(&discounted_taxed_session(json!("promo_1"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        discounted.facts(),
        vec![
            PaymentFact::PaymentSucceeded {
                amount: usd(1650),
                at: None
            },
            usd_bill(2000, 500, 150, 1650),
        ]
    );
    let converted = with(
        our_session(purchase_id(8), "open", "unpaid"),
        json!({
            "currency": "eur",
            "amount_subtotal": 1850,
            "amount_total": 1850,
            "currency_conversion": {"amount_subtotal": 1999, "amount_total": 1999, "fx_rate": "0.925", "source_currency": "usd"},
        }),
    );
    let converted = session_from_json(&serde_json::to_vec(&converted).unwrap()).unwrap();
    let bill = converted.bill.unwrap();
    assert_eq!(bill.currency().code(), "EUR");
    assert_eq!(bill.list_price(), usd(1999));
    assert!(bill.bills_price(usd(1999)));

    let unrepresentable = with(
        our_session(purchase_id(8), "open", "unpaid"),
        json!({"total_details": null}),
    );
    let session = session_from_json(&serde_json::to_vec(&unrepresentable).unwrap()).unwrap();
    assert_eq!(session.bill, None, "the session is kept without a bill");
}
