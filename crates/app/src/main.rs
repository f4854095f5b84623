//! The LMS payments backend binary. Thin on purpose: read config, build adapters, hand them
//! to the REST API, run. No business rule lives here.
//!
//! Usage: `lms-app [serve|migrate]` (default `serve`). Configuration: see `.env.example`.

mod config;

use anyhow::Context;
use config::{LogFormat, Settings};
use lms_actix_api::{ApiSettings, ApiState};
use lms_application::Services;
use lms_password_argon2::Argon2Hasher;
use lms_ports::{StorageHealth, SystemClock};
use lms_postgres::{run_migrations, PgStore, DEFAULT_ACQUIRE_TIMEOUT};
use lms_stripe_http::{StripeConfig, StripeGateway};
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Serve,
    Migrate,
}

fn parse_command(args: &[String]) -> Result<Command, String> {
    match args.get(1).map(String::as_str) {
        None | Some("serve") => Ok(Command::Serve),
        Some("migrate") => Ok(Command::Migrate),
        Some(other) => Err(format!(
            "unknown command {other:?}; usage: lms-app [serve|migrate]"
        )),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A subscriber may already be set (never in the binary); ignore that case.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let command = match parse_command(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("configuration error: {err:#}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    init_tracing(settings.log_format);
    let outcome = match command {
        Command::Migrate => migrate(&settings).await,
        Command::Serve => serve(settings).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "fatal");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let applied = run_migrations(settings.database_url.expose())
        .await
        .context("running migrations")?;
    tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.run_migrations {
        migrate(&settings).await?;
    }
    let store = PgStore::connect_lazy(
        settings.database_url.expose(),
        settings.database_pool_size,
        DEFAULT_ACQUIRE_TIMEOUT,
    );
    match store.ping().await {
        Ok(detail) => tracing::info!(%detail, "database reachable"),
        // Start anyway: the health check reports 503 until the database is back.
        Err(err) => tracing::warn!(error = %err, "database not reachable at start-up"),
    }

    let webhook_secrets = settings
        .stripe_webhook_secrets
        .iter()
        .map(config::Secret::expose)
        .collect::<Vec<_>>()
        .join(",");
    let stripe = StripeConfig::new(
        settings.stripe_secret_key.expose(),
        &webhook_secrets,
        &settings.stripe_success_url,
        &settings.stripe_cancel_url,
    )
    .and_then(|config| config.with_api_base(&settings.stripe_api_base))
    .context("invalid Stripe settings (STRIPE_*)")?;
    let gateway = StripeGateway::new(stripe).context("building the Stripe client")?;
    let hasher = Argon2Hasher::new().context("building the password hasher")?;

    let services = Services::with_store(
        store,
        Arc::new(gateway),
        Arc::new(hasher),
        Arc::new(SystemClock),
        lms_application::Settings::default(),
    );

    let mut api = ApiSettings::new(settings.stripe_success_url.clone());
    api.cookie_secure = settings.cookie_secure;
    api.cors_origins = settings.cors_origins.clone();
    api.shutdown_timeout = Duration::from_secs(settings.shutdown_timeout_secs);
    let state = ApiState::new(
        Arc::new(services),
        settings.jwt_secret.expose().as_bytes(),
        api,
    );

    let listener =
        TcpListener::bind((settings.host.as_str(), settings.port)).with_context(|| {
            format!(
                "cannot listen on {}:{} (HOST/PORT)",
                settings.host, settings.port
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    // actix handles SIGINT/SIGTERM: stop accepting, drain for up to the shutdown timeout.
    lms_actix_api::run(listener, state)?.await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_default_to_serve() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(parse_command(&args(&["lms-app"])), Ok(Command::Serve));
        assert_eq!(
            parse_command(&args(&["lms-app", "serve"])),
            Ok(Command::Serve)
        );
        assert_eq!(
            parse_command(&args(&["lms-app", "migrate"])),
            Ok(Command::Migrate)
        );
        assert!(parse_command(&args(&["lms-app", "drop-db"])).is_err());
    }
}
