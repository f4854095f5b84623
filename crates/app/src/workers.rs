//! The background workers `serve` runs beside the HTTP server, started by
//! [`crate::Application::run_until_stopped`] and stopped with the server:
//!
//! - the **reconciler**, every `RECONCILE_INTERVAL`: claims the purchases pending for longer
//!   than `RECONCILE_OLDER_THAN`, a batch of `RECONCILE_BATCH` at a time, and asks the payment
//!   provider about each (at most `RECONCILE_RATE` requests a second), until a batch comes
//!   back short. What the provider says is applied by the use case
//!   ([`Services::reconcile_purchase`]); this module only schedules, paces and logs.
//! - the **payload pruner**, hourly: drops the payloads of inbox events older than
//!   `EVENT_PAYLOAD_RETENTION_DAYS` (their rows and outcomes stay).
//!
//! Several instances may run both: a claim leases its purchases for
//! [`lms_use_cases::RECONCILE_LEASE`], so concurrent claims get disjoint batches, and pruning
//! is idempotent. An error is logged with its cause chain and the loop goes on; a purchase whose
//! reconciliation failed is tried again once its lease ends. `lms-app reconcile` runs the same
//! pass once ([`Reconciler::run`]).

use crate::pacing::PacedGateway;
use lms_domain::PurchaseId;
use lms_use_cases::{Reconciled, Services, Tally, UseCaseError};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// How one reconciliation pass works (the background reconciler's and `lms-app reconcile`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileRun {
    /// Only purchases pending for longer than this are reconciled.
    pub older_than: Duration,
    /// Purchases claimed at once.
    pub batch: u32,
    /// Requests a second to the payment provider, at most (per instance).
    pub rate: NonZeroU32,
}

impl ReconcileRun {
    pub const DEFAULT_OLDER_THAN: Duration = Duration::from_secs(30 * 60);
    pub const DEFAULT_BATCH: u32 = 50;
    pub const MAX_BATCH: u32 = 500;
    pub const DEFAULT_RATE: NonZeroU32 = NonZeroU32::MIN.saturating_add(4);
    /// Stripe allows 100 requests a second in live mode (25 in test mode) for a whole account.
    pub const MAX_RATE: u32 = 100;
}

impl Default for ReconcileRun {
    fn default() -> Self {
        Self {
            older_than: Self::DEFAULT_OLDER_THAN,
            batch: Self::DEFAULT_BATCH,
            rate: Self::DEFAULT_RATE,
        }
    }
}

/// Which background workers run, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// How often the reconciler runs; `None`: no background reconciler (`RECONCILE_INTERVAL=off`).
    pub reconcile_every: Option<Duration>,
    pub reconcile: ReconcileRun,
    /// How often payloads past their retention are pruned; `None`: never.
    pub prune_every: Option<Duration>,
    /// How long an event's payload is kept (`EVENT_PAYLOAD_RETENTION_DAYS`).
    pub payload_retention: Duration,
}

impl WorkerSettings {
    pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(5 * 60);
    pub const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);
    pub const DEFAULT_PAYLOAD_RETENTION_DAYS: u32 = 90;

    /// No worker at all (the API tests, which drive time themselves).
    pub fn off() -> Self {
        Self {
            reconcile_every: None,
            reconcile: ReconcileRun::default(),
            prune_every: None,
            payload_retention: days(Self::DEFAULT_PAYLOAD_RETENTION_DAYS),
        }
    }
}

impl Default for WorkerSettings {
    /// Both workers on, with the defaults `.env.example` documents.
    fn default() -> Self {
        Self {
            reconcile_every: Some(Self::DEFAULT_RECONCILE_EVERY),
            prune_every: Some(Self::PRUNE_EVERY),
            ..Self::off()
        }
    }
}

pub(crate) const fn days(days: u32) -> Duration {
    Duration::from_secs(days as u64 * 24 * 60 * 60)
}

