//! One value per tokio runtime, made on the runtime's first use of it.
//!
//! A connection's socket is driven by a task of the runtime that opened it; used from another
//! runtime's thread, every statement wakes that thread to send and again to receive. So the
//! store keeps what owns connections (pools, group commit lanes) per runtime: the app runs one
//! runtime per HTTP worker thread plus the main one (start-up and the background jobs), and
//! each worker then drives its own connections on its own thread.

use std::sync::{Mutex, PoisonError};

use tokio::runtime::Id;

pub(crate) struct PerRuntime<T> {
    /// Few entries (one per runtime): a scan is cheaper than hashing.
    entries: Mutex<Vec<(Id, T)>>,
}

impl<T: Clone> PerRuntime<T> {
    pub(crate) fn new() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value of the runtime this runs on, made by `make` there on its first use.
    ///
    /// # Panics
    /// Outside a tokio runtime, as any use of the store's connections does.
    pub(crate) fn current(&self, make: impl FnOnce() -> T) -> T {
        let runtime = tokio::runtime::Handle::current().id();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, value)) = entries.iter().find(|(id, _)| *id == runtime) {
            return value.clone();
        }
        let value = make();
        entries.push((runtime, value.clone()));
        value
    }

    /// Every runtime's value, in the order they were made.
    pub(crate) fn all(&self) -> Vec<T> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, value)| value.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runtime_gets_its_own_value_made_once() {
        let values = PerRuntime::new();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = || made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let first = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let second = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(first.block_on(async { values.current(make) }), 0);
        assert_eq!(second.block_on(async { values.current(make) }), 1);
        assert_eq!(first.block_on(async { values.current(make) }), 0);
        assert_eq!(values.all(), vec![0, 1]);
    }
}
