//! Promotion codes, tax, Adaptive Pricing, receipts and customers: what a purchase records
//! from the gateway's bill, when it unlocks, and how far it can be refunded.

use crate::support::{usd, usd_bill, World};
use lms_domain::{
    Bill, Conversion, Currency, Money, PaymentDetails, PaymentFact, PurchaseStatus, ReviewReason,
};
use lms_in_memory::{FakeEvent, GatewayCall};
use lms_ports::{GatewayError, PageRequest, UserRepo};
use lms_use_cases::{FieldError, Operator, UseCaseError};

const PRICE: i64 = 2000;

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

/// The course's 20.00 USD presented as 18.50 EUR by Adaptive Pricing: the amounts in euros,
/// the conversion in the price's dollars.
fn presented_in_euros() -> Bill {
    Bill::new(
        eur(1850),
        eur(0),
        eur(0),
        eur(1850),
        Some(Conversion::new(usd(PRICE), usd(PRICE)).unwrap()),
    )
    .unwrap()
}

#[tokio::test]
async fn a_payment_presented_in_another_currency_unlocks_and_refunds_in_that_currency() {
    let world = World::new();
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world
        .billed_purchase(&buyer, &course, "pi_eur", presented_in_euros(), None)
        .await;
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert!(purchase.unlocks_course());
    assert_eq!(purchase.captured(), Some(eur(1850)));
    assert_eq!(purchase.bill(), Some(presented_in_euros()));

    // Bounded by what was paid, in euros: not the dollar price.
    assert_eq!(
        world
            .services
            .refund(&teacher, purchase.id, Some(1851), None)
            .await
            .unwrap_err(),
        UseCaseError::Validation(vec![FieldError::new(
            "amountCents",
            "refund amount must be between 1 and 1850 minor units"
        )])
    );
    let part = world
        .services
        .refund(&teacher, purchase.id, Some(850), None)
        .await
        .unwrap();
    assert_eq!(part.refunded_amount(), eur(850));
    assert_eq!(part.status(), PurchaseStatus::Completed);
    let rest = world
        .services
        .refund(&teacher, purchase.id, None, None)
        .await
        .unwrap();
    assert_eq!(rest.refunded_amount(), eur(1850));
    assert_eq!(rest.status(), PurchaseStatus::Refunded);
    let asked: Vec<Money> = world.gateway.refunds().iter().map(|r| r.amount).collect();
    assert_eq!(asked, vec![eur(850), eur(1000)]);
}

#[tokio::test]
async fn a_discounted_payment_unlocks_and_records_its_promotion_code() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let bill = usd_bill(PRICE, 500, 0, 1500);
    world
        .gateway
        .register_promotion_code("promo_SPRING25", "SPRING25");
    let purchase = world
        .billed_purchase(&buyer, &course, "pi_spring", bill, Some("promo_SPRING25"))
        .await;
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(purchase.captured(), Some(usd(1500)));
    assert_eq!(purchase.bill(), Some(bill));
    assert_eq!(
        purchase.details.promotion_code.as_deref(),
        Some("SPRING25"),
        "the code as the customer typed it, not the gateway's id"
    );
}

#[tokio::test]
async fn a_promotion_code_the_gateway_cannot_name_keeps_its_id_and_the_payment_still_applies() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let bill = usd_bill(PRICE, 500, 0, 1500);
    let (purchase, session) = world.checkout(&buyer, &course).await;
    assert!(world
        .gateway
        .pay_session_billed(&session.id, "pi_spring", bill));
    let event = FakeEvent::new("evt_spring", "checkout.session.completed")
        .with_session(&session.id)
        .with_payment_intent("pi_spring")
        .with_promotion_code("promo_SPRING25")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: bill.total(),
            at: None,
        })
        .with_fact(PaymentFact::Billed(bill));
    // The next gateway call is the promotion code's lookup.
    world.gateway.fail_next(
        1,
        lms_ports::GatewayError::unavailable("promotion codes are down"),
    );
    world.webhook(&event).await.unwrap();
    assert!(
        world.gateway.calls().last()
            == Some(&lms_in_memory::GatewayCall::PromotionCodeText(
                "promo_SPRING25".to_owned()
            )),
        "the failed call was the lookup"
    );
    let purchase = world.purchase(purchase.id).await;
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(
        purchase.details.promotion_code.as_deref(),
        Some("promo_SPRING25")
    );
}

