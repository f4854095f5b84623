//! Argon2id password hashing behind the [`lms_ports::PasswordHasher`] port.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`): self-describing, so
//! a hash made with other parameters (e.g. before a parameter upgrade, or by
//! [`Argon2Hasher::fast_for_tests`]) still verifies.
//!
//! Hashing costs tens of milliseconds of CPU and, at production parameters, 19 MiB of memory,
//! so both operations run on tokio's blocking pool (`spawn_blocking`), never on the async
//! worker that awaits them, and both are bounded ([`HashingLimits`]): at most `max_concurrent`
//! run at once, each in one of as many memory buffers, allocated on first use and reused while
//! hashing goes on. A call that finds every slot taken waits at most `max_wait`, then fails with
//! [`PasswordHashError::Busy`]. So the memory hashing takes is at most `max_concurrent` buffers
//! however many requests arrive, and a burst allocates nothing per hash. A buffer left unused
//! for [`HashingLimits::IDLE_RELEASE`] is freed, so a quiet service holds no hashing memory.
//! Whether the process's resident memory then shrinks is the allocator's business: glibc's
//! malloc may keep a freed block of this size for reuse; the `lms-app` binary uses one that
//! gives it back.
//!
//! Verification honours the parameters stored in the PHC string, computed in a pooled buffer.
//! A stored hash needing more memory than the hasher's bound (the larger of its own memory
//! cost and argon2's default, 19 MiB) is refused as a non-match and logged: computing it would
//! break the bound, and no hash this service made needs it unless its parameters were lowered
//! after a raise, which the log line makes visible.
//!
//! Outside a tokio runtime (no blocking pool to use) they run inline, and a call finding
//! every slot taken is busy at once (there is no timer to bound a wait with).

mod pool;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use lms_ports::{PasswordHashError, PasswordHasher};
use pool::MemoryPool;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// How much hashing may run at once, and how long a call may wait for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes and verifications computed at once, each holding one memory buffer (19 MiB at
    /// production parameters). At least 1. Default: the number of cores
    /// (`std::thread::available_parallelism`, 1 if unknown); more would only queue on the CPU.
    pub max_concurrent: usize,
    /// The longest a call waits for a free slot before failing with
    /// [`PasswordHashError::Busy`] (whose `retry_after` is this wait). Default: 2 s.
    pub max_wait: Duration,
}

impl HashingLimits {
    /// The default wait for a free slot.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2);

    /// How long a memory buffer may stay unused before it is freed. Within a burst a buffer is
    /// idle for microseconds (the next waiter takes it), so only a pause in hashing releases
    /// memory; the cost is one allocation (a few milliseconds at 19 MiB) for the first hash
    /// after the pause, against tens of milliseconds for the hash.
    pub const IDLE_RELEASE: Duration = Duration::from_secs(1);
}

impl Default for HashingLimits {
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            max_wait: Self::DEFAULT_MAX_WAIT,
        }
    }
}

/// Argon2id with fixed cost parameters and bounded concurrency. Clones share the bound.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    limits: HashingLimits,
    /// The most Argon2 memory one computation may use, in 1 KiB blocks.
    max_blocks: usize,
    pool: Arc<MemoryPool>,
}

impl Argon2Hasher {
    /// Production parameters: OWASP's recommended Argon2id minimum (19 MiB, 2 passes, 1 lane),
    /// with [`HashingLimits::default`].
    ///
    /// # Errors
    /// Never in practice (the parameters are constants the library accepts); kept fallible so
    /// no `expect` is needed.
    pub fn new() -> Result<Self, PasswordHashError> {
        Self::with_limits(HashingLimits::default())
    }

    /// Production parameters with explicit limits.
    ///
    /// # Errors
    /// [`PasswordHashError::Unexpected`] when `max_concurrent` is 0.
    pub fn with_limits(limits: HashingLimits) -> Result<Self, PasswordHashError> {
        Self::with_params_and_limits(19 * 1024, 2, 1, limits)
    }

