use crate::api::helpers::{Checkout, Outage, TestApp};
use lms_domain::PurchaseStatus;
use serde_json::json;

async fn end_to_end_purchase_refund_and_relock(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;

    // Checkout: 201 with the seed shape.
    let resp = app.checkout_raw(&student, &course_id).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    assert_eq!(
        resp.json["message"],
        "Stripe checkout initiated successfully."
    );
    let session = &resp.json["data"]["session"];
    assert!(
        session["url"].as_str().unwrap().starts_with("https://"),
        "{session}"
    );
    assert_eq!(session["status"], "open");
    assert_eq!(session["payment_status"], "unpaid");
    assert_eq!(session["amount_total"], 1999);
    assert_eq!(session["currency"], "usd");
    assert!(
        session["expires_at"].as_i64().unwrap() > time::OffsetDateTime::now_utc().unix_timestamp()
    );
    assert!(session["metadata"].is_object());
    let checkout = Checkout {
        purchase_id: session["client_reference_id"].as_str().unwrap().to_owned(),
        session_id: session["id"].as_str().unwrap().to_owned(),
        url: session["url"].as_str().unwrap().to_owned(),
        amount_cents: 1999,
        currency: "usd".to_owned(),
    };

    let pending = app.status_of(&student, &course_id).await;
    assert_eq!(pending.status, 200, "{}", pending.text);
    assert_eq!(pending.json["data"]["purchaseStatus"], "pending");
    assert_eq!(pending.json["data"]["isPurchased"], false);

    // The paid webhook unlocks the course.
    let (body, signature) = app.paid_event("evt_paid_1", &checkout);
    let resp = app.webhook(body, Some(&signature)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json, json!({"received": true}));

    let done = app.status_of(&student, &course_id).await;
    assert_eq!(done.json["success"], true);
    assert_eq!(done.json["data"]["purchaseStatus"], "completed");
    assert_eq!(done.json["data"]["isPurchased"], true);
    assert_eq!(done.json["data"]["course"]["id"], course_id.as_str());
    assert_eq!(
        app.purchase(&checkout.purchase_id).await.status(),
        PurchaseStatus::Completed
    );

    let listed = app
        .get("/api/v1/payments/purchased-courses", Some(&student.token))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.json["data"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], course_id.as_str());
    assert_eq!(items[0]["purchaseId"], checkout.purchase_id.as_str());
    assert_eq!(items[0]["amountCents"], 1999);
    assert_eq!(items[0]["currency"], "USD");
    assert!(items[0]["purchasedAt"].is_string());

    let profile = app.get("/api/v1/user/profile", Some(&student.token)).await;
    let enrolled = profile.json["user"]["enrolledCourses"].as_array().unwrap();
    assert_eq!(enrolled.len(), 1, "{}", profile.text);
    assert_eq!(enrolled[0]["course"]["id"], course_id.as_str());
    assert!(enrolled[0]["enrolledAt"].is_string());

    // Buying again is refused.
    app.checkout_raw(&student, &course_id)
        .await
        .assert_error(409, "ALREADY_PURCHASED");

    // The instructor refunds: 202 with the purchase; it turns refunded when the gateway confirms.
    let refund_pending = app.set_refund_pending();
    let refund_path = format!("/api/v1/payments/purchases/{}/refund", checkout.purchase_id);
    let refund = app
        .post(
            &refund_path,
            Some(&instructor.token),
            &json!({"reason": "requested_by_customer"}),
        )
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);
    assert_eq!(refund.json["success"], true);
    assert_eq!(
        refund.json["data"]["purchase"]["id"],
        checkout.purchase_id.as_str()
    );
    assert_eq!(refund.json["data"]["purchase"]["amountCents"], 1999);
    assert_eq!(app.gateway_refunds(), vec![1999]);
    // A pending refund leaves the course unlocked; one the gateway confirmed at once (the
    // sandbox, as Stripe does for cards) locks it already.
    assert_eq!(
        app.status_of(&student, &course_id).await.json["data"]["purchaseStatus"],
        if refund_pending {
            "completed"
        } else {
            "refunded"
        }
    );

    // The refund webhook locks the course (again, or for the first time).
    let (body, signature) = app.refunded_event("evt_refund_1", &checkout, 1999);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    let refunded = app.status_of(&student, &course_id).await;
    assert_eq!(refunded.json["data"]["purchaseStatus"], "refunded");
    assert_eq!(refunded.json["data"]["isPurchased"], false);
    let listed = app
        .get("/api/v1/payments/purchased-courses", Some(&student.token))
        .await;
    assert_eq!(listed.json["data"], json!([]));
}

