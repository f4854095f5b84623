//! Argon2id password hashing behind the [`lms_ports::PasswordHasher`] port.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`): self-describing, so
//! a hash made with other parameters (e.g. before a parameter upgrade, or by
//! [`Argon2Hasher::fast_for_tests`]) still verifies.
//!
//! Hashing costs tens of milliseconds of CPU at production parameters, so both operations run
//! on tokio's blocking pool (`spawn_blocking`), never on the async worker that awaits them.
//! Outside a tokio runtime (no blocking pool to use) they run inline.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use lms_ports::{PasswordHashError, PasswordHasher};
use tokio::runtime::Handle;

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

impl Argon2Hasher {
    fn hash_now(argon2: &Argon2<'_>, password: &str) -> Result<String, PasswordHashError> {
        let salt = SaltString::generate(&mut OsRng);
        argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordHashError(e.to_string()))
    }

    fn verify_now(password: &str, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        // Verification reads algorithm and parameters from the PHC string itself.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }
}

/// Runs `work` on the current runtime's blocking pool, or inline when there is no runtime.
/// `None` when the blocking task did not complete (it panicked or the runtime shut down).
async fn off_the_executor<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(work).await.ok(),
        Err(_) => Some(work()),
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        let argon2 = self.argon2();
        let password = password.to_owned();
        off_the_executor(move || Self::hash_now(&argon2, &password))
            .await
            .unwrap_or_else(|| Err(PasswordHashError("hashing task did not complete".into())))
    }

    async fn verify(&self, password: &str, hash: &str) -> bool {
        let (password, hash) = (password.to_owned(), hash.to_owned());
        off_the_executor(move || Self::verify_now(&password, &hash))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        let hash = hasher.hash("correct horse battery staple").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify("correct horse battery staple", &hash).await);
        assert!(!hasher.verify("correct horse battery stapl", &hash).await);
        assert!(!hasher.verify("", &hash).await);
    }

    #[tokio::test]
    async fn salts_differ_between_hashes() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        assert_ne!(
            hasher.hash("pw").await.unwrap(),
            hasher.hash("pw").await.unwrap()
        );
    }

    #[tokio::test]
    async fn malformed_hashes_are_a_non_match() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        for bad in ["", "plain", "$argon2id$", "$2b$12$abcdefghijklmnopqrstuv"] {
            assert!(!hasher.verify("pw", bad).await, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn production_parameters_are_used_and_cross_verify() {
        let production = Argon2Hasher::new().unwrap();
        let hash = production.hash("pw").await.unwrap();
        assert!(hash.contains("m=19456,t=2,p=1"), "{hash}");
        // A hash made with other parameters still verifies (parameters live in the PHC string).
        let fast = Argon2Hasher::fast_for_tests().unwrap();
        assert!(fast.verify("pw", &hash).await);
        assert!(
            production
                .verify("pw", &fast.hash("pw").await.unwrap())
                .await
        );
    }

    /// On a single-threaded runtime, a task spawned before the hash can only run during the hash
    /// if the hash yields the thread, i.e. runs on the blocking pool. Were the hash computed on
    /// the awaiting thread, the task would not have run when the hash returns.
    #[tokio::test(flavor = "current_thread")]
    async fn hashing_and_verifying_leave_the_async_thread_free() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let production = Argon2Hasher::new().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));

        let other = tokio::spawn({
            let ran = ran.clone();
            async move { ran.fetch_add(1, Ordering::SeqCst) }
        });
        let hash = production.hash("pw").await.unwrap();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            1,
            "hash ran on the async thread"
        );
        other.await.unwrap();

        let other = tokio::spawn({
            let ran = ran.clone();
            async move { ran.fetch_add(1, Ordering::SeqCst) }
        });
        assert!(production.verify("pw", &hash).await);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            2,
            "verify ran on the async thread"
        );
        other.await.unwrap();
    }

    /// Without a tokio runtime (a plain executor), both operations still work, inline.
    #[test]
    fn works_outside_a_tokio_runtime() {
        let hasher = Argon2Hasher::fast_for_tests().unwrap();
        let hash = block_on(hasher.hash("pw")).unwrap();
        assert!(block_on(hasher.verify("pw", &hash)));
        assert!(!block_on(hasher.verify("nope", &hash)));
    }

    /// Polls a future to completion on this thread (the futures here never wait on I/O).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
        }
    }
}
