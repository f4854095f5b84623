//! Translation of diesel, SQLite and pool errors into the ports' [`RepoError`]; no diesel type
//! leaves this crate.
//!
//! SQLite names no constraint in its errors. A unique violation says which columns it hit
//! (`UNIQUE constraint failed: purchases.user_id, purchases.course_id`), or, for an index on an
//! expression, which index (`UNIQUE constraint failed: index 'users_email_key'`); each is mapped
//! to the business error of the PostgreSQL index of the same name.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;
use lms_ports::RepoError;

/// Unique indexes by what SQLite reports about them, and the business error each one means.
fn unique_violation(message: &str) -> RepoError {
    let target = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    match target {
        // users_email_key, on lower(email).
        "index 'users_email_key'" => RepoError::Duplicate("email"),
        // The primary keys.
        "users.id" | "courses.id" | "purchases.id" => RepoError::Duplicate("id"),
        // purchases_active_slot_key, partial: WHERE holds_active_slot.
        "purchases.user_id, purchases.course_id" => RepoError::ActivePurchaseExists,
        "purchases.checkout_session_id" => RepoError::Duplicate("checkout_session_id"),
        "purchases.payment_intent_id" => RepoError::Duplicate("payment_intent_id"),
        "processed_events.event_id" => RepoError::Duplicate("event_id"),
        other => RepoError::Unexpected(format!("unique violation on {other}")),
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED (another connection or process holds the lock beyond the busy
/// timeout) and a database file that cannot be opened: retrying later may succeed.
fn is_unavailable(message: &str) -> bool {
    message.starts_with("database is locked")
        || message.starts_with("database table is locked")
        || message.starts_with("database schema is locked")
        || message.starts_with("unable to open database file")
}

pub(crate) fn from_diesel(error: DieselError) -> RepoError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            unique_violation(info.message())
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            info,
        ) => RepoError::Unavailable(info.message().to_owned()),
        DieselError::DatabaseError(_, info) if is_unavailable(info.message()) => {
            RepoError::Unavailable(info.message().to_owned())
        }
        DieselError::DatabaseError(kind, info) => {
            RepoError::Unexpected(format!("database error ({kind:?}): {}", info.message()))
        }
        other => RepoError::Unexpected(other.to_string()),
    }
}

pub(crate) fn from_connection(error: &ConnectionError) -> RepoError {
    match error {
        ConnectionError::InvalidConnectionUrl(_) => {
            RepoError::Unexpected("invalid SQLite database path".to_owned())
        }
        ConnectionError::CouldntSetupConfiguration(error) => from_diesel_ref(error),
        other => RepoError::Unavailable(format!("cannot open the SQLite database: {other}")),
    }
}

fn from_diesel_ref(error: &DieselError) -> RepoError {
    match error {
        DieselError::DatabaseError(_, info) if is_unavailable(info.message()) => {
            RepoError::Unavailable(info.message().to_owned())
        }
        other => RepoError::Unexpected(format!("cannot configure the SQLite connection: {other}")),
    }
}

pub(crate) fn from_pool(error: bb8::RunError<PoolError>) -> RepoError {
    match error {
        bb8::RunError::TimedOut => {
            RepoError::Unavailable("timed out waiting for a SQLite read connection".to_owned())
        }
        bb8::RunError::User(PoolError::ConnectionError(error)) => from_connection(&error),
        bb8::RunError::User(PoolError::QueryError(error)) => {
            RepoError::Unavailable(format!("SQLite connection check failed: {error}"))
        }
    }
}

/// The error type of a transaction body: a database error or a business outcome that rolls
/// the transaction back.
#[derive(Debug)]
pub(crate) enum TxError {
    Db(DieselError),
    Repo(RepoError),
}

impl From<DieselError> for TxError {
    fn from(error: DieselError) -> Self {
        TxError::Db(error)
    }
}

impl From<RepoError> for TxError {
    fn from(error: RepoError) -> Self {
        TxError::Repo(error)
    }
}

impl From<TxError> for RepoError {
    fn from(error: TxError) -> Self {
        match error {
            TxError::Db(error) => from_diesel(error),
            TxError::Repo(error) => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn each_unique_index_has_its_business_meaning() {
        let unique = |message: &str| {
            from_diesel(database_error(DatabaseErrorKind::UniqueViolation, message))
        };
        assert_eq!(
            unique("UNIQUE constraint failed: index 'users_email_key'"),
            RepoError::Duplicate("email")
        );
        assert_eq!(
            unique("UNIQUE constraint failed: purchases.user_id, purchases.course_id"),
            RepoError::ActivePurchaseExists
        );
        assert_eq!(
            unique("UNIQUE constraint failed: purchases.checkout_session_id"),
            RepoError::Duplicate("checkout_session_id")
        );
        assert_eq!(
            unique("UNIQUE constraint failed: purchases.payment_intent_id"),
            RepoError::Duplicate("payment_intent_id")
        );
        for table in ["users", "courses", "purchases"] {
            assert_eq!(
                unique(&format!("UNIQUE constraint failed: {table}.id")),
                RepoError::Duplicate("id")
            );
        }
        assert!(matches!(
            unique("UNIQUE constraint failed: other.column"),
            RepoError::Unexpected(_)
        ));
    }

    #[test]
    fn a_busy_database_is_unavailable_not_unexpected() {
        assert!(matches!(
            from_diesel(database_error(
                DatabaseErrorKind::Unknown,
                "database is locked"
            )),
            RepoError::Unavailable(_)
        ));
        assert!(matches!(
            from_diesel(database_error(
                DatabaseErrorKind::CheckViolation,
                "CHECK constraint failed: x"
            )),
            RepoError::Unexpected(_)
        ));
    }
}
