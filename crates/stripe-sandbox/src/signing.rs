//! Signs webhook bodies exactly as Stripe does, written independently of the adapter that
//! verifies them so that each checks the other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `Stripe-Signature` header value for `body` sent at unix time `timestamp`, one `v1` per
/// secret (Stripe signs with both the old and the new secret while one is being rolled).
pub fn signature_header(body: &[u8], timestamp: i64, secrets: &[String]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(body, timestamp, secret));
    }
    header
}

/// Lower-case hex HMAC-SHA256 over `"<t>.<body>"`, keyed with the whole `whsec_...` string.
pub fn sign(body: &[u8], timestamp: i64, secret: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",b"1700000000.{\"id\":\"evt_1\"}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(br#"{"id":"evt_1"}"#, 1_700_000_000, "whsec_test"),
            "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
    }

    #[test]
    fn one_v1_per_secret() {
        let header = signature_header(b"{}", 5, &["whsec_a".into(), "whsec_b".into()]);
        assert_eq!(header.matches(",v1=").count(), 2);
        assert!(header.starts_with("t=5,v1="));
    }
}
