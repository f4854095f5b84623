//! Settings: defaults < optional TOML file (`APP_CONFIG_FILE`, else `config.toml` if present)
//! < environment variables. Every invalid or missing value stops start-up with a message that
//! names the environment variable. Secrets are wrapped so `Debug` never shows them.

use anyhow::{anyhow, bail, Context};
use config::{Config, File, FileFormat};
use std::fmt;
use std::path::Path;

/// A secret string: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
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
    Json,
    Pretty,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database_url: Secret,
    pub database_pool_size: u32,
    pub run_migrations: bool,
    pub jwt_secret: Secret,
    pub cookie_secure: bool,
    pub cors_origins: Vec<String>,
    pub log_format: LogFormat,
    pub stripe_secret_key: Secret,
    /// Several while a secret is being rotated.
    pub stripe_webhook_secrets: Vec<Secret>,
    pub stripe_success_url: String,
    pub stripe_cancel_url: String,
    pub stripe_api_base: String,
    pub shutdown_timeout_secs: u64,
}

/// Every variable the app reads, with its config key (the lower-cased name) and default.
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("HOST", Some("0.0.0.0")),
    ("PORT", Some("8080")),
    ("DATABASE_URL", None),
    ("DATABASE_POOL_SIZE", Some("10")),
    ("RUN_MIGRATIONS", Some("true")),
    ("JWT_SECRET", None),
    ("COOKIE_SECURE", Some("true")),
    ("CORS_ORIGINS", Some("http://localhost:5173")),
    ("LOG_FORMAT", Some("json")),
    ("STRIPE_SECRET_KEY", None),
    ("STRIPE_WEBHOOK_SECRET", None),
    (
        "STRIPE_SUCCESS_URL",
        Some("http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}"),
    ),
    (
        "STRIPE_CANCEL_URL",
        Some("http://localhost:5173/payment/cancel"),
    ),
    ("STRIPE_API_BASE", Some("https://api.stripe.com")),
    ("SHUTDOWN_TIMEOUT_SECS", Some("30")),
];

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

    fn from_config(config: &Config) -> anyhow::Result<Self> {
        let text = |name: &str| -> anyhow::Result<String> {
            let value = config
                .get_string(&name.to_ascii_lowercase())
                .map_err(|_| anyhow!("{name} is required but not set"))?;
            let value = value.trim().to_owned();
            if value.is_empty() {
                bail!("{name} is required but empty");
            }
            Ok(value)
        };
        let parsed = |name: &str| -> anyhow::Result<u64> {
            let raw = text(name)?;
            raw.parse::<u64>()
                .map_err(|_| anyhow!("{name} must be a non-negative integer, got {raw:?}"))
        };
        let flag = |name: &str| -> anyhow::Result<bool> {
            let raw = text(name)?;
            match raw.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => bail!("{name} must be true or false, got {raw:?}"),
            }
        };

        let port =
            u16::try_from(parsed("PORT")?).map_err(|_| anyhow!("PORT must be at most 65535"))?;
        let database_pool_size = u32::try_from(parsed("DATABASE_POOL_SIZE")?)
            .ok()
            .filter(|size| (1..=1000).contains(size))
            .ok_or_else(|| anyhow!("DATABASE_POOL_SIZE must be between 1 and 1000"))?;

        let database_url = text("DATABASE_URL")?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            bail!("DATABASE_URL must be a postgres:// or postgresql:// URL");
        }

        let jwt_secret = text("JWT_SECRET")?;
        if jwt_secret.len() < 32 {
            bail!("JWT_SECRET must be at least 32 bytes long");
        }

        let stripe_secret_key = text("STRIPE_SECRET_KEY")?;
        if !(stripe_secret_key.starts_with("sk_") || stripe_secret_key.starts_with("rk_")) {
            bail!("STRIPE_SECRET_KEY must be a Stripe secret key (sk_... or rk_...)");
        }
        let stripe_webhook_secrets = text("STRIPE_WEBHOOK_SECRET")?
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
        if stripe_webhook_secrets.is_empty() {
            bail!("STRIPE_WEBHOOK_SECRET is required but empty");
        }

        let url = |name: &str| -> anyhow::Result<String> {
            let value = text(name)?;
            if !(value.starts_with("https://") || value.starts_with("http://"))
                || value.contains(char::is_whitespace)
            {
                bail!("{name} must be an http(s) URL, got {value:?}");
            }
            Ok(value)
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

        let log_format = match text("LOG_FORMAT")?.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => bail!("LOG_FORMAT must be json or pretty, got {other:?}"),
        };

        Ok(Self {
            host: text("HOST")?,
            port,
            database_url: Secret(database_url),
            database_pool_size,
            run_migrations: flag("RUN_MIGRATIONS")?,
            jwt_secret: Secret(jwt_secret),
            cookie_secure: flag("COOKIE_SECURE")?,
            cors_origins,
            log_format,
            stripe_secret_key: Secret(stripe_secret_key),
            stripe_webhook_secrets,
            stripe_success_url: url("STRIPE_SUCCESS_URL")?,
            stripe_cancel_url: url("STRIPE_CANCEL_URL")?,
            stripe_api_base: url("STRIPE_API_BASE")?,
            shutdown_timeout_secs: parsed("SHUTDOWN_TIMEOUT_SECS")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const VALID: &[(&str, &str)] = &[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lms"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("STRIPE_SECRET_KEY", "sk_test_abc"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new"),
    ];

    fn with(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs: Vec<_> = VALID
            .iter()
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        pairs.extend(overrides.iter().filter(|(_, v)| !v.is_empty()).copied());
        pairs
    }

    #[test]
    fn defaults_fill_everything_optional() {
        let settings = Settings::from_sources(None, env(VALID)).unwrap();
        assert_eq!(settings.port, 8080);
        assert!(settings.run_migrations);
        assert!(settings.cookie_secure);
        assert_eq!(settings.database_pool_size, 10);
        assert_eq!(settings.log_format, LogFormat::Json);
        assert_eq!(
            settings.cors_origins,
            vec!["http://localhost:5173".to_owned()]
        );
        assert_eq!(
            settings.stripe_success_url,
            "http://localhost:5173/payment/success?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            settings.stripe_cancel_url,
            "http://localhost:5173/payment/cancel"
        );
        assert_eq!(settings.stripe_api_base, "https://api.stripe.com");
        let secrets: Vec<_> = settings
            .stripe_webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["whsec_old", "whsec_new"]);
    }

    #[test]
    fn environment_overrides_defaults() {
        let pairs = with(&[
            ("PORT", "9000"),
            ("RUN_MIGRATIONS", "false"),
            ("LOG_FORMAT", "pretty"),
            ("CORS_ORIGINS", "https://a.io, https://b.io"),
        ]);
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
        let dir = std::env::temp_dir().join(format!("lms-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, "port = 7000\nlog_format = \"pretty\"\n").unwrap();
        let path = path.to_str().unwrap();
        let from_file = Settings::from_sources(Some(path), env(VALID)).unwrap();
        assert_eq!(from_file.port, 7000);
        assert_eq!(from_file.log_format, LogFormat::Pretty);
        let env_wins = Settings::from_sources(Some(path), env(&with(&[("PORT", "7001")]))).unwrap();
        assert_eq!(env_wins.port, 7001);
    }

    #[test]
    fn invalid_or_missing_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("JWT_SECRET", "")], "JWT_SECRET"),
            (&[("DATABASE_URL", "")], "DATABASE_URL"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("STRIPE_SECRET_KEY", "")], "STRIPE_SECRET_KEY"),
            (&[("STRIPE_SECRET_KEY", "pk_test_x")], "STRIPE_SECRET_KEY"),
            (
                &[("STRIPE_WEBHOOK_SECRET", "secret")],
                "STRIPE_WEBHOOK_SECRET",
            ),
            (&[("PORT", "eighty")], "PORT"),
            (&[("PORT", "70000")], "PORT"),
            (&[("DATABASE_POOL_SIZE", "0")], "DATABASE_POOL_SIZE"),
            (&[("COOKIE_SECURE", "maybe")], "COOKIE_SECURE"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("CORS_ORIGINS", "*")], "CORS_ORIGINS"),
            (&[("STRIPE_SUCCESS_URL", "not a url")], "STRIPE_SUCCESS_URL"),
        ];
        for (overrides, variable) in cases {
            let err = Settings::from_sources(None, env(&with(overrides)))
                .unwrap_err()
                .to_string();
            assert!(err.contains(variable), "{overrides:?}: {err}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let settings = Settings::from_sources(None, env(VALID)).unwrap();
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
