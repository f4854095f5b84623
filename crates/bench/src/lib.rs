//! The harness shared by the benchmark binaries in `src/bin/`: command-line arguments, the
//! application started exactly as `lms-app` starts it (SQLite in a temporary directory, or a
//! scratch PostgreSQL database; the in-process Stripe sandbox standing in for Stripe), the
//! untimed HTTP set-up ([`Api`]: accounts, published courses, checkouts), a closed-loop load
//! driver with C concurrent clients of any kind ([`closed_loop_with`]), latency percentiles,
//! the event inbox counted behind the app's back ([`InboxCounts`]) and the plain table every
//! binary prints. [`process`]: the app as a separate process and what `/proc/<pid>` says about
//! it; [`compare`]: the app against a baseline of its own SQL.
//!
//! Nothing here asserts on timing; set-up steps and sanity checks fail loudly instead of
//! printing numbers for work that did not happen.

pub mod compare;
pub mod http1;
pub mod process;

use anyhow::{anyhow, bail, ensure, Context};
use lms_app::{Application, Settings};
use lms_stripe_sandbox::{Chaos, Sandbox};
use lms_test_db::TestDatabase;
use process::TempDir;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Args {
    /// Purchases (or requests) per scenario.
    pub events: usize,
    /// Concurrent clients, one scenario each.
    pub concurrency: Vec<usize>,
    /// PostgreSQL instead of SQLite (also when `BENCH_DATABASE_URL` is set).
    pub postgres: bool,
}

impl Args {
    /// Parses `--events N`, `--concurrency 1,8,32` and `--postgres` (`--name=value` works too).
    /// `Ok(None)` when `--help` was asked for (the usage has been printed).
    ///
    /// # Errors
    /// An unknown argument or a value that is not a positive integer list.
    pub fn parse(
        usage: &str,
        default_events: usize,
        default_concurrency: &[usize],
    ) -> anyhow::Result<Option<Self>> {
        let mut args = Self {
            events: default_events,
            concurrency: default_concurrency.to_vec(),
            postgres: std::env::var_os("BENCH_DATABASE_URL").is_some(),
        };
        let mut raw = std::env::args().skip(1);
        while let Some(arg) = raw.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| raw.next())
                    .ok_or_else(|| anyhow!("{name} needs a value\n{usage}"))
            };
            match name.as_str() {
                "--events" | "-n" => args.events = positive(&value("--events")?, "--events")?,
                "--concurrency" | "-c" => {
                    args.concurrency = value("--concurrency")?
                        .split(',')
                        .map(|c| positive(c.trim(), "--concurrency"))
                        .collect::<anyhow::Result<_>>()?;
                }
                "--postgres" => args.postgres = true,
                "--help" | "-h" => {
                    println!("{usage}");
                    return Ok(None);
                }
                // `cargo bench`-style harness flags are not ours; refuse anything else.
                other => bail!("unknown argument {other:?}\n{usage}"),
            }
        }
        Ok(Some(args))
    }
}

fn positive(raw: &str, name: &str) -> anyhow::Result<usize> {
    raw.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("{name} takes positive integers, got {raw:?}"))
}

/// The process's exit: the error chain on one line (no backtrace: these are a tool's errors,
/// such as a bad argument or a failed check), status 1.
pub fn exit(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Points [`TestDatabase`] at `BENCH_DATABASE_URL` when set. Call before any thread starts
/// (before the Tokio runtime is built): it writes the process environment.
pub fn use_bench_database_url() {
    if let Some(url) = std::env::var_os("BENCH_DATABASE_URL") {
        std::env::set_var("TEST_DATABASE_URL", url);
    }
}

/// The multi-threaded runtime the clients, the sandbox and the server's accept loop run on
/// (the HTTP workers have threads of their own).
///
/// # Errors
/// When the runtime cannot be built.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the Tokio runtime")
}

/// Where the data lives for one run; held only to be dropped at the end (directory removed,
/// database dropped).
#[derive(Debug)]
enum Storage {
    Sqlite { dir: TempDir },
    Postgres { db: TestDatabase },
}

/// The application serving on a free port, with its sandbox. Its HTTP set-up helpers are
/// [`Api`]'s (through `Deref`).
pub struct Bench {
    api: Api,
    pub sandbox: Arc<Sandbox>,
    pub storage: String,
    stop: actix_web::dev::ServerHandle,
    data: Storage,
}

