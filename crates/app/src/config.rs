//! Settings, typed per concern and validated once, before anything binds a port or migrates.
//!
//! Sources, lowest first: built-in defaults < an optional TOML file (`APP_CONFIG_FILE`, else
//! `./config.toml` when present; nested keys such as `[http] port = 4000`, unknown keys refused)
//! < environment variables (flat names, see [`VARIABLES`]). A value set but empty is an error,
//! never "use the default". Every error is one [`ConfigError`] line naming the variable and the
//! fix; the binary exits with [`EX_CONFIG`].
//!
//! # Two payment modes, never chosen by accident
//! * **stripe**: real payments. `STRIPE_SECRET_KEY`, `STRIPE_WEBHOOK_SECRET`, `JWT_SECRET` and
//!   `DATABASE_URL` (PostgreSQL or an SQLite file) are required; cookies are `Secure`; no demo
//!   data. A live key additionally refuses loopback return URLs, loopback CORS origins, a
//!   non-https API base and insecure cookies.
//! * **demo**: the offline demo with simulated payments (the in-process Stripe sandbox, demo
//!   data with a public password). Only in a build with the `demo` feature.
//!
//! `APP_MODE` names the mode. Unset, a Stripe key means stripe, and *nothing configured at all*
//! means demo (the README's first command). Anything production-like configured without a key
//! (a PostgreSQL `DATABASE_URL`, a non-loopback `HOST`, `JWT_SECRET`, a webhook secret, a config
//! file, ...) stops start-up: a deployment whose key went missing must not take simulated
//! payments on a real database.

use crate::workers::{ReconcileRun, WorkerSettings};
use config::{Config, File, FileFormat};
use lms_actix_api::limits::{parse_networks, RateLimit, RateLimits};
use lms_actix_api::SessionKey;
use lms_password_argon2::HashingLimits;
use lms_stripe_http::{CheckoutOptions, KeyMode, StripeConfig};
use serde::Deserialize;
use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The exit status of a configuration error (`EX_CONFIG` of sysexits.h).
pub const EX_CONFIG: u8 = 78;

/// One configuration mistake: the variable at fault and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// A connection URL that may carry a password: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// One environment variable: its nested key in the file, other names the original backend
/// used for it, and what it means when unset.
#[derive(Debug)]
pub struct Variable {
    pub env: &'static str,
    pub key: &'static str,
    pub aliases: &'static [&'static str],
}

const fn var(env: &'static str, key: &'static str) -> Variable {
    Variable {
        env,
        key,
        aliases: &[],
    }
}

/// Every variable the app reads (`.env.example` documents each one).
pub const VARIABLES: &[Variable] = &[
    var("APP_MODE", "mode"),
    var("HOST", "http.host"),
    var("PORT", "http.port"),
    Variable {
        env: "CORS_ORIGINS",
        key: "http.cors_origins",
        aliases: &["CLIENT_URL"],
    },
    var("COOKIE_SECURE", "http.cookie_secure"),
    var("TRUSTED_PROXIES", "http.trusted_proxies"),
    var("SHUTDOWN_TIMEOUT_SECS", "http.shutdown_timeout_secs"),
    var("HTTP_WORKERS", "http.workers"),
    var("LOG_FORMAT", "log.format"),
    var("METRICS_ADDR", "metrics.addr"),
    var("DATABASE_URL", "database.url"),
    var("DATABASE_POOL_SIZE", "database.pool_size"),
    var("RUN_MIGRATIONS", "database.run_migrations"),
    var("DATABASE_STATEMENT_TIMEOUT", "database.statement_timeout"),
    var("DATABASE_LOCK_TIMEOUT", "database.lock_timeout"),
    var(
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT",
        "database.idle_in_transaction_timeout",
    ),
    var("DATABASE_GROUP_COMMIT", "database.group_commit"),
    Variable {
        env: "JWT_SECRET",
        key: "auth.jwt_secret",
        aliases: &["SECRET_KEY"],
    },
    var("STRIPE_SECRET_KEY", "stripe.secret_key"),
    var("STRIPE_WEBHOOK_SECRET", "stripe.webhook_secret"),
    var("STRIPE_SUCCESS_URL", "stripe.success_url"),
    var("STRIPE_CANCEL_URL", "stripe.cancel_url"),
    var("STRIPE_API_BASE", "stripe.api_base"),
    var(
        "STRIPE_ALLOW_PROMOTION_CODES",
        "stripe.allow_promotion_codes",
    ),
    var("STRIPE_AUTOMATIC_TAX", "stripe.automatic_tax"),
    var("STRIPE_TAX_BEHAVIOR", "stripe.tax_behavior"),
    var("STRIPE_ADAPTIVE_PRICING", "stripe.adaptive_pricing"),
    var("SANDBOX_PORT", "sandbox.port"),
    var("SANDBOX_HOST", "sandbox.host"),
    var("SANDBOX_PUBLIC_URL", "sandbox.public_url"),
    var("SANDBOX_TAX_RATE_BPS", "sandbox.tax_rate_bps"),
    var("SEED_DEMO", "sandbox.seed_demo"),
    var(
        "PASSWORD_HASH_CONCURRENCY",
        "limits.password_hash_concurrency",
    ),
    var("PASSWORD_HASH_MAX_WAIT", "limits.password_hash_max_wait"),
    var("SIGN_IN_LIMIT_PER_IP", "limits.sign_in_per_ip"),
    var("SIGN_IN_LIMIT_PER_EMAIL", "limits.sign_in_per_email"),
    var("SIGN_UP_LIMIT_PER_IP", "limits.sign_up_per_ip"),
    var(
        "GATEWAY_SYNC_MIN_INTERVAL",
        "limits.gateway_sync_min_interval",
    ),
    var("RECONCILE_INTERVAL", "operations.reconcile_interval"),
    var("RECONCILE_OLDER_THAN", "operations.reconcile_older_than"),
    var("RECONCILE_BATCH", "operations.reconcile_batch"),
    var("RECONCILE_RATE", "operations.reconcile_rate"),
    var(
        "EVENT_PAYLOAD_RETENTION_DAYS",
        "operations.event_payload_retention_days",
    ),
    var(
        "AUTO_REFUND_DOUBLE_PAYMENTS",
        "operations.auto_refund_double_payments",
    ),
    var(
        "SELF_REFUND_WINDOW_DAYS",
        "operations.self_refund_window_days",
    ),
];

