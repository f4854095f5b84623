//! The operators' API: the event inbox and its replay, purchases held for review and their
//! resolution, the audit trail; admins only.

use crate::api::helpers::{Checkout, Outage, Resp, TestApp, TestUser};
use lms_domain::{Currency, Money, PaymentFact, PurchaseStatus, Role};
use lms_use_cases::Operator;
use serde_json::{json, Value};
use uuid::Uuid;

const PRICE: i64 = 1999;
/// What a held payment captured instead of the price.
const SHORT: i64 = 999;

impl TestApp {
    /// A signed-up user the operator made admin (as `lms-app admin grant` does).
    async fn admin(&self) -> TestUser {
        let user = self.user("student").await;
        let granted = self
            .services
            .set_admin(Operator::CommandLine, &user.email, true, Role::Student)
            .await
            .unwrap();
        assert_eq!(granted.role, Role::Admin);
        user
    }

    /// A pending checkout of a fresh course by a fresh student.
    async fn pending_checkout(&self) -> (String, Checkout, TestUser) {
        let instructor = self.user("instructor").await;
        let student = self.user("student").await;
        let course_id = self.published_course(&instructor, PRICE).await;
        let checkout = self.checkout(&student, &course_id).await;
        (course_id, checkout, student)
    }

    /// The buyer pays `cents` instead of the price: the purchase is held for review.
    async fn pay_short(&self, event_id: &str, checkout: &Checkout, cents: i64) {
        // The gateway's own state follows the event: a refund needs a captured payment there.
        self.pay_session(&checkout.session_id, &TestApp::payment_intent_of(checkout));
        let amount = Money::new(cents, Currency::parse(&checkout.currency).unwrap()).unwrap();
        let (body, signature) = self.event(
            event_id,
            "checkout.session.completed",
            checkout,
            &[PaymentFact::PaymentSucceeded { amount, at: None }],
        );
        let resp = self.webhook(body, Some(&signature)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }

    /// A held purchase: a fresh course, a fresh buyer who paid less than the price.
    async fn held_purchase(&self) -> (String, Checkout, TestUser) {
        let (course_id, checkout, student) = self.pending_checkout().await;
        let event_id = format!("evt_short_{}", Uuid::new_v4().simple());
        self.pay_short(&event_id, &checkout, SHORT).await;
        assert!(
            self.purchase(&checkout.purchase_id)
                .await
                .review_reason()
                .is_some(),
            "a payment of another amount than the price is held"
        );
        (course_id, checkout, student)
    }

    async fn audit(&self, admin: &TestUser) -> Vec<Value> {
        let resp = self
            .get("/api/v1/admin/audit?page=1&limit=100", Some(&admin.token))
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json["data"].as_array().unwrap().clone()
    }

    async fn events_with(&self, admin: &TestUser, outcome: &str) -> Vec<Value> {
        let resp = self
            .get(
                &format!("/api/v1/admin/events?outcome={outcome}&limit=100"),
                Some(&admin.token),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json["data"].as_array().unwrap().clone()
    }

    async fn held(&self, admin: &TestUser) -> Resp {
        let resp = self
            .get("/api/v1/admin/purchases/held", Some(&admin.token))
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp
    }
}

fn held_ids(resp: &Resp) -> Vec<&str> {
    resp.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect()
}

/// Every admin route, as `(method, path, body)`.
fn admin_routes() -> Vec<(&'static str, String, Value)> {
    let purchase = Uuid::new_v4();
    let reason = json!({"reason": "checked with the customer"});
    vec![
        ("GET", "/api/v1/admin/events".to_owned(), Value::Null),
        (
            "GET",
            "/api/v1/admin/events?outcome=failed".to_owned(),
            Value::Null,
        ),
        ("GET", "/api/v1/admin/events/evt_1".to_owned(), Value::Null),
        (
            "POST",
            "/api/v1/admin/events/evt_1/replay".to_owned(),
            json!({}),
        ),
        (
            "GET",
            "/api/v1/admin/purchases/held".to_owned(),
            Value::Null,
        ),
        (
            "POST",
            format!("/api/v1/admin/purchases/{purchase}/accept"),
            reason.clone(),
        ),
        (
            "POST",
            format!("/api/v1/admin/purchases/{purchase}/refund"),
            reason,
        ),
        ("GET", "/api/v1/admin/audit".to_owned(), Value::Null),
    ]
}

async fn call(app: &TestApp, method: &str, path: &str, body: &Value, token: Option<&str>) -> Resp {
    match method {
        "GET" => app.get(path, token).await,
        _ => app.post(path, token, body).await,
    }
}

async fn admin_routes_refuse_anonymous_401_and_non_admins_403(app: TestApp) {
    let (_, checkout, buyer) = app.held_purchase().await;
    let instructor = app.user("instructor").await;
    for (method, path, body) in admin_routes() {
        call(&app, method, &path, &body, None)
            .await
            .assert_error(401, "UNAUTHORIZED");
        for user in [&buyer, &instructor] {
            call(&app, method, &path, &body, Some(&user.token))
                .await
                .assert_error(403, "FORBIDDEN");
        }
    }
    // Not even the buyer may resolve their own held purchase.
    for action in ["accept", "refund"] {
        app.post(
            &format!("/api/v1/admin/purchases/{}/{action}", checkout.purchase_id),
            Some(&buyer.token),
            &json!({"reason": "I paid, let me in"}),
        )
        .await
        .assert_error(403, "FORBIDDEN");
    }
    assert!(
        app.purchase(&checkout.purchase_id)
            .await
            .review_reason()
            .is_some(),
        "still held"
    );
    assert!(app.gateway_refunds().is_empty());
    // The same routes answer an admin.
    let admin = app.admin().await;
    for path in [
        "/api/v1/admin/events",
        "/api/v1/admin/purchases/held",
        "/api/v1/admin/audit",
    ] {
        let resp = app.get(path, Some(&admin.token)).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text);
        assert_eq!(resp.json["success"], true);
    }
}

/// A payment for a course the buyer already owns (a late payment of an expired checkout) is
/// refunded automatically; when the gateway is down for that refund, the event is recorded as
/// failed. Once the gateway is back, the admin replays it and the refund happens.
async fn an_admin_lists_a_failed_event_and_replays_it_once_the_cause_is_fixed(app: TestApp) {
    let admin = app.admin().await;
    let (course_id, first, student) = app.pending_checkout().await;
    let (body, signature) = app.expired_event("evt_first_expired", &first);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);
    app.buy(&student, &course_id).await;