impl std::fmt::Debug for Bench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bench")
            .field("base_url", &self.api.base_url)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Bench {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The app's REST API at `base_url`, for untimed set-up and checks: accounts, courses,
/// checkouts, purchase status. Works against the app in this process ([`Bench`]) or in
/// another one.
#[derive(Debug, Clone)]
pub struct Api {
    pub base_url: String,
    /// For set-up and checks (never timed).
    pub client: reqwest::Client,
}

/// A client that keeps its connections open and does not follow redirects.
///
/// # Errors
/// When the client cannot be built.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

impl Bench {
    /// Builds and serves the application as the binary does (`Application::build` from
    /// settings pairs): port 0, no Stripe key (the sandbox runs on a free port), no demo seed,
    /// default HTTP workers and pool size. The sandbox's own webhook deliveries are held back
    /// (a one-hour delivery delay) so that every delivery the app sees is one the bench sends.
    ///
    /// # Errors
    /// When the storage or the application cannot be started.
    pub async fn start(postgres: bool) -> anyhow::Result<Self> {
        let (storage, database_url, label) = if postgres {
            let db = TestDatabase::create("lms_bench_http").await;
            let url = db.url().to_owned();
            let label = format!("PostgreSQL (scratch database {})", db.name());
            (Storage::Postgres { db }, url, label)
        } else {
            let dir = TempDir::new("lms-bench")?;
            let url = format!("sqlite://{}", dir.path().join("lms.db").display());
            (
                Storage::Sqlite { dir },
                url,
                "SQLite (file in a temporary directory)".to_owned(),
            )
        };
        let settings = Settings::from_pairs([
            // Simulated payments on purpose, PostgreSQL included; the benches sign many users up
            // from one address, which the abuse limits exist to refuse.
            ("APP_MODE", "demo"),
            ("SIGN_UP_LIMIT_PER_IP", "off"),
            ("SIGN_IN_LIMIT_PER_IP", "off"),
            ("SIGN_IN_LIMIT_PER_EMAIL", "off"),
            ("DATABASE_URL", database_url.as_str()),
            // Loopback by its address: the load generator connects to it without resolving
            // `localhost` (`Api::address`).
            ("HOST", "127.0.0.1"),
            ("PORT", "0"),
            ("SANDBOX_PORT", "0"),
            ("SEED_DEMO", "false"),
            ("SHUTDOWN_TIMEOUT_SECS", "1"),
        ])?;
        let app = Application::build(settings).await?;
        let sandbox = app
            .sandbox_handle()
            .ok_or_else(|| anyhow!("no Stripe key is configured, yet no sandbox runs"))?;
        // The app points the sandbox at its own webhook route and that cannot be switched off;
        // hold the deliveries back for longer than any run instead.
        sandbox.set_chaos(Chaos {
            delivery_delay: Duration::from_secs(3600),
            ..Chaos::default()
        });
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let stop = app.server_handle();
        tokio::spawn(app.run_until_stopped());
        let bench = Self {
            api: Api::new(base_url)?,
            sandbox,
            storage: label,
            stop,
            data: storage,
        };
        let (status, body) = bench.get("/api/v1/healthcheck", None).await?;
        ensure!(status == StatusCode::OK, "healthcheck: {status} {body}");
        Ok(bench)
    }

    /// The event inbox as it stands, read over a connection of its own. A check, never timed.
    ///
    /// # Errors
    /// When the database cannot be opened or queried.
    pub async fn inbox(&self) -> anyhow::Result<InboxCounts> {
        match &self.data {
            Storage::Sqlite { dir } => {
                InboxCounts::read(&Data::Sqlite(dir.path().join("lms.db"))).await
            }
            Storage::Postgres { db } => {
                InboxCounts::read(&Data::Postgres(db.url().to_owned())).await
            }
        }
    }

    /// Stops the server (draining), then the sandbox and the storage go with `self`.
    pub async fn stop(self) {
        self.stop.stop(true).await;
    }
}

impl Api {
    /// A client for the API at `base_url` (`http://host:port`).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base_url: String) -> anyhow::Result<Self> {
        Ok(Self {
            base_url,
            client: client()?,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The server's socket address, for [`http1::closed_loop`].
    ///
    /// # Errors
    /// When `base_url` is not `http://<ip>:<port>`.
    pub fn address(&self) -> anyhow::Result<std::net::SocketAddr> {
        self.base_url
            .strip_prefix("http://")
            .and_then(|address| address.parse().ok())
            .ok_or_else(|| anyhow!("{} is not http://<ip>:<port>", self.base_url))
    }

    /// A GET for set-up or checks.
    ///
    /// # Errors
    /// Transport errors or a body that is not JSON.
    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.exchange(reqwest::Method::GET, path, token, None).await
    }

    /// A JSON request for set-up or checks.
    ///
    /// # Errors
    /// Transport errors or a body that is not JSON.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.exchange(method, path, token, Some(body)).await
    }

    async fn exchange(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.client.request(method.clone(), self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let context = || format!("{method} {path}");
        let response = request.send().await.with_context(context)?;
        let status = response.status();
        Ok((status, response.json().await.with_context(context)?))
    }

    /// Signs up a user over HTTP; returns the token.
    ///
    /// # Errors
    /// Anything but 201.
    pub async fn sign_up(&self, role: &str) -> anyhow::Result<String> {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/user/signup",
                None,
                &json!({"name": "Bench User", "email": email, "password": "bench password 123", "role": role}),
            )
            .await?;
        ensure!(status == StatusCode::CREATED, "sign-up: {status} {body}");
        text(&body["token"], "sign-up token")
    }

    /// `count` published paid courses by one new instructor; returns their ids.
    ///
    /// # Errors
    /// Any unexpected status.
    pub async fn published_courses(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let instructor = self.sign_up("instructor").await?;
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let (status, body) = self
                .send(
                    reqwest::Method::POST,
                    "/api/v1/courses",
                    Some(&instructor),
                    &json!({"title": format!("Bench course {i}"), "priceCents": 4999, "currency": "USD"}),
                )
                .await?;
            ensure!(
                status == StatusCode::CREATED,
                "create course: {status} {body}"
            );
            let id = text(&body["course"]["id"], "course id")?;
            let (status, body) = self
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/courses/{id}"),
                    Some(&instructor),
                    &json!({"isPublished": true}),
                )
                .await?;
            ensure!(status == StatusCode::OK, "publish course: {status} {body}");
            ids.push(id);
        }
        Ok(ids)
    }

    /// `count` distinct (student token, course id) pairs nobody has bought yet: about
    /// `sqrt(count)` students times as many courses (a sign-up hashes a password, which is slow
    /// on purpose, so students are shared across courses).
    ///
    /// # Errors
    /// Any unexpected status.
    pub async fn buyers(&self, count: usize) -> anyhow::Result<Vec<Buyer>> {
        let courses_wanted = count.isqrt().max(1);
        let students_wanted = count.div_ceil(courses_wanted);
        let courses = self.published_courses(courses_wanted).await?;
        let mut students = Vec::with_capacity(students_wanted);
        for _ in 0..students_wanted {
            students.push(self.sign_up("student").await?);
        }
        Ok(students
            .iter()
            .flat_map(|token| {
                courses.iter().map(|course| Buyer {
                    token: token.clone(),
                    course_id: course.clone(),
                })
            })
            .take(count)
            .collect())
    }

    /// `POST create-checkout-session` for a buyer; returns the status and the session id.
    ///
    /// # Errors
    /// Transport errors, or no session in a 2xx answer.
    pub async fn checkout(&self, buyer: &Buyer) -> anyhow::Result<(StatusCode, String)> {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                CHECKOUT_PATH,
                Some(&buyer.token),
                &json!({"courseId": buyer.course_id}),
            )
            .await?;
        ensure!(status.is_success(), "checkout: {status} {body}");
        Ok((status, text(&body["data"]["session"]["id"], "session id")?))
    }

    /// The purchase status string for a buyer (`pending`, `completed`, ...).
    ///
    /// # Errors
    /// Anything but 200.
    pub async fn purchase_status(&self, buyer: &Buyer) -> anyhow::Result<String> {
        let (status, body) = self.get(&buyer.status_path(), Some(&buyer.token)).await?;
        ensure!(status == StatusCode::OK, "purchase-status: {status} {body}");
        text(&body["data"]["purchaseStatus"], "purchaseStatus")
    }
}

