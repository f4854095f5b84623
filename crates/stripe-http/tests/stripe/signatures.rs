//! Webhook signature verification: known answers, rotation, tolerance, tampering, malformed
//! headers, livemode.

use crate::support::*;
use lms_ports::{EventEnvelope, PaymentGateway, WebhookEvent, WebhookRejection};
use lms_stripe_http::{compute_signature, verify_signature, SignatureError, WebhookSecret};
use std::time::Duration;
use time::OffsetDateTime;

const KAT_BODY: &str = r#"{"id":"evt_test","object":"event"}"#;
// python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test_secret', b'1700000000.{\"id\":\"evt_test\",\"object\":\"event\"}', hashlib.sha256).hexdigest())"
const KAT_TEST_SECRET: &str = "8042376f6ca064adbe037642a718227dfd59047137eb49497a54c49eb0cfb724";
// python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_old', b'1700000000.{\"id\":\"evt_test\",\"object\":\"event\"}', hashlib.sha256).hexdigest())"
const KAT_OLD: &str = "9c2d5f5ad2072fce7903a27c91f6475a8847f0304adda5d09c38c16f928c6ae2";
// python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_new', b'1700000000.{\"id\":\"evt_test\",\"object\":\"event\"}', hashlib.sha256).hexdigest())"
const KAT_NEW: &str = "eda288c93a678750efe860365b19e94adbcfd31c0b12f5617f37b8e5fa92fefc";

const KAT_EVENT: &str = r#"{"id":"evt_kat","object":"event","type":"plan.created","created":1700000000,"livemode":false,"data":{"object":{}}}"#;
// python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test_secret', b'1700000000.{\"id\":\"evt_kat\",\"object\":\"event\",\"type\":\"plan.created\",\"created\":1700000000,\"livemode\":false,\"data\":{\"object\":{}}}', hashlib.sha256).hexdigest())"
const KAT_EVENT_SIG: &str = "5b70421270d6ffd11214e07532002e825ef492386c4fed476d732156d4e1175c";

fn secrets(list: &str) -> Vec<WebhookSecret> {
    WebhookSecret::parse_list(list).unwrap()
}

/// What the port hears for a header it cannot read: malformed, the adapter's reason kept.
fn unreadable() -> WebhookRejection {
    WebhookRejection::malformed(SignatureError::UnreadableHeader)
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn verify(header: &str, list: &str) -> Result<(), SignatureError> {
    verify_signature(
        KAT_BODY.as_bytes(),
        Some(header),
        &secrets(list),
        Duration::from_secs(300),
        at(NOW),
    )
}

#[test]
fn known_answers_from_python_hmac() {
    assert_eq!(
        compute_signature(b"whsec_test_secret", NOW, KAT_BODY.as_bytes()),
        KAT_TEST_SECRET
    );
    assert_eq!(
        compute_signature(b"whsec_old", NOW, KAT_BODY.as_bytes()),
        KAT_OLD
    );
    assert_eq!(
        compute_signature(b"whsec_new", NOW, KAT_BODY.as_bytes()),
        KAT_NEW
    );
    assert_eq!(
        verify(&format!("t={NOW},v1={KAT_TEST_SECRET}"), WEBHOOK_SECRET),
        Ok(())
    );
    // Upper-case hex is the same bytes.
    assert_eq!(
        verify(
            &format!("t={NOW},v1={}", KAT_TEST_SECRET.to_uppercase()),
            WEBHOOK_SECRET
        ),
        Ok(())
    );
}

#[test]
fn the_gateway_accepts_a_python_signed_event() {
    let (gateway, _clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let header = format!("t=1700000000,v1={KAT_EVENT_SIG}");
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&header)),
        Ok(WebhookEvent::Ignored(EventEnvelope {
            id: "evt_kat".to_owned(),
            event_type: "plan.created".to_owned(),
            livemode: false,
            created: OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
            payload: KAT_EVENT.to_owned(),
        }))
    );
}

