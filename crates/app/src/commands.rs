//! The operator's commands: `events list|replay|sync`, `reconcile`, `admin grant|revoke`.
//!
//! Each reads the same configuration as `serve`, opens the same storage (migrating it when
//! `RUN_MIGRATIONS`, and checking that it belongs to the configured payment mode) and, when it
//! needs one, the same Stripe client; no server and no sandbox are started. Each then runs one
//! use case as the operator ([`Operator::CommandLine`]). Results and the one-line summary go
//! to stdout; progress and logs go to stderr (a bar on a terminal, plain lines otherwise).
//! An `Err` is a failed run (exit status 1); a [`ConfigError`] inside it a configuration
//! mistake (78).

use crate::config::{ConfigError, Mode, Settings};
use crate::progress::Progress;
use crate::workers::{ReconcileRun, Reconciler};
use crate::Store;
use anyhow::{bail, Context};
use async_trait::async_trait;
use lms_domain::Role;
use lms_password_argon2::Argon2Hasher;
use lms_ports::{
    CheckoutRequest, CustomerRequest, EventFilter, EventPage, EventQuery, GatewayError,
    GatewaySession, InboxRecord, PageRequest, PaymentGateway, RefundOutcome, RefundRequest,
    SystemClock, WebhookEvent, WebhookRejection,
};
use lms_stripe_http::StripeGateway;
use lms_use_cases::{Operator, Resource, Services, Tally, UseCaseError, WebhookOutcome};
use std::io::Write;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// Whether a command talks to the payment provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Storage only (`events list`, `admin`): runs in either mode.
    Unused,
    /// `events sync`, `events replay`, `reconcile`: Stripe mode only. The demo's simulated
    /// Stripe lives inside the running server, so a command could only ask an empty one.
    Used {
        /// The command, for the refusal: `lms-app reconcile`.
        command: &'static str,
    },
}

/// The use cases over the configured storage and payment provider, for one command.
///
/// # Errors
/// A [`ConfigError`] (`APP_MODE`) for a command that needs Stripe in demo mode; a
/// [`crate::ModeMismatch`]; the storage unreachable or not migrated.
pub async fn open(settings: &Settings, provider: Provider) -> anyhow::Result<Services> {
    let gateway: Arc<dyn PaymentGateway> = match (&settings.mode, provider) {
        (Mode::Stripe(config), _) => Arc::new(
            StripeGateway::new(config.as_ref().clone()).context("building the Stripe client")?,
        ),
        (Mode::Demo(_), Provider::Used { command }) => {
            return Err(ConfigError::new(
                "APP_MODE",
                format!(
                    "`{command}` talks to Stripe, and in demo mode the simulated Stripe lives inside the running server (whose reconciler and admin API do this): run it with APP_MODE=stripe and the server's STRIPE_SECRET_KEY"
                ),
            )
            .into())
        }
        (Mode::Demo(_), Provider::Unused) => Arc::new(NoProvider),
    };
    let store = Store::open_checked(settings).await?;
    let hasher = Argon2Hasher::with_limits(settings.limits.password_hashing)
        .context("building the password hasher")?;
    Ok(store.services(
        gateway,
        Arc::new(hasher),
        Arc::new(SystemClock),
        settings.use_cases,
    ))
}

/// The error chain of a use case's failure, on one line.
fn chain(err: &UseCaseError) -> String {
    lms_ports::chain_text(err)
}