async fn a_charge_succeeded_alone_unlocks_the_course(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 2500).await;
    let checkout = app.checkout(&student, &course_id).await;
    let (body, signature) = app.charge_succeeded_event("evt_charge_ok", &checkout);
    let resp = app.webhook(body, Some(&signature)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json, json!({"received": true}));

    let status = app.status_of(&student, &course_id).await;
    assert_eq!(
        status.json["data"]["purchaseStatus"], "completed",
        "{}",
        status.text
    );
    assert_eq!(status.json["data"]["isPurchased"], true);
    let listed = app
        .get("/api/v1/payments/purchased-courses", Some(&student.token))
        .await;
    assert_eq!(
        listed.json["data"][0]["purchaseId"],
        checkout.purchase_id.as_str()
    );
    assert_eq!(listed.json["data"][0]["amountCents"], 2500);
    let profile = app.get("/api/v1/user/profile", Some(&student.token)).await;
    assert_eq!(
        profile.json["user"]["enrolledCourses"][0]["course"]["id"],
        course_id.as_str(),
        "{}",
        profile.text
    );
}

async fn checkout_guards(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;

    app.post(
        "/api/v1/payments/create-checkout-session",
        None,
        &json!({"courseId": uuid::Uuid::new_v4()}),
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    app.checkout_raw(&student, &uuid::Uuid::new_v4().to_string())
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    let draft = app.create_course(&instructor, 1999).await;
    app.checkout_raw(&student, draft["id"].as_str().unwrap())
        .await
        .assert_error(404, "COURSE_NOT_FOUND");
    let bad = app
        .post(
            "/api/v1/payments/create-checkout-session",
            Some(&student.token),
            &json!({"courseId": "nope"}),
        )
        .await;
    assert!(
        bad.status == 400 || bad.status == 404 || bad.status == 422,
        "{}",
        bad.text
    );

    let course_id = app.published_course(&instructor, 1999).await;
    app.checkout_raw(&instructor, &course_id)
        .await
        .assert_error(409, "OWN_COURSE");

    // An open session is handed out again instead of a second one.
    let first = app.checkout(&student, &course_id).await;
    let again = app.checkout_raw(&student, &course_id).await;
    // 201 like a new one, as the original backend answered.
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(
        again.json["message"],
        "Stripe checkout initiated successfully."
    );
    assert_eq!(
        again.json["data"]["session"]["id"],
        first.session_id.as_str()
    );
    assert_eq!(again.json["data"]["session"]["url"], first.url.as_str());

    // A payment that is settling blocks a new checkout.
    let (body, signature) = app.processing_event("evt_processing", &first);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    app.checkout_raw(&student, &course_id)
        .await
        .assert_error(409, "PAYMENT_IN_PROGRESS");
}

async fn an_expired_session_shows_failed_and_allows_a_new_checkout(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    let first = app.checkout(&student, &course_id).await;
    let (body, signature) = app.expired_event("evt_expired", &first);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    let status = app.status_of(&student, &course_id).await;
    assert_eq!(status.json["data"]["purchaseStatus"], "failed");
    assert_eq!(status.json["data"]["isPurchased"], false);
    let second = app.checkout_raw(&student, &course_id).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_ne!(
        second.json["data"]["session"]["id"],
        first.session_id.as_str()
    );
}

async fn gateway_failures_are_5xx_with_a_generic_body(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    app.fail_gateway_next(1, Outage::Unavailable);
    let resp = app.checkout_raw(&student, &course_id).await;
    assert!(resp.status == 502 || resp.status == 503, "{}", resp.text);
    assert_eq!(resp.json["status"], "error");
    assert!(
        !resp.text.contains("10.0.0.1") && !resp.text.contains("sk_test"),
        "{}",
        resp.text
    );

    app.fail_gateway_next(1, Outage::Misconfigured);
    let resp = app.checkout_raw(&student, &course_id).await;
    assert!(resp.status >= 500, "{}", resp.text);
    assert!(!resp.text.contains("sk_test"), "{}", resp.text);

    // After the outage a checkout works.
    let ok = app.checkout_raw(&student, &course_id).await;
    assert!(ok.status == 201 || ok.status == 200, "{}", ok.text);
}

async fn a_free_course_completes_without_the_gateway(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 0).await;
    let calls_before = app.gateway_calls();
    let resp = app.checkout_raw(&student, &course_id).await;
    assert_eq!(resp.status, 201, "{}", resp.text);
    let session = &resp.json["data"]["session"];
    assert_eq!(session["id"], serde_json::Value::Null);
    assert_eq!(session["url"], "http://localhost:5173/payment/success");
    assert_eq!(session["status"], "complete");
    assert_eq!(session["payment_status"], "no_payment_required");
    assert_eq!(session["amount_total"], 0);
    assert_eq!(resp.json["data"]["purchase"]["status"], "completed");
    assert_eq!(app.gateway_calls(), calls_before);
    let status = app.status_of(&student, &course_id).await;
    assert_eq!(status.json["data"]["isPurchased"], true);
    app.checkout_raw(&student, &course_id)
        .await
        .assert_error(409, "ALREADY_PURCHASED");
}

async fn returning_with_session_id_before_the_webhook_shows_the_truth(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    let checkout = app.checkout(&student, &course_id).await;
    assert!(app.pay_session(&checkout.session_id, "pi_sync"));
    let without = app.status_of(&student, &course_id).await;
    assert_eq!(without.json["data"]["purchaseStatus"], "pending");
    let with = app
        .get(
            &format!(
                "/api/v1/payments/courses/{course_id}/purchase-status?session_id={}",
                checkout.session_id
            ),
            Some(&student.token),
        )
        .await;
    assert_eq!(with.status, 200, "{}", with.text);
    assert_eq!(with.json["data"]["purchaseStatus"], "completed");
    assert_eq!(with.json["data"]["isPurchased"], true);
}

