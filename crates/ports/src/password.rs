//! Password hashing as a port: the use cases never see an algorithm or its parameters.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordHashError(pub String);

pub trait PasswordHasher: Send + Sync + 'static {
    /// Hashes a password into a self-describing string (algorithm, parameters, salt).
    ///
    /// # Errors
    /// [`PasswordHashError`] only when the hasher itself fails (never for a bad password).
    fn hash(&self, password: &str) -> Result<String, PasswordHashError>;

    /// Whether `password` matches `hash`. A malformed hash is a non-match, not an error.
    fn verify(&self, password: &str, hash: &str) -> bool;
}
