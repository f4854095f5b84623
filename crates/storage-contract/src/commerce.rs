//! Commerce: bills, captured payments and payment details through every read; gateway
//! customers; the refund lease; the revenue report; held purchases and reconciliation claims
//! judged by the captured payment and the bill.

use super::{
    applied, apply, at, begin, get, money, new_course, new_user, seed_course, seed_people,
    seed_purchase, session, update, usd, Seeded, Store,
};
use lms_domain::{
    Bill, Conversion, Course, CourseText, DisputeOutcome, Money, PaymentDetails, PaymentFact,
    Purchase, PurchaseId, PurchaseStatus, ReviewReason, Role, User, UserId,
};
use lms_ports::{FactUpdate, PageRequest, RefundLease, RepoError, RevenueLine, RevenueQuery};
use time::OffsetDateTime;
use uuid::Uuid;

fn paid(amount: Money, when: OffsetDateTime) -> PaymentFact {
    PaymentFact::PaymentSucceeded {
        amount,
        at: Some(when),
    }
}

fn billed(subtotal: Money, discount: Money, tax: Money, total: Money) -> Bill {
    Bill::new(subtotal, discount, tax, total, None).unwrap()
}

fn eur(minor: i64) -> Money {
    money(minor, "EUR")
}

/// Presented in EUR for a course priced in USD (Adaptive Pricing).
fn converted(subtotal: i64, discount: i64, total: i64, usd_subtotal: i64, usd_total: i64) -> Bill {
    Bill::new(
        eur(subtotal),
        eur(discount),
        eur(0),
        eur(total),
        Some(Conversion::new(usd(usd_subtotal), usd(usd_total)).unwrap()),
    )
    .unwrap()
}

fn details(receipt_url: Option<&str>, promotion_code: Option<&str>) -> PaymentDetails {
    PaymentDetails {
        receipt_url: receipt_url.map(str::to_owned),
        promotion_code: promotion_code.map(str::to_owned),
    }
}

/// A published course of `instructor` titled `title`, priced `price`, stored.
async fn course_titled<S: Store>(
    store: &S,
    instructor: &User,
    title: &str,
    price: Money,
) -> Course {
    let mut course = new_course(instructor.id, price, true, at(0));
    course.title = CourseText::title(title).unwrap();
    store.create_course(&course).await.unwrap();
    course
}

/// A new student, stored.
async fn new_buyer<S: Store>(store: &S) -> User {
    let buyer = new_user(
        &format!("buyer-{}@example.com", Uuid::new_v4().simple()),
        Role::Student,
    );
    store.create_user(&buyer).await.unwrap();
    buyer
}

// ---------------------------------------------------------------------------------------------
// Bills, captured payments and payment details
// ---------------------------------------------------------------------------------------------

/// One purchase of the round trip: what it is sent, and what it must then be.
struct Case {
    name: &'static str,
    course: Course,
    facts: Vec<PaymentFact>,
    details: PaymentDetails,
    status: PurchaseStatus,
    captured: Money,
    bill: Bill,
}

