//! The server's log lines, written to stdout in batches rather than one `write` each.
//!
//! Every request logs a line, and writing it was one system call per request: under
//! `compare`'s status reads, logging at `warn` instead of `info` saved 4-8 us of the app's
//! 42-49 us of CPU per read (crates/bench/README.md). Here a line is appended to a buffer in
//! memory and the buffer is written out
//! - at once, with everything before it, when the line is a warning or an error, so what an
//!   operator is alerted on is never held back;
//! - when it holds [`FLUSH_AT`] bytes, by the thread whose line filled it;
//! - otherwise [`FLUSH_AFTER`] after its first line, by a thread of its own, woken once per
//!   batch (not per line: a channel to a writer thread, as `tracing-appender` has, wakes it for
//!   nearly every line under load) and not at all while nothing is logged;
//! - when the [`LogOutput`] guard is dropped (the process exits through `main`), and before a
//!   panic's message is printed.
//!
//! Lines keep their order: they are appended and written out under one lock. What a process
//! killed outright (SIGKILL, the OOM killer) loses is at most the last [`FLUSH_AFTER`] of
//! `info` and `debug` lines. A terminal gets each line as it comes (see `init_tracing`).

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The buffer is written out when it holds this many bytes (about 150 request lines).
pub const FLUSH_AT: usize = 64 * 1024;

/// The longest a line waits in the buffer.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// Where the lines go, with the buffer in front of it.
struct Shared {
    state: Mutex<State>,
    /// Wakes the flusher for the first line of a batch, and when the output closes.
    line_waiting: Condvar,
    flush_after: Duration,
    flush_at: usize,
}

struct State {
    pending: Vec<u8>,
    out: Box<dyn Write + Send>,
    /// The flusher waits for a first line (and is woken by it).
    flusher_idle: bool,
    closed: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("flush_after", &self.flush_after)
            .field("flush_at", &self.flush_at)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held (one in the output itself) leaves whole lines or an
        // empty buffer behind: carry on with them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Writes the buffer out. A failed write (stdout closed) drops the lines rather than keep
    /// them: there is nowhere else to put them, and the buffer must not grow without bound.
    fn write_out(&mut self) {
        if !self.pending.is_empty() {
            let _lost_if_failed = self
                .out
                .write_all(&self.pending)
                .and_then(|()| self.out.flush());
            self.pending.clear();
        }
    }
}

/// The writer of the server's log lines (a [`MakeWriter`] for the tracing subscriber), and
/// the guard that writes out what is still buffered when dropped.
#[derive(Debug)]
pub struct LogOutput {
    shared: Arc<Shared>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// The tracing subscriber's handle on a [`LogOutput`]: the guard stays with the caller.
#[derive(Debug, Clone)]
pub struct LogLines {
    shared: Arc<Shared>,
}

impl LogOutput {
    /// Batches lines for stdout.
    ///
    /// # Errors
    /// When the flusher thread cannot be started.
    pub fn stdout() -> io::Result<Self> {
        Self::new(Box::new(io::stdout()), FLUSH_AFTER, FLUSH_AT)
    }

    /// Batches lines for `out`, written out `flush_after` after the first line of a batch or
    /// once `flush_at` bytes are waiting.
    ///
    /// # Errors
    /// When the flusher thread cannot be started.
    pub fn new(
        out: Box<dyn Write + Send>,
        flush_after: Duration,
        flush_at: usize,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::with_capacity(flush_at),
                out,
                flusher_idle: false,
                closed: false,
            }),
            line_waiting: Condvar::new(),
            flush_after,
            flush_at,
        });
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("log-flush".to_owned())
                .spawn(move || flush_in_batches(&shared))?
        };
        Ok(Self {
            shared,
            flusher: Some(flusher),
        })
    }

    /// The writer to give the tracing subscriber.
    #[must_use]
    pub fn lines(&self) -> LogLines {
        LogLines {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Makes a panic write out the buffered lines before its message is printed, so the
    /// lines that led to it come first. Keeps the hook that was installed before.
    pub fn flush_on_panic(&self) {
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `try_lock`: the panic may come from a thread holding the lock (the output's own
            // write), which would otherwise wait for itself.
            if let Some(shared) = shared.upgrade() {
                if let Ok(mut state) = shared.state.try_lock() {
                    state.write_out();
                }
            }
            previous(info);
        }));
    }
}

impl Drop for LogOutput {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.closed = true;
            state.write_out();
        }
        self.shared.line_waiting.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// The flusher thread: asleep while the buffer is empty; woken by the first line of a batch,
