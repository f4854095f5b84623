//! The contract against the real Stripe adapter, talking HTTP to the Stripe sandbox.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use async_trait::async_trait;
use lms_gateway_contract::{
    gateway_contract_tests, GatewayWorld, Promotion, CONTRACT_TAX_RATE_BPS,
};
use lms_ports::{CheckoutRequest, GatewaySession, PaymentGateway};
use lms_stripe_http::{CheckoutOptions, StripeConfig, StripeGateway, TaxBehavior};
use lms_stripe_sandbox::{PaymentMethod, Sandbox, SandboxConfig};

struct StripeWorld {
    sandbox: Sandbox,
    /// Offers promotion codes; no automatic tax.
    gateway: StripeGateway,
    /// The same, with automatic tax (exclusive) at the sandbox's flat rate.
    taxed: StripeGateway,
}

async fn stripe_world() -> StripeWorld {
    let sandbox = Sandbox::start(SandboxConfig {
        tax_rate_bps: u32::try_from(CONTRACT_TAX_RATE_BPS).expect("a rate"),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let gateway_with = |automatic_tax| {
        let config = StripeConfig::new(
            sandbox.secret_key(),
            "whsec_sandbox",
            "http://shop.test/ok?session_id={CHECKOUT_SESSION_ID}",
            "http://shop.test/cancel",
        )
        .and_then(|config| config.with_api_base(sandbox.base_url()))
        .expect("valid config")
        .with_checkout(CheckoutOptions {
            allow_promotion_codes: true,
            automatic_tax,
            ..CheckoutOptions::default()
        });
        StripeGateway::new(config).expect("gateway builds")
    };
    let gateway = gateway_with(None);
    let taxed = gateway_with(Some(TaxBehavior::Exclusive));
    StripeWorld {
        sandbox,
        gateway,
        taxed,
    }
}

#[async_trait]
impl GatewayWorld for StripeWorld {
    fn gateway(&self) -> &dyn PaymentGateway {
        &self.gateway
    }

    async fn customer_pays(&self, session_id: &str) {
        // With nothing due, the sandbox completes the order without charging the card.
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

    async fn open_taxed_session(&self, request: &CheckoutRequest) -> GatewaySession {
        self.taxed
            .create_checkout_session(request)
            .await
            .expect("a taxed session")
    }

    async fn customer_applies_code(&self, session_id: &str, promotion: Promotion) -> String {
        let session = self
            .sandbox
            .apply_promotion_code(session_id, promotion.typed())
            .expect("the code applies");
        session["discounts"][0]["promotion_code"]
            .as_str()
            .expect("the session names the code")
            .to_owned()
    }

    async fn customer_count(&self) -> usize {
        self.sandbox.customer_count()
    }

    async fn session_customer(&self, session_id: &str) -> Option<String> {
        self.sandbox.session(session_id).expect("a session")["customer"]
            .as_str()
            .map(str::to_owned)
    }
}

gateway_contract_tests!(stripe_world());
