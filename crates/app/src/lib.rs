//! The LMS payments backend as a library: [`Application::build`] reads [`Settings`], opens the
//! storage, starts the Stripe sandbox when no Stripe key is configured, seeds the demo data and
//! builds the HTTP server; [`Application::run_until_stopped`] serves. The binary (`main.rs`)
//! and the end-to-end tests start the app exactly the same way. No business rule lives here.
//!
//! # Offline mode
//! Without `STRIPE_SECRET_KEY` everything runs in this one process: SQLite at
//! `sqlite://data/lms.db` (unless `DATABASE_URL` says otherwise), the Stripe sandbox on
//! `127.0.0.1:SANDBOX_PORT` (default 12111), driven through the real Stripe adapter
//! (`lms-stripe-http`) with an API key and a webhook signing secret generated for each run, and
//! signed webhooks delivered by the sandbox to this app's own webhook route. Only the machine
//! running the app can reach the sandbox's payment page (it listens on loopback), so simulated
//! payments cannot come from elsewhere even when `HOST` exposes the app.

pub mod config;
pub mod demo;

pub use config::{Database, LogFormat, Payments, Secret, Settings};
pub use demo::DemoSeed;

use actix_web::dev::{Server, ServerHandle};
use anyhow::Context;
use lms_actix_api::{ApiSettings, ApiState};
use lms_application::Services;
use lms_password_argon2::Argon2Hasher;
use lms_ports::{CourseRepo, PaymentGateway, PurchaseRepo, StorageHealth, SystemClock, UserRepo};
use lms_postgres::{PgStore, DEFAULT_ACQUIRE_TIMEOUT};
use lms_sqlite::{SqliteOptions, SqliteStore};
use lms_stripe_http::{StripeConfig, StripeGateway};
use lms_stripe_sandbox::{Sandbox, SandboxConfig};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// The webhook route the sandbox delivers to.
pub const WEBHOOK_PATH: &str = "/api/v1/payments/webhook";

/// A built application: listening, storage open and migrated, sandbox (if any) running, demo
/// data seeded. Nothing is served until [`Application::run_until_stopped`] is polled.
pub struct Application {
    port: u16,
    base_url: String,
    server: Server,
    sandbox: Option<Arc<Sandbox>>,
    demo: DemoSeed,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("base_url", &self.base_url)
            .field("sandbox", &self.sandbox)
            .field("demo", &self.demo)
            .finish_non_exhaustive()
    }
}

