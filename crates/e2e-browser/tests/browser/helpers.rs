//! The app under test and the storefront steps the scenarios share.

use anyhow::Context;
use lms_app::demo::{FREE_COURSE_TITLE, PAID_COURSE_TITLE};
use lms_app::{Application, Settings};
use lms_domain::Role;
use lms_e2e_browser::fantoccini::Locator;
use lms_e2e_browser::Browser;
use lms_stripe_sandbox::Sandbox;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";
pub const GOOD_CARD: &str = "4242 4242 4242 4242";
pub const DECLINED_CARD: &str = "4000 0000 0000 0002";

/// The app as `cargo run` starts it offline: SQLite file in a temp dir, in-process Stripe
/// sandbox delivering signed webhooks to the app, demo courses seeded. Ports are ephemeral.
pub struct TestApp {
    /// `http://localhost:PORT`: the origin the sandbox sends the browser back to.
    pub base: String,
    /// The sandbox's address (its hosted checkout pages live under it).
    pub sandbox: String,
    /// The running sandbox, for chaos switches.
    pub stripe: Arc<Sandbox>,
    /// What the app was configured with, for the operator's commands (`lms-app admin grant`).
    settings: Settings,
    server: actix_web::dev::ServerHandle,
    serving: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The app with the test settings plus `extra` (`STRIPE_ALLOW_PROMOTION_CODES`, ...), as
    /// the environment would give them.
    pub async fn spawn_with(extra: &[(&str, &str)]) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("lms.db").display());
        let base = [
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("SANDBOX_PORT", "0"),
            ("DATABASE_URL", database.as_str()),
            ("HTTP_WORKERS", "2"),
            ("SHUTDOWN_TIMEOUT_SECS", "1"),
        ];
        let settings = Settings::from_pairs(base.into_iter().chain(extra.iter().copied()))
            .expect("test settings");
        assert!(settings.mode.is_demo(), "no Stripe key: demo mode");
        let app = Application::build(settings.clone())
            .await
            .expect("the app starts");
        let base = app.base_url();
        let stripe = app
            .sandbox_handle()
            .expect("sandbox mode starts the sandbox");
        let sandbox = stripe.base_url().to_owned();
        let server = app.server_handle();
        let serving = tokio::spawn(app.run_until_stopped());
        Self {
            base,
            sandbox,
            stripe,
            settings,
            server,
            serving,
            _dir: dir,
        }
    }

    /// Makes the user with `email` an admin, as the operator does (`lms-app admin grant`):
    /// through the command's own code, over the app's database.
    pub async fn grant_admin(&self, email: &str) -> anyhow::Result<()> {
        use lms_app::commands::{self, Provider};
        let services = commands::open(&self.settings, Provider::Unused).await?;
        let mut out = Vec::new();
        commands::set_admin(&services, email, true, Role::Student, &mut out).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.serving.await;
        // `run_until_stopped` stops the sandbox only when it holds the last handle.
        if let Ok(sandbox) = Arc::try_unwrap(self.stripe) {
            sandbox.stop().await;
        }
    }
}

/// Runs a scenario against a fresh app and browser, then closes both whatever happened, and
/// fails the test with the scenario's error (which includes what the page showed).
pub async fn with_app_and_browser<F>(scenario: F)
where
    F: AsyncFnOnce(&TestApp, &Browser) -> anyhow::Result<()>,
{
    with_configured_app_and_browser(&[], scenario).await;
}

/// As [`with_app_and_browser`], the app started with further settings.
pub async fn with_configured_app_and_browser<F>(settings: &[(&str, &str)], scenario: F)
where
    F: AsyncFnOnce(&TestApp, &Browser) -> anyhow::Result<()>,
{
    let app = TestApp::spawn_with(settings).await;
    let browser = Browser::launch()
        .await
        .expect("a headless Chromium (run scripts/ensure-chromium.sh)");
    let outcome = match scenario(&app, &browser).await {
        Ok(()) => no_script_errors(&browser, &app).await,
        failed => failed,
    };
    let closed = browser.close().await;
    app.stop().await;
    outcome.unwrap();
    closed.unwrap();
}

