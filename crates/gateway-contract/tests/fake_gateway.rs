//! The contract against the in-memory fake gateway used by the use-case and API tests.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use async_trait::async_trait;
use lms_gateway_contract::{gateway_contract_tests, GatewayWorld};
use lms_in_memory::{FakeEvent, FakeGateway};
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
        let session = self.gateway.session(session_id).expect("session exists");
        let mut event = FakeEvent::new(format!("evt_{session_id}"), "checkout.session.completed")
            .with_session(session_id)
            .created_at(time::OffsetDateTime::now_utc());
        if let Some(purchase_id) = session.purchase_id {
            event = event.for_purchase(purchase_id);
        }
        for fact in session.facts() {
            event = event.with_fact(fact);
        }
        FakeGateway::signed_event(&event)
    }
}

gateway_contract_tests!(async {
    FakeWorld {
        gateway: FakeGateway::new(),
    }
});
