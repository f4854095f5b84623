//! The bound on hashing: a fixed number of slots, each lending one reusable Argon2 memory
//! buffer, a bounded wait for a free slot, and the release of buffers nobody has used for a
//! while.
//!
//! A slot is a [`Lease`]: a semaphore permit plus a buffer. The lease moves into the blocking
//! task and is dropped when that task ends, however it ends (returns, panics, or is never run
//! because the runtime is shutting down), which puts the buffer back and then frees the permit.
//! Dropping the *future* that awaits the task does not stop the task (blocking work cannot be
//! interrupted), so the slot stays taken until the CPU and memory are really free again: the
//! bound counts work in progress, not callers still waiting for it.
//!
//! A buffer put back is stamped with the time; a lease takes the most recently returned one, so
//! under load the same buffers circulate (nothing is allocated per hash) and only a surplus
//! ages. A buffer idle for `idle_release` is freed by a sweeper task, one at most per pool,
//! that sleeps until the oldest buffer's deadline and ends when none is left: when hashing goes
//! quiet the process gives its hashing memory back instead of holding `max_concurrent` buffers
//! forever. The next hash after that allocates again (a few milliseconds for 19 MiB, against
//! tens for the hash itself).

use argon2::Block;
use lms_ports::PasswordHashError;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;

pub(crate) struct MemoryPool {
    permits: Arc<Semaphore>,
    idle: Mutex<Idle>,
    max_wait: Duration,
    /// How long a buffer may sit unused before it is freed.
    idle_release: Duration,
    /// Buffers ever created.
    created: AtomicUsize,
    /// Buffers that exist now, leased or idle. Never more than `max_concurrent`.
    live: AtomicUsize,
}

struct Idle {
    /// Buffers not leased right now, each with the time it came back, oldest first.
    buffers: VecDeque<(Instant, Vec<Block>)>,
    /// A sweeper task is running (it clears this when it ends, under the same lock).
    sweeping: bool,
}