    /// Tiny parameters so test suites that sign many users up stay fast. Never in production.
    /// Default limits; it still verifies production hashes (in buffers grown to 19 MiB).
    ///
    /// # Errors
    /// As [`Argon2Hasher::new`].
    pub fn fast_for_tests() -> Result<Self, PasswordHashError> {
        Self::with_params(Params::MIN_M_COST.max(8), 1, 1)
    }

    /// Explicit parameters: memory in KiB, passes, lanes; default limits.
    ///
    /// # Errors
    /// [`PasswordHashError::Unexpected`] when argon2 refuses the parameters.
    pub fn with_params(
        memory_kib: u32,
        passes: u32,
        lanes: u32,
    ) -> Result<Self, PasswordHashError> {
        Self::with_params_and_limits(memory_kib, passes, lanes, HashingLimits::default())
    }

    /// Explicit parameters and limits.
    ///
    /// # Errors
    /// [`PasswordHashError::Unexpected`] when argon2 refuses the parameters or
    /// `max_concurrent` is 0.
    pub fn with_params_and_limits(
        memory_kib: u32,
        passes: u32,
        lanes: u32,
        limits: HashingLimits,
    ) -> Result<Self, PasswordHashError> {
        let params = Params::new(memory_kib, passes, lanes, None).map_err(|e| {
            PasswordHashError::unexpected(format!("invalid argon2 parameters: {e}"))
        })?;
        if limits.max_concurrent == 0 {
            return Err(PasswordHashError::unexpected(
                "invalid hashing limits: max_concurrent must be at least 1",
            ));
        }
        let max_blocks = params.block_count().max(Params::DEFAULT.block_count());
        Ok(Self {
            params,
            limits,
            max_blocks,
            pool: Arc::new(MemoryPool::new(
                limits.max_concurrent,
                limits.max_wait,
                HashingLimits::IDLE_RELEASE,
            )),
        })
    }

    /// The same hasher with its own pool, releasing idle buffers after `idle_release`.
    #[cfg(test)]
    fn with_idle_release(mut self, idle_release: Duration) -> Self {
        self.pool = Arc::new(MemoryPool::new(
            self.limits.max_concurrent,
            self.limits.max_wait,
            idle_release,
        ));
        self
    }

    /// The limits this hasher enforces.
    pub fn limits(&self) -> HashingLimits {
        self.limits
    }

    /// Takes a slot (waiting within the limits), then runs `work` in the slot's memory on the
    /// blocking pool, or inline when there is no runtime. The slot is released when `work`
    /// ends, also by panicking, and not before, even if this future is dropped meanwhile.
    async fn run_bounded<T: Send + 'static>(
        &self,
        blocks: usize,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, PasswordHashError> {
        let mut lease = self.pool.lease().await?;
        let job = move || work(lease.memory(blocks));
        match Handle::try_current() {
            Ok(runtime) => runtime
                .spawn_blocking(job)
                .await
                .map_err(PasswordHashError::unexpected),
            Err(_) => Ok(job()),
        }
    }
}

/// A parsed PHC string this hasher can compute: everything owned, to move to the blocking pool.
struct Stored {
    argon2: Argon2<'static>,
    blocks: usize,
    salt: Vec<u8>,
    expected: Output,
}

impl Stored {
    /// `None` for anything that is not a well-formed Argon2 PHC string.
    fn parse(hash: &str) -> Option<Self> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?.to_vec();
        let expected = parsed.hash?;
        Some(Self {
            blocks: params.block_count(),
            argon2: Argon2::new(algorithm, version, params),
            salt,
            expected,
        })
    }

    fn matches(&self, password: &str, memory: &mut [Block]) -> bool {
        let computed = Output::init_with(self.expected.len(), |out| {
            self.argon2
                .hash_password_into_with_memory(password.as_bytes(), &self.salt, out, memory)
                .map_err(Into::into)
        });
        // `Output`'s equality is constant-time.
        computed.is_ok_and(|computed| computed == self.expected)
    }
}