pub async fn bills_captured_payments_and_details_round_trip_through_every_read<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let mut cases = Vec::new();
    // A promotion code took 5.00 off: 14.99 paid for a 19.99 course unlocks it.
    let discount = billed(usd(1999), usd(500), usd(0), usd(1499));
    cases.push(Case {
        name: "discounted",
        course: seed_course(&store, &instructor, at(0)).await,
        facts: vec![PaymentFact::Billed(discount), paid(usd(1499), at(5))],
        details: details(
            Some("https://pay.stripe.com/receipts/r1"),
            Some("promo_spring"),
        ),
        status: PurchaseStatus::Completed,
        captured: usd(1499),
        bill: discount,
    });
    // 100% off: nothing charged, and a capture of zero completes it.
    let free = billed(usd(1999), usd(1999), usd(0), usd(0));
    cases.push(Case {
        name: "100% off",
        course: seed_course(&store, &instructor, at(0)).await,
        facts: vec![paid(usd(0), at(5)), PaymentFact::Billed(free)],
        details: details(None, Some("promo_free")),
        status: PurchaseStatus::Completed,
        captured: usd(0),
        bill: free,
    });
    // Presented and paid in EUR, compared with the USD price through the conversion; tax added.
    let in_euros = Bill::new(
        eur(1850),
        eur(0),
        eur(370),
        eur(2220),
        Some(Conversion::new(usd(1999), usd(2399)).unwrap()),
    )
    .unwrap();
    cases.push(Case {
        name: "converted",
        course: seed_course(&store, &instructor, at(0)).await,
        facts: vec![PaymentFact::Billed(in_euros), paid(eur(2220), at(5))],
        details: details(Some("https://pay.stripe.com/receipts/r3"), None),
        status: PurchaseStatus::Completed,
        captured: eur(2220),
        bill: in_euros,
    });
    // Billed for another price: held for review, with its bill and payment.
    let other_price = billed(usd(1500), usd(0), usd(0), usd(1500));
    cases.push(Case {
        name: "held",
        course: seed_course(&store, &instructor, at(0)).await,
        facts: vec![PaymentFact::Billed(other_price), paid(usd(1500), at(5))],
        details: details(Some("https://pay.stripe.com/receipts/r4"), None),
        status: PurchaseStatus::Pending,
        captured: usd(1500),
        bill: other_price,
    });

    let mut saved = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let n = i64::try_from(i).unwrap();
        let purchase = begin(&buyer, &case.course, at(1 + n));
        store.create_purchase(&purchase).await.unwrap();
        let cs = format!("cs_commerce_{i}");
        let purchase = store
            .attach_checkout(purchase.id, &session(&cs, at(3600)), at(2))
            .await
            .unwrap();
        let pi = format!("pi_commerce_{i}");
        let mut expected = purchase.clone();
        expected.absorb(&case.facts, Some(&pi), &case.details, at(10));
        let returned = applied(
            store
                .apply_facts(&FactUpdate {
                    payment_intent_id: Some(pi.clone()),
                    details: case.details.clone(),
                    ..update(
                        purchase.id,
                        case.facts.clone(),
                        Some(&format!("evt_commerce_{i}")),
                        at(10),
                    )
                })
                .await
                .unwrap(),
        );
        assert_eq!(returned, expected, "{}", case.name);
        assert_eq!(returned.status(), case.status, "{}", case.name);
        assert_eq!(returned.captured(), Some(case.captured), "{}", case.name);
        assert_eq!(returned.bill(), Some(case.bill), "{}", case.name);
        assert_eq!(returned.details, case.details, "{}", case.name);

        // Every read of a single purchase gives it back exactly.
        assert_eq!(get(&store, purchase.id).await, expected, "{}", case.name);
        assert_eq!(
            store.find_by_checkout_session(&cs).await.unwrap(),
            Some(expected.clone()),
            "{}",
            case.name
        );
        assert_eq!(
            store.find_by_payment_intent(&pi).await.unwrap(),
            Some(expected.clone()),
            "{}",
            case.name
        );
        assert_eq!(
            store
                .list_for_user_and_course(buyer.id, case.course.id)
                .await
                .unwrap(),
            vec![expected.clone()],
            "{}",
            case.name
        );
        saved.push(expected);
    }

    // And every listing.
    let newest_first: Vec<Purchase> = saved.iter().rev().cloned().collect();
    let history = store
        .list_for_user(buyer.id, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(history.total, 4);
    let listed: Vec<Purchase> = history.items.into_iter().map(|pc| pc.purchase).collect();
    assert_eq!(listed, newest_first);
    let unlocked: Vec<Purchase> = store
        .list_unlocked_for_user(buyer.id)
        .await
        .unwrap()
        .into_iter()
        .map(|pc| pc.purchase)
        .collect();
    assert_eq!(unlocked, newest_first[1..]);
    let held = store.list_held(PageRequest::new(1, 10)).await.unwrap();
    assert_eq!(held.items, vec![saved[3].clone()]);
    assert_eq!(
        saved[3].review_reason(),
        Some(ReviewReason::PriceMismatch {
            price: usd(1999),
            billed: usd(1500),
        })
    );
}

