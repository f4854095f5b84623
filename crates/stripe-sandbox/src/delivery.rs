//! At-least-once webhook delivery with exponential backoff, like Stripe's (but in
//! milliseconds rather than hours, so tests and demos do not wait).

use crate::{lock, signing, Inner};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// After this many failed attempts an event is given up (Stripe gives up after 3 days).
    pub max_attempts: u32,
    pub request_timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_attempts: 12,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// One attempt to deliver one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub attempt: u32,
    /// The endpoint's HTTP status; `None` when it could not be reached.
    pub status: Option<u16>,
}

/// Delivers events as they are emitted, until the sandbox stops.
pub(crate) async fn run(inner: Arc<Inner>) {
    let Some(url) = inner.config.webhook_url.clone() else {
        return;
    };
    let client = match reqwest::Client::builder()
        .timeout(inner.config.delivery.request_timeout)
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "sandbox webhook client could not be built");
            return;
        }
    };
    let mut cursor = 0;
    while !inner.stopped.load(Ordering::Relaxed) {
        let batch: Vec<Value> = inner.ledger().events()[cursor..].to_vec();
        let first = cursor;
        cursor += batch.len();
        // Emitted while delivery was off: lost for good, as the switch promises.
        let batch: Vec<Value> = batch
            .into_iter()
            .enumerate()
            .filter(|(offset, event)| {
                let dropped = inner.is_dropped(first + offset);
                if dropped {
                    tracing::debug!(
                        event_id = event["id"].as_str().unwrap_or_default(),
                        "sandbox webhook delivery is off: event dropped"
                    );
                }
                !dropped
            })
            .map(|(_, event)| event)
            .collect();
        let chaos = lock(&inner.chaos).clone();
        let mut batch: Vec<Value> = batch
            .into_iter()
            .flat_map(|event| {
                if chaos.duplicate_deliveries {
                    vec![event.clone(), event]
                } else {
                    vec![event]
                }
            })
            .collect();
        if chaos.shuffle_deliveries {
            shuffle(&mut batch);
        }
        for event in batch {
            tokio::spawn(deliver(
                Arc::clone(&inner),
                client.clone(),
                url.clone(),
                event,
                chaos.delivery_delay,
            ));
        }
        // Woken by new events; the timeout also catches the clock-driven expiries.
        let _ = tokio::time::timeout(Duration::from_millis(250), inner.new_events.notified()).await;
    }
}

async fn deliver(
    inner: Arc<Inner>,
    client: reqwest::Client,
    url: String,
    event: Value,
    delay: Duration,
) {
    let event_id = event["id"].as_str().unwrap_or_default().to_owned();
    let body = event.to_string().into_bytes();
    let config = inner.config.delivery.clone();
    let mut backoff = config.initial_backoff;
    tokio::time::sleep(delay).await;
    for attempt in 1..=config.max_attempts {
        if inner.stopped.load(Ordering::Relaxed) {
            return;
        }
        // Signed at send time, as Stripe does, so retries carry a fresh timestamp.
        let header = signing::signature_header(&body, inner.now(), &inner.config.webhook_secrets);
        let response = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Stripe-Signature", header)
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks) lms-stripe-sandbox",
            )
            .body(body.clone())
            .send()
            .await;
        let status = response.as_ref().ok().map(|r| r.status().as_u16());
        lock(&inner.deliveries).push(DeliveryRecord {
            event_id: event_id.clone(),
            attempt,
            status,
        });
        if status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        tracing::info!(
            event_id,
            attempt,
            ?status,
            "sandbox webhook delivery failed; retrying"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
    tracing::warn!(event_id, "sandbox gave up delivering the event");
}

/// Fisher-Yates with a throwaway random source (uuid v4 bytes): no extra dependency needed.
fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let random = uuid::Uuid::new_v4().as_u128();
        let j = usize::try_from(random % (i as u128 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}