/// Payloads dropped per statement by the pruner.
const PRUNE_BATCH: u32 = 500;

/// A reconciliation's summary word ([`Reconciled::label`]), `error` when it failed.
fn result_label(result: &Result<Reconciled, UseCaseError>) -> &'static str {
    match result {
        Ok(reconciled) => reconciled.label(),
        Err(_) => "error",
    }
}

/// Runs reconciliation passes over services whose payment provider is paced at the run's rate.
#[derive(Debug, Clone)]
pub struct Reconciler {
    services: Services,
    run: ReconcileRun,
}

impl Reconciler {
    /// Reconciliation through `services`, with its calls to the payment provider paced at
    /// `run.rate` (the pacing is shared by every pass of this reconciler).
    pub fn new(services: &Services, run: ReconcileRun) -> Self {
        let mut services = services.clone();
        services.gateway = Arc::new(PacedGateway::new(services.gateway, run.rate));
        Self { services, run }
    }

    /// One pass: claims due purchases a batch at a time and reconciles each, until a batch
    /// comes back short or `stopping` says so (checked between purchases). `each` hears about
    /// every purchase; a purchase that could not be reconciled is counted as `error` and the
    /// pass goes on (it is claimed again once its lease ends).
    ///
    /// # Errors
    /// A claim failing (storage): the pass stops there.
    pub async fn run(
        &self,
        stopping: &(dyn Fn() -> bool + Sync),
        each: &mut (dyn FnMut(PurchaseId, &Result<Reconciled, UseCaseError>) + Send),
    ) -> Result<Tally, UseCaseError> {
        let older_than =
            time::Duration::try_from(self.run.older_than).map_err(UseCaseError::unexpected)?;
        let mut tally = Tally::of("purchase");
        loop {
            if stopping() {
                break;
            }
            let claimed = self
                .services
                .claim_for_reconciliation(older_than, self.run.batch)
                .await?;
            let full = claimed.len() >= self.run.batch as usize;
            for purchase in &claimed {
                if stopping() {
                    return Ok(tally);
                }
                let result = self.services.reconcile_purchase(purchase).await;
                tally.add(result_label(&result));
                each(purchase.id, &result);
            }
            if !full {
                break;
            }
        }
        Ok(tally)
    }
}

/// The running workers; [`Workers::stop`] ends them.
#[derive(Debug)]
pub(crate) struct Workers {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Workers {
    /// Spawns the workers `settings` asks for on the current Tokio runtime.
    pub(crate) fn start(services: &Services, settings: &WorkerSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(every) = settings.reconcile_every {
            let reconciler = Reconciler::new(services, settings.reconcile);
            tracing::info!(
                every = %humantime::format_duration(every),
                older_than = %humantime::format_duration(settings.reconcile.older_than),
                batch = settings.reconcile.batch,
                rate = settings.reconcile.rate.get(),
                "reconciler started"
            );
            tasks.push((
                "reconciler",
                tokio::spawn(reconcile_loop(reconciler, every, stopped.clone())),
            ));
        }
        if let Some(every) = settings.prune_every {
            tasks.push((
                "payload pruner",
                tokio::spawn(prune_loop(
                    services.clone(),
                    settings.payload_retention,
                    every,
                    stopped,
                )),
            ));
        }
        Self { stop, tasks }
    }

    /// Tells every worker to stop after the item at hand and waits up to `grace` (at least a
    /// second) for each; one still busy then is aborted (every write it makes is atomic, so nothing is left
    /// half done).
    pub(crate) async fn stop(self, grace: Duration) {
        // Even an idle worker needs a moment to see the signal.
        let grace = grace.max(Duration::from_secs(1));
        let _ = self.stop.send(true);
        for (name, mut task) in self.tasks {
            match tokio::time::timeout(grace, &mut task).await {
                Ok(Ok(())) => tracing::debug!(worker = name, "worker stopped"),
                Ok(Err(err)) => {
                    tracing::error!(worker = name, error = %err, "worker ended abnormally")
                }
                Err(_) => {
                    task.abort();
                    tracing::warn!(worker = name, "worker still busy at shutdown: aborted");
                }
            }
        }
    }
}

/// Waits for the next tick; `false` once the workers are told to stop.
async fn next_tick(ticks: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = ticks.tick() => !*stop.borrow(),
        // A dropped sender means the application is gone: stop too.
        _ = stop.changed() => false,
    }
}