    app.fail_gateway_next(1, Outage::Unavailable);
    let late = "evt_late_payment";
    let (body, signature) = app.paid_event(late, &first);
    let resp = app.webhook(body, Some(&signature)).await;
    assert_eq!(
        resp.status, 200,
        "recorded as failed, so the gateway stops delivering: {}",
        resp.text
    );
    assert_eq!(
        app.purchase(&first.purchase_id).await.status(),
        PurchaseStatus::Completed,
        "a double payment, not refunded yet"
    );
    assert!(app.gateway_refunds().is_empty());

    let failed = app.events_with(&admin, "failed").await;
    let row = failed
        .iter()
        .find(|event| event["eventId"] == late)
        .unwrap_or_else(|| panic!("the failed event is listed: {failed:?}"));
    assert_eq!(row["type"], "checkout.session.completed");
    assert_eq!(row["outcome"], "failed");
    assert_eq!(row["purchaseId"], first.purchase_id.as_str());
    assert_eq!(row["deliveryCount"], 1);
    assert_eq!(row["livemode"], false);
    assert_eq!(row["hasPayload"], true);
    assert!(
        row["error"]
            .as_str()
            .is_some_and(|error| error.contains("refund")),
        "{row}"
    );
    assert!(
        row.get("payload").is_none(),
        "listings carry no payload: {row}"
    );
    for key in ["created", "firstReceivedAt", "lastReceivedAt"] {
        assert!(row[key].is_string(), "{key}: {row}");
    }

