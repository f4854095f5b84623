//! `compare`: the app against a baseline of its own SQL, in one run, on one database.
//!
//! The app runs as a separate process (the release `lms-app`), in Stripe mode against a Stripe
//! sandbox this process owns ([`setup`]), so that its CPU time and resident memory can be read
//! from `/proc/<pid>` ([`crate::process`]) and the bench can pay sessions and sign events
//! itself. Three workloads at fixed concurrency, each run against the app over HTTP and then
//! as the baseline, straight against the same database ([`pg`], [`sqlite`]):
//!
//! - **first delivery**: `checkout.session.completed` for N distinct purchases, each delivered
//!   for the first time (the app's purchases and the baseline's are different ones, paid the
//!   same way);
//! - **duplicate**: the same events again;
//! - **purchase-status read**: one buyer's status of one course (JWT, course, purchase).
//!
//! The baseline runs the statements the app runs for each workload ([`sql`]), checked against
//! what the app really runs before anything is measured ([`check`]). With PostgreSQL the same
//! workloads also run against the peer ([`peer`]): the same job hand-written in Express +
//! stripe-node + pg, a `node` process whose CPU time and memory are read like the app's.
//! Nothing here asserts on timing; every round is checked to have done its work (rows in the
//! inbox, purchases completed, duplicates not applied again, the same end state for the app's
//! purchases and the baseline's).

pub mod capture;
pub mod check;
pub mod peer;
pub mod pg;
pub mod setup;
pub mod sql;
pub mod sqlite;
pub mod workload;

use crate::http1;
use crate::process::{
    clock_ticks_per_second, free_port, kib_as_mib, load_average, mib, read_cpu, read_memory,
    AppProcess, Sampler, TempDir,
};
use crate::{check_errors, Api, Data, InboxCounts, Run};
use anyhow::{anyhow, bail, ensure, Context};
use lms_stripe_sandbox::Sandbox;
use lms_test_db::TestDatabase;
use reqwest::StatusCode;
use setup::Paid;
use sql::{Backend, Statements};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use workload::{Item, Round, State};

pub const USAGE: &str = "usage: compare [--postgres] [--peer | --no-peer] [--events N] [--reads N] [--webhook-concurrency C] [--read-concurrency C] [--rounds R] [--warm-up W] [--app-bin PATH] [--idle-secs S] [--no-sql-check] [--print-sql]
  --postgres                PostgreSQL in a scratch database (also when BENCH_DATABASE_URL is set;
                            it then names the server) instead of SQLite
  --peer                    also run the peer (Express + stripe-node + pg, crates/bench/peer) and
                            fail if it cannot run; by default it runs with --postgres when `node`
                            (20+) is found, after `npm ci` there if node_modules is missing
  --no-peer                 do not run the peer
  --events N                purchases whose first delivery (then duplicate) is sent to the app,
                            and as many others for the baseline, and for the peer (default 3000)
  --reads N                 purchase-status reads, app, baseline and peer each (default 20000)
  --webhook-concurrency C   concurrent clients for deliveries and duplicates (default 16)
  --read-concurrency C      concurrent clients for reads (default 32)
  --rounds R                run the workloads R times over (each round on purchases of its
                            own), print each round's table, then the median of each figure and
                            of the ratios with their range (default 1): on a shared machine
                            one round's ratio moves with the noise, the median of several less
  --warm-up W               purchases delivered twice, and read 5 x W times, before anything is
                            measured, on the app and on the peer (default 1000): the peer's
                            JavaScript is compiled to fast code only after many calls
  --app-bin PATH            the lms-app binary to run (default: $CARGO_TARGET_DIR/release/lms-app,
                            else target/release/lms-app of this workspace)
  --idle-secs S             pause before each workload on the app, after which its idle RSS is
                            read (default 2)
  --no-sql-check            run even if the app's statements no longer match the baseline's (or
                            the peer's status answer the app's)
  --print-sql               print the statements the app runs for each workload
Build first: cargo build --release -p lms-app -p lms-bench. Variables such as HTTP_WORKERS,
DATABASE_POOL_SIZE, DATABASE_GROUP_COMMIT, RUST_LOG and _RJEM_MALLOC_CONF (the app's jemalloc
options) reach the app process.";

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub events: usize,
    pub reads: usize,
    pub webhook_concurrency: usize,
    pub read_concurrency: usize,
    pub rounds: usize,
    pub warm_up: usize,
    pub postgres: bool,
    pub app_bin: Option<PathBuf>,
    pub idle: Duration,
    pub sql_check: bool,
    pub print_sql: bool,
    pub peer: peer::Choice,
}

