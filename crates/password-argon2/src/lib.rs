//! Argon2id password hashing behind the [`lms_ports::PasswordHasher`] port.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`): self-describing, so
//! a hash made with other parameters (e.g. before a parameter upgrade, or by
//! [`Argon2Hasher::fast_for_tests`]) still verifies.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use lms_ports::{PasswordHashError, PasswordHasher};

/// Argon2id with fixed cost parameters.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Argon2Hasher {
    /// Production parameters: OWASP's recommended Argon2id minimum (19 MiB, 2 passes, 1 lane).
    ///
    /// # Errors
    /// Never in practice (the parameters are constants the library accepts); kept fallible so
    /// no `expect` is needed.
    pub fn new() -> Result<Self, PasswordHashError> {
        Self::with_params(19 * 1024, 2, 1)
    }

    /// Tiny parameters so test suites that sign many users up stay fast. Never in production.
    ///
    /// # Errors
    /// As [`Argon2Hasher::new`].
    pub fn fast_for_tests() -> Result<Self, PasswordHashError> {
        Self::with_params(Params::MIN_M_COST.max(8), 1, 1)
    }

    /// Explicit parameters: memory in KiB, passes, lanes.
    ///
    /// # Errors
    /// [`PasswordHashError`] when argon2 refuses the parameters.
    pub fn with_params(
        memory_kib: u32,
        passes: u32,
        lanes: u32,
    ) -> Result<Self, PasswordHashError> {
        let params = Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| PasswordHashError(format!("invalid argon2 parameters: {e}")))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordHashError(e.to_string()))
    }

    fn verify(&self, password: &str, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        // Verification reads algorithm and parameters from the PHC string itself.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        let hash = hasher.hash("correct horse battery staple").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify("correct horse battery staple", &hash));
        assert!(!hasher.verify("correct horse battery stapl", &hash));
        assert!(!hasher.verify("", &hash));
    }

    #[test]
    fn salts_differ_between_hashes() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        assert_ne!(hasher.hash("pw").unwrap(), hasher.hash("pw").unwrap());
    }

    #[test]
    fn malformed_hashes_are_a_non_match() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        for bad in ["", "plain", "$argon2id$", "$2b$12$abcdefghijklmnopqrstuv"] {
            assert!(!hasher.verify("pw", bad), "{bad:?}");
        }
    }

    #[test]
    fn production_parameters_are_used_and_cross_verify() {
        let production = Argon2Hasher::new().unwrap();
        let hash = production.hash("pw").unwrap();
        assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
        // A hash made with other parameters still verifies (parameters live in the PHC string).
        let fast = Argon2Hasher::fast_for_tests().unwrap();
        assert!(fast.verify("pw", &hash));
        assert!(production.verify("pw", &fast.hash("pw").unwrap()));
    }
}
