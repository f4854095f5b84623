//! The app against a baseline of its own SQL, in one run: first webhook deliveries,
//! duplicates and purchase-status reads, each sent to the release `lms-app` running as a
//! separate process and then run as the same statements straight against the same database;
//! rate, latency, the app's CPU time per request and resident memory (from `/proc/<pid>`), and
//! the ratio of the app's rate to the baseline's. See `lms_bench::compare` and the crate's
//! README.
//!
//! ```text
//! cargo build --release -p lms-app -p lms-bench
//! $CARGO_TARGET_DIR/release/compare [--postgres] [--events N] [--reads N] [--webhook-concurrency 16] [--read-concurrency 32]
//! ```

use lms_bench::compare::{run, Options};

fn main() -> std::process::ExitCode {
    lms_bench::exit((|| {
        let Some(options) = Options::parse()? else {
            return Ok(());
        };
        lms_bench::use_bench_database_url();
        lms_bench::runtime()?.block_on(run(options))
    })())
}