/// Where a run's data lives, to look at it behind the app's back.
#[derive(Debug, Clone)]
pub enum Data {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// The PostgreSQL database's URL.
    Postgres(String),
}

impl Data {
    /// The rows of one query (SQL text valid on both databases), over a connection of its
    /// own. A check, never timed.
    ///
    /// # Errors
    /// When the database cannot be opened or queried.
    pub async fn load<T>(&self, query: String) -> anyhow::Result<Vec<T>>
    where
        T: diesel::QueryableByName<diesel::pg::Pg>
            + diesel::QueryableByName<diesel::sqlite::Sqlite>
            + Send
            + 'static,
    {
        match self {
            Self::Sqlite(file) => {
                let file = file.display().to_string();
                tokio::task::spawn_blocking(move || {
                    use diesel::{Connection, RunQueryDsl};
                    let mut conn = diesel::SqliteConnection::establish(&file)?;
                    Ok::<_, anyhow::Error>(diesel::sql_query(query).load(&mut conn)?)
                })
                .await?
            }
            Self::Postgres(url) => {
                use diesel_async::AsyncConnection;
                let mut conn = diesel_async::AsyncPgConnection::establish(url).await?;
                Ok(diesel_async::RunQueryDsl::load(diesel::sql_query(query), &mut conn).await?)
            }
        }
    }

