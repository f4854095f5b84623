use super::*;
use crate::course::{CourseDraft, CoursePatch, CourseText};
use crate::money::Currency;
use proptest::prelude::*;
use uuid::Uuid;

const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

fn course_priced(price: Money) -> Course {
    let draft = CourseDraft {
        title: CourseText::title("Rust").unwrap(),
        subtitle: None,
        description: None,
        category: None,
        level: None,
        price,
    };
    let mut course = Course::create(
        CourseId::from_uuid(Uuid::from_u128(10)),
        UserId::from_uuid(Uuid::from_u128(1)),
        draft,
        T0,
    )
    .unwrap();
    course
        .apply(
            CoursePatch {
                published: Some(true),
                ..CoursePatch::default()
            },
            T0,
        )
        .unwrap();
    course
}

fn buyer() -> UserId {
    UserId::from_uuid(Uuid::from_u128(2))
}

fn purchase_of(price: Money) -> Purchase {
    Purchase::begin(
        PurchaseId::from_uuid(Uuid::from_u128(3)),
        buyer(),
        &course_priced(price),
        T0,
    )
    .unwrap()
}

fn with_facts(facts: &[PaymentFact]) -> Purchase {
    let mut purchase = purchase_of(usd(1999));
    for fact in facts {
        purchase.record(*fact, T0);
    }
    purchase
}

use PaymentFact::*;

#[test]
fn a_new_purchase_is_pending_and_locked() {
    let purchase = purchase_of(usd(1999));
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    assert!(!purchase.unlocks_course());
    assert!(purchase.holds_active_slot);
}

#[test]
fn paying_the_price_completes() {
    let purchase = with_facts(&[PaymentSucceeded {
        amount: usd(1999),
        at: None,
    }]);
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert!(purchase.unlocks_course());
}

#[test]
fn the_payment_time_is_the_earliest_reported_whatever_the_order() {
    let later = T0 + Duration::minutes(3);
    let earlier = T0 + Duration::minutes(2);
    let reports = [
        PaymentSucceeded {
            amount: usd(1999),
            at: Some(later),
        },
        PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
        PaymentSucceeded {
            amount: usd(1999),
            at: Some(earlier),
        },
    ];
    let mut purchase = purchase_of(usd(1999));
    assert!(purchase.record(reports[0], T0));
    assert!(
        !purchase.record(reports[1], T0),
        "a report without a time adds nothing"
    );
    assert!(purchase.record(reports[2], T0), "an earlier time is news");
    assert!(!purchase.record(reports[0], T0), "a later one is not");
    assert_eq!(purchase.paid_at(), earlier);
    let mut reversed = reports;
    reversed.reverse();
    assert_eq!(with_facts(&reversed).facts, purchase.facts);
}

#[test]
fn without_a_reported_time_paid_at_is_the_creation_time() {
    let purchase = with_facts(&[PaymentSucceeded {
        amount: usd(1999),
        at: None,
    }]);
    assert_eq!(purchase.facts.paid_at, None);
    assert_eq!(purchase.paid_at(), purchase.created_at);
}

#[test]
fn a_mismatched_payment_keeps_its_time_for_when_a_bill_or_an_operator_accepts_it() {
    let at = Some(T0 + Duration::minutes(1));
    let purchase = with_facts(&[PaymentSucceeded {
        amount: usd(100),
        at,
    }]);
    assert_eq!(purchase.facts.paid_at, at);
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
}

#[test]
fn a_failed_attempt_is_not_final() {
    let failed_once = with_facts(&[PaymentAttemptFailed]);
    assert_eq!(failed_once.status(), PurchaseStatus::Pending);
    let then_paid = with_facts(&[
        PaymentAttemptFailed,
        PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
    ]);
    assert_eq!(then_paid.status(), PurchaseStatus::Completed);
}

#[test]
fn a_stale_failure_after_success_changes_nothing_visible() {
    let purchase = with_facts(&[
        PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
        PaymentAttemptFailed,
        CheckoutExpired,
    ]);
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(purchase.failure_reason(), None);
}

#[test]
fn expiry_and_async_failure_fail_the_purchase_and_free_the_slot() {
    for (fact, reason) in [
        (CheckoutExpired, FailureReason::CheckoutExpired),
        (AsyncPaymentFailed, FailureReason::AsyncPaymentFailed),
        (CheckoutNotStarted, FailureReason::CheckoutNotStarted),
    ] {
        let purchase = with_facts(&[fact]);
        assert_eq!(purchase.status(), PurchaseStatus::Failed);
        assert_eq!(purchase.failure_reason(), Some(reason));
        assert!(!purchase.holds_active_slot);
    }
}

