//! How an event payload (the raw body a gateway sent) is stored: as JSON text, byte for byte,
//! so that the inbox gives back exactly the body received (for audit, and for a replay to
//! decode it again), and operators can still query it as JSON in SQL (PostgreSQL's `json`
//! type, which keeps the text, not `jsonb`, which normalises it; SQLite's JSON-checked text).
//!
//! The gateway sends JSON; a body that is not JSON is still kept, for audit, as a JSON string
//! of its text, and read back as that text. (So a body that is itself a JSON string literal
//! reads back unquoted: no gateway sends one.)

use serde::de::IgnoredAny;
use serde_json::Value;

/// The JSON text a raw body is stored as: the body byte for byte when it is JSON, else a JSON
/// string of it.
pub fn to_json_text(raw: &str) -> String {
    // Checked, not built: parsing a 5 KB event into a `Value` (a map per object) cost more
    // instructions than the rest of the row's conversion and its insert together.
    if serde_json::from_str::<IgnoredAny>(raw).is_ok() {
        raw.to_owned()
    } else {
        Value::String(raw.to_owned()).to_string()
    }
}

/// The body stored JSON text holds: a string's text, anything else as it is.
pub fn from_json_text(stored: String) -> String {
    if stored.trim_start().starts_with('"') {
        if let Ok(text) = serde_json::from_str::<String>(&stored) {
            return text;
        }
    }
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_kept_byte_for_byte_and_anything_else_as_a_string_of_its_text() {
        for raw in [
            r#"{"id":"evt_1","data":{"amount":1999}}"#,
            "{\n  \"id\": \"evt_1\",\n  \"b\": 1, \"a\": 2\n}",
            "not json",
            r#"say "hi""#,
            "",
            // Almost JSON: each must be kept as a string, not stored as (invalid) JSON.
            r#"{"id":"evt_1"} trailing"#,
            r#"{"id":}"#,
            "[1,]",
            r#"["bad \x escape"]"#,
            "[\"a raw\u{1}control\"]",
            "[01]",
            r#"{"id":"evt_1""#,
        ] {
            assert_eq!(from_json_text(to_json_text(raw)), raw, "{raw:?}");
            assert!(serde_json::from_str::<Value>(&to_json_text(raw)).is_ok());
        }
        assert_eq!(to_json_text(r#"{"id": "evt_1"}"#), r#"{"id": "evt_1"}"#);
        assert_eq!(to_json_text("not json"), r#""not json""#);
        assert_eq!(to_json_text(r#"say "hi""#), r#""say \"hi\"""#);
    }
}
