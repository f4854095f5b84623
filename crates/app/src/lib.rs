//! The LMS payments backend as a library: [`Settings`] are read and validated first; then
//! [`Application::build`] opens the storage, checks the database belongs to the configured
//! payment mode, starts the Stripe sandbox in demo mode, seeds the demo data and builds the
//! HTTP server; [`Application::run_until_stopped`] serves, with the background workers
//! ([`workers`]: the reconciler and the payload pruner) running beside the server until it
//! stops. The binary (`main.rs`) and the end-to-end tests start the app exactly the same way.
//! The operator's one-off commands ([`commands`]) open the same storage and Stripe client
//! without a server. No business rule lives here: the workers and commands schedule, pace and
//! print; the use cases decide.
//!
//! # Demo mode (the `demo` feature)
//! Everything runs in this one process: SQLite at `sqlite://data/lms.db` (unless
//! `DATABASE_URL` says otherwise), the Stripe sandbox on `127.0.0.1:SANDBOX_PORT` (default
//! 12111), driven through the real Stripe adapter (`lms-stripe-http`) with an API key and a
//! webhook signing secret generated for each run, and signed webhooks delivered by the sandbox
//! to this app's own webhook route. Only the machine running the app can reach the sandbox's
//! payment page (it listens on loopback unless `SANDBOX_HOST` says otherwise, and its links
//! start with `SANDBOX_PUBLIC_URL` when set, for a container's published port), and each
//! session's page needs the secret its URL carries. A build without the feature (the default
//! Docker image) has neither sandbox nor demo data.

pub mod commands;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod log_output;
pub mod metrics;
mod pacing;
pub mod probe;
mod progress;
pub mod workers;

pub use config::{
    ConfigError, Database, DatabaseSettings, DemoSettings, HttpSettings, LimitSettings, LogFormat,
    Mode, RedactedUrl, Settings, EX_CONFIG,
};
pub use log_output::LogOutput;
pub use probe::{healthcheck_url, probe};
pub use workers::{ReconcileRun, Reconciler, WorkerSettings};

use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;
use lms_actix_api::limits::LimiterClock;
use lms_actix_api::{ApiSettings, ApiState, SessionKey};
use lms_password_argon2::Argon2Hasher;
use lms_ports::{
    AuditLog, Clock, CourseRepo, DeploymentClaim, DeploymentRegistry, EventInbox, PasswordHasher,
    PaymentGateway, PaymentsMode, PurchaseRepo, StorageHealth, SystemClock, UserRepo,
};
use lms_postgres::{PgConnectionOptions, PgStore, DEFAULT_ACQUIRE_TIMEOUT};
use lms_sqlite::{SqliteOptions, SqliteStore};
use lms_stripe_http::{StripeConfig, StripeGateway};
#[cfg(feature = "demo")]
use lms_stripe_sandbox::{Sandbox, SandboxConfig};
use lms_use_cases::{Services, UseCaseSettings};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use workers::Workers;

/// The webhook route Stripe (or the sandbox) delivers to.
pub const WEBHOOK_PATH: &str = "/api/v1/payments/webhook";

/// What seeding did at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoSeed {
    /// Not seeded: Stripe mode, or `SEED_DEMO=false`.
    Disabled,
    /// The demo instructor and courses were created now.
    Created,
    /// The demo instructor already existed: nothing was created.
    AlreadyPresent,
}