pub async fn payment_details_keep_the_first_value_learned<S: Store>(store: S) {
    let Seeded { purchase, .. } = seed_purchase(&store).await;
    let learn = |facts: Vec<PaymentFact>, learned: PaymentDetails, event: &str, when| {
        let store = store.clone();
        let update = FactUpdate {
            details: learned,
            ..update(purchase.id, facts, Some(event), when)
        };
        async move { applied(store.apply_facts(&update).await.unwrap()) }
    };

    // The checkout's event says the promotion code; the receipt is not known yet.
    let first = learn(
        vec![paid(usd(1999), at(2))],
        details(None, Some("promo_first")),
        "evt_session",
        at(3),
    )
    .await;
    assert_eq!(first.details, details(None, Some("promo_first")));
    assert_eq!(first.updated_at, at(3));

    // The charge's event says the receipt, and another code: the receipt fills in, the code
    // learned first stays.
    let second = learn(
        vec![],
        details(
            Some("https://pay.stripe.com/receipts/first"),
            Some("promo_other"),
        ),
        "evt_charge",
        at(4),
    )
    .await;
    let both = details(
        Some("https://pay.stripe.com/receipts/first"),
        Some("promo_first"),
    );
    assert_eq!(second.details, both);
    assert_eq!(second.updated_at, at(4));
    assert_eq!(get(&store, purchase.id).await, second);

    // Nothing new: nothing changes, not even the update time.
    let third = learn(
        vec![],
        details(Some("https://pay.stripe.com/receipts/other"), None),
        "evt_again",
        at(5),
    )
    .await;
    assert_eq!(third, second);
    assert_eq!(get(&store, purchase.id).await, second);
}

// ---------------------------------------------------------------------------------------------
// Gateway customers
// ---------------------------------------------------------------------------------------------

pub async fn gateway_customers_link_once_and_the_first_link_wins<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let unknown = UserId::from_uuid(Uuid::new_v4());
    assert_eq!(store.gateway_customer(unknown).await, Ok(None));
    assert_eq!(
        store.link_gateway_customer(unknown, "cus_nobody").await,
        Err(RepoError::NotFound)
    );
    assert_eq!(store.gateway_customer(unknown).await, Ok(None));

    assert_eq!(store.gateway_customer(buyer.id).await, Ok(None));
    assert_eq!(
        store.link_gateway_customer(buyer.id, "cus_first").await,
        Ok("cus_first".to_owned())
    );
    // A later link returns the first, which stays.
    assert_eq!(
        store.link_gateway_customer(buyer.id, "cus_second").await,
        Ok("cus_first".to_owned())
    );
    assert_eq!(
        store.gateway_customer(buyer.id).await,
        Ok(Some("cus_first".to_owned()))
    );
    // Each user has their own; the user record itself is unchanged.
    assert_eq!(store.gateway_customer(instructor.id).await, Ok(None));
    assert_eq!(
        store
            .link_gateway_customer(instructor.id, "cus_teacher")
            .await,
        Ok("cus_teacher".to_owned())
    );
    assert_eq!(
        store.gateway_customer(buyer.id).await,
        Ok(Some("cus_first".to_owned()))
    );
    assert_eq!(store.get_user(buyer.id).await, Ok(Some(buyer)));
}

pub async fn concurrent_gateway_customer_links_all_get_the_same_customer<S: Store>(store: S) {
    let (_, buyer) = seed_people(&store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        let user = buyer.id;
        tasks.spawn(async move {
            store
                .link_gateway_customer(user, &format!("cus_racer_{i}"))
                .await
        });
    }
    let mut linked = Vec::new();
    while let Some(result) = tasks.join_next().await {
        linked.push(result.unwrap().unwrap());
    }
    let winner = linked[0].clone();
    assert!(winner.starts_with("cus_racer_"), "{winner}");
    assert!(
        linked.iter().all(|customer| *customer == winner),
        "{linked:?}"
    );
    assert_eq!(store.gateway_customer(buyer.id).await, Ok(Some(winner)));
}

// ---------------------------------------------------------------------------------------------
// The refund lease
// ---------------------------------------------------------------------------------------------