async fn students_cannot_see_or_refund_each_others_purchases(app: TestApp) {
    let instructor = app.user("instructor").await;
    let other_instructor = app.user("instructor").await;
    let alice = app.user("student").await;
    let mallory = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    let checkout = app.buy(&alice, &course_id).await;

    let seen = app.status_of(&mallory, &course_id).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert_eq!(seen.json["data"]["purchaseStatus"], "not purchased");
    assert_eq!(seen.json["data"]["isPurchased"], false);
    let listed = app
        .get("/api/v1/payments/purchased-courses", Some(&mallory.token))
        .await;
    assert_eq!(listed.json["data"], json!([]));

    // Asking for Alice's session id does not leak or change anything for Mallory.
    let probe = app
        .get(
            &format!(
                "/api/v1/payments/courses/{course_id}/purchase-status?session_id={}",
                checkout.session_id
            ),
            Some(&mallory.token),
        )
        .await;
    assert_eq!(probe.json["data"]["isPurchased"], false, "{}", probe.text);

    let path = format!("/api/v1/payments/purchases/{}/refund", checkout.purchase_id);
    for intruder in [&mallory, &alice, &other_instructor] {
        let resp = app.post(&path, Some(&intruder.token), &json!({})).await;
        assert!(resp.status == 403 || resp.status == 404, "{}", resp.text);
        assert_eq!(resp.json["success"], false);
    }
    app.post(&path, None, &json!({}))
        .await
        .assert_error(401, "UNAUTHORIZED");
    let unknown = format!("/api/v1/payments/purchases/{}/refund", uuid::Uuid::new_v4());
    app.post(&unknown, Some(&instructor.token), &json!({}))
        .await
        .assert_error(404, "PURCHASE_NOT_FOUND");
    assert!(app.gateway_refunds().is_empty());
    assert_eq!(
        app.purchase(&checkout.purchase_id).await.status(),
        PurchaseStatus::Completed
    );
}

async fn refund_amounts_are_validated(app: TestApp) {
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    let checkout = app.buy(&student, &course_id).await;
    let path = format!("/api/v1/payments/purchases/{}/refund", checkout.purchase_id);
    let too_much = app
        .post(
            &path,
            Some(&instructor.token),
            &json!({"amountCents": 5000}),
        )
        .await;
    assert!(
        too_much.status == 400 || too_much.status == 422,
        "{}",
        too_much.text
    );
    let partial = app
        .post(&path, Some(&instructor.token), &json!({"amountCents": 500}))
        .await;
    assert_eq!(partial.status, 202, "{}", partial.text);
    assert_eq!(app.gateway_refunds(), vec![500]);
    // A partial refund keeps the course unlocked.
    assert_eq!(
        app.status_of(&student, &course_id).await.json["data"]["isPurchased"],
        true
    );
}

/// The purchase is dated by when the payment completed (the paid event's time), not by when
/// checkout started.
async fn purchased_at_and_enrolled_at_are_when_the_payment_completed(app: TestApp) {
    use lms_ports::Clock;
    use time::format_description::well_known::Rfc3339;
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, 1999).await;
    let checkout = app.checkout(&student, &course_id).await;
    let started = app.purchase(&checkout.purchase_id).await.created_at;

    app.clock.advance(time::Duration::minutes(7));
    let paid_at = app.clock.now().replace_nanosecond(0).unwrap();
    let (body, signature) = app.paid_event("evt_paid_later", &checkout);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    assert!(paid_at - started > time::Duration::minutes(6));
    let expected = paid_at.format(&Rfc3339).unwrap();

    let listed = app
        .get("/api/v1/payments/purchased-courses", Some(&student.token))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["data"][0]["purchasedAt"], expected.as_str());
    let profile = app.get("/api/v1/user/profile", Some(&student.token)).await;
    assert_eq!(
        profile.json["user"]["enrolledCourses"][0]["enrolledAt"],
        expected.as_str(),
        "{}",
        profile.text
    );

    // A later report of the same payment (the charge's) does not move the date.
    app.clock.advance(time::Duration::minutes(1));
    let (body, signature) = app.charge_succeeded_event("evt_charge_later", &checkout);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    let listed = app
        .get("/api/v1/payments/purchased-courses", Some(&student.token))
        .await;
    assert_eq!(listed.json["data"][0]["purchasedAt"], expected.as_str());
}

crate::per_wiring!(
    end_to_end_purchase_refund_and_relock,
    purchased_at_and_enrolled_at_are_when_the_payment_completed,
    a_charge_succeeded_alone_unlocks_the_course,
    checkout_guards,
    an_expired_session_shows_failed_and_allows_a_new_checkout,
    gateway_failures_are_5xx_with_a_generic_body,
    a_free_course_completes_without_the_gateway,
    returning_with_session_id_before_the_webhook_shows_the_truth,
    students_cannot_see_or_refund_each_others_purchases,
    refund_amounts_are_validated
);