/// A built application: storage open and migrated, the payment mode checked against what the
/// database remembers, listening, sandbox (if any) running, demo data seeded. Nothing is
/// served until [`Application::run_until_stopped`] is polled.
pub struct Application {
    port: u16,
    base_url: String,
    server: Server,
    #[cfg(feature = "demo")]
    sandbox: Option<Arc<Sandbox>>,
    demo: DemoSeed,
    /// What the background workers run on, and which of them run.
    services: Services,
    workers: WorkerSettings,
    /// How long the workers get to finish their item at hand when the server stops.
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("base_url", &self.base_url)
            .field("demo", &self.demo)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

/// What an application is assembled from: the adapters behind every port and the settings of
/// the use cases and the HTTP layer. [`Application::build`] makes them from configuration; a
/// test makes them from in-memory storage, a fake gateway and manual clocks, and both hand them
/// to [`Application::assemble`].
pub struct AppParts<S> {
    /// One store implementing every storage port.
    pub store: S,
    pub gateway: Arc<dyn PaymentGateway>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    pub use_cases: UseCaseSettings,
    pub api: ApiSettings,
    pub jwt_secret: SessionKey,
    /// The rate limiters' time: [`LimiterClock::monotonic`] outside tests.
    pub limiter_clock: LimiterClock,
    /// Seed the demo data before serving (a build with the `demo` feature only).
    pub seed_demo: bool,
    /// The background workers to run while serving ([`WorkerSettings::off`] for none).
    pub workers: WorkerSettings,
    /// Bound already, so that the caller knows the address before anything is assembled.
    pub listener: TcpListener,
}

impl<S> std::fmt::Debug for AppParts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The adapters are trait objects and the key is secret: settings and address only.
        f.debug_struct("AppParts")
            .field("use_cases", &self.use_cases)
            .field("api", &self.api)
            .field("seed_demo", &self.seed_demo)
            .field("workers", &self.workers)
            .field("listener", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl<S> AppParts<S> {
    /// The same parts over another store.
    pub fn with_store<T>(self, store: T) -> AppParts<T> {
        AppParts {
            store,
            gateway: self.gateway,
            hasher: self.hasher,
            clock: self.clock,
            use_cases: self.use_cases,
            api: self.api,
            jwt_secret: self.jwt_secret,
            limiter_clock: self.limiter_clock,
            seed_demo: self.seed_demo,
            workers: self.workers,
            listener: self.listener,
        }
    }
}

/// One of the storage adapters (each implements every storage port).
#[derive(Clone)]
enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Store {
    async fn claim_payments_mode(&self, mode: PaymentsMode) -> anyhow::Result<DeploymentClaim> {
        let claim = match self {
            Self::Postgres(store) => store.claim_payments_mode(mode).await,
            Self::Sqlite(store) => store.claim_payments_mode(mode).await,
        };
        claim.context(
            "reading which payment mode this database belongs to (DATABASE_URL; with RUN_MIGRATIONS=false, run `lms-app migrate` first)",
        )
    }

    /// Opens the configured storage (migrating when `RUN_MIGRATIONS`) and checks that the
    /// database belongs to the configured payment mode, recording it on first use.
    async fn open_checked(settings: &Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings.database).await?;
        let mode = settings.mode.payments_mode();
        match store.claim_payments_mode(mode).await? {
            DeploymentClaim::Recorded => {
                tracing::info!(mode = mode.as_str(), "database now belongs to this payment mode");
            }
            DeploymentClaim::Matches => {}
            DeploymentClaim::Conflict { recorded } => {
                return Err(ModeMismatch {
                    recorded: describe(recorded),
                    configured: describe(mode),
                    fix: "point DATABASE_URL at a database of its own for this mode (never mix simulated, test and live payments in one database)",
                }
                .into())
            }
        }
        Ok(store)
    }

    /// The use cases over this store.
    fn services(
        self,
        gateway: Arc<dyn PaymentGateway>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        settings: UseCaseSettings,
    ) -> Services {
        match self {
            Self::Postgres(store) => Services::with_store(store, gateway, hasher, clock, settings),
            Self::Sqlite(store) => Services::with_store(store, gateway, hasher, clock, settings),
        }
    }
}

/// Why the database refuses this start: it was written by another payment mode.
#[derive(Debug, thiserror::Error)]
#[error("DATABASE_URL: this database holds data of {recorded} and the app is configured for {configured}: {fix}")]
pub struct ModeMismatch {
    pub recorded: &'static str,
    pub configured: &'static str,
    fix: &'static str,
}

fn describe(mode: PaymentsMode) -> &'static str {
    match mode {
        PaymentsMode::Sandbox => "the offline demo (simulated payments)",
        PaymentsMode::StripeTest => "Stripe test mode",
        PaymentsMode::StripeLive => "Stripe live mode",
    }
}

