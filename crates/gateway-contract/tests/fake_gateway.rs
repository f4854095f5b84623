//! The contract against the in-memory fake gateway used by the use-case and API tests.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use async_trait::async_trait;
use lms_gateway_contract::{gateway_contract_tests, GatewayWorld};
use lms_in_memory::FakeGateway;
use lms_ports::PaymentGateway;

struct FakeWorld {
    gateway: FakeGateway,
}

#[async_trait]
impl GatewayWorld for FakeWorld {
    fn gateway(&self) -> &dyn PaymentGateway {
        &self.gateway
    }

    async fn customer_pays(&self, session_id: &str) {
        assert!(self
            .gateway
            .pay_session(session_id, &format!("pi_fake_{session_id}")));
    }

    async fn completion_webhook(&self, session_id: &str) -> (Vec<u8>, String) {
        // The event the fake emitted when the customer paid, as the Stripe world takes the
        // sandbox's.
        let event = self
            .gateway
            .events()
            .into_iter()
            .find(|event| {
                event.event_type == "checkout.session.completed"
                    && event.checkout_session_id.as_deref() == Some(session_id)
            })
            .expect("the fake emitted the completion event");
        FakeGateway::signed_event(&event)
    }
}

gateway_contract_tests!(async {
    FakeWorld {
        gateway: FakeGateway::new(),
    }
});
