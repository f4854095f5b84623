//! Promotion codes, tax, Adaptive Pricing, receipts, customers and refunds over the API: what a
//! buyer's order history shows, when a payment unlocks, how far it can be refunded, and by whom.
//! On the Stripe wiring the sandbox bills the checkout itself (its promotion codes, flat tax
//! rate and presentment currency) and its own events are delivered; on the fake one the test
//! scripts the same bill by hand, so both must end alike.

use crate::api::helpers::{Checkout, Resp, TestApp, TestUser};
use crate::api::wiring::Commerce;
use lms_domain::{Bill, Conversion, Currency, Money, PaymentFact, Role};
use lms_stripe_http::{CheckoutOptions, TaxBehavior};
use lms_stripe_sandbox::Presentment;
use lms_use_cases::{Operator, UseCaseSettings};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const PRICE: i64 = 2000;
const HISTORY: &str = "/api/v1/payments/purchases";

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap()).unwrap()
}

fn usd_bill(subtotal: i64, discount: i64, tax: i64, total: i64) -> Bill {
    Bill::new(usd(subtotal), usd(discount), usd(tax), usd(total), None).unwrap()
}

// ---- setups ------------------------------------------------------------------------------

fn plain() -> Commerce {
    Commerce::default()
}

fn promotions() -> Commerce {
    Commerce {
        checkout: CheckoutOptions {
            allow_promotion_codes: true,
            ..CheckoutOptions::default()
        },
        ..Commerce::default()
    }
}

/// Automatic tax, exclusive, at the sandbox's 20%.
fn taxed() -> Commerce {
    Commerce {
        checkout: CheckoutOptions {
            automatic_tax: Some(TaxBehavior::Exclusive),
            ..CheckoutOptions::default()
        },
        tax_rate_bps: 2000,
        ..Commerce::default()
    }
}

/// Every checkout presented in euros at 0.925 to the dollar.
fn presented() -> Commerce {
    Commerce {
        presentment: Some(Presentment::parse("eur", "0.925").unwrap()),
        ..Commerce::default()
    }
}

/// Buyers may ask for their money back within 14 days.
fn window() -> Commerce {
    Commerce {
        use_cases: UseCaseSettings::default()
            .with_self_refund_window(Some(Duration::days(14)))
            .unwrap(),
        ..Commerce::default()
    }
}

// ---- shortcuts ---------------------------------------------------------------------------

impl TestApp {
    /// A signed-up user the operator made admin.
    async fn commerce_admin(&self) -> TestUser {
        let user = self.user("student").await;
        self.services
            .set_admin(Operator::CommandLine, &user.email, true, Role::Student)
            .await
            .unwrap();
        user
    }

    /// The buyer's order history item of `checkout`.
    async fn history_item(&self, buyer: &TestUser, checkout: &Checkout) -> Value {
        let resp = self
            .get(&format!("{HISTORY}?limit=100"), Some(&buyer.token))
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["id"] == checkout.purchase_id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("not in the history: {}", resp.text))
    }

    async fn is_unlocked(&self, buyer: &TestUser, course_id: &str) -> bool {
        let resp = self.status_of(buyer, course_id).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json["data"]["isPurchased"] == true
    }

    async fn refund_as(&self, user: &TestUser, checkout: &Checkout, body: Value) -> Resp {
        self.post(
            &format!("/api/v1/payments/purchases/{}/refund", checkout.purchase_id),
            Some(&user.token),
            &body,
        )
        .await
    }

    async fn request_refund(&self, buyer: &TestUser, purchase_id: &str, body: Value) -> Resp {
        self.post(
            &format!("/api/v1/payments/purchases/{purchase_id}/refund-request"),
            Some(&buyer.token),
            &body,
        )
        .await
    }

    /// A checkout completed by a `checkout.session.completed` billing `bill` (in the wiring's
    /// own event format): the payment is `bill`'s total.
    async fn paid_as_billed(&self, checkout: &Checkout, bill: Bill) {
        let (body, signature) = self.event(
            &format!("evt_billed_{}", Uuid::new_v4().simple()),
            "checkout.session.completed",
            checkout,
            &[
                PaymentFact::PaymentSucceeded {
                    amount: bill.total(),
                    at: None,
                },
                PaymentFact::Billed(bill),
            ],
        );
        let resp = self.webhook(body, Some(&signature)).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }

    /// Moves time on for the app and for the gateway alike (the sandbox refuses a checkout
    /// expiring more than a day after its own clock).
    fn advance_both(&self, by: Duration) {
        self.clock.advance(by);
        if let crate::api::helpers::Gateway::Stripe { sandbox, .. } = &self.gateway {
            sandbox.advance_clock(by.unsigned_abs());
        }
    }

    /// An instructor's published course at `price` and a fresh student.
    async fn commerce_shop(&self, price: i64) -> (TestUser, String, TestUser) {
        let instructor = self.user("instructor").await;
        let course = self.published_course(&instructor, price).await;
        let student = self.user("student").await;
        (instructor, course, student)
    }
}