impl Application {
    /// Opens the storage (running migrations when `RUN_MIGRATIONS`), checks that the database
    /// belongs to this payment mode, binds `HOST:PORT` (port 0: any free port), starts the
    /// in-process Stripe sandbox in demo mode, seeds the demo data when enabled, and builds the
    /// server.
    ///
    /// Must be called inside a Tokio runtime (the sandbox and the server spawn tasks on it).
    ///
    /// # Errors
    /// A [`ModeMismatch`], or a message naming the setting at fault: the port taken
    /// (`HOST`/`PORT`, `SANDBOX_PORT`), the database unusable (`DATABASE_URL`), or seeding failing.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::open_checked(&settings).await?;

        let http = &settings.http;
        let listener = TcpListener::bind((http.host, http.port))
            .with_context(|| format!("cannot listen on {}:{} (HOST/PORT)", http.host, http.port))?;
        let address = listener.local_addr()?;
        let base_url = public_base_url(address);

        let (stripe, sandbox) = payments(&settings.mode, address, &base_url).await?;
        let gateway: Arc<dyn PaymentGateway> =
            Arc::new(StripeGateway::new(stripe).context("building the Stripe client")?);
        let limits = &settings.limits;
        let hasher = Argon2Hasher::with_limits(limits.password_hashing)
            .context("building the password hasher")?;

        let jwt_secret = match &settings.auth.jwt_secret {
            Some(secret) => secret.clone(),
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random one for this run, so sign-ins end when the app restarts"
                );
                SessionKey::generate()
                    .context("drawing a random JWT secret from the operating system")?
            }
        };

        let success_url = match &settings.mode {
            Mode::Stripe(stripe) => stripe.success_url.clone(),
            Mode::Demo(_) => demo_success_url(&settings.mode, &base_url),
        };
        let mut api = ApiSettings::new(success_url);
        api.cookie_secure = http.cookie_secure;
        api.cors_origins = http.cors_origins.clone();
        api.shutdown_timeout = http.shutdown_timeout;
        api.workers = http.workers;
        api.trusted_proxies = http.trusted_proxies.clone();
        api.rate_limits = limits.rate_limits;
        let parts = AppParts {
            store: (),
            gateway,
            hasher: Arc::new(hasher),
            clock: Arc::new(SystemClock),
            use_cases: settings.use_cases,
            api,
            jwt_secret,
            limiter_clock: LimiterClock::monotonic(),
            seed_demo: matches!(settings.mode, Mode::Demo(DemoSettings { seed: true, .. })),
            workers: settings.workers,
            listener,
        };
        let app = match store {
            Store::Postgres(store) => Self::assemble(parts.with_store(store)).await?,
            Store::Sqlite(store) => Self::assemble(parts.with_store(store)).await?,
        };
        #[cfg(feature = "demo")]
        let app = Self { sandbox, ..app };
        #[cfg(not(feature = "demo"))]
        let () = sandbox;
        tracing::info!(%address, url = %base_url, database = %settings.database.url.describe(), "listening");
        Ok(app)
    }

    /// The one place adapters become the use cases, the HTTP state and a server: builds the
    /// [`Services`] over the parts, seeds the demo data when asked, and builds the server on
    /// the parts' listener; the parts' workers start when it is served. [`Application::build`] calls it with the configured adapters; the
    /// API tests call it with theirs. No sandbox is attached (`build` attaches its own).
    ///
    /// Must be called inside a Tokio runtime; nothing is served until
    /// [`Application::run_until_stopped`] is polled.
    ///
    /// # Errors
    /// When seeding fails, `seed_demo` is asked of a build without the `demo` feature, or the
    /// listener cannot be used.
    pub async fn assemble<S>(parts: AppParts<S>) -> anyhow::Result<Self>
    where
        S: UserRepo + CourseRepo + PurchaseRepo + EventInbox + AuditLog + StorageHealth + Clone,
    {
        let services = Services::with_store(
            parts.store,
            parts.gateway,
            parts.hasher,
            parts.clock,
            parts.use_cases,
        );
        let demo = seed_demo(parts.seed_demo, &services).await?;
        let address = parts.listener.local_addr()?;
        let shutdown_timeout = parts.api.shutdown_timeout;
        let state = ApiState::new(
            Arc::new(services.clone()),
            parts.jwt_secret.as_bytes(),
            parts.api,
        )
        .with_limiter_clock(parts.limiter_clock);
        let server =
            lms_actix_api::run(parts.listener, state).context("starting the HTTP server")?;
        Ok(Self {
            port: address.port(),
            base_url: public_base_url(address),
            server,
            #[cfg(feature = "demo")]
            sandbox: None,
            demo,
            services,
            workers: parts.workers,
            shutdown_timeout,
        })
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where a browser on this machine reaches the app, e.g. `http://localhost:4000` (no
    /// trailing slash). The default success and cancel pages live under it.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The in-process Stripe sandbox, in demo mode.
    #[cfg(feature = "demo")]
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_deref()
    }

    /// The sandbox, shareable past [`Application::run_until_stopped`] (which consumes `self`).
    #[cfg(feature = "demo")]
    pub fn sandbox_handle(&self) -> Option<Arc<Sandbox>> {
        self.sandbox.clone()
    }

    /// Whether payments are simulated by the in-process sandbox.
    pub fn is_simulated(&self) -> bool {
        #[cfg(feature = "demo")]
        return self.sandbox.is_some();
        #[cfg(not(feature = "demo"))]
        false
    }

    /// What seeding did.
    pub fn demo_seed(&self) -> DemoSeed {
        self.demo
    }

    /// Stops the server from elsewhere (`handle.stop(true).await` drains requests first).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The background workers this application runs while served.
    pub fn workers(&self) -> &WorkerSettings {
        &self.workers
    }

    /// Starts the background workers, serves until stopped (SIGINT/SIGTERM, or
    /// [`Application::server_handle`]), then stops the workers (each finishes the item at hand,
    /// for at most the shutdown timeout) and the sandbox.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let workers = Workers::start(&self.services, &self.workers);
        let outcome = self.server.await;
        workers.stop(self.shutdown_timeout).await;
        #[cfg(feature = "demo")]
        if let Some(sandbox) = self.sandbox {
            match Arc::try_unwrap(sandbox) {
                Ok(sandbox) => sandbox.stop().await,
                // Someone still holds it; it stops when they drop it.
                Err(shared) => drop(shared),
            }
        }
        tracing::info!("stopped");
        outcome
    }
}

