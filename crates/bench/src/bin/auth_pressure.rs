//! Memory under password-hashing pressure: bursts of concurrent sign-ins (unknown and known
//! e-mails) and sign-ups at production Argon2 parameters, against the app running as a
//! separate process, whose resident memory (`VmRSS`, and `VmHWM` for the kernel's own peak)
//! is read from `/proc/<pid>/status` alone.
//!
//! The app process is this binary re-run as `--serve-child` (it builds the app exactly as
//! `lms-app` does, `lms_app::Application::build` from `Settings::from_pairs`), or, with
//! `--app-bin PATH`, a built `lms-app` configured through its environment, so that its own
//! global allocator and start-up are what is measured. Linux only (`/proc`).

use anyhow::{anyhow, bail, ensure, Context};
use lms_bench::process::{free_port, mib, read_memory, AppProcess, Memory, Sampler, TempDir};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: auth_pressure [--sign-ins N] [--sign-ups N] [--known-users N] [--idle-secs S] [--rounds N] [--app-bin PATH] [--keep-rate-limits]
  --sign-ins N        concurrent sign-ins in one burst, half unknown e-mails, half known (default 500)
  --sign-ups N        concurrent sign-ups in one burst (default 500)
  --known-users N     accounts created (one at a time, untimed) before the bursts (default 10)
  --idle-secs S       idle time after the set-up and after each round, before reading RSS (default 5)
  --rounds N          rounds of (sign-in burst, sign-up burst, idle) (default 1)
  --app-bin PATH      run this lms-app binary instead of this binary's --serve-child mode
  --keep-rate-limits  leave the sign-in/sign-up rate limits on (by default they are off, so
                      every request reaches the password hasher)
Variables such as MALLOC_ARENA_MAX are passed on to the app process.";

/// Rate limits off: the bench measures the hasher's bound, not the per-IP limiter's.
const NO_RATE_LIMITS: [(&str, &str); 3] = [
    ("SIGN_IN_LIMIT_PER_IP", "off"),
    ("SIGN_IN_LIMIT_PER_EMAIL", "off"),
    ("SIGN_UP_LIMIT_PER_IP", "off"),
];

const PASSWORD: &str = "bench password 123";

#[derive(Debug, Clone)]
struct Args {
    sign_ins: usize,
    sign_ups: usize,
    known_users: usize,
    idle: Duration,
    rounds: usize,
    app_bin: Option<PathBuf>,
    rate_limits: bool,
}

fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut args = Args {
        sign_ins: 500,
        sign_ups: 500,
        known_users: 10,
        idle: Duration::from_secs(5),
        rounds: 1,
        app_bin: None,
        rate_limits: false,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| raw.next())
                .ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"))
        };
        let number = |raw: String| {
            raw.parse::<usize>()
                .map_err(|_| anyhow!("{name} takes a whole number, got {raw:?}"))
        };
        match name.as_str() {
            "--sign-ins" => args.sign_ins = number(value()?)?,
            "--sign-ups" => args.sign_ups = number(value()?)?,
            "--known-users" => args.known_users = number(value()?)?.max(1),
            "--idle-secs" => args.idle = Duration::from_secs(number(value()?)? as u64),
            "--rounds" => args.rounds = number(value()?)?.max(1),
            "--app-bin" => args.app_bin = Some(PathBuf::from(value()?)),
            "--keep-rate-limits" => args.rate_limits = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Some(args))
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--serve-child") {
        return lms_bench::exit(serve_child(&argv[2..]));
    }
    lms_bench::exit(match parse_args() {
        Ok(Some(args)) => lms_bench::runtime().and_then(|rt| rt.block_on(run(args))),
        Ok(None) => Ok(()),
        Err(err) => Err(err),
    })
}