#[test]
fn a_late_payment_completes_a_failed_purchase_without_retaking_the_slot() {
    let purchase = with_facts(&[
        CheckoutExpired,
        PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
    ]);
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert!(
        !purchase.holds_active_slot,
        "a newer purchase may hold the slot by now"
    );
}

#[test]
fn settling_bank_debits_stay_pending() {
    let purchase = with_facts(&[PaymentProcessing]);
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    assert!(purchase.awaits_settlement());
}

#[test]
fn a_mismatched_payment_is_held_for_review_and_does_not_unlock() {
    for received in [usd(100), eur(1999)] {
        let purchase = with_facts(&[PaymentSucceeded {
            amount: received,
            at: None,
        }]);
        assert_eq!(purchase.status(), PurchaseStatus::Pending);
        assert!(!purchase.unlocks_course());
        assert!(purchase.awaits_settlement());
        assert_eq!(
            purchase.review_reason(),
            Some(ReviewReason::AmountMismatch {
                expected: usd(1999),
                received
            })
        );
    }
}

#[test]
fn a_full_refund_locks_the_course_and_a_partial_one_does_not() {
    let paid = PaymentSucceeded {
        amount: usd(1999),
        at: None,
    };
    let partial = with_facts(&[paid, Refunded { total: usd(500) }]);
    assert_eq!(partial.status(), PurchaseStatus::Completed);
    assert_eq!(partial.refunded_amount(), usd(500));
    let full = with_facts(&[
        paid,
        Refunded { total: usd(500) },
        Refunded { total: usd(1999) },
    ]);
    assert_eq!(full.status(), PurchaseStatus::Refunded);
    assert!(!full.unlocks_course());
    assert!(!full.holds_active_slot);
}

#[test]
fn a_refund_that_arrives_before_its_payment_is_not_lost() {
    let purchase = with_facts(&[Refunded { total: usd(1999) }]);
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    let purchase = with_facts(&[
        Refunded { total: usd(1999) },
        PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
    ]);
    assert_eq!(purchase.status(), PurchaseStatus::Refunded);
}

#[test]
fn refunding_a_mismatched_payment_closes_it_as_refunded() {
    let purchase = with_facts(&[
        PaymentSucceeded {
            amount: usd(100),
            at: None,
        },
        Refunded { total: usd(100) },
    ]);
    assert_eq!(purchase.status(), PurchaseStatus::Refunded);
}

#[test]
fn disputes_lock_only_when_lost() {
    let paid = PaymentSucceeded {
        amount: usd(1999),
        at: None,
    };
    assert_eq!(
        with_facts(&[paid, DisputeOpened]).status(),
        PurchaseStatus::Completed
    );
    assert_eq!(
        with_facts(&[paid, DisputeOpened, DisputeClosed(DisputeOutcome::Won)]).status(),
        PurchaseStatus::Completed
    );
    assert_eq!(
        with_facts(&[paid, DisputeOpened, DisputeClosed(DisputeOutcome::Lost)]).status(),
        PurchaseStatus::Refunded
    );
}

#[test]
fn duplicates_report_no_change() {
    let mut purchase = purchase_of(usd(1999));
    assert!(purchase.record(
        PaymentSucceeded {
            amount: usd(1999),
            at: None
        },
        T0
    ));
    assert!(!purchase.record(
        PaymentSucceeded {
            amount: usd(1999),
            at: None
        },
        T0
    ));
    assert!(purchase.record(Refunded { total: usd(10) }, T0));
    assert!(
        !purchase.record(Refunded { total: usd(5) }, T0),
        "a smaller cumulative total is old news"
    );
}

#[test]
fn free_enrolment_completes_at_once_and_paid_courses_need_checkout() {
    let free = course_priced(usd(0));
    let purchase = Purchase::enroll_free(
        PurchaseId::from_uuid(Uuid::from_u128(4)),
        buyer(),
        &free,
        T0,
    )
    .unwrap();
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(
        purchase.plan_refund(None),
        Err(DomainError::NoPaymentToRefund)
    );
    assert_eq!(
        Purchase::begin(
            PurchaseId::from_uuid(Uuid::from_u128(5)),
            buyer(),
            &free,
            T0
        ),
        Err(DomainError::CourseIsFree)
    );
    let paid = course_priced(usd(1999));
    assert_eq!(
        Purchase::enroll_free(
            PurchaseId::from_uuid(Uuid::from_u128(6)),
            buyer(),
            &paid,
            T0
        ),
        Err(DomainError::CourseIsPaid)
    );
}

