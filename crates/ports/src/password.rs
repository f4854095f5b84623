//! Password hashing as a port: the use cases never see an algorithm or its parameters.
//!
//! The methods are async because a real hash (argon2 at production cost) takes tens of
//! milliseconds of CPU and megabytes of memory: an adapter must run it off the async executor's
//! worker threads (e.g. on a blocking pool) so one sign-in does not stall every request sharing
//! that worker, and it may bound how many run at once, answering [`PasswordHashError::Busy`]
//! instead of queueing without end.

use async_trait::async_trait;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PasswordHashError {
    /// Every hashing slot stayed taken for as long as the hasher is allowed to wait: nothing was
    /// computed. Clears by itself; the caller may try again after `retry_after`.
    #[error("the password hasher is busy; retry after {retry_after:?}")]
    Busy { retry_after: Duration },
    /// The hasher itself failed (invalid parameters, a task that did not run to completion).
    #[error("password hashing failed")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PasswordHashError {
    /// An opaque failure keeping `cause` as its source.
    pub fn unexpected(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unexpected(cause.into())
    }
}

#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a password into a self-describing string (algorithm, parameters, salt).
    ///
    /// # Errors
    /// - [`PasswordHashError::Busy`] when the hasher is at its concurrency bound and no slot
    ///   freed up within its wait; nothing was hashed.
    /// - [`PasswordHashError::Unexpected`] only when the hasher itself fails (including when
    ///   the work could not be run to completion off the executor), never for a bad password.
    async fn hash(&self, password: &str) -> Result<String, PasswordHashError>;

    /// Whether `password` matches `hash`: `Ok(true)` only for a match.
    ///
    /// A malformed or foreign hash, or one this hasher refuses to compute (e.g. parameters
    /// beyond its memory bound), is `Ok(false)`: a non-match, never an error and never a match.
    ///
    /// # Errors
    /// - [`PasswordHashError::Busy`] as for [`PasswordHasher::hash`]: nothing was verified, so
    ///   the caller must answer neither "match" nor "no match".
    /// - [`PasswordHashError::Unexpected`] when a verification could not be run to completion.
    async fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordHashError>;
}