fn interval(every: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(every);
    // A pass longer than the interval delays the next one rather than causing a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

async fn reconcile_loop(reconciler: Reconciler, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticks = interval(every);
    while next_tick(&mut ticks, &mut stop).await {
        let stopping = || *stop.borrow();
        let mut log_failure =
            |purchase_id: PurchaseId, result: &Result<Reconciled, UseCaseError>| {
                if let Err(err) = result {
                    tracing::error!(
                        purchase_id = %purchase_id,
                        error = %lms_ports::chain_text(err),
                        "reconciling a purchase failed; it is tried again once its lease ends"
                    );
                }
            };
        match reconciler.run(&stopping, &mut log_failure).await {
            Ok(tally) if tally.total() > 0 => {
                tracing::info!(summary = %tally, "reconciliation pass done");
            }
            Ok(_) => tracing::debug!("reconciliation pass: nothing due"),
            Err(err) => tracing::error!(
                error = %lms_ports::chain_text(&err),
                "reconciliation pass failed; trying again at the next interval"
            ),
        }
    }
}

async fn prune_loop(
    services: Services,
    retention: Duration,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(retention) = time::Duration::try_from(retention) else {
        tracing::error!("the payload retention is out of range: the pruner does not run");
        return;
    };
    let mut ticks = interval(every);
    while next_tick(&mut ticks, &mut stop).await {
        // The use case logs how many it pruned.
        if let Err(err) = services.prune_event_payloads(retention, PRUNE_BATCH).await {
            tracing::error!(
                error = %lms_ports::chain_text(&err),
                "pruning event payloads failed; trying again at the next interval"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_domain::PurchaseStatus;

    fn reconciled(
        status: PurchaseStatus,
        expired_at_gateway: bool,
    ) -> Result<Reconciled, UseCaseError> {
        Ok(Reconciled {
            purchase_id: PurchaseId::from_uuid(uuid::Uuid::new_v4()),
            status,
            expired_at_gateway,
        })
    }

    #[test]
    fn the_tally_reads_as_one_line_by_result() {
        let mut tally = Tally::of("purchase");
        assert_eq!(tally.to_string(), "0 purchases");
        tally.add(result_label(&reconciled(PurchaseStatus::Completed, false)));
        assert_eq!(tally.to_string(), "1 purchase: completed 1");
        tally.add(result_label(&reconciled(PurchaseStatus::Failed, true)));
        tally.add(result_label(&reconciled(PurchaseStatus::Completed, false)));
        tally.add(result_label(&Err(UseCaseError::unexpected("down"))));
        assert_eq!(
            tally.to_string(),
            "4 purchases: completed 2, error 1, expired 1"
        );
        assert_eq!(tally.count("completed"), 2);
        assert_eq!(tally.count("pending"), 0);
        assert_eq!(tally.total(), 4);
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let run = ReconcileRun::default();
        assert_eq!(run.older_than, Duration::from_secs(1800));
        assert_eq!(run.batch, 50);
        assert_eq!(run.rate.get(), 5);
        let on = WorkerSettings::default();
        assert_eq!(on.reconcile_every, Some(Duration::from_secs(300)));
        assert_eq!(on.prune_every, Some(Duration::from_secs(3600)));
        assert_eq!(on.payload_retention, Duration::from_secs(90 * 86_400));
        let off = WorkerSettings::off();
        assert_eq!((off.reconcile_every, off.prune_every), (None, None));
    }
}