#[test]
fn open_sessions_are_reused_until_close_to_expiry() {
    let mut purchase = purchase_of(usd(1999));
    let expires_at = T0 + Duration::hours(1);
    purchase.attach_checkout(
        CheckoutSession {
            id: "cs_1".into(),
            url: "https://pay/cs_1".into(),
            expires_at,
        },
        T0,
    );
    assert!(purchase.reusable_checkout(T0).is_some());
    assert!(purchase
        .reusable_checkout(expires_at - Duration::minutes(4))
        .is_none());
    purchase.record(PaymentProcessing, T0);
    assert!(
        purchase.reusable_checkout(T0).is_none(),
        "a settling payment must not be paid twice"
    );
}

#[test]
fn refunds_are_planned_within_what_remains() {
    let mut purchase = with_facts(&[PaymentSucceeded {
        amount: usd(1999),
        at: None,
    }]);
    assert_eq!(
        purchase.plan_refund(None),
        Err(DomainError::NoPaymentToRefund),
        "no payment intent known"
    );
    assert!(purchase.link_payment_intent("pi_1", T0));
    assert!(!purchase.link_payment_intent("pi_2", T0));
    assert_eq!(purchase.payment_intent_id.as_deref(), Some("pi_1"));
    assert_eq!(purchase.plan_refund(None), Ok(usd(1999)));
    assert_eq!(purchase.plan_refund(Some(500)), Ok(usd(500)));
    purchase.record(Refunded { total: usd(500) }, T0);
    assert_eq!(purchase.plan_refund(None), Ok(usd(1499)));
    assert_eq!(
        purchase.plan_refund(Some(1500)),
        Err(DomainError::InvalidRefundAmount { remaining: 1499 })
    );
    assert_eq!(
        purchase.plan_refund(Some(0)),
        Err(DomainError::InvalidRefundAmount { remaining: 1499 })
    );
    assert_eq!(
        with_facts(&[]).plan_refund(None),
        Err(DomainError::NotRefundable)
    );
}

#[test]
fn absorbing_a_report_says_whether_anything_changed() {
    let mut purchase = purchase_of(usd(1999));
    let paid = [PaymentSucceeded {
        amount: usd(1999),
        at: None,
    }];
    let none = PaymentDetails::default();
    assert!(purchase.absorb(&paid, Some("pi_1"), &none, T0));
    assert_eq!(purchase.payment_intent_id.as_deref(), Some("pi_1"));
    assert!(
        !purchase.absorb(&paid, Some("pi_1"), &none, T0),
        "a replay changes nothing"
    );
    assert!(
        !purchase.absorb(&[], Some("pi_2"), &none, T0),
        "the first payment intent is kept"
    );
    assert_eq!(purchase.payment_intent_id.as_deref(), Some("pi_1"));
    assert!(purchase.absorb(&[Refunded { total: usd(1) }], None, &none, T0));
    let receipt = PaymentDetails {
        receipt_url: Some("https://pay.example/receipts/1".to_owned()),
        promotion_code: None,
    };
    assert!(purchase.absorb(&[], None, &receipt, T0));
    assert!(!purchase.absorb(&[], None, &receipt, T0));
    let other = PaymentDetails {
        receipt_url: Some("https://pay.example/receipts/2".to_owned()),
        promotion_code: Some("promo_1".to_owned()),
    };
    assert!(purchase.absorb(&[], None, &other, T0), "the code was new");
    assert_eq!(
        purchase.details,
        PaymentDetails {
            receipt_url: receipt.receipt_url,
            promotion_code: Some("promo_1".to_owned()),
        },
        "the first receipt learned is kept"
    );
}

