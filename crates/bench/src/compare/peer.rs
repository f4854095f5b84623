//! The peer: the same job hand-written in Express + stripe-node + pg (`crates/bench/peer`,
//! one `node` process, a `pg` pool of 10), measured in the same run as the app, on the same
//! database server and the same scratch database (its own `peer_*` tables).
//!
//! Its purchases are made like the app's: checkouts through the app, paid in the bench's
//! Stripe sandbox, whose `checkout.session.completed` events the peer receives signed with the
//! same webhook secret. The bench copies the app's users and courses into the peer's tables
//! (same ids, so the tokens the app issued are the peer's tokens too: both verify HS256 with
//! the same `JWT_SECRET`) and inserts each of the peer's purchases as the session that paid it
//! describes it (id, buyer, course, amount, currency, session), pending. Nothing of the peer
//! reads the app's tables.

use super::setup::{self, Paid};
use crate::process::{free_port, AppProcess, TempDir};
use crate::Api;
use anyhow::{anyhow, bail, ensure, Context};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Whether to run the peer (`--peer`, `--no-peer`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// With PostgreSQL, when `node` is found and its dependencies are (or can be) installed.
    Auto,
    /// Required: anything missing stops the run.
    On,
    Off,
}

/// The `node` that runs the peer.
#[derive(Debug, Clone)]
pub struct Node {
    /// `node --version`.
    pub version: String,
    /// The peer's dependencies as installed (`name version`, from `node_modules`).
    pub packages: Vec<String>,
}

/// Run the peer with this node, or not, and why.
#[derive(Debug, Clone)]
pub enum Prepared {
    Run(Node),
    Skip(String),
}

/// `crates/bench/peer`.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peer")
}

/// The major version of `v20.11.1`.
fn major(version: &str) -> Option<u32> {
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Decides whether the peer runs: it needs PostgreSQL, `node` 20 or newer, and its
/// dependencies, which `npm ci` installs from the lock file when `node_modules` is missing
/// or unfinished.
/// With [`Choice::Auto`] a missing piece skips the peer (the reason is returned); with
/// [`Choice::On`] it is an error.
///
/// # Errors
/// With [`Choice::On`], when the peer cannot run.
pub fn prepare(choice: Choice, postgres: bool) -> anyhow::Result<Prepared> {
    let skip = |reason: String| -> anyhow::Result<Prepared> {
        if choice == Choice::On {
            bail!("--peer: {reason}");
        }
        Ok(Prepared::Skip(reason))
    };
    if choice == Choice::Off {
        return Ok(Prepared::Skip("--no-peer".to_owned()));
    }
    if !postgres {
        return skip(
            "the peer (Express + pg) needs PostgreSQL: run with --postgres to include it"
                .to_owned(),
        );
    }
    let version = match Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => return skip(format!("`node --version` failed ({})", out.status)),
        Err(err) => {
            return skip(format!(
                "no `node` on PATH ({err}); install Node.js 20 or newer"
            ));
        }
    };
    if major(&version).is_none_or(|major| major < 20) {
        return skip(format!(
            "node {version} is too old: the peer needs Node.js 20 or newer"
        ));
    }
    let dir = dir();
    // npm writes its hidden lock file last: without it an install is missing or unfinished.
    if !dir
        .join("node_modules")
        .join(".package-lock.json")
        .is_file()
    {
        eprintln!(
            "compare: installing the peer's dependencies: npm ci in {}",
            dir.display()
        );
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output();
        match installed {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return skip(format!(
                    "`npm ci` in {} failed ({}): it needs the npm registry once (offline? run `npm ci` there when online, or pass --no-peer); its last lines:\n{}",
                    dir.display(),
                    out.status,
                    tail.join("\n")
                ));
            }
            Err(err) => {
                return skip(format!(
                    "could not run `npm ci` in {} ({err}): install npm, or run `npm ci` there yourself",
                    dir.display()
                ));
            }
        }
    }
    let packages = ["express", "stripe", "pg", "jsonwebtoken"]
        .iter()
        .map(|name| {
            let manifest = dir.join("node_modules").join(name).join("package.json");
            let version = std::fs::read_to_string(&manifest)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|json| json["version"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "?".to_owned());
            format!("{name} {version}")
        })
        .collect();
    Ok(Prepared::Run(Node { version, packages }))
}