pub async fn refund_lease_is_granted_then_busy_until_released_or_run_out<S: Store>(store: S) {
    let Seeded { purchase, .. } = seed_purchase(&store).await;
    let purchase = apply(
        &store,
        purchase.id,
        vec![paid(usd(1999), at(2))],
        None,
        at(3),
    )
    .await;

    assert_eq!(
        store.lease_refund(purchase.id, at(10), at(130)).await,
        Ok(RefundLease::Granted(purchase.clone()))
    );
    // Held: busy, saying until when, up to the instant before it runs out.
    for now in [at(10), at(20), at(129)] {
        assert_eq!(
            store.lease_refund(purchase.id, now, at(200)).await,
            Ok(RefundLease::Busy { until: at(130) }),
            "{now}"
        );
    }
    // Only the lease was written: the purchase reads as before, update time included.
    assert_eq!(get(&store, purchase.id).await, purchase);

    // Run out: granted again from its end on.
    assert_eq!(
        store.lease_refund(purchase.id, at(130), at(250)).await,
        Ok(RefundLease::Granted(purchase.clone()))
    );
    // The first taker, whose lease ran out, gives back only its own: the second keeps its.
    store.release_refund(purchase.id, at(130)).await.unwrap();
    assert_eq!(
        store.lease_refund(purchase.id, at(131), at(300)).await,
        Ok(RefundLease::Busy { until: at(250) })
    );
    // Released by its holder: granted again before it would have run out.
    store.release_refund(purchase.id, at(250)).await.unwrap();
    assert_eq!(
        store.lease_refund(purchase.id, at(131), at(300)).await,
        Ok(RefundLease::Granted(purchase.clone()))
    );
    assert_eq!(
        store.lease_refund(purchase.id, at(132), at(400)).await,
        Ok(RefundLease::Busy { until: at(300) })
    );

    // The lease hides nothing from fact updates, and a lease granted later carries them.
    let refunded = apply(
        &store,
        purchase.id,
        vec![PaymentFact::Refunded { total: usd(500) }],
        Some("evt_refund"),
        at(140),
    )
    .await;
    assert_eq!(refunded.refunded_amount(), usd(500));
    store.release_refund(purchase.id, at(300)).await.unwrap();
    // Releasing twice, or a purchase without a lease, or an unknown one, is fine.
    store.release_refund(purchase.id, at(300)).await.unwrap();
    let unknown = PurchaseId::from_uuid(Uuid::new_v4());
    store.release_refund(unknown, at(300)).await.unwrap();
    assert_eq!(
        store.lease_refund(purchase.id, at(141), at(260)).await,
        Ok(RefundLease::Granted(refunded.clone()))
    );
    assert_eq!(get(&store, purchase.id).await, refunded);

    // An end to the nanosecond, as the clock gives it, is released by the same value whatever
    // precision the store keeps it in.
    store.release_refund(purchase.id, at(260)).await.unwrap();
    let precise = at(400) + time::Duration::nanoseconds(123_456_789);
    assert_eq!(
        store.lease_refund(purchase.id, at(300), precise).await,
        Ok(RefundLease::Granted(refunded.clone()))
    );
    store.release_refund(purchase.id, precise).await.unwrap();
    assert_eq!(
        store.lease_refund(purchase.id, at(301), at(500)).await,
        Ok(RefundLease::Granted(refunded.clone()))
    );

    assert_eq!(
        store.lease_refund(unknown, at(10), at(130)).await,
        Err(RepoError::NotFound)
    );
}

pub async fn concurrent_refund_lease_takers_get_exactly_one_lease<S: Store>(store: S) {
    let Seeded { purchase, .. } = seed_purchase(&store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        let id = purchase.id;
        // Each asks for a lease of its own length, so the busy ones can name the winner's.
        tasks.spawn(async move { (i, store.lease_refund(id, at(10), at(100 + i)).await) });
    }
    let (mut granted, mut busy) = (Vec::new(), Vec::new());
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (i, Ok(RefundLease::Granted(got))) => {
                assert_eq!(got, purchase);
                granted.push(i);
            }
            (_, Ok(RefundLease::Busy { until })) => busy.push(until),
            (_, Err(error)) => panic!("a lease taker failed: {error}"),
        }
    }
    assert_eq!(granted.len(), 1, "{granted:?}");
    let until = at(100 + granted[0]);
    assert_eq!(busy, vec![until; 7]);
    assert_eq!(
        store.lease_refund(purchase.id, at(11), at(500)).await,
        Ok(RefundLease::Busy { until })
    );
}

// ---------------------------------------------------------------------------------------------
// Held purchases and reconciliation claims, by the captured payment
// ---------------------------------------------------------------------------------------------

