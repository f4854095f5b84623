//! What both the statement capture and the measured app need: the Stripe stand-in the bench
//! owns (so it can pay sessions and sign events itself), the app's settings in Stripe mode
//! against it, and purchases paid in the sandbox with their `checkout.session.completed`
//! events.

use crate::{Api, Buyer};
use anyhow::{anyhow, ensure, Context};
use lms_stripe_sandbox::{PaymentMethod, PaymentOutcome, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;

pub const STRIPE_KEY: &str = "sk_test_lms_bench_compare";
pub const WEBHOOK_SECRET: &str = "whsec_lms_bench_compare";
/// The event each first delivery and duplicate carries.
pub const EVENT_TYPE: &str = "checkout.session.completed";

/// The bench's own Stripe stand-in: the app talks to it through `STRIPE_API_BASE`; it keeps
/// its events for the bench (no webhook URL, so it delivers nothing itself).
///
/// # Errors
/// When it cannot be started.
pub async fn sandbox() -> anyhow::Result<Sandbox> {
    Sandbox::start(SandboxConfig {
        secret_key: STRIPE_KEY.to_owned(),
        webhook_secrets: vec![WEBHOOK_SECRET.to_owned()],
        webhook_url: None,
        ..SandboxConfig::default()
    })
    .await
    .context("starting the Stripe sandbox")
}

/// The app's configuration (environment variables, or `Settings::from_pairs`): Stripe mode
/// (test key) against the bench's sandbox, the given database, on loopback at `port`; the
/// sign-in/sign-up limits off (the set-up signs many users up from one address); the
/// background reconciler off (it would ask the sandbox about purchases the bench keeps
/// pending on purpose); everything else at its default (HTTP workers, pool size, logging at
/// info in JSON, metrics on `metrics`, or off).
pub fn app_settings(
    database_url: &str,
    port: u16,
    sandbox_url: &str,
    jwt_secret: &str,
    metrics: Option<u16>,
) -> Vec<(String, String)> {
    [
        ("APP_MODE", "stripe".to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", port.to_string()),
        ("DATABASE_URL", database_url.to_owned()),
        ("JWT_SECRET", jwt_secret.to_owned()),
        ("STRIPE_SECRET_KEY", STRIPE_KEY.to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", sandbox_url.to_owned()),
        (
            "METRICS_ADDR",
            metrics.map_or_else(|| "off".to_owned(), |port| format!("127.0.0.1:{port}")),
        ),
        ("RECONCILE_INTERVAL", "off".to_owned()),
        ("SIGN_UP_LIMIT_PER_IP", "off".to_owned()),
        ("SIGN_IN_LIMIT_PER_IP", "off".to_owned()),
        ("SIGN_IN_LIMIT_PER_EMAIL", "off".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// A fresh 64-hex-digit JWT key.
pub fn jwt_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// One purchase, paid in the sandbox, with the event that tells the app so.
#[derive(Debug, Clone)]
pub struct Paid {
    pub buyer: Buyer,
    /// The purchase's id, from the event's metadata.
    pub purchase_id: uuid::Uuid,
    /// `checkout.session.completed`, as the sandbox emitted it.
    pub event: Value,
}

impl Paid {
    pub fn event_id(&self) -> &str {
        self.event["id"].as_str().unwrap_or_default()
    }

    /// The payment intent the session was paid with.
    pub fn payment_intent(&self) -> &str {
        self.event["data"]["object"]["payment_intent"]
            .as_str()
            .unwrap_or_default()
    }
}

/// `count` purchases: buyers signed up (see [`Api::buyers`]), a checkout each through the app
/// (the real Stripe adapter creates the session at the sandbox), paid with the test card.
///
/// # Errors
/// Any unexpected answer, or an event without the purchase's id.
pub async fn paid_purchases(
    api: &Api,
    sandbox: &Sandbox,
    count: usize,
) -> anyhow::Result<Vec<Paid>> {
    let buyers = api.buyers(count).await.context("setting up buyers")?;
    let mut sessions = Vec::with_capacity(buyers.len());
    for buyer in &buyers {
        let (status, session) = api.checkout(buyer).await?;
        ensure!(status == StatusCode::CREATED, "checkout: {status}");
        let outcome = sandbox
            .pay(
                &session,
                &PaymentMethod::Card("4242424242424242".to_owned()),
            )
            .map_err(|err| anyhow!("sandbox pay: {err:?}"))?;
        ensure!(outcome == PaymentOutcome::Paid, "sandbox pay: {outcome:?}");
        sessions.push(session);
    }
    let mut events: HashMap<String, Value> = sandbox
        .events_of_type(EVENT_TYPE)
        .into_iter()
        .filter_map(|event| {
            let session = event["data"]["object"]["id"].as_str()?.to_owned();
            Some((session, event))
        })
        .collect();
    buyers
        .into_iter()
        .zip(sessions)
        .map(|(buyer, session)| {
            let event = events
                .remove(&session)
                .ok_or_else(|| anyhow!("the sandbox emitted no {EVENT_TYPE} for {session}"))?;
            let purchase_id = event["data"]["object"]["metadata"]["purchase_id"]
                .as_str()
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .ok_or_else(|| anyhow!("{EVENT_TYPE} without metadata.purchase_id: {event}"))?;
            Ok(Paid {
                buyer,
                purchase_id,
                event,
            })
        })
        .collect()
}