impl Options {
    /// Parses the command line; `Ok(None)` when `--help` was asked for (usage printed).
    ///
    /// # Errors
    /// An unknown argument or a bad value.
    pub fn parse() -> anyhow::Result<Option<Self>> {
        let mut options = Self {
            events: 3000,
            reads: 20_000,
            webhook_concurrency: 16,
            read_concurrency: 32,
            rounds: 1,
            warm_up: 1000,
            postgres: std::env::var_os("BENCH_DATABASE_URL").is_some(),
            app_bin: None,
            idle: Duration::from_secs(2),
            sql_check: true,
            print_sql: false,
            peer: peer::Choice::Auto,
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
            let positive = |raw: String| {
                raw.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| anyhow!("{name} takes a positive whole number, got {raw:?}"))
            };
            match name.as_str() {
                "--postgres" => options.postgres = true,
                "--events" | "-n" => options.events = positive(value()?)?,
                "--reads" => options.reads = positive(value()?)?,
                "--webhook-concurrency" => options.webhook_concurrency = positive(value()?)?,
                "--read-concurrency" => options.read_concurrency = positive(value()?)?,
                "--rounds" => options.rounds = positive(value()?)?,
                "--warm-up" => options.warm_up = positive(value()?)?,
                "--app-bin" => options.app_bin = Some(PathBuf::from(value()?)),
                "--idle-secs" => {
                    let raw = value()?;
                    let secs = raw
                        .parse::<u64>()
                        .map_err(|_| anyhow!("--idle-secs takes whole seconds, got {raw:?}"))?;
                    options.idle = Duration::from_secs(secs);
                }
                "--no-sql-check" => options.sql_check = false,
                "--print-sql" => options.print_sql = true,
                "--peer" => options.peer = peer::Choice::On,
                "--no-peer" => options.peer = peer::Choice::Off,
                "--help" | "-h" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        Ok(Some(options))
    }

    /// The arguments that reproduce this run (the app binary's path aside).
    fn reproduce_args(&self) -> String {
        let mut args = vec![
            format!("--events {}", self.events),
            format!("--reads {}", self.reads),
            format!("--webhook-concurrency {}", self.webhook_concurrency),
            format!("--read-concurrency {}", self.read_concurrency),
            format!("--warm-up {}", self.warm_up),
            format!("--idle-secs {}", self.idle.as_secs()),
        ];
        if self.postgres {
            args.insert(0, "--postgres".to_owned());
        }
        if self.rounds > 1 {
            args.push(format!("--rounds {}", self.rounds));
        }
        match self.peer {
            peer::Choice::Auto => {}
            peer::Choice::On => args.push("--peer".to_owned()),
            peer::Choice::Off => args.push("--no-peer".to_owned()),
        }
        if !self.sql_check {
            args.push("--no-sql-check".to_owned());
        }
        args.join(" ")
    }
}

/// The release `lms-app` to run: `--app-bin`, else `$CARGO_TARGET_DIR/release/lms-app`, else
/// the workspace's `target/release/lms-app`.
fn app_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        ensure!(
            path.is_file(),
            "--app-bin {}: no such file (build it: cargo build --release -p lms-app)",
            path.display()
        );
        return Ok(path.to_owned());
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release").join("lms-app"));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/release/lms-app")
            .components()
            .collect(),
    );
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "no release lms-app at {}: build it with `cargo build --release -p lms-app` (same CARGO_TARGET_DIR), or pass --app-bin PATH",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        })
}

/// `url` with one more query parameter.
pub fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// CPU time this process (the load generator, the baseline's client, the idle sandbox) uses
/// running `work`, per request, microseconds.
async fn with_client_cpu<F>(ticks_per_second: u64, work: F) -> anyhow::Result<(Run, f64)>
where
    F: std::future::Future<Output = anyhow::Result<Run>>,
{
    let me = std::process::id();
    let before = read_cpu(me)?;
    let run = work.await?;
    let used = read_cpu(me)?.since(before);
    let per_request = per_request_us(used.total(), ticks_per_second, run.requests);
    Ok((run, per_request))
}

/// What the app process used during one workload.
#[derive(Debug, Clone, Copy)]
struct Resources {
    /// CPU time (user + system, all threads) per request, microseconds.
    cpu_us: f64,
    /// The part of it spent in the kernel (system time), 0 to 1.
    system_share: f64,
    idle_rss_kib: u64,
    peak_rss_kib: u64,
}

#[expect(
    clippy::cast_precision_loss,
    reason = "tick and request counts far below 2^52 convert exactly"
)]
fn per_request_us(ticks: u64, ticks_per_second: u64, requests: usize) -> f64 {
    ticks as f64 * 1e6 / ticks_per_second as f64 / requests.max(1) as f64
}