pub async fn held_and_claimed_purchases_follow_the_captured_payment_and_the_bill<S: Store>(
    store: S,
) {
    let (instructor, buyer) = seed_people(&store).await;
    let make = |created: OffsetDateTime, facts: Vec<PaymentFact>| {
        let (store, instructor, buyer) = (store.clone(), instructor.clone(), buyer.clone());
        async move {
            let course = seed_course(&store, &instructor, at(0)).await;
            let purchase = begin(&buyer, &course, created);
            store.create_purchase(&purchase).await.unwrap();
            if facts.is_empty() {
                purchase
            } else {
                apply(&store, purchase.id, facts, None, at(20)).await
            }
        }
    };
    let discount = billed(usd(1999), usd(500), usd(0), usd(1499));

    // Nothing captured: pending, not held, claimable (even with the bill known).
    let untouched = make(at(1), vec![]).await;
    let billed_only = make(at(2), vec![PaymentFact::Billed(discount)]).await;
    let settling = make(at(3), vec![PaymentFact::PaymentProcessing]).await;
    // Captured, but not what was owed: held, never claimed.
    let list_price_paid = make(
        at(4),
        vec![PaymentFact::Billed(discount), paid(usd(1999), at(5))],
    )
    .await;
    let other_price = make(
        at(5),
        vec![
            PaymentFact::Billed(billed(usd(999), usd(0), usd(0), usd(999))),
            paid(usd(999), at(5)),
        ],
    )
    .await;
    let zero_without_bill = make(at(6), vec![paid(usd(0), at(5))]).await;
    // A discounted payment seen before its bill: held until the bill arrives.
    let early_charge = make(at(7), vec![paid(usd(1499), at(5))]).await;
    // Captured as billed: completed, neither held nor claimed.
    let as_billed = make(
        at(0),
        vec![PaymentFact::Billed(discount), paid(usd(1499), at(5))],
    )
    .await;
    let free_by_code = make(
        at(0),
        vec![
            PaymentFact::Billed(billed(usd(1999), usd(1999), usd(0), usd(0))),
            paid(usd(0), at(5)),
        ],
    )
    .await;
    for done in [&as_billed, &free_by_code] {
        assert_eq!(done.status(), PurchaseStatus::Completed, "{done:?}");
    }

    let held_ids = |page: lms_ports::Page<Purchase>| {
        page.items
            .into_iter()
            .map(|purchase| purchase.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        held_ids(store.list_held(PageRequest::new(1, 100)).await.unwrap()),
        [
            list_price_paid.id,
            other_price.id,
            zero_without_bill.id,
            early_charge.id
        ]
    );
    assert_eq!(
        store
            .claim_for_reconciliation(at(100), at(100), at(200), 100)
            .await
            .unwrap(),
        vec![untouched, billed_only, settling]
    );

    // The bill arrives: the early charge paid what was owed, and is no longer held.
    let settled = apply(
        &store,
        early_charge.id,
        vec![PaymentFact::Billed(discount)],
        None,
        at(30),
    )
    .await;
    assert_eq!(settled.status(), PurchaseStatus::Completed);
    assert_eq!(
        held_ids(store.list_held(PageRequest::new(1, 100)).await.unwrap()),
        [list_price_paid.id, other_price.id, zero_without_bill.id]
    );
    // Still captured, so never claimed.
    assert_eq!(
        store
            .claim_for_reconciliation(at(100), at(300), at(400), 100)
            .await
            .unwrap()
            .len(),
        3
    );
}

// ---------------------------------------------------------------------------------------------
// Revenue
// ---------------------------------------------------------------------------------------------

/// Sells `course` to a new buyer: a purchase begun at `at(10)` that learns `facts` at `at(20)`.
async fn sell<S: Store>(store: &S, course: &Course, facts: Vec<PaymentFact>) -> Purchase {
    let buyer = new_buyer(store).await;
    let purchase = begin(&buyer, course, at(10));
    store.create_purchase(&purchase).await.unwrap();
    if facts.is_empty() {
        return purchase;
    }
    apply(store, purchase.id, facts, None, at(20)).await
}

#[expect(
    clippy::too_many_arguments,
    reason = "one revenue line written out as the table of expected figures"
)]
fn line(
    course: &Course,
    currency: &str,
    purchases: u64,
    gross: i64,
    discounts: i64,
    tax: i64,
    paid: i64,
    refunds: i64,
    disputes_lost: i64,
    net: i64,
) -> RevenueLine {
    RevenueLine {
        course_id: course.id,
        course_title: course.title.as_str().to_owned(),
        instructor_id: course.instructor_id,
        currency: lms_domain::Currency::parse(currency).unwrap(),
        purchases,
        gross,
        discounts,
        tax,
        paid,
        refunds,
        disputes_lost,
        net,
    }
}

