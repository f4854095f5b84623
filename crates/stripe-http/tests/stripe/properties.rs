//! Property tests: the header parser, the event parser and the whole verification never panic,
//! whatever arrives, and well-signed near-valid input is judged consistently.

use crate::support::*;
use lms_ports::{PaymentGateway, WebhookEvent, WebhookRejection};
use lms_stripe_http::{compute_signature, parse_event, parse_signature_header, SignatureError};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("paid"),
            Just("unpaid"),
            Just("usd"),
            Just("won"),
            Just("lost"),
            Just("pi_1"),
            Just("jpy")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
        Just(Value::String(purchase_id(1).to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("amount".to_owned()),
                    Just("amount_total".to_owned()),
                    Just("amount_captured".to_owned()),
                    Just("amount_refunded".to_owned()),
                    Just("currency".to_owned()),
                    Just("payment_status".to_owned()),
                    Just("status".to_owned()),
                    Just("metadata".to_owned()),
                    Just("purchase_id".to_owned()),
                    Just("client_reference_id".to_owned()),
                    Just("payment_intent".to_owned()),
                    Just("charge".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("checkout.session.completed".to_owned()),
        Just("checkout.session.async_payment_succeeded".to_owned()),
        Just("checkout.session.async_payment_failed".to_owned()),
        Just("checkout.session.expired".to_owned()),
        Just("charge.succeeded".to_owned()),
        Just("charge.failed".to_owned()),
        Just("charge.refunded".to_owned()),
        Just("charge.dispute.created".to_owned()),
        Just("charge.dispute.closed".to_owned()),
        "[a-z._]{0,30}",
    ]
}

/// Headers built from the right pieces in the wrong shapes.
fn near_valid_header() -> impl Strategy<Value = String> {
    let item = prop_oneof![
        any::<i64>().prop_map(|t| format!("t={t}")),
        "[0-9]{0,25}".prop_map(|t| format!("t={t}")),
        ".{0,10}".prop_map(|t| format!("t={t}")),
        "[0-9a-f]{0,70}".prop_map(|sig| format!("v1={sig}")),
        "[0-9a-fA-FxX]{64}".prop_map(|sig| format!("v1={sig}")),
        "[0-9a-f]{64}".prop_map(|sig| format!("v0={sig}")),
        "[a-z0-9 =]{0,10}",
        Just(String::new()),
    ];
    (
        prop::collection::vec(item, 0..6),
        prop_oneof![Just(","), Just(", "), Just(";"), Just(",,")],
    )
        .prop_map(|(items, separator)| items.join(separator))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_header_parser_never_panics(header in ".*") {
        let _ = parse_signature_header(&header);
    }

    #[test]
    fn near_valid_headers_never_panic_and_errors_are_typed(header in near_valid_header()) {
        match parse_signature_header(&header) {
            Ok(parsed) => {
                prop_assert!(parsed.timestamp >= 0);
                prop_assert!(parsed.v1.len() <= header.matches("v1=").count());
            }
            Err(rejection) => prop_assert!(matches!(
                rejection,
                SignatureError::UnreadableHeader | SignatureError::NoV1Signature
            )),
        }
        let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
        prop_assert!(gateway.verify_webhook(b"{}", Some(&header)).is_err(), "no random header can be right");
    }

    #[test]
    fn the_event_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512), live in any::<bool>()) {
        let _ = parse_event(&bytes, live);
    }

    #[test]
    fn the_event_parser_never_panics_on_strings(text in ".{0,300}") {
        let _ = parse_event(text.as_bytes(), false);
    }

    #[test]
    fn near_valid_events_are_relevant_ignored_or_invalid_never_a_panic(
        event_type in event_type(),
        object in arbitrary_json(),
        created in any::<i64>(),
        livemode in any::<bool>(),
    ) {
        let body = json!({
            "id": "evt_prop", "object": "event", "type": event_type, "created": created,
            "livemode": livemode, "data": {"object": object},
        })
        .to_string();
        match parse_event(body.as_bytes(), false) {
            Ok(WebhookEvent::Relevant(event)) => {
                prop_assert!(!livemode);
                prop_assert_eq!(event.envelope.payload, body);
                prop_assert!(!event.envelope.livemode);
                prop_assert!(event.locator != lms_ports::PurchaseLocator::default());
            }
            Ok(WebhookEvent::Ignored(envelope)) => {
                prop_assert_eq!(envelope.id, "evt_prop");
                prop_assert_eq!(envelope.payload, body);
                prop_assert!(!envelope.livemode);
            }
            Err(WebhookRejection::Malformed(_)) => {}
            Err(WebhookRejection::WrongMode) => prop_assert!(livemode),
            Err(other) => prop_assert!(false, "unexpected rejection {other:?}"),
        }
    }

    #[test]
    fn a_verified_body_decodes_again_from_storage_to_the_same_result(
        event_type in event_type(),
        object in arbitrary_json(),
        livemode in any::<bool>(),
    ) {
        let body = json!({
            "id": "evt_prop", "object": "event", "type": event_type, "created": NOW,
            "livemode": livemode, "data": {"object": object},
        })
        .to_string();
        let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
        let header = format!("t={NOW},v1={}", compute_signature(WEBHOOK_SECRET.as_bytes(), NOW, body.as_bytes()));
        prop_assert_eq!(
            gateway.decode_stored_event(body.as_bytes()),
            gateway.verify_webhook(body.as_bytes(), Some(&header))
        );
    }

    #[test]
    fn verification_never_panics_and_a_correct_signature_always_passes_the_signature_check(
        payload in prop::collection::vec(any::<u8>(), 0..256),
        skew in -300_i64..=300,
        garbage_header in ".{0,80}",
    ) {
        let (gateway, _) = webhook_gateway(WEBHOOK_SECRET, SECRET_KEY);
        let _ = gateway.verify_webhook(&payload, Some(&garbage_header));
        let t = NOW + skew;
        let header = format!("t={t},v1={}", compute_signature(WEBHOOK_SECRET.as_bytes(), t, &payload));
        match gateway.verify_webhook(&payload, Some(&header)) {
            Ok(_) | Err(WebhookRejection::Malformed(_) | WebhookRejection::WrongMode) => {}
            Err(other) => prop_assert!(false, "a correctly signed body was refused: {other:?}"),
        }
    }
}
