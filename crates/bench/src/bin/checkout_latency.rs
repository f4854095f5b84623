//! Checkout latency over HTTP: `POST /api/v1/payments/create-checkout-session` end to end,
//! through the real Stripe adapter (`lms-stripe-http`) talking HTTP to the in-process sandbox.
//!
//! ```text
//! cargo run -p lms-bench --release --bin checkout_latency -- [--events N] [--concurrency 1,8,32] [--postgres]
//! ```
//!
//! Two scenarios per concurrency level, over N fresh (student, course) pairs:
//! - new session (201): the purchase is stored, the gateway creates a Checkout Session over
//!   HTTP, the session is attached to the purchase;
//! - reuse of the open session (201, as a new one: the API answers both alike): the same pairs
//!   ask again; the stored, unexpired session is answered without calling the gateway.
//!
//! Each answer's status is checked (201), and after the reuse round every pair is checked to
//! still hold the session it held before the round.

use anyhow::ensure;
use lms_bench::http1::{self, Prepared};
use lms_bench::{check_errors, print_header, Args, Bench, Buyer, Run, Table};
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::time::Instant;

const USAGE: &str = "usage: checkout_latency [--events N] [--concurrency 1,8,32] [--postgres]
  --events N        checkouts per scenario and concurrency level (default 1000)
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

async fn run(args: Args) -> anyhow::Result<()> {
    let bench = Bench::start(args.postgres).await?;
    print_header("checkout_latency", &bench);

    let setup = Instant::now();
    let buyers = bench.buyers(args.events * args.concurrency.len()).await?;
    println!(
        "set-up: {} students x courses pairs in {:.1}s (untimed)",
        buyers.len(),
        setup.elapsed().as_secs_f64()
    );
    println!();

    let server = bench.address()?;
    let mut table = Table::new();
    let mut runs: Vec<(&str, Run)> = Vec::new();
    for (&concurrency, buyers) in args.concurrency.iter().zip(buyers.chunks(args.events)) {
        let new = checkouts(server, buyers, concurrency, StatusCode::CREATED).await?;
        // Untimed: the session each pair holds now (asking again is itself a reuse).
        let mut sessions = Vec::with_capacity(buyers.len());
        for buyer in buyers {
            let (status, session) = bench.checkout(buyer).await?;
            ensure!(status == StatusCode::CREATED, "reuse check: {status}");
            sessions.push(session);
        }
        let reuse = checkouts(server, buyers, concurrency, StatusCode::CREATED).await?;
        for (buyer, session) in buyers.iter().zip(&sessions) {
            let (_, again) = bench.checkout(buyer).await?;
            ensure!(
                &again == session,
                "the reuse round replaced session {session} with {again}"
            );
        }
        table.push("checkout, new session", &new);
        table.push("checkout, reuse open session", &reuse);
        runs.push(("checkout, new session", new));
        runs.push(("checkout, reuse open session", reuse));
    }

    print!("{}", table.render());
    println!();
    println!("{}", lms_bench::LEGEND);
    println!("checks: new sessions and reuses answered 201; after the reuses every pair held the session it held before them");
    check_errors(
        &runs
            .iter()
            .map(|(name, run)| (*name, run))
            .collect::<Vec<_>>(),
    )?;
    bench.stop().await;
    Ok(())
}

async fn checkouts(
    server: SocketAddr,
    buyers: &[Buyer],
    concurrency: usize,
    expected: StatusCode,
) -> anyhow::Result<Run> {
    let requests = buyers
        .iter()
        .map(|buyer| Prepared::checkout(server, buyer))
        .collect::<anyhow::Result<Vec<_>>>()?;
    http1::closed_loop(server, requests, concurrency, expected).await
}