/// The report's order: course title, course id, currency code.
fn in_report_order(mut lines: Vec<RevenueLine>) -> Vec<RevenueLine> {
    lines.sort_by(|a, b| {
        (&a.course_title, a.course_id, a.currency.code()).cmp(&(
            &b.course_title,
            b.course_id,
            b.currency.code(),
        ))
    });
    lines
}

pub async fn revenue_sums_each_course_s_sales_per_currency_as_computed_by_hand<S: Store>(store: S) {
    let (teacher, other_teacher) = seed_people(&store).await;
    let alpha = course_titled(&store, &teacher, "Alpha", usd(2000)).await;
    // Same title, another course: a line of its own, after or before by course id.
    let alpha_again = course_titled(&store, &teacher, "Alpha", usd(2000)).await;
    let beta = course_titled(&store, &teacher, "Beta", usd(1000)).await;
    let free = course_titled(&store, &teacher, "Free", usd(0)).await;
    let gamma = course_titled(&store, &other_teacher, "Gamma", usd(500)).await;
    // Sold in the range [at(1000), at(2000)) unless said otherwise.
    let sold = at(1500);

    // Alpha in USD, ten sales:
    //  1. at the price, no bill:         gross 2000, paid 2000,                      net 2000
    sell(&store, &alpha, vec![paid(usd(2000), sold)]).await;
    //  2. 25% promotion code:            gross 2000, discount 500, paid 1500,        net 1500
    let quarter_off = billed(usd(2000), usd(500), usd(0), usd(1500));
    let facts = vec![PaymentFact::Billed(quarter_off), paid(usd(1500), sold)];
    sell(&store, &alpha, facts).await;
    //  3. exclusive tax of 10%:          gross 2000, tax 200, paid 2200,             net 2000
    let taxed = billed(usd(2000), usd(0), usd(200), usd(2200));
    sell(
        &store,
        &alpha,
        vec![PaymentFact::Billed(taxed), paid(usd(2200), sold)],
    )
    .await;
    //  4. inclusive tax:                 gross 2000, tax 182, paid 2000,   net 2000 - 182 = 1818
    let inclusive = billed(usd(2000), usd(0), usd(182), usd(2000));
    let facts = vec![PaymentFact::Billed(inclusive), paid(usd(2000), sold)];
    sell(&store, &alpha, facts).await;
    //  5. 100% off:                      gross 2000, discount 2000, paid 0,          net 0
    let all_off = billed(usd(2000), usd(2000), usd(0), usd(0));
    sell(
        &store,
        &alpha,
        vec![PaymentFact::Billed(all_off), paid(usd(0), sold)],
    )
    .await;
    //  6. partly refunded:               paid 2000, refunded 800,                    net 1200
    let facts = vec![
        paid(usd(2000), sold),
        PaymentFact::Refunded { total: usd(800) },
    ];
    sell(&store, &alpha, facts).await;
    //  7. fully refunded:                paid 2000, refunded 2000,                   net 0
    let facts = vec![
        paid(usd(2000), sold),
        PaymentFact::Refunded { total: usd(2000) },
    ];
    let refunded = sell(&store, &alpha, facts).await;
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
    //  8. refunded 500, then a dispute lost: paid 2000, refunded 500, lost 1500,     net 0
    let facts = vec![
        paid(usd(2000), sold),
        PaymentFact::Refunded { total: usd(500) },
        PaymentFact::DisputeOpened,
        PaymentFact::DisputeClosed(DisputeOutcome::Lost),
    ];
    sell(&store, &alpha, facts).await;
    //  9. a dispute won:                 paid 2000,                                  net 2000
    let facts = vec![
        paid(usd(2000), sold),
        PaymentFact::DisputeOpened,
        PaymentFact::DisputeClosed(DisputeOutcome::Won),
    ];
    sell(&store, &alpha, facts).await;
    // 10. exclusive tax, half refunded:  tax 200, paid 2200, refunded 1100; kept 1100 of which
    //     200 * 1100 / 2200 = 100 is tax:                                            net 1000
    let facts = vec![
        PaymentFact::Billed(taxed),
        paid(usd(2200), sold),
        PaymentFact::Refunded { total: usd(1100) },
    ];
    sell(&store, &alpha, facts).await;
    // Alpha USD: 10 purchases;
    //   gross     10 * 2000                                            = 20000
    //   discounts 500 + 2000                                           =  2500
    //   tax       200 + 182 + 200                                      =   582
    //   paid      2000+1500+2200+2000+0+2000+2000+2000+2000+2200       = 17900
    //   refunds   800 + 2000 + 500 + 1100                              =  4400
    //   lost      1500                                                 =  1500
    //   net       2000+1500+2000+1818+0+1200+0+0+2000+1000             = 11518
    //             (= 17900 - 4400 - 1500 kept, less 200 + 182 + 100 tax kept)

    // Not sales of Alpha: held for review (a wrong amount, a bill for another price), pending,
    // failed.
    let held = sell(&store, &alpha, vec![paid(usd(1234), sold)]).await;
    assert!(held.review_reason().is_some());
    let wrong_bill = billed(usd(1500), usd(0), usd(0), usd(1500));
    let facts = vec![PaymentFact::Billed(wrong_bill), paid(usd(1500), sold)];
    let held_too = sell(&store, &alpha, facts).await;
    assert!(held_too.review_reason().is_some());
    sell(&store, &alpha, vec![]).await;
    sell(&store, &alpha, vec![PaymentFact::PaymentProcessing]).await;
    let failed = sell(&store, &alpha, vec![PaymentFact::CheckoutExpired]).await;
    assert_eq!(failed.status(), PurchaseStatus::Failed);
    // Outside the range: just before it, and at its (excluded) end. Paid at the price.
    sell(&store, &alpha, vec![paid(usd(2000), at(999))]).await;
    sell(&store, &alpha, vec![paid(usd(2000), at(2000))]).await;

    // Alpha in EUR (Adaptive Pricing: presented in EUR, the USD price in the conversion):
    //  a. no discount:  gross 1850, paid 1850,                                       net 1850
    //  b. 10% off:      gross 1850, discount 185, paid 1665,                         net 1665
    // Alpha EUR: 2 purchases; gross 3700, discounts 185, tax 0, paid 3515, net 3515.
    let facts = vec![
        PaymentFact::Billed(converted(1850, 0, 1850, 2000, 2000)),
        paid(eur(1850), sold),
    ];
    sell(&store, &alpha, facts).await;
    let facts = vec![
        PaymentFact::Billed(converted(1850, 185, 1665, 2000, 1800)),
        paid(eur(1665), sold),
    ];
    sell(&store, &alpha, facts).await;

    // The other Alpha: one sale at the price, 2000.
    sell(&store, &alpha_again, vec![paid(usd(2000), sold)]).await;

    // Beta: at the price (1000), and a payment of 900 an operator accepted (no bill: the
    // payment is the gross). Beta USD: 2 purchases; gross 1900, paid 1900, net 1900.
    sell(&store, &beta, vec![paid(usd(1000), sold)]).await;
    let facts = vec![paid(usd(900), sold), PaymentFact::AcceptedByOperator];
    let accepted = sell(&store, &beta, facts).await;
    assert_eq!(accepted.status(), PurchaseStatus::Completed);

    // A free enrolment earns nothing.
    let learner = new_buyer(&store).await;
    let enrolment = Purchase::enroll_free(
        PurchaseId::from_uuid(Uuid::new_v4()),
        learner.id,
        &free,
        sold,
    )
    .unwrap();
    store.create_purchase(&enrolment).await.unwrap();

    // The other teacher's Gamma: one sale at the price, 500.
    sell(&store, &gamma, vec![paid(usd(500), sold)]).await;

    let teachers_lines = vec![
        line(&alpha, "EUR", 2, 3700, 185, 0, 3515, 0, 0, 3515),
        line(
            &alpha, "USD", 10, 20000, 2500, 582, 17900, 4400, 1500, 11518,
        ),
        line(&alpha_again, "USD", 1, 2000, 0, 0, 2000, 0, 0, 2000),
        line(&beta, "USD", 2, 1900, 0, 0, 1900, 0, 0, 1900),
    ];
    let gamma_line = line(&gamma, "USD", 1, 500, 0, 0, 500, 0, 0, 500);
    let in_range = RevenueQuery {
        instructor: Some(teacher.id),
        sold_from: Some(at(1000)),
        sold_before: Some(at(2000)),
    };
    assert_eq!(
        store.revenue(&in_range).await.unwrap(),
        in_report_order(teachers_lines.clone())
    );

    // An admin's report: every instructor's courses.
    let everyone = RevenueQuery {
        instructor: None,
        ..in_range
    };
    let mut all_lines = teachers_lines.clone();
    all_lines.push(gamma_line.clone());
    assert_eq!(
        store.revenue(&everyone).await.unwrap(),
        in_report_order(all_lines)
    );
    let other = RevenueQuery {
        instructor: Some(other_teacher.id),
        ..in_range
    };
    assert_eq!(store.revenue(&other).await.unwrap(), vec![gamma_line]);

    // Half-open and unbounded ranges take in the sales outside [at(1000), at(2000)): each adds
    // one purchase at the price to Alpha USD (11 purchases; gross 22000, paid 19900, net 13518;
    // both: 12, 24000, 21900, 15518).
    let alpha_usd = |purchases, gross, paid, net| {
        line(
            &alpha, "USD", purchases, gross, 2500, 582, paid, 4400, 1500, net,
        )
    };
    let with_alpha_usd = |alpha_usd_line: RevenueLine| {
        let mut lines = teachers_lines.clone();
        lines[1] = alpha_usd_line;
        in_report_order(lines)
    };
    let from_only = RevenueQuery {
        sold_before: None,
        ..in_range
    };
    assert_eq!(
        store.revenue(&from_only).await.unwrap(),
        with_alpha_usd(alpha_usd(11, 22000, 19900, 13518))
    );
    let before_only = RevenueQuery {
        sold_from: None,
        ..in_range
    };
    assert_eq!(
        store.revenue(&before_only).await.unwrap(),
        with_alpha_usd(alpha_usd(11, 22000, 19900, 13518))
    );
    let unbounded = RevenueQuery {
        instructor: Some(teacher.id),
        sold_from: None,
        sold_before: None,
    };
    assert_eq!(
        store.revenue(&unbounded).await.unwrap(),
        with_alpha_usd(alpha_usd(12, 24000, 21900, 15518))
    );

    // A course renamed since: the report shows it as it is now, in its new place.
    let mut renamed = beta.clone();
    renamed.title = CourseText::title("Aardvark").unwrap();
    store.update_course(&renamed).await.unwrap();
    let mut renamed_lines = teachers_lines;
    renamed_lines[3] = line(&renamed, "USD", 2, 1900, 0, 0, 1900, 0, 0, 1900);
    let report = store.revenue(&in_range).await.unwrap();
    assert_eq!(report[0].course_title, "Aardvark");
    assert_eq!(report, in_report_order(renamed_lines));
}