fn bill_json(currency: &str, subtotal: i64, discount: i64, tax: i64, total: i64) -> Value {
    json!({"currency": currency, "subtotalCents": subtotal, "discountCents": discount,
           "taxCents": tax, "totalCents": total, "conversion": null})
}

// ---- tests -------------------------------------------------------------------------------

async fn a_payment_presented_in_another_currency_unlocks_and_refunds_in_that_currency(
    app: TestApp,
) {
    let (instructor, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.checkout(&buyer, &course).await;
    let presented = Bill::new(
        eur(1850),
        eur(0),
        eur(0),
        eur(1850),
        Some(Conversion::new(usd(PRICE), usd(PRICE)).unwrap()),
    )
    .unwrap();
    app.pay_on_page(&checkout, None, presented).await;
    assert!(app.is_unlocked(&buyer, &course).await);

    let item = app.history_item(&buyer, &checkout).await;
    assert_eq!(
        item["bill"],
        json!({"currency": "EUR", "subtotalCents": 1850, "discountCents": 0, "taxCents": 0,
               "totalCents": 1850,
               "conversion": {"currency": "USD", "subtotalCents": 2000, "totalCents": 2000}})
    );
    assert_eq!(
        (
            &item["amountCents"],
            &item["currency"],
            &item["paidCents"],
            &item["paidCurrency"]
        ),
        (&json!(2000), &json!("USD"), &json!(1850), &json!("EUR"))
    );

    // Refunds are in euros and bounded by the euros paid, not by the dollar price.
    app.refund_as(&instructor, &checkout, json!({"amountCents": 1851}))
        .await
        .assert_error(422, "VALIDATION_ERROR");
    let part = app
        .refund_as(&instructor, &checkout, json!({"amountCents": 850}))
        .await;
    assert_eq!(part.status, 202, "{}", part.text);
    let rest = app.refund_as(&instructor, &checkout, json!({})).await;
    assert_eq!(rest.status, 202, "{}", rest.text);
    assert_eq!(rest.json["data"]["purchase"]["status"], "refunded");
    assert_eq!(app.gateway_refunds(), vec![850, 1000]);
    let item = app.history_item(&buyer, &checkout).await;
    assert_eq!(
        (&item["refundedCents"], &item["status"]),
        (&json!(1850), &json!("refunded"))
    );
}

async fn two_concurrent_partial_refunds_exceeding_the_payment_leave_one_refused(app: TestApp) {
    let (instructor, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.buy(&buyer, &course).await;
    let (first, second) = tokio::join!(
        app.refund_as(&instructor, &checkout, json!({"amountCents": 1200})),
        app.refund_as(&instructor, &checkout, json!({"amountCents": 1000})),
    );
    let (accepted, refused) = if first.status == 202 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let code = refused.json["code"].as_str().unwrap_or_default().to_owned();
    assert!(
        (refused.status, code.as_str()) == (409, "REFUND_IN_PROGRESS")
            || (refused.status, code.as_str()) == (422, "VALIDATION_ERROR"),
        "the other is refused: {}",
        refused.text
    );
    assert_eq!(app.gateway_refunds().len(), 1, "the gateway saw one refund");
    let purchase = app.purchase(&checkout.purchase_id).await;
    assert!(purchase.refunded_amount().minor() <= purchase.captured().unwrap().minor());
    assert_eq!(purchase.refunded_amount().minor(), app.gateway_refunds()[0]);
}

async fn a_discounted_payment_unlocks_with_its_code_and_receipt(app: TestApp) {
    let (_, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.checkout(&buyer, &course).await;
    app.pay_on_page(&checkout, Some("SPRING25"), usd_bill(PRICE, 500, 0, 1500))
        .await;
    assert!(app.is_unlocked(&buyer, &course).await);
    let item = app.history_item(&buyer, &checkout).await;
    assert_eq!(item["bill"], bill_json("USD", 2000, 500, 0, 1500));
    assert_eq!(
        (&item["paidCents"], &item["promotionCode"]),
        (&json!(1500), &json!("SPRING25"))
    );
    assert!(
        item["receiptUrl"]
            .as_str()
            .is_some_and(|url| url.starts_with("http")),
        "{item}"
    );
    assert!(item["selfRefundUntil"].is_null(), "self refunds are off");
}

async fn a_payment_billed_for_another_price_is_held_for_review(app: TestApp) {
    let (_, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.checkout(&buyer, &course).await;
    app.paid_as_billed(&checkout, usd_bill(1500, 0, 0, 1500))
        .await;
    assert!(!app.is_unlocked(&buyer, &course).await);
    let status = app.status_of(&buyer, &course).await;
    assert_eq!(status.json["data"]["purchaseStatus"], "pending");

    let admin = app.commerce_admin().await;
    let held = app
        .get("/api/v1/admin/purchases/held", Some(&admin.token))
        .await;
    assert_eq!(held.status, 200, "{}", held.text);
    let item = held.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == checkout.purchase_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("held: {}", held.text));
    assert!(
        item["reviewReason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("price mismatch")),
        "{item}"
    );
    assert_eq!(item["bill"], bill_json("USD", 1500, 0, 0, 1500));
    assert_eq!(
        (&item["receivedCents"], &item["amountCents"]),
        (&json!(1500), &json!(2000))
    );
}

async fn a_hundred_percent_off_code_completes_without_a_charge(app: TestApp) {
    let (instructor, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.checkout(&buyer, &course).await;
    app.pay_on_page(&checkout, Some("FREECOURSE"), usd_bill(PRICE, PRICE, 0, 0))
        .await;
    assert!(app.is_unlocked(&buyer, &course).await);
    let item = app.history_item(&buyer, &checkout).await;
    assert_eq!(item["bill"], bill_json("USD", 2000, 2000, 0, 0));
    assert_eq!(
        (
            &item["paidCents"],
            &item["promotionCode"],
            &item["receiptUrl"]
        ),
        (&json!(0), &json!("FREECOURSE"), &Value::Null)
    );
    app.refund_as(&instructor, &checkout, json!({}))
        .await
        .assert_error(409, "NOT_REFUNDABLE");
    assert!(app.gateway_refunds().is_empty());
}

async fn exclusive_tax_is_accepted_and_recorded(app: TestApp) {
    let (_, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.checkout(&buyer, &course).await;
    app.pay_on_page(&checkout, None, usd_bill(PRICE, 0, 400, 2400))
        .await;
    assert!(app.is_unlocked(&buyer, &course).await);
    let item = app.history_item(&buyer, &checkout).await;
    assert_eq!(item["bill"], bill_json("USD", 2000, 0, 400, 2400));
    assert_eq!(item["paidCents"], 2400);
}

async fn a_refund_never_exceeds_what_was_paid(app: TestApp) {
    let (instructor, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.checkout(&buyer, &course).await;
    app.pay_on_page(&checkout, Some("SPRING25"), usd_bill(PRICE, 500, 0, 1500))
        .await;
    // 20.00 is the price, 15.00 was paid.
    app.refund_as(&instructor, &checkout, json!({"amountCents": 1501}))
        .await
        .assert_error(422, "VALIDATION_ERROR");
    let part = app
        .refund_as(&instructor, &checkout, json!({"amountCents": 1000}))
        .await;
    assert_eq!(part.status, 202, "{}", part.text);
    app.refund_as(&instructor, &checkout, json!({"amountCents": 501}))
        .await
        .assert_error(422, "VALIDATION_ERROR");
    let rest = app.refund_as(&instructor, &checkout, json!({})).await;
    assert_eq!(rest.status, 202, "{}", rest.text);
    assert_eq!(rest.json["data"]["purchase"]["refundedCents"], 1500);
    app.refund_as(&instructor, &checkout, json!({"amountCents": 1}))
        .await
        .assert_error(409, "NOT_REFUNDABLE");
    assert_eq!(app.gateway_refunds().iter().sum::<i64>(), 1500);
}

async fn inside_the_window_the_buyer_refunds_and_it_is_audited(app: TestApp) {
    let (_, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.buy(&buyer, &course).await;
    let item = app.history_item(&buyer, &checkout).await;
    let paid_at = OffsetDateTime::parse(item["purchasedAt"].as_str().unwrap(), &Rfc3339).unwrap();
    let until = OffsetDateTime::parse(item["selfRefundUntil"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(until, paid_at + Duration::days(14));

    app.clock.advance(Duration::days(13));
    let resp = app
        .request_refund(
            &buyer,
            &checkout.purchase_id,
            json!({"reason": "not what I expected"}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.json["message"], "Refund requested.");
    assert_eq!(resp.json["data"]["purchase"]["status"], "refunded");
    assert_eq!(resp.json["data"]["purchase"]["refundedCents"], PRICE);
    assert_eq!(app.gateway_refunds(), vec![PRICE]);
    assert!(!app.is_unlocked(&buyer, &course).await);
    let item = app.history_item(&buyer, &checkout).await;
    assert!(item["selfRefundUntil"].is_null(), "nothing left to refund");

    let admin = app.commerce_admin().await;
    let audit = app
        .get("/api/v1/admin/audit?limit=100", Some(&admin.token))
        .await;
    let entry = audit.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["purchaseId"] == checkout.purchase_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("audited: {}", audit.text));
    assert_eq!(
        (
            &entry["action"],
            &entry["actor"],
            &entry["amount"],
            &entry["reason"]
        ),
        (
            &json!("refund"),
            &json!({"kind": "user", "userId": buyer.id}),
            &json!({"cents": PRICE, "currency": "USD"}),
            &json!("not what I expected")
        )
    );
    // Asked again: nothing left.
    app.request_refund(&buyer, &checkout.purchase_id, Value::Null)
        .await
        .assert_error(409, "NOT_REFUNDABLE");
}

async fn outside_the_window_it_is_refused_naming_the_window(app: TestApp) {
    let (_, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.buy(&buyer, &course).await;
    app.clock.advance(Duration::days(14) + Duration::minutes(1));
    let item = app.history_item(&buyer, &checkout).await;
    assert!(item["selfRefundUntil"].is_null(), "{item}");
    let resp = app
        .request_refund(&buyer, &checkout.purchase_id, json!({}))
        .await;
    resp.assert_error(409, "REFUND_WINDOW_CLOSED");
    assert_eq!(
        resp.json["message"],
        "This purchase can no longer be refunded: refunds can be requested within 14 days of payment."
    );
    assert!(app.gateway_refunds().is_empty());
    assert!(app.is_unlocked(&buyer, &course).await);
}

async fn with_the_window_off_buyers_cannot_ask(app: TestApp) {
    let (_, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.buy(&buyer, &course).await;
    assert!(app.history_item(&buyer, &checkout).await["selfRefundUntil"].is_null());
    app.request_refund(&buyer, &checkout.purchase_id, json!({}))
        .await
        .assert_error(409, "SELF_REFUND_UNAVAILABLE");
    assert!(app.gateway_refunds().is_empty());
}

async fn someone_elses_purchase_is_not_found_and_bad_requests_move_nothing(app: TestApp) {
    let (instructor, course, buyer) = app.commerce_shop(PRICE).await;
    let checkout = app.buy(&buyer, &course).await;
    let stranger = app.user("student").await;
    let path = format!(
        "/api/v1/payments/purchases/{}/refund-request",
        checkout.purchase_id
    );
    for user in [&stranger, &instructor] {
        app.request_refund(user, &checkout.purchase_id, json!({}))
            .await
            .assert_error(404, "PURCHASE_NOT_FOUND");
    }
    app.request_refund(&buyer, &Uuid::new_v4().to_string(), json!({}))
        .await
        .assert_error(404, "PURCHASE_NOT_FOUND");
    app.request_refund(&buyer, "not-a-uuid", json!({}))
        .await
        .assert_error(404, "PURCHASE_NOT_FOUND");
    app.post(&path, None, &json!({}))
        .await
        .assert_error(401, "UNAUTHORIZED");
    app.request_refund(&buyer, &checkout.purchase_id, json!({"reason": 5}))
        .await
        .assert_error(422, "VALIDATION_ERROR");
    app.request_refund(
        &buyer,
        &checkout.purchase_id,
        json!({"reason": "x".repeat(501)}),
    )
    .await
    .assert_error(422, "VALIDATION_ERROR");
    let raw = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url(&path))
            .bearer_auth(&buyer.token)
            .header("content-type", content_type)
            .body(body)
    };
    app.send(raw("application/json", "{"))
        .await
        .assert_error(400, "INVALID_JSON");
    app.send(raw("text/plain", "please"))
        .await
        .assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(app.gateway_refunds().is_empty());
    // No body at all is a request without a reason.
    let resp = app
        .send(app.client.post(app.url(&path)).bearer_auth(&buyer.token))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(app.gateway_refunds(), vec![PRICE]);
}

async fn one_customer_per_buyer_is_sent_with_every_checkout(app: TestApp) {
    let instructor = app.user("instructor").await;
    let first_course = app.published_course(&instructor, PRICE).await;
    let second_course = app.published_course(&instructor, 3000).await;
    let buyer = app.user("student").await;
    let first = app.checkout(&buyer, &first_course).await;
    let second = app.checkout(&buyer, &second_course).await;
    let customers = app.gateway_customers();
    assert_eq!(customers.len(), 1, "one customer at the gateway");
    assert_eq!(app.checkout_customer(&first), Some(customers[0].clone()));
    assert_eq!(app.checkout_customer(&second), Some(customers[0].clone()));
    // Another buyer has their own.
    let other = app.user("student").await;
    let theirs = app.checkout(&other, &first_course).await;
    let customers = app.gateway_customers();
    assert_eq!(customers.len(), 2);
    assert_eq!(app.checkout_customer(&theirs), Some(customers[1].clone()));
}

// ---- revenue -----------------------------------------------------------------------------

const REVENUE: &str = "/api/v1/instructor/revenue";

fn day(at: OffsetDateTime) -> String {
    at.date().to_string()
}

fn instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

#[expect(clippy::too_many_arguments, reason = "one row of a hand-written table")]
fn line(
    course: &str,
    title: &str,
    instructor: &TestUser,
    purchases: u64,
    gross: i64,
    discount: i64,
    tax: i64,
    paid: i64,
    refunds: i64,
    net: i64,
) -> Value {
    json!({"courseId": course, "courseTitle": title, "instructorId": instructor.id,
           "currency": "USD", "purchases": purchases, "grossCents": gross,
           "discountCents": discount, "taxCents": tax, "paidCents": paid,
           "refundCents": refunds, "disputesLostCents": 0, "netCents": net})
}

/// The totals of `lines`' figures, in the wire's names (every line is in dollars).
fn totals(lines: &[Value]) -> Value {
    let sum = |key: &str| lines.iter().map(|l| l[key].as_i64().unwrap()).sum::<i64>();
    json!([{"currency": "USD", "purchases": sum("purchases"), "grossCents": sum("grossCents"),
            "discountCents": sum("discountCents"), "taxCents": sum("taxCents"),
            "paidCents": sum("paidCents"), "refundCents": sum("refundCents"),
            "disputesLostCents": 0, "netCents": sum("netCents")}])
}

fn csv_record(line: &Value) -> String {
    let title = line["courseTitle"].as_str().unwrap();
    let quoted = if title.contains([',', '"']) {
        format!("\"{}\"", title.replace('"', "\"\""))
    } else {
        title.to_owned()
    };
    format!(
        "{},{quoted},{},USD,{},{},{},{},{},{},0,{}\r\n",
        line["courseId"].as_str().unwrap(),
        line["instructorId"].as_str().unwrap(),
        line["purchases"],
        line["grossCents"],
        line["discountCents"],
        line["taxCents"],
        line["paidCents"],
        line["refundCents"],
        line["netCents"],
    )
}

const CSV_HEADER: &str = "course_id,course_title,instructor_id,currency,purchases,gross,discounts,tax,paid,refunds,disputes_lost,net\r\n";

async fn the_revenue_report_as_json_and_csv_against_hand_computed_figures(app: TestApp) {
    let alpha_teacher = app.user("instructor").await;
    let beta_teacher = app.user("instructor").await;
    let alpha = app.published_course(&alpha_teacher, PRICE).await;
    let title = "Rust, \"advanced\"";
    let renamed = app
        .patch(
            &format!("/api/v1/courses/{alpha}"),
            Some(&alpha_teacher.token),
            &json!({"title": title}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let beta = app.published_course(&beta_teacher, 3000).await;
    let renamed = app
        .patch(
            &format!("/api/v1/courses/{beta}"),
            Some(&beta_teacher.token),
            &json!({"title": "Zig basics"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);

    // Day 0: Alpha sold at its price.
    let day0 = lms_ports::Clock::now(&app.clock);
    app.buy(&app.user("student").await, &alpha).await;
    // Two days later: Alpha discounted (then 5.00 refunded) and taxed, Beta at its price,
    // and one Alpha payment billed another price, which is held and earns nothing.
    app.advance_both(Duration::days(2));
    let discounted = app.checkout(&app.user("student").await, &alpha).await;
    app.paid_as_billed(&discounted, usd_bill(2000, 500, 0, 1500))
        .await;
    let refund = app
        .refund_as(&alpha_teacher, &discounted, json!({"amountCents": 500}))
        .await;
    assert_eq!(refund.status, 202, "{}", refund.text);
    let taxed = app.checkout(&app.user("student").await, &alpha).await;
    app.paid_as_billed(&taxed, usd_bill(2000, 0, 400, 2400))
        .await;
    app.buy(&app.user("student").await, &beta).await;
    let held = app.checkout(&app.user("student").await, &alpha).await;
    app.paid_as_billed(&held, usd_bill(1000, 0, 0, 1000)).await;
    // An unpaid checkout earns nothing either.
    app.checkout(&app.user("student").await, &beta).await;

    // By hand. Alpha: 2000 + 1500 + 2400 paid; kept 2000 + 1000 + 2400, less 400 of tax.
    let alpha_all = line(
        &alpha,
        title,
        &alpha_teacher,
        3,
        6000,
        500,
        400,
        5900,
        500,
        5000,
    );
    let beta_all = line(
        &beta,
        "Zig basics",
        &beta_teacher,
        1,
        3000,
        0,
        0,
        3000,
        0,
        3000,
    );

    // The instructor: their own course, JSON.
    let resp = app.get(REVENUE, Some(&alpha_teacher.token)).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(
        resp.json,
        json!({"success": true, "data": {"from": null, "to": null,
               "lines": [alpha_all.clone()], "totals": totals(std::slice::from_ref(&alpha_all))}})
    );
    // The same as CSV, by `format` and by `Accept`.
    let expected_csv = format!("{CSV_HEADER}{}", csv_record(&alpha_all));
    for request in [
        app.client
            .get(app.url(&format!("{REVENUE}?format=csv")))
            .bearer_auth(&alpha_teacher.token),
        app.client
            .get(app.url(REVENUE))
            .bearer_auth(&alpha_teacher.token)
            .header("accept", "text/csv"),
    ] {
        let csv = app.send(request).await;
        assert_eq!(csv.status, 200, "{}", csv.text);
        assert_eq!(
            csv.headers.get("content-type").unwrap(),
            "text/csv; charset=utf-8"
        );
        assert_eq!(
            csv.headers.get("content-disposition").unwrap(),
            "attachment; filename=\"revenue.csv\""
        );
        assert_eq!(csv.text, expected_csv);
    }
    // `format=json` wins over `Accept`.
    let json_anyway = app
        .send(
            app.client
                .get(app.url(&format!("{REVENUE}?format=json")))
                .bearer_auth(&alpha_teacher.token)
                .header("accept", "text/csv"),
        )
        .await;
    assert_eq!(
        json_anyway.json["data"]["lines"],
        json!([alpha_all.clone()])
    );

    // A range by dates: from the day after day 0 on, only the later sales.
    let later = line(
        &alpha,
        title,
        &alpha_teacher,
        2,
        4000,
        500,
        400,
        3900,
        500,
        3000,
    );
    let resp = app
        .get(
            &format!("{REVENUE}?from={}", day(day0 + Duration::days(1))),
            Some(&alpha_teacher.token),
        )
        .await;
    assert_eq!(resp.json["data"]["lines"], json!([later]), "{}", resp.text);
    assert_eq!(
        resp.json["data"]["from"],
        instant((day0 + Duration::days(1)).date().midnight().assume_utc())
    );
    // `to` as a date includes that day; as an instant it is excluded.
    let first_day = line(&alpha, title, &alpha_teacher, 1, 2000, 0, 0, 2000, 0, 2000);
    let resp = app
        .get(
            &format!("{REVENUE}?to={}", day(day0)),
            Some(&alpha_teacher.token),
        )
        .await;
    assert_eq!(resp.json["data"]["lines"], json!([first_day.clone()]));
    let resp = app
        .get(
            &format!(
                "{REVENUE}?from={}&to={}",
                instant(day0 - Duration::hours(1)),
                instant(day0 + Duration::hours(1))
            ),
            Some(&alpha_teacher.token),
        )
        .await;
    assert_eq!(
        resp.json["data"]["lines"],
        json!([first_day]),
        "{}",
        resp.text
    );

    // The admin: every course (by title), or one instructor's.
    let admin = app.commerce_admin().await;
    let resp = app.get(REVENUE, Some(&admin.token)).await;
    let both = [alpha_all.clone(), beta_all.clone()];
    assert_eq!(resp.json["data"]["lines"], json!(both));
    assert_eq!(resp.json["data"]["totals"], totals(&both));
    assert_eq!(resp.json["data"]["totals"][0]["netCents"], 8000);
    let resp = app
        .get(
            &format!("{REVENUE}?instructorId={}", beta_teacher.id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(resp.json["data"]["lines"], json!([beta_all]));

    // Who may not, and what is not a report.
    app.get(
        &format!("{REVENUE}?instructorId={}", beta_teacher.id),
        Some(&alpha_teacher.token),
    )
    .await
    .assert_error(403, "FORBIDDEN");
    let student = app.user("student").await;
    app.get(REVENUE, Some(&student.token))
        .await
        .assert_error(403, "FORBIDDEN");
    app.get(REVENUE, None)
        .await
        .assert_error(401, "UNAUTHORIZED");
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-03-02&to=2026-03-01", "from"),
        ("from=2026-03-02T00:00:01Z&to=2026-03-02T00:00:00Z", "from"),
        ("format=xml", "format"),
        ("instructorId=42", "instructorId"),
    ] {
        let resp = app
            .get(&format!("{REVENUE}?{query}"), Some(&admin.token))
            .await;
        resp.assert_error(422, "VALIDATION_ERROR");
        assert_eq!(resp.json["errors"][0]["field"], field, "{query}");
        assert_eq!(resp.json["errors"].as_array().unwrap().len(), 1, "{query}");
    }
}

crate::per_wiring_commerce!(
    a_payment_presented_in_another_currency_unlocks_and_refunds_in_that_currency => presented,
    two_concurrent_partial_refunds_exceeding_the_payment_leave_one_refused => plain,
    a_discounted_payment_unlocks_with_its_code_and_receipt => promotions,
    a_payment_billed_for_another_price_is_held_for_review => plain,
    a_hundred_percent_off_code_completes_without_a_charge => promotions,
    exclusive_tax_is_accepted_and_recorded => taxed,
    a_refund_never_exceeds_what_was_paid => promotions,
    inside_the_window_the_buyer_refunds_and_it_is_audited => window,
    outside_the_window_it_is_refused_naming_the_window => window,
    with_the_window_off_buyers_cannot_ask => plain,
    someone_elses_purchase_is_not_found_and_bad_requests_move_nothing => window,
    one_customer_per_buyer_is_sent_with_every_checkout => plain,
    the_revenue_report_as_json_and_csv_against_hand_computed_figures => plain,
);