fn plural(count: u64, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// `lms-app events list`: every inbox event matching `filter`, most recently received first,
/// one line each, then how many.
///
/// # Errors
/// Storage errors; writing to `out`.
pub async fn list_events(
    services: &Services,
    filter: EventFilter,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut events: Vec<InboxRecord> = Vec::new();
    for page in 1.. {
        let found = services
            .list_events(
                Operator::CommandLine,
                filter,
                PageRequest::new(page, PageRequest::MAX_LIMIT),
            )
            .await
            .context("listing the inbox's events")?;
        let short = found.items.len() < PageRequest::MAX_LIMIT as usize;
        events.extend(found.items);
        if short || events.len() as u64 >= found.total {
            break;
        }
    }
    let rows: Vec<[String; 7]> = events
        .iter()
        .map(|event| {
            [
                event.event_id.clone(),
                event.event_type.clone(),
                event.outcome.to_string(),
                event.delivery_count.to_string(),
                rfc3339(event.last_received_at),
                event
                    .purchase_id
                    .map_or_else(|| "-".to_owned(), |id| id.to_string()),
                event.error.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let header = [
            "EVENT",
            "TYPE",
            "OUTCOME",
            "DELIVERIES",
            "LAST RECEIVED",
            "PURCHASE",
            "ERROR",
        ]
        .map(str::to_owned);
        let mut widths = header.clone().map(|title| title.len());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
                if column + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    let mut summary = plural(rows.len() as u64, "event");
    if let Some(outcome) = filter.outcome {
        summary.push_str(&format!(" {outcome}"));
    }
    if let Some(since) = filter.since {
        summary.push_str(&format!(" since {}", rfc3339(since)));
    }
    writeln!(out, "{summary}")?;
    Ok(())
}

fn describe(outcome: &WebhookOutcome) -> String {
    match outcome {
        WebhookOutcome::Applied {
            purchase_id,
            status,
        } => format!("applied (purchase {purchase_id} is {})", status.as_str()),
        WebhookOutcome::Held { purchase_id } => {
            format!("held (purchase {purchase_id} awaits review)")
        }
        WebhookOutcome::Duplicate => "unchanged (already applied or held)".to_owned(),
        WebhookOutcome::Failed { error } => format!("failed again: {error}"),
        other => other.label().to_owned(),
    }
}

/// A hint after a run in which events ended `failed`.
fn failed_hint(tally: &Tally) {
    let failed = tally.count("failed");
    if failed > 0 {
        eprintln!(
            "{} failed: `lms-app events list --outcome failed` shows why; replay them once the cause is fixed",
            plural(failed, "event")
        );
    }
}

/// `lms-app events replay <evt_id>...`: processes each stored event again, one line each,
/// then the summary.
///
/// # Errors
/// An event that could not be replayed (unknown, payload pruned, Stripe or storage down);
/// the others are replayed all the same.
pub async fn replay_events(
    services: &Services,
    event_ids: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut tally = Tally::events();
    let mut refused = Vec::new();
    for id in event_ids {
        match services.replay_event(Operator::CommandLine, id).await {
            Ok(outcome) => {
                writeln!(out, "{id}: {}", describe(&outcome))?;
                tally.add(outcome.label());
            }
            Err(UseCaseError::NotFound(Resource::Event)) => {
                refused.push(format!(
                    "{id}: no such event in the inbox (`lms-app events list` shows them; `lms-app events sync` fetches missed ones from Stripe)"
                ));
            }
            Err(err) => refused.push(format!("{id}: {}", chain(&err))),
        }
    }
    writeln!(out, "{tally}")?;
    failed_hint(&tally);
    match (refused.as_slice(), event_ids) {
        ([], _) => Ok(()),
        ([one], [_]) => bail!("cannot replay {one}"),
        (several, _) => {
            for line in several {
                eprintln!("cannot replay {line}");
            }
            bail!(
                "{} of {} could not be replayed",
                plural(several.len() as u64, "event"),
                event_ids.len()
            )
        }
    }
}

/// `lms-app events replay --failed`: replays every failed event, with progress, then the
/// summary.
///
/// # Errors
/// The first event that could not be replayed stops the run (running it again is safe).
pub async fn replay_failed(services: &Services, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut progress = Progress::start("failed events replayed");
    let result = services
        .replay_failed(Operator::CommandLine, &mut |step| {
            progress.update(step.seen, step.total);
        })
        .await;
    progress.finish();
    let tally = result.context("replaying the failed events")?;
    writeln!(out, "{tally}")?;
    failed_hint(&tally);
    Ok(())
}

/// `lms-app events sync --since T`: feeds every event Stripe has from `since` on that the
/// inbox lacks through the webhook path, with progress, then the summary.
///
/// # Errors
/// `since` in the future or beyond Stripe's 30 days; Stripe or storage failing (the events
/// processed so far stay processed; running it again is safe).
pub async fn sync_events(
    services: &Services,
    since: OffsetDateTime,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut progress = Progress::start("events read from Stripe");
    let result = services
        .sync_events(since, &mut |step| progress.update(step.seen, step.total))
        .await;
    progress.finish();
    let tally = result.with_context(|| format!("syncing events since {}", rfc3339(since)))?;
    writeln!(out, "{tally}")?;
    failed_hint(&tally);
    Ok(())
}

/// `lms-app reconcile`: one reconciliation pass over every due purchase, paced at
/// `RECONCILE_RATE`, one line per purchase (stderr), then the summary.
///
/// # Errors
/// A claim failing (storage), or any purchase that could not be reconciled (each is named);
/// the others are reconciled all the same.
pub async fn reconcile(
    services: &Services,
    run: ReconcileRun,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let reconciler = Reconciler::new(services, run);
    let progress = Progress::start("purchases reconciled");
    let mut seen = 0;
    let mut errors = 0_u64;
    let result = reconciler
        .run(&|| false, &mut |purchase_id, result| {
            seen += 1;
            let line = match result {
                Ok(reconciled) => format!("purchase {purchase_id}: {}", reconciled.label()),
                Err(err) => {
                    errors += 1;
                    format!("purchase {purchase_id}: error: {}", chain(err))
                }
            };
            progress.line(&line);
            progress.update_quietly(seen);
        })
        .await;
    progress.finish();
    let tally = result.context("claiming purchases to reconcile")?;
    writeln!(out, "{tally}")?;
    if errors > 0 {
        bail!(
            "{} could not be reconciled (see above); each is tried again once its lease of {} ends",
            plural(errors, "purchase"),
            humantime::format_duration(
                std::time::Duration::try_from(lms_use_cases::RECONCILE_LEASE).unwrap_or_default()
            )
        );
    }
    Ok(())
}

/// `lms-app admin grant|revoke`: makes the user with `email` an admin, or (`grant` false)
/// takes the role back, leaving them `otherwise`.
///
/// # Errors
/// No such user (they must sign up first), an invalid email, storage errors.
pub async fn set_admin(
    services: &Services,
    email: &str,
    grant: bool,
    otherwise: Role,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match services
        .set_admin(Operator::CommandLine, email, grant, otherwise)
        .await
    {
        Ok(user) => {
            writeln!(
                out,
                "{} (user {}) is now {}",
                user.email,
                user.id,
                user.role.name()
            )?;
            Ok(())
        }
        Err(UseCaseError::NotFound(Resource::User)) => {
            bail!("no user has the email {email}: they must sign up first")
        }
        Err(err) => Err(anyhow::Error::new(err).context(format!(
            "cannot {} the admin role {} {email}",
            if grant { "grant" } else { "revoke" },
            if grant { "to" } else { "of" },
        ))),
    }
}

/// The payment provider of a storage-only command in demo mode: never asked (the commands
/// that ask are refused in demo mode); if it were, it says why it cannot answer.
#[derive(Debug)]
struct NoProvider;

impl NoProvider {
    fn refuse() -> GatewayError {
        GatewayError::Misconfigured(
            "in demo mode the simulated Stripe lives inside the running server; this command has none"
                .into(),
        )
    }
}

#[async_trait]
impl PaymentGateway for NoProvider {
    async fn create_checkout_session(
        &self,
        _request: &CheckoutRequest,
    ) -> Result<GatewaySession, GatewayError> {
        Err(Self::refuse())
    }

    async fn create_customer(&self, _request: &CustomerRequest) -> Result<String, GatewayError> {
        Err(Self::refuse())
    }

    async fn promotion_code_text(
        &self,
        _promotion_code_id: &str,
    ) -> Result<Option<String>, GatewayError> {
        Err(Self::refuse())
    }

    async fn retrieve_checkout_session(
        &self,
        _session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        Err(Self::refuse())
    }

    async fn find_session_by_payment_intent(
        &self,
        _payment_intent_id: &str,
    ) -> Result<Option<GatewaySession>, GatewayError> {
        Err(Self::refuse())
    }

    async fn refund(&self, _request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        Err(Self::refuse())
    }

    async fn expire_checkout_session(
        &self,
        _session_id: &str,
    ) -> Result<GatewaySession, GatewayError> {
        Err(Self::refuse())
    }

    async fn list_events(&self, _query: &EventQuery) -> Result<EventPage, GatewayError> {
        Err(Self::refuse())
    }

    fn decode_stored_event(&self, _payload: &[u8]) -> Result<WebhookEvent, WebhookRejection> {
        Err(WebhookRejection::Malformed(
            "no payment provider in this command".into(),
        ))
    }

    fn verify_webhook(
        &self,
        _payload: &[u8],
        _signature_header: Option<&str>,
    ) -> Result<WebhookEvent, WebhookRejection> {
        Err(WebhookRejection::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words() {
        assert_eq!(plural(0, "event"), "0 events");
        assert_eq!(plural(1, "event"), "1 event");
        assert_eq!(plural(2, "purchase"), "2 purchases");
    }

    #[test]
    fn times_are_shown_in_utc_rfc3339() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap()
            .to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(rfc3339(at), "2023-11-14T22:13:20Z");
    }
}