/// The console holds no uncaught script error, no CSP refusal and no failed load of a page or
/// asset. The API's 4xx answers that scenarios provoke (a wrong password, a duplicate email)
/// and the hosted page's 402 for a declined card are expected and left out, as is the
/// sandbox's missing favicon (not ours to serve).
async fn no_script_errors(browser: &Browser, app: &TestApp) -> anyhow::Result<()> {
    let sandbox_favicon = format!("{}/favicon.ico ", app.sandbox);
    let errors: Vec<String> = browser
        .console_errors()
        .await?
        .into_iter()
        .filter(|line| {
            let expected_refusal = line.contains("Failed to load resource")
                && (line.contains("/api/v1/")
                    || line.contains("status of 402")
                    || line.contains(&sandbox_favicon));
            !expected_refusal
        })
        .collect();
    anyhow::ensure!(errors.is_empty(), "browser console errors: {errors:#?}");
    Ok(())
}

/// A unique address per call.
pub fn unique_email(who: &str) -> String {
    format!("{who}-{}@e2e.test", uuid::Uuid::new_v4().simple())
}

/// Opens the storefront home page and waits until its script has loaded the courses.
pub async fn open_store(browser: &Browser, app: &TestApp) -> anyhow::Result<()> {
    browser.goto(&app.url("/")).await?;
    browser.wait_for("body[data-ready='true']").await?;
    Ok(())
}

pub async fn sign_up(browser: &Browser, name: &str, email: &str) -> anyhow::Result<()> {
    browser.fill("#signup-name", name).await?;
    browser.fill("#signup-email", email).await?;
    browser.fill("#signup-password", PASSWORD).await?;
    browser.click("#signup-submit").await?;
    browser.wait_for_text("#whoami", email).await?;
    Ok(())
}

pub async fn sign_in(browser: &Browser, email: &str) -> anyhow::Result<()> {
    sign_in_with(browser, email, PASSWORD).await
}

pub async fn sign_in_with(browser: &Browser, email: &str, password: &str) -> anyhow::Result<()> {
    browser.fill("#signin-email", email).await?;
    browser.fill("#signin-password", password).await?;
    browser.click("#signin-submit").await?;
    browser.wait_for_text("#whoami", email).await?;
    Ok(())
}

/// The id and displayed price of the listed course with this title.
pub async fn listed_course(browser: &Browser, title: &str) -> anyhow::Result<(String, String)> {
    let xpath = format!("//ul[@id='courses']/li[h3[normalize-space(.)='{title}']]");
    let item = browser
        .eventually(
            &format!("the course \"{title}\" in #courses"),
            lms_e2e_browser::DEFAULT_WAIT,
            || async {
                Ok(browser
                    .client()
                    .find_all(Locator::XPath(&xpath))
                    .await?
                    .into_iter()
                    .next())
            },
        )
        .await?;
    let id = item
        .attr("data-course-id")
        .await?
        .context("a listed course carries data-course-id")?;
    let price = item.find(Locator::Css(".price")).await?.text().await?;
    Ok((id, price))
}

pub async fn paid_course(browser: &Browser) -> anyhow::Result<(String, String)> {
    listed_course(browser, PAID_COURSE_TITLE).await
}

pub async fn free_course(browser: &Browser) -> anyhow::Result<(String, String)> {
    listed_course(browser, FREE_COURSE_TITLE).await
}

/// Clicks Buy and waits for the sandbox's hosted checkout page.
pub async fn buy_and_reach_checkout(
    browser: &Browser,
    app: &TestApp,
    course_id: &str,
) -> anyhow::Result<String> {
    browser
        .click(&format!("button[data-buy='{course_id}']"))
        .await?;
    let url = browser.wait_for_url(&app.sandbox).await?;
    browser.wait_for("#card_number").await?;
    Ok(url)
}

/// Types a card number on the hosted page and submits it.
pub async fn pay_with(browser: &Browser, card: &str) -> anyhow::Result<()> {
    browser.fill("#card_number", card).await?;
    browser.click("#pay").await
}

/// Waits for the success page to say the purchase is completed (the page itself polls a
/// bounded number of times while the status is pending).
pub async fn wait_for_completed(browser: &Browser, app: &TestApp) -> anyhow::Result<String> {
    let url = browser
        .wait_for_url(&app.url("/payment/success?session_id="))
        .await?;
    browser
        .wait_for("#purchase-status[data-status='completed']")
        .await?;
    Ok(url)
}
