//! A bound on the request rate to the payment provider: [`PacedGateway`] wraps a gateway and
//! spaces every call that reaches the network at least `1 / rate` seconds after the previous
//! one (of any caller sharing it). The reconciler's gateway is wrapped so that a large backlog
//! of pending purchases never turns into a burst the provider rate-limits; webhooks and
//! checkouts are not paced (their gateway is the unwrapped one).

use async_trait::async_trait;
use lms_ports::{
    CheckoutRequest, CustomerRequest, EventPage, EventQuery, GatewayError, GatewaySession,
    PaymentGateway, RefundOutcome, RefundRequest, WebhookEvent, WebhookRejection,
};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Hands out turns at most `rate` a second.
#[derive(Debug)]
pub(crate) struct Pacer {
    period: Duration,
    /// The earliest instant the next turn may start.
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(crate) fn new(rate: NonZeroU32) -> Self {
        Self {
            period: Duration::from_secs(1) / rate.get(),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's turn. Turns are reserved in the order callers ask, so callers
    /// sharing the pacer never exceed the rate together.
    pub(crate) async fn turn(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let slot = next.map_or(now, |next| next.max(now));
            *next = Some(slot + self.period);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A gateway whose network calls are paced by a [`Pacer`]; the pure ones (webhook
/// verification, decoding a stored event) are not.
pub(crate) struct PacedGateway {
    inner: Arc<dyn PaymentGateway>,
    pacer: Pacer,
}

impl std::fmt::Debug for PacedGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacedGateway")
            .field("pacer", &self.pacer)
            .finish_non_exhaustive()
    }
}

impl PacedGateway {
    pub(crate) fn new(inner: Arc<dyn PaymentGateway>, rate: NonZeroU32) -> Self {
        Self {
            inner,
            pacer: Pacer::new(rate),
        }
    }
}

#[async_trait]
impl PaymentGateway for PacedGateway {
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError> {
        self.pacer.turn().await;
        self.inner.create_checkout_session(request).await
    }

    async fn create_customer(&self, request: &CustomerRequest) -> Result<String, GatewayError> {
        self.pacer.turn().await;
        self.inner.create_customer(request).await
    }

    async fn promotion_code_text(
        &self,
        promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        self.pacer.turn().await;
        self.inner.promotion_code_text(promotion_code_id).await
    }

    async fn retrieve_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        self.pacer.turn().await;
        self.inner.retrieve_checkout_session(session_id).await
    }

    async fn find_session_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError> {
        self.pacer.turn().await;
        self.inner
            .find_session_by_payment_intent(payment_intent_id)
            .await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        self.pacer.turn().await;
        self.inner.refund(request).await
    }

    async fn expire_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        self.pacer.turn().await;
        self.inner.expire_checkout_session(session_id).await
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        self.pacer.turn().await;
        self.inner.list_events(query).await
    }

    fn decode_stored_event(&self, payload: &[u8]) -> Result<WebhookEvent, WebhookRejection> {
        self.inner.decode_stored_event(payload)
    }

    fn verify_webhook(
        &self,
        payload: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookEvent, WebhookRejection> {
        self.inner.verify_webhook(payload, signature_header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_by_the_rate_across_callers() {
        let pacer = Arc::new(Pacer::new(NonZeroU32::MIN.saturating_add(3)));
        let started = Instant::now();
        // The first turn is immediate.
        pacer.turn().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        // Two callers at once: one gets the next slot, the other the one after.
        let (a, b) = (Arc::clone(&pacer), Arc::clone(&pacer));
        let (first, second) = tokio::join!(
            async move {
                a.turn().await;
                started.elapsed()
            },
            async move {
                b.turn().await;
                started.elapsed()
            }
        );
        let mut waits = [first, second];
        waits.sort();
        assert_eq!(
            waits,
            [Duration::from_millis(250), Duration::from_millis(500)]
        );
        // After a quiet spell, no debt and no burst credit: the next turn is immediate.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let quiet = Instant::now();
        pacer.turn().await;
        assert_eq!(quiet.elapsed(), Duration::ZERO);
        pacer.turn().await;
        assert_eq!(quiet.elapsed(), Duration::from_millis(250));
    }
}