/// The pool size the peer gets: the app's (`DATABASE_POOL_SIZE`, 10 by default).
pub fn pool_size() -> String {
    std::env::var("DATABASE_POOL_SIZE").unwrap_or_else(|_| "10".to_owned())
}

/// Starts `node crates/bench/peer/server.js` on a free loopback port against `database_url`
/// (it creates its tables when missing), with the app's JWT key and webhook secret; waits
/// until it answers its healthcheck.
///
/// # Errors
/// When it cannot start or never becomes healthy (its output is in the error).
pub async fn start(database_url: &str, jwt_secret: &str) -> anyhow::Result<AppProcess> {
    let port = free_port()?;
    let script = dir().join("server.js");
    let mut command = Command::new("node");
    command
        .arg(&script)
        .env("NODE_ENV", "production")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATABASE_URL", database_url)
        .env("PG_POOL_SIZE", pool_size())
        .env("JWT_SECRET", jwt_secret)
        .env("STRIPE_SECRET_KEY", setup::STRIPE_KEY)
        .env("STRIPE_WEBHOOK_SECRET", setup::WEBHOOK_SECRET);
    AppProcess::spawn(
        command,
        format!("node {}", script.display()),
        port,
        TempDir::new("lms-bench-peer")?,
    )
    .await
    .context("starting the peer (node crates/bench/peer/server.js)")
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to PostgreSQL for the peer's tables")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// One purchase as the peer stores it, from the session that paid it.
struct Seed {
    id: Uuid,
    user_id: Uuid,
    course_id: Uuid,
    amount_cents: i64,
    currency: String,
    session_id: String,
}

impl Seed {
    fn of(paid: &Paid) -> anyhow::Result<Self> {
        let session = &paid.event["data"]["object"];
        let uuid = |name: &str| {
            session["metadata"][name]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .ok_or_else(|| anyhow!("the session has no metadata.{name}: {session}"))
        };
        let text = |name: &str| {
            session[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("the session has no {name}: {session}"))
        };
        Ok(Self {
            id: paid.purchase_id,
            user_id: uuid("user_id")?,
            course_id: uuid("course_id")?,
            amount_cents: session["amount_total"]
                .as_i64()
                .ok_or_else(|| anyhow!("the session has no amount_total: {session}"))?,
            currency: text("currency")?.to_uppercase(),
            session_id: text("id")?,
        })
    }
}

/// Fills the peer's tables: every user and course of the app (copied, same ids), and `paid`
/// as pending purchases. Untimed.
///
/// # Errors
/// When the database refuses, or a session lacks what the peer stores.
pub async fn seed(url: &str, paid: &[Paid]) -> anyhow::Result<()> {
    let seeds: Vec<Seed> = paid.iter().map(Seed::of).collect::<anyhow::Result<_>>()?;
    let client = connect(url).await?;
    client
        .batch_execute(
            "INSERT INTO peer_users (id, name, email, role, session_generation, created_at)
               SELECT id, name, email, role, session_generation, created_at FROM users
               ON CONFLICT (id) DO NOTHING;
             INSERT INTO peer_courses (id, instructor_id, title, subtitle, description, category,
                                       level, price_cents, currency, published, created_at, updated_at)
               SELECT id, instructor_id, title, subtitle, description, category, level,
                      price_cents, currency, published, created_at, updated_at FROM courses
               ON CONFLICT (id) DO NOTHING;",
        )
        .await
        .context("copying the app's users and courses into the peer's tables")?;
    let ids: Vec<Uuid> = seeds.iter().map(|s| s.id).collect();
    let users: Vec<Uuid> = seeds.iter().map(|s| s.user_id).collect();
    let courses: Vec<Uuid> = seeds.iter().map(|s| s.course_id).collect();
    let amounts: Vec<i64> = seeds.iter().map(|s| s.amount_cents).collect();
    let currencies: Vec<&str> = seeds.iter().map(|s| s.currency.as_str()).collect();
    let sessions: Vec<&str> = seeds.iter().map(|s| s.session_id.as_str()).collect();
    let inserted = client
        .execute(
            "INSERT INTO peer_purchases (id, user_id, course_id, amount_cents, currency, checkout_session_id)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[])",
            &[&ids, &users, &courses, &amounts, &currencies, &sessions],
        )
        .await
        .context("inserting the peer's purchases")?;
    ensure!(
        usize::try_from(inserted)? == seeds.len(),
        "inserted {inserted} of the peer's {} purchases",
        seeds.len()
    );
    Ok(())
}

/// What the peer's tables say about a set of purchases and their events (a check, untimed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Rows in `peer_events`, all of them.
    pub events: i64,
    /// Of the given purchases' events, how many are recorded.
    pub recorded: i64,
    /// Of the given purchases, how many are completed with their session's payment intent
    /// and a payment time.
    pub completed: i64,
    /// md5 over every peer purchase's id, status and `updated_at`: unchanged when nothing
    /// was written.
    pub fingerprint: String,
}

