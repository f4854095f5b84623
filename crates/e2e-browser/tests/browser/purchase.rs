//! Paying for a course on the sandbox's hosted page, from the storefront and back.

use crate::helpers::*;
use lms_app::demo::{PAID_COURSE_PRICE_CENTS, PAID_COURSE_TITLE};
use lms_e2e_browser::{artifacts_dir, Browser};
use lms_stripe_sandbox::Chaos;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_buys_the_paid_course_with_a_test_card_and_sees_it_unlocked() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        open_store(browser, app).await?;
        let (paid, price) = paid_course(browser).await?;
        assert_eq!(PAID_COURSE_PRICE_CENTS, 1999, "the seed this test expects");
        assert_eq!(
            price, "19.99 USD",
            "1999 minor units shown without float error"
        );
        let (_free, free_price) = free_course(browser).await?;
        assert_eq!(free_price, "Free");

        sign_up(browser, "Ada Student", &unique_email("ada")).await?;
        let checkout = buy_and_reach_checkout(browser, app, &paid).await?;
        assert!(
            checkout.contains("cs_"),
            "a checkout session page: {checkout}"
        );
        let amount = browser.wait_for("#amount-due").await?.text().await?;
        assert_eq!(
            amount, "19.99 USD",
            "the hosted page charges the course price"
        );

        pay_with(browser, GOOD_CARD).await?;
        let success = wait_for_completed(browser, app).await?;
        assert!(success.contains("session_id=cs_"), "{success}");
        let status = browser.wait_for("#purchase-status").await?.text().await?;
        assert!(
            status.contains("completed") && status.contains("unlocked"),
            "{status}"
        );
        let detail = browser.wait_for("#payment-detail").await?.text().await?;
        assert!(detail.contains("Unlocked"), "{detail}");
        let course = browser.wait_for("#payment-course").await?.text().await?;
        assert_eq!(course, PAID_COURSE_TITLE);
        // Without a promotion code the bill is the price.
        browser
            .wait_for_text("#charged-amount", "19.99 USD")
            .await?;
        let breakdown = browser.wait_for("#charged-breakdown").await?.text().await?;
        assert_eq!(breakdown, "Price 19.99 USD.");
        // "My courses" lists the purchase, and the catalogue no longer offers to buy it.
        browser
            .wait_for(&format!("#my-courses li[data-course-id='{paid}']"))
            .await?;
        browser
            .wait_for(&format!("#courses [data-owned='{paid}']"))
            .await?;

        let path = artifacts_dir().join("success.png");
        let written = browser.screenshot_to(&path).await?;
        let on_disk = std::fs::metadata(&path)?.len();
        assert!(
            written > 1000,
            "a real screenshot, not an empty image: {written} bytes"
        );
        assert_eq!(on_disk, u64::try_from(written)?);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_shows_the_decline_then_a_good_card_completes_the_same_checkout() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        open_store(browser, app).await?;
        let (paid, _) = paid_course(browser).await?;
        sign_up(browser, "Bob Student", &unique_email("bob")).await?;
        let checkout = buy_and_reach_checkout(browser, app, &paid).await?;

        pay_with(browser, DECLINED_CARD).await?;
        browser.wait_for_text("#error", "declined").await?;
        let still = browser.url().await?;
        assert!(
            still.starts_with(&app.sandbox),
            "a decline stays on the hosted page: {still}"
        );
        assert_eq!(
            session_of(&still),
            session_of(&checkout),
            "the same checkout session"
        );

        pay_with(browser, GOOD_CARD).await?;
        let success = wait_for_completed(browser, app).await?;
        assert_eq!(
            success.split("session_id=").nth(1),
            Some(session_of(&checkout)),
            "the success page is for the session that was paid"
        );
        browser
            .wait_for(&format!("#my-courses li[data-course-id='{paid}']"))
            .await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_on_the_hosted_page_lands_on_the_cancel_page_and_buying_again_works() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        open_store(browser, app).await?;
        let (paid, _) = paid_course(browser).await?;
        sign_up(browser, "Cy Student", &unique_email("cy")).await?;
        let first = buy_and_reach_checkout(browser, app, &paid).await?;

        browser.click("#cancel").await?;
        browser.wait_for_url(&app.url("/payment/cancel")).await?;
        browser
            .wait_for("#purchase-status[data-status='cancelled']")
            .await?;
        browser
            .wait_for_text("#payment-detail", "not been charged")
            .await?;

        // Back to the store: the course is still for sale, and the open session is reused.
        browser.click("#back-to-store").await?;
        browser.wait_for("body[data-ready='true']").await?;
        let again = buy_and_reach_checkout(browser, app, &paid).await?;
        assert_eq!(
            session_of(&again),
            session_of(&first),
            "the open session is handed out again"
        );
        pay_with(browser, GOOD_CARD).await?;
        wait_for_completed(browser, app).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_debit_waits_as_pending_on_the_success_page_until_it_settles() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        // The sandbox settles a bank debit 2 s after checkout; holding every webhook back 4 s
        // more keeps our side pending long enough for the page to show it and poll on.
        app.stripe.set_chaos(Chaos {
            delivery_delay: Duration::from_secs(4),
            ..Chaos::default()
        });
        open_store(browser, app).await?;
        let (paid, _) = paid_course(browser).await?;
        sign_up(browser, "Eve Student", &unique_email("eve")).await?;
        buy_and_reach_checkout(browser, app, &paid).await?;
        browser.click("#bank-debit").await?;

        browser
            .wait_for_url(&app.url("/payment/success?session_id="))
            .await?;
        browser.wait_for_text("#purchase-status", "pending").await?;
        let status = browser
            .eventually(
                "the success page to reach completed",
                Duration::from_secs(30),
                || async {
                    let el = browser.wait_for("#purchase-status").await?;
                    Ok(
                        (el.attr("data-status").await?.as_deref() == Some("completed"))
                            .then_some(el),
                    )
                },
            )
            .await?;
        let history = status.attr("data-history").await?.unwrap_or_default();
        assert_eq!(
            history, "pending,completed",
            "the page polled through pending"
        );
        browser
            .wait_for(&format!("#my-courses li[data-course-id='{paid}']"))
            .await?;
        Ok(())
    })
    .await;
}

/// The `cs_...` id in a hosted page or success URL.
fn session_of(url: &str) -> &str {
    let start = url.find("cs_").unwrap_or(url.len());
    let rest = &url[start..];
    rest.split(['/', '?', '&', '#']).next().unwrap_or(rest)
}
