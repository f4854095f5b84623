use crate::api::helpers::{Checkout, TestApp};
use lms_domain::PurchaseStatus;
use serde_json::json;

async fn pending_purchase(app: &TestApp) -> (String, Checkout, crate::api::helpers::TestUser) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    let checkout = app.checkout(&student, &course_id).await;
    (course_id, checkout, student)
}

async fn tampered_missing_or_garbage_signatures_are_400_and_write_nothing(app: TestApp) {
    let (course_id, checkout, student) = pending_purchase(&app).await;
    let before = app.purchase(&checkout.purchase_id).await;
    let (body, signature) = app.paid_event("evt_tampered", &checkout);

    let mut tampered = body.clone();
    let text = String::from_utf8(tampered.clone())
        .unwrap()
        .replace("1999", "2999");
    tampered = text.into_bytes();
    let cases: Vec<(Vec<u8>, Option<String>)> = vec![
        (tampered, Some(signature.clone())),
        (body.clone(), None),
        (body.clone(), Some("t=1,v1=deadbeef".to_owned())),
        (body.clone(), Some(String::new())),
        (b"not json".to_vec(), Some(signature.clone())),
    ];
    for (payload, sig) in cases {
        let resp = app.webhook(payload, sig.as_deref()).await;
        resp.assert_error(400, "INVALID_WEBHOOK");
        assert!(
            resp.json["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("signature")
                || resp.json["message"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains("event"),
            "{}",
            resp.text
        );
    }
    assert_eq!(app.purchase(&checkout.purchase_id).await, before);
    if let Some(store) = &app.memory {
        assert!(store.recorded_event_ids().is_empty());
    }
    assert_eq!(
        app.status_of(&student, &course_id).await.json["data"]["purchaseStatus"],
        "pending"
    );
    // The genuine one still works afterwards.
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    assert_eq!(
        app.status_of(&student, &course_id).await.json["data"]["isPurchased"],
        true
    );
}

async fn duplicates_are_acknowledged_once_applied_once(app: TestApp) {
    let (_, checkout, _) = pending_purchase(&app).await;
    let (body, signature) = app.paid_event("evt_dup", &checkout);
    for _ in 0..3 {
        let resp = app.webhook(body.clone(), Some(&signature)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json, json!({"received": true}));
    }
    assert_eq!(
        app.purchase(&checkout.purchase_id).await.status(),
        PurchaseStatus::Completed
    );
    if let Some(store) = &app.memory {
        assert_eq!(
            store
                .recorded_event_ids()
                .iter()
                .filter(|id| *id == "evt_dup")
                .count(),
            1
        );
    }
}

async fn a_refund_arriving_before_the_payment_still_ends_refunded(app: TestApp) {
    let (course_id, checkout, student) = pending_purchase(&app).await;
    let (refund, refund_sig) = app.refunded_event("evt_r", &checkout, 1999);
    let (paid, paid_sig) = app.paid_event("evt_p", &checkout);
    assert_eq!(app.webhook(refund, Some(&refund_sig)).await.status, 200);
    assert_eq!(app.webhook(paid, Some(&paid_sig)).await.status, 200);
    let status = app.status_of(&student, &course_id).await;
    assert_eq!(
        status.json["data"]["purchaseStatus"], "refunded",
        "{}",
        status.text
    );
    assert_eq!(status.json["data"]["isPurchased"], false);
}

async fn events_for_unknown_purchases_and_ignored_types_are_acknowledged(app: TestApp) {
    let (_, checkout, _) = pending_purchase(&app).await;
    let stranger = Checkout {
        purchase_id: uuid::Uuid::new_v4().to_string(),
        session_id: "cs_unknown".to_owned(),
        ..checkout.clone()
    };
    let (body, signature) = app.paid_event("evt_stranger", &stranger);
    let resp = app.webhook(body, Some(&signature)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json, json!({"received": true}));

    let (body, signature) = app.event("evt_ignored", "customer.created", &checkout, &[]);
    let resp = app.webhook(body, Some(&signature)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(
        app.purchase(&checkout.purchase_id).await.status(),
        PurchaseStatus::Pending
    );
}

async fn a_storage_failure_is_5xx_so_the_gateway_retries(app: TestApp) {
    let (_, checkout, _) = pending_purchase(&app).await;
    let (body, signature) = app.paid_event("evt_retry", &checkout);
    if !app.break_store() {
        return;
    }
    let resp = app.webhook(body.clone(), Some(&signature)).await;
    assert!(resp.status >= 500, "{}", resp.text);
    assert_eq!(resp.json["status"], "error");
    assert!(
        !resp.text.to_lowercase().contains("storage"),
        "{}",
        resp.text
    );
    app.memory.as_ref().unwrap().set_unavailable(false);
    // The retry is applied.
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    assert_eq!(
        app.purchase(&checkout.purchase_id).await.status(),
        PurchaseStatus::Completed
    );
}

async fn webhook_bodies_over_256_kib_are_413_and_json_routes_are_not_in_front(app: TestApp) {
    let big = vec![b' '; 300 * 1024];
    app.webhook(big, Some("t=1,v1=00"))
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    // Just under 256 KiB is read and verified (the JSON routes' smaller limit is not in front).
    let under = vec![b' '; 256 * 1024 - 1];
    app.webhook(under, Some("t=1,v1=00"))
        .await
        .assert_error(400, "INVALID_WEBHOOK");
    // Not JSON-parsed before verification: a text/plain body still reaches the verifier.
    let resp = app
        .send(
            app.client
                .post(app.url("/api/v1/payments/webhook"))
                .header("content-type", "text/plain")
                .header("Stripe-Signature", "t=1,v1=00")
                .body("hello"),
        )
        .await;
    resp.assert_error(400, "INVALID_WEBHOOK");
}

crate::per_wiring!(
    tampered_missing_or_garbage_signatures_are_400_and_write_nothing,
    duplicates_are_acknowledged_once_applied_once,
    a_refund_arriving_before_the_payment_still_ends_refunded,
    events_for_unknown_purchases_and_ignored_types_are_acknowledged,
    a_storage_failure_is_5xx_so_the_gateway_retries,
    webhook_bodies_over_256_kib_are_413_and_json_routes_are_not_in_front
);

/// Only the Stripe adapter checks the signature's timestamp (the fake gateway signs no time),
/// so this runs on the PostgreSQL + Stripe wiring alone.
#[tokio::test]
async fn a_stale_or_future_signature_is_400_and_writes_nothing() {
    let app =
        crate::api::helpers::spawn_app_with(crate::api::helpers::Wiring::PostgresStripe).await;
    let (course_id, checkout, student) = pending_purchase(&app).await;
    let before = app.purchase(&checkout.purchase_id).await;
    // Signed now, by the app's clock.
    let (body, signature) = app.paid_event("evt_stale", &checkout);
    for offset in [301, -301] {
        app.clock.advance(time::Duration::seconds(offset));
        let resp = app.webhook(body.clone(), Some(&signature)).await;
        resp.assert_error(400, "INVALID_WEBHOOK");
        assert!(
            resp.json["message"]
                .as_str()
                .unwrap()
                .contains("too old or too far in the future"),
            "{}",
            resp.text
        );
        app.clock.advance(time::Duration::seconds(-offset));
    }
    assert_eq!(app.purchase(&checkout.purchase_id).await, before);
    assert_eq!(
        app.status_of(&student, &course_id).await.json["data"]["purchaseStatus"],
        "pending"
    );
    // Back inside the tolerance, the very same delivery is accepted.
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    assert_eq!(
        app.status_of(&student, &course_id).await.json["data"]["purchaseStatus"],
        "completed"
    );
}