#[expect(
    clippy::cast_precision_loss,
    reason = "tick counts far below 2^52 convert exactly"
)]
fn share(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// Runs `work` against the app after an idle pause, reading the app's RSS before it, its CPU
/// time around it and its RSS every 10 ms during it.
async fn measure_app<F>(
    app: &AppProcess,
    ticks_per_second: u64,
    idle: Duration,
    work: F,
) -> anyhow::Result<(Run, Resources, f64)>
where
    F: std::future::Future<Output = anyhow::Result<Run>>,
{
    tokio::time::sleep(idle).await;
    let idle_rss = read_memory(app.pid)?.rss_kib;
    let cpu_before = read_cpu(app.pid)?;
    let sampler = Sampler::start(app.pid);
    let run = with_client_cpu(ticks_per_second, work).await;
    let used = read_cpu(app.pid)?.since(cpu_before);
    let (peak_rss, _) = sampler.finish().await;
    let (run, client_cpu_us) = run?;
    let resources = Resources {
        cpu_us: per_request_us(used.total(), ticks_per_second, run.requests),
        system_share: share(used.system, used.total()),
        idle_rss_kib: idle_rss,
        peak_rss_kib: peak_rss.max(idle_rss),
    };
    Ok((run, resources, client_cpu_us))
}

/// POSTs each purchase's event once, signed now (as Stripe signs at send time), from
/// `concurrency` clients; each must answer 200.
async fn deliver_all(
    api: &Api,
    sandbox: &Sandbox,
    paid: &[Paid],
    concurrency: usize,
) -> anyhow::Result<Run> {
    let server = api.address()?;
    let requests = paid
        .iter()
        .map(|p| http1::Prepared::webhook(server, sandbox.signed(&p.event)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    http1::closed_loop(server, requests, concurrency, StatusCode::OK).await
}

/// `requests` purchase-status reads cycling over the buyers of `paid`.
async fn read_all(
    api: &Api,
    paid: &[Paid],
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let server = api.address()?;
    let requests = paid
        .iter()
        .cycle()
        .take(requests)
        .map(|p| http1::Prepared::status_read(server, &p.buyer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    http1::closed_loop(server, requests, concurrency, StatusCode::OK).await
}

/// The baseline: one round on `data`'s database; also returns this process's CPU per request.
async fn baseline(data: &Data, round: Round, ticks_per_second: u64) -> anyhow::Result<(Run, f64)> {
    let (run, cpu) = match data {
        Data::Postgres(url) => {
            let workers = pg::connect(url, round.sequence, round.concurrency).await?;
            with_client_cpu(ticks_per_second, pg::run(workers, round)).await
        }
        Data::Sqlite(file) => {
            let store = Arc::new(sqlite::Store::open(file)?);
            with_client_cpu(ticks_per_second, sqlite::run(store, round)).await
        }
    }?;
    // A failing baseline request is a bug of the baseline's: say which before any check.
    if let Some(error) = &run.first_error {
        eprintln!(
            "baseline: {} requests failed; the first: {error}",
            run.errors
        );
    }
    Ok((run, cpu))
}

/// What a webhook round must have changed in the inbox and the purchases.
async fn check_round(
    data: &Data,
    what: &str,
    inbox_before: &InboxCounts,
    completed_before: i64,
    expected: InboxCounts,
    completed: i64,
) -> anyhow::Result<(InboxCounts, i64)> {
    let inbox = InboxCounts::read(data).await?;
    let changed = inbox.since(inbox_before);
    ensure!(
        changed == expected,
        "{what} changed the inbox by {changed:?}, expected {expected:?}"
    );
    let now_completed = data.completed_purchases().await?;
    ensure!(
        now_completed - completed_before == completed,
        "{what} completed {} purchases, expected {completed}",
        now_completed - completed_before
    );
    Ok((inbox, now_completed))
}

/// One text value from the database (a check or a fact, never timed).
async fn text_value(data: &Data, query: &str) -> anyhow::Result<String> {
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let rows: Vec<Text> = data.load(query.to_owned()).await?;
    rows.into_iter()
        .next()
        .map(|t| t.value)
        .ok_or_else(|| anyhow!("no answer to {query}"))
}

/// One table row.
struct Row {
    workload: &'static str,
    /// `app`, `baseline` or `peer`.
    backend: &'static str,
    run: Run,
    /// The server process's (the app's or the peer's).
    resources: Option<Resources>,
    /// This process's CPU per request (load generator or baseline client).
    client_cpu_us: f64,
    /// App rate over baseline rate (app rows).
    ratio: Option<f64>,
    /// App rate over peer rate (app rows, when the peer ran).
    peer_ratio: Option<f64>,
}

impl Row {
    fn server(
        workload: &'static str,
        backend: &'static str,
        measured: (Run, Resources, f64),
    ) -> Self {
        let (run, resources, client_cpu_us) = measured;
        Self {
            workload,
            backend,
            run,
            resources: Some(resources),
            client_cpu_us,
            ratio: None,
            peer_ratio: None,
        }
    }

    fn baseline(workload: &'static str, measured: (Run, f64)) -> Self {
        let (run, client_cpu_us) = measured;
        Self {
            workload,
            backend: "baseline",
            run,
            resources: None,
            client_cpu_us,
            ratio: None,
            peer_ratio: None,
        }
    }
}

/// Fills the app rows' ratios from the baseline and peer rows of the same workload.
fn fill_ratios(rows: &mut [Row]) {
    let rate = |rows: &[Row], workload: &str, backend: &str| {
        rows.iter()
            .find(|r| r.workload == workload && r.backend == backend)
            .map(|r| r.run.per_second())
            .filter(|rate| *rate > 0.0)
    };
    let ratios: Vec<(Option<f64>, Option<f64>)> = rows
        .iter()
        .map(|row| {
            if row.backend != "app" {
                return (None, None);
            }
            let app = row.run.per_second();
            (
                rate(rows, row.workload, "baseline").map(|b| app / b),
                rate(rows, row.workload, "peer").map(|p| app / p),
            )
        })
        .collect();
    for (row, (ratio, peer_ratio)) in rows.iter_mut().zip(ratios) {
        row.ratio = ratio;
        row.peer_ratio = peer_ratio;
    }
}

fn render(rows: &[Row], with_peer: bool) -> String {
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
    let dash = || "-".to_owned();
    let columns = [
        "workload",
        "backend",
        "C",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU us/req",
        "of it kernel",
        "client CPU us/req",
        "RSS MiB idle",
        "RSS MiB peak",
        "app/baseline",
    ];
    let mut table = vec![header(&columns, with_peer)];
    for row in rows {
        table.push(vec![
            row.workload.to_owned(),
            row.backend.to_owned(),
            row.run.concurrency.to_string(),
            row.run.requests.to_string(),
            row.run.errors.to_string(),
            format!("{:.0}", row.run.per_second()),
            ms(row.run.percentile(50)),
            ms(row.run.percentile(99)),
            row.resources
                .map_or_else(dash, |r| format!("{:.0}", r.cpu_us)),
            row.resources
                .map_or_else(dash, |r| format!("{:.0} %", r.system_share * 100.0)),
            format!("{:.0}", row.client_cpu_us),
            row.resources.map_or_else(dash, |r| mib(r.idle_rss_kib)),
            row.resources.map_or_else(dash, |r| mib(r.peak_rss_kib)),
            row.ratio.map_or_else(dash, |r| format!("{r:.2}x")),
        ]);
        if with_peer {
            if let Some(cells) = table.last_mut() {
                cells.push(row.peer_ratio.map_or_else(dash, |r| format!("{r:.2}x")));
            }
        }
    }
    aligned(&table)
}

/// Each figure of the rounds' rows, workload by workload and backend by backend (in the
/// first round's order): its median, then its lowest and highest value in brackets.
fn render_summary(rounds: &[Vec<Row>], with_peer: bool) -> String {
    let columns = [
        "workload",
        "backend",
        "req/s",
        "p99 ms",
        "server CPU us/req",
        "RSS MiB peak",
        "app/baseline",
    ];
    let mut table = vec![header(&columns, with_peer)];
    let Some(first) = rounds.first() else {
        return aligned(&table);
    };
    for row in first {
        let same: Vec<&Row> = rounds
            .iter()
            .flatten()
            .filter(|r| r.workload == row.workload && r.backend == row.backend)
            .collect();
        let spread = |figure: &dyn Fn(&Row) -> Option<f64>, unit: &str, decimals: usize| {
            let values: Vec<f64> = same.iter().filter_map(|r| figure(r)).collect();
            Spread::of(values).map_or_else(|| "-".to_owned(), |s| s.render(unit, decimals))
        };
        let mut cells = vec![
            row.workload.to_owned(),
            row.backend.to_owned(),
            spread(&|r| Some(r.run.per_second()), "", 0),
            spread(
                &|r| Some(r.run.percentile(99).as_secs_f64() * 1000.0),
                "",
                2,
            ),
            spread(&|r| r.resources.map(|res| res.cpu_us), "", 0),
            spread(
                &|r| r.resources.map(|res| kib_as_mib(res.peak_rss_kib)),
                "",
                1,
            ),
            spread(&|r| r.ratio, "x", 2),
        ];
        if with_peer {
            cells.push(spread(&|r| r.peer_ratio, "x", 2));
        }
        table.push(cells);
    }
    aligned(&table)
}

/// A table's header: `columns`, then `app/peer` when the peer ran.
fn header(columns: &[&str], with_peer: bool) -> Vec<String> {
    let peer = with_peer.then_some("app/peer");
    columns
        .iter()
        .copied()
        .chain(peer)
        .map(str::to_owned)
        .collect()
}

/// The median of some values and their range.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    median: f64,
    lowest: f64,
    highest: f64,
}

impl Spread {
    /// `None` for no values; with an even count the median is the mean of the middle two.
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let (lowest, highest) = (*values.first()?, *values.last()?);
        let middle = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[middle]
        } else {
            (values[middle - 1] + values[middle]) / 2.0
        };
        Some(Self {
            median,
            lowest,
            highest,
        })
    }

    /// `"12.34x (10.00-15.00)"`: the unit after each number.
    fn render(self, unit: &str, decimals: usize) -> String {
        format!(
            "{:.decimals$}{unit} ({:.decimals$}-{:.decimals$})",
            self.median, self.lowest, self.highest
        )
    }
}

/// The table's columns padded to their widest cell (the first two left-aligned, the others
/// right-aligned), a rule under the header.
fn aligned(table: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| table.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, width))| {
                if c < 2 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn age(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .map_or_else(
            || "age unknown".to_owned(),
            |age| format!("built {} min ago", age.as_secs() / 60),
        )
}

/// Runs the whole comparison and prints its table.
///
/// # Errors
/// A bad set-up, a failed request, a failed check, or SQL that no longer matches.
#[expect(
    clippy::too_many_lines,
    reason = "one linear script: set-up, three workloads on two or three sides, checks, report"
)]
pub async fn run(options: Options) -> anyhow::Result<()> {
    let app_bin = app_binary(options.app_bin.as_deref())?;
    // Before anything slow: `npm ci` if the peer's dependencies are missing.
    let peer_plan = peer::prepare(options.peer, options.postgres)?;
    if let peer::Prepared::Skip(reason) = &peer_plan {
        if options.peer == peer::Choice::Auto && options.postgres {
            eprintln!("compare: the peer does not run: {reason}");
        }
    }
    let load_before = load_average();
    let n = options.events;
    let dir = TempDir::new("lms-bench-compare")?;
    let (db, data, url, backend) = if options.postgres {
        let db = TestDatabase::create("lms_bench_compare").await;
        // No TLS on either side: the server offers it, and the app's default (`prefer`)
        // would take it while the baseline's client would not.
        let url = with_param(db.url(), "sslmode=disable");
        (
            Some(db),
            Data::Postgres(url.clone()),
            url,
            Backend::Postgres,
        )
    } else {
        let file = dir.path().join("lms.db");
        let url = format!("sqlite://{}", file.display());
        (None, Data::Sqlite(file), url, Backend::Sqlite)
    };
    let statements = Statements::of(backend);
    let sandbox = setup::sandbox().await?;

    // The statements first: nothing is measured against a stale baseline.
    let sql_check = if options.sql_check || options.print_sql {
        let observed = check::observe(&url, &sandbox)
            .await
            .context("recording the app's statements")?;
        if options.print_sql {
            println!("# the statements the app ran for one request of each workload\n");
            println!("{}", check::listing(&observed));
        }
        let problems = check::differences(&observed, backend);
        if problems.is_empty() {
            format!(
                "the app ran the baseline's statements (first delivery {}, duplicate {}, read {}; recorded through diesel's instrumentation in this process)",
                statements.first_delivery.len(),
                statements.duplicate.len(),
                statements.status_read.len()
            )
        } else if options.sql_check {
            bail!(
                "the app's SQL no longer matches the baseline's (crates/bench/src/compare/sql.rs); update it (--print-sql shows what the app runs), or run with --no-sql-check:\n{}",
                problems.join("\n")
            );
        } else {
            eprintln!(
                "warning: the app's SQL no longer matches the baseline's:\n{}",
                problems.join("\n")
            );
            "MISMATCH (--no-sql-check): see the warning above".to_owned()
        }
    } else {
        "skipped (--no-sql-check)".to_owned()
    };

    let port = free_port()?;
    let metrics_port = free_port()?;
    // One key for the app and the peer: the tokens the app issues are the peer's tokens too.
    let jwt_secret = setup::jwt_secret();
    let mut command = Command::new(&app_bin);
    command.arg("serve");
    for (key, value) in setup::app_settings(
        &url,
        port,
        sandbox.base_url(),
        &jwt_secret,
        Some(metrics_port),
    ) {
        command.env(key, value);
    }
    let app = AppProcess::spawn(command, app_bin.display().to_string(), port, dir).await?;
    let started = read_memory(app.pid)?;
    let (ticks_per_second, ticks_source) = clock_ticks_per_second();
    let peer_process = match &peer_plan {
        peer::Prepared::Run(_) => Some(peer::start(&url, &jwt_secret).await?),
        peer::Prepared::Skip(_) => None,
    };
    let peer_started = peer_process
        .as_ref()
        .map(|p| read_memory(p.pid))
        .transpose()?;
    let peer_api = peer_process
        .as_ref()
        .map(|p| Api::new(p.base_url.clone()))
        .transpose()?;

    let api = Api::new(app.base_url.clone())?;
    let setup_started = Instant::now();
    let warm_up = options.warm_up;
    let warm_reads = 5 * warm_up;
    let peer_n = if peer_process.is_some() { n } else { 0 };
    let per_round = 2 * n + peer_n;
    let paid = setup::paid_purchases(&api, &sandbox, warm_up + options.rounds * per_round)
        .await
        .context("setting up purchases")?;
    let (warm_paid, paid) = paid.split_at(warm_up);
    let rounds_paid: Vec<RoundPaid> = paid
        .chunks(per_round)
        .map(|chunk| {
            let (app, rest) = chunk.split_at(n);
            let (baseline, peer) = rest.split_at(n);
            RoundPaid {
                app,
                baseline,
                peer,
            }
        })
        .collect();
    // Warm-up (untimed): the app's pool grows to what the concurrency needs and each of its
    // connections prepares its statements, as the baseline's do before its clock starts.
    for _ in 0..2 {
        let run = deliver_all(&api, &sandbox, warm_paid, options.webhook_concurrency).await?;
        check_errors(&[("warm-up delivery", &run)])?;
    }
    let run = read_all(&api, warm_paid, warm_reads, options.read_concurrency).await?;
    check_errors(&[("warm-up read", &run)])?;
    // The peer: its tables filled (the warm-up purchases and its own), then the same warm-up
    // (its pool grows, V8 compiles the hot paths), then its answer compared with the app's.
    let mut read_answer = String::new();
    if let Some(peer_api) = &peer_api {
        let seeded: Vec<setup::Paid> = warm_paid
            .iter()
            .chain(rounds_paid.iter().flat_map(|round| round.peer))
            .cloned()
            .collect();
        peer::seed(&url, &seeded)
            .await
            .context("filling the peer's tables")?;
        for _ in 0..2 {
            let run =
                deliver_all(peer_api, &sandbox, warm_paid, options.webhook_concurrency).await?;
            check_errors(&[("peer warm-up delivery", &run)])?;
        }
        let run = read_all(peer_api, warm_paid, warm_reads, options.read_concurrency).await?;
        check_errors(&[("peer warm-up read", &run)])?;
        let (app_answer, peer_answer) = peer::answers(&api, peer_api, &warm_paid[0]).await?;
        let problems = peer::answer_differences(&app_answer, &peer_answer, &peer::OWN_TIMES);
        read_answer = if problems.is_empty() {
            format!(
                "the peer answered one buyer's purchase-status read with the app's keys and values (timestamps to the millisecond, but {}: each server's own)",
                peer::OWN_TIMES.join(" and ")
            )
        } else if options.sql_check {
            bail!(
                "the peer's purchase-status answer differs from the app's (update crates/bench/peer/server.js, or run with --no-sql-check):\n{}\napp:  {app_answer}\npeer: {peer_answer}",
                problems.join("\n")
            );
        } else {
            eprintln!(
                "warning: the peer's purchase-status answer differs from the app's:\n{}",
                problems.join("\n")
            );
            "MISMATCH (--no-sql-check): see the warning above".to_owned()
        };
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let after_setup = read_memory(app.pid)?;
    let peer_after_setup = peer_process
        .as_ref()
        .map(|p| read_memory(p.pid))
        .transpose()?;

    // The facts.
    let storage = match backend {
        Backend::Postgres => format!(
            "PostgreSQL {} (synchronous_commit={}; scratch database {}; {}; no TLS: sslmode=disable for both)",
            text_value(&data, "SELECT current_setting('server_version') AS value").await?,
            text_value(
                &data,
                "SELECT current_setting('synchronous_commit') AS value"
            )
            .await?,
            db.as_ref().map_or("?", TestDatabase::name),
            // The app, the baseline and the peer connect as this connection did.
            text_value(
                &data,
                "SELECT coalesce('over TCP to ' || host(inet_server_addr()) || ':' || inet_server_port(), \
                 'through the Unix socket in ' || current_setting('unix_socket_directories')) AS value"
            )
            .await?
        ),
        Backend::Sqlite => format!(
            "SQLite {} (bundled, the app's library), a file in a temporary directory, WAL, synchronous=FULL",
            text_value(&data, "SELECT sqlite_version() AS value").await?
        ),
    };
    let passed: Vec<String> = [
        "HTTP_WORKERS",
        "DATABASE_POOL_SIZE",
        "DATABASE_GROUP_COMMIT",
        "RUST_LOG",
        "LOG_FORMAT",
        // The app's jemalloc reads its options from this prefixed name, not MALLOC_CONF.
        "_RJEM_MALLOC_CONF",
    ]
    .iter()
    .filter_map(|name| {
        std::env::var(name)
            .ok()
            .map(|value| format!("{name}={value}"))
    })
    .collect();
    let command_line: Vec<String> = std::env::args().collect();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!(
        "# compare: the app against a baseline of its own SQL{}",
        if peer_process.is_some() {
            " and against the peer (Express + stripe-node + pg, same job)"
        } else {
            ""
        }
    );
    println!("command      : {}", command_line.join(" "));
    println!(
        "reproduce    : cargo build --release -p lms-app -p lms-bench && $CARGO_TARGET_DIR/release/compare {}",
        options.reproduce_args()
    );
    println!(
        "bench build  : {}",
        if cfg!(debug_assertions) {
            "dev profile (the baseline client and the load generator are not optimised: use release)"
        } else {
            "release"
        }
    );
    println!(
        "cores        : {cores} (std::thread::available_parallelism); cpu: {}",
        cpu_model()
    );
    println!(
        "os/arch      : {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("load average : {load_before} (1, 5, 15 min; before the run)");
    println!("storage      : {storage}");
    println!(
        "app          : {} ({}), pid {}, Stripe mode against this process's Stripe sandbox; HTTP workers, pool size, grouped commits (PostgreSQL), logging (info, JSON, to a file) at their defaults{}",
        app_bin.display(),
        age(&app_bin),
        app.pid,
        if passed.is_empty() {
            String::new()
        } else {
            format!("; from the environment: {}", passed.join(" "))
        }
    );
    match (&peer_plan, &peer_process) {
        (peer::Prepared::Run(node), Some(process)) => println!(
            "peer         : node {} {}/server.js ({}), pid {}: one process, a pg pool of {}, NODE_ENV=production, no request logging; its own tables (peer_*) in the same database, the app's users and courses copied in, its purchases paid in the same sandbox, events signed with the same secret",
            node.version,
            peer::dir().display(),
            node.packages.join(", "),
            process.pid,
            peer::pool_size()
        ),
        (peer::Prepared::Skip(reason), _) => println!("peer         : not run: {reason}"),
        (peer::Prepared::Run(_), None) => {}
    }
    println!(
        "clients      : this process, on the same machine: requests built before the run, each client one HTTP/1.1 keep-alive connection, answers parsed in place (src/http1.rs), for the app{}; for the baseline {}",
        if peer_process.is_some() {
            " and the peer"
        } else {
            ""
        },
        match backend {
            Backend::Postgres => "tokio-postgres (one connection per client)".to_owned(),
            Backend::Sqlite => format!(
                "diesel's SqliteConnection (one writer behind a FIFO mutex, {} readers), as the app's store",
                sqlite::READERS
            ),
        }
    );
    println!(
        "cpu time     : /proc/<pid>/stat utime+stime of the app{} process, {ticks_per_second} ticks/s ({ticks_source})",
        if peer_process.is_some() {
            " and the peer"
        } else {
            ""
        }
    );
    println!("SQL check    : {sql_check}");
    if !read_answer.is_empty() {
        println!("read answer  : {read_answer}");
    }
    println!(
        "set-up       : {} purchases paid in the sandbox, then a warm-up of the app{}, in {setup_secs:.1}s (untimed; {n} for the app, {n} for the baseline{}{}, {warm_up} delivered twice and read {warm_reads} times at the workloads' concurrency to warm the servers up); app RSS {} MiB at start, {} MiB after set-up{}",
        warm_up + paid.len(),
        if peer_process.is_some() {
            " and the peer"
        } else {
            ""
        },
        if peer_process.is_some() {
            format!(", {n} for the peer")
        } else {
            String::new()
        },
        if options.rounds > 1 {
            format!(" in each of {} rounds", options.rounds)
        } else {
            String::new()
        },
        mib(started.rss_kib),
        mib(after_setup.rss_kib),
        match (peer_started, peer_after_setup) {
            (Some(start), Some(after)) => format!(
                "; peer RSS {} MiB at start, {} MiB after set-up",
                mib(start.rss_kib),
                mib(after.rss_kib)
            ),
            _ => String::new(),
        }
    );
    println!();

    let servers = Servers {
        options: &options,
        data: &data,
        url: &url,
        sandbox: &sandbox,
        statements,
        ticks_per_second,
        app: &app,
        api: &api,
        peer: peer_process.as_ref().zip(peer_api.as_ref()),
    };
    let mut rounds = Vec::with_capacity(rounds_paid.len());
    let mut state = None;
    for paid in &rounds_paid {
        let (rows, left) = one_round(&servers, paid).await?;
        rounds.push(rows);
        state = Some(left);
    }
    let state = state.context("no round ran")?;
    let load_after = load_average();
    let end = read_memory(app.pid)?;
    let peer_end = peer_process
        .as_ref()
        .map(|p| read_memory(p.pid))
        .transpose()?;

    let with_peer = peer_process.is_some();
    if let [rows] = rounds.as_slice() {
        print!("{}", render(rows, with_peer));
    } else {
        for (i, rows) in rounds.iter().enumerate() {
            println!("round {} of {}", i + 1, rounds.len());
            print!("{}", render(rows, with_peer));
            println!();
        }
        println!(
            "over the {} rounds: the median, and the lowest and highest in brackets",
            rounds.len()
        );
        print!("{}", render_summary(&rounds, with_peer));
    }
    println!();
    println!(
        "req/s: requests answered per second of wall time (one event per webhook request; a baseline request is the app's statements for one request). p50/p99: nearest-rank latency of one request, from sending it to the end of its answer (baseline: its statements, in order)."
    );
    println!(
        "server CPU us/req: the server process's CPU time (user + system, all threads; the app's, or the peer's node process) during the workload over its requests; of it kernel: the system time's share of it (system calls on sockets and files, wake-ups, page faults). client CPU us/req: this process's (the HTTP load generator for the app and the peer; the baseline's database client), which shares the machine's cores with the servers and the database. RSS MiB: the server's VmRSS after an idle pause of {} s before the workload, and the largest one sampled every 10 ms during it. app/baseline, app/peer: the app's req/s over the baseline's, over the peer's.",
        options.idle.as_secs()
    );
    println!(
        "app memory   : VmHWM (peak RSS over the whole run, set-up sign-ups included) {} MiB; RSS at the end {} MiB ({} anonymous, {} file-backed: the binary's and its libraries' pages); at start {} ({} anonymous, {} file-backed)",
        mib(end.hwm_kib),
        mib(end.rss_kib),
        mib(end.rss_anon_kib),
        mib(end.rss_file_kib),
        mib(started.rss_kib),
        mib(started.rss_anon_kib),
        mib(started.rss_file_kib)
    );
    if let Some(peer_end) = peer_end {
        println!(
            "peer memory  : VmHWM (peak RSS over the whole run) {} MiB; RSS at the end {} MiB",
            mib(peer_end.hwm_kib),
            mib(peer_end.rss_kib)
        );
    }
    if let Some((groups, events)) = group_commit_counts(metrics_port).await? {
        println!(
            "group commit : {events} deliveries in {groups} groups over the run, warm-up included ({:.1} a group; the app's lms_db_group_* counters)",
            events / groups.max(1.0)
        );
    }
    println!("load average : {load_after} (after the run; before: {load_before})");
    let (purchases, inbox_rows) =
        workload::same_end_state(&data, &state, setup::EVENT_TYPE, peer_process.is_some()).await?;
    println!(
        "checks       : each first-delivery round added {n} inbox rows (applied, delivered once) and completed {n} purchases; each duplicate round added none and left them delivered twice; in the end all {purchases} purchases are in the state the app's first delivery left and all {inbox_rows} inbox rows are {} applied, delivered twice",
        setup::EVENT_TYPE
    );
    if peer_process.is_some() {
        let (peer_purchases, peer_events) = peer::end_state(&url).await?;
        println!(
            "peer checks  : its first-delivery round recorded the {n} events once and completed their {n} purchases with their payment intents; its duplicate round recorded nothing and wrote no purchase; in the end all {peer_purchases} of its purchases are completed, with {peer_events} events recorded, one each"
        );
    }
    check_errors(
        &rounds
            .iter()
            .flatten()
            .map(|row| (row.workload, &row.run))
            .collect::<Vec<_>>(),
    )?;
    drop(peer_process);
    drop(app);
    drop(db);
    Ok(())
}

/// What every round runs against.
#[derive(Clone, Copy)]
struct Servers<'a> {
    options: &'a Options,
    data: &'a Data,
    url: &'a str,
    sandbox: &'a Sandbox,
    statements: Statements,
    ticks_per_second: u64,
    app: &'a AppProcess,
    api: &'a Api,
    /// The peer's process and its API, when it runs.
    peer: Option<(&'a AppProcess, &'a Api)>,
}

/// One round's purchases, paid and not yet delivered: as many for the app and for the
/// baseline, and for the peer when it runs (none when it does not).
struct RoundPaid<'a> {
    app: &'a [Paid],
    baseline: &'a [Paid],
    peer: &'a [Paid],
}

