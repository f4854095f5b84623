//! Webhook throughput over HTTP: signed Stripe events POSTed to `/api/v1/payments/webhook` of
//! the whole application (signature check, event parsing, storage transaction), first
//! deliveries and duplicate redeliveries, with C concurrent clients; then the frontend's hot
//! read, `GET purchase-status`.
//!
//! ```text
//! cargo run -p lms-bench --release --bin webhook_throughput -- [--events N] [--concurrency 1,8,32] [--postgres]
//! ```
//!
//! Set-up (untimed, over HTTP): one instructor publishes courses, students sign up, each of
//! N x (number of concurrency levels) (student, course) pairs opens a checkout through the
//! real Stripe adapter against the sandbox, and the sandbox pays it with the test card. The
//! events the sandbox emitted for those payments (what Stripe sends: `charge.succeeded`,
//! `payment_intent.succeeded`, `checkout.session.completed`) are signed by the sandbox and
//! replayed by the bench; the sandbox's own deliveries are held back, so the first POST of an
//! event is its first delivery. Every purchase is checked `completed` after the first round.

use anyhow::{ensure, Context};
use lms_bench::http1::{self, Prepared};
use lms_bench::{check_errors, print_header, Args, Bench, Buyer, InboxCounts, Run, Table};
use lms_stripe_sandbox::{PaymentMethod, PaymentOutcome};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

const USAGE: &str = "usage: webhook_throughput [--events N] [--concurrency 1,8,32] [--postgres]
  --events N        purchases per concurrency level (each card payment emits 3 events; default 1000)
  --concurrency L   comma-separated client counts, one scenario each (default 1,8,32)
  --postgres        PostgreSQL in a scratch database (also when BENCH_DATABASE_URL is set; it then
                    names the server/maintenance database) instead of SQLite";

fn main() -> std::process::ExitCode {
    lms_bench::exit((|| {
        let Some(args) = Args::parse(USAGE, 1000, &[1, 8, 32])? else {
            return Ok(());
        };
        lms_bench::use_bench_database_url();
        lms_bench::runtime()?.block_on(run(args))
    })())
}

/// The types a card payment emits, in the order the sandbox emits them.
const EVENT_TYPES: &[&str] = &[
    "charge.succeeded",
    "payment_intent.succeeded",
    "checkout.session.completed",
];

/// One concurrency level's purchases and the events their payments emitted.
struct Level {
    concurrency: usize,
    buyers: Vec<Buyer>,
    events: Vec<Value>,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bench = Bench::start(args.postgres).await?;
    print_header("webhook_throughput", &bench);