impl fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPool")
            .field("available_permits", &self.permits.available_permits())
            .field("max_wait", &self.max_wait)
            .field("idle_release", &self.idle_release)
            .field("buffers", &self.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MemoryPool {
    pub(crate) fn new(max_concurrent: usize, max_wait: Duration, idle_release: Duration) -> Self {
        metrics::gauge!("lms_password_hash_slots").set(max_concurrent as f64);
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            idle: Mutex::new(Idle {
                buffers: VecDeque::with_capacity(max_concurrent),
                sweeping: false,
            }),
            max_wait,
            idle_release,
            created: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
        }
    }

    fn busy(&self) -> PasswordHashError {
        metrics::counter!("lms_password_hash_busy_total").increment(1);
        PasswordHashError::Busy {
            retry_after: self.max_wait,
        }
    }

    fn idle(&self) -> MutexGuard<'_, Idle> {
        // The lock guards plain data that no panic can leave half-updated.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free slot, waiting at most `max_wait` for one.
    ///
    /// Outside a Tokio runtime there is no timer to bound a wait with, so it does not wait: a
    /// slot is free now or the answer is busy.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease, PasswordHashError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) if Handle::try_current().is_ok() => {
                let _waiting = Waiting::start();
                match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(closed)) => return Err(PasswordHashError::unexpected(closed)),
                    Err(_elapsed) => return Err(self.busy()),
                }
            }
            Err(TryAcquireError::NoPermits) => return Err(self.busy()),
            Err(closed @ TryAcquireError::Closed) => {
                return Err(PasswordHashError::unexpected(closed))
            }
        };
        // The newest buffer: the older ones are the ones to age out.
        let memory = self.idle().buffers.pop_back().map_or_else(
            || {
                self.created.fetch_add(1, Ordering::Relaxed);
                self.live.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            },
            |(_, memory)| memory,
        );
        metrics::gauge!("lms_password_hash_slots_in_use").increment(1.0);
        Ok(Lease {
            memory,
            pool: Arc::clone(self),
            _permit: permit,
        })
    }

    /// Takes back a lease's buffer. Runs where the hash ran (a blocking thread, or inline), so
    /// freeing buffers found expired here costs no async worker anything.
    fn put_back(self: &Arc<Self>, memory: Vec<Block>) {
        let now = Instant::now();
        let expired = {
            let mut idle = self.idle();
            idle.buffers.push_back((now, memory));
            let expired = self.take_expired(&mut idle, now);
            self.start_sweeper(&mut idle);
            expired
        };
        self.free(expired);
    }

    /// The idle buffers whose time is up, out of the idle list.
    fn take_expired(&self, idle: &mut Idle, now: Instant) -> Vec<Vec<Block>> {
        let fresh = idle
            .buffers
            .iter()
            .position(|(returned, _)| now.saturating_duration_since(*returned) < self.idle_release)
            .unwrap_or(idle.buffers.len());
        idle.buffers
            .drain(..fresh)
            .map(|(_, memory)| memory)
            .collect()
    }

    fn free(&self, buffers: Vec<Vec<Block>>) {
        let count = buffers.len();
        drop(buffers);
        self.live.fetch_sub(count, Ordering::Relaxed);
    }

    /// Starts the sweeper if buffers are waiting and none runs. Without a runtime there is no
    /// timer: expired buffers are then freed by the next `put_back`.
    fn start_sweeper(self: &Arc<Self>, idle: &mut Idle) {
        if idle.sweeping || idle.buffers.is_empty() {
            return;
        }
        if let Ok(runtime) = Handle::try_current() {
            idle.sweeping = true;
            // Weak: a hasher dropped meanwhile frees its buffers at once, not at the deadline.
            runtime.spawn(sweep(Arc::downgrade(self)));
        }
    }

    #[cfg(test)]
    pub(crate) fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    #[cfg(test)]
    pub(crate) fn idle_buffers(&self) -> usize {
        self.idle().buffers.len()
    }

    #[cfg(test)]
    pub(crate) fn buffers_created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn live_buffers(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// Frees the pool's idle buffers as their time comes, until none is left.
async fn sweep(pool: Weak<MemoryPool>) {
    // Should the task be dropped unfinished (its runtime shutting down), a later `put_back`
    // must be free to start another.
    let mut running = Sweeping {
        pool: pool.clone(),
        armed: true,
    };
    loop {
        let deadline = {
            let Some(pool) = pool.upgrade() else { return };
            let mut idle = pool.idle();
            let deadline = idle
                .buffers
                .front()
                .and_then(|(returned, _)| returned.checked_add(pool.idle_release));
            match deadline {
                Some(deadline) => deadline,
                // Nothing idle, or a release time too far to reach: nothing to wait for. The flag
                // is cleared under the lock that showed it, so no buffer put back meanwhile is
                // left without a sweeper.
                None => {
                    idle.sweeping = false;
                    running.armed = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(deadline).await;
        let Some(pool) = pool.upgrade() else { return };
        let expired = {
            let mut idle = pool.idle();
            pool.take_expired(&mut idle, Instant::now())
        };
        if !expired.is_empty() {
            // Giving 19 MiB back to the kernel is a system call that walks every page: keep it
            // off the async workers, like the hashing itself.
            let freeing = Arc::clone(&pool);
            let _ = tokio::task::spawn_blocking(move || freeing.free(expired)).await;
        }
    }
}

/// Clears the pool's `sweeping` flag when a sweeper ends without having done so itself.
struct Sweeping {
    pool: Weak<MemoryPool>,
    armed: bool,
}

impl Drop for Sweeping {
    fn drop(&mut self) {
        if let (true, Some(pool)) = (self.armed, self.pool.upgrade()) {
            pool.idle().sweeping = false;
        }
    }
}

/// A caller waiting for a slot, counted in `lms_password_hash_waiting` until it has one, gives
/// up, or its future is dropped.
struct Waiting;

impl Waiting {
    fn start() -> Self {
        metrics::gauge!("lms_password_hash_waiting").increment(1.0);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!("lms_password_hash_waiting").decrement(1.0);
    }
}

/// One slot: the right to run one hash, and the memory to run it in.
pub(crate) struct Lease {
    memory: Vec<Block>,
    pool: Arc<MemoryPool>,
    /// Released after `drop` has put the buffer back, so the next holder finds it.
    _permit: OwnedSemaphorePermit,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("blocks", &self.memory.len())
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// `blocks` blocks of Argon2 memory, grown once to that size if the buffer is smaller (the
    /// caller has checked `blocks` against the hasher's bound). The contents are whatever the
    /// previous hash left: Argon2 overwrites every block in its first pass before reading it.
    pub(crate) fn memory(&mut self, blocks: usize) -> &mut [Block] {
        if self.memory.len() < blocks {
            self.memory.reserve_exact(blocks - self.memory.len());
            self.memory.resize(blocks, Block::new());
        }
        &mut self.memory[..blocks]
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        self.pool.put_back(memory);
        metrics::gauge!("lms_password_hash_slots_in_use").decrement(1.0);
    }
}