#[test]
fn rotation_accepts_any_v1_against_any_secret_in_either_order() {
    let both = [
        format!("t={NOW},v1={KAT_OLD},v1={KAT_NEW}"),
        format!("t={NOW},v1={KAT_NEW},v1={KAT_OLD}"),
        format!("v1={KAT_NEW},t={NOW},v0={KAT_OLD},v1={KAT_OLD}"),
    ];
    for header in &both {
        for list in [
            "whsec_old",
            "whsec_new",
            "whsec_old,whsec_new",
            "whsec_new,whsec_old",
            "whsec_other,whsec_new",
        ] {
            assert_eq!(verify(header, list), Ok(()), "{header} / {list}");
        }
        assert_eq!(
            verify(header, "whsec_other"),
            Err(SignatureError::Mismatch),
            "{header}"
        );
    }
    // Only the new secret signed; the configured list still holds the old one first.
    assert_eq!(
        verify(&format!("t={NOW},v1={KAT_NEW}"), "whsec_old,whsec_new"),
        Ok(())
    );
    assert_eq!(
        verify(&format!("t={NOW},v1={KAT_OLD}"), "whsec_old,whsec_new"),
        Ok(())
    );
    // A v0 signature (test-mode decoy) never counts, even if it is right.
    assert_eq!(
        verify(
            &format!("t={NOW},v0={KAT_NEW},v1={}", "0".repeat(64)),
            "whsec_new"
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn tolerance_edges_against_the_injected_clock() {
    let (gateway, clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let header = format!("t={NOW},v1={KAT_EVENT_SIG}");
    let check = |now: i64| {
        clock.set(now);
        gateway
            .verify_webhook(KAT_EVENT.as_bytes(), Some(&header))
            .map(|_| ())
    };
    assert_eq!(check(NOW), Ok(()));
    assert_eq!(check(NOW + 300), Ok(()), "exactly 300 s old is accepted");
    assert_eq!(check(NOW + 301), Err(WebhookRejection::Stale));
    assert_eq!(check(NOW + 86_400), Err(WebhookRejection::Stale));
    assert_eq!(check(NOW - 300), Ok(()), "300 s in the future is accepted");
    assert_eq!(
        check(NOW - 301),
        Err(WebhookRejection::Stale),
        "too far in the future"
    );
}

#[test]
fn a_timestamp_far_in_the_future_is_rejected_even_when_signed() {
    let (gateway, _clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let future = NOW + 10_000;
    let header = signature_header(KAT_EVENT, future, WEBHOOK_SECRET);
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&header)),
        Err(WebhookRejection::Stale)
    );
    let huge = format!(
        "t=999999999999999999,v1={}",
        compute_signature(
            WEBHOOK_SECRET.as_bytes(),
            999_999_999_999_999_999,
            KAT_EVENT.as_bytes()
        )
    );
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&huge)),
        Err(WebhookRejection::Stale)
    );
}

#[test]
fn the_timestamp_is_part_of_what_is_signed() {
    // The right signature for t=NOW, presented with another t: a replay with a fresh timestamp.
    let (gateway, _clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let header = format!("t={},v1={KAT_EVENT_SIG}", NOW + 1);
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&header)),
        Err(WebhookRejection::BadSignature)
    );
}

#[test]
fn tampered_bodies_and_wrong_secrets_are_mismatches() {
    let (gateway, _clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let header = format!("t={NOW},v1={KAT_EVENT_SIG}");
    let tampered = KAT_EVENT.replace("plan.created", "plan.deleted");
    assert_eq!(
        gateway.verify_webhook(tampered.as_bytes(), Some(&header)),
        Err(WebhookRejection::BadSignature)
    );
    let reformatted = serde_json::to_string_pretty(
        &serde_json::from_str::<serde_json::Value>(KAT_EVENT).unwrap(),
    )
    .unwrap();
    assert_eq!(
        gateway.verify_webhook(reformatted.as_bytes(), Some(&header)),
        Err(WebhookRejection::BadSignature),
        "re-serialised JSON is not the signed bytes"
    );
    let wrong = signature_header(KAT_EVENT, NOW, "whsec_wrong");
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&wrong)),
        Err(WebhookRejection::BadSignature)
    );
    let truncated = format!("t={NOW},v1={}", &KAT_EVENT_SIG[..63]);
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&truncated)),
        Err(WebhookRejection::BadSignature)
    );
}

