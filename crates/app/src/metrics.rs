//! Prometheus metrics: the process-wide recorder the adapters' `metrics::counter!`,
//! `histogram!` and `gauge!` calls write to, and a listener of its own that serves them as
//! Prometheus text at `GET /metrics` (any other path is 404).
//!
//! The listener is separate from the API's port so that metrics can stay on loopback or a
//! private interface while the API is public, and so that a scrape never counts as an API
//! request. It is a one-worker actix server: no other HTTP server crate is needed.
//!
//! Gauges that are a reading of some state (the database pool) are refreshed by hooks
//! registered with [`on_scrape`], run just before each render, so they are never stale.

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Latency buckets (seconds) of every `*_seconds` histogram: from a cached read (1 ms) to a
/// Stripe call that used up its retry budget.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the recorder folds the histograms' raw samples into their buckets when nobody
/// scrapes. It keeps every sample until then (8 bytes each), so a listener that nobody scrapes
/// would otherwise hold one per request for the life of the process.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Something that sets gauges from a reading taken now.
pub type ScrapeHook = Box<dyn Fn() + Send + Sync>;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static HOOKS: Mutex<Vec<ScrapeHook>> = Mutex::new(Vec::new());

/// Installs the Prometheus recorder for the whole process and returns its handle; later calls
/// return the same handle. Metrics recorded before the first call are lost, so call it before
/// the adapters are built.
///
/// # Errors
/// When another metrics recorder was installed in this process first.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &LATENCY_BUCKETS)
        .context("configuring the metrics histograms")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    // A racing caller may have installed first; then its handle is the one in force.
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Runs `hook` before every scrape (e.g. `store.record_pool_metrics()`). It holds whatever it
/// captures for the life of the process.
pub fn on_scrape(hook: impl Fn() + Send + Sync + 'static) {
    HOOKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(hook));
}

/// The current metrics as Prometheus text, the scrape hooks run first.
pub fn render(handle: &PrometheusHandle) -> String {
    for hook in HOOKS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        hook();
    }
    handle.run_upkeep();
    handle.render()
}

/// The metrics listener, built and bound; nothing is served until it is awaited or spawned
/// ([`MetricsServer::run`]).
pub struct MetricsServer {
    address: SocketAddr,
    server: Server,
    recorder: PrometheusHandle,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// The address bound (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops the listener from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`MetricsServer::handle`] (it does not react to signals),
    /// folding the histograms' samples every [`UPKEEP_INTERVAL`] meanwhile.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run(self) -> std::io::Result<()> {
        let recorder = self.recorder;
        let upkeep = every(UPKEEP_INTERVAL, move || recorder.run_upkeep());
        tokio::select! {
            served = self.server => served,
            never = upkeep => match never {},
        }
    }
}

/// Runs `work` once per `period`, the first time one period from now, forever.
async fn every(period: Duration, mut work: impl FnMut()) -> Infallible {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // After a stall, one catch-up run is enough: each run handles everything pending.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        work();
    }
}

/// Installs the recorder ([`install`]) and binds the metrics listener on `addr`
/// (`METRICS_ADDR`); `GET /metrics` answers the Prometheus text format.
///
/// Must be called inside a Tokio runtime.
///
/// # Errors
/// When another recorder is installed, or `addr` cannot be bound (the message names
/// `METRICS_ADDR`).
pub fn serve(addr: SocketAddr) -> anyhow::Result<MetricsServer> {
    let handle = install()?;
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for metrics (METRICS_ADDR)"))?;
    let address = listener.local_addr()?;
    let recorder = handle.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(handle.clone()))
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .shutdown_timeout(1)
    // The API server owns SIGTERM/SIGINT (it drains in-flight requests); this listener is
    // stopped through its handle once the API server is done.
    .disable_signals()
    .listen(listener)
    .context("starting the metrics listener (METRICS_ADDR)")?
    .run();
    tracing::info!(%address, "metrics at http://{address}/metrics");
    Ok(MetricsServer {
        address,
        server,
        recorder,
    })
}

async fn scrape(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    // Rendering walks every series and the hooks may take a lock: off the async worker.
    let handle = handle.into_inner();
    match web::block(move || render(&handle)).await {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(err) => {
            tracing::error!(error = %err, "rendering metrics failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn the_upkeep_runs_once_per_period_and_not_at_once() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let task = tokio::spawn(every(Duration::from_secs(5), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        // At 5, 10 and 15 s.
        tokio::time::sleep(Duration::from_millis(10_200)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        task.abort();
    }
}
