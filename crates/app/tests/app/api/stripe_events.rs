//! Stripe webhook events about the sandbox's own objects (its session, its charge), as the
//! sandbox would emit them, signed at the test's time so the adapter's tolerance check runs on
//! the test clock. The suite sends them itself, so it decides the order and the duplicates.

use crate::api::helpers::Checkout;
use crate::api::wiring::WEBHOOK_SECRET;
use lms_domain::{Bill, Money, PaymentFact};
use lms_stripe_sandbox::{PaymentMethod, Sandbox};
use serde_json::{json, Value};

/// A card the sandbox accepts.
pub const GOOD_CARD: &str = "4242424242424242";

/// The customer pays the session by card, if it is still open (else nothing changes).
pub fn pay(sandbox: &Sandbox, session_id: &str) -> bool {
    sandbox
        .pay(session_id, &PaymentMethod::Card(GOOD_CARD.to_owned()))
        .is_ok()
}

/// The sandbox's session, or, for a session it never created, one shaped like its own.
fn session_of(sandbox: &Sandbox, checkout: &Checkout, now: i64) -> Value {
    sandbox.session(&checkout.session_id).unwrap_or_else(|_| {
        json!({
            "id": checkout.session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": checkout.amount_cents,
            "currency": checkout.currency.to_ascii_lowercase(),
            "client_reference_id": checkout.purchase_id,
            "metadata": {"purchase_id": checkout.purchase_id},
            "payment_intent": null,
            "expires_at": now + 3600,
            "url": null,
            "livemode": false,
        })
    })
}

/// The sandbox's latest charge of the session's payment intent, as its last event showed it.
fn charge_of(sandbox: &Sandbox, session: &Value) -> Value {
    let payment_intent = &session["payment_intent"];
    sandbox
        .events()
        .into_iter()
        .rev()
        .map(|event| event["data"]["object"].clone())
        .find(|object| {
            object["object"] == "charge"
                && !payment_intent.is_null()
                && object["payment_intent"] == *payment_intent
        })
        .unwrap_or_else(|| panic!("the sandbox holds no charge for session {session}"))
}

/// Marks a session completed and paid, as `checkout.session.completed` shows it.
fn complete_paid(session: &mut Value) {
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["url"] = Value::Null;
}

/// Writes a bill into a session as Stripe shapes it: the presentment amounts in `currency`,
/// `amount_subtotal`, `amount_total` and `total_details`, and `currency_conversion` with the
/// amounts in the price's currency when presented in another one.
pub fn bill_into(session: &mut Value, bill: &Bill) {
    let lower = |money: Money| money.currency().code().to_ascii_lowercase();
    session["currency"] = json!(lower(bill.total()));
    session["amount_subtotal"] = json!(bill.subtotal().minor());
    session["amount_total"] = json!(bill.total().minor());
    session["total_details"] = json!({
        "amount_discount": bill.discount().minor(),
        "amount_shipping": 0,
        "amount_tax": bill.tax().minor(),
    });
    session["currency_conversion"] = match bill.conversion() {
        Some(conversion) => json!({
            "amount_subtotal": conversion.subtotal.minor(),
            "amount_total": conversion.total.minor(),
            "fx_rate": "1",
            "source_currency": lower(conversion.total),
        }),
        None => Value::Null,
    };
}