/// The sandbox's own type where the build has one; nothing otherwise.
#[cfg(feature = "demo")]
type RunningSandbox = Option<Arc<Sandbox>>;
#[cfg(not(feature = "demo"))]
type RunningSandbox = ();

/// The Stripe adapter's configuration, and the sandbox it talks to in demo mode.
async fn payments(
    mode: &Mode,
    address: SocketAddr,
    base_url: &str,
) -> anyhow::Result<(StripeConfig, RunningSandbox)> {
    match mode {
        #[cfg(not(feature = "demo"))]
        Mode::Stripe(config) => Ok((config.as_ref().clone(), ())),
        #[cfg(feature = "demo")]
        Mode::Stripe(config) => Ok((config.as_ref().clone(), None)),
        #[cfg(not(feature = "demo"))]
        Mode::Demo(_) => {
            // Settings refuse demo mode in such a build; this is unreachable in practice.
            let _ = (address, base_url);
            anyhow::bail!("APP_MODE: demo needs a build with the `demo` feature")
        }
        #[cfg(feature = "demo")]
        Mode::Demo(demo) => {
            let webhook_url = format!("http://{}{WEBHOOK_PATH}", loopback(address));
            let (sandbox, webhook_secret) = start_sandbox(demo, webhook_url).await?;
            let success_url = demo_success_url(mode, base_url);
            let cancel_url = demo
                .cancel_url
                .clone()
                .unwrap_or_else(|| format!("{base_url}/payment/cancel"));
            let mut config = StripeConfig::new(
                sandbox.secret_key(),
                &webhook_secret,
                &success_url,
                &cancel_url,
            )
            .and_then(|config| config.with_api_base(sandbox.base_url()))
            .context("configuring the Stripe adapter for the sandbox")?;
            // The same checkout settings as with Stripe: the sandbox honours them.
            config.checkout = demo.checkout;
            tracing::warn!(
                sandbox = sandbox.base_url(),
                payment_pages = %sandbox.page_base(),
                "PAYMENTS ARE SIMULATED (APP_MODE=demo): checkout uses the in-process Stripe sandbox at {} (no real money moves; pay with card 4242 4242 4242 4242)",
                sandbox.base_url()
            );
            Ok((config, Some(Arc::new(sandbox))))
        }
    }
}

