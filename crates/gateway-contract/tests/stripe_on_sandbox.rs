//! The contract against the real Stripe adapter, talking HTTP to the Stripe sandbox.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use async_trait::async_trait;
use lms_gateway_contract::{gateway_contract_tests, GatewayWorld};
use lms_ports::PaymentGateway;
use lms_stripe_http::{StripeConfig, StripeGateway};
use lms_stripe_sandbox::{PaymentMethod, Sandbox, SandboxConfig};

struct StripeWorld {
    sandbox: Sandbox,
    gateway: StripeGateway,
}

async fn stripe_world() -> StripeWorld {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts");
    let config = StripeConfig::new(
        sandbox.secret_key(),
        "whsec_sandbox",
        "http://shop.test/ok?session_id={CHECKOUT_SESSION_ID}",
        "http://shop.test/cancel",
    )
    .and_then(|config| config.with_api_base(sandbox.base_url()))
    .expect("valid config");
    let gateway = StripeGateway::new(config).expect("gateway builds");
    StripeWorld { sandbox, gateway }
}

#[async_trait]
impl GatewayWorld for StripeWorld {
    fn gateway(&self) -> &dyn PaymentGateway {
        &self.gateway
    }

    async fn customer_pays(&self, session_id: &str) {
        self.sandbox
            .pay(
                session_id,
                &PaymentMethod::Card("4242 4242 4242 4242".into()),
            )
            .expect("payment");
    }

    async fn completion_webhook(&self, session_id: &str) -> (Vec<u8>, String) {
        let event = self
            .sandbox
            .events_of_type("checkout.session.completed")
            .into_iter()
            .find(|event| event["data"]["object"]["id"] == session_id)
            .expect("the sandbox emitted the completion event");
        self.sandbox.signed(&event)
    }
}

gateway_contract_tests!(stripe_world());