/// One of the storage adapters (each implements every storage port).
#[derive(Clone)]
enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Application {
    /// Binds `HOST:PORT` (port 0: any free port), opens the storage (running migrations when
    /// `RUN_MIGRATIONS`), starts the in-process Stripe sandbox in sandbox mode, seeds the demo
    /// data when enabled, and builds the server.
    ///
    /// Must be called inside a Tokio runtime (the sandbox and the server spawn tasks on it).
    ///
    /// # Errors
    /// A message naming the setting at fault: the port taken (`HOST`/`PORT`,
    /// `SANDBOX_PORT`), the database unusable (`DATABASE_URL`), an invalid Stripe setting, or
    /// seeding failing.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind((settings.host.as_str(), settings.port)).with_context(|| {
                format!(
                    "cannot listen on {}:{} (HOST/PORT)",
                    settings.host, settings.port
                )
            })?;
        let address = listener.local_addr()?;
        let port = address.port();
        let base_url = public_base_url(address);

        let store = open_store(&settings).await?;

        let success_url = settings.stripe_success_url.clone().unwrap_or_else(|| {
            format!("{base_url}/payment/success?session_id={{CHECKOUT_SESSION_ID}}")
        });
        let cancel_url = settings
            .stripe_cancel_url
            .clone()
            .unwrap_or_else(|| format!("{base_url}/payment/cancel"));

        let (gateway, sandbox) = match &settings.payments {
            Payments::Stripe {
                secret_key,
                webhook_secrets,
                api_base,
            } => {
                let secrets = webhook_secrets
                    .iter()
                    .map(Secret::expose)
                    .collect::<Vec<_>>()
                    .join(",");
                let config =
                    StripeConfig::new(secret_key.expose(), &secrets, &success_url, &cancel_url)
                        .and_then(|config| config.with_api_base(api_base))
                        .context("invalid Stripe settings (STRIPE_*)")?;
                (config, None)
            }
            Payments::Sandbox { port: sandbox_port } => {
                let webhook_url = format!("http://{}{WEBHOOK_PATH}", loopback(address));
                let (sandbox, webhook_secret) = start_sandbox(*sandbox_port, webhook_url).await?;
                let config = StripeConfig::new(
                    sandbox.secret_key(),
                    &webhook_secret,
                    &success_url,
                    &cancel_url,
                )
                .and_then(|config| config.with_api_base(sandbox.base_url()))
                .context("invalid Stripe settings (STRIPE_SUCCESS_URL/STRIPE_CANCEL_URL)")?;
                tracing::warn!(
                    sandbox = sandbox.base_url(),
                    "PAYMENTS ARE SIMULATED: STRIPE_SECRET_KEY is not set, so checkout uses the in-process Stripe sandbox at {} (no real money moves; pay with card 4242 4242 4242 4242)",
                    sandbox.base_url()
                );
                (config, Some(Arc::new(sandbox)))
            }
        };
        let gateway: Arc<dyn PaymentGateway> =
            Arc::new(StripeGateway::new(gateway).context("building the Stripe client")?);
        let hasher = Argon2Hasher::new().context("building the password hasher")?;

        let services = match store {
            Store::Postgres(store) => services_over(store, gateway, hasher),
            Store::Sqlite(store) => services_over(store, gateway, hasher),
        };

        let demo = if settings.seed_demo {
            demo::seed(&services)
                .await
                .context("seeding the demo data")?
        } else {
            DemoSeed::Disabled
        };

        let jwt_secret = match &settings.jwt_secret {
            Some(secret) => secret.clone(),
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random one for this run, so sign-ins end when the app restarts"
                );
                Secret::new(random_token())
            }
        };

        let mut api = ApiSettings::new(success_url);
        api.cookie_secure = settings.cookie_secure;
        api.cors_origins = settings.cors_origins.clone();
        api.shutdown_timeout = Duration::from_secs(settings.shutdown_timeout_secs);
        api.workers = settings.http_workers;
        let state = ApiState::new(Arc::new(services), jwt_secret.expose().as_bytes(), api);
        let server = lms_actix_api::run(listener, state).context("starting the HTTP server")?;
        tracing::info!(%address, url = %base_url, database = %settings.database.describe(), "listening");
        Ok(Self {
            port,
            base_url,
            server,
            sandbox,
            demo,
        })
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where a browser on this machine reaches the app, e.g. `http://localhost:8080` (no
    /// trailing slash). The default success and cancel pages live under it.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The in-process Stripe sandbox, in sandbox mode.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_deref()
    }

    /// The sandbox, shareable past [`Application::run_until_stopped`] (which consumes `self`).
    pub fn sandbox_handle(&self) -> Option<Arc<Sandbox>> {
        self.sandbox.clone()
    }

    /// What seeding did.
    pub fn demo_seed(&self) -> DemoSeed {
        self.demo
    }

    /// Stops the server from elsewhere (`handle.stop(true).await` drains requests first).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGINT/SIGTERM, or [`Application::server_handle`]), then stops
    /// the sandbox.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let outcome = self.server.await;
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

/// Applies the pending migrations of the configured database; returns the versions applied.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings) -> anyhow::Result<Vec<String>> {
    match &settings.database {
        Database::Postgres(url) => lms_postgres::run_migrations(url.expose())
            .await
            .context("running the PostgreSQL migrations (DATABASE_URL)"),
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

/// Installs the global tracing subscriber (`RUST_LOG` filter, default `info`). A second call
/// is a no-op.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: piped or redirected logs stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    match &settings.database {
        Database::Postgres(url) => {
            if settings.run_migrations {
                let applied = migrate(settings).await?;
                tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
            }
            let store = PgStore::connect_lazy(
                url.expose(),
                settings.database_pool_size,
                DEFAULT_ACQUIRE_TIMEOUT,
            );
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
                    migrate: settings.run_migrations,
                    ..SqliteOptions::default()
                },
            )
            .await
            .with_context(|| format!("cannot open the SQLite database {target} (DATABASE_URL)"))?;
            Ok(Store::Sqlite(store))
        }
    }
}

fn services_over<S>(store: S, gateway: Arc<dyn PaymentGateway>, hasher: Argon2Hasher) -> Services
where
    S: UserRepo + CourseRepo + PurchaseRepo + StorageHealth + Clone,
{
    Services::with_store(
        store,
        gateway,
        Arc::new(hasher),
        Arc::new(SystemClock),
        lms_application::Settings::default(),
    )
}

/// Starts the sandbox with a key and a webhook signing secret made for this run; returns the
/// secret for the adapter that verifies the sandbox's webhooks (it is never logged).
async fn start_sandbox(port: u16, webhook_url: String) -> anyhow::Result<(Sandbox, String)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).with_context(|| {
        format!("cannot start the Stripe sandbox on 127.0.0.1:{port} (SANDBOX_PORT; 0 picks a free port)")
    })?;
    let webhook_secret = format!("whsec_{}", random_token());
    let config = SandboxConfig {
        secret_key: format!("sk_test_sandbox_{}", random_token()),
        webhook_secrets: vec![webhook_secret.clone()],
        webhook_url: Some(webhook_url),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start_on(listener, config)
        .await
        .context("starting the Stripe sandbox (SANDBOX_PORT)")?;
    Ok((sandbox, webhook_secret))
}

/// 256 random bits (two v4 UUIDs from the OS generator) as 64 hex characters.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
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
