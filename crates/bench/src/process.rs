//! The app as a separate OS process, and what `/proc/<pid>` says about it (Linux only):
//! resident memory (`/proc/<pid>/status`: `VmRSS`, `VmHWM`, `Threads`) and CPU time
//! (`/proc/<pid>/stat`: `utime` + `stime`, every thread of the process). Shared by
//! `auth_pressure` and `compare`.

use anyhow::{anyhow, bail, ensure, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A temporary directory, removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary directory, named `<prefix>-<uuid>`.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TCP port free on the loopback interface right now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The app process: stopped (and reaped) when dropped, then its directory is removed. Its
/// standard output and error go to `app.log` in that directory, which is shown when it fails
/// to start.
#[derive(Debug)]
pub struct AppProcess {
    child: Child,
    pub pid: u32,
    pub base_url: String,
    pub label: String,
    log: PathBuf,
    dir: TempDir,
}

impl AppProcess {
    /// Starts `command` (its environment and arguments already set, serving on `port`), with
    /// `dir` as its working directory and home of its log (and of its SQLite file, if any),
    /// and waits until `GET /api/v1/healthcheck` answers 2xx (60 s at most).
    ///
    /// # Errors
    /// When it cannot be started, exits, or never becomes healthy (the log is in the error).
    pub async fn spawn(
        mut command: Command,
        label: String,
        port: u16,
        dir: TempDir,
    ) -> anyhow::Result<Self> {
        let log = dir.path().join("app.log");
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting the app: {label}"))?;
        let pid = child.id();
        let mut app = Self {
            child,
            pid,
            base_url: format!("http://127.0.0.1:{port}"),
            label,
            log,
            dir,
        };
        let client = crate::client()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = app.child.try_wait()? {
                bail!(
                    "the app exited ({status}) before serving; its output:\n{}",
                    app.log_text()
                );
            }
            let health = client
                .get(format!("{}/api/v1/healthcheck", app.base_url))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(app);
            }
            ensure!(
                Instant::now() < deadline,
                "the app did not answer its healthcheck within 60 s; its output:\n{}",
                app.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The app's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the app wrote so far (the last 4,000 characters).
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// How long a stopped app may take to exit before it is killed.
const GRACEFUL_EXIT: Duration = Duration::from_secs(10);

impl Drop for AppProcess {
    /// SIGTERM, as a deployment stops the app, so that it exits through its own shutdown (an
    /// instrumented build writes its profile then: `scripts/build-pgo.sh`); SIGKILL if it is
    /// still running after [`GRACEFUL_EXIT`] or cannot be signalled.
    fn drop(&mut self) {
        // Signalled only while not yet reaped: a reaped pid may already be another process's.
        let running = matches!(self.child.try_wait(), Ok(None));
        let terminated = running
            && i32::try_from(self.pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .is_some_and(|pid| {
                    rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
                });
        if terminated {
            let deadline = Instant::now() + GRACEFUL_EXIT;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `/proc/<pid>/status` reading: resident set now, its peak so far, threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    /// The anonymous part of the RSS (heap, stacks): what the process's own work holds.
    pub rss_anon_kib: u64,
    /// The file-backed part: the pages of the binary and its libraries that are mapped in.
    pub rss_file_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

/// Reads `/proc/<pid>/status`.
///
/// # Errors
/// When the file cannot be read (not Linux, process gone) or lacks a field.
pub fn read_memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (Linux only)"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        rss_anon_kib: field("RssAnon:")?,
        rss_file_kib: field("RssFile:")?,
        hwm_kib: field("VmHWM:")?,
        threads: field("Threads:")?,
    })
}

/// CPU time a process has used so far, over all its threads, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// In the process's own code and libraries (`utime`).
    pub user: u64,
    /// In the kernel on the process's behalf: system calls, page faults (`stime`).
    pub system: u64,
}

impl CpuTicks {
    pub fn total(self) -> u64 {
        self.user + self.system
    }

    /// What was used between `earlier` and `self`.
    #[must_use]
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// CPU time the process has used so far, user and system, over all its threads, in clock
/// ticks (`utime` and `stime`, fields 14 and 15 of `/proc/<pid>/stat`).
///
/// # Errors
/// When the file cannot be read or parsed.
pub fn read_cpu(pid: u32) -> anyhow::Result<CpuTicks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (Linux only)"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let after_name = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat: {stat:?}"))?;
    // Field 3 (state) is the first one after the name: utime and stime are fields 14 and 15.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat: {stat:?}"))
    };
    Ok(CpuTicks {
        user: tick(14 - 3)?,
        system: tick(15 - 3)?,
    })
}

/// Clock ticks a second (`USER_HZ`, the unit of `/proc/<pid>/stat`'s times), from
/// `getconf CLK_TCK`; 100 (what Linux uses on every common architecture) when that fails.
/// The second value says where it came from.
pub fn clock_ticks_per_second() -> (u64, &'static str) {
    let asked = Command::new("getconf")
        .arg("CLK_TCK")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|ticks| *ticks > 0);
    match asked {
        Some(ticks) => (ticks, "getconf CLK_TCK"),
        None => (100, "assumed: getconf CLK_TCK failed"),
    }
}

/// The load average (1, 5, 15 minutes) from `/proc/loadavg`, as written there.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown (no /proc/loadavg)".to_owned())
}

/// Samples a process's `VmRSS` every 10 ms until finished; keeps the largest sample and the
/// largest thread count.
#[derive(Debug)]
pub struct Sampler {
    stop: Arc<AtomicBool>,
    peak_rss: Arc<AtomicU64>,
    peak_threads: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling on the current Tokio runtime.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_rss = Arc::new(AtomicU64::new(0));
        let peak_threads = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, peak_rss, peak_threads) =
                (stop.clone(), peak_rss.clone(), peak_threads.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(m) = read_memory(pid) {
                        peak_rss.fetch_max(m.rss_kib, Ordering::Relaxed);
                        peak_threads.fetch_max(m.threads, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Self {
            stop,
            peak_rss,
            peak_threads,
            task,
        }
    }

    /// Stops; returns the largest `VmRSS` sample (KiB) and thread count.
    pub async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        (
            self.peak_rss.load(Ordering::Relaxed),
            self.peak_threads.load(Ordering::Relaxed),
        )
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib_as_mib(kib))
}

/// KiB as MiB.
#[expect(
    clippy::cast_precision_loss,
    reason = "memory sizes far below 2^52 KiB convert exactly"
)]
pub fn kib_as_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
