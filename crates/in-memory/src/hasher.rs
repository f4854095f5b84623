//! A fast password hasher for tests.

use async_trait::async_trait;
use lms_ports::{PasswordHashError, PasswordHasher};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

const PREFIX: &str = "fake-sha256$";

/// A [`PasswordHasher`] that costs nothing: an unsalted SHA-256 under a `fake-sha256$` prefix.
/// Honours the port's contract (a hash verifies its password and nothing else; a malformed or
/// foreign hash is a non-match), so use cases can be tested without argon2's cost. Never for
/// real passwords: unsalted and fast is exactly what a password hash must not be.
///
/// It remembers every hash it was asked to verify against (clones share the record), so tests
/// can see that an unknown email still costs a verification. It can be switched to answer
/// [`PasswordHashError::Busy`] to every call, like a hasher at its concurrency bound.
#[derive(Debug, Clone, Default)]
pub struct FakeHasher {
    verified_against: Arc<Mutex<Vec<String>>>,
    busy: Arc<Mutex<Option<Duration>>>,
}

impl FakeHasher {
    pub fn new() -> Self {
        Self::default()
    }

    fn digest(password: &str) -> String {
        format!(
            "{PREFIX}{}",
            hex::encode(Sha256::digest(password.as_bytes()))
        )
    }

    /// The hashes [`PasswordHasher::verify`] was called with, oldest first.
    pub fn verified_against(&self) -> Vec<String> {
        self.verified_against
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `Some(retry_after)`: from now on (clones included) every hash and verify answers
    /// [`PasswordHashError::Busy`] with that wait; `None`: back to normal.
    pub fn set_busy(&self, retry_after: Option<Duration>) {
        *self.busy.lock().unwrap_or_else(PoisonError::into_inner) = retry_after;
    }

    fn check_busy(&self) -> Result<(), PasswordHashError> {
        match *self.busy.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(retry_after) => Err(PasswordHashError::Busy { retry_after }),
            None => Ok(()),
        }
    }

    /// Forgets the verifications recorded so far.
    pub fn clear_verifications(&self) {
        self.verified_against
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        self.check_busy()?;
        Ok(Self::digest(password))
    }

    async fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordHashError> {
        // Recorded even when busy: the record is of what callers asked for.
        self.verified_against
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(hash.to_owned());
        self.check_busy()?;
        Ok(hash.starts_with(PREFIX) && Self::digest(password) == hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_hides_it() {
        let hasher = FakeHasher::new();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with(PREFIX));
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify("correct horse", &hash).await.unwrap());
        assert!(!hasher.verify("correct hors", &hash).await.unwrap());
        assert!(!hasher.verify("", &hash).await.unwrap());
    }

    #[tokio::test]
    async fn foreign_and_malformed_hashes_are_a_non_match() {
        let hasher = FakeHasher::new();
        let argon = "$argon2id$v=19$m=19456,t=2,p=1$MpA7tiFHuiz/EeLzHLzG7w$alabvT4EqgMfn1mWlT2KWP1+aCvqgFLWsB23/FWmGPs";
        for bad in ["", "plain", PREFIX, argon] {
            assert!(!hasher.verify("pw", bad).await.unwrap(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn verifications_are_recorded_and_shared_by_clones() {
        let hasher = FakeHasher::new();
        let clone = hasher.clone();
        clone.verify("pw", "h1").await.unwrap();
        clone.verify("pw", "h2").await.unwrap();
        assert_eq!(hasher.verified_against(), ["h1", "h2"]);
        hasher.clear_verifications();
        assert!(clone.verified_against().is_empty());
    }

    #[tokio::test]
    async fn a_busy_switch_answers_busy_to_clones_until_cleared() {
        let hasher = FakeHasher::new();
        let hash = hasher.hash("pw").await.unwrap();
        let clone = hasher.clone();
        hasher.set_busy(Some(Duration::from_secs(3)));
        let busy = |r: Result<_, PasswordHashError>| matches!(r, Err(PasswordHashError::Busy { retry_after }) if retry_after == Duration::from_secs(3));
        assert!(busy(clone.hash("pw").await.map(|_| ())));
        assert!(busy(clone.verify("pw", &hash).await.map(|_| ())));
        hasher.set_busy(None);
        assert!(clone.verify("pw", &hash).await.unwrap());
    }
}