#[tokio::test]
async fn a_bill_for_another_price_is_held_for_review_even_when_paid_in_full() {
    let world = World::new();
    let admin = world.admin().await;
    let (_, course, buyer) = world.shop(PRICE, true).await;
    // The gateway billed 15.00 as the list price, not the course's 20.00.
    let purchase = world
        .billed_purchase(
            &buyer,
            &course,
            "pi_cheap",
            usd_bill(1500, 0, 0, 1500),
            None,
        )
        .await;
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    assert!(!purchase.unlocks_course());
    assert_eq!(
        purchase.review_reason(),
        Some(ReviewReason::PriceMismatch {
            price: usd(PRICE),
            billed: usd(1500)
        })
    );
    let held = world
        .services
        .list_held(Operator::Admin(&admin), PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(
        held.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![purchase.id]
    );
    // A refund resolves it, for what was paid.
    let refunded = world
        .services
        .refund_held(Operator::Admin(&admin), purchase.id, "not our price")
        .await
        .unwrap();
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
    assert_eq!(world.gateway.refunds()[0].amount, usd(1500));
}

#[tokio::test]
async fn a_payment_short_of_the_discounted_total_is_held() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    let event = FakeEvent::new("evt_short_of_bill", "checkout.session.completed")
        .with_session(&session.id)
        .with_payment_intent("pi_short")
        .with_fact(PaymentFact::Billed(usd_bill(PRICE, 500, 0, 1500)))
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(1400),
            at: None,
        });
    world.webhook(&event).await.unwrap();
    let purchase = world.purchase(purchase.id).await;
    assert_eq!(
        purchase.review_reason(),
        Some(ReviewReason::AmountMismatch {
            expected: usd(1500),
            received: usd(1400)
        })
    );
}

#[tokio::test]
async fn a_hundred_percent_off_code_completes_without_a_charge_and_nothing_is_refundable() {
    let world = World::new();
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    let free = usd_bill(PRICE, PRICE, 0, 0);
    assert!(world
        .gateway
        .complete_session_without_payment(&session.id, free));
    // Stripe's shape: no payment intent, `no_payment_required`; the event proves a payment
    // of zero and the bill.
    let event = FakeEvent::new("evt_free_code", "checkout.session.completed")
        .with_session(&session.id)
        .with_promotion_code("promo_FREECOURSE")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(0),
            at: None,
        })
        .with_fact(PaymentFact::Billed(free));
    world.webhook(&event).await.unwrap();
    let purchase = world.purchase(purchase.id).await;
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert!(purchase.unlocks_course());
    assert_eq!(purchase.captured(), Some(usd(0)));
    assert!(matches!(
        world
            .services
            .refund(&teacher, purchase.id, None, None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
    assert!(world.gateway.refunds().is_empty());
}

#[tokio::test]
async fn a_session_synced_after_a_free_code_completes_the_purchase_too() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let (purchase, session) = world.checkout(&buyer, &course).await;
    world
        .gateway
        .complete_session_without_payment(&session.id, usd_bill(PRICE, PRICE, 0, 0));
    let view = world.status_view(&buyer, &course, Some(&session.id)).await;
    assert!(view.is_purchased());
    assert_eq!(
        world.purchase(purchase.id).await.bill(),
        Some(usd_bill(PRICE, PRICE, 0, 0))
    );
}

#[tokio::test]
async fn exclusive_tax_is_accepted_and_recorded() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let taxed = usd_bill(PRICE, 0, 400, 2400);
    let purchase = world
        .billed_purchase(&buyer, &course, "pi_taxed", taxed, None)
        .await;
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(purchase.captured(), Some(usd(2400)));
    assert_eq!(purchase.bill().map(|bill| bill.tax()), Some(usd(400)));
    let history = world
        .services
        .purchase_history(&buyer, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(history.items[0].purchase.bill(), Some(taxed));
}

#[tokio::test]
async fn a_refund_never_exceeds_what_was_paid() {
    let world = World::new();
    let (teacher, course, buyer) = world.shop(PRICE, true).await;
    let discounted = world
        .billed_purchase(
            &buyer,
            &course,
            "pi_bounded",
            usd_bill(PRICE, 500, 0, 1500),
            None,
        )
        .await;
    // The price was 20.00 but 15.00 was paid: 15.01 is too much.
    assert!(matches!(
        world
            .services
            .refund(&teacher, discounted.id, Some(1501), None)
            .await,
        Err(UseCaseError::Validation(_))
    ));
    world
        .services
        .refund(&teacher, discounted.id, Some(1000), None)
        .await
        .unwrap();
    assert!(matches!(
        world
            .services
            .refund(&teacher, discounted.id, Some(501), None)
            .await,
        Err(UseCaseError::Validation(_))
    ));
    let all = world
        .services
        .refund(&teacher, discounted.id, None, None)
        .await
        .unwrap();
    assert_eq!(all.refunded_amount(), usd(1500));
    assert!(matches!(
        world
            .services
            .refund(&teacher, discounted.id, Some(1), None)
            .await,
        Err(UseCaseError::NotRefundable(_))
    ));
    let total: i64 = world
        .gateway
        .refunds()
        .iter()
        .map(|r| r.amount.minor())
        .sum();
    assert_eq!(total, 1500);
}

#[tokio::test]
async fn a_webhooks_receipt_and_promotion_code_are_kept_first_learned() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    let purchase = world.paid_purchase(&buyer, &course, "pi_receipt").await;
    let charge = FakeEvent::new("evt_charge_receipt", "charge.succeeded")
        .with_payment_intent("pi_receipt")
        .with_receipt_url("https://pay.stripe.com/receipts/first")
        .with_fact(PaymentFact::PaymentSucceeded {
            amount: usd(PRICE),
            at: None,
        });
    world.webhook(&charge).await.unwrap();
    let later = FakeEvent::new("evt_charge_receipt_2", "charge.refunded")
        .with_payment_intent("pi_receipt")
        .with_receipt_url("https://pay.stripe.com/receipts/second")
        .with_fact(PaymentFact::Refunded { total: usd(1) });
    world.webhook(&later).await.unwrap();
    assert_eq!(
        world.purchase(purchase.id).await.details,
        PaymentDetails {
            receipt_url: Some("https://pay.stripe.com/receipts/first".to_owned()),
            promotion_code: None,
        }
    );
}