    let detail = app
        .get(&format!("/api/v1/admin/events/{late}"), Some(&admin.token))
        .await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.json["data"]["eventId"], late);
    assert_eq!(detail.json["data"]["outcome"], "failed");
    assert!(
        detail.json["data"]["payload"].is_object(),
        "the payload as JSON: {}",
        detail.text
    );

    let replay = app
        .post(
            &format!("/api/v1/admin/events/{late}/replay"),
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.json["success"], true);
    assert_eq!(replay.json["data"]["eventId"], late);
    assert_eq!(replay.json["data"]["outcome"], "applied", "{}", replay.text);
    assert_eq!(
        replay.json["data"]["purchaseId"],
        first.purchase_id.as_str()
    );
    assert_eq!(app.gateway_refunds(), vec![PRICE], "refunded once, in full");
    assert_eq!(
        app.purchase(&first.purchase_id).await.status(),
        PurchaseStatus::Refunded
    );
    let status = app.status_of(&student, &course_id).await;
    assert_eq!(
        status.json["data"]["purchaseStatus"], "completed",
        "{}",
        status.text
    );

    assert!(app
        .events_with(&admin, "failed")
        .await
        .iter()
        .all(|event| event["eventId"] != late));
    let applied = app.events_with(&admin, "applied").await;
    let row = applied
        .iter()
        .find(|event| event["eventId"] == late)
        .unwrap_or_else(|| panic!("now applied: {applied:?}"));
    assert_eq!(row["error"], Value::Null);
    assert_eq!(row["deliveryCount"], 1, "a replay is not a delivery");

    // Replaying an applied event leaves it alone.
    let again = app
        .post(
            &format!("/api/v1/admin/events/{late}/replay"),
            Some(&admin.token),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["data"]["outcome"], "duplicate");
    assert_eq!(app.gateway_refunds(), vec![PRICE]);

    let audit = app.audit(&admin).await;
    let replays: Vec<&Value> = audit
        .iter()
        .filter(|entry| entry["action"] == "replay_event" && entry["eventId"] == late)
        .collect();
    assert_eq!(replays.len(), 2, "{audit:?}");
    assert_eq!(
        replays[1]["actor"],
        json!({"kind": "user", "userId": admin.id})
    );
    assert_eq!(replays[1]["reason"], "was failed, now applied");
    let refund = audit
        .iter()
        .find(|entry| entry["action"] == "refund_double_payment")
        .unwrap_or_else(|| panic!("the automatic refund is audited: {audit:?}"));
    assert_eq!(refund["actor"]["kind"], "system");
    assert_eq!(refund["purchaseId"], first.purchase_id.as_str());
    assert_eq!(refund["amount"], json!({"cents": PRICE, "currency": "USD"}));

    let filtered = app
        .get(
            "/api/v1/admin/events?outcome=failed&since=2000-01-01T00:00:00Z&page=1&limit=5",
            Some(&admin.token),
        )
        .await;
    assert_eq!(filtered.status, 200, "{}", filtered.text);
    assert_eq!(
        filtered.json["pagination"],
        json!({"page": 1, "limit": 5, "total": 0, "totalPages": 0, "hasNextPage": false, "hasPrevPage": false})
    );
}

