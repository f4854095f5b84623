//! The revenue report: who may see what, the time range, and figures computed by hand.

use crate::support::{usd, usd_bill, World};
use lms_domain::{Bill, Conversion, Course, Currency, DisputeOutcome, Money, PaymentFact, User};
use lms_in_memory::FakeEvent;
use lms_ports::RevenueLine;
use lms_use_cases::{FieldError, RevenueRequest, RevenueTotals, UseCaseError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const DAY1: OffsetDateTime = datetime!(2026-03-01 10:00 UTC);
const DAY2: OffsetDateTime = datetime!(2026-03-02 10:00 UTC);
const DAY3: OffsetDateTime = datetime!(2026-03-03 10:00 UTC);

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

/// Two instructors' sales: Alpha (20.00 USD) sold plain, discounted then partly refunded,
/// taxed then lost in a dispute, presented in euros; one payment held for review; Beta
/// (30.00 USD) sold plain.
struct Shop {
    world: World,
    alpha_teacher: User,
    beta_teacher: User,
    alpha: Course,
    beta: Course,
}

async fn shop() -> Shop {
    let world = World::new();
    let alpha_teacher = world.instructor().await;
    let beta_teacher = world.instructor().await;
    let alpha = world.course(&alpha_teacher, 2000, true).await;
    let beta = world.course(&beta_teacher, 3000, true).await;

    world.clock.set(DAY1);
    let plain = world.student().await;
    world
        .billed_purchase(&plain, &alpha, "pi_plain", usd_bill(2000, 0, 0, 2000), None)
        .await;
    let euros = world.student().await;
    let presented = Bill::new(
        eur(1850),
        eur(0),
        eur(0),
        eur(1850),
        Some(Conversion::new(usd(2000), usd(2000)).unwrap()),
    )
    .unwrap();
    world
        .billed_purchase(&euros, &alpha, "pi_euros", presented, None)
        .await;

    world.clock.set(DAY2);
    let discounted_buyer = world.student().await;
    let discounted = world
        .billed_purchase(
            &discounted_buyer,
            &alpha,
            "pi_discounted",
            usd_bill(2000, 500, 0, 1500),
            Some("promo_SPRING25"),
        )
        .await;
    world
        .services
        .refund(&alpha_teacher, discounted.id, Some(500), None)
        .await
        .unwrap();
    let beta_buyer = world.student().await;
    world
        .billed_purchase(
            &beta_buyer,
            &beta,
            "pi_beta",
            usd_bill(3000, 0, 0, 3000),
            None,
        )
        .await;
    // Held for review (billed another price): earns nothing.
    let held_buyer = world.student().await;
    let held = world
        .billed_purchase(
            &held_buyer,
            &alpha,
            "pi_held",
            usd_bill(1000, 0, 0, 1000),
            None,
        )
        .await;
    assert!(held.review_reason().is_some());

    world.clock.set(DAY3);
    let disputer = world.student().await;
    let taxed = world
        .billed_purchase(
            &disputer,
            &alpha,
            "pi_taxed",
            usd_bill(2000, 0, 400, 2400),
            None,
        )
        .await;
    let lost = FakeEvent::new("evt_dispute_lost", "charge.dispute.closed")
        .with_payment_intent("pi_taxed")
        .with_fact(PaymentFact::DisputeClosed(DisputeOutcome::Lost));
    world.webhook(&lost).await.unwrap();
    assert!(!world.purchase(taxed.id).await.unlocks_course());
    // An unpaid checkout earns nothing either.
    let browser = world.student().await;
    world.checkout(&browser, &beta).await;

    world.clock.set(DAY3 + Duration::days(1));
    Shop {
        world,
        alpha_teacher,
        beta_teacher,
        alpha,
        beta,
    }
}

#[expect(clippy::too_many_arguments, reason = "one row of a hand-written table")]
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
        currency: Currency::parse(currency).unwrap(),
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

fn totals(line: &RevenueLine) -> RevenueTotals {
    RevenueTotals {
        currency: line.currency,
        purchases: line.purchases,
        gross: line.gross,
        discounts: line.discounts,
        tax: line.tax,
        paid: line.paid,
        refunds: line.refunds,
        disputes_lost: line.disputes_lost,
        net: line.net,
    }
}

/// Alpha in euros: 18.50 paid, kept.
fn alpha_eur(shop: &Shop) -> RevenueLine {
    line(&shop.alpha, "EUR", 1, 1850, 0, 0, 1850, 0, 0, 1850)
}

/// Alpha in dollars over all days: plain (2000 kept), discounted (1500 paid, 500 refunded,
/// 1000 kept), taxed (2400 paid of which 400 tax, all lost in the dispute, 0 kept).
fn alpha_usd(shop: &Shop) -> RevenueLine {
    line(&shop.alpha, "USD", 3, 6000, 500, 400, 5900, 500, 2400, 3000)
}

fn beta_usd(shop: &Shop) -> RevenueLine {
    line(&shop.beta, "USD", 1, 3000, 0, 0, 3000, 0, 0, 3000)
}

fn sort(mut lines: Vec<RevenueLine>) -> Vec<RevenueLine> {
    lines.sort_by(|a, b| {
        (
            a.course_title.as_str(),
            a.course_id.to_string(),
            a.currency.code(),
        )
            .cmp(&(
                b.course_title.as_str(),
                b.course_id.to_string(),
                b.currency.code(),
            ))
    });
    lines
}

#[tokio::test]
async fn an_instructor_sees_their_own_courses_against_hand_computed_figures() {
    let shop = shop().await;
    let report = shop
        .world
        .services
        .revenue(&shop.alpha_teacher, RevenueRequest::default())
        .await
        .unwrap();
    assert_eq!(report.lines, vec![alpha_eur(&shop), alpha_usd(&shop)]);
    assert_eq!(
        report.totals,
        vec![totals(&alpha_eur(&shop)), totals(&alpha_usd(&shop))]
    );
    // Naming themselves is the same; naming another instructor is forbidden.
    let named = shop
        .world
        .services
        .revenue(
            &shop.alpha_teacher,
            RevenueRequest {
                instructor: Some(shop.alpha_teacher.id),
                ..RevenueRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(named, report);
    assert_eq!(
        shop.world
            .services
            .revenue(
                &shop.alpha_teacher,
                RevenueRequest {
                    instructor: Some(shop.beta_teacher.id),
                    ..RevenueRequest::default()
                },
            )
            .await
            .unwrap_err(),
        UseCaseError::Forbidden
    );
}

#[tokio::test]
async fn an_admin_sees_every_course_or_one_instructors_and_a_student_nothing() {
    let shop = shop().await;
    let admin = shop.world.admin().await;
    let all = shop
        .world
        .services
        .revenue(&admin, RevenueRequest::default())
        .await
        .unwrap();
    assert_eq!(
        all.lines,
        sort(vec![alpha_eur(&shop), alpha_usd(&shop), beta_usd(&shop)])
    );
    let mut usd_total = totals(&alpha_usd(&shop));
    let beta = beta_usd(&shop);
    usd_total.purchases += beta.purchases;
    usd_total.gross += beta.gross;
    usd_total.paid += beta.paid;
    usd_total.net += beta.net;
    assert_eq!(all.totals, vec![totals(&alpha_eur(&shop)), usd_total]);
    assert_eq!(
        (all.totals[1].purchases, all.totals[1].net),
        (4, 6000),
        "by hand: 3 + 1 purchases, 3000 + 3000 kept"
    );

    let beta_only = shop
        .world
        .services
        .revenue(
            &admin,
            RevenueRequest {
                instructor: Some(shop.beta_teacher.id),
                ..RevenueRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(beta_only.lines, vec![beta_usd(&shop)]);

    let student = shop.world.student().await;
    assert_eq!(
        shop.world
            .services
            .revenue(&student, RevenueRequest::default())
            .await
            .unwrap_err(),
        UseCaseError::Forbidden
    );
}

#[tokio::test]
async fn the_range_counts_sales_from_its_start_up_to_its_end_exclusive() {
    let shop = shop().await;
    let day2_only = RevenueRequest {
        instructor: None,
        from: Some(DAY2 - Duration::hours(10)),
        to: Some(DAY3 - Duration::hours(10)),
    };
    let report = shop
        .world
        .services
        .revenue(&shop.alpha_teacher, day2_only)
        .await
        .unwrap();
    // The discounted sale only: 20.00 billed, 5.00 off, 15.00 paid, 5.00 refunded.
    assert_eq!(
        report.lines,
        vec![line(
            &shop.alpha,
            "USD",
            1,
            2000,
            500,
            0,
            1500,
            500,
            0,
            1000
        )]
    );
    // A sale exactly at `to` is out; exactly at `from`, in.
    let at_day3 = RevenueRequest {
        instructor: None,
        from: Some(DAY3),
        to: None,
    };
    let report = shop
        .world
        .services
        .revenue(&shop.alpha_teacher, at_day3)
        .await
        .unwrap();
    assert_eq!(
        report.lines,
        vec![line(&shop.alpha, "USD", 1, 2000, 0, 400, 2400, 0, 2400, 0)]
    );
    let before_day3 = RevenueRequest {
        instructor: None,
        from: None,
        to: Some(DAY3),
    };
    let report = shop
        .world
        .services
        .revenue(&shop.alpha_teacher, before_day3)
        .await
        .unwrap();
    assert_eq!(report.totals.iter().map(|t| t.purchases).sum::<u64>(), 3);
    // Nothing sold in an empty range.
    let empty = RevenueRequest {
        instructor: None,
        from: Some(DAY1 - Duration::days(7)),
        to: Some(DAY1 - Duration::days(6)),
    };
    let report = shop
        .world
        .services
        .revenue(&shop.alpha_teacher, empty)
        .await
        .unwrap();
    assert!(report.lines.is_empty() && report.totals.is_empty());
}

#[tokio::test]
async fn a_range_starting_after_it_ends_is_refused() {
    let shop = shop().await;
    assert_eq!(
        shop.world
            .services
            .revenue(
                &shop.alpha_teacher,
                RevenueRequest {
                    instructor: None,
                    from: Some(DAY2),
                    to: Some(DAY1),
                },
            )
            .await
            .unwrap_err(),
        UseCaseError::Validation(vec![FieldError::new("from", "must not be after `to`")])
    );
}