/// The default database of the demo, relative to the working directory.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/lms.db";
/// The default port of the in-process Stripe sandbox (demo mode).
pub const DEFAULT_SANDBOX_PORT: u16 = 12111;
pub const DEFAULT_PORT: u16 = 4000;
pub const DEFAULT_CORS_ORIGIN: &str = "http://localhost:5173";
/// Stripe-mode defaults of the frontend pages (a separately served frontend).
pub const FRONTEND_SUCCESS_URL: &str =
    "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}";
pub const FRONTEND_CANCEL_URL: &str = "http://localhost:5173/payment/cancel";
/// The placeholder value `.env.example` shows for `JWT_SECRET`: never a real key.
pub const JWT_SECRET_PLACEHOLDER: &str = "change-me-change-me-change-me-change-me";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, for log shippers (Stripe-mode default).
    Json,
    /// One human-readable line an event (demo default).
    Text,
    /// Multi-line, for reading one request closely.
    Pretty,
}

/// Where the data lives, from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `postgres://` or `postgresql://` (the URL may hold a password: redacted).
    Postgres(RedactedUrl),
    /// What [`lms_sqlite::SqliteStore::open`] accepts: `sqlite://path` or `sqlite::memory:`.
    Sqlite(String),
}

impl Database {
    /// Parses `DATABASE_URL`: an explicit scheme, no quotes, no white space.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `DATABASE_URL`.
    pub fn parse(raw: &str) -> Result<Self> {
        let fail = |problem: String| Err(ConfigError::new("DATABASE_URL", problem));
        if raw.contains(['"', '\'']) {
            return fail(
                "contains quote characters (an env file kept them?): remove the quotes around the URL"
                    .to_owned(),
            );
        }
        if raw.contains(char::is_whitespace) {
            return fail("contains white space: remove it".to_owned());
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            // The adapter's own reading (sslmode, sslrootcert, ...), before anything connects.
            lms_postgres::check_database_url(raw).map_err(|err| {
                // The adapter's reason is in the cause chain; the URL itself never is.
                let reason = err
                    .source()
                    .map_or_else(|| err.to_string(), lms_ports::chain_text);
                ConfigError::new("DATABASE_URL", reason)
            })?;
            return Ok(Self::Postgres(RedactedUrl(raw.to_owned())));
        }
        if raw == "sqlite::memory:" {
            return Ok(Self::Sqlite(":memory:".to_owned()));
        }
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.split('?').next().unwrap_or_default().is_empty() {
                return fail("names an SQLite database without a path: use sqlite://data/lms.db or sqlite:///var/lib/lms/lms.db".to_owned());
            }
            return Ok(Self::Sqlite(raw.to_owned()));
        }
        fail(format!(
            "must start with postgres://, postgresql:// or sqlite:// (or be sqlite::memory:), got {:?}",
            scheme_of(raw)
        ))
    }

    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Sqlite(target) if target == ":memory:")
    }

    /// For logs: the SQLite target, or just `postgres` (the URL may hold a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(_) => "postgres".to_owned(),
            Self::Sqlite(target) => format!("sqlite {target}"),
        }
    }
}

/// What precedes the first `:`, for messages that must not echo a URL (it may hold a password).
fn scheme_of(raw: &str) -> String {
    match raw.split_once(':') {
        Some((scheme, _)) if scheme.len() <= 16 => format!("{scheme}:..."),
        _ => "a value without a scheme".to_owned(),
    }
}

/// How payments are taken.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Real Stripe: the adapter's configuration, validated.
    Stripe(Box<StripeConfig>),
    /// Simulated payments through the in-process sandbox.
    Demo(DemoSettings),
}

impl Mode {
    pub fn is_demo(&self) -> bool {
        matches!(self, Self::Demo(_))
    }

    /// What the database remembers about who wrote it.
    pub fn payments_mode(&self) -> lms_ports::PaymentsMode {
        match self {
            Self::Demo(_) => lms_ports::PaymentsMode::Sandbox,
            Self::Stripe(config) => match config.secret_key.mode() {
                KeyMode::Test => lms_ports::PaymentsMode::StripeTest,
                KeyMode::Live => lms_ports::PaymentsMode::StripeLive,
            },
        }
    }
}

/// The offline demo's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSettings {
    /// The sandbox's port (0: any free port).
    pub sandbox_port: u16,
    /// Where the sandbox listens: loopback unless a container publishes its port.
    pub sandbox_host: IpAddr,
    /// The sandbox's address as the customer's browser reaches it, for the payment page's
    /// links; `None`: the address it listens on.
    pub sandbox_public_url: Option<String>,
    /// Create the demo instructor and courses when absent.
    pub seed: bool,
    /// `None`: this app's own `/payment/success?session_id=...` page.
    pub success_url: Option<String>,
    /// `None`: this app's own `/payment/cancel` page.
    pub cancel_url: Option<String>,
    /// Promotion codes, automatic tax and Adaptive Pricing of every checkout, as in Stripe
    /// mode: the sandbox honours them.
    pub checkout: CheckoutOptions,
    /// The sandbox's flat tax rate in basis points (0 to 10000), for checkouts with automatic
    /// tax.
    pub tax_rate_bps: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    /// Frontend origins allowed to call with credentials.
    pub cors_origins: Vec<String>,
    /// Mark the session cookie `Secure` and send HSTS.
    pub cookie_secure: bool,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub shutdown_timeout: Duration,
    /// Worker threads; `None` for half the cores (at least one).
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub url: Database,
    pub pool_size: u32,
    pub run_migrations: bool,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
    /// PostgreSQL only (and there by default): with `Some(lanes)`, webhook deliveries that
    /// arrive together share one transaction, on `lanes` connections of their own per HTTP
    /// worker (`lms_postgres::PgStore::with_group_commit`).
    pub group_commit: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `None` only in demo mode: a random key is made for the run.
    pub jwt_secret: Option<SessionKey>,
}

