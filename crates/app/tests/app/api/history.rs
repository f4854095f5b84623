//! `GET /api/v1/payments/purchases`: the buyer's order history.

use crate::api::helpers::TestApp;
use serde_json::json;
use time::Duration;

const HISTORY: &str = "/api/v1/payments/purchases";

async fn the_history_lists_every_purchase_newest_first_with_status_and_amounts(app: TestApp) {
    let instructor = app.user("instructor").await;
    let buyer = app.user("student").await;
    let stranger = app.user("student").await;

    let completed_course = app.published_course(&instructor, 1999).await;
    let completed = app.buy(&buyer, &completed_course).await;

    app.clock.advance(Duration::seconds(1));
    let failed_course = app.published_course(&instructor, 2500).await;
    let failed = app.checkout(&buyer, &failed_course).await;
    let (body, signature) = app.expired_event("evt_history_expired", &failed);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);

    app.clock.advance(Duration::seconds(1));
    let refunded_course = app.published_course(&instructor, 990).await;
    let refunded = app.buy(&buyer, &refunded_course).await;
    let (body, signature) = app.refunded_event("evt_history_refunded", &refunded, 990);
    assert_eq!(app.webhook(body, Some(&signature)).await.status, 200);

    // Someone else's purchase of the same course is never listed.
    app.clock.advance(Duration::seconds(1));
    let theirs = app.buy(&stranger, &completed_course).await;

    let resp = app.get(HISTORY, Some(&buyer.token)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["success"], true);
    assert_eq!(
        resp.json["pagination"],
        json!({"page": 1, "limit": 10, "total": 3, "totalPages": 1,
               "hasNextPage": false, "hasPrevPage": false})
    );
    let items = resp.json["data"].as_array().unwrap();
    let summary: Vec<_> = items
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                item["course"]["id"].as_str().unwrap().to_owned(),
                item["status"].as_str().unwrap().to_owned(),
                item["amountCents"].as_i64().unwrap(),
                item["currency"].as_str().unwrap().to_owned(),
                item["refundedCents"].as_i64().unwrap(),
                item["purchasedAt"].is_string(),
            )
        })
        .collect();
    let row = |purchase: &str, course: &str, status: &str, amount, refunded, paid| {
        (
            purchase.to_owned(),
            course.to_owned(),
            status.to_owned(),
            amount,
            "USD".to_owned(),
            refunded,
            paid,
        )
    };
    assert_eq!(
        summary,
        vec![
            row(
                &refunded.purchase_id,
                &refunded_course,
                "refunded",
                990,
                990,
                true
            ),
            row(
                &failed.purchase_id,
                &failed_course,
                "failed",
                2500,
                0,
                false
            ),
            row(
                &completed.purchase_id,
                &completed_course,
                "completed",
                1999,
                0,
                true
            ),
        ]
    );
    assert!(items
        .iter()
        .all(|item| item["id"] != theirs.purchase_id.as_str()));
    let first = &items[2];
    assert_eq!(first["course"]["title"], "Rust for the Web");
    assert!(first["createdAt"].is_string() && first["updatedAt"].is_string());
    assert!(items[1]["purchasedAt"].is_null());
    // The same paid time as the unlocked-courses listing gives.
    let unlocked = app
        .get("/api/v1/payments/purchased-courses", Some(&buyer.token))
        .await;
    assert_eq!(
        unlocked.json["data"][0]["purchasedAt"],
        first["purchasedAt"]
    );

    // The stranger sees their own purchase only.
    let resp = app.get(HISTORY, Some(&stranger.token)).await;
    assert_eq!(resp.json["pagination"]["total"], 1);
    assert_eq!(resp.json["data"][0]["id"], theirs.purchase_id.as_str());
}

async fn the_history_is_paged_like_the_catalogue(app: TestApp) {
    let instructor = app.user("instructor").await;
    let buyer = app.user("student").await;
    let mut bought = Vec::new();
    for _ in 0..3 {
        let course = app.published_course(&instructor, 1999).await;
        bought.push(app.buy(&buyer, &course).await.purchase_id);
        app.clock.advance(Duration::seconds(1));
    }
    bought.reverse();

    let page_one = app
        .get(&format!("{HISTORY}?page=1&limit=2"), Some(&buyer.token))
        .await;
    assert_eq!(page_one.status, 200, "{}", page_one.text);
    assert_eq!(
        page_one.json["pagination"],
        json!({"page": 1, "limit": 2, "total": 3, "totalPages": 2,
               "hasNextPage": true, "hasPrevPage": false})
    );
    let page_two = app
        .get(&format!("{HISTORY}?page=2&limit=2"), Some(&buyer.token))
        .await;
    assert_eq!(
        page_two.json["pagination"],
        json!({"page": 2, "limit": 2, "total": 3, "totalPages": 2,
               "hasNextPage": false, "hasPrevPage": true})
    );
    let ids: Vec<_> = [&page_one, &page_two]
        .iter()
        .flat_map(|resp| resp.json["data"].as_array().unwrap().clone())
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, bought);

    // Past the end: no items, the total still there; empty fields mean the defaults.
    let beyond = app
        .get(&format!("{HISTORY}?page=3&limit=2"), Some(&buyer.token))
        .await;
    assert_eq!(beyond.json["data"], json!([]));
    assert_eq!(beyond.json["pagination"]["total"], 3);
    let defaults = app
        .get(&format!("{HISTORY}?page=&limit="), Some(&buyer.token))
        .await;
    assert_eq!(defaults.json["pagination"]["limit"], 10);
    assert_eq!(defaults.json["data"].as_array().unwrap().len(), 3);
    app.get(&format!("{HISTORY}?limit=many"), Some(&buyer.token))
        .await
        .assert_error(422, "VALIDATION_ERROR");
}

async fn the_history_needs_a_session(app: TestApp) {
    app.get(HISTORY, None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.get(HISTORY, Some("not-a-jwt"))
        .await
        .assert_error(401, "UNAUTHORIZED");
}

crate::per_wiring!(
    the_history_lists_every_purchase_newest_first_with_status_and_amounts,
    the_history_is_paged_like_the_catalogue,
    the_history_needs_a_session,
);