impl Tally {
    /// Reads the tally for `paid`.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn read(url: &str, paid: &[Paid]) -> anyhow::Result<Self> {
        let client = connect(url).await?;
        let ids: Vec<Uuid> = paid.iter().map(|p| p.purchase_id).collect();
        let intents: Vec<&str> = paid.iter().map(Paid::payment_intent).collect();
        let events: Vec<&str> = paid.iter().map(Paid::event_id).collect();
        let row = client
            .query_one(
                "SELECT
                   (SELECT count(*) FROM peer_events) AS events,
                   (SELECT count(*) FROM peer_events WHERE id = ANY($3::text[])) AS recorded,
                   (SELECT count(*) FROM peer_purchases p
                      JOIN unnest($1::uuid[], $2::text[]) AS e (id, intent) ON p.id = e.id
                     WHERE p.status = 'completed' AND p.payment_intent_id = e.intent
                       AND p.paid_at IS NOT NULL) AS completed,
                   (SELECT coalesce(md5(string_agg(id::text || status || updated_at::text, ',' ORDER BY id)), '')
                      FROM peer_purchases) AS fingerprint",
                &[&ids, &intents, &events],
            )
            .await
            .context("reading the peer's tables")?;
        Ok(Self {
            events: row.try_get("events")?,
            recorded: row.try_get("recorded")?,
            completed: row.try_get("completed")?,
            fingerprint: row.try_get("fingerprint")?,
        })
    }
}

/// After the peer's first deliveries of `paid`: each event recorded once, each purchase
/// completed with its payment intent, nothing else written to the inbox.
///
/// # Errors
/// What is missing.
pub fn check_first(before: &Tally, after: &Tally, n: usize) -> anyhow::Result<()> {
    let n = i64::try_from(n)?;
    ensure!(
        after.events - before.events == n && after.recorded == n,
        "the peer's first deliveries recorded {} events ({} of the {n} sent), expected {n}",
        after.events - before.events,
        after.recorded
    );
    ensure!(
        after.completed == n,
        "the peer's first deliveries completed {} of {n} purchases with their payment intent",
        after.completed
    );
    Ok(())
}

/// After the peer's duplicates: no event recorded again, no purchase written again.
///
/// # Errors
/// What changed.
pub fn check_duplicate(before: &Tally, after: &Tally) -> anyhow::Result<()> {
    ensure!(
        after.events == before.events,
        "the peer's duplicates added {} events",
        after.events - before.events
    );
    ensure!(
        after.fingerprint == before.fingerprint && after.completed == before.completed,
        "the peer's duplicates wrote purchases again"
    );
    Ok(())
}