/// Parses `N/PERIOD` (`10/1m`, `30/60s`, `5/1h`) into the HTTP adapter's limit, or `off`.
fn parse_rate_limit(variable: &'static str, raw: &str) -> Result<Option<RateLimit>> {
    if raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let invalid = || {
        ConfigError::new(
            variable,
            format!(
                "must be N/PERIOD with N at least 1, such as 10/1m or 30/1h, or off; got {raw:?}"
            ),
        )
    };
    let (count, period) = raw.split_once('/').ok_or_else(invalid)?;
    let count: u32 = count.trim().parse().map_err(|_| invalid())?;
    let period = humantime::parse_duration(period.trim()).map_err(|_| invalid())?;
    RateLimit::new(count, period).map(Some).ok_or_else(invalid)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    /// Password hashes computed at once, and how long a request waits for its turn.
    pub password_hashing: HashingLimits,
    /// Sign-in and sign-up attempts per client and per e-mail.
    pub rate_limits: RateLimits,
}

/// Everything the app is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    /// The use cases' own settings (e.g. how often a status poll may ask the gateway, whether
    /// a double payment is refunded automatically).
    pub use_cases: lms_use_cases::UseCaseSettings,
    /// The background workers (reconciler, payload pruner) and how a reconciliation pass runs.
    pub workers: WorkerSettings,
    pub log_format: LogFormat,
    /// Where Prometheus scrapes `/metrics` (a listener of its own); `None`: no metrics.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// The default metrics listener: loopback only, since the metrics are not for the public.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

/// The file's shape: one table per concern, every value a string (numbers and booleans are
/// accepted and read as their text), unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    mode: Option<String>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    stripe: RawStripe,
    #[serde(default)]
    sandbox: RawSandbox,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    operations: RawOperations,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    host: Option<String>,
    port: Option<String>,
    cors_origins: Option<String>,
    cookie_secure: Option<String>,
    trusted_proxies: Option<String>,
    shutdown_timeout_secs: Option<String>,
    workers: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    addr: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    pool_size: Option<String>,
    run_migrations: Option<String>,
    statement_timeout: Option<String>,
    lock_timeout: Option<String>,
    idle_in_transaction_timeout: Option<String>,
    group_commit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    jwt_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStripe {
    secret_key: Option<String>,
    webhook_secret: Option<String>,
    success_url: Option<String>,
    cancel_url: Option<String>,
    api_base: Option<String>,
    allow_promotion_codes: Option<String>,
    automatic_tax: Option<String>,
    tax_behavior: Option<String>,
    adaptive_pricing: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSandbox {
    port: Option<String>,
    host: Option<String>,
    public_url: Option<String>,
    tax_rate_bps: Option<String>,
    seed_demo: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    password_hash_concurrency: Option<String>,
    password_hash_max_wait: Option<String>,
    sign_in_per_ip: Option<String>,
    sign_in_per_email: Option<String>,
    sign_up_per_ip: Option<String>,
    gateway_sync_min_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperations {
    reconcile_interval: Option<String>,
    reconcile_older_than: Option<String>,
    reconcile_batch: Option<String>,
    reconcile_rate: Option<String>,
    event_payload_retention_days: Option<String>,
    auto_refund_double_payments: Option<String>,
    self_refund_window_days: Option<String>,
}

/// Whether this binary carries the sandbox and the demo data.
pub const DEMO_BUILT: bool = cfg!(feature = "demo");

impl Settings {
    /// Reads the process environment and the optional file.
    ///
    /// # Errors
    /// The first [`ConfigError`].
    pub fn load() -> Result<Self> {
        let file = match std::env::var_os("APP_CONFIG_FILE") {
            Some(path) if path.is_empty() => {
                return Err(ConfigError::new(
                    "APP_CONFIG_FILE",
                    "is set but empty: unset it or name a TOML file",
                ))
            }
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("config.toml")).filter(|path| path.exists()),
        };
        Self::from_sources(file.as_deref(), |name| std::env::var(name).ok())
    }

    /// Builds settings from explicit variables only: no file, no process environment.
    ///
    /// ```
    /// let settings = lms_app::Settings::from_pairs([("PORT", "0"), ("SANDBOX_PORT", "0")]).unwrap();
    /// assert!(settings.mode.is_demo());
    /// ```
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::from_sources(None, |name| map.get(name).cloned())
    }

    /// Builds settings from a file and an environment lookup (tests pass a map).
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_sources(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::resolve(file, env, DEMO_BUILT)
    }

    fn resolve(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        demo_built: bool,
    ) -> Result<Self> {
        let mut builder = Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        for variable in VARIABLES {
            if let Some(value) = env_value(variable, &env)? {
                builder = builder
                    .set_override(variable.key, value)
                    .map_err(|e| ConfigError::new(variable.env, e.to_string()))?;
            }
        }
        let file_error = |e: config::ConfigError| {
            ConfigError::new(
                "APP_CONFIG_FILE",
                format!(
                    "{} is unusable: {e} (keys are nested, e.g. [http] port = 4000; see .env.example)",
                    file.map_or_else(|| "the configuration".into(), |p| p.display().to_string())
                ),
            )
        };
        let raw: RawSettings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(file_error)?;
        Resolver {
            raw,
            from_file: file.is_some(),
            demo_built,
        }
        .settings()
    }
}