#[test]
fn status_names_round_trip() {
    for status in [
        PurchaseStatus::Pending,
        PurchaseStatus::Completed,
        PurchaseStatus::Failed,
        PurchaseStatus::Refunded,
    ] {
        assert_eq!(PurchaseStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(PurchaseStatus::parse("not purchased"), None);
}

fn any_money() -> impl Strategy<Value = Money> {
    // Mostly the price itself, so that matching payments are common.
    prop_oneof![
        3 => Just(usd(1999)),
        1 => (0_i64..3000).prop_map(usd),
        1 => (0_i64..3000).prop_map(eur),
    ]
}

fn any_paid_time() -> impl Strategy<Value = Option<OffsetDateTime>> {
    // Few distinct instants, so that reports of one payment at different times are common.
    prop_oneof![
        1 => Just(None),
        3 => (0_i64..4).prop_map(|seconds| Some(T0 + Duration::seconds(seconds))),
    ]
}

fn any_bill() -> impl Strategy<Value = Bill> {
    // The price billed as is, discounted, taxed, presented in euros, or another price.
    prop_oneof![
        Just(Bill::of_price(usd(1999))),
        (0_i64..=1999).prop_map(|discount| billed(1999, discount, 0, 1999 - discount)),
        (0_i64..400).prop_map(|tax| billed(1999, 0, tax, 1999 + tax)),
        (1_i64..3000).prop_map(|total| in_euros(total, 1999)),
        (0_i64..3000).prop_map(|price| Bill::of_price(usd(price))),
    ]
}

fn any_fact() -> impl Strategy<Value = PaymentFact> {
    prop_oneof![
        (any_money(), any_paid_time()).prop_map(|(amount, at)| PaymentSucceeded { amount, at }),
        any_bill().prop_map(Billed),
        Just(PaymentAttemptFailed),
        Just(PaymentProcessing),
        Just(AsyncPaymentFailed),
        Just(CheckoutExpired),
        Just(CheckoutNotStarted),
        any_money().prop_map(|total| Refunded { total }),
        Just(DisputeOpened),
        Just(DisputeClosed(DisputeOutcome::Won)),
        Just(DisputeClosed(DisputeOutcome::Lost)),
        Just(AcceptedByOperator),
    ]
}

/// A set of facts, and a delivery of it: a shuffled sequence in which every fact appears at
/// least once and some appear again.
fn facts_and_delivery() -> impl Strategy<Value = (Vec<PaymentFact>, Vec<PaymentFact>)> {
    prop::collection::vec(any_fact(), 0..8).prop_flat_map(|facts| {
        let len = facts.len();
        let duplicates = prop::collection::vec(0..len.max(1), 0..len * 2 + 1);
        (Just(facts), duplicates).prop_flat_map(|(facts, duplicate_indexes)| {
            let mut delivery = facts.clone();
            if !facts.is_empty() {
                delivery.extend(duplicate_indexes.iter().map(|&index| facts[index]));
            }
            (Just(facts), Just(delivery).prop_shuffle())
        })
    })
}

proptest! {
    #[test]
    fn the_outcome_depends_only_on_the_set_of_facts((facts, delivery) in facts_and_delivery()) {
        let in_order = with_facts(&facts);
        let delivered = with_facts(&delivery);
        prop_assert_eq!(&delivered.facts, &in_order.facts);
        prop_assert_eq!(delivered.status(), in_order.status());
        prop_assert_eq!(delivered.review_reason(), in_order.review_reason());
        prop_assert_eq!(delivered.failure_reason(), in_order.failure_reason());
        prop_assert_eq!(delivered.refunded_amount(), in_order.refunded_amount());
        prop_assert_eq!(delivered.paid_at(), in_order.paid_at());
        prop_assert_eq!(delivered.sale(), in_order.sale());
    }

    #[test]
    fn the_slot_is_held_exactly_while_the_status_has_always_been_active(delivery in prop::collection::vec(any_fact(), 0..12)) {
        let mut purchase = purchase_of(usd(1999));
        let mut always_active = true;
        for fact in delivery {
            purchase.record(fact, T0);
            always_active &= purchase.status().is_active();
            prop_assert_eq!(purchase.holds_active_slot, always_active);
        }
    }

    #[test]
    fn recording_is_idempotent(facts in prop::collection::vec(any_fact(), 0..8)) {
        let once = with_facts(&facts);
        let mut twice = once.clone();
        for fact in &facts {
            prop_assert!(!twice.record(*fact, T0));
        }
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn paid_at_is_the_earliest_time_reported_for_a_payment(facts in prop::collection::vec(any_fact(), 0..8)) {
        let purchase = with_facts(&facts);
        let earliest = facts
            .iter()
            .filter_map(|fact| match fact {
                PaymentSucceeded { at, .. } => *at,
                _ => None,
            })
            .min();
        prop_assert_eq!(purchase.facts.paid_at, earliest);
        prop_assert_eq!(purchase.paid_at(), earliest.unwrap_or(purchase.created_at));
    }

    #[test]
    fn unlocked_exactly_when_paid_for_and_not_taken_back(facts in prop::collection::vec(any_fact(), 0..8)) {
        let purchase = with_facts(&facts);
        // Paid for: what was owed (the total of a bill for the price, else the price), or
        // another amount an operator accepted.
        let owed = match purchase.facts.bill {
            None => Some(usd(1999)),
            Some(bill) if bill.list_price() == usd(1999) => Some(bill.total()),
            Some(_) => None,
        };
        let captured = purchase.facts.captured;
        let paid_for = (captured.is_some() && captured == owed)
            || (captured.is_some() && purchase.facts.accepted_by_operator);
        // Taken back: a lost dispute, or refunds reaching what was captured.
        let refunded = purchase.refunded_amount().minor();
        let taken_back = purchase.facts.dispute_lost
            || purchase.captured().is_some_and(|captured| refunded > 0 && refunded >= captured.minor());
        prop_assert_eq!(purchase.unlocks_course(), paid_for && !taken_back);
    }
}

#[test]
fn a_held_payment_accepted_by_an_operator_unlocks_and_refunds_stay_within_it() {
    let mut purchase = with_facts(&[PaymentSucceeded {
        amount: usd(1500),
        at: None,
    }]);
    purchase.payment_intent_id = Some("pi_1".to_owned());
    assert!(purchase.review_reason().is_some());
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    assert_eq!(purchase.accept_held(T0), Ok(true));
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(purchase.review_reason(), None);
    assert_eq!(purchase.accept_held(T0), Err(DomainError::NotHeldForReview));
    // Bounded by the 15.00 captured, not the 19.99 price.
    assert_eq!(
        purchase.plan_refund(Some(1501)),
        Err(DomainError::InvalidRefundAmount { remaining: 1500 })
    );
    assert_eq!(purchase.plan_refund(None), Ok(usd(1500)));
}

#[test]
fn acceptance_alone_or_of_a_full_payment_changes_nothing_that_shows() {
    let accepted_only = with_facts(&[AcceptedByOperator]);
    assert_eq!(accepted_only.status(), PurchaseStatus::Pending);
    let paid = with_facts(&[
        PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
        AcceptedByOperator,
    ]);
    assert_eq!(paid.status(), PurchaseStatus::Completed);
    let mut not_held = purchase_of(usd(1999));
    assert_eq!(not_held.accept_held(T0), Err(DomainError::NotHeldForReview));
}

#[test]
fn a_held_payment_is_resolved_by_refunding_all_of_it() {
    let mut purchase = with_facts(&[PaymentSucceeded {
        amount: usd(2500),
        at: None,
    }]);
    purchase.payment_intent_id = Some("pi_1".to_owned());
    assert_eq!(purchase.plan_refund(None), Err(DomainError::NotRefundable));
    assert_eq!(purchase.plan_review_refund(), Ok(usd(2500)));
    purchase.record(Refunded { total: usd(2500) }, T0);
    assert_eq!(purchase.status(), PurchaseStatus::Refunded);
    assert_eq!(purchase.review_reason(), None);
    assert_eq!(
        purchase.plan_review_refund(),
        Err(DomainError::NotHeldForReview)
    );
}

fn billed(subtotal: i64, discount: i64, tax: i64, total: i64) -> Bill {
    Bill::new(usd(subtotal), usd(discount), usd(tax), usd(total), None).unwrap()
}

/// A checkout of a USD `price` presented in euros (Adaptive Pricing), charging `total` euro cents.
fn in_euros(total: i64, price: i64) -> Bill {
    let conversion = crate::bill::Conversion::new(usd(price), usd(price)).unwrap();
    Bill::new(eur(total), eur(0), eur(0), eur(total), Some(conversion)).unwrap()
}

fn paid(amount: Money) -> PaymentFact {
    PaymentSucceeded {
        amount,
        at: Some(T0 + Duration::minutes(1)),
    }
}

#[test]
fn a_discounted_payment_of_the_billed_total_unlocks_whichever_report_comes_first() {
    let bill = Billed(billed(1999, 500, 0, 1499));
    for facts in [[bill, paid(usd(1499))], [paid(usd(1499)), bill]] {
        let purchase = with_facts(&facts);
        assert_eq!(purchase.status(), PurchaseStatus::Completed, "{facts:?}");
        assert_eq!(purchase.captured(), Some(usd(1499)));
        assert_eq!(purchase.paid_at(), T0 + Duration::minutes(1));
    }
    // Before its bill arrives, the charge alone does not match the price: held, not lost.
    let early = with_facts(&[paid(usd(1499))]);
    assert_eq!(
        early.review_reason(),
        Some(ReviewReason::AmountMismatch {
            expected: usd(1999),
            received: usd(1499)
        })
    );
}

#[test]
fn a_bill_for_another_price_is_held_whatever_was_paid() {
    let purchase = with_facts(&[Billed(billed(999, 0, 0, 999)), paid(usd(999))]);
    assert_eq!(purchase.status(), PurchaseStatus::Pending);
    assert_eq!(
        purchase.review_reason(),
        Some(ReviewReason::PriceMismatch {
            price: usd(1999),
            billed: usd(999)
        })
    );
    assert_eq!(purchase.sale(), None);
}

#[test]
fn a_payment_short_of_the_billed_total_is_held() {
    let purchase = with_facts(&[Billed(billed(1999, 0, 400, 2399)), paid(usd(1999))]);
    assert_eq!(
        purchase.review_reason(),
        Some(ReviewReason::AmountMismatch {
            expected: usd(2399),
            received: usd(1999)
        })
    );
}

#[test]
fn exclusive_tax_is_paid_on_top_and_recorded() {
    let mut purchase = with_facts(&[Billed(billed(1999, 0, 400, 2399)), paid(usd(2399))]);
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(purchase.bill().map(|bill| bill.tax()), Some(usd(400)));
    purchase.payment_intent_id = Some("pi_1".to_owned());
    assert_eq!(
        purchase.plan_refund(None),
        Ok(usd(2399)),
        "refunds cover the tax paid"
    );
    assert_eq!(
        purchase.plan_refund(Some(2400)),
        Err(DomainError::InvalidRefundAmount { remaining: 2399 })
    );
}

#[test]
fn a_100_percent_off_code_completes_without_a_charge_and_nothing_can_be_refunded() {
    let mut purchase = with_facts(&[Billed(billed(1999, 1999, 0, 0)), paid(usd(0))]);
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    purchase.payment_intent_id = Some("pi_1".to_owned());
    assert_eq!(
        purchase.plan_refund(None),
        Err(DomainError::NoPaymentToRefund)
    );
    let sale = purchase.sale().unwrap();
    assert_eq!(
        (sale.gross, sale.discount, sale.paid, sale.net),
        (1999, 1999, 0, 0)
    );
}

#[test]
fn a_payment_presented_in_another_currency_is_checked_in_the_prices_and_refunded_in_its_own() {
    let mut purchase = with_facts(&[paid(eur(1850)), Billed(in_euros(1850, 1999))]);
    assert_eq!(purchase.status(), PurchaseStatus::Completed);
    assert_eq!(purchase.captured(), Some(eur(1850)));
    purchase.payment_intent_id = Some("pi_1".to_owned());
    assert_eq!(purchase.plan_refund(Some(850)), Ok(eur(850)));
    assert_eq!(
        purchase.plan_refund(Some(1851)),
        Err(DomainError::InvalidRefundAmount { remaining: 1850 })
    );
    assert!(purchase.record(Refunded { total: eur(1850) }, T0));
    assert_eq!(purchase.status(), PurchaseStatus::Refunded);
    // The euro price alone would not have matched the dollar price.
    assert_eq!(
        with_facts(&[paid(eur(1850))]).status(),
        PurchaseStatus::Pending
    );
}

#[test]
fn only_paid_purchases_of_priced_courses_are_sales() {
    assert_eq!(with_facts(&[]).sale(), None);
    assert_eq!(with_facts(&[paid(usd(5))]).sale(), None, "held");
    let sale = with_facts(&[paid(usd(1999)), Refunded { total: usd(999) }])
        .sale()
        .unwrap();
    assert_eq!((sale.paid, sale.refunded, sale.net), (1999, 999, 1000));
    assert_eq!(sale.sold_at, T0 + Duration::minutes(1));
    let free = Purchase::enroll_free(
        PurchaseId::from_uuid(Uuid::from_u128(4)),
        buyer(),
        &course_priced(usd(0)),
        T0,
    )
    .unwrap();
    assert_eq!(free.sale(), None);
}