fn items(paid: &[Paid]) -> anyhow::Result<Arc<Vec<Item>>> {
    Ok(Arc::new(
        paid.iter()
            .map(Item::from_paid)
            .collect::<anyhow::Result<_>>()?,
    ))
}

/// The three workloads once, each on the app, then the baseline, then the peer (when it
/// runs), every webhook round checked to have done its work. Returns the rows, ratios filled
/// in, and the state the app's first delivery left a purchase in.
async fn one_round(on: &Servers<'_>, paid: &RoundPaid<'_>) -> anyhow::Result<(Vec<Row>, State)> {
    let Servers {
        options,
        data,
        url,
        sandbox,
        statements,
        ticks_per_second,
        app,
        api,
        peer: peer_side,
    } = *on;
    let n = paid.app.len();
    let (app_paid, base_paid, peer_paid) = (paid.app, paid.baseline, paid.peer);
    let app_items = items(app_paid)?;
    let base_items = items(base_paid)?;
    let mut rows = Vec::new();
    let mut inbox = InboxCounts::read(data).await?;
    let mut completed = data.completed_purchases().await?;
    let events = i64::try_from(n)?;
    let first_expected = InboxCounts {
        rows: events,
        once: events,
        twice: 0,
        applied: events,
        ignored: 0,
    };
    let duplicate_expected = InboxCounts {
        rows: 0,
        once: -events,
        twice: events,
        applied: 0,
        ignored: 0,
    };

    // First deliveries.
    let measured = measure_app(
        app,
        ticks_per_second,
        options.idle,
        deliver_all(api, sandbox, app_paid, options.webhook_concurrency),
    )
    .await?;
    (inbox, completed) = check_round(
        data,
        "the app's first deliveries",
        &inbox,
        completed,
        first_expected,
        events,
    )
    .await?;
    rows.push(Row::server("first delivery", "app", measured));
    // What the app's first delivery left is what the baseline's UPDATE writes.
    let state = Arc::new(State::of(data, app_items[0].purchase_id).await?);
    let measured = baseline(
        data,
        Round {
            sequence: statements.first_delivery,
            items: Arc::clone(&base_items),
            requests: n,
            concurrency: options.webhook_concurrency,
            state: Arc::clone(&state),
            delivery_count: 1,
        },
        ticks_per_second,
    )
    .await?;
    (inbox, completed) = check_round(
        data,
        "the baseline's first deliveries",
        &inbox,
        completed,
        first_expected,
        events,
    )
    .await?;
    rows.push(Row::baseline("first delivery", measured));
    if let Some((process, peer_api)) = peer_side {
        let before = peer::Tally::read(url, peer_paid).await?;
        let measured = measure_app(
            process,
            ticks_per_second,
            options.idle,
            deliver_all(peer_api, sandbox, peer_paid, options.webhook_concurrency),
        )
        .await?;
        peer::check_first(&before, &peer::Tally::read(url, peer_paid).await?, n)?;
        rows.push(Row::server("first delivery", "peer", measured));
    }

    // Duplicates.
    let measured = measure_app(
        app,
        ticks_per_second,
        options.idle,
        deliver_all(api, sandbox, app_paid, options.webhook_concurrency),
    )
    .await?;
    (inbox, completed) = check_round(
        data,
        "the app's duplicates",
        &inbox,
        completed,
        duplicate_expected,
        0,
    )
    .await?;
    rows.push(Row::server("duplicate", "app", measured));
    let measured = baseline(
        data,
        Round {
            sequence: statements.duplicate,
            items: Arc::clone(&base_items),
            requests: n,
            concurrency: options.webhook_concurrency,
            state: Arc::clone(&state),
            delivery_count: 2,
        },
        ticks_per_second,
    )
    .await?;
    (_, _) = check_round(
        data,
        "the baseline's duplicates",
        &inbox,
        completed,
        duplicate_expected,
        0,
    )
    .await?;
    rows.push(Row::baseline("duplicate", measured));
    if let Some((process, peer_api)) = peer_side {
        let before = peer::Tally::read(url, peer_paid).await?;
        let measured = measure_app(
            process,
            ticks_per_second,
            options.idle,
            deliver_all(peer_api, sandbox, peer_paid, options.webhook_concurrency),
        )
        .await?;
        peer::check_duplicate(&before, &peer::Tally::read(url, peer_paid).await?)?;
        rows.push(Row::server("duplicate", "peer", measured));
    }

    // Purchase-status reads, over the app's (completed) purchases.
    let measured = measure_app(
        app,
        ticks_per_second,
        options.idle,
        read_all(api, app_paid, options.reads, options.read_concurrency),
    )
    .await?;
    rows.push(Row::server("purchase-status read", "app", measured));
    let measured = baseline(
        data,
        Round {
            sequence: statements.status_read,
            items: Arc::clone(&app_items),
            requests: options.reads,
            concurrency: options.read_concurrency,
            state: Arc::clone(&state),
            delivery_count: 0,
        },
        ticks_per_second,
    )
    .await?;
    rows.push(Row::baseline("purchase-status read", measured));
    if let Some((process, peer_api)) = peer_side {
        let measured = measure_app(
            process,
            ticks_per_second,
            options.idle,
            read_all(peer_api, peer_paid, options.reads, options.read_concurrency),
        )
        .await?;
        rows.push(Row::server("purchase-status read", "peer", measured));
    }
    fill_ratios(&mut rows);
    Ok((rows, State::clone(&state)))
}