/// The value of a variable from the environment, under its own name or an alias (the two
/// disagreeing is an error: which one was meant is unknowable).
fn env_value(variable: &Variable, env: &impl Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let own = env(variable.env);
    for alias in variable.aliases {
        if let Some(value) = env(alias) {
            match &own {
                Some(own) if own != &value => {
                    return Err(ConfigError::new(
                        variable.env,
                        format!("{alias} is set too, to a different value: set only one of them"),
                    ))
                }
                Some(_) => {}
                None => return Ok(Some(value)),
            }
        }
    }
    Ok(own)
}

/// Turns the raw strings into typed settings, variable by variable.
struct Resolver {
    raw: RawSettings,
    from_file: bool,
    demo_built: bool,
}

/// A present value, trimmed; set-but-empty is an error.
fn given(variable: &'static str, value: Option<&String>) -> Result<Option<String>> {
    match value.map(|v| v.trim()) {
        None => Ok(None),
        Some("") => Err(ConfigError::new(
            variable,
            "is set but empty: unset it to use the default, or give a value",
        )),
        Some(value) => Ok(Some(value.to_owned())),
    }
}

fn parse_number<T>(
    variable: &'static str,
    raw: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + fmt::Display,
{
    raw.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                variable,
                format!(
                    "must be a whole number from {} to {}, got {raw:?}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn parse_flag(variable: &'static str, raw: &str) -> Result<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            variable,
            format!("must be true or false, got {raw:?}"),
        )),
    }
}

/// `off` (or `false`), `on` (or `true`: [`GROUP_COMMIT_LANES`] lanes), or a number of lanes.
fn parse_group_commit(raw: &str) -> Result<Option<usize>> {
    match raw.to_ascii_lowercase().as_str() {
        "off" | "false" => Ok(None),
        "on" | "true" => Ok(Some(GROUP_COMMIT_LANES)),
        _ => parse_number("DATABASE_GROUP_COMMIT", raw, 1..=64)
            .map(Some)
            .map_err(|_| {
                ConfigError::new(
                    "DATABASE_GROUP_COMMIT",
                    format!(
                        "must be off, on, or a number of connections from 1 to 64, got {raw:?}"
                    ),
                )
            }),
    }
}

/// The lanes of `DATABASE_GROUP_COMMIT=on`.
pub const GROUP_COMMIT_LANES: usize = 2;

fn parse_duration(variable: &'static str, raw: &str) -> Result<Duration> {
    humantime::parse_duration(raw).map_err(|_| {
        ConfigError::new(
            variable,
            format!("must be a duration such as 500ms, 15s or 2m, got {raw:?}"),
        )
    })
}

/// A duration within `range`; `example` completes "must be a duration from A to B ...".
fn parse_bounded_duration(
    variable: &'static str,
    raw: &str,
    range: std::ops::RangeInclusive<Duration>,
    example: &str,
) -> Result<Duration> {
    humantime::parse_duration(raw)
        .ok()
        .filter(|duration| range.contains(duration))
        .ok_or_else(|| {
            ConfigError::new(
                variable,
                format!(
                    "must be a duration from {} to {} {example}, got {raw:?}",
                    humantime::format_duration(*range.start()),
                    humantime::format_duration(*range.end()),
                ),
            )
        })
}

fn parse_host(raw: &str) -> Result<IpAddr> {
    parse_listen_address("HOST", raw)
}

fn parse_listen_address(variable: &'static str, raw: &str) -> Result<IpAddr> {
    if raw.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    raw.parse().map_err(|_| {
        ConfigError::new(
            variable,
            format!("must be an IP address to listen on (127.0.0.1, 0.0.0.0, ::), got {raw:?}"),
        )
    })
}

/// `SANDBOX_PUBLIC_URL`: an `http(s)://` origin, optionally with a path prefix, that links can
/// be built on (no query, no fragment); a trailing `/` is dropped.
fn parse_public_url(raw: &str) -> Result<String> {
    let fail = |problem: &str| {
        Err(ConfigError::new(
            "SANDBOX_PUBLIC_URL",
            format!("{problem}, e.g. http://localhost:12111, got {raw:?}"),
        ))
    };
    let Some(rest) = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
    else {
        return fail("must start with http:// or https://");
    };
    if rest.split('/').next().unwrap_or_default().is_empty() {
        return fail("must name a host");
    }
    if raw.contains(['?', '#']) || raw.contains(char::is_whitespace) {
        return fail("must hold no query, fragment or white space");
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn parse_origins(variable: &'static str, raw: &str) -> Result<Vec<String>> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|origin| {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['/', '*']) => {
                    Ok(origin.to_owned())
                }
                _ => Err(ConfigError::new(
                    variable,
                    format!("must be comma-separated origins like https://app.example.com (no path, no wildcard), got {origin:?}"),
                )),
            }
        })
        .collect()
}

fn parse_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>> {
    parse_networks(raw).map_err(|err| {
        ConfigError::new(
            "TRUSTED_PROXIES",
            format!("{err}: give comma-separated IP addresses or networks such as 10.0.0.0/8"),
        )
    })
}

/// Whether a URL or origin points at this machine: fine for a laptop, a mistake with live money.
fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// The Stripe adapter's refusal, named by the variable that carries the bad value.
fn stripe_error(err: lms_stripe_http::ConfigError) -> ConfigError {
    use lms_stripe_http::ConfigError as E;
    let variable = match &err {
        E::InvalidSecretKey => "STRIPE_SECRET_KEY",
        E::NoWebhookSecret | E::InvalidWebhookSecret => "STRIPE_WEBHOOK_SECRET",
        E::SuccessUrlWithoutPlaceholder => "STRIPE_SUCCESS_URL",
        E::InvalidUrl { field, .. } | E::Missing(field) => field,
        E::InvalidRetryPolicy(_) => "STRIPE_API_BASE",
    };
    ConfigError::new(variable, format!("{err}"))
}

