//! The key that signs session tokens, checked once when the configuration is read.

use std::fmt;

/// The minimum key length: HS256 keys shorter than the hash output weaken it.
pub const MIN_SESSION_KEY_BYTES: usize = 32;

/// An HS256 signing key that passed [`SessionKey::parse`]. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(String);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    #[error("must be at least {MIN_SESSION_KEY_BYTES} bytes long, got {0}")]
    TooShort(usize),
    #[error("is a placeholder from an example file, not a secret")]
    Placeholder,
    #[error("is too predictable ({0})")]
    LowEntropy(&'static str),
}

/// Words that mark an example value someone forgot to replace.
const PLACEHOLDER_MARKERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replace_me",
    "your-secret",
    "secret-key-here",
];

impl SessionKey {
    /// Accepts a key of at least [`MIN_SESSION_KEY_BYTES`] bytes that is not an example
    /// placeholder nor an obviously low-entropy value (one repeated character, a short repeated
    /// pattern, a handful of distinct characters).
    ///
    /// # Errors
    /// [`SessionKeyError`] saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, SessionKeyError> {
        let key = raw.trim();
        if key.len() < MIN_SESSION_KEY_BYTES {
            return Err(SessionKeyError::TooShort(key.len()));
        }
        let lower = key.to_ascii_lowercase();
        if PLACEHOLDER_MARKERS
            .iter()
            .any(|marker| lower.contains(marker))
        {
            return Err(SessionKeyError::Placeholder);
        }
        let bytes = key.as_bytes();
        // A period p means bytes[i] == bytes[i + p] everywhere: "aaaa...", "abcabc...".
        if (1..=bytes.len() / 4).any(|p| bytes.iter().zip(&bytes[p..]).all(|(a, b)| a == b)) {
            return Err(SessionKeyError::LowEntropy("a short pattern repeated"));
        }
        let mut distinct = bytes.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 10 {
            return Err(SessionKeyError::LowEntropy(
                "fewer than 10 distinct characters",
            ));
        }
        Ok(Self(key.to_owned()))
    }

    /// 256 random bits from the operating system's generator, as 64 hex characters: for a run
    /// that was given no key (sessions then end when the process does).
    ///
    /// # Errors
    /// When the operating system has no random source to give.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bits = [0u8; 32];
        getrandom::fill(&mut bits)?;
        Ok(Self(hex::encode(bits)))
    }

    /// The key bytes, for the signer only.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_looking_keys_pass() {
        for key in [
            "0123456789abcdef0123456789abcdef",
            "3f9c2a7d1e8b4c6a9f0d2e5b7a1c3e8f4d6b9a2c",
            "correct horse battery staple 1234",
        ] {
            assert!(SessionKey::parse(key).is_ok(), "{key}");
        }
        let generated = SessionKey::generate().unwrap();
        assert_eq!(generated.as_bytes().len(), 64);
        assert!(SessionKey::parse(std::str::from_utf8(generated.as_bytes()).unwrap_or("")).is_ok());
        assert_ne!(generated, SessionKey::generate().unwrap());
    }

    #[test]
    fn weak_keys_are_refused_with_the_reason() {
        let cases: &[(&str, SessionKeyError)] = &[
            ("short", SessionKeyError::TooShort(5)),
            (
                "change-me-change-me-change-me-change-me",
                SessionKeyError::Placeholder,
            ),
            (
                "my-secret-please-CHANGEME-0123456789",
                SessionKeyError::Placeholder,
            ),
            (
                &"a".repeat(40),
                SessionKeyError::LowEntropy("a short pattern repeated"),
            ),
            (
                &"abc1".repeat(10),
                SessionKeyError::LowEntropy("a short pattern repeated"),
            ),
            (
                &"0123456789".repeat(4),
                SessionKeyError::LowEntropy("a short pattern repeated"),
            ),
            (
                "aabbccddaabbccddeeffaabbccddaabbccdd",
                SessionKeyError::LowEntropy("fewer than 10 distinct characters"),
            ),
        ];
        for (key, expected) in cases {
            assert_eq!(
                SessionKey::parse(key).as_ref().err(),
                Some(expected),
                "{key}"
            );
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SessionKey::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert!(!format!("{key:?}").contains("0123"));
    }
}
