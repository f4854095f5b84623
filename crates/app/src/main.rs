//! The LMS payments backend binary. Thin on purpose: read config, hand it to
//! [`lms_app::Application`], run. No business rule lives here.
//!
//! Usage: `lms-app [serve|migrate]` (default `serve`). Configuration: see `.env.example`.
//! With no configuration at all (and the `demo` feature) it runs the offline demo: SQLite in
//! `./data/lms.db`, the Stripe sandbox in-process, demo data seeded.

use lms_app::{Application, DemoSeed, Settings, EX_CONFIG};
use std::process::ExitCode;

// jemalloc returns the password hasher's freed 19 MiB buffers to the kernel; glibc keeps them.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
            eprintln!("configuration error: {err}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    lms_app::init_tracing(settings.log_format);
    let outcome = match command {
        Command::Migrate => lms_app::migrate(&settings.database).await.map(|applied| {
            tracing::info!(count = applied.len(), versions = ?applied, "migrations applied");
        }),
        Command::Serve => serve(settings).await,
    };
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