    let setup = Instant::now();
    let buyers = bench
        .buyers(args.events * args.concurrency.len())
        .await
        .context("setting up buyers")?;
    let mut levels = Vec::new();
    let mut mix = BTreeMap::<String, usize>::new();
    for (&concurrency, buyers) in args.concurrency.iter().zip(buyers.chunks(args.events)) {
        let before = bench.sandbox.events().len();
        for buyer in buyers {
            let (status, session) = bench.checkout(buyer).await?;
            ensure!(status == StatusCode::CREATED, "checkout: {status}");
            let outcome = bench
                .sandbox
                .pay(
                    &session,
                    &PaymentMethod::Card("4242424242424242".to_owned()),
                )
                .map_err(|err| anyhow::anyhow!("sandbox pay: {err:?}"))?;
            ensure!(outcome == PaymentOutcome::Paid, "sandbox pay: {outcome:?}");
        }
        let events = bench.sandbox.events().split_off(before);
        for event in &events {
            *mix.entry(event["type"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        levels.push(Level {
            concurrency,
            buyers: buyers.to_vec(),
            events,
        });
    }
    println!(
        "set-up: {} purchases paid in the sandbox in {:.1}s (untimed); events per level: {}; event mix over all levels: {}",
        buyers.len(),
        setup.elapsed().as_secs_f64(),
        levels.first().map_or(0, |l| l.events.len()),
        mix.iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();

    let server = bench.address()?;
    let mut table = Table::new();
    let mut runs: Vec<(String, Run)> = Vec::new();
    for level in &levels {
        // Signed just before the round, as Stripe signs at send time (the timestamp is checked).
        let inbox_before = bench.inbox().await?;
        let first = replay(&bench, server, &level.events, level.concurrency).await?;
        let completed = completed(&bench, &level.buyers).await?;
        ensure!(
            completed == level.buyers.len(),
            "after the first deliveries only {completed} of {} purchases are completed",
            level.buyers.len()
        );
        // The inbox records every verified event once, with its outcome: the ones the app acts
        // on as applied, payment_intent.succeeded (a type it does not act on) as ignored.
        let events = i64::try_from(level.events.len())?;
        let ignored = i64::try_from(
            level
                .events
                .iter()
                .filter(|e| e["type"] == "payment_intent.succeeded")
                .count(),
        )?;
        let inbox_first = bench.inbox().await?;
        let added = inbox_first.since(&inbox_before);
        let expected = InboxCounts {
            rows: events,
            once: events,
            twice: 0,
            applied: events - ignored,
            ignored,
        };
        ensure!(
            added == expected,
            "the first deliveries changed the inbox by {added:?}, expected {expected:?}"
        );
        let duplicate = replay(&bench, server, &level.events, level.concurrency).await?;
        // A redelivery adds no row and changes nothing but the count: every row of the round
        // now says two deliveries.
        let added = bench.inbox().await?.since(&inbox_first);
        let expected = InboxCounts {
            rows: 0,
            once: -events,
            twice: events,
            applied: 0,
            ignored: 0,
        };
        ensure!(
            added == expected,
            "the duplicate redeliveries changed the inbox by {added:?}, expected {expected:?}"
        );
        table.push("webhook, first delivery", &first);
        // The same round split by event type (no rate: the types were interleaved).
        for kind in EVENT_TYPES {
            let of_kind = first.only(|i| level.events[i]["type"] == *kind);
            if of_kind.requests > 0 {
                table.push(&format!("  of which {kind}"), &of_kind);
            }
        }
        table.push("webhook, duplicate redelivery", &duplicate);
        runs.push(("webhook, first delivery".to_owned(), first));
        runs.push(("webhook, duplicate redelivery".to_owned(), duplicate));
    }

    // The frontend's hot read, over the purchases now completed.
    let reads = args.events * 3;
    let all_buyers: Vec<Buyer> = levels.iter().flat_map(|l| l.buyers.clone()).collect();
    let max_concurrency = args.concurrency.iter().copied().max().unwrap_or(1);
    let mut read_levels = vec![1, max_concurrency];
    read_levels.dedup();
    for concurrency in read_levels {
        let requests = all_buyers
            .iter()
            .cycle()
            .take(reads)
            .map(|buyer| Prepared::status_read(server, buyer))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let read = http1::closed_loop(server, requests, concurrency, StatusCode::OK).await?;
        table.push("GET purchase-status", &read);
        runs.push(("GET purchase-status".to_owned(), read));
    }

    print!("{}", table.render());
    let deliveries = bench.sandbox.deliveries().len();
    println!();
    println!("{}", lms_bench::LEGEND);
    println!(
        "checks: every purchase completed after its first-delivery round, which added one webhook_events row per event (applied, payment_intent.succeeded ignored), delivered once; the duplicate round added no row and left every one of them delivered twice; the sandbox itself delivered {deliveries} events (held back)"
    );
    check_errors(
        &runs
            .iter()
            .map(|(name, run)| (name.as_str(), run))
            .collect::<Vec<_>>(),
    )?;
    ensure!(
        deliveries == 0,
        "the sandbox delivered {deliveries} events itself"
    );
    bench.stop().await;
    Ok(())
}

/// POSTs every event once, signed now, from `concurrency` clients; each must answer 200.
async fn replay(
    bench: &Bench,
    server: SocketAddr,
    events: &[Value],
    concurrency: usize,
) -> anyhow::Result<Run> {
    let requests = events
        .iter()
        .map(|event| Prepared::webhook(server, bench.sandbox.signed(event)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    http1::closed_loop(server, requests, concurrency, StatusCode::OK).await
}

/// How many of the buyers' purchases show `completed` (untimed check).
async fn completed(bench: &Bench, buyers: &[Buyer]) -> anyhow::Result<usize> {
    let mut count = 0;
    for buyer in buyers {
        if bench.purchase_status(buyer).await? == "completed" {
            count += 1;
        }
    }
    Ok(count)
}