impl Resolver {
    fn settings(self) -> Result<Settings> {
        let mode = self.mode()?;
        let demo = mode.is_demo();
        let http = self.http(demo)?;
        let database = self.database(demo)?;
        let auth = AuthSettings {
            jwt_secret: self.jwt_secret(demo)?,
        };
        let log_format = match given("LOG_FORMAT", self.raw.log.format.as_ref())?
            .map(|f| f.to_ascii_lowercase())
            .as_deref()
        {
            None if demo => LogFormat::Text,
            None => LogFormat::Json,
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("must be json, text or pretty, got {other:?}"),
                ))
            }
        };
        let settings = Settings {
            limits: self.limits()?,
            use_cases: self.use_cases()?,
            workers: self.workers()?,
            metrics_addr: self.metrics_addr()?,
            mode,
            http,
            database,
            auth,
            log_format,
        };
        check_live(&settings)?;
        Ok(settings)
    }

    /// The payment mode, explicit or inferred; see the module documentation.
    fn mode(&self) -> Result<Mode> {
        let raw = &self.raw;
        let key = given("STRIPE_SECRET_KEY", raw.stripe.secret_key.as_ref())?;
        let explicit = given("APP_MODE", raw.mode.as_ref())?.map(|m| m.to_ascii_lowercase());
        let demo = match (explicit.as_deref(), &key) {
            (Some("stripe"), _) => false,
            (Some("demo"), Some(_)) => {
                return Err(ConfigError::new(
                    "APP_MODE",
                    "is demo but STRIPE_SECRET_KEY is set: unset the key for simulated payments, or set APP_MODE=stripe",
                ))
            }
            (Some("demo"), None) => true,
            (Some(other), _) => {
                return Err(ConfigError::new(
                    "APP_MODE",
                    format!("must be stripe (real payments) or demo (simulated payments), got {other:?}"),
                ))
            }
            (None, Some(_)) => false,
            (None, None) => {
                let production_like = self.production_like()?;
                if !production_like.is_empty() {
                    return Err(ConfigError::new(
                        "APP_MODE",
                        format!(
                            "no payment mode chosen: STRIPE_SECRET_KEY is not set, but {} look like a deployment; set STRIPE_SECRET_KEY (and APP_MODE=stripe) for real payments, or APP_MODE=demo for simulated payments on purpose",
                            production_like.join(", ")
                        ),
                    ));
                }
                true
            }
        };
        if demo {
            self.demo_mode().map(Mode::Demo)
        } else {
            self.stripe_mode(key)
                .map(|config| Mode::Stripe(Box::new(config)))
        }
    }

    /// What was configured that only a real deployment configures.
    fn production_like(&self) -> Result<Vec<&'static str>> {
        let raw = &self.raw;
        let mut found = Vec::new();
        if self.from_file {
            found.push("a configuration file");
        }
        if let Some(url) = given("DATABASE_URL", raw.database.url.as_ref())? {
            if matches!(Database::parse(&url), Ok(Database::Postgres(_))) {
                found.push("DATABASE_URL (PostgreSQL)");
            }
        }
        if let Some(host) = given("HOST", raw.http.host.as_ref())? {
            if !parse_host(&host)?.is_loopback() {
                found.push("HOST (not loopback)");
            }
        }
        if let Some(host) = given("SANDBOX_HOST", raw.sandbox.host.as_ref())? {
            if !parse_listen_address("SANDBOX_HOST", &host)?.is_loopback() {
                found.push("SANDBOX_HOST (not loopback)");
            }
        }
        let set = [
            ("JWT_SECRET", &raw.auth.jwt_secret),
            ("STRIPE_WEBHOOK_SECRET", &raw.stripe.webhook_secret),
            ("STRIPE_API_BASE", &raw.stripe.api_base),
            ("COOKIE_SECURE", &raw.http.cookie_secure),
            ("TRUSTED_PROXIES", &raw.http.trusted_proxies),
        ];
        found.extend(
            set.iter()
                .filter(|(_, v)| v.is_some())
                .map(|(name, _)| *name),
        );
        Ok(found)
    }

    fn demo_mode(&self) -> Result<DemoSettings> {
        if !self.demo_built {
            return Err(ConfigError::new(
                "APP_MODE",
                "demo needs a build with the `demo` feature (the sandbox and the demo data), and this binary has none: set APP_MODE=stripe with STRIPE_SECRET_KEY, or run `cargo run --release` from the repository",
            ));
        }
        let raw = &self.raw;
        if raw.stripe.webhook_secret.is_some() {
            return Err(ConfigError::new(
                "STRIPE_WEBHOOK_SECRET",
                "is set but the mode is demo (no STRIPE_SECRET_KEY): set both for real payments, or neither for simulated ones",
            ));
        }
        let url = |variable, value: Option<&String>| -> Result<Option<String>> {
            let Some(url) = given(variable, value)? else {
                return Ok(None);
            };
            lms_stripe_http::check_return_url(variable, &url).map_err(stripe_error)?;
            Ok(Some(url))
        };
        let success_url = url("STRIPE_SUCCESS_URL", raw.stripe.success_url.as_ref())?;
        if let Some(success) = &success_url {
            if !success.contains(lms_stripe_http::CHECKOUT_SESSION_ID_PLACEHOLDER) {
                return Err(stripe_error(
                    lms_stripe_http::ConfigError::SuccessUrlWithoutPlaceholder,
                ));
            }
        }
        Ok(DemoSettings {
            sandbox_port: match given("SANDBOX_PORT", raw.sandbox.port.as_ref())? {
                Some(port) => parse_number("SANDBOX_PORT", &port, 0..=u16::MAX)?,
                None => DEFAULT_SANDBOX_PORT,
            },
            sandbox_host: match given("SANDBOX_HOST", raw.sandbox.host.as_ref())? {
                Some(host) => parse_listen_address("SANDBOX_HOST", &host)?,
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            },
            sandbox_public_url: given("SANDBOX_PUBLIC_URL", raw.sandbox.public_url.as_ref())?
                .map(|url| parse_public_url(&url))
                .transpose()?,
            seed: match given("SEED_DEMO", raw.sandbox.seed_demo.as_ref())? {
                Some(flag) => parse_flag("SEED_DEMO", &flag)?,
                None => true,
            },
            success_url,
            cancel_url: url("STRIPE_CANCEL_URL", raw.stripe.cancel_url.as_ref())?,
            checkout: self.checkout_options()?,
            tax_rate_bps: match given("SANDBOX_TAX_RATE_BPS", raw.sandbox.tax_rate_bps.as_ref())? {
                Some(bps) => parse_number("SANDBOX_TAX_RATE_BPS", &bps, 0..=10_000)?,
                None => 0,
            },
        })
    }

    /// `STRIPE_ALLOW_PROMOTION_CODES`, `STRIPE_AUTOMATIC_TAX`, `STRIPE_TAX_BEHAVIOR` and
    /// `STRIPE_ADAPTIVE_PRICING`, read by the Stripe adapter's own rules (in both modes).
    fn checkout_options(&self) -> Result<CheckoutOptions> {
        let stripe = &self.raw.stripe;
        CheckoutOptions::from_lookup(|name| {
            match name {
                "STRIPE_ALLOW_PROMOTION_CODES" => &stripe.allow_promotion_codes,
                "STRIPE_AUTOMATIC_TAX" => &stripe.automatic_tax,
                "STRIPE_TAX_BEHAVIOR" => &stripe.tax_behavior,
                "STRIPE_ADAPTIVE_PRICING" => &stripe.adaptive_pricing,
                _ => &None,
            }
            .clone()
        })
        .map_err(|err| ConfigError::new(err.variable, err.problem))
    }

    fn stripe_mode(&self, key: Option<String>) -> Result<StripeConfig> {
        let raw = &self.raw;
        let key = key.ok_or_else(|| {
            ConfigError::new(
                "STRIPE_SECRET_KEY",
                "is required with APP_MODE=stripe: the secret key from the Stripe Dashboard (Developers -> API keys)",
            )
        })?;
        let required = |variable, value: Option<&String>, what: &str| {
            given(variable, value)?.ok_or_else(|| {
                ConfigError::new(
                    variable,
                    format!("is required with Stripe payments: {what}"),
                )
            })
        };
        let webhook = required(
            "STRIPE_WEBHOOK_SECRET",
            raw.stripe.webhook_secret.as_ref(),
            "the endpoint's signing secret (whsec_...), comma-separated while rotating",
        )?;
        for (variable, value) in [
            ("SANDBOX_PORT", &raw.sandbox.port),
            ("SANDBOX_HOST", &raw.sandbox.host),
            ("SANDBOX_PUBLIC_URL", &raw.sandbox.public_url),
            ("SANDBOX_TAX_RATE_BPS", &raw.sandbox.tax_rate_bps),
            ("SEED_DEMO", &raw.sandbox.seed_demo),
        ] {
            if value.is_some() {
                return Err(ConfigError::new(
                    variable,
                    "belongs to the offline demo (APP_MODE=demo) and is refused with Stripe payments: unset it",
                ));
            }
        }
        let success = given("STRIPE_SUCCESS_URL", raw.stripe.success_url.as_ref())?
            .unwrap_or_else(|| FRONTEND_SUCCESS_URL.to_owned());
        let cancel = given("STRIPE_CANCEL_URL", raw.stripe.cancel_url.as_ref())?
            .unwrap_or_else(|| FRONTEND_CANCEL_URL.to_owned());
        let mut config =
            StripeConfig::new(&key, &webhook, &success, &cancel).map_err(stripe_error)?;
        if let Some(base) = given("STRIPE_API_BASE", raw.stripe.api_base.as_ref())? {
            config = config.with_api_base(&base).map_err(stripe_error)?;
        }
        config.checkout = self.checkout_options()?;
        Ok(config)
    }

    fn http(&self, demo: bool) -> Result<HttpSettings> {
        let raw = &self.raw.http;
        let host = match given("HOST", raw.host.as_ref())? {
            Some(host) => parse_host(&host)?,
            None if demo => IpAddr::V4(Ipv4Addr::LOCALHOST),
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        Ok(HttpSettings {
            host,
            port: match given("PORT", raw.port.as_ref())? {
                Some(port) => parse_number("PORT", &port, 0..=u16::MAX)?,
                None => DEFAULT_PORT,
            },
            cors_origins: parse_origins(
                "CORS_ORIGINS",
                &given("CORS_ORIGINS", raw.cors_origins.as_ref())?
                    .unwrap_or_else(|| DEFAULT_CORS_ORIGIN.to_owned()),
            )?,
            cookie_secure: match given("COOKIE_SECURE", raw.cookie_secure.as_ref())? {
                Some(flag) => parse_flag("COOKIE_SECURE", &flag)?,
                None => !demo,
            },
            trusted_proxies: match given("TRUSTED_PROXIES", raw.trusted_proxies.as_ref())? {
                Some(list) => parse_proxies(&list)?,
                None => Vec::new(),
            },
            shutdown_timeout: Duration::from_secs(
                match given("SHUTDOWN_TIMEOUT_SECS", raw.shutdown_timeout_secs.as_ref())? {
                    Some(secs) => parse_number("SHUTDOWN_TIMEOUT_SECS", &secs, 0..=3600)?,
                    None => 30,
                },
            ),
            workers: given("HTTP_WORKERS", raw.workers.as_ref())?
                .map(|n| parse_number("HTTP_WORKERS", &n, 1..=256))
                .transpose()?,
        })
    }

    fn database(&self, demo: bool) -> Result<DatabaseSettings> {
        let raw = &self.raw.database;
        let url = match given("DATABASE_URL", raw.url.as_ref())? {
            Some(url) => Database::parse(&url)?,
            None if demo => Database::parse(DEFAULT_SQLITE_URL)?,
            None => {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "is required with Stripe payments: postgres://user:password@host:5432/db (or sqlite:///path/lms.db for one instance)",
                ))
            }
        };
        if url.is_memory() && !demo {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "sqlite::memory: loses every purchase when the process ends and is only for APP_MODE=demo: use PostgreSQL or an SQLite file",
            ));
        }
        let timeout = |variable, value: Option<&String>, default: Duration| -> Result<Duration> {
            given(variable, value)?.map_or(Ok(default), |raw| parse_duration(variable, &raw))
        };
        let defaults = lms_postgres::PgConnectionOptions::default();
        let on_postgres = matches!(url, Database::Postgres(_));
        let group_commit = match given("DATABASE_GROUP_COMMIT", raw.group_commit.as_ref())? {
            Some(raw) => parse_group_commit(&raw)?,
            // Grouped on PostgreSQL unless turned off: past the database's commit rate, at
            // less CPU per event (`crates/bench/README.md`), with every guarantee of a
            // transaction per event (`lms_postgres`'s `group_commit` module).
            None => on_postgres.then_some(GROUP_COMMIT_LANES),
        };
        if group_commit.is_some() && !on_postgres {
            return Err(ConfigError::new(
                "DATABASE_GROUP_COMMIT",
                "groups PostgreSQL commits; SQLite writes one transaction at a time whatever this says: unset it, or use a postgres:// DATABASE_URL",
            ));
        }
        Ok(DatabaseSettings {
            url,
            pool_size: match given("DATABASE_POOL_SIZE", raw.pool_size.as_ref())? {
                Some(size) => parse_number("DATABASE_POOL_SIZE", &size, 1..=1000)?,
                None => 10,
            },
            run_migrations: match given("RUN_MIGRATIONS", raw.run_migrations.as_ref())? {
                Some(flag) => parse_flag("RUN_MIGRATIONS", &flag)?,
                None => true,
            },
            statement_timeout: timeout(
                "DATABASE_STATEMENT_TIMEOUT",
                raw.statement_timeout.as_ref(),
                defaults.statement_timeout,
            )?,
            lock_timeout: timeout(
                "DATABASE_LOCK_TIMEOUT",
                raw.lock_timeout.as_ref(),
                defaults.lock_timeout,
            )?,
            idle_in_transaction_timeout: timeout(
                "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT",
                raw.idle_in_transaction_timeout.as_ref(),
                defaults.idle_in_transaction_timeout,
            )?,
            group_commit,
        })
    }

    fn jwt_secret(&self, demo: bool) -> Result<Option<SessionKey>> {
        match given("JWT_SECRET", self.raw.auth.jwt_secret.as_ref())? {
            Some(raw) => SessionKey::parse(&raw)
                .map(Some)
                .map_err(|e| ConfigError::new("JWT_SECRET", format!("{e}; generate one with: openssl rand -hex 32"))),
            None if demo => Ok(None),
            None => Err(ConfigError::new(
                "JWT_SECRET",
                "is required with Stripe payments: at least 32 random bytes, e.g. openssl rand -hex 32",
            )),
        }
    }

    fn limits(&self) -> Result<LimitSettings> {
        let raw = &self.raw.limits;
        let defaults = RateLimits::default();
        let limit = |variable, value: Option<&String>, default: Option<RateLimit>| {
            given(variable, value)?.map_or(Ok(default), |raw| parse_rate_limit(variable, &raw))
        };
        let hashing = HashingLimits::default();
        Ok(LimitSettings {
            password_hashing: HashingLimits {
                max_concurrent: match given(
                    "PASSWORD_HASH_CONCURRENCY",
                    raw.password_hash_concurrency.as_ref(),
                )? {
                    Some(n) => parse_number("PASSWORD_HASH_CONCURRENCY", &n, 1..=256)?,
                    None => hashing.max_concurrent,
                },
                max_wait: match given(
                    "PASSWORD_HASH_MAX_WAIT",
                    raw.password_hash_max_wait.as_ref(),
                )? {
                    Some(wait) => parse_duration("PASSWORD_HASH_MAX_WAIT", &wait)?,
                    None => hashing.max_wait,
                },
            },
            rate_limits: RateLimits {
                sign_in_per_ip: limit(
                    "SIGN_IN_LIMIT_PER_IP",
                    raw.sign_in_per_ip.as_ref(),
                    defaults.sign_in_per_ip,
                )?,
                sign_in_per_email: limit(
                    "SIGN_IN_LIMIT_PER_EMAIL",
                    raw.sign_in_per_email.as_ref(),
                    defaults.sign_in_per_email,
                )?,
                sign_up_per_ip: limit(
                    "SIGN_UP_LIMIT_PER_IP",
                    raw.sign_up_per_ip.as_ref(),
                    defaults.sign_up_per_ip,
                )?,
                ..defaults
            },
        })
    }

    /// `METRICS_ADDR`: an address to listen on; empty or `off` turns metrics off.
    fn metrics_addr(&self) -> Result<Option<std::net::SocketAddr>> {
        let raw = match self.raw.metrics.addr.as_deref().map(str::trim) {
            None => DEFAULT_METRICS_ADDR,
            Some(off) if off.is_empty() || off.eq_ignore_ascii_case("off") => return Ok(None),
            Some(addr) => addr,
        };
        raw.parse().map(Some).map_err(|_| {
            ConfigError::new(
                "METRICS_ADDR",
                format!(
                    "must be an address to listen on such as 127.0.0.1:9464, or off; got {raw:?}"
                ),
            )
        })
    }

    fn use_cases(&self) -> Result<lms_use_cases::UseCaseSettings> {
        const VARIABLE: &str = "GATEWAY_SYNC_MIN_INTERVAL";
        let mut settings = lms_use_cases::UseCaseSettings::default();
        if let Some(raw) = given(VARIABLE, self.raw.limits.gateway_sync_min_interval.as_ref())? {
            let interval = time::Duration::try_from(parse_duration(VARIABLE, &raw)?)
                .map_err(|_| ConfigError::new(VARIABLE, "is too long"))?;
            settings = settings
                .with_gateway_sync_min_interval(interval)
                .map_err(|err| ConfigError::new(VARIABLE, err.to_string()))?;
        }
        const REFUND: &str = "AUTO_REFUND_DOUBLE_PAYMENTS";
        if let Some(flag) = given(
            REFUND,
            self.raw.operations.auto_refund_double_payments.as_ref(),
        )? {
            settings = settings.with_auto_refund_double_payments(parse_flag(REFUND, &flag)?);
        }
        const WINDOW: &str = "SELF_REFUND_WINDOW_DAYS";
        if let Some(raw) = given(WINDOW, self.raw.operations.self_refund_window_days.as_ref())? {
            let days = raw.parse::<u16>().ok().filter(|days| *days <= 365).ok_or_else(|| {
                ConfigError::new(
                    WINDOW,
                    format!("must be a whole number of days from 1 to 365, or 0 for no refunds requested by buyers, got {raw:?}"),
                )
            })?;
            let window = (days > 0).then(|| time::Duration::days(i64::from(days)));
            settings = settings
                .with_self_refund_window(window)
                .map_err(|err| ConfigError::new(WINDOW, err.to_string()))?;
        }
        Ok(settings)
    }

    /// The reconciler and the payload pruner: on by default in both modes (in the demo the
    /// reconciler asks the in-process sandbox, the production code path).
    fn workers(&self) -> Result<WorkerSettings> {
        let raw = &self.raw.operations;
        let defaults = WorkerSettings::default();
        let reconcile_every = match given("RECONCILE_INTERVAL", raw.reconcile_interval.as_ref())? {
            None => defaults.reconcile_every,
            Some(off) if off.eq_ignore_ascii_case("off") => None,
            Some(every) => Some(parse_bounded_duration(
                "RECONCILE_INTERVAL",
                &every,
                Duration::from_secs(1)..=Duration::from_secs(24 * 60 * 60),
                "such as 5m, or off to run no background reconciler",
            )?),
        };
        let older_than = match given("RECONCILE_OLDER_THAN", raw.reconcile_older_than.as_ref())? {
            None => ReconcileRun::DEFAULT_OLDER_THAN,
            Some(age) => parse_bounded_duration(
                "RECONCILE_OLDER_THAN",
                &age,
                Duration::ZERO..=crate::workers::days(7),
                "such as 30m (how long a purchase stays pending before Stripe is asked about it)",
            )?,
        };
        let batch = match given("RECONCILE_BATCH", raw.reconcile_batch.as_ref())? {
            None => ReconcileRun::DEFAULT_BATCH,
            Some(batch) => parse_number("RECONCILE_BATCH", &batch, 1..=ReconcileRun::MAX_BATCH)?,
        };
        let rate = match given("RECONCILE_RATE", raw.reconcile_rate.as_ref())? {
            None => ReconcileRun::DEFAULT_RATE,
            Some(rate) => {
                let rate = parse_number("RECONCILE_RATE", &rate, 1..=ReconcileRun::MAX_RATE)?;
                std::num::NonZeroU32::new(rate).unwrap_or(ReconcileRun::DEFAULT_RATE)
            }
        };
        let retention_days = match given(
            "EVENT_PAYLOAD_RETENTION_DAYS",
            raw.event_payload_retention_days.as_ref(),
        )? {
            None => WorkerSettings::DEFAULT_PAYLOAD_RETENTION_DAYS,
            Some(days) => parse_number("EVENT_PAYLOAD_RETENTION_DAYS", &days, 1..=3650)?,
        };
        Ok(WorkerSettings {
            reconcile_every,
            reconcile: ReconcileRun {
                older_than,
                batch,
                rate,
            },
            prune_every: defaults.prune_every,
            payload_retention: crate::workers::days(retention_days),
        })
    }
}

