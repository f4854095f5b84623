//! `Stripe-Signature` verification, hand-written: HMAC-SHA256 over `"<t>.<raw body>"`.
//!
//! Pure functions of the header, the raw bytes, the secrets and "now", so every edge is
//! unit-testable without a clock or a network.

use crate::config::WebhookSecret;
use hmac::{Hmac, Mac};
use lms_ports::WebhookRejection;
use sha2::Sha256;
use std::time::Duration;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

/// What is wrong with a `Stripe-Signature`, in Stripe's terms. The port hears it as a
/// [`WebhookRejection`] (`From`), which knows nothing of `t=` or `v1=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    MissingHeader,
    /// Empty, no `t`, several `t`, or a `t` that is not a decimal integer.
    #[error("the Stripe-Signature header is unreadable")]
    UnreadableHeader,
    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("no v1 signature matches under any webhook secret")]
    Mismatch,
    #[error("the Stripe-Signature timestamp is outside the tolerance")]
    OutsideTolerance,
}

impl From<SignatureError> for WebhookRejection {
    fn from(error: SignatureError) -> Self {
        match error {
            SignatureError::MissingHeader
            | SignatureError::NoV1Signature
            | SignatureError::Mismatch => WebhookRejection::BadSignature,
            SignatureError::OutsideTolerance => WebhookRejection::Stale,
            SignatureError::UnreadableHeader => WebhookRejection::malformed(error),
        }
    }
}

/// A parsed `Stripe-Signature` header: the timestamp exactly as sent, and every `v1`
/// signature (hex-decoded; items that are not 32 bytes of hex can never match and are dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    /// The `t` value as written in the header: it is signed as these exact bytes.
    pub timestamp_text: &'a str,
    pub timestamp: i64,
    pub v1: Vec<[u8; 32]>,
}

/// Parses `t=<unix>,v1=<hex>[,v1=<hex>...]`. Unknown keys (including `v0`, the test-mode
/// decoy) and items without `=` are ignored; whitespace around items is tolerated.
///
/// # Errors
/// - [`SignatureError::UnreadableHeader`]: empty header, no `t`, several `t`, or a `t` that is
///   not a decimal integer;
/// - [`SignatureError::NoV1Signature`]: no `v1` item at all.
pub fn parse_signature_header(header: &str) -> Result<SignatureHeader<'_>, SignatureError> {
    let mut timestamp: Option<&str> = None;
    let mut v1_items = 0_usize;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            // Two timestamps: which one was signed is ambiguous, so refuse.
            "t" if timestamp.is_some() => return Err(SignatureError::UnreadableHeader),
            "t" => timestamp = Some(value.trim()),
            "v1" => {
                v1_items += 1;
                let mut bytes = [0_u8; 32];
                if hex::decode_to_slice(value.trim(), &mut bytes).is_ok() {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp_text = timestamp.ok_or(SignatureError::UnreadableHeader)?;
    let all_digits = !timestamp_text.is_empty()
        && timestamp_text.len() <= 18
        && timestamp_text.bytes().all(|b| b.is_ascii_digit());
    if !all_digits {
        return Err(SignatureError::UnreadableHeader);
    }
    let timestamp = timestamp_text
        .parse::<i64>()
        .map_err(|_| SignatureError::UnreadableHeader)?;
    if v1_items == 0 {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(SignatureHeader {
        timestamp_text,
        timestamp,
        v1,
    })
}

/// The lowercase hex HMAC-SHA256 signature Stripe would send for this payload, timestamp and
/// secret (useful to sign test requests and for a local emulator).
pub fn compute_signature(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    signed_mac(secret, &timestamp.to_string(), payload)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// The MAC over `"<t>.<payload>"`. HMAC takes keys of every length, so this is always `Some`;
/// a `None` would simply match nothing.
fn signed_mac(secret: &[u8], timestamp_text: &str, payload: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp_text.as_bytes());
    mac.update(b".");
    mac.update(payload);
    Some(mac)
}

/// Verifies a webhook's signature header against the raw body.
///
/// Accepts when ANY `v1` matches ANY secret (secret rotation), comparing in constant time
/// (`Mac::verify_slice`). Then the timestamp must be within `tolerance` of `now`, both in the
/// past (replay) and in the future (clock skew or forgery).
///
/// # Errors
/// Each [`SignatureError`]: [`SignatureError::MissingHeader`],
/// [`SignatureError::UnreadableHeader`], [`SignatureError::NoV1Signature`],
/// [`SignatureError::Mismatch`], [`SignatureError::OutsideTolerance`].
pub fn verify_signature(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[WebhookSecret],
    tolerance: Duration,
    now: OffsetDateTime,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = parse_signature_header(header)?;
    let mut matched = false;
    for secret in secrets {
        let Some(mac) = signed_mac(secret.as_bytes(), parsed.timestamp_text, payload) else {
            continue;
        };
        for candidate in &parsed.v1 {
            // No early exit: every comparison runs, each in constant time.
            matched |= mac.clone().verify_slice(candidate).is_ok();
        }
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let age = i128::from(now.unix_timestamp()) - i128::from(parsed.timestamp);
    let tolerance = i128::from(tolerance.as_secs());
    if age.abs() > tolerance {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_t_and_every_v1_and_ignores_the_rest() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let header = format!("t=12, v0={a},v1={a},foo=bar,junk,v1={b}");
        let parsed = parse_signature_header(&header).unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.timestamp_text, "12");
        assert_eq!(parsed.v1, vec![[0xaa; 32], [0xbb; 32]]);
    }

    #[test]
    fn undecodable_v1_counts_as_present_but_never_matches() {
        let parsed = parse_signature_header("t=1,v1=zz").unwrap();
        assert!(parsed.v1.is_empty());
    }

    #[test]
    fn the_port_hears_bad_signature_stale_or_malformed_and_no_header_word() {
        use SignatureError::*;
        for (error, rejection) in [
            (MissingHeader, WebhookRejection::BadSignature),
            (NoV1Signature, WebhookRejection::BadSignature),
            (Mismatch, WebhookRejection::BadSignature),
            (OutsideTolerance, WebhookRejection::Stale),
            (
                UnreadableHeader,
                WebhookRejection::malformed(UnreadableHeader),
            ),
        ] {
            assert_eq!(WebhookRejection::from(error), rejection, "{error:?}");
        }
        let unreadable = WebhookRejection::from(UnreadableHeader);
        let source = std::error::Error::source(&unreadable)
            .and_then(|source| source.downcast_ref::<SignatureError>());
        assert_eq!(source, Some(&UnreadableHeader));
    }

    #[test]
    fn malformed_headers_are_typed() {
        use SignatureError::*;
        let v1 = format!("v1={}", "a".repeat(64));
        let cases = [
            (String::new(), UnreadableHeader),
            ("garbage".to_owned(), UnreadableHeader),
            (v1.clone(), UnreadableHeader),
            (format!("t=abc,{v1}"), UnreadableHeader),
            (format!("t=-5,{v1}"), UnreadableHeader),
            (format!("t=,{v1}"), UnreadableHeader),
            (format!("t=1,t=2,{v1}"), UnreadableHeader),
            (format!("t=99999999999999999999,{v1}"), UnreadableHeader),
            (format!("t=1,v0={}", "a".repeat(64)), NoV1Signature),
            ("t=1".to_owned(), NoV1Signature),
        ];
        for (header, expected) in cases {
            assert_eq!(
                parse_signature_header(&header).unwrap_err(),
                expected,
                "{header:?}"
            );
        }
    }
}