/// The app process in the default mode: `--serve-child PORT DATABASE_URL [KEY=VALUE...]`.
/// Built and run like `lms-app`'s `serve` (actix's runtime, `Application::build`).
fn serve_child(args: &[String]) -> anyhow::Result<()> {
    let [port, database_url, extra @ ..] = args else {
        bail!("--serve-child PORT DATABASE_URL [KEY=VALUE...]");
    };
    let mut pairs = vec![
        ("PORT".to_owned(), port.clone()),
        ("SANDBOX_PORT".to_owned(), "0".to_owned()),
        ("DATABASE_URL".to_owned(), database_url.clone()),
        ("APP_MODE".to_owned(), "demo".to_owned()),
    ];
    for pair in extra {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("expected KEY=VALUE, got {pair:?}"))?;
        pairs.push((key.to_owned(), value.to_owned()));
    }
    actix_web::rt::System::new().block_on(async move {
        let settings = lms_app::Settings::from_pairs(pairs)?;
        let app = lms_app::Application::build(settings).await?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

async fn start_app(args: &Args) -> anyhow::Result<AppProcess> {
    let dir = TempDir::new("lms-auth-pressure")?;
    let database_url = format!("sqlite://{}", dir.path().join("x.db").display());
    let port = free_port()?;
    let extra: Vec<(&str, &str)> = if args.rate_limits {
        Vec::new()
    } else {
        NO_RATE_LIMITS.to_vec()
    };
    let (command, label) = match &args.app_bin {
        Some(bin) => {
            let mut command = Command::new(bin);
            command
                .arg("serve")
                .env("PORT", port.to_string())
                .env("SANDBOX_PORT", "0")
                .env("DATABASE_URL", &database_url)
                .env("APP_MODE", "demo");
            for (key, value) in &extra {
                command.env(key, value);
            }
            (command, format!("{} (separate process)", bin.display()))
        }
        None => {
            let me = std::env::current_exe().context("locating this binary")?;
            let mut command = Command::new(&me);
            command
                .arg("--serve-child")
                .arg(port.to_string())
                .arg(&database_url);
            for (key, value) in &extra {
                command.arg(format!("{key}={value}"));
            }
            (
                command,
                "this binary's --serve-child mode (Application::build, separate process)"
                    .to_owned(),
            )
        }
    };
    AppProcess::spawn(command, label, port, dir).await
}

/// What one burst saw.
#[derive(Debug)]
struct Burst {
    name: &'static str,
    requests: usize,
    wall: Duration,
    /// Status code (0: no answer) -> count.
    statuses: BTreeMap<u16, usize>,
    retry_after_missing: usize,
    peak_rss_kib: u64,
    peak_threads: u64,
    after: Memory,
}

/// Fires every request at once (each on its own connection) and waits for all answers.
async fn burst(
    name: &'static str,
    app: &AppProcess,
    requests: Vec<(&'static str, serde_json::Value)>,
) -> anyhow::Result<Burst> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(0)
        .build()?;
    let sampler = Sampler::start(app.pid);
    let started = Instant::now();
    let count = requests.len();
    let gate = Arc::new(tokio::sync::Barrier::new(count + 1));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(path, body)| {
            let request = client.post(format!("{}{path}", app.base_url)).json(&body);
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.wait().await;
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let retry_after = response.headers().contains_key("retry-after");
                        let _ = response.bytes().await;
                        (status, retry_after)
                    }
                    Err(_) => (0, false),
                }
            })
        })
        .collect();
    gate.wait().await;
    let mut statuses = BTreeMap::new();
    let mut retry_after_missing = 0;
    for task in tasks {
        let (status, retry_after) = task.await?;
        *statuses.entry(status).or_insert(0) += 1;
        if status == 503 && !retry_after {
            retry_after_missing += 1;
        }
    }
    let wall = started.elapsed();
    let (peak_rss_kib, peak_threads) = sampler.finish().await;
    Ok(Burst {
        name,
        requests: count,
        wall,
        statuses,
        retry_after_missing,
        peak_rss_kib,
        peak_threads,
        after: read_memory(app.pid)?,
    })
}

