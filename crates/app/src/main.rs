//! The LMS payments backend binary. Thin on purpose: parse the command line, read the
//! configuration, hand it to [`lms_app::Application`], run. No business rule lives here.
//!
//! With no configuration at all (and the `demo` feature) `serve` runs the offline demo: SQLite
//! in `./data/lms.db`, the Stripe sandbox in-process, demo data seeded.

use clap::{Parser, Subcommand, ValueEnum};
use lms_app::commands::{self, Provider};
use lms_app::{Application, ConfigError, DemoSeed, Settings, EX_CONFIG};
use lms_domain::Role;
use lms_ports::{EventFilter, EventOutcome};
use std::process::ExitCode;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
    /// The event inbox: list the events Stripe sent, replay them, fetch the ones that never
    /// arrived.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Ask Stripe about every purchase pending for longer than a while and apply what it says,
    /// once (the server's reconciler does this every RECONCILE_INTERVAL).
    Reconcile {
        /// Only purchases pending for longer than this (e.g. 10m, 0s); default
        /// RECONCILE_OLDER_THAN.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
    },
    /// Make a user an admin, or take the role back (admins are never made by sign-up).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// List the inbox's events, most recently received first.
    List {
        /// Only events with this outcome.
        #[arg(long, value_enum)]
        outcome: Option<OutcomeArg>,
        /// Only events first received at or after this time (RFC 3339, e.g.
        /// 2026-01-31T09:00:00Z).
        #[arg(long, value_name = "T", value_parser = rfc3339)]
        since: Option<OffsetDateTime>,
    },
    /// Process stored events again, through the same exactly-once path as a webhook.
    Replay {
        /// The events to replay (evt_...).
        #[arg(
            value_name = "EVT_ID",
            required_unless_present = "failed",
            conflicts_with = "failed"
        )]
        event_ids: Vec<String>,
        /// Replay every event whose outcome is failed.
        #[arg(long)]
        failed: bool,
    },
    /// Fetch Stripe's events since T and process every one the inbox does not hold (after an
    /// outage or a wrong webhook secret).
    Sync {
        /// Where to start (RFC 3339, within Stripe's last 30 days).
        #[arg(long, value_name = "T", value_parser = rfc3339)]
        since: OffsetDateTime,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make the user with this email an admin.
    Grant {
        /// The email the user signed up with.
        #[arg(value_name = "EMAIL")]
        email: String,
    },
    /// Take the admin role from the user with this email.
    Revoke {
        /// The email the user signed up with.
        #[arg(value_name = "EMAIL")]
        email: String,
        /// The role they keep.
        #[arg(long, value_enum, default_value = "student")]
        role: RoleArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutcomeArg {
    Failed,
    Held,
    Unmatched,
    Ignored,
    Applied,
}

impl From<OutcomeArg> for EventOutcome {
    fn from(outcome: OutcomeArg) -> Self {
        match outcome {
            OutcomeArg::Failed => EventOutcome::Failed,
            OutcomeArg::Held => EventOutcome::Held,
            OutcomeArg::Unmatched => EventOutcome::Unmatched,
            OutcomeArg::Ignored => EventOutcome::Ignored,
            OutcomeArg::Applied => EventOutcome::Applied,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    Student,
    Instructor,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Student => Role::Student,
            RoleArg::Instructor => Role::Instructor,
        }
    }
}

fn rfc3339(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|err| format!("{err}: expected an RFC 3339 time such as 2026-01-31T09:00:00Z"))
}

impl Command {
    /// Whether this is one of the operator's one-off commands (their output is results, their
    /// logs go to stderr).
    fn is_operator_command(&self) -> bool {
        matches!(
            self,
            Command::Events(_) | Command::Reconcile { .. } | Command::Admin(_)
        )
    }
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
    if command.is_operator_command() {
        lms_app::init_command_tracing(settings.log_format);
        return operator_command(settings, command).await;
    }
    // Held until `main` returns: dropping it writes out the log lines still buffered.
    let _log_output = match lms_app::init_tracing(settings.log_format) {
        Ok(output) => output,
        Err(err) => {
            eprintln!("error: cannot start the log writer: {err}");
            return ExitCode::FAILURE;
        }
    };
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
        // Run above, before the server's logging and metrics.
        Command::Events(_) | Command::Reconcile { .. } | Command::Admin(_) => Ok(()),
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

/// Runs one of the operator's commands: 0 when it did its work, 1 when it failed (the message
/// with its cause chain), 78 for a configuration mistake.
async fn operator_command(settings: Settings, command: Command) -> ExitCode {
    let provider = match &command {
        Command::Events(EventsCommand::Sync { .. }) => Provider::Used {
            command: "lms-app events sync",
        },
        Command::Events(EventsCommand::Replay { .. }) => Provider::Used {
            command: "lms-app events replay",
        },
        Command::Reconcile { .. } => Provider::Used {
            command: "lms-app reconcile",
        },
        _ => Provider::Unused,
    };
    let mut out = std::io::stdout();
    let outcome = match commands::open(&settings, provider).await {
        Err(err) => Err(err),
        Ok(services) => match command {
            Command::Events(EventsCommand::List { outcome, since }) => {
                let filter = EventFilter {
                    outcome: outcome.map(EventOutcome::from),
                    since,
                };
                commands::list_events(&services, filter, &mut out).await
            }
            Command::Events(EventsCommand::Replay { failed: true, .. }) => {
                commands::replay_failed(&services, &mut out).await
            }
            Command::Events(EventsCommand::Replay { event_ids, .. }) => {
                commands::replay_events(&services, &event_ids, &mut out).await
            }
            Command::Events(EventsCommand::Sync { since }) => {
                commands::sync_events(&services, since, &mut out).await
            }
            Command::Reconcile { older_than } => {
                let mut run = settings.workers.reconcile;
                if let Some(older_than) = older_than {
                    run.older_than = older_than;
                }
                commands::reconcile(&services, run, &mut out).await
            }
            Command::Admin(AdminCommand::Grant { email }) => {
                commands::set_admin(&services, &email, true, Role::Student, &mut out).await
            }
            Command::Admin(AdminCommand::Revoke { email, role }) => {
                commands::set_admin(&services, &email, false, role.into(), &mut out).await
            }
            Command::Serve | Command::Migrate | Command::Healthcheck { .. } => Ok(()),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<ConfigError>() || err.is::<lms_app::ModeMismatch>() => {
            eprintln!("configuration error: {err}");
            ExitCode::from(EX_CONFIG)
        }
        Err(err) => {
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

    fn parse(args: &[&str]) -> Option<Command> {
        Cli::try_parse_from(std::iter::once("lms-app").chain(args.iter().copied()))
            .ok()
            .and_then(|cli| cli.command)
    }

    #[test]
    fn the_operator_commands_parse_their_arguments() {
        assert!(matches!(
            parse(&["events", "list", "--outcome", "unmatched", "--since", "2026-01-31T09:00:00+01:00"]),
            Some(Command::Events(EventsCommand::List { outcome: Some(OutcomeArg::Unmatched), since: Some(since) }))
                if since.unix_timestamp() == 1_769_846_400
        ));
        assert!(matches!(
            parse(&["events", "list"]),
            Some(Command::Events(EventsCommand::List {
                outcome: None,
                since: None
            }))
        ));
        assert!(parse(&["events", "list", "--outcome", "lost"]).is_none());
        assert!(parse(&["events", "list", "--since", "yesterday"]).is_none());
        assert!(matches!(
            parse(&["events", "replay", "evt_1", "evt_2"]),
            Some(Command::Events(EventsCommand::Replay { event_ids, failed: false })) if event_ids == ["evt_1", "evt_2"]
        ));
        assert!(matches!(
            parse(&["events", "replay", "--failed"]),
            Some(Command::Events(EventsCommand::Replay { failed: true, .. }))
        ));
        // Ids or --failed, not neither, not both.
        assert!(parse(&["events", "replay"]).is_none());
        assert!(parse(&["events", "replay", "evt_1", "--failed"]).is_none());
        assert!(matches!(
            parse(&["events", "sync", "--since", "2026-01-31T09:00:00Z"]),
            Some(Command::Events(EventsCommand::Sync { .. }))
        ));
        assert!(parse(&["events", "sync"]).is_none());
        assert!(matches!(
            parse(&["reconcile", "--older-than", "10m"]),
            Some(Command::Reconcile { older_than: Some(age) }) if age == Duration::from_secs(600)
        ));
        assert!(matches!(
            parse(&["reconcile", "--older-than", "0s"]),
            Some(Command::Reconcile {
                older_than: Some(Duration::ZERO)
            })
        ));
        assert!(matches!(
            parse(&["reconcile"]),
            Some(Command::Reconcile { older_than: None })
        ));
        assert!(matches!(
            parse(&["admin", "grant", "ops@example.com"]),
            Some(Command::Admin(AdminCommand::Grant { email })) if email == "ops@example.com"
        ));
        assert!(matches!(
            parse(&["admin", "revoke", "ops@example.com"]),
            Some(Command::Admin(AdminCommand::Revoke {
                role: RoleArg::Student,
                ..
            }))
        ));
        assert!(matches!(
            parse(&["admin", "revoke", "ops@example.com", "--role", "instructor"]),
            Some(Command::Admin(AdminCommand::Revoke {
                role: RoleArg::Instructor,
                ..
            }))
        ));
        // Admin is granted, never kept as the role "left" by a revoke.
        assert!(parse(&["admin", "revoke", "ops@example.com", "--role", "admin"]).is_none());
        assert!(Command::Admin(AdminCommand::Grant {
            email: String::new()
        })
        .is_operator_command());
        assert!(!Command::Serve.is_operator_command());
    }
}