#[tokio::test]
async fn one_customer_per_buyer_is_created_once_and_sent_with_every_checkout() {
    let world = World::new();
    let teacher = world.instructor().await;
    let first_course = world.course(&teacher, PRICE, true).await;
    let second_course = world.course(&teacher, 3000, true).await;
    let buyer = world.student().await;

    world.checkout(&buyer, &first_course).await;
    world.checkout(&buyer, &second_course).await;

    let customers = world.gateway.customers();
    assert_eq!(customers.len(), 1, "one customer at the gateway");
    let customer = customers[0].id.clone();
    assert_eq!(
        (
            customers[0].request.user_id,
            customers[0].request.email.as_str(),
            customers[0].request.name.as_str()
        ),
        (buyer.id, buyer.email.as_str(), buyer.name.as_str())
    );
    let carried: Vec<_> = world
        .gateway
        .checkout_requests()
        .into_iter()
        .map(|request| (request.customer_id, request.customer_email))
        .collect();
    assert_eq!(
        carried,
        vec![
            (Some(customer.clone()), None),
            (Some(customer.clone()), None)
        ]
    );
    assert_eq!(
        world.store.gateway_customer(buyer.id).await.unwrap(),
        Some(customer.clone())
    );
    // Another buyer gets a customer of their own.
    let other = world.student().await;
    world.checkout(&other, &first_course).await;
    let customers = world.gateway.customers();
    assert_eq!(customers.len(), 2);
    assert_ne!(customers[1].id, customer);
    assert_eq!(
        customers[1].request.idempotency_key,
        format!("customer-{}", other.id)
    );
}

#[tokio::test]
async fn a_customer_linked_elsewhere_first_is_the_one_used() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    // Another instance linked the user while this one created a customer: the first link wins.
    world
        .store
        .link_gateway_customer(buyer.id, "cus_linked_first")
        .await
        .unwrap();
    world.checkout(&buyer, &course).await;
    assert_eq!(
        world.gateway.customer_count(),
        0,
        "a linked user needs none"
    );
    assert_eq!(
        world.gateway.checkout_requests()[0].customer_id.as_deref(),
        Some("cus_linked_first")
    );
}

#[tokio::test]
async fn a_customer_the_gateway_cannot_create_fails_the_checkout_like_the_session_would() {
    let world = World::new();
    let (_, course, buyer) = world.shop(PRICE, true).await;
    world
        .gateway
        .fail_next(1, GatewayError::Unavailable("connection reset".into()));
    let failed = world.services.start_checkout(&buyer, course.id).await;
    assert!(matches!(
        failed,
        Err(UseCaseError::Gateway(GatewayError::Unavailable(_)))
    ));
    // Nothing half-done: no session was asked for, the purchase let its slot go, no link.
    assert!(world.gateway.checkout_requests().is_empty());
    let purchases = world.store.all_purchases();
    assert_eq!(purchases.len(), 1);
    assert_eq!(purchases[0].status(), PurchaseStatus::Failed);
    assert!(!purchases[0].holds_active_slot);
    assert_eq!(world.store.gateway_customer(buyer.id).await.unwrap(), None);
    // The retry creates the customer and the session.
    let (purchase, _) = world.checkout(&buyer, &course).await;
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    let calls = world.gateway.calls();
    assert!(matches!(&calls[0], GatewayCall::CreateCustomer(_)));
    assert_eq!(world.gateway.customer_count(), 1);
}
