//! The Operations page: an admin resolves a purchase held for review and replays an event that
//! matched no purchase, in the storefront, in a real browser.
//!
//! The sandbox only ever bills the course's price, so a held payment (a bill for another price,
//! as a session created before a price change would be) is a Stripe event the test writes
//! itself and signs with the sandbox's webhook secret, as the sandbox signs its own deliveries.

use crate::helpers::*;
use anyhow::Context;
use lms_app::demo::PAID_COURSE_TITLE;
use lms_e2e_browser::fantoccini::Locator;
use lms_e2e_browser::{artifacts_dir, Browser, DEFAULT_WAIT};
use serde_json::{json, Value};

/// What the held buyer paid instead of the 19.99 USD price.
const SHORT_CENTS: i64 = 999;

/// The API over HTTP, for the buyer's side and for the webhooks.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(app: &TestApp) -> Self {
        // The app listens on 127.0.0.1; `localhost` may resolve to IPv6 first.
        Self {
            base: app.url("/api/v1").replace("//localhost:", "//127.0.0.1:"),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Signs up a student; returns the session token.
    async fn student(&self, email: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/user/signup", self.base))
                    .json(&json!({
                        "name": "Hal Buyer", "email": email, "password": PASSWORD,
                    })),
            )
            .await?;
        anyhow::ensure!(status == 201, "sign-up answered {status}: {body}");
        Ok(body["token"].as_str().context("a token")?.to_owned())
    }

    async fn paid_course_id(&self) -> anyhow::Result<String> {
        let (_, body) = self
            .send(self.http.get(format!("{}/courses/published", self.base)))
            .await?;
        body["data"]
            .as_array()
            .and_then(|courses| {
                courses
                    .iter()
                    .find(|course| course["title"] == PAID_COURSE_TITLE)
            })
            .and_then(|course| course["id"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("the paid demo course is published: {body}"))
    }

    /// Starts a checkout; returns the session id and the purchase id.
    async fn checkout(&self, token: &str, course_id: &str) -> anyhow::Result<(String, String)> {
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/payments/create-checkout-session", self.base))
                    .bearer_auth(token)
                    .json(&json!({ "courseId": course_id })),
            )
            .await?;
        anyhow::ensure!(status == 201, "checkout answered {status}: {body}");
        let session = &body["data"]["session"];
        Ok((
            session["id"].as_str().context("a session id")?.to_owned(),
            session["client_reference_id"]
                .as_str()
                .context("a purchase id")?
                .to_owned(),
        ))
    }

    async fn purchase_status(&self, token: &str, course_id: &str) -> anyhow::Result<Value> {
        let (status, body) = self
            .send(
                self.http
                    .get(format!(
                        "{}/payments/courses/{course_id}/purchase-status",
                        self.base
                    ))
                    .bearer_auth(token),
            )
            .await?;
        anyhow::ensure!(status == 200, "purchase-status answered {status}: {body}");
        Ok(body["data"].clone())
    }

    /// Delivers `checkout.session.completed` for `session`, signed as the sandbox signs.
    async fn deliver_completed(
        &self,
        app: &TestApp,
        event_id: &str,
        session: Value,
    ) -> anyhow::Result<()> {
        let event = json!({
            "id": event_id,
            "object": "event",
            "api_version": lms_stripe_sandbox::API_VERSION,
            "created": time_now(),
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": "checkout.session.completed",
            "data": {"object": session},
        });
        let (body, signature) = app.stripe.signed(&event);
        let (status, answer) = self
            .send(
                self.http
                    .post(format!("{}/payments/webhook", self.base))
                    .header("content-type", "application/json")
                    .header("Stripe-Signature", signature)
                    .body(body),
            )
            .await?;
        anyhow::ensure!(status == 200, "the webhook answered {status}: {answer}");
        Ok(())
    }
}