/// The demo's success page: the configured one, else this app's own.
fn demo_success_url(mode: &Mode, base_url: &str) -> String {
    match mode {
        Mode::Demo(DemoSettings {
            success_url: Some(url),
            ..
        }) => url.clone(),
        _ => format!("{base_url}/payment/success?session_id={{CHECKOUT_SESSION_ID}}"),
    }
}

/// The demo data, only when asked (demo mode): its password is public.
async fn seed_demo(seed: bool, services: &Services) -> anyhow::Result<DemoSeed> {
    if !seed {
        return Ok(DemoSeed::Disabled);
    }
    #[cfg(feature = "demo")]
    return demo::seed(services).await.context("seeding the demo data");
    #[cfg(not(feature = "demo"))]
    {
        let _ = services;
        anyhow::bail!("SEED_DEMO: the demo data needs a build with the `demo` feature")
    }
}

/// Applies the pending migrations of the configured database; returns the versions applied.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(database: &DatabaseSettings) -> anyhow::Result<Vec<String>> {
    match &database.url {
        Database::Postgres(url) => {
            lms_postgres::run_migrations_with(url.expose(), &pg_options(database))
                .await
                .context("running the PostgreSQL migrations (DATABASE_URL)")
        }
        Database::Sqlite(target) => {
            let store = SqliteStore::open_with(
                target,
                SqliteOptions {
                    migrate: false,
                    ..SqliteOptions::default()
                },
            )
            .await
            .with_context(|| format!("cannot open the SQLite database {target} (DATABASE_URL)"))?;
            store
                .run_migrations()
                .await
                .context("running the SQLite migrations")
        }
    }
}

/// Installs the global tracing subscriber (`RUST_LOG` filter, default `info`) writing to
/// stdout, for `serve` and `migrate`. A second call is a no-op.
///
/// A terminal gets each line as it is logged. Anything else (a file, a pipe to a log
/// collector) gets them in batches ([`log_output`]): the returned guard writes out what is
/// left when dropped, so keep it until the process exits.
///
/// # Errors
/// When the thread that writes the batches cannot be started.
pub fn init_tracing(format: LogFormat) -> std::io::Result<Option<LogOutput>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: piped or redirected logs stay plain text.
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        install_tracing(format, filter, true, std::io::stdout);
        return Ok(None);
    }
    let output = LogOutput::stdout()?;
    if !install_tracing(format, filter, false, output.lines()) {
        return Ok(None);
    }
    output.flush_on_panic();
    Ok(Some(output))
}

/// The tracing subscriber of the operator's commands: stderr (stdout carries their results),
/// above any progress bar, `RUST_LOG` filter with default `warn` (the summary says what
/// happened; the log only what went wrong). A second call is a no-op.
pub fn init_command_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install_tracing(format, filter, ansi, progress::StderrAboveProgress);
}

/// Installs the subscriber; `false` when one was installed already (a second call), which
/// leaves it in place.
fn install_tracing<W>(format: LogFormat, filter: EnvFilter, ansi: bool, writer: W) -> bool
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let already_installed = match format {
        // json-subscriber writes the same lines as tracing-subscriber's JSON format, but from
        // each span's fields kept as JSON text, where tracing-subscriber parses them back for
        // every line: 12,700 instructions a line instead of 35,000 (callgrind,
        // crates/bench/README.md).
        LogFormat::Json => json_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .flatten_event(true)
            // The span list alone: it ends with the current span, which a `span` object would
            // repeat on every line (half of a request line, crates/bench/README.md).
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
            .is_err(),
        LogFormat::Text => text_logs(filter, writer, ansi).try_init().is_err(),
        LogFormat::Pretty => text_logs(filter, writer, ansi).pretty().try_init().is_err(),
    };
    !already_installed
}

fn text_logs<W>(
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    EnvFilter,
    W,
>
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
}

