//! A fast password hasher for tests.

use async_trait::async_trait;
use lms_ports::{PasswordHashError, PasswordHasher};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};

const PREFIX: &str = "fake-sha256$";

/// A [`PasswordHasher`] that costs nothing: an unsalted SHA-256 under a `fake-sha256$` prefix.
/// Honours the port's contract (a hash verifies its password and nothing else; a malformed or
/// foreign hash is a non-match), so use cases can be tested without argon2's cost. Never for
/// real passwords: unsalted and fast is exactly what a password hash must not be.
///
/// It remembers every hash it was asked to verify against (clones share the record), so tests
/// can see that an unknown email still costs a verification.
#[derive(Debug, Clone, Default)]
pub struct FakeHasher {
    verified_against: Arc<Mutex<Vec<String>>>,
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
        Ok(Self::digest(password))
    }

    async fn verify(&self, password: &str, hash: &str) -> bool {
        self.verified_against
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(hash.to_owned());
        hash.starts_with(PREFIX) && Self::digest(password) == hash
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_hides_it() {
        let hasher = FakeHasher::new();
        let hash = hasher.hash("correct horse").await.unwrap();
        assert!(hash.starts_with(PREFIX));
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify("correct horse", &hash).await);
        assert!(!hasher.verify("correct hors", &hash).await);
        assert!(!hasher.verify("", &hash).await);
    }

    #[tokio::test]
    async fn foreign_and_malformed_hashes_are_a_non_match() {
        let hasher = FakeHasher::new();
        let argon = "$argon2id$v=19$m=19456,t=2,p=1$MpA7tiFHuiz/EeLzHLzG7w$alabvT4EqgMfn1mWlT2KWP1+aCvqgFLWsB23/FWmGPs";
        for bad in ["", "plain", PREFIX, argon] {
            assert!(!hasher.verify("pw", bad).await, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn verifications_are_recorded_and_shared_by_clones() {
        let hasher = FakeHasher::new();
        let clone = hasher.clone();
        clone.verify("pw", "h1").await;
        clone.verify("pw", "h2").await;
        assert_eq!(hasher.verified_against(), ["h1", "h2"]);
        hasher.clear_verifications();
        assert!(clone.verified_against().is_empty());
    }
}
