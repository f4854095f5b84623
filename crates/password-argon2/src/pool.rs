//! The bound on hashing: a fixed number of slots, each owning one reusable Argon2 memory
//! buffer, and a bounded wait for a free slot.
//!
//! A slot is a [`Lease`]: a semaphore permit plus the buffer. The lease moves into the blocking
//! task and is dropped when that task ends, however it ends (returns, panics, or is never run
//! because the runtime is shutting down), which puts the buffer back and then frees the permit.
//! Dropping the *future* that awaits the task does not stop the task (blocking work cannot be
//! interrupted), so the slot stays taken until the CPU and memory are really free again: the
//! bound counts work in progress, not callers still waiting for it.

use argon2::Block;
use lms_ports::PasswordHashError;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

pub(crate) struct MemoryPool {
    permits: Arc<Semaphore>,
    /// Buffers not leased right now. Never more than `max_concurrent` exist in all.
    idle: Mutex<Vec<Vec<Block>>>,
    max_wait: Duration,
    /// Buffers ever created (each at most once per slot; they are kept and reused).
    created: AtomicUsize,
}

impl fmt::Debug for MemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPool")
            .field("available_permits", &self.permits.available_permits())
            .field("max_wait", &self.max_wait)
            .field("buffers", &self.created.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MemoryPool {
    pub(crate) fn new(max_concurrent: usize, max_wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            idle: Mutex::new(Vec::with_capacity(max_concurrent)),
            max_wait,
            created: AtomicUsize::new(0),
        }
    }

    fn busy(&self) -> PasswordHashError {
        PasswordHashError::Busy {
            retry_after: self.max_wait,
        }
    }

    /// A free slot, waiting at most `max_wait` for one.
    ///
    /// Outside a Tokio runtime there is no timer to bound a wait with, so it does not wait: a
    /// slot is free now or the answer is busy.
    pub(crate) async fn lease(self: &Arc<Self>) -> Result<Lease, PasswordHashError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) if Handle::try_current().is_ok() => {
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
        let memory = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| {
                self.created.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            });
        Ok(Lease {
            memory,
            pool: Arc::clone(self),
            _permit: permit,
        })
    }

    #[cfg(test)]
    pub(crate) fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    #[cfg(test)]
    pub(crate) fn idle_buffers(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    #[cfg(test)]
    pub(crate) fn buffers_created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
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
        self.pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(memory);
    }
}