fn hash_in(
    params: &Params,
    password: &str,
    memory: &mut [Block],
) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut raw_salt)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), raw_salt, out, memory)
            .map_err(Into::into)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run_bounded(params.block_count(), move |memory| {
            hash_in(&params, &password, memory)
        })
        .await?
        .map_err(PasswordHashError::unexpected)
    }

    async fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordHashError> {
        let Some(stored) = Stored::parse(hash) else {
            return Ok(false);
        };
        if stored.blocks > self.max_blocks {
            tracing::warn!(
                needed_kib = stored.blocks,
                bound_kib = self.max_blocks,
                "a stored password hash needs more memory than the hasher's bound: refused as a non-match"
            );
            return Ok(false);
        }
        let password = password.to_owned();
        self.run_bounded(stored.blocks, move |memory| {
            stored.matches(&password, memory)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        let hash = hasher.hash("correct horse battery staple").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(hasher
            .verify("correct horse battery staple", &hash)
            .await
            .unwrap());
        assert!(!hasher
            .verify("correct horse battery stapl", &hash)
            .await
            .unwrap());
        assert!(!hasher.verify("", &hash).await.unwrap());
    }

    #[tokio::test]
    async fn salts_differ_between_hashes() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        assert_ne!(
            hasher.hash("pw").await.unwrap(),
            hasher.hash("pw").await.unwrap()
        );
    }

    #[tokio::test]
    async fn malformed_hashes_are_a_non_match() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        for bad in ["", "plain", "$argon2id$", "$2b$12$abcdefghijklmnopqrstuv"] {
            assert!(!hasher.verify("pw", bad).await.unwrap(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn production_parameters_are_used_and_cross_verify() {
        let production = Argon2Hasher::new().unwrap();
        let hash = production.hash("pw").await.unwrap();
        assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
        // A hash made with other parameters still verifies (parameters live in the PHC string).
        let fast = Argon2Hasher::fast_for_tests().unwrap();
        assert!(fast.verify("pw", &hash).await.unwrap());
        assert!(production
            .verify("pw", &fast.hash("pw").await.unwrap())
            .await
            .unwrap());
    }

    /// On a single-threaded runtime, a task spawned before the hash can only run during the hash
    /// if the hash yields the thread, i.e. runs on the blocking pool. Were the hash computed on
    /// the awaiting thread, the task would not have run when the hash returns.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_and_verifying_leave_the_async_thread_free() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let production = Argon2Hasher::new().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));

        let other = tokio::spawn({
            let ran = ran.clone();
            async move { ran.fetch_add(1, Ordering::SeqCst) }
        });
        let hash = production.hash("pw").await.unwrap();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "hash ran on the async thread"
        );
        other.await.unwrap();

        let other = tokio::spawn({
            let ran = ran.clone();
            async move { ran.fetch_add(1, Ordering::SeqCst) }
        });
        assert!(production.verify("pw", &hash).await.unwrap());
        assert_eq!(
            ran.load(Ordering::SeqCst),
            2,
            "verify ran on the async thread"
        );
        other.await.unwrap();
    }

    /// Without a tokio runtime (a plain executor), both operations still work, inline.
    #[test]
    fn works_outside_a_tokio_runtime() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        let hash = block_on(hasher.hash("pw")).unwrap();
        assert!(block_on(hasher.verify("pw", &hash)).unwrap());
        assert!(!block_on(hasher.verify("nope", &hash)).unwrap());
    }

    /// Polls a future to completion on this thread (the futures here never wait on I/O).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
    }

    /// Tiny parameters, the given limits, and buffers kept an hour: the tests counting
    /// buffers on the real clock must not see one released under them.
    fn limited(max_concurrent: usize, max_wait: Duration) -> Argon2Hasher {
        releasing(max_concurrent, max_wait, Duration::from_secs(3600))
    }

    fn releasing(max_concurrent: usize, max_wait: Duration, idle: Duration) -> Argon2Hasher {
        let limits = HashingLimits {
            max_concurrent,
            max_wait,
        };
        Argon2Hasher::with_params_and_limits(Params::MIN_M_COST.max(8), 1, 1, limits)
            .unwrap()
            .with_idle_release(idle)
    }

    /// Waits (on tokio's clock, paused or not) until `condition` holds, failing if that takes
    /// longer than `within`.
    async fn within(what: &str, within: Duration, condition: impl Fn() -> bool) {
        let begun = tokio::time::Instant::now();
        while !condition() {
            assert!(begun.elapsed() <= within, "not within {within:?}: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Occupies one slot with blocking work that lasts until the returned sender is dropped or
    /// sent to; the returned receiver says when the work has started.
    fn occupy(
        hasher: &Argon2Hasher,
    ) -> (
        mpsc::Sender<()>,
        mpsc::Receiver<()>,
        tokio::task::JoinHandle<Result<(), PasswordHashError>>,
    ) {
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let hasher = hasher.clone();
        let task = tokio::spawn(async move {
            hasher
                .run_bounded(8, move |_memory| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await
        });
        (release, started, task)
    }

    /// [`occupy`] for a current-thread runtime: returns once the work has started.
    async fn occupied(
        hasher: &Argon2Hasher,
    ) -> (
        mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), PasswordHashError>>,
    ) {
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let hasher = hasher.clone();
        let task = tokio::spawn(async move {
            hasher
                .run_bounded(8, move |_memory| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await
        });
        started.await.unwrap();
        (release, task)
    }

    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        for _ in 0..500 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never happened: {what}");
    }

    #[test]
    fn default_limits_are_the_cores_and_two_seconds() {
        let limits = HashingLimits::default();
        assert_eq!(
            limits.max_concurrent,
            std::thread::available_parallelism().unwrap().get()
        );
        assert_eq!(limits.max_wait, Duration::from_secs(2));
        assert_eq!(Argon2Hasher::new().unwrap().limits(), limits);
    }

    /// Paused time: the clock moves only when every task waits, so the release is seen at
    /// its deadline, not around it.
    #[tokio::test(start_paused = true)]
    async fn idle_buffers_are_freed_after_the_idle_time_and_busy_ones_never() {
        let hasher = releasing(2, Duration::from_secs(10), Duration::from_secs(1));
        // Two hashes at once: two buffers.
        let (release_a, holder_a) = occupied(&hasher).await;
        let (release_b, holder_b) = occupied(&hasher).await;
        // Leased buffers are in use, however long: never released. (`advance`, because a
        // running blocking task stops paused time from moving by itself.)
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(hasher.pool.live_buffers(), 2);
        release_a.send(()).unwrap();
        release_b.send(()).unwrap();
        holder_a.await.unwrap().unwrap();
        holder_b.await.unwrap().unwrap();
        assert_eq!(hasher.pool.idle_buffers(), 2);

        tokio::time::sleep(Duration::from_millis(999)).await;
        assert_eq!(hasher.pool.live_buffers(), 2, "released too early");
        within("both buffers freed", Duration::from_millis(10), || {
            hasher.pool.live_buffers() == 0
        })
        .await;
        assert_eq!(hasher.pool.idle_buffers(), 0);
        assert_eq!(hasher.pool.available_permits(), 2);

        // The next hash allocates afresh and works.
        let hash = hasher.hash("pw").await.unwrap();
        assert!(hasher.verify("pw", &hash).await.unwrap());
        assert_eq!(hasher.pool.buffers_created(), 3);
        assert_eq!(hasher.pool.live_buffers(), 1);
        within("freed again", Duration::from_millis(1010), || {
            hasher.pool.live_buffers() == 0
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn hashes_closer_than_the_idle_time_keep_reusing_one_buffer() {
        let hasher = releasing(2, Duration::from_secs(10), Duration::from_secs(1));
        for i in 0..20 {
            let password = format!("pw{i}");
            let hash = hasher.hash(&password).await.unwrap();
            assert!(hasher.verify(&password, &hash).await.unwrap());
            tokio::time::sleep(Duration::from_millis(900)).await;
        }
        assert_eq!(hasher.pool.buffers_created(), 1, "allocated under load");
        assert_eq!(hasher.pool.live_buffers(), 1);
        within("freed once idle", Duration::from_millis(110), || {
            hasher.pool.live_buffers() == 0
        })
        .await;
    }

    /// A burst keeps every slot's buffer circulating; the surplus after it ages out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_allocates_at_most_one_buffer_per_slot_then_frees_them() {
        let hasher = releasing(2, Duration::from_secs(30), Duration::from_millis(200));
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    let password = format!("pw{i}");
                    let hash = hasher.hash(&password).await.unwrap();
                    hasher.verify(&password, &hash).await.unwrap()
                })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap());
        }
        assert!(hasher.pool.buffers_created() <= 2);
        within("freed after the burst", Duration::from_secs(5), || {
            hasher.pool.live_buffers() == 0
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_idle_time_nothing_is_kept() {
        let hasher = releasing(1, Duration::from_secs(10), Duration::ZERO);
        for _ in 0..3 {
            hasher.hash("pw").await.unwrap();
            assert_eq!(hasher.pool.live_buffers(), 0);
        }
        assert_eq!(hasher.pool.buffers_created(), 3);
    }

    /// Without a runtime there is no sweeper: an expired buffer is freed by the next return.
    #[test]
    fn outside_a_runtime_expired_buffers_go_at_the_next_return() {
        let hasher = releasing(2, Duration::from_secs(1), Duration::from_millis(20));
        let first = block_on(hasher.pool.lease()).unwrap();
        let second = block_on(hasher.pool.lease()).unwrap();
        assert_eq!(hasher.pool.live_buffers(), 2);
        drop(first);
        std::thread::sleep(Duration::from_millis(40));
        drop(second);
        assert_eq!(hasher.pool.live_buffers(), 1, "the expired one was freed");
        assert_eq!(hasher.pool.idle_buffers(), 1);
        assert_eq!(hasher.pool.available_permits(), 2);
        // And the kept one is what the next hash uses.
        let hash = block_on(hasher.hash("pw")).unwrap();
        assert!(block_on(hasher.verify("pw", &hash)).unwrap());
        assert_eq!(hasher.pool.buffers_created(), 2);
    }

    #[test]
    fn dropping_the_hasher_frees_its_idle_buffers_without_waiting_for_the_sweeper() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let hasher = limited(1, Duration::from_secs(1));
        let pool = Arc::downgrade(&hasher.pool);
        runtime.block_on(async {
            hasher.hash("pw").await.unwrap();
        });
        drop(hasher);
        // The sweeper holds the pool weakly: it does not keep it (and its buffers) alive.
        assert!(pool.upgrade().is_none());
    }

    #[test]
    fn zero_slots_are_refused() {
        let limits = HashingLimits {
            max_concurrent: 0,
            max_wait: Duration::from_secs(1),
        };
        assert!(matches!(
            Argon2Hasher::with_limits(limits),
            Err(PasswordHashError::Unexpected(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_bound_a_call_is_busy_after_the_wait_not_queued_forever() {
        let hasher = limited(1, Duration::from_millis(50));
        let (release, started, holder) = occupy(&hasher);
        started.recv().unwrap();

        let begun = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(5), hasher.hash("pw")).await;
        let waited = begun.elapsed();
        match outcome {
            Ok(Err(PasswordHashError::Busy { retry_after })) => {
                assert_eq!(retry_after, Duration::from_millis(50));
            }
            other => panic!("expected busy, got {other:?}"),
        }
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // Verification is bounded by the same slots.
        let hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$TLiIEwoDhb0FD8ZYQN3Bhg";
        assert!(matches!(
            hasher.verify("pw", hash).await,
            Err(PasswordHashError::Busy { .. })
        ));

        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        // The slot is free again: the next call goes through.
        let hash = hasher.hash("pw").await.unwrap();
        assert!(hasher.verify("pw", &hash).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_waiting_within_the_bound_gets_the_slot_when_it_frees() {
        let hasher = limited(1, Duration::from_secs(10));
        let (release, started, holder) = occupy(&hasher);
        started.recv().unwrap();
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("pw").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert!(waiting.await.unwrap().is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slots_and_memory_are_released_after_every_hash() {
        let hasher = limited(1, Duration::from_millis(1));
        for _ in 0..5 {
            let hash = hasher.hash("pw").await.unwrap();
            assert!(hasher.verify("pw", &hash).await.unwrap());
        }
        assert_eq!(hasher.pool.available_permits(), 1);
        assert_eq!(hasher.pool.idle_buffers(), 1);
        assert_eq!(hasher.pool.buffers_created(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_hash_releases_its_slot_and_memory() {
        let hasher = limited(1, Duration::from_millis(1));
        let outcome = hasher
            .run_bounded(8, |_memory| -> () { panic!("argon2 blew up") })
            .await;
        assert!(matches!(outcome, Err(PasswordHashError::Unexpected(_))));
        assert_eq!(hasher.pool.available_permits(), 1);
        assert_eq!(hasher.pool.idle_buffers(), 1);
        assert!(hasher.hash("pw").await.is_ok());
        assert_eq!(hasher.pool.buffers_created(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_call_leaks_neither_slot_nor_memory() {
        let hasher = limited(1, Duration::from_secs(10));

        // Dropped while its blocking work runs: the slot stays taken until the work ends (the
        // CPU and memory are still in use), then comes back with its buffer.
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel::<()>();
        let running = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .run_bounded(8, move |_memory| {
                        let _ = started_tx.send(());
                        let _ = wait.recv();
                    })
                    .await
            }
        });
        started.recv().unwrap();
        running.abort();
        assert!(running.await.unwrap_err().is_cancelled());
        assert_eq!(hasher.pool.available_permits(), 0, "released too early");

        // Dropped while waiting for a slot: nothing was taken, nothing to give back.
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("pw").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());

        release.send(()).unwrap();
        eventually("the slot is back", || hasher.pool.available_permits() == 1).await;
        assert_eq!(hasher.pool.idle_buffers(), 1);
        assert_eq!(hasher.pool.buffers_created(), 1);
        assert!(hasher.hash("pw").await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_calls_share_at_most_max_concurrent_buffers() {
        let hasher = limited(2, Duration::from_secs(30));
        let calls: Vec<_> = (0..24)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    let password = format!("pw{i}");
                    let hash = hasher.hash(&password).await.unwrap();
                    hasher.verify(&password, &hash).await.unwrap()
                })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap());
        }
        assert!(hasher.pool.buffers_created() <= 2);
        assert_eq!(hasher.pool.available_permits(), 2);
    }

    #[tokio::test]
    async fn a_stored_hash_beyond_the_memory_bound_is_a_non_match() {
        let fast = Argon2Hasher::fast_for_tests().unwrap();
        // 64 MiB: more than the bound (19 MiB, argon2's default, above the fast parameters).
        let big = Argon2Hasher::with_params(64 * 1024, 1, 1).unwrap();
        let hash = big.hash("pw").await.unwrap();
        assert!(hash.contains("m=65536"), "{hash}");
        assert!(big.verify("pw", &hash).await.unwrap());
        assert!(!fast.verify("pw", &hash).await.unwrap());
        assert_eq!(fast.pool.buffers_created(), 0, "nothing was computed");
    }

    #[tokio::test]
    async fn hashes_of_the_stock_argon2_api_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(64, 3, 2, None).unwrap();
        let stock = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let theirs = stock.hash_password(b"pw", &salt).unwrap().to_string();
        let ours = Argon2Hasher::with_params(64, 3, 2).unwrap();
        assert!(ours.verify("pw", &theirs).await.unwrap());
        assert!(!ours.verify("pW", &theirs).await.unwrap());
        let mine = ours.hash("pw").await.unwrap();
        let parsed = PasswordHash::new(&mine).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"pW", &parsed).is_err());
        // Argon2i and Argon2d hashes are honoured too (the algorithm is read from the string).
        for algorithm in [Algorithm::Argon2i, Algorithm::Argon2d] {
            let other = Argon2::new(
                algorithm,
                Version::V0x13,
                Params::new(32, 1, 1, None).unwrap(),
            );
            let hash = other.hash_password(b"pw", &salt).unwrap().to_string();
            assert!(ours.verify("pw", &hash).await.unwrap(), "{hash}");
        }
    }
}
