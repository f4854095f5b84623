//! The commerce migration's backfill, shared by the SQL stores' tests: the rows the code
//! before it wrote (each store inserts them in its own SQL dialect, with the migration
//! reverted), and what every store must read back once it is applied again.

use crate::Store;
use lms_domain::{Course, PaymentFact, PurchaseId, User};

/// A `purchases` row as the code before the commerce migration wrote it.
#[derive(Debug)]
pub struct OldPurchase {
    pub name: &'static str,
    pub free_course: bool,
    pub status: &'static str,
    pub paid_in_full: bool,
    pub mismatched: Option<(i64, &'static str)>,
    pub refunded: Option<(i64, &'static str)>,
    pub dispute_lost: bool,
    pub accepted: bool,
    pub paid_at: Option<&'static str>,
}

impl OldPurchase {
    pub const fn new(name: &'static str, status: &'static str, paid_in_full: bool) -> Self {
        Self {
            name,
            free_course: false,
            status,
            paid_in_full,
            mismatched: None,
            refunded: None,
            dispute_lost: false,
            accepted: false,
            paid_at: None,
        }
    }
}

/// The rows each SQL store's backfill test writes in the old shape, on the course of
/// [`BackfillShop`] priced USD 20.00 (or its free one), all created 2026-06-01.
pub fn old_purchases() -> Vec<OldPurchase> {
    vec![
        OldPurchase {
            paid_at: Some("2026-06-02T10:00:00Z"),
            ..OldPurchase::new("paid, time known", "completed", true)
        },
        OldPurchase::new("paid, time unknown", "completed", true),
        OldPurchase {
            mismatched: Some((500, "USD")),
            ..OldPurchase::new("held", "pending", false)
        },
        OldPurchase {
            mismatched: Some((1500, "USD")),
            accepted: true,
            ..OldPurchase::new("accepted", "completed", false)
        },
        OldPurchase {
            refunded: Some((700, "USD")),
            ..OldPurchase::new("partly refunded", "completed", true)
        },
        OldPurchase {
            refunded: Some((2500, "USD")),
            ..OldPurchase::new("over-refunded", "refunded", true)
        },
        OldPurchase {
            refunded: Some((300, "EUR")),
            ..OldPurchase::new("refunded in another currency", "completed", true)
        },
        OldPurchase {
            refunded: Some((500, "USD")),
            dispute_lost: true,
            ..OldPurchase::new("dispute lost", "refunded", true)
        },
        OldPurchase {
            free_course: true,
            ..OldPurchase::new("free enrolment", "completed", true)
        },
        OldPurchase::new("unpaid", "pending", false),
        OldPurchase {
            mismatched: Some((500, "USD")),
            ..OldPurchase::new("paid twice", "completed", true)
        },
        OldPurchase {
            mismatched: Some((1900, "EUR")),
            accepted: true,
            ..OldPurchase::new("accepted in euros", "completed", false)
        },
    ]
}

/// The people and courses of the backfill test: a course priced USD 20.00 and a free one.
#[derive(Debug)]
pub struct BackfillShop {
    pub teacher: User,
    pub buyer: User,
    pub course: Course,
    pub free: Course,
}

/// Seeds [`BackfillShop`] through the store, before the migration is reverted.
pub async fn seed_backfill_shop<S: Store>(store: &S) -> BackfillShop {
    let (teacher, buyer) = crate::seed_people(store).await;
    let course = crate::new_course(teacher.id, crate::usd(2000), true, crate::at(0));
    let free = crate::new_course(teacher.id, crate::usd(0), true, crate::at(0));
    for course in [&course, &free] {
        lms_ports::CourseRepo::create_course(store, course)
            .await
            .unwrap();
    }
    BackfillShop {
        teacher,
        buyer,
        course,
        free,
    }
}

/// Once migrated again: purchases stored before bills were kept read back with the payment
/// they had captured (the price when paid in full, else the mismatched payment), the same
/// status, and, when they paid for their course, a sale computed as the domain computes it;
/// the inbox keeps its links. `ids` are the stored [`old_purchases`], in order; the first is
/// linked to the inbox event `evt_old`.
pub async fn check_backfilled<S: Store>(
    store: &S,
    shop: &BackfillShop,
    old: &[OldPurchase],
    ids: &[PurchaseId],
) {
    // Each purchase reads back with what it had captured, and the status it had.
    let mut purchases = Vec::new();
    for (row, id) in old.iter().zip(ids) {
        let purchase = store.get_purchase(*id).await.unwrap().unwrap();
        assert_eq!(purchase.status().as_str(), row.status, "{}", row.name);
        purchases.push(purchase);
    }
    let captured: Vec<Option<lms_domain::Money>> = purchases
        .iter()
        .map(lms_domain::Purchase::captured)
        .collect();
    let (usd, eur) = (crate::usd, |minor| crate::money(minor, "EUR"));
    assert_eq!(
        captured,
        [
            Some(usd(2000)),
            Some(usd(2000)),
            Some(usd(500)),
            Some(usd(1500)),
            Some(usd(2000)),
            Some(usd(2000)),
            Some(usd(2000)),
            Some(usd(2000)),
            Some(usd(0)),
            None,
            Some(usd(2000)),
            Some(eur(1900)),
        ]
    );
    assert!(purchases.iter().all(|purchase| purchase.bill().is_none()));
    let held = store
        .list_held(lms_ports::PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(held.items, vec![purchases[2].clone()]);
    assert_eq!(
        store
            .get_event("evt_old")
            .await
            .unwrap()
            .unwrap()
            .purchase_id,
        Some(ids[0])
    );

    // Their sales, as computed by hand: in USD, every paid purchase of the priced course but
    // the one accepted in euros (8): gross = paid = 6 * 2000 + 1500 (accepted) + 2000 (paid
    // twice keeps the price) = 15500; refunds 700 + 2000 (capped at what was paid) + 0 (in
    // another currency) + 500 = 3200; lost 2000 - 500 = 1500; net 15500 - 3200 - 1500 = 10800.
    // In EUR, the accepted 19.00. The free enrolment, the held and the unpaid ones earn nothing.
    let line = |currency, purchases, gross, refunds, disputes_lost, net| lms_ports::RevenueLine {
        course_id: shop.course.id,
        course_title: shop.course.title.as_str().to_owned(),
        instructor_id: shop.teacher.id,
        currency: lms_domain::Currency::parse(currency).unwrap(),
        purchases,
        gross,
        discounts: 0,
        tax: 0,
        paid: gross,
        refunds,
        disputes_lost,
        net,
    };
    let report = store
        .revenue(&lms_ports::RevenueQuery::default())
        .await
        .unwrap();
    assert_eq!(
        report,
        [
            line("EUR", 1, 1900, 0, 0, 1900),
            line("USD", 8, 15500, 3200, 1500, 10800),
        ]
    );
    // The same as the domain's sales of what was read back.
    let mut by_currency = std::collections::BTreeMap::<&str, (u64, i64, i64, i64, i64)>::new();
    for sale in purchases.iter().filter_map(lms_domain::Purchase::sale) {
        let sums = by_currency.entry(sale.currency.code()).or_default();
        *sums = (
            sums.0 + 1,
            sums.1 + sale.gross,
            sums.2 + sale.refunded,
            sums.3 + sale.disputes_lost,
            sums.4 + sale.net,
        );
    }
    let from_domain: Vec<_> = by_currency
        .into_iter()
        .map(|(currency, (n, gross, refunds, lost, net))| {
            line(currency, n, gross, refunds, lost, net)
        })
        .collect();
    assert_eq!(report, from_domain);
    // Sold when paid, or when begun if the time was not kept.
    let since_paid = lms_ports::RevenueQuery {
        sold_from: Some(time::macros::datetime!(2026-06-01 00:00:01 UTC)),
        ..lms_ports::RevenueQuery::default()
    };
    assert_eq!(
        store.revenue(&since_paid).await.unwrap(),
        [line("USD", 1, 2000, 0, 0, 2000)]
    );
}

/// A purchase made after the migration, paid as billed with a discount (USD 15.00 of 20.00):
/// the down migration must count it as accepted, so the old code still sees it paid.
pub async fn buy_discounted<S: Store>(store: &S, shop: &BackfillShop) -> PurchaseId {
    let usd = crate::usd;
    let discounted = crate::begin(&shop.buyer, &shop.course, crate::at(5));
    store.create_purchase(&discounted).await.unwrap();
    let bill = lms_domain::Bill::new(usd(2000), usd(500), usd(0), usd(1500), None).unwrap();
    let facts = vec![
        PaymentFact::Billed(bill),
        PaymentFact::PaymentSucceeded {
            amount: usd(1500),
            at: None,
        },
    ];
    let update = crate::update(discounted.id, facts, None, crate::at(6));
    store.apply_facts(&update).await.unwrap();
    discounted.id
}
