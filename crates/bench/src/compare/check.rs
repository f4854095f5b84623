//! The check that the baselines still run the SQL the app runs: the app is built in this
//! process (`Application::build`, from the same settings as the measured process, on the same
//! database), with diesel's instrumentation recording every statement its connections start
//! ([`super::capture`]); after one warm-up of each workload (connections made, statements
//! prepared), one more request of each is recorded and compared, statement by statement, with
//! the sequence the baseline runs ([`super::sql`]).
//!
//! The SQL comes from the storage adapter compiled into this binary, from the same sources as
//! the measured `lms-app` when both are built from one tree (`cargo build --release -p lms-app
//! -p lms-bench`).

use super::capture::{Capture, Captured};
use super::setup::{self, Paid};
use super::sql::{Backend, Statements};
use crate::Api;
use anyhow::{anyhow, ensure};
use lms_app::{Application, Settings, WEBHOOK_PATH};
use lms_stripe_sandbox::Sandbox;
use reqwest::StatusCode;

/// What one request of each workload ran, in order.
#[derive(Debug, Clone)]
pub struct Observed {
    pub first_delivery: Vec<Captured>,
    pub duplicate: Vec<Captured>,
    pub status_read: Vec<Captured>,
}

/// POSTs one event, freshly signed; expects 200.
///
/// # Errors
/// Transport errors or another status.
pub async fn deliver(api: &Api, sandbox: &Sandbox, paid: &Paid) -> anyhow::Result<()> {
    let (body, signature) = sandbox.signed(&paid.event);
    let response = api
        .client
        .post(api.url(WEBHOOK_PATH))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    ensure!(status == StatusCode::OK, "webhook: {status} {text}");
    Ok(())
}

/// Runs the app in this process on `database_url` and records what each workload runs.
///
/// # Errors
/// When the app cannot be built or a request fails.
pub async fn observe(database_url: &str, sandbox: &Sandbox) -> anyhow::Result<Observed> {
    let capture = Capture::install()?;
    let mut pairs = setup::app_settings(
        database_url,
        0,
        sandbox.base_url(),
        &setup::jwt_secret(),
        None,
    );
    // The warm-up below must open the connections the recorded requests take, or their
    // statements include a connection's set-up: one HTTP worker (a pool each), and on
    // PostgreSQL one group commit lane (a connection each, chosen by purchase). Each worker and
    // lane runs the same statements.
    pairs.push(("HTTP_WORKERS".to_owned(), "1".to_owned()));
    if database_url.starts_with("postgres") {
        pairs.push(("DATABASE_GROUP_COMMIT".to_owned(), "1".to_owned()));
    }
    let settings = Settings::from_pairs(pairs)?;
    let app = Application::build(settings).await?;
    let api = Api::new(app.base_url())?;
    let stop = app.server_handle();
    let serving = tokio::spawn(app.run_until_stopped());
    let observed = async {
        let paid = setup::paid_purchases(&api, sandbox, 2).await?;
        let [warm_up, recorded] = paid.as_slice() else {
            return Err(anyhow!("expected two purchases"));
        };
        // Connections made, statements prepared, background start-up work done.
        deliver(&api, sandbox, warm_up).await?;
        deliver(&api, sandbox, warm_up).await?;
        ensure!(api.purchase_status(&warm_up.buyer).await? == "completed");
        let (first, first_delivery) = capture.record(deliver(&api, sandbox, recorded)).await;
        first?;
        let (duplicate, duplicate_sql) = capture.record(deliver(&api, sandbox, recorded)).await;
        duplicate?;
        let (read, status_read) = capture.record(api.purchase_status(&recorded.buyer)).await;
        ensure!(
            read? == "completed",
            "the recorded purchase is not completed"
        );
        Ok(Observed {
            first_delivery,
            duplicate: duplicate_sql,
            status_read,
        })
    }
    .await;
    stop.stop(true).await;
    let _ = serving.await;
    drop(capture);
    observed
}

/// How the observed statements differ from the baseline's, workload by workload (empty: no
/// difference).
pub fn differences(observed: &Observed, backend: Backend) -> Vec<String> {
    let expected = Statements::of(backend);
    let mut problems = Vec::new();
    for (workload, seen, wanted) in [
        (
            "first delivery",
            &observed.first_delivery,
            expected.first_delivery,
        ),
        ("duplicate", &observed.duplicate, expected.duplicate),
        (
            "purchase-status read",
            &observed.status_read,
            expected.status_read,
        ),
    ] {
        let seen: Vec<&str> = seen.iter().map(|c| c.sql.as_str()).collect();
        let wanted: Vec<String> = wanted.iter().map(|s| s.text(backend).to_owned()).collect();
        if seen != wanted {
            let mut text = format!(
                "{workload}: the app ran {} statements, the baseline runs {}",
                seen.len(),
                wanted.len()
            );
            for i in 0..seen.len().max(wanted.len()) {
                let (s, w) = (seen.get(i).copied(), wanted.get(i).map(String::as_str));
                if s != w {
                    text.push_str(&format!(
                        "\n  #{}: app:      {}\n  #{}: baseline: {}",
                        i + 1,
                        s.unwrap_or("(none)"),
                        i + 1,
                        w.unwrap_or("(none)")
                    ));
                }
            }
            problems.push(text);
        }
    }
    problems
}

/// The observed statements, one a line, with diesel's rendering of their binds (shortened).
pub fn listing(observed: &Observed) -> String {
    let mut out = String::new();
    for (workload, statements) in [
        ("first delivery", &observed.first_delivery),
        ("duplicate", &observed.duplicate),
        ("purchase-status read", &observed.status_read),
    ] {
        out.push_str(&format!("-- {workload}: {} statements\n", statements.len()));
        for statement in statements {
            let binds: String = statement.binds.chars().take(160).collect();
            out.push_str(&format!("{}\n", statement.sql));
            if !binds.is_empty() {
                out.push_str(&format!("   -- binds: {binds}\n"));
            }
        }
    }
    out
}
