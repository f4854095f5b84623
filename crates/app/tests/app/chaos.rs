//! The whole stack under the network's worst habits: the sandbox delivers every webhook twice,
//! in shuffled order, and fails Stripe API calls; the purchases must still end exactly right.

use crate::offline::{course_titled, offline_settings, Running, TempDir};
use lms_app::demo::PAID_COURSE_TITLE;
use lms_app::Application;
use lms_stripe_sandbox::{Chaos, PaymentMethod};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Polls purchase-status (without a session hint: only webhooks move it) until `expected`.
async fn wait_for_status(app: &Running, token: &str, course_id: &str, expected: &str) -> bool {
    let path = format!("/api/v1/payments/courses/{course_id}/purchase-status");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app.get(&path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["data"]["purchaseStatus"] == expected {
            return body["data"]["isPurchased"].as_bool().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "still {body} while waiting for {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_shuffled_webhooks_and_a_flaky_gateway_end_in_the_right_state() {
    let dir = TempDir::new();
    let app = Application::build(offline_settings(&dir.database_url(), &[]).unwrap())
        .await
        .unwrap();
    let sandbox = app.sandbox_handle().expect("offline: the sandbox runs");
    sandbox.set_chaos(Chaos {
        // The next two Stripe API calls fail; the adapter retries with the same idempotency key.
        fail_next: vec![500, 429],
        duplicate_deliveries: true,
        shuffle_deliveries: true,
        delivery_delay: Duration::from_millis(30),
    });
    let app = Running::spawn(app);
    let courses = app.published().await;
    let course = course_titled(&courses, PAID_COURSE_TITLE)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let instructor = app.sign_in_demo_instructor().await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Alice pays by card after a decline: her checkout survives the two failed API calls.
    let alice = app
        .sign_up("Chaos Student", "alice@example.com", "student")
        .await;
    let alice_session = app.checkout(&alice, &course).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        sandbox.chaos().fail_next.is_empty(),
        "both injected failures were served and retried"
    );
    let declined = sandbox
        .pay(
            &alice_session,
            &PaymentMethod::Card("4000000000000002".into()),
        )
        .unwrap();
    assert!(matches!(
        declined,
        lms_stripe_sandbox::PaymentOutcome::Declined(_)
    ));
    sandbox
        .pay(
            &alice_session,
            &PaymentMethod::Card("4242424242424242".into()),
        )
        .unwrap();
    // Bob pays by bank debit, which settles later.
    let bob = app
        .sign_up("Chaos Student", "bob@example.com", "student")
        .await;
    let bob_session = app.checkout(&bob, &course).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sandbox
        .pay(&bob_session, &PaymentMethod::BankDebit)
        .unwrap();
    sandbox.settle(&bob_session, true).unwrap();

    assert!(wait_for_status(&app, &alice, &course, "completed").await);
    assert!(wait_for_status(&app, &bob, &course, "completed").await);

    // The instructor refunds Alice in two parts; Bob's bank takes his payment back in a dispute.
    let (_, body) = app
        .get(
            &format!("/api/v1/payments/courses/{course}/purchase-status"),
            Some(&alice),
        )
        .await;
    let alice_purchase = body["data"]["purchase"]["id"].as_str().unwrap().to_owned();
    let refund_path = format!("/api/v1/payments/purchases/{alice_purchase}/refund");
    let (status, body) = app
        .post(
            &refund_path,
            Some(&instructor),
            &json!({"amountCents": 500}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        wait_for_status(&app, &alice, &course, "completed").await,
        "a partial refund keeps the course"
    );
    let (status, body) = app.post(&refund_path, Some(&instructor), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let bob_intent = sandbox.session(&bob_session).unwrap()["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let dispute = sandbox.open_dispute(&bob_intent).unwrap();
    sandbox.close_dispute(&dispute, false).unwrap();

    assert!(
        sandbox.wait_for_deliveries(Duration::from_secs(30)).await,
        "{:?}",
        sandbox.deliveries()
    );
    assert!(!wait_for_status(&app, &alice, &course, "refunded").await);
    assert!(!wait_for_status(&app, &bob, &course, "refunded").await);
    for token in [&alice, &bob] {
        let (_, body) = app
            .get("/api/v1/payments/purchased-courses", Some(token))
            .await;
        assert_eq!(body["data"], json!([]), "a refunded course is locked again");
    }

    // Every event reached the app at least twice and every delivery was acknowledged.
    let mut acknowledged: HashMap<String, usize> = HashMap::new();
    for delivery in sandbox.deliveries() {
        assert_eq!(delivery.status, Some(200), "{delivery:?}");
        *acknowledged.entry(delivery.event_id).or_default() += 1;
    }
    assert_eq!(acknowledged.len(), sandbox.events().len());
    assert!(
        acknowledged.values().all(|count| *count >= 2),
        "{acknowledged:?}"
    );
    app.stop().await;
}
