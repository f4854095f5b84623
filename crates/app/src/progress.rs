//! What a long operator command shows while it runs: an `indicatif` progress bar when stderr
//! is a terminal, plain lines otherwise (a log file, a CI job, a pipe). The results and the
//! final summary go to stdout; progress and logs to stderr, kept apart from the bar.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tracing_subscriber::fmt::MakeWriter;

/// The bar on screen, if any: log lines are written above it rather than through it.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn active_bar() -> Option<ProgressBar> {
    ACTIVE_BAR
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn set_active_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// The progress of one run.
#[derive(Debug)]
pub(crate) struct Progress {
    /// What is counted, for plain lines (`events read`, `events replayed`, ...).
    what: &'static str,
    bar: Option<ProgressBar>,
    /// Whether the bar knows its total yet (it switches from a spinner to a bar).
    bounded: bool,
}

impl Progress {
    /// A bar on a terminal, plain lines elsewhere.
    pub(crate) fn start(what: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner().with_style(spinner_style());
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(120));
            set_active_bar(Some(bar.clone()));
            bar
        });
        Self {
            what,
            bar,
            bounded: false,
        }
    }

    /// `seen` items so far, of `total` when known.
    pub(crate) fn update(&mut self, seen: u64, total: Option<u64>) {
        match &self.bar {
            Some(bar) => {
                if let Some(total) = total {
                    if !self.bounded {
                        bar.set_style(bar_style());
                        self.bounded = true;
                    }
                    bar.set_length(total);
                }
                bar.set_position(seen);
            }
            None => match total {
                Some(total) => eprintln!("{}: {seen} of {total}", self.what),
                None => eprintln!("{}: {seen}", self.what),
            },
        }
    }

    /// Moves the bar to `seen`, without a plain line (for a caller that prints a line per
    /// item).
    pub(crate) fn update_quietly(&self, seen: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(seen);
        }
    }

    /// A line about one item, above the bar (or as a plain line).
    pub(crate) fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            set_active_bar(None);
        }
    }
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}: {pos} [{elapsed}]")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} [{elapsed}, {eta} left]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The log writer of the operator commands: stderr, above the progress bar when one is on
/// screen.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrAboveProgress;

impl<'a> MakeWriter<'a> for StderrAboveProgress {
    type Writer = LogLine;

    fn make_writer(&'a self) -> Self::Writer {
        LogLine(Vec::new())
    }
}

/// One formatted event, written out whole when dropped.
#[derive(Debug)]
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let write = || {
            // Nowhere to report a failure to write to stderr.
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match active_bar() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