async fn a_held_purchase_accepted_unlocks_and_is_audited(app: TestApp) {
    let admin = app.admin().await;
    let (course_id, checkout, student) = app.held_purchase().await;
    let status = app.status_of(&student, &course_id).await;
    assert_eq!(status.json["data"]["purchaseStatus"], "pending");
    assert_eq!(status.json["data"]["isPurchased"], false);

    let held = app.held(&admin).await;
    assert_eq!(held_ids(&held), vec![checkout.purchase_id.as_str()]);
    let item = &held.json["data"][0];
    assert_eq!(item["userId"], student.id.as_str());
    assert_eq!(item["courseId"], course_id.as_str());
    assert_eq!(item["status"], "pending");
    assert_eq!(item["amountCents"], PRICE);
    assert_eq!(item["currency"], "USD");
    assert_eq!(item["receivedCents"], SHORT);
    assert_eq!(item["receivedCurrency"], "USD");
    assert!(item["paymentIntentId"].is_string(), "{item}");
    assert!(item["reviewReason"].is_string(), "{item}");
    assert!(item["createdAt"].is_string() && item["updatedAt"].is_string());
    assert_eq!(
        held.json["pagination"],
        json!({"page": 1, "limit": 20, "total": 1, "totalPages": 1, "hasNextPage": false, "hasPrevPage": false})
    );
    let held_event = app.events_with(&admin, "held").await;
    assert_eq!(held_event.len(), 1, "{held_event:?}");
    assert_eq!(held_event[0]["purchaseId"], checkout.purchase_id.as_str());

    let reason = "The customer paid the old price; honoured.";
    let resp = app
        .post(
            &format!("/api/v1/admin/purchases/{}/accept", checkout.purchase_id),
            Some(&admin.token),
            &json!({"reason": format!("  {reason} ")}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    let purchase = &resp.json["data"]["purchase"];
    assert_eq!(purchase["id"], checkout.purchase_id.as_str());
    assert_eq!(purchase["status"], "completed");
    assert!(purchase.get("reviewReason").is_none(), "{purchase}");

    let status = app.status_of(&student, &course_id).await;
    assert_eq!(
        status.json["data"]["purchaseStatus"], "completed",
        "{}",
        status.text
    );
    assert_eq!(status.json["data"]["isPurchased"], true);
    assert!(held_ids(&app.held(&admin).await).is_empty());
    assert!(app.gateway_refunds().is_empty(), "accepting moves no money");

    let audit = app.audit(&admin).await;
    let entry = &audit[0];
    assert_eq!(entry["action"], "accept_held", "newest first: {audit:?}");
    assert_eq!(entry["actor"], json!({"kind": "user", "userId": admin.id}));
    assert_eq!(entry["purchaseId"], checkout.purchase_id.as_str());
    assert_eq!(entry["amount"], json!({"cents": SHORT, "currency": "USD"}));
    assert_eq!(entry["reason"], reason, "kept trimmed");
    assert_eq!(entry["eventId"], Value::Null);
    assert!(entry["at"].is_string());
    // The grant that made the admin is on the trail too, by the operator.
    let grant = audit
        .iter()
        .find(|entry| entry["action"] == "grant_admin")
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(grant["actor"], json!({"kind": "operator", "userId": null}));
    assert_eq!(grant["subjectUserId"], admin.id.as_str());

    // Resolved: neither decision applies any more.
    for action in ["accept", "refund"] {
        app.post(
            &format!("/api/v1/admin/purchases/{}/{action}", checkout.purchase_id),
            Some(&admin.token),
            &json!({"reason": "again"}),
        )
        .await
        .assert_error(409, "NOT_HELD");
    }
}

async fn a_held_purchase_refunded_ends_refunded_and_is_audited(app: TestApp) {
    let admin = app.admin().await;
    let (course_id, checkout, student) = app.held_purchase().await;
    let reason = "Wrong amount charged; refunded in full.";
    let resp = app
        .post(
            &format!("/api/v1/admin/purchases/{}/refund", checkout.purchase_id),
            Some(&admin.token),
            &json!({ "reason": reason }),
        )
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text);
    let purchase = &resp.json["data"]["purchase"];
    assert_eq!(purchase["status"], "refunded", "{}", resp.text);
    assert_eq!(purchase["refundedCents"], SHORT);
    assert_eq!(app.gateway_refunds(), vec![SHORT], "what was captured");

    let status = app.status_of(&student, &course_id).await;
    assert_eq!(
        status.json["data"]["purchaseStatus"], "refunded",
        "{}",
        status.text
    );
    assert_eq!(status.json["data"]["isPurchased"], false);
    assert!(held_ids(&app.held(&admin).await).is_empty());

    let audit = app.audit(&admin).await;
    let entry = &audit[0];
    assert_eq!(entry["action"], "refund_held", "newest first: {audit:?}");
    assert_eq!(entry["actor"], json!({"kind": "user", "userId": admin.id}));
    assert_eq!(entry["purchaseId"], checkout.purchase_id.as_str());
    assert_eq!(entry["amount"], json!({"cents": SHORT, "currency": "USD"}));
    assert_eq!(entry["reason"], reason);

    app.post(
        &format!("/api/v1/admin/purchases/{}/refund", checkout.purchase_id),
        Some(&admin.token),
        &json!({"reason": "twice"}),
    )
    .await
    .assert_error(409, "NOT_HELD");
    assert_eq!(app.gateway_refunds(), vec![SHORT], "refunded once");
}

async fn resolving_what_is_not_held_or_unknown_is_refused(app: TestApp) {
    let admin = app.admin().await;
    let instructor = app.user("instructor").await;
    let student = app.user("student").await;
    let course_id = app.published_course(&instructor, PRICE).await;
    let paid = app.buy(&student, &course_id).await;
    let (_, pending, _) = app.pending_checkout().await;
    for purchase in [&paid.purchase_id, &pending.purchase_id] {
        for action in ["accept", "refund"] {
            app.post(
                &format!("/api/v1/admin/purchases/{purchase}/{action}"),
                Some(&admin.token),
                &json!({"reason": "looks fine"}),
            )
            .await
            .assert_error(409, "NOT_HELD");
        }
    }
    assert_eq!(
        app.purchase(&paid.purchase_id).await.status(),
        PurchaseStatus::Completed
    );
    assert!(app.gateway_refunds().is_empty());

    for purchase in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        app.post(
            &format!("/api/v1/admin/purchases/{purchase}/accept"),
            Some(&admin.token),
            &json!({"reason": "looks fine"}),
        )
        .await
        .assert_error(404, "PURCHASE_NOT_FOUND");
    }
    app.get("/api/v1/admin/events/evt_unknown", Some(&admin.token))
        .await
        .assert_error(404, "EVENT_NOT_FOUND");
    app.post(
        "/api/v1/admin/events/evt_unknown/replay",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .assert_error(404, "EVENT_NOT_FOUND");

    // A reason is required, and kept short.
    let (_, held, _) = app.held_purchase().await;
    for body in [
        json!({"reason": "   "}),
        json!({"reason": "x".repeat(501)}),
        json!({}),
    ] {
        let resp = app
            .post(
                &format!("/api/v1/admin/purchases/{}/accept", held.purchase_id),
                Some(&admin.token),
                &body,
            )
            .await;
        resp.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(resp.json["errors"][0]["field"], "reason", "{}", resp.text);
    }
    assert_eq!(
        held_ids(&app.held(&admin).await),
        vec![held.purchase_id.as_str()]
    );

    let resp = app
        .get(
            "/api/v1/admin/events?outcome=duplicate&since=yesterday",
            Some(&admin.token),
        )
        .await;
    resp.assert_error(422, "VALIDATION_ERROR");
    let fields: Vec<&str> = resp.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["outcome", "since"]);
}

crate::per_wiring!(
    admin_routes_refuse_anonymous_401_and_non_admins_403,
    an_admin_lists_a_failed_event_and_replays_it_once_the_cause_is_fixed,
    a_held_purchase_accepted_unlocks_and_is_audited,
    a_held_purchase_refunded_ends_refunded_and_is_audited,
    resolving_what_is_not_held_or_unknown_is_refused,
);