fn statuses(burst: &Burst) -> String {
    burst
        .statuses
        .iter()
        .map(|(status, n)| match status {
            0 => format!("no answer: {n}"),
            s => format!("{s}: {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    println!("# auth_pressure: resident memory of the app process under password-hashing bursts");
    println!(
        "machine: {cores} cores (available_parallelism), {}/{}, bench built {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "dev profile"
        } else {
            "release"
        }
    );
    println!("arguments: {}", reproduce_args(&args));
    for variable in ["MALLOC_ARENA_MAX", "PASSWORD_HASH_CONCURRENCY"] {
        if let Some(value) = std::env::var_os(variable) {
            println!("{variable}={}", value.to_string_lossy());
        }
    }

    let app = start_app(&args).await?;
    println!(
        "app: {}, pid {}, SQLite in a temporary directory",
        app.label, app.pid
    );
    let started = read_memory(app.pid)?;

    // Untimed set-up: known accounts, one sign-up at a time.
    let client = lms_bench::client()?;
    let known: Vec<String> = (0..args.known_users)
        .map(|i| format!("known-{i}-{}@example.com", uuid::Uuid::new_v4().simple()))
        .collect();
    for email in &known {
        let response = client
            .post(format!("{}/api/v1/user/signup", app.base_url))
            .json(&json!({"name": "Known User", "email": email, "password": PASSWORD}))
            .send()
            .await?;
        ensure!(
            response.status() == reqwest::StatusCode::CREATED,
            "set-up sign-up: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    let after_setup = read_memory(app.pid)?;
    // Idle before the bursts too: what the app holds when nothing is asked of it.
    tokio::time::sleep(args.idle).await;
    let idle_before = read_memory(app.pid)?;

    let mut rounds = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let sign_ins = (0..args.sign_ins)
            .map(|i| {
                let email = if i % 2 == 0 {
                    format!("nobody-{i}@example.com")
                } else {
                    known[i % known.len()].clone()
                };
                (
                    "/api/v1/user/signin",
                    json!({"email": email, "password": PASSWORD}),
                )
            })
            .collect();
        let sign_in_burst = burst("sign-in burst", &app, sign_ins).await?;
        let sign_ups = (0..args.sign_ups)
            .map(|i| {
                let email = format!("new-{i}-{}@example.com", uuid::Uuid::new_v4().simple());
                (
                    "/api/v1/user/signup",
                    json!({"name": "New User", "email": email, "password": PASSWORD}),
                )
            })
            .collect();
        let sign_up_burst = burst("sign-up burst", &app, sign_ups).await?;
        tokio::time::sleep(args.idle).await;
        let after = read_memory(app.pid)?;
        rounds.push(([sign_in_burst, sign_up_burst], after));
    }
    let last = rounds.last().map_or(idle_before, |(_, after)| *after);

    let idle_row = |label: String, memory: &Memory| {
        println!(
            "{:<28}  {:>7}  {:>12}  {:>7}  {:>6}  -",
            label,
            mib(memory.rss_kib),
            "-",
            memory.threads,
            "-"
        );
    };
    println!();
    println!("phase                         RSS MiB  peak RSS MiB  threads  wall s  answers");
    println!("----------------------------  -------  ------------  -------  ------  -------");
    idle_row("started (healthy)".to_owned(), &started);
    println!(
        "{:<28}  {:>7}  {:>12}  {:>7}  {:>6}  {} x 201",
        format!("after {} set-up sign-ups", args.known_users),
        mib(after_setup.rss_kib),
        "-",
        after_setup.threads,
        "-",
        args.known_users
    );
    let idle_secs = args.idle.as_secs();
    idle_row(format!("idle {idle_secs} s before bursts"), &idle_before);
    for (round, (bursts, after)) in rounds.iter().enumerate() {
        let prefix = if args.rounds > 1 {
            format!("{}: ", round + 1)
        } else {
            String::new()
        };
        for b in bursts {
            println!(
                "{:<28}  {:>7}  {:>12}  {:>7}  {:>6.1}  {}",
                format!("{prefix}{} ({})", b.name, b.requests),
                mib(b.after.rss_kib),
                mib(b.peak_rss_kib),
                b.peak_threads,
                b.wall.as_secs_f64(),
                statuses(b)
            );
        }
        idle_row(format!("{prefix}idle {idle_secs} s after bursts"), after);
    }
    println!();
    println!(
        "peak RSS (VmHWM, whole run): {} MiB; idle RSS before the bursts: {} MiB; final RSS: {} MiB",
        mib(last.hwm_kib),
        mib(idle_before.rss_kib),
        mib(last.rss_kib)
    );
    let all: Vec<&Burst> = rounds.iter().flat_map(|(bursts, _)| bursts).collect();
    let missing: usize = all.iter().map(|b| b.retry_after_missing).sum();
    ensure!(
        missing == 0,
        "{missing} answers 503 came without Retry-After"
    );
    let unanswered: usize = all
        .iter()
        .map(|b| b.statuses.get(&0).copied().unwrap_or(0))
        .sum();
    ensure!(unanswered == 0, "{unanswered} requests got no answer");
    println!(
        "reproduce: cargo run -p lms-bench --bin auth_pressure -- {}",
        reproduce_args(&args)
    );
    Ok(())
}

fn reproduce_args(args: &Args) -> String {
    let mut line = format!(
        "--sign-ins {} --sign-ups {} --known-users {} --idle-secs {} --rounds {}",
        args.sign_ins,
        args.sign_ups,
        args.known_users,
        args.idle.as_secs(),
        args.rounds
    );
    if let Some(bin) = &args.app_bin {
        line.push_str(&format!(" --app-bin {}", bin.display()));
    }
    if args.rate_limits {
        line.push_str(" --keep-rate-limits");
    }
    line
}
