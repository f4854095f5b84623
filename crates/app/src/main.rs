//! The LMS payments backend binary. Thin on purpose: parse the command line, read the
//! configuration, hand it to [`lms_app::Application`], run. No business rule lives here.
//!
//! With no configuration at all (and the `demo` feature) `serve` runs the offline demo: SQLite
//! in `./data/lms.db`, the Stripe sandbox in-process, demo data seeded.

use clap::{Parser, Subcommand};
use lms_app::{Application, DemoSeed, Settings, EX_CONFIG};
use std::process::ExitCode;
use std::time::Duration;

// jemalloc returns the password hasher's freed 19 MiB buffers to the kernel; glibc keeps them.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The payments backend of the learning platform: Stripe Checkout, webhooks, course access.
///
/// Configuration comes from environment variables (and an optional TOML file); every variable
/// is listed in .env.example. A configuration mistake exits with status 78 and one line naming
/// the variable and the fix.
#[derive(Debug, Parser)]
#[command(name = "lms-app", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations (unless RUN_MIGRATIONS=false), then serve until SIGTERM/SIGINT
    /// (the default command).
    Serve,
    /// Apply the pending database migrations and exit.
    Migrate,
    /// Ask a running instance whether it is healthy: exit 0 when it answers 200, 1 otherwise
    /// (for container probes).
    Healthcheck {
        /// The instance to ask; default: this configuration's HOST and PORT, on loopback.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// How long to wait for the answer.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Healthcheck { url, timeout } = &command {
        // A probe must not need a valid configuration when it is told where to look.
        let url = match url {
            Some(url) => url.clone(),
            None => match Settings::load() {
                Ok(settings) => lms_app::healthcheck_url(&settings.http),
                Err(err) => return configuration_error(&err),
            },
        };
        return match lms_app::probe(&url, *timeout).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("unhealthy: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => return configuration_error(&err),
    };
    lms_app::init_tracing(settings.log_format);
    // Before the app is built, so the adapters' metrics count from the start.
    let metrics = match (&command, settings.metrics_addr) {
        (Command::Serve, Some(addr)) => match lms_app::metrics::serve(addr) {
            Ok(metrics) => {
                let handle = metrics.handle();
                actix_web::rt::spawn(metrics.run());
                Some(handle)
            }
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "fatal");
                eprintln!("error: {err:#}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let outcome = match command {
        Command::Migrate => lms_app::migrate(&settings.database).await.map(|applied| {
            tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
        }),
        Command::Serve | Command::Healthcheck { .. } => serve(settings).await,
    };
    if let Some(metrics) = metrics {
        metrics.stop(true).await;
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // The database belongs to another payment mode: a deployment mistake like a bad value.
        Err(err) if err.is::<lms_app::ModeMismatch>() => {
            tracing::error!(error = %err, "refusing to start");
            eprintln!("configuration error: {err}");
            ExitCode::from(EX_CONFIG)
        }
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "fatal");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn configuration_error(err: &lms_app::ConfigError) -> ExitCode {
    eprintln!("configuration error: {err}");
    ExitCode::from(EX_CONFIG)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    let demo = match application.demo_seed() {
        DemoSeed::Disabled => String::new(),
        #[cfg(feature = "demo")]
        DemoSeed::Created | DemoSeed::AlreadyPresent => format!(
            "; demo instructor {} / {}",
            lms_app::demo::INSTRUCTOR_EMAIL,
            lms_app::demo::INSTRUCTOR_PASSWORD
        ),
        #[cfg(not(feature = "demo"))]
        DemoSeed::Created | DemoSeed::AlreadyPresent => String::new(),
    };
    if application.is_simulated() {
        tracing::warn!(
            "ready: open {}/ in a browser; payments are SIMULATED by the in-process Stripe sandbox (card 4242 4242 4242 4242){demo}",
            application.base_url(),
        );
    } else {
        tracing::info!("ready: open {}/ in a browser{demo}", application.base_url());
    }
    // actix handles SIGINT/SIGTERM: stop accepting, drain for up to the shutdown timeout.
    application.run_until_stopped().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_unknown_commands_are_refused() {
        assert!(Cli::try_parse_from(["lms-app"]).unwrap().command.is_none());
        assert!(matches!(
            Cli::try_parse_from(["lms-app", "migrate"]).unwrap().command,
            Some(Command::Migrate)
        ));
        assert!(matches!(
            Cli::try_parse_from(["lms-app", "healthcheck", "--timeout", "2s"]).unwrap().command,
            Some(Command::Healthcheck { timeout, url: None }) if timeout == Duration::from_secs(2)
        ));
        assert!(Cli::try_parse_from(["lms-app", "drop-db"]).is_err());
        assert!(Cli::try_parse_from(["lms-app", "healthcheck", "--timeout", "soon"]).is_err());
    }
}
