//! Settings: defaults < optional TOML file (`APP_CONFIG_FILE`, else `config.toml` if present)
//! < environment variables. Every invalid or missing value stops start-up with a message that
//! names the environment variable. Secrets are wrapped so `Debug` never shows them.
//!
//! # Two modes
//! * **Stripe** (`STRIPE_SECRET_KEY` set): production rules. `STRIPE_WEBHOOK_SECRET`,
//!   `JWT_SECRET` and `DATABASE_URL` are required; cookies are `Secure`; the server listens
//!   on `0.0.0.0`.
//! * **Sandbox** (`STRIPE_SECRET_KEY` unset): the offline demo. Payments go to the in-process
//!   Stripe sandbox (`SANDBOX_PORT`, default 12111), storage defaults to
//!   `sqlite://data/lms.db`, a missing `JWT_SECRET` is generated for the run, cookies are not
//!   `Secure` (plain http on localhost), the server listens on `127.0.0.1`, the success and
//!   cancel URLs default to this app's own storefront pages, and demo data is seeded.
//!
//! A variable that is set but empty is an error in both modes, and so is
//! `STRIPE_WEBHOOK_SECRET` without `STRIPE_SECRET_KEY`: a deployment whose Stripe key went
//! missing must not silently switch to simulated payments.

use anyhow::{anyhow, bail, Context};
use config::{Config, File, FileFormat};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A secret string: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line, for log shippers (Stripe-mode default).
    Json,
    /// One human-readable line an event (sandbox-mode default).
    Text,
    /// Multi-line, for reading one request closely.
    Pretty,
}

/// Where the data lives, from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// `postgres://` or `postgresql://` (the URL may hold a password: redacted).
    Postgres(Secret),
    /// What [`lms_sqlite::SqliteStore::open`] accepts: `sqlite://path`, a path, `:memory:`.
    Sqlite(String),
}

/// The default database in sandbox mode, relative to the working directory.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/lms.db";

/// The default port of the in-process Stripe sandbox.
pub const DEFAULT_SANDBOX_PORT: u16 = 12111;

impl Database {
    /// Parses `DATABASE_URL`.
    ///
    /// # Errors
    /// A message naming `DATABASE_URL` for an unknown scheme or an empty SQLite path.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let raw = raw.trim();
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(Secret(raw.to_owned())));
        }
        let sqlite = if raw.starts_with("sqlite://") || raw.starts_with("file:") {
            raw.to_owned()
        } else if let Some(rest) = raw.strip_prefix("sqlite:") {
            // `sqlite:data/lms.db`, `sqlite::memory:`: the store reads a bare path.
            rest.to_owned()
        } else if raw == ":memory:" {
            raw.to_owned()
        } else if has_scheme(raw) {
            bail!(
                "DATABASE_URL must be postgres://..., postgresql://..., sqlite://PATH, a file path or :memory:, got a {:?} URL",
                raw.split(':').next().unwrap_or_default()
            );
        } else {
            raw.to_owned()
        };
        let path = sqlite
            .strip_prefix("sqlite://")
            .unwrap_or(&sqlite)
            .split('?')
            .next()
            .unwrap_or_default();
        if path.trim().is_empty() && !sqlite.contains("mode=memory") {
            bail!("DATABASE_URL names an SQLite database without a path");
        }
        Ok(Self::Sqlite(sqlite))
    }

    /// For logs: the SQLite target, or just `postgres` (the URL may hold a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Postgres(_) => "postgres".to_owned(),
            Self::Sqlite(target) if target.starts_with("sqlite:") => target.clone(),
            Self::Sqlite(target) => format!("sqlite {target}"),
        }
    }
}

/// `scheme:` at the start (letters, digits, `+-.`, at least two characters so that a Windows
/// drive letter stays a path).
fn has_scheme(raw: &str) -> bool {
    match raw.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

/// How payments are taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payments {
    /// The real Stripe API (or a stand-in at `api_base`).
    Stripe {
        secret_key: Secret,
        /// Several while a secret is being rotated.
        webhook_secrets: Vec<Secret>,
        api_base: String,
    },
    /// The in-process sandbox on `127.0.0.1:port` (0: any free port); the key and the webhook
    /// secret are generated for each run.
    Sandbox { port: u16 },
}