    /// How many purchases are `completed`.
    ///
    /// # Errors
    /// When the database cannot be opened or queried.
    pub async fn completed_purchases(&self) -> anyhow::Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows: Vec<Count> = self
            .load("SELECT count(*) AS n FROM purchases WHERE status = 'completed'".to_owned())
            .await?;
        Ok(rows.first().map_or(0, |c| c.n))
    }
}

/// The event inbox (`webhook_events`) counted: rows, by delivery count and by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, diesel::QueryableByName)]
pub struct InboxCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub rows: i64,
    /// Rows delivered once, and twice.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub once: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub twice: i64,
    /// Rows whose outcome is `applied`, and `ignored` (a type the app does not act on).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub applied: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub ignored: i64,
}

impl InboxCounts {
    const QUERY: &'static str = "SELECT count(*) AS rows, \
         coalesce(sum(CASE WHEN delivery_count = 1 THEN 1 ELSE 0 END), 0) AS once, \
         coalesce(sum(CASE WHEN delivery_count = 2 THEN 1 ELSE 0 END), 0) AS twice, \
         coalesce(sum(CASE WHEN outcome = 'applied' THEN 1 ELSE 0 END), 0) AS applied, \
         coalesce(sum(CASE WHEN outcome = 'ignored' THEN 1 ELSE 0 END), 0) AS ignored \
         FROM webhook_events";

    /// Counts the inbox of `data` over a connection of its own.
    ///
    /// # Errors
    /// When the database cannot be opened or queried.
    pub async fn read(data: &Data) -> anyhow::Result<Self> {
        data.load(Self::QUERY.to_owned())
            .await?
            .pop()
            .ok_or_else(|| anyhow!("no answer to the inbox count"))
    }

    /// What changed since `before` (each count's difference).
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        Self {
            rows: self.rows - before.rows,
            once: self.once - before.once,
            twice: self.twice - before.twice,
            applied: self.applied - before.applied,
            ignored: self.ignored - before.ignored,
        }
    }
}

/// The checkout route.
pub const CHECKOUT_PATH: &str = "/api/v1/payments/create-checkout-session";

/// One student who may buy one course.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub token: String,
    pub course_id: String,
}

impl Buyer {
    pub fn status_path(&self) -> String {
        format!(
            "/api/v1/payments/courses/{}/purchase-status",
            self.course_id
        )
    }
}

fn text(value: &Value, what: &str) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no {what} in the answer"))
}

/// What a closed-loop run measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub requests: usize,
    pub concurrency: usize,
    pub wall: Duration,
    /// Sorted ascending.
    pub latencies: Vec<Duration>,
    /// Per item, in the order given: its latency and whether it failed.
    pub per_item: Vec<(Duration, bool)>,
    /// Answers that were not the expected status (or did not arrive).
    pub errors: usize,
    pub first_error: Option<String>,
}

impl Run {
    /// Nearest-rank percentile (`p` in 0..=100).
    pub fn percentile(&self, p: usize) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p * self.latencies.len()).div_ceil(100).max(1);
        self.latencies[rank.min(self.latencies.len()) - 1]
    }

    /// The items for which `keep(index)` holds, as a run of their own: latencies and errors
    /// only (no wall time, so no rate: they were interleaved with the others).
    #[must_use]
    pub fn only(&self, keep: impl Fn(usize) -> bool) -> Self {
        let per_item: Vec<(Duration, bool)> = self
            .per_item
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, item)| *item)
            .collect();
        let mut latencies: Vec<Duration> = per_item.iter().map(|(d, _)| *d).collect();
        latencies.sort_unstable();
        Self {
            requests: per_item.len(),
            concurrency: self.concurrency,
            wall: Duration::ZERO,
            latencies,
            errors: per_item.iter().filter(|(_, failed)| *failed).count(),
            first_error: None,
            per_item,
        }
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    pub fn per_second(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            count_f64(self.requests) / secs
        } else {
            0.0
        }
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "counts far below 2^52 convert exactly"
)]
fn count_f64(n: usize) -> f64 {
    n as f64
}

