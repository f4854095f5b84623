//! The metrics listener after a purchase through the offline demo: each counter moved by
//! exactly what the flow did, labelled by route pattern (never a raw path) and outcome.
//!
//! The recorder is global to the process; nextest runs each test in a process of its own, so
//! the counts start at zero here.

use crate::offline::{course_titled, offline_settings, Running, TempDir};
use lms_app::demo::PAID_COURSE_TITLE;
use lms_app::Application;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A series' labels, sorted by name.
type Labels = BTreeMap<String, String>;

/// One scrape: `name` -> (sorted labels -> value).
#[derive(Debug)]
struct Scrape {
    text: String,
    series: BTreeMap<String, Vec<(Labels, f64)>>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let mut series: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (key, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let (name, labels) = match key.split_once('{') {
                // Label values may hold braces (`/api/v1/courses/{courseId}`): up to the last.
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap()),
                None => (key, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            series
                .entry(name.to_owned())
                .or_default()
                .push((labels, value));
        }
        Self { text, series }
    }

    /// The value of the one series of `name` with exactly `labels`; 0 when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.series
            .get(name)
            .and_then(|all| all.iter().find(|(l, _)| *l == wanted))
            .map_or(0.0, |(_, v)| *v)
    }

    /// Every label set of `name`.
    fn labels(&self, name: &str) -> Vec<&Labels> {
        self.series
            .get(name)
            .map(|all| all.iter().map(|(l, _)| l).collect())
            .unwrap_or_default()
    }
}

async fn scrape(client: &reqwest::Client, metrics_url: &str) -> Scrape {
    let response = client.get(metrics_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    Scrape::parse(response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_moves_each_counter_by_what_happened() {
    let metrics = lms_app::metrics::serve("127.0.0.1:0".parse().unwrap()).unwrap();
    let metrics_url = format!("http://{}/metrics", metrics.address());
    let metrics_stop = metrics.handle();
    tokio::spawn(metrics.run());

    let dir = TempDir::new();
    let app = Application::build(offline_settings(&dir.database_url(), &[]).unwrap())
        .await
        .unwrap();
    let sandbox = app.sandbox_handle().unwrap();
    let app = Running::spawn(app);

    // Only /metrics is served there.
    let other = app
        .client
        .get(metrics_url.replace("/metrics", "/api/v1/healthcheck"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    let courses = app.published().await;
    let paid_id = course_titled(&courses, PAID_COURSE_TITLE)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = app
        .sign_up("Ada Student", "ada@example.com", "student")
        .await;

    // A course that does not exist: a 404 under the route's pattern, not under its id.
    let missing = uuid::Uuid::new_v4();
    let (status, _) = app.get(&format!("/api/v1/courses/{missing}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No route at all.
    let (status, _) = app.get("/api/v1/no-such-route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let session = app.checkout(&token, &paid_id).await;
    let page = session["url"].as_str().unwrap().to_owned();
    let paid = app
        .client
        .post(&page)
        .form(&[("method", "card"), ("card_number", "4242424242424242")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);

    let status_path = format!("/api/v1/payments/courses/{paid_id}/purchase-status");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = app.get(&status_path, Some(&token)).await;
        if body["data"]["purchaseStatus"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "never completed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sandbox.wait_for_deliveries(Duration::from_secs(20)).await);

    // The same event delivered again, then one with a wrong signature.
    let completed = sandbox.events_of_type("checkout.session.completed");
    assert_eq!(completed.len(), 1, "{completed:?}");
    let (payload, signature) = sandbox.signed(&completed[0]);
    let webhook = app.url("/api/v1/payments/webhook");
    let again = app
        .client
        .post(&webhook)
        .header("stripe-signature", &signature)
        .header("content-type", "application/json")
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let forged = app
        .client
        .post(&webhook)
        .header("stripe-signature", "t=1,v1=00")
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    let m = scrape(&app.client, &metrics_url).await;
    let deliveries = "lms_webhook_deliveries_total";
    let of = |event_type, outcome| {
        m.value(
            deliveries,
            &[("event_type", event_type), ("outcome", outcome)],
        )
    };
    assert_eq!(
        of("checkout.session.completed", "applied"),
        1.0,
        "{}",
        m.text
    );
    assert_eq!(
        of("checkout.session.completed", "duplicate"),
        1.0,
        "{}",
        m.text
    );
    assert_eq!(of("unknown", "bad_signature"), 1.0, "{}", m.text);
    for labels in m.labels(deliveries) {
        assert!(
            !matches!(labels["outcome"].as_str(), "failed" | "held" | "unmatched"),
            "{labels:?}\n{}",
            m.text
        );
    }

    let requests = "lms_http_requests_total";
    let req = |method, route, status| {
        m.value(
            requests,
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(req("POST", "/api/v1/user/signup", "201"), 1.0, "{}", m.text);
    assert_eq!(
        req("POST", "/api/v1/payments/create-checkout-session", "201"),
        1.0
    );
    assert_eq!(req("GET", "/api/v1/courses/{courseId}", "404"), 1.0);
    // A route with a `{segment}` is labelled by its pattern, never by the requested path.
    assert!(
        req(
            "GET",
            "/api/v1/payments/courses/{courseId}/purchase-status",
            "200"
        ) >= 1.0,
        "{}",
        m.text
    );
    // Only the forged delivery was refused; the sandbox's and our repeat were acknowledged.
    assert_eq!(req("POST", "/api/v1/payments/webhook", "400"), 1.0);
    assert!(req("POST", "/api/v1/payments/webhook", "200") >= 2.0);
    assert!(req("GET", "unmatched", "404") >= 1.0, "{}", m.text);
    for labels in m.labels(requests) {
        assert!(
            !labels["route"].contains(&missing.to_string())
                && !labels["route"].contains("no-such-route"),
            "a raw path became a label: {labels:?}"
        );
    }
    assert_eq!(
        m.value(
            "lms_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/api/v1/user/signup")]
        ),
        1.0
    );

    assert_eq!(
        m.value("lms_checkouts_started_total", &[("kind", "created")]),
        1.0
    );
    assert!(m.value("lms_purchase_updates_total", &[("status", "completed")]) >= 1.0);
    assert_eq!(
        m.value(
            "lms_stripe_requests_total",
            &[("operation", "create_checkout_session"), ("status", "200")]
        ),
        1.0,
        "{}",
        m.text
    );
    assert_eq!(
        m.value(
            "lms_stripe_call_duration_seconds_count",
            &[("operation", "create_checkout_session"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "lms_stripe_retries_total",
            &[("operation", "create_checkout_session")]
        ),
        0.0
    );

    // Sign-up and the demo seed hashed; every slot is free again and nobody waits.
    assert!(m.value("lms_password_hash_slots", &[]) >= 1.0, "{}", m.text);
    assert_eq!(m.value("lms_password_hash_slots_in_use", &[]), 0.0);
    assert_eq!(m.value("lms_password_hash_waiting", &[]), 0.0);

    app.stop().await;
    metrics_stop.stop(true).await;
}

#[test]
fn the_scrape_hooks_set_gauges_before_the_render() {
    let handle = lms_app::metrics::install().unwrap();
    lms_app::metrics::on_scrape(|| metrics::gauge!("lms_test_reading").set(7.0));
    let m = Scrape::parse(lms_app::metrics::render(&handle));
    assert_eq!(m.value("lms_test_reading", &[]), 7.0, "{}", m.text);
    // A second install is the same recorder, not an error.
    assert!(lms_app::metrics::install().is_ok());
}