#[test]
fn malformed_headers_are_typed_rejections() {
    let (gateway, _clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let body = KAT_EVENT.as_bytes();
    let v1 = format!("v1={KAT_EVENT_SIG}");
    assert_eq!(
        gateway.verify_webhook(body, None),
        Err(WebhookRejection::BadSignature)
    );
    let cases = [
        (String::new(), unreadable()),
        ("   ".to_owned(), unreadable()),
        (v1.clone(), unreadable()),
        (format!("t=abc,{v1}"), unreadable()),
        (format!("t=17e8,{v1}"), unreadable()),
        (format!("t={NOW}{NOW},{v1}"), unreadable()),
        (
            format!("t={NOW},v0={KAT_EVENT_SIG}"),
            WebhookRejection::BadSignature,
        ),
        (format!("t={NOW}"), WebhookRejection::BadSignature),
        ("garbage".to_owned(), unreadable()),
        ("t=;v1=;".to_owned(), unreadable()),
        (
            format!("t={NOW},v1=not-hex"),
            WebhookRejection::BadSignature,
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            gateway.verify_webhook(body, Some(&header)),
            Err(expected),
            "{header:?}"
        );
    }
}

#[test]
fn the_signature_is_checked_before_the_json() {
    let (gateway, _clock) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    let body = "this is { not json";
    let unsigned = format!("t={NOW},v1={}", "ab".repeat(32));
    assert_eq!(
        gateway.verify_webhook(body.as_bytes(), Some(&unsigned)),
        Err(WebhookRejection::BadSignature)
    );
    let signed = signature_header(body, NOW, WEBHOOK_SECRET);
    assert!(matches!(
        gateway.verify_webhook(body.as_bytes(), Some(&signed)),
        Err(WebhookRejection::Malformed(_))
    ));
    let not_utf8 = [0xff_u8, 0xfe, b'{'];
    let header = format!(
        "t={NOW},v1={}",
        compute_signature(WEBHOOK_SECRET.as_bytes(), NOW, &not_utf8)
    );
    assert!(matches!(
        gateway.verify_webhook(&not_utf8, Some(&header)),
        Err(WebhookRejection::Malformed(_))
    ));
}

#[test]
fn livemode_must_match_the_key() {
    let object = fixture("event")["data"]["object"].clone();
    let live_event = event("evt_live", "plan.created", object.clone(), true);
    let test_event = event("evt_test", "plan.created", object, false);

    let (test_gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
    assert_eq!(
        deliver(&test_gateway, &live_event),
        Err(WebhookRejection::WrongMode)
    );
    assert!(matches!(
        deliver(&test_gateway, &test_event),
        Ok(WebhookEvent::Ignored(_))
    ));

    for live_key in [LIVE_KEY, "rk_live_restricted"] {
        let (live_gateway, _) = webhook_gateway(WEBHOOK_SECRET, live_key);
        assert_eq!(
            deliver(&live_gateway, &test_event),
            Err(WebhookRejection::WrongMode)
        );
        assert!(matches!(
            deliver(&live_gateway, &live_event),
            Ok(WebhookEvent::Ignored(_))
        ));
    }
    let (restricted_test, _) = webhook_gateway(WEBHOOK_SECRET, "rk_test_restricted");
    assert_eq!(
        deliver(&restricted_test, &live_event),
        Err(WebhookRejection::WrongMode)
    );
}

#[test]
fn a_configured_tolerance_is_honoured() {
    let clock = FixedClock::at(NOW + 61);
    let mut config =
        lms_stripe_http::StripeConfig::new(SECRET_KEY, WEBHOOK_SECRET, SUCCESS_URL, CANCEL_URL)
            .unwrap()
            .with_clock(clock.clone());
    config.webhook_tolerance = Duration::from_secs(60);
    let gateway = lms_stripe_http::StripeGateway::new(config).unwrap();
    let header = format!("t={NOW},v1={KAT_EVENT_SIG}");
    assert_eq!(
        gateway.verify_webhook(KAT_EVENT.as_bytes(), Some(&header)),
        Err(WebhookRejection::Stale)
    );
    clock.set(NOW + 60);
    assert!(gateway
        .verify_webhook(KAT_EVENT.as_bytes(), Some(&header))
        .is_ok());
}
