//! The names this crate gives databases, and reading them back. Everything it creates starts
//! with [`PREFIX`]; the sweep drops nothing else, and of that only what [`parse`] accepts.
//!
//! A test database is `lms_tdb_<label>_<created unix seconds>_<owner token>_<n>`: the label
//! says who made it (from the caller's prefix), the time lets the sweep drop what is old, the
//! owner token names the process that made it (its liveness session carries the token, see
//! `owner`), `n` counts the process's databases. A template is
//! `lms_tdb_template_<migrations fingerprint>`: too few parts to parse as a test database.

/// What every database this crate creates is called first.
pub(crate) const PREFIX: &str = "lms_tdb_";
const LABEL_MAX: usize = 16;
pub(crate) const TOKEN_LEN: usize = 12;

/// The template for one migration set.
pub(crate) fn template(fingerprint: &str) -> String {
    format!("{PREFIX}template_{fingerprint}")
}

/// The label a caller's prefix becomes: lower-case letters, digits and `_` (the name goes
/// into SQL unquoted), the workspace's `lms_` dropped (the crate prefix says it), at most
/// 16 characters so the whole name stays under PostgreSQL's 63.
pub(crate) fn label(prefix: &str) -> String {
    let prefix = prefix.strip_prefix("lms_").unwrap_or(prefix);
    let label: String = prefix
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(LABEL_MAX)
        .collect();
    let label = label.trim_matches('_');
    if label.is_empty() {
        "test".to_owned()
    } else {
        label.to_owned()
    }
}

pub(crate) fn test_database(label: &str, created_unix: u64, token: &str, n: u64) -> String {
    format!("{PREFIX}{label}_{created_unix:010}_{token}_{n}")
}

/// A test database's name read back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parsed<'a> {
    pub(crate) created_unix: u64,
    pub(crate) token: &'a str,
}

/// `Some` only for names [`test_database`] makes (read from the end, since labels hold `_`).
pub(crate) fn parse(name: &str) -> Option<Parsed<'_>> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.rsplitn(4, '_');
    let n = parts.next()?;
    let token = parts.next()?;
    let created = parts.next()?;
    let label = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let hex = |s: &str| s.len() == TOKEN_LEN && s.bytes().all(|b| b.is_ascii_hexdigit());
    if label.is_empty() || !digits(n) || !hex(token) || created.len() != 10 || !digits(created) {
        return None;
    }
    Some(Parsed {
        created_unix: created.parse().ok()?,
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_safe_short_identifiers() {
        assert_eq!(label("lms_test"), "test");
        assert_eq!(label("lms_api_test"), "api_test");
        assert_eq!(label("Bench-HTTP"), "bench_http");
        assert_eq!(label("a_very_long_prefix_indeed_it_is"), "a_very_long_pref");
        assert_eq!(label("lms_"), "test");
        assert_eq!(label("x; DROP DATABASE y"), "x__drop_database");
    }

    #[test]
    fn test_database_names_read_back_and_fit_postgres() {
        let name = test_database(
            &label("lms_a_very_long_prefix"),
            1_780_000_000,
            "0123456789ab",
            42,
        );
        assert!(name.len() <= 63, "{name}");
        assert_eq!(
            parse(&name),
            Some(Parsed {
                created_unix: 1_780_000_000,
                token: "0123456789ab"
            })
        );
    }

    #[test]
    fn nothing_else_parses() {
        for name in [
            "postgres",
            "template1",
            "lms",
            "lms_test_0123456789abcdef0123456789abcdef",
            "lms_tdb_template_0123456789abcdef",
            "lms_tdb__1780000000_0123456789ab_1",
            "lms_tdb_x_178000000_0123456789ab_1",
            "lms_tdb_x_1780000000_0123456789a_1",
            "lms_tdb_x_1780000000_0123456789ab_",
            "xlms_tdb_x_1780000000_0123456789ab_1",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
        assert_eq!(parse(&template("0123456789abcdef")), None);
    }
}