pub async fn revenue_without_sales_in_the_range_is_empty<S: Store>(store: S) {
    let (teacher, buyer) = seed_people(&store).await;
    let everything = RevenueQuery::default();
    assert_eq!(store.revenue(&everything).await.unwrap(), vec![]);

    let course = course_titled(&store, &teacher, "Alpha", usd(2000)).await;
    sell(&store, &course, vec![paid(usd(2000), at(1500))]).await;
    // Held, pending and failed purchases are no sales.
    sell(&store, &course, vec![paid(usd(5), at(1500))]).await;
    sell(&store, &course, vec![]).await;
    sell(&store, &course, vec![PaymentFact::CheckoutExpired]).await;

    let later = RevenueQuery {
        instructor: None,
        sold_from: Some(at(1501)),
        sold_before: None,
    };
    assert_eq!(store.revenue(&later).await.unwrap(), vec![]);
    let earlier = RevenueQuery {
        instructor: None,
        sold_from: None,
        sold_before: Some(at(1500)),
    };
    assert_eq!(store.revenue(&earlier).await.unwrap(), vec![]);
    // A user who teaches nothing.
    let nobody = RevenueQuery {
        instructor: Some(buyer.id),
        ..RevenueQuery::default()
    };
    assert_eq!(store.revenue(&nobody).await.unwrap(), vec![]);
    // The one sale, for contrast.
    assert_eq!(
        store.revenue(&everything).await.unwrap(),
        vec![line(&course, "USD", 1, 2000, 0, 0, 2000, 0, 0, 2000)]
    );
}