fn pg_options(database: &DatabaseSettings) -> PgConnectionOptions {
    PgConnectionOptions {
        statement_timeout: database.statement_timeout,
        lock_timeout: database.lock_timeout,
        idle_in_transaction_timeout: database.idle_in_transaction_timeout,
        ..PgConnectionOptions::default()
    }
}

async fn open_store(database: &DatabaseSettings) -> anyhow::Result<Store> {
    match &database.url {
        Database::Postgres(url) => {
            if database.run_migrations {
                let applied = migrate(database).await?;
                tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
            } else {
                // Checked here, before the pool: its connections prepare statements on tables
                // a database without the schema lacks, and would only time out.
                let pending =
                    lms_postgres::pending_migrations_with(url.expose(), &pg_options(database))
                        .await
                        .context("reading which migrations the database has (DATABASE_URL)")?;
                if !pending.is_empty() {
                    anyhow::bail!(
                        "DATABASE_URL: the database lacks {} of this build's migrations ({}); with RUN_MIGRATIONS=false, run `lms-app migrate` first",
                        pending.len(),
                        pending.join(", ")
                    );
                }
            }
            let store = PgStore::connect_lazy_with(
                url.expose(),
                database.pool_size,
                DEFAULT_ACQUIRE_TIMEOUT,
                &pg_options(database),
            )
            .context("connecting to PostgreSQL (DATABASE_URL)")?;
            let store = match database.group_commit {
                Some(lanes) => {
                    tracing::info!(
                        lanes_per_http_worker = lanes,
                        "webhook deliveries that arrive together share a transaction (DATABASE_GROUP_COMMIT=off: one each)"
                    );
                    store.with_group_commit(lanes)
                }
                None => store,
            };
            {
                let store = store.clone();
                metrics::on_scrape(move || store.record_pool_metrics());
            }
            match store.ping().await {
                Ok(detail) => tracing::info!(%detail, "database reachable"),
                // Start anyway: the health check reports 503 until the database is back.
                Err(err) => tracing::warn!(error = %err, "database not reachable at start-up"),
            }
            Ok(Store::Postgres(store))
        }
        Database::Sqlite(target) => {
            let store = SqliteStore::open_with(
                target,
                SqliteOptions {
                    migrate: database.run_migrations,
                    ..SqliteOptions::default()
                },
            )
            .await
            .with_context(|| format!("cannot open the SQLite database {target} (DATABASE_URL)"))?;
            Ok(Store::Sqlite(store))
        }
    }
}

/// Starts the sandbox with a key and a webhook signing secret made for this run; returns the
/// secret for the adapter that verifies the sandbox's webhooks (it is never logged).
#[cfg(feature = "demo")]
async fn start_sandbox(
    demo: &DemoSettings,
    webhook_url: String,
) -> anyhow::Result<(Sandbox, String)> {
    let address = SocketAddr::new(demo.sandbox_host, demo.sandbox_port);
    let listener = TcpListener::bind(address).with_context(|| {
        format!("cannot start the Stripe sandbox on {address} (SANDBOX_HOST, SANDBOX_PORT; port 0 picks a free one)")
    })?;
    let random = || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    };
    let webhook_secret = format!("whsec_{}", random());
    let config = SandboxConfig {
        secret_key: format!("sk_test_sandbox_{}", random()),
        webhook_secrets: vec![webhook_secret.clone()],
        webhook_url: Some(webhook_url),
        public_base_url: demo.sandbox_public_url.clone(),
        tax_rate_bps: demo.tax_rate_bps,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start_on(listener, config)
        .await
        .context("starting the Stripe sandbox (SANDBOX_PORT)")?;
    Ok((sandbox, webhook_secret))
}

/// The bound address as this machine reaches it (an unspecified address means loopback).
fn loopback(address: SocketAddr) -> SocketAddr {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, address.port())
}

/// `http://localhost:PORT` when bound to loopback or every interface, else the bound address.
fn public_base_url(address: SocketAddr) -> String {
    let reachable = loopback(address);
    if reachable.ip().is_loopback() {
        format!("http://localhost:{}", address.port())
    } else {
        format!("http://{reachable}")
    }
}
