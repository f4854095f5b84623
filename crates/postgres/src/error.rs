//! Translation of diesel and pool errors into the ports' [`RepoError`]; no diesel type leaves
//! this crate.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;
use lms_ports::RepoError;
use lms_sql_rows::unique_constraint_meaning;

/// The business error a unique violation means ([`unique_constraint_meaning`], shared with the
/// SQLite adapter).
fn unique_violation(constraint: Option<&str>) -> RepoError {
    constraint
        .and_then(unique_constraint_meaning)
        .unwrap_or_else(|| {
            RepoError::Unexpected(format!(
                "unique violation on {}",
                constraint.unwrap_or("an unnamed constraint")
            ))
        })
}

pub(crate) fn from_diesel(error: DieselError) -> RepoError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            unique_violation(info.constraint_name())
        }
        // Recording an event for a purchase that does not exist.
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)
            if info.constraint_name() == Some("processed_events_purchase_id_fkey") =>
        {
            RepoError::NotFound
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            info,
        ) => RepoError::Unavailable(info.message().to_owned()),
        DieselError::DatabaseError(kind, info) => {
            RepoError::Unexpected(format!("database error ({kind:?}): {}", info.message()))
        }
        other => RepoError::Unexpected(other.to_string()),
    }
}

pub(crate) fn from_connection(error: &ConnectionError) -> RepoError {
    match error {
        ConnectionError::InvalidConnectionUrl(_) => {
            // The message may echo the URL, which can carry a password: never pass it on.
            RepoError::Unexpected("invalid database URL".to_owned())
        }
        other => RepoError::Unavailable(format!("cannot connect to the database: {other}")),
    }
}

pub(crate) fn from_pool(error: bb8::RunError<PoolError>) -> RepoError {
    match error {
        bb8::RunError::TimedOut => {
            RepoError::Unavailable("timed out waiting for a database connection".to_owned())
        }
        bb8::RunError::User(PoolError::ConnectionError(error)) => from_connection(&error),
        bb8::RunError::User(PoolError::QueryError(error)) => {
            RepoError::Unavailable(format!("database connection check failed: {error}"))
        }
    }
}

lms_sql_rows::tx_error!(DieselError, from_diesel);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unique_index_has_its_business_meaning() {
        assert_eq!(
            unique_violation(Some("users_email_key")),
            RepoError::Duplicate("email")
        );
        assert_eq!(
            unique_violation(Some("purchases_active_slot_key")),
            RepoError::ActivePurchaseExists
        );
        assert_eq!(
            unique_violation(Some("purchases_checkout_session_id_key")),
            RepoError::Duplicate("checkout_session_id")
        );
        assert_eq!(
            unique_violation(Some("purchases_payment_intent_id_key")),
            RepoError::Duplicate("payment_intent_id")
        );
        assert_eq!(
            unique_violation(Some("purchases_pkey")),
            RepoError::Duplicate("id")
        );
        assert!(matches!(unique_violation(None), RepoError::Unexpected(_)));
    }

    #[test]
    fn invalid_urls_are_not_echoed() {
        let error = ConnectionError::InvalidConnectionUrl("postgres://u:hunter2@h/db".to_owned());
        let RepoError::Unexpected(message) = from_connection(&error) else {
            panic!("expected Unexpected");
        };
        assert!(!message.contains("hunter2"));
    }
}
