//! The contract against the in-memory fake gateway used by the use-case and API tests.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use async_trait::async_trait;
use lms_domain::{Bill, Money};
use lms_gateway_contract::{
    gateway_contract_tests, GatewayWorld, Promotion, CONTRACT_TAX_RATE_BPS,
};
use lms_in_memory::FakeGateway;
use lms_ports::{CheckoutRequest, GatewaySession, PaymentGateway};
use std::collections::HashSet;
use std::sync::Mutex;

/// The fake computes no bill of its own: this world plays the gateway's part, working out
/// the bill a code or the tax rate makes, and scripts the fake with it.
struct FakeWorld {
    gateway: FakeGateway,
    /// Sessions opened with tax.
    taxed: Mutex<HashSet<String>>,
}

/// `numerator / denominator`, rounded half-up (non-negative amounts).
fn half_up(numerator: i64, denominator: i64) -> i64 {
    (2 * numerator + denominator) / (2 * denominator)
}

impl FakeWorld {
    fn session(&self, session_id: &str) -> GatewaySession {
        self.gateway
            .session(session_id)
            .expect("a session of the fake")
    }

    fn is_taxed(&self, session_id: &str) -> bool {
        self.taxed
            .lock()
            .expect("not poisoned")
            .contains(session_id)
    }

    /// What a session of `subtotal` bills with `discount` off, taxed or not.
    fn bill(&self, session_id: &str, subtotal: Money, discount: i64) -> Bill {
        let money = |minor: i64| Money::new(minor, subtotal.currency()).expect("an amount");
        let taxable = subtotal.minor() - discount;
        let tax = if self.is_taxed(session_id) {
            half_up(taxable * CONTRACT_TAX_RATE_BPS, 10_000)
        } else {
            0
        };
        Bill::new(
            subtotal,
            money(discount),
            money(tax),
            money(taxable + tax),
            None,
        )
        .expect("one currency")
    }

    /// Makes the (open) session bill `bill`, emitting nothing, as a gateway recomputing its
    /// page's amounts does.
    fn rebill(&self, session_id: &str, bill: Bill) {
        assert!(self.gateway.update_session(session_id, |session| {
            session.amount_total = bill.total().minor();
            session.currency = bill.currency();
            session.bill = Some(bill);
        }));
    }
}

#[async_trait]
impl GatewayWorld for FakeWorld {
    fn gateway(&self) -> &dyn PaymentGateway {
        &self.gateway
    }

    async fn customer_pays(&self, session_id: &str) {
        let session = self.session(session_id);
        if session.amount_total == 0 {
            let bill = session.bill.expect("a free session has its bill");
            assert!(self
                .gateway
                .complete_session_without_payment(session_id, bill));
        } else {
            assert!(self
                .gateway
                .pay_session(session_id, &format!("pi_fake_{session_id}")));
        }
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

    async fn open_taxed_session(&self, request: &CheckoutRequest) -> GatewaySession {
        let session = self
            .gateway
            .create_checkout_session(request)
            .await
            .expect("a session");
        self.taxed
            .lock()
            .expect("not poisoned")
            .insert(session.id.clone());
        self.rebill(&session.id, self.bill(&session.id, request.amount, 0));
        self.session(&session.id)
    }

    async fn customer_applies_code(&self, session_id: &str, promotion: Promotion) -> String {
        let subtotal = self
            .session(session_id)
            .bill
            .expect("a session bills its price")
            .subtotal();
        let (discount, code) = match promotion {
            Promotion::QuarterOff => (
                half_up(subtotal.minor() * 25, 100),
                "promo_fake_quarter_off",
            ),
            Promotion::Free => (subtotal.minor(), "promo_fake_free"),
        };
        self.rebill(session_id, self.bill(session_id, subtotal, discount));
        // The fake knows a code only as the world tells it, as a Dashboard would.
        self.gateway
            .register_promotion_code(code, promotion.typed());
        assert!(self.gateway.apply_promotion_code(session_id, code));
        code.to_owned()
    }

    async fn customer_count(&self) -> usize {
        self.gateway.customer_count()
    }

    async fn session_customer(&self, session_id: &str) -> Option<String> {
        let purchase_id = self.session(session_id).purchase_id;
        self.gateway
            .checkout_requests()
            .into_iter()
            .find(|request| Some(request.purchase_id) == purchase_id)
            .and_then(|request| request.customer_id)
    }
}

gateway_contract_tests!(async {
    FakeWorld {
        gateway: FakeGateway::new(),
        taxed: Mutex::new(HashSet::new()),
    }
});