fn time_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The sandbox's session, completed and paid with `cents` under a payment of our naming, and
/// billed that much: a bill for `cents` as the list price, nothing off, no tax. (A bill for the
/// course's price with a lower total would be a discount, which unlocks.)
fn paid_session(app: &TestApp, session_id: &str, cents: i64) -> anyhow::Result<Value> {
    let mut session = app
        .stripe
        .session(session_id)
        .map_err(|err| anyhow::anyhow!("the sandbox's session {session_id}: {err:?}"))?;
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["amount_subtotal"] = json!(cents);
    session["amount_total"] = json!(cents);
    session["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
    session["payment_intent"] = json!(format!("pi_e2e_{}", uuid::Uuid::new_v4().simple()));
    session["url"] = Value::Null;
    Ok(session)
}

/// Waits until no element matches `css`.
async fn wait_gone(browser: &Browser, css: &str) -> anyhow::Result<()> {
    browser
        .eventually(&format!("`{css}` to disappear"), DEFAULT_WAIT, || async {
            let left = browser.client().find_all(Locator::Css(css)).await?;
            Ok(left.is_empty().then_some(()))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_accepts_a_held_purchase_and_replays_an_unmatched_event_on_the_operations_page() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        let api = Api::new(app);

        // A buyer pays 9.99 USD, billed for 9.99 USD, for the 19.99 USD course: held for review.
        let buyer = api.student(&unique_email("hal")).await?;
        let course_id = api.paid_course_id().await?;
        let (session_id, purchase_id) = api.checkout(&buyer, &course_id).await?;
        let held_event = format!("evt_e2e_short_{}", uuid::Uuid::new_v4().simple());
        let short = paid_session(app, &session_id, SHORT_CENTS)?;
        api.deliver_completed(app, &held_event, short).await?;
        let status = api.purchase_status(&buyer, &course_id).await?;
        assert_eq!(status["purchaseStatus"], "pending", "{status}");
        assert_eq!(status["isPurchased"], false, "{status}");

        // An event about a purchase this shop never had: unmatched.
        let unmatched = format!("evt_e2e_stranger_{}", uuid::Uuid::new_v4().simple());
        let stranger = uuid::Uuid::new_v4().to_string();
        let mut foreign = paid_session(app, &session_id, 1999)?;
        foreign["id"] = json!(format!("cs_test_e2e_{}", uuid::Uuid::new_v4().simple()));
        foreign["client_reference_id"] = json!(stranger);
        foreign["metadata"] = json!({ "purchase_id": stranger });
        api.deliver_completed(app, &unmatched, foreign).await?;

        // Someone who is not an admin sees no operations.
        browser.goto(&app.url("/operations")).await?;
        browser.wait_for("body[data-ready='true']").await?;
        let email = unique_email("olga");
        sign_up(browser, "Olga Operator", &email).await?;
        browser.wait_for("#ops-denied").await?;
        let operations_shown = browser
            .client()
            .find(Locator::Css("#operations"))
            .await?
            .is_displayed()
            .await?;
        assert!(!operations_shown, "a student sees no operations");

        // The operator makes her admin; the page reads the role from her profile.
        app.grant_admin(&email).await?;
        browser.goto(&app.url("/operations")).await?;
        browser.wait_for("#operations[data-loaded='true']").await?;
        let row = format!("#held-purchases tr[data-purchase-id='{purchase_id}']");
        let text = browser.wait_for(&row).await?.text().await?;
        assert!(
            text.contains("19.99 USD") && text.contains("9.99 USD"),
            "the price and what was received: {text}"
        );

        // Accept it, with a reason.
        let reason = "Paid the old price; honoured";
        browser
            .click(&format!("button[data-accept='{purchase_id}']"))
            .await?;
        browser
            .fill(&format!("input[data-reason-for='{purchase_id}']"), reason)
            .await?;
        browser
            .screenshot_to(&artifacts_dir().join("operations-held.png"))
            .await?;
        browser
            .click(&format!("button[data-confirm='{purchase_id}']"))
            .await?;
        browser
            .wait_for_text("#message", "Accepted purchase")
            .await?;
        wait_gone(browser, &row).await?;
        browser.wait_for("#held-empty").await?;
        let entry =
            format!("#audit-trail tr[data-action='accept_held'][data-purchase-id='{purchase_id}']");
        let audited = browser.wait_for(&entry).await?.text().await?;
        assert!(
            audited.contains(reason) && audited.contains("9.99 USD") && audited.contains("you"),
            "who, what and why: {audited}"
        );
        let status = api.purchase_status(&buyer, &course_id).await?;
        assert_eq!(status["purchaseStatus"], "completed", "{status}");
        assert_eq!(status["isPurchased"], true, "{status}");

        // Replay the unmatched event: still about no purchase of ours, and audited.
        let event_row = format!("#ops-events tr[data-event-id='{unmatched}']");
        let listed = browser.wait_for(&event_row).await?.text().await?;
        assert!(listed.contains("unmatched"), "{listed}");
        browser
            .click(&format!("button[data-replay='{unmatched}']"))
            .await?;
        browser
            .wait_for_text("#message", &format!("Replayed {unmatched}: unmatched"))
            .await?;
        browser
            .wait_for(&format!(
                "#audit-trail tr[data-action='replay_event'][data-event-id='{unmatched}']"
            ))
            .await?;
        browser
            .click(&format!("button[data-show-event='{unmatched}']"))
            .await?;
        browser
            .wait_for_text("#event-detail-payload", &unmatched)
            .await?;

        browser.click("#event-detail-close").await?;
        browser
            .screenshot_to(&artifacts_dir().join("operations.png"))
            .await?;

        // The store's header links to the page for her.
        browser.goto(&app.url("/")).await?;
        browser.wait_for("body[data-ready='true']").await?;
        browser.wait_for("#ops-link").await?;
        Ok(())
    })
    .await;
}