/// A live key moves real money: return URLs, CORS origins and the API base must be real ones,
/// and the session cookie must be `Secure`.
fn check_live(settings: &Settings) -> Result<()> {
    let Mode::Stripe(stripe) = &settings.mode else {
        return Ok(());
    };
    if stripe.secret_key.mode() != KeyMode::Live {
        return Ok(());
    }
    let fix = "a live Stripe key needs the public address of your frontend";
    if is_loopback_url(&stripe.success_url) {
        return Err(ConfigError::new(
            "STRIPE_SUCCESS_URL",
            format!("points at this machine (localhost): {fix}, e.g. https://learn.example.com/payment/success?session_id={{CHECKOUT_SESSION_ID}}"),
        ));
    }
    if is_loopback_url(&stripe.cancel_url) {
        return Err(ConfigError::new(
            "STRIPE_CANCEL_URL",
            format!("points at this machine (localhost): {fix}, e.g. https://learn.example.com/payment/cancel"),
        ));
    }
    if let Some(origin) = settings
        .http
        .cors_origins
        .iter()
        .find(|o| is_loopback_url(o))
    {
        return Err(ConfigError::new(
            "CORS_ORIGINS",
            format!("{origin} is this machine (localhost): {fix}, e.g. https://learn.example.com"),
        ));
    }
    if stripe.api_base.scheme() != "https" {
        return Err(ConfigError::new(
            "STRIPE_API_BASE",
            "must be https with a live key (unset it to use https://api.stripe.com)",
        ));
    }
    if !settings.http.cookie_secure {
        return Err(ConfigError::new(
            "COOKIE_SECURE",
            "is false with a live Stripe key: serve the app over https and leave COOKIE_SECURE unset (true)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
