//! The storefront's own flows: accounts, errors, free enrolment, "My courses".

use crate::helpers::*;
use lms_app::demo::FREE_COURSE_TITLE;
use lms_e2e_browser::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_free_course_enrols_at_once_and_stays_listed_across_sign_out_and_sign_in() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        open_store(browser, app).await?;
        let (free, price) = free_course(browser).await?;
        assert_eq!(price, "Free");

        // Signed out, Buy explains instead of calling the API.
        browser.click(&format!("button[data-buy='{free}']")).await?;
        browser.wait_for_text("#error", "Sign in").await?;

        let email = unique_email("dee");
        sign_up(browser, "Dee Student", &email).await?;
        browser.wait_for("#my-courses-empty").await?;
        browser.click(&format!("button[data-buy='{free}']")).await?;
        browser
            .wait_for_text(
                "#message",
                &format!("You are enrolled in {FREE_COURSE_TITLE}"),
            )
            .await?;
        let url = browser.url().await?;
        assert_eq!(url, app.url("/"), "no detour through a checkout page");
        let mine = browser
            .wait_for(&format!("#my-courses li[data-course-id='{free}']"))
            .await?;
        let paid_line = mine
            .find(lms_e2e_browser::fantoccini::Locator::Css(".paid"))
            .await?
            .text()
            .await?;
        assert!(paid_line.starts_with("Free enrolment"), "{paid_line}");
        browser
            .wait_for(&format!("#courses [data-owned='{free}']"))
            .await?;

        browser.click("#signout").await?;
        browser.wait_for("#signup-form").await?;
        browser.wait_for_text("#whoami", "Not signed in").await?;
        let leftover = browser
            .client()
            .find_all(lms_e2e_browser::fantoccini::Locator::Css("#my-courses li"))
            .await?;
        assert!(leftover.is_empty(), "signing out forgets the list");

        // The same email cannot sign up twice: the API's message is shown.
        sign_up_expecting_error(browser, &email).await?;

        sign_in(browser, &email).await?;
        browser
            .wait_for(&format!("#my-courses li[data-course-id='{free}']"))
            .await?;
        Ok(())
    })
    .await;
}

async fn sign_up_expecting_error(browser: &Browser, email: &str) -> anyhow::Result<()> {
    browser.fill("#signup-name", "Dee Again").await?;
    browser.fill("#signup-email", email).await?;
    browser.fill("#signup-password", PASSWORD).await?;
    browser.click("#signup-submit").await?;
    browser
        .wait_for_text("#error", "An account with this email already exists.")
        .await?;
    let code = browser.wait_for("#error").await?.attr("data-code").await?;
    assert_eq!(code.as_deref(), Some("EMAIL_TAKEN"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_shows_the_api_error_and_keeps_the_visitor_signed_out() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        open_store(browser, app).await?;
        browser.fill("#signin-email", "nobody@e2e.test").await?;
        browser.fill("#signin-password", "wrong-password").await?;
        browser.click("#signin-submit").await?;
        browser
            .wait_for_text("#error", "Invalid email or password.")
            .await?;
        browser.wait_for_text("#whoami", "Not signed in").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prices_are_formatted_from_minor_units_with_string_arithmetic() {
    with_app_and_browser(async |app: &TestApp, browser: &Browser| {
        open_store(browser, app).await?;
        let cases = [
            (1999_i64, "USD", "19.99 USD"),
            (5, "usd", "0.05 USD"),
            (0, "EUR", "0.00 EUR"),
            (10, "GBP", "0.10 GBP"),
            (123_456_789, "EUR", "1,234,567.89 EUR"),
            (-250, "USD", "-2.50 USD"),
            (100_000, "JPY", "100,000 JPY"),
            (1499, "jpy", "1,499 JPY"),
            // Three-decimal currencies appear only as a customer's presentment currency.
            (12_345, "KWD", "12.345 KWD"),
            (7, "BHD", "0.007 BHD"),
            // 0.1 + 0.2 style float errors would show here.
            (30, "USD", "0.30 USD"),
            (9_007_199_254_740_991, "USD", "90,071,992,547,409.91 USD"),
        ];
        for (minor, currency, expected) in cases {
            let shown = browser
                .client()
                .execute(
                    "return window.lmsStorefront.formatMoney(arguments[0], arguments[1]);",
                    vec![serde_json::json!(minor), serde_json::json!(currency)],
                )
                .await?;
            assert_eq!(shown, serde_json::json!(expected), "{minor} {currency}");
        }
        Ok(())
    })
    .await;
}