/// A closed loop over any kind of client: each of `workers` (one per concurrent client: an
/// HTTP connection, [`http1::closed_loop`]; a database connection, ...) takes the next of
/// `requests` item indexes as soon as its previous one is done, by calling `op(worker, index)`,
/// which hands the worker back with the outcome (`Err`: what went wrong). Latency is the
/// time `op`'s future takes; the wall time covers the whole batch.
///
/// # Errors
/// When a task panics.
pub async fn closed_loop_with<W, F, Fut>(
    workers: Vec<W>,
    requests: usize,
    op: F,
) -> anyhow::Result<Run>
where
    W: Send + 'static,
    F: Fn(W, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (W, Result<(), String>)> + Send + 'static,
{
    let concurrency = workers.len();
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in workers {
        let (op, next) = (Arc::clone(&op), Arc::clone(&next));
        tasks.spawn(async move {
            let mut worker = worker;
            let mut latencies = Vec::new();
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break (latencies, first_error);
                }
                let sent = Instant::now();
                let (back, outcome) = op(worker, i).await;
                worker = back;
                latencies.push((i, sent.elapsed(), outcome.is_err()));
                if let Err(err) = outcome {
                    first_error.get_or_insert(err);
                }
            }
        });
    }
    let mut run = Run {
        requests,
        concurrency,
        wall: Duration::ZERO,
        latencies: Vec::with_capacity(requests),
        per_item: vec![(Duration::ZERO, true); requests],
        errors: 0,
        first_error: None,
    };
    while let Some(done) = tasks.join_next().await {
        let (latencies, first_error) = done.context("a client task failed")?;
        for (i, latency, failed) in latencies {
            run.per_item[i] = (latency, failed);
            run.latencies.push(latency);
            run.errors += usize::from(failed);
        }
        if run.first_error.is_none() {
            run.first_error = first_error;
        }
    }
    run.wall = started.elapsed();
    run.latencies.sort_unstable();
    Ok(run)
}

/// The facts that make numbers from two machines comparable, printed before the table.
/// `title` is the binary's name.
pub fn print_header(title: &str, bench: &Bench) {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let profile = if cfg!(debug_assertions) {
        "dev (debug assertions on; dependencies at opt-level 2)"
    } else {
        "release"
    };
    let command: Vec<String> = std::env::args().collect();
    println!("# {title}");
    println!("command      : {}", command.join(" "));
    let rest: Vec<&str> = command.iter().skip(1).map(String::as_str).collect();
    println!(
        "reproduce    : cargo run -p lms-bench{} --bin {title}{}{}",
        if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        },
        if rest.is_empty() { "" } else { " -- " },
        rest.join(" ")
    );
    println!("build profile: {profile}");
    println!("cores        : {cores} (std::thread::available_parallelism)");
    println!(
        "os/arch      : {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("storage      : {}", bench.storage);
    println!(
        "app          : lms_app::Application on {} (HTTP workers and pool size at their defaults); clients, app and sandbox share this machine",
        bench.base_url
    );
    println!();
}

/// How to read the table, printed under it.
pub const LEGEND: &str = "req/s: requests answered per second of wall time (a webhook request carries one event, so req/s = events/s)\n\
latency: from sending a request to the end of its answer's body; percentiles are nearest-rank";

/// A plain, aligned table.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub const HEADER: [&'static str; 10] = [
        "scenario", "C", "requests", "errors", "wall s", "req/s", "p50 ms", "p95 ms", "p99 ms",
        "max ms",
    ];

    pub fn new() -> Self {
        Self {
            rows: vec![Self::HEADER.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub fn push(&mut self, scenario: &str, run: &Run) {
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        self.rows.push(vec![
            scenario.to_owned(),
            run.concurrency.to_string(),
            run.requests.to_string(),
            run.errors.to_string(),
            if run.wall.is_zero() {
                "-".to_owned()
            } else {
                format!("{:.3}", run.wall.as_secs_f64())
            },
            if run.wall.is_zero() {
                "-".to_owned()
            } else {
                format!("{:.0}", run.per_second())
            },
            ms(run.percentile(50)),
            ms(run.percentile(95)),
            ms(run.percentile(99)),
            ms(run.max()),
        ]);
    }

    /// The table as text: first column left-aligned, the numbers right-aligned.
    pub fn render(&self) -> String {
        let columns = Self::HEADER.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| self.rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, width))| {
                    if c == 0 {
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
}

/// Fails (after the table has been printed) when any run had errors, so a broken set-up
/// never passes for a fast one.
///
/// # Errors
/// The first error of the first run that had any.
pub fn check_errors(runs: &[(&str, &Run)]) -> anyhow::Result<()> {
    for (scenario, run) in runs {
        if run.errors > 0 {
            bail!(
                "{scenario} (C={}): {} of {} requests failed; first: {}",
                run.concurrency,
                run.errors,
                run.requests,
                run.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}