/// The app's grouped-commit counters (groups, deliveries), read from its `/metrics`; `None`
/// when it does not group (`DATABASE_GROUP_COMMIT` off).
async fn group_commit_counts(metrics_port: u16) -> anyhow::Result<Option<(f64, f64)>> {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    let counter = |name: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    Ok(counter("lms_db_group_commits_total").zip(counter("lms_db_group_committed_events_total")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `requests` answered in one second, each in `latency_ms`.
    fn run(requests: usize, latency_ms: u64) -> Run {
        Run {
            requests,
            concurrency: 1,
            wall: Duration::from_secs(1),
            latencies: vec![Duration::from_millis(latency_ms); requests],
            per_item: Vec::new(),
            errors: 0,
            first_error: None,
        }
    }

    fn app_row(requests: usize, cpu_us: f64) -> Row {
        let resources = Resources {
            cpu_us,
            system_share: 0.5,
            idle_rss_kib: 10 * 1024,
            peak_rss_kib: 12 * 1024,
        };
        Row::server("read", "app", (run(requests, 2), resources, 10.0))
    }

    #[test]
    fn a_spread_is_the_middle_value_and_the_range_whatever_the_order() {
        assert_eq!(
            Spread::of(vec![3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                lowest: 1.0,
                highest: 3.0
            })
        );
        assert_eq!(
            Spread::of(vec![4.0, 1.0, 2.0, 10.0]).map(|s| s.median),
            Some(3.0),
            "an even count: the mean of the middle two"
        );
        assert_eq!(Spread::of(Vec::new()), None);
        assert_eq!(
            Spread::of(vec![0.5, 0.25, 0.75]).map(|s| s.render("x", 2)),
            Some("0.50x (0.25-0.75)".to_owned())
        );
    }

    #[test]
    fn the_summary_gives_each_rows_median_and_range_over_the_rounds() {
        let round = |app: usize, baseline: usize, cpu_us: f64| {
            let mut rows = vec![
                app_row(app, cpu_us),
                Row::baseline("read", (run(baseline, 1), 5.0)),
            ];
            fill_ratios(&mut rows);
            rows
        };
        // App/baseline: 0.5, 0.25, 0.75; app rates 500, 100, 600; CPU 40, 60, 50 us.
        let rounds = vec![
            round(500, 1000, 40.0),
            round(100, 400, 60.0),
            round(600, 800, 50.0),
        ];
        let summary = render_summary(&rounds, false);
        let lines: Vec<&str> = summary.lines().collect();
        let cells = |line: &str| -> Vec<String> {
            line.split("  ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(lines.len(), 4, "header, rule, one line a row:\n{summary}");
        assert!(lines[0].starts_with("workload"), "{summary}");
        assert_eq!(
            cells(lines[2]),
            [
                "read",
                "app",
                "500 (100-600)",
                "2.00 (2.00-2.00)",
                "50 (40-60)",
                "12.0 (12.0-12.0)",
                "0.50x (0.25-0.75)"
            ],
            "{summary}"
        );
        assert_eq!(
            cells(lines[3]),
            [
                "read",
                "baseline",
                "800 (400-1000)",
                "1.00 (1.00-1.00)",
                "-",
                "-",
                "-"
            ],
            "{summary}"
        );
        assert!(
            !lines[0].contains("app/peer"),
            "no peer column when the peer did not run:\n{summary}"
        );
    }
}