/// An event of `event_type` carrying `facts` about the checkout's purchase, and its
/// `Stripe-Signature` header. Facts that need a payment pay the session first: at Stripe a
/// charge (and a refund of it) exists only once the customer has paid.
pub fn signed_event(
    sandbox: &Sandbox,
    event_id: &str,
    event_type: &str,
    checkout: &Checkout,
    facts: &[PaymentFact],
    now: i64,
) -> (Vec<u8>, String) {
    let object = match facts {
        [PaymentFact::PaymentSucceeded { amount, .. }] if event_type.starts_with("charge.") => {
            pay(sandbox, &checkout.session_id);
            let mut charge = charge_of(sandbox, &session_of(sandbox, checkout, now));
            charge["amount"] = json!(amount.minor());
            charge["amount_captured"] = json!(amount.minor());
            charge["status"] = json!("succeeded");
            charge
        }
        [PaymentFact::PaymentSucceeded { amount, .. }] => {
            pay(sandbox, &checkout.session_id);
            let mut session = session_of(sandbox, checkout, now);
            if session["amount_total"] != json!(amount.minor()) {
                // A session charging another amount than it was created for bills that
                // amount: Stripe's total is always its subtotal less discount plus tax.
                bill_into(&mut session, &Bill::of_price(*amount));
            }
            complete_paid(&mut session);
            session
        }
        [PaymentFact::PaymentSucceeded { amount, .. }, PaymentFact::Billed(bill)] => {
            assert_eq!(*amount, bill.total(), "a session charges its bill's total");
            pay(sandbox, &checkout.session_id);
            let mut session = session_of(sandbox, checkout, now);
            bill_into(&mut session, bill);
            complete_paid(&mut session);
            session
        }
        [PaymentFact::PaymentProcessing] => {
            // A bank debit: checkout completes unpaid and settles later.
            let _ = sandbox.pay(&checkout.session_id, &PaymentMethod::BankDebit);
            let mut session = session_of(sandbox, checkout, now);
            session["status"] = json!("complete");
            session["payment_status"] = json!("unpaid");
            session["url"] = Value::Null;
            session
        }
        [PaymentFact::CheckoutExpired] => {
            let mut session = session_of(sandbox, checkout, now);
            session["status"] = json!("expired");
            session["url"] = Value::Null;
            session["payment_intent"] = Value::Null;
            session
        }
        [PaymentFact::Refunded { total }] => {
            pay(sandbox, &checkout.session_id);
            let mut charge = charge_of(sandbox, &session_of(sandbox, checkout, now));
            let captured = charge["amount_captured"].as_i64().unwrap();
            charge["amount_refunded"] = json!(total.minor());
            charge["refunded"] = json!(total.minor() >= captured);
            charge
        }
        [] => json!({"id": "cus_123", "object": "customer"}),
        other => panic!("no Stripe event shape for {other:?}"),
    };
    let event = json!({
        "id": event_id,
        "object": "event",
        "api_version": lms_stripe_sandbox::API_VERSION,
        "created": now,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": event_type,
        "data": {"object": object},
    });
    let body = serde_json::to_vec(&event).unwrap();
    let signature =
        lms_stripe_sandbox::signing::signature_header(&body, now, &[WEBHOOK_SECRET.to_owned()]);
    (body, signature)
}

/// The sandbox's own events about a session the customer completed, in the order it emitted
/// them: `checkout.session.completed`, then its charge's `charge.succeeded` if one was made.
pub fn events_about(sandbox: &Sandbox, session_id: &str) -> Vec<Value> {
    let session = sandbox.session(session_id).unwrap();
    let intent = &session["payment_intent"];
    let completed = sandbox
        .events_of_type("checkout.session.completed")
        .into_iter()
        .rfind(|event| event["data"]["object"]["id"] == session_id)
        .unwrap_or_else(|| panic!("the sandbox did not complete {session_id}"));
    let mut events = vec![completed];
    if !intent.is_null() {
        events.extend(
            sandbox
                .events_of_type("charge.succeeded")
                .into_iter()
                .rfind(|event| event["data"]["object"]["payment_intent"] == *intent),
        );
    }
    events
}

/// A sandbox event signed at `now` (the test's clock), as if delivered then.
pub fn resigned(event: &Value, now: i64) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(event).unwrap();
    let signature =
        lms_stripe_sandbox::signing::signature_header(&body, now, &[WEBHOOK_SECRET.to_owned()]);
    (body, signature)
}