impl Payments {
    pub fn is_sandbox(&self) -> bool {
        matches!(self, Self::Sandbox { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database: Database,
    pub database_pool_size: u32,
    pub run_migrations: bool,
    /// `None` only in sandbox mode: a random secret is generated for the run.
    pub jwt_secret: Option<Secret>,
    pub cookie_secure: bool,
    pub cors_origins: Vec<String>,
    pub log_format: LogFormat,
    pub payments: Payments,
    /// `None` only in sandbox mode: this app's `/payment/success?session_id=...` page.
    pub stripe_success_url: Option<String>,
    /// `None` only in sandbox mode: this app's `/payment/cancel` page.
    pub stripe_cancel_url: Option<String>,
    /// Create the demo instructor and courses when absent.
    pub seed_demo: bool,
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; `None` for one per core.
    pub http_workers: Option<usize>,
}

/// Every variable the app reads, with the default that holds in both modes (`None`: required,
/// or a default that depends on the mode; see the module documentation).
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("HOST", None),
    ("PORT", Some("8080")),
    ("DATABASE_URL", None),
    ("DATABASE_POOL_SIZE", Some("10")),
    ("RUN_MIGRATIONS", Some("true")),
    ("JWT_SECRET", None),
    ("COOKIE_SECURE", None),
    ("CORS_ORIGINS", Some("http://localhost:5173")),
    ("LOG_FORMAT", None),
    ("STRIPE_SECRET_KEY", None),
    ("STRIPE_WEBHOOK_SECRET", None),
    ("STRIPE_SUCCESS_URL", None),
    ("STRIPE_CANCEL_URL", None),
    ("STRIPE_API_BASE", Some("https://api.stripe.com")),
    ("SANDBOX_PORT", None),
    ("SEED_DEMO", None),
    ("SHUTDOWN_TIMEOUT_SECS", Some("30")),
    ("HTTP_WORKERS", None),
];

/// Stripe-mode defaults of the frontend pages (a separately served frontend).
pub const FRONTEND_SUCCESS_URL: &str =
    "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}";
pub const FRONTEND_CANCEL_URL: &str = "http://localhost:5173/payment/cancel";

impl Settings {
    /// Reads the process environment and the optional file.
    ///
    /// # Errors
    /// A message naming the first missing or invalid variable.
    pub fn load() -> anyhow::Result<Self> {
        let file = std::env::var("APP_CONFIG_FILE").ok().or_else(|| {
            Path::new("config.toml")
                .exists()
                .then(|| "config.toml".to_owned())
        });
        Self::from_sources(file.as_deref(), |name| std::env::var(name).ok())
    }

    /// Builds settings from explicit variables only: no file, no process environment.
    ///
    /// ```
    /// let settings = lms_app::Settings::from_pairs([("PORT", "0"), ("SANDBOX_PORT", "0")]).unwrap();
    /// assert!(settings.payments.is_sandbox());
    /// ```
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> anyhow::Result<Self>
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

    /// Builds settings from a file path and an environment lookup (tests pass a map).
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn from_sources(
        file: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut builder = Config::builder();
        for (name, default) in VARIABLES {
            if let Some(default) = default {
                builder = builder.set_default(name.to_ascii_lowercase(), *default)?;
            }
        }
        if let Some(path) = file {
            builder = builder.add_source(File::new(path, FileFormat::Toml).required(true));
        }
        for (name, _) in VARIABLES {
            if let Some(value) = env(name) {
                builder = builder.set_override(name.to_ascii_lowercase(), value)?;
            }
        }
        let config = builder
            .build()
            .with_context(|| format!("cannot read configuration file {}", file.unwrap_or("")))?;
        Self::from_config(&config)
    }

    #[allow(clippy::too_many_lines)] // one flat list of variables reads best
    fn from_config(config: &Config) -> anyhow::Result<Self> {
        // Set (possibly empty) or not set at all.
        let optional = |name: &str| -> anyhow::Result<Option<String>> {
            match config.get_string(&name.to_ascii_lowercase()) {
                Ok(value) => {
                    let value = value.trim().to_owned();
                    if value.is_empty() {
                        bail!("{name} is set but empty (unset it to use the default)");
                    }
                    Ok(Some(value))
                }
                Err(config::ConfigError::NotFound(_)) => Ok(None),
                Err(_) => bail!("{name} must be a string"),
            }
        };
        let required = |name: &str, why: &str| -> anyhow::Result<String> {
            optional(name)?.ok_or_else(|| anyhow!("{name} is required{why} but not set"))
        };
        let text = |name: &str| required(name, "");
        let parse_u64 = |name: &str, raw: &str| -> anyhow::Result<u64> {
            raw.parse::<u64>()
                .map_err(|_| anyhow!("{name} must be a non-negative integer, got {raw:?}"))
        };
        let parse_flag = |name: &str, raw: &str| -> anyhow::Result<bool> {
            match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => bail!("{name} must be true or false, got {raw:?}"),
            }
        };
        let parse_port = |name: &str, raw: &str| -> anyhow::Result<u16> {
            u16::try_from(parse_u64(name, raw)?)
                .map_err(|_| anyhow!("{name} must be at most 65535"))
        };
        let url = |name: &str, value: String| -> anyhow::Result<String> {
            if !(value.starts_with("https://") || value.starts_with("http://"))
                || value.contains(char::is_whitespace)
            {
                bail!("{name} must be an http(s) URL, got {value:?}");
            }
            Ok(value)
        };
        let optional_url = |name: &str| -> anyhow::Result<Option<String>> {
            optional(name)?.map(|value| url(name, value)).transpose()
        };

        // The mode first: every mode-dependent default follows from it.
        let payments = match optional("STRIPE_SECRET_KEY")? {
            Some(secret_key) => {
                if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
                    bail!("STRIPE_SECRET_KEY must be a Stripe secret key (sk_... or rk_...)");
                }
                let webhook_secrets =
                    required("STRIPE_WEBHOOK_SECRET", " when STRIPE_SECRET_KEY is set")?
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            if s.starts_with("whsec_") {
                                Ok(Secret(s.to_owned()))
                            } else {
                                Err(anyhow!(
                            "STRIPE_WEBHOOK_SECRET must hold whsec_... secrets, comma-separated"
                        ))
                            }
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                if webhook_secrets.is_empty() {
                    bail!("STRIPE_WEBHOOK_SECRET is required but empty");
                }
                Payments::Stripe {
                    secret_key: Secret(secret_key),
                    webhook_secrets,
                    api_base: url("STRIPE_API_BASE", text("STRIPE_API_BASE")?)?,
                }
            }
            // Half a Stripe configuration is a deployment mistake, not a wish for the sandbox.
            None if optional("STRIPE_WEBHOOK_SECRET")?.is_some() => bail!(
                "STRIPE_WEBHOOK_SECRET is set but STRIPE_SECRET_KEY is not: set both to take real payments, or neither to use the sandbox"
            ),
            None => Payments::Sandbox {
                port: match optional("SANDBOX_PORT")? {
                    Some(raw) => parse_port("SANDBOX_PORT", &raw)?,
                    None => DEFAULT_SANDBOX_PORT,
                },
            },
        };
        let sandbox = payments.is_sandbox();

        let port = parse_port("PORT", &text("PORT")?)?;
        let database_pool_size = u32::try_from(parse_u64(
            "DATABASE_POOL_SIZE",
            &text("DATABASE_POOL_SIZE")?,
        )?)
        .ok()
        .filter(|size| (1..=1000).contains(size))
        .ok_or_else(|| anyhow!("DATABASE_POOL_SIZE must be between 1 and 1000"))?;

        let database = match optional("DATABASE_URL")? {
            Some(raw) => Database::parse(&raw)?,
            None if sandbox => Database::parse(DEFAULT_SQLITE_URL)?,
            None => bail!("DATABASE_URL is required when STRIPE_SECRET_KEY is set but not set"),
        };

        let jwt_secret = match optional("JWT_SECRET")? {
            Some(secret) if secret.len() < 32 => bail!("JWT_SECRET must be at least 32 bytes long"),
            Some(secret) => Some(Secret(secret)),
            None if sandbox => None,
            None => bail!("JWT_SECRET is required when STRIPE_SECRET_KEY is set but not set"),
        };

        let flag_or = |name: &str, default: bool| -> anyhow::Result<bool> {
            optional(name)?.map_or(Ok(default), |raw| parse_flag(name, &raw))
        };

        let cors_origins = text("CORS_ORIGINS")?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|origin| {
                let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
                match rest {
                    Some(host) if !host.is_empty() && !host.contains('/') && !host.contains('*') => {
                        Ok(origin.to_owned())
                    }
                    _ => Err(anyhow!(
                        "CORS_ORIGINS must be comma-separated origins like https://app.example.com (no path, no wildcard), got {origin:?}"
                    )),
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let log_format = match optional("LOG_FORMAT")?.map(|f| f.to_ascii_lowercase()) {
            None if sandbox => LogFormat::Text,
            None => LogFormat::Json,
            Some(format) => match format.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                "pretty" => LogFormat::Pretty,
                other => bail!("LOG_FORMAT must be json, text or pretty, got {other:?}"),
            },
        };

        let frontend_default = |value: Option<String>, default: &str| {
            value.or_else(|| (!sandbox).then(|| default.to_owned()))
        };
        let stripe_success_url =
            frontend_default(optional_url("STRIPE_SUCCESS_URL")?, FRONTEND_SUCCESS_URL);
        if let Some(success) = &stripe_success_url {
            if !success.contains("{CHECKOUT_SESSION_ID}") {
                bail!("STRIPE_SUCCESS_URL must contain the literal {{CHECKOUT_SESSION_ID}}");
            }
        }
        let stripe_cancel_url =
            frontend_default(optional_url("STRIPE_CANCEL_URL")?, FRONTEND_CANCEL_URL);

        let http_workers = match optional("HTTP_WORKERS")? {
            None => None,
            Some(raw) => Some(
                usize::try_from(parse_u64("HTTP_WORKERS", &raw)?)
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| anyhow!("HTTP_WORKERS must be between 1 and 256"))?,
            ),
        };

        Ok(Self {
            host: optional("HOST")?
                .unwrap_or_else(|| if sandbox { "127.0.0.1" } else { "0.0.0.0" }.to_owned()),
            port,
            database,
            database_pool_size,
            run_migrations: flag_or("RUN_MIGRATIONS", true)?,
            jwt_secret,
            cookie_secure: flag_or("COOKIE_SECURE", !sandbox)?,
            cors_origins,
            log_format,
            payments,
            stripe_success_url,
            stripe_cancel_url,
            seed_demo: flag_or("SEED_DEMO", sandbox)?,
            shutdown_timeout_secs: parse_u64(
                "SHUTDOWN_TIMEOUT_SECS",
                &text("SHUTDOWN_TIMEOUT_SECS")?,
            )?,
            http_workers,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// A complete Stripe-mode configuration.
    const STRIPE: &[(&str, &str)] = &[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lms"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("STRIPE_SECRET_KEY", "sk_test_abc"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new"),
    ];

    /// `base` with `overrides` replacing (or, with an empty value, removing) variables.
    fn with(
        base: &[(&'static str, &'static str)],
        overrides: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut pairs: Vec<_> = base
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        pairs.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
        pairs
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        format!(
            "{:#}",
            Settings::from_sources(None, env(pairs)).unwrap_err()
        )
    }

    #[test]
    fn stripe_mode_keeps_the_production_defaults() {
        let settings = Settings::from_sources(None, env(STRIPE)).unwrap();
        assert_eq!(settings.host, "0.0.0.0");
        assert_eq!(settings.port, 8080);
        assert!(settings.run_migrations);
        assert!(settings.cookie_secure);
        assert!(!settings.seed_demo);
        assert_eq!(settings.database_pool_size, 10);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert!(matches!(settings.database, Database::Postgres(_)));
        assert_eq!(
            settings.cors_origins,
            vec!["http://localhost:5173".to_owned()]
        );
        assert_eq!(
            settings.stripe_success_url.as_deref(),
            Some(FRONTEND_SUCCESS_URL)
        );
        assert_eq!(
            settings.stripe_cancel_url.as_deref(),
            Some(FRONTEND_CANCEL_URL)
        );
        let Payments::Stripe {
            secret_key,
            webhook_secrets,
            api_base,
        } = &settings.payments
        else {
            panic!("expected Stripe mode: {:?}", settings.payments);
        };
        assert_eq!(secret_key.expose(), "sk_test_abc");
        assert_eq!(api_base, "https://api.stripe.com");
        let secrets: Vec<_> = webhook_secrets.iter().map(Secret::expose).collect();
        assert_eq!(secrets, ["whsec_old", "whsec_new"]);
        assert_eq!(
            settings.jwt_secret.as_ref().map(Secret::expose),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn nothing_set_is_the_offline_demo() {
        let settings = Settings::from_sources(None, env(&[])).unwrap();
        assert_eq!(
            settings.payments,
            Payments::Sandbox {
                port: DEFAULT_SANDBOX_PORT
            }
        );
        assert_eq!(
            settings.database,
            Database::Sqlite("sqlite://data/lms.db".to_owned())
        );
        assert_eq!(settings.host, "127.0.0.1");
        assert_eq!(settings.port, 8080);
        assert!(settings.jwt_secret.is_none());
        assert!(!settings.cookie_secure);
        assert!(settings.seed_demo);
        assert_eq!(settings.log_format, LogFormat::Text);
        assert_eq!(settings.stripe_success_url, None);
        assert_eq!(settings.stripe_cancel_url, None);
    }

    #[test]
    fn sandbox_mode_takes_explicit_values() {
        let settings = Settings::from_sources(
            None,
            env(&[
                ("SANDBOX_PORT", "0"),
                ("SEED_DEMO", "false"),
                ("COOKIE_SECURE", "true"),
                ("HOST", "0.0.0.0"),
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                (
                    "STRIPE_SUCCESS_URL",
                    "http://x.io/ok?s={CHECKOUT_SESSION_ID}",
                ),
                ("DATABASE_URL", "postgresql://u@h/db"),
                ("HTTP_WORKERS", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.payments, Payments::Sandbox { port: 0 });
        assert!(!settings.seed_demo);
        assert!(settings.cookie_secure);
        assert_eq!(settings.host, "0.0.0.0");
        assert!(settings.jwt_secret.is_some());
        assert_eq!(
            settings.stripe_success_url.as_deref(),
            Some("http://x.io/ok?s={CHECKOUT_SESSION_ID}")
        );
        assert!(matches!(settings.database, Database::Postgres(_)));
        assert_eq!(settings.http_workers, Some(2));
        // SEED_DEMO=true seeds in Stripe mode too.
        let seeded = Settings::from_sources(None, env(&with(STRIPE, &[("SEED_DEMO", "true")])));
        assert!(seeded.unwrap().seed_demo);
    }

    #[test]
    fn database_url_chooses_the_store() {
        let cases = [
            ("postgres://u@h/db", None),
            ("postgresql://u@h/db", None),
            ("sqlite://data/lms.db", Some("sqlite://data/lms.db")),
            ("sqlite:///tmp/x.db", Some("sqlite:///tmp/x.db")),
            ("sqlite:data/lms.db", Some("data/lms.db")),
            ("sqlite::memory:", Some(":memory:")),
            (":memory:", Some(":memory:")),
            ("data/lms.db", Some("data/lms.db")),
            ("/var/lib/lms/lms.db", Some("/var/lib/lms/lms.db")),
            ("file:lms.db", Some("file:lms.db")),
        ];
        for (raw, sqlite) in cases {
            let parsed = Database::parse(raw).unwrap();
            match sqlite {
                Some(target) => assert_eq!(parsed, Database::Sqlite(target.to_owned()), "{raw}"),
                None => assert!(matches!(parsed, Database::Postgres(_)), "{raw}"),
            }
        }
        for raw in ["mysql://x/y", "redis:x", "sqlite://", "sqlite:"] {
            let err = Database::parse(raw).unwrap_err().to_string();
            assert!(err.contains("DATABASE_URL"), "{raw}: {err}");
        }
    }

    #[test]
    fn environment_overrides_defaults() {
        let pairs = with(
            STRIPE,
            &[
                ("PORT", "9000"),
                ("RUN_MIGRATIONS", "false"),
                ("LOG_FORMAT", "pretty"),
                ("CORS_ORIGINS", "https://a.io, https://b.io"),
            ],
        );
        let settings = Settings::from_sources(None, env(&pairs)).unwrap();
        assert_eq!(settings.port, 9000);
        assert!(!settings.run_migrations);
        assert_eq!(settings.log_format, LogFormat::Pretty);
        assert_eq!(
            settings.cors_origins,
            vec!["https://a.io".to_owned(), "https://b.io".to_owned()]
        );
    }

    #[test]
    fn file_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("lms-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(
            &path,
            "port = 7000\nlog_format = \"pretty\"\nsandbox_port = 7001\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let from_file = Settings::from_sources(Some(path), env(&[])).unwrap();
        assert_eq!(from_file.port, 7000);
        assert_eq!(from_file.log_format, LogFormat::Pretty);
        assert_eq!(from_file.payments, Payments::Sandbox { port: 7001 });
        let env_wins = Settings::from_sources(Some(path), env(&[("PORT", "7002")])).unwrap();
        assert_eq!(env_wins.port, 7002);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn invalid_or_missing_values_name_the_variable() {
        let stripe_cases: &[(&[(&str, &str)], &str)] = &[
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("JWT_SECRET", "")], "JWT_SECRET"),
            (&[("DATABASE_URL", "")], "DATABASE_URL"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("STRIPE_SECRET_KEY", "pk_test_x")], "STRIPE_SECRET_KEY"),
            (
                &[("STRIPE_WEBHOOK_SECRET", "secret")],
                "STRIPE_WEBHOOK_SECRET",
            ),
            (&[("STRIPE_WEBHOOK_SECRET", "")], "STRIPE_WEBHOOK_SECRET"),
            (&[("STRIPE_WEBHOOK_SECRET", " , ")], "STRIPE_WEBHOOK_SECRET"),
            (&[("PORT", "eighty")], "PORT"),
            (&[("PORT", "70000")], "PORT"),
            (&[("DATABASE_POOL_SIZE", "0")], "DATABASE_POOL_SIZE"),
            (&[("COOKIE_SECURE", "maybe")], "COOKIE_SECURE"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("CORS_ORIGINS", "*")], "CORS_ORIGINS"),
            (&[("STRIPE_SUCCESS_URL", "not a url")], "STRIPE_SUCCESS_URL"),
            (
                &[("STRIPE_SUCCESS_URL", "https://x.io/no-placeholder")],
                "STRIPE_SUCCESS_URL",
            ),
            (&[("STRIPE_API_BASE", "ftp://x")], "STRIPE_API_BASE"),
            (&[("HTTP_WORKERS", "0")], "HTTP_WORKERS"),
        ];
        for (overrides, variable) in stripe_cases {
            let err = error(&with(STRIPE, overrides));
            assert!(err.contains(variable), "{overrides:?}: {err}");
        }
        // Set but empty never falls back to the sandbox.
        let err = error(
            &with(STRIPE, &[])
                .into_iter()
                .map(|(k, v)| {
                    if k == "STRIPE_SECRET_KEY" {
                        (k, " ")
                    } else {
                        (k, v)
                    }
                })
                .collect::<Vec<_>>(),
        );
        assert!(err.contains("STRIPE_SECRET_KEY"), "{err}");
        let sandbox_cases: &[(&[(&str, &str)], &str)] = &[
            (&[("STRIPE_WEBHOOK_SECRET", "whsec_x")], "STRIPE_SECRET_KEY"),
            (&[("SANDBOX_PORT", "65536")], "SANDBOX_PORT"),
            (&[("SANDBOX_PORT", "x")], "SANDBOX_PORT"),
            (&[("SEED_DEMO", "sure")], "SEED_DEMO"),
            (&[("DATABASE_URL", "mongodb://x")], "DATABASE_URL"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("STRIPE_CANCEL_URL", "/cancel")], "STRIPE_CANCEL_URL"),
        ];
        for (pairs, variable) in sandbox_cases {
            let err = error(pairs);
            assert!(err.contains(variable), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn a_stripe_key_makes_the_production_variables_required() {
        for missing in ["STRIPE_WEBHOOK_SECRET", "JWT_SECRET", "DATABASE_URL"] {
            let pairs: Vec<_> = STRIPE
                .iter()
                .filter(|(k, _)| *k != missing)
                .copied()
                .collect();
            let err = error(&pairs);
            assert!(err.contains(missing), "{missing}: {err}");
            assert!(err.contains("required"), "{missing}: {err}");
        }
    }

    #[test]
    fn env_example_documents_every_variable_and_starts_offline() {
        let example = include_str!("../../../.env.example");
        for (name, _) in VARIABLES {
            assert!(
                example.contains(&format!("{name}=")),
                "{name} is not in .env.example"
            );
        }
        let pairs: Vec<(String, String)> = example
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        assert!(!pairs.is_empty());
        let settings = Settings::from_pairs(pairs).unwrap();
        assert!(settings.payments.is_sandbox());
        assert_eq!(
            settings.database,
            Database::Sqlite(DEFAULT_SQLITE_URL.to_owned())
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let settings = Settings::from_sources(None, env(STRIPE)).unwrap();
        let debug = format!("{settings:?}");
        for secret in [
            "0123456789abcdef",
            "sk_test_abc",
            "whsec_old",
            "postgres://postgres@",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