/// Every peer purchase is completed and every peer event is one of theirs, once.
///
/// # Errors
/// The difference.
pub async fn end_state(url: &str) -> anyhow::Result<(i64, i64)> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM peer_purchases) AS purchases,
                    (SELECT count(*) FROM peer_purchases WHERE status <> 'completed') AS open,
                    (SELECT count(*) FROM peer_events) AS events",
            &[],
        )
        .await?;
    let (purchases, open, events): (i64, i64, i64) = (
        row.try_get("purchases")?,
        row.try_get("open")?,
        row.try_get("events")?,
    );
    ensure!(
        open == 0,
        "{open} of the peer's {purchases} purchases are not completed"
    );
    ensure!(
        events == purchases,
        "the peer recorded {events} events for {purchases} purchases (one each expected)"
    );
    Ok((purchases, events))
}

/// The fields of the status answer that are each server's own record, not copied data: the
/// purchase's creation and last change (when each server stored and applied it). They must
/// both be timestamps; their values differ.
pub const OWN_TIMES: [&str; 2] = [".data.purchase.createdAt", ".data.purchase.updatedAt"];

/// How the peer's purchase-status answer differs from the app's for the same buyer, course
/// and purchase: every key and every value, timestamps compared to the millisecond (the
/// peer's JavaScript `Date` has no finer) but those at `own_times` (both timestamps is
/// enough), numbers by value (`20` and `20.0`). Empty when they agree.
pub fn answer_differences(app: &Value, peer: &Value, own_times: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    diff("", app, peer, own_times, &mut out);
    out
}

fn millis(text: &str) -> Option<i128> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

fn diff(path: &str, app: &Value, peer: &Value, own_times: &[&str], out: &mut Vec<String>) {
    match (app, peer) {
        (Value::Object(a), Value::Object(p)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match p.get(key) {
                    Some(other) => diff(&here, value, other, own_times, out),
                    None => out.push(format!("{here}: the peer has no such key")),
                }
            }
            for key in p.keys().filter(|key| !a.contains_key(*key)) {
                out.push(format!("{path}.{key}: only the peer has it"));
            }
        }
        (Value::Number(a), Value::Number(p)) if a.as_f64() == p.as_f64() => {}
        (Value::String(a), Value::String(p))
            if a == p || millis(a).is_some_and(|a| millis(p) == Some(a)) => {}
        (Value::String(a), Value::String(p))
            if own_times.contains(&path) && millis(a).is_some() && millis(p).is_some() => {}
        (a, p) if a == p => {}
        (a, p) => out.push(format!("{path}: app {a}, peer {p}")),
    }
}

/// The app's and the peer's answers to one buyer's purchase-status read.
///
/// # Errors
/// When either does not answer 200.
pub async fn answers(app: &Api, peer: &Api, paid: &Paid) -> anyhow::Result<(Value, Value)> {
    let path = paid.buyer.status_path();
    let (status, app_answer) = app.get(&path, Some(&paid.buyer.token)).await?;
    ensure!(
        status.is_success(),
        "the app's purchase-status: {status} {app_answer}"
    );
    let (status, peer_answer) = peer.get(&path, Some(&paid.buyer.token)).await?;
    ensure!(
        status.is_success(),
        "the peer's purchase-status: {status} {peer_answer}"
    );
    Ok((app_answer, peer_answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_agree_across_number_and_time_spellings() {
        let app = json!({"a": 20.0, "t": "2026-01-31T09:00:00.123456Z", "n": null, "s": "x"});
        let peer = json!({"a": 20, "t": "2026-01-31T09:00:00.123Z", "n": null, "s": "x"});
        assert!(answer_differences(&app, &peer, &[]).is_empty());
        let later = json!({"a": 20, "t": "2026-01-31T09:00:01Z", "n": null, "s": "x"});
        assert_eq!(answer_differences(&app, &later, &[]).len(), 1);
        assert!(answer_differences(&app, &later, &[".t"]).is_empty());
    }

    #[test]
    fn answers_differ_by_key_and_value() {
        let app = json!({"a": 1, "b": {"c": "x"}});
        let peer = json!({"a": 2, "b": {"d": "x"}});
        let found = answer_differences(&app, &peer, &[]);
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn node_major_versions() {
        assert_eq!(major("v20.20.2"), Some(20));
        assert_eq!(major("v18.0.0\n"), Some(18));
        assert_eq!(major("x"), None);
    }
}
