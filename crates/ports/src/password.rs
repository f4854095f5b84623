//! Password hashing as a port: the use cases never see an algorithm or its parameters.
//!
//! The methods are async because a real hash (argon2 at production cost) takes tens of
//! milliseconds of CPU: an adapter must run it off the async executor's worker threads (e.g. on
//! a blocking pool) so one sign-in does not stall every request sharing that worker.

use async_trait::async_trait;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordHashError(pub String);

#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a password into a self-describing string (algorithm, parameters, salt).
    ///
    /// # Errors
    /// [`PasswordHashError`] only when the hasher itself fails (including when the work could
    /// not be run to completion off the executor), never for a bad password.
    async fn hash(&self, password: &str) -> Result<String, PasswordHashError>;

    /// Whether `password` matches `hash`.
    ///
    /// # Errors
    /// None: a malformed hash, or a verification that could not be run to completion, is a
    /// non-match (`false`), never an error and never a match.
    async fn verify(&self, password: &str, hash: &str) -> bool;
}