/// it writes the batch out `flush_after` later, unless a full buffer or a warning wrote it out
/// first.
fn flush_in_batches(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        state.flusher_idle = true;
        while state.pending.is_empty() && !state.closed {
            state = shared
                .line_waiting
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.flusher_idle = false;
        let deadline = Instant::now() + shared.flush_after;
        while !state.closed {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            state = shared
                .line_waiting
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.closed {
            // The guard wrote out what was left.
            return;
        }
        state.write_out();
    }
}

/// One log line on its way into the buffer.
#[derive(Debug)]
pub struct LineWriter<'a> {
    shared: &'a Shared,
    /// A warning or an error: written out at once.
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        if state.closed {
            // After the guard's last flush (a thread still logging as the process exits).
            state.out.write_all(line)?;
            return Ok(line.len());
        }
        state.pending.extend_from_slice(line);
        if self.urgent || state.pending.len() >= self.shared.flush_at {
            state.write_out();
        } else if state.flusher_idle {
            state.flusher_idle = false;
            drop(state);
            self.shared.line_waiting.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogLines {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that keeps what it was given, and counts the writes.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut seen = self.0.lock().unwrap();
            seen.0.extend_from_slice(buf);
            seen.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Recorder {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().0.clone()).unwrap()
        }
        fn writes(&self) -> usize {
            self.0.lock().unwrap().1
        }
    }

    fn output(flush_after: Duration, flush_at: usize) -> (LogOutput, Recorder) {
        let recorder = Recorder::default();
        let output = LogOutput::new(Box::new(recorder.clone()), flush_after, flush_at).unwrap();
        (output, recorder)
    }

    fn line(lines: &LogLines, level: Level, text: &str) {
        let mut writer = lines.make_writer_for(&metadata(level));
        writer.write_all(text.as_bytes()).unwrap();
    }

    fn metadata(level: Level) -> Metadata<'static> {
        struct Callsite;
        impl tracing::callsite::Callsite for Callsite {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unimplemented!("not registered")
            }
        }
        static CALLSITE: Callsite = Callsite;
        Metadata::new(
            "test",
            "lms_app::log_output",
            level,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE)),
            tracing::metadata::Kind::EVENT,
        )
    }

    fn wait_for(recorder: &Recorder, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while recorder.text() != text {
            assert!(
                Instant::now() < deadline,
                "still {:?}, waiting for {text:?}",
                recorder.text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn info_lines_wait_for_the_flusher_and_leave_in_one_write() {
        let (output, recorder) = output(Duration::from_millis(200), 1 << 20);
        let lines = output.lines();
        line(&lines, Level::INFO, "one\n");
        line(&lines, Level::DEBUG, "two\n");
        line(&lines, Level::INFO, "three\n");
        assert_eq!(recorder.text(), "", "written before the flusher's turn");
        wait_for(&recorder, "one\ntwo\nthree\n");
        assert_eq!(recorder.writes(), 1);
        // The next batch is written out on its own turn too.
        line(&lines, Level::INFO, "four\n");
        wait_for(&recorder, "one\ntwo\nthree\nfour\n");
        assert_eq!(recorder.writes(), 2);
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let (output, recorder) = output(Duration::from_secs(3600), 1 << 20);
        let lines = output.lines();
        line(&lines, Level::INFO, "request\n");
        line(&lines, Level::WARN, "warning\n");
        assert_eq!(recorder.text(), "request\nwarning\n");
        line(&lines, Level::ERROR, "error\n");
        assert_eq!(recorder.text(), "request\nwarning\nerror\n");
        assert_eq!(recorder.writes(), 2);
    }

    #[test]
    fn a_full_buffer_is_written_out_by_the_line_that_filled_it() {
        let (output, recorder) = output(Duration::from_secs(3600), 10);
        let lines = output.lines();
        line(&lines, Level::INFO, "12345\n");
        assert_eq!(recorder.text(), "");
        line(&lines, Level::INFO, "67890\n");
        assert_eq!(recorder.text(), "12345\n67890\n");
    }

    #[test]
    fn dropping_the_output_writes_out_what_is_left_and_later_lines_go_straight_out() {
        let (output, recorder) = output(Duration::from_secs(3600), 1 << 20);
        let lines = output.lines();
        line(&lines, Level::INFO, "last request\n");
        let started = Instant::now();
        drop(output);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the flusher's sleep held the exit"
        );
        assert_eq!(recorder.text(), "last request\n");
        line(&lines, Level::INFO, "straggler\n");
        assert_eq!(recorder.text(), "last request\nstraggler\n");
    }

    #[test]
    fn lines_from_many_threads_stay_whole_and_each_thread_keeps_its_order() {
        let (output, recorder) = output(Duration::from_millis(1), 256);
        let lines = output.lines();
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let lines = lines.clone();
                scope.spawn(move || {
                    for n in 0..500 {
                        line(&lines, Level::INFO, &format!("{thread} {n}\n"));
                    }
                });
            }
        });
        drop(output);
        let text = recorder.text();
        let mut next = [0; 4];
        for entry in text.lines() {
            let (thread, n) = entry.split_once(' ').expect("a whole line");
            let thread: usize = thread.parse().unwrap();
            assert_eq!(
                n.parse::<usize>().unwrap(),
                next[thread],
                "out of order: {entry}"
            );
            next[thread] += 1;
        }
        assert_eq!(next, [500; 4]);
    }
}
