//! The SQL the storage adapters really issue, captured through diesel's instrumentation: every
//! connection diesel (and diesel-async) establishes while [`Capture`] is alive gets a recorder
//! (`diesel::connection::set_default_instrumentation`), which, while recording, keeps the text
//! of each statement it starts (`InstrumentationEvent::StartQuery`: the SQL diesel generated,
//! transaction control and the pool's liveness check included; bind values apart).
//!
//! Connections established while no capture is alive get no recorder at all, so the baselines'
//! own connections (made afterwards) carry no instrumentation cost.

use diesel::connection::{Instrumentation, InstrumentationEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// Connections established now get a recorder.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Recorders keep what they see.
static RECORDING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

/// One statement as diesel started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The SQL text, white space collapsed.
    pub sql: String,
    /// diesel's rendering of the bind values (`[..]`), empty for plain text statements.
    pub binds: String,
}

fn recorder() -> Option<Box<dyn Instrumentation>> {
    if !INSTALLED.load(Ordering::SeqCst) {
        return None;
    }
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if !RECORDING.load(Ordering::SeqCst) {
            return;
        }
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let text = query.to_string();
            let (sql, binds) = match text.find(" -- binds: ") {
                Some(at) => (&text[..at], &text[at + " -- binds: ".len()..]),
                None => (text.as_str(), ""),
            };
            STATEMENTS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Captured {
                    sql: normalize(sql),
                    binds: binds.to_owned(),
                });
        }
    }))
}

/// White space collapsed to single spaces, trimmed: how statements are compared.
pub fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// While alive, connections established get a recorder; [`Capture::record`] collects what
/// they run.
#[derive(Debug)]
pub struct Capture(());

impl Capture {
    /// Installs the recorder factory for connections established from now on.
    ///
    /// # Errors
    /// When diesel's global instrumentation cannot be set.
    pub fn install() -> anyhow::Result<Self> {
        diesel::connection::set_default_instrumentation(recorder)
            .map_err(|err| anyhow::anyhow!("installing diesel's instrumentation: {err}"))?;
        INSTALLED.store(true, Ordering::SeqCst);
        Ok(Self(()))
    }

    /// Runs `work`, returning its output and every statement started meanwhile, in order.
    pub async fn record<T, F>(&self, work: F) -> (T, Vec<Captured>)
    where
        F: std::future::Future<Output = T>,
    {
        STATEMENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        RECORDING.store(true, Ordering::SeqCst);
        let out = work.await;
        RECORDING.store(false, Ordering::SeqCst);
        let captured =
            std::mem::take(&mut *STATEMENTS.lock().unwrap_or_else(PoisonError::into_inner));
        (out, captured)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        RECORDING.store(false, Ordering::SeqCst);
        INSTALLED.store(false, Ordering::SeqCst);
    }
}
