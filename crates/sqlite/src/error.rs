//! Translation of diesel, SQLite and pool errors into the ports' [`RepoError`]; no diesel type
//! leaves this crate.
//!
//! SQLite names no constraint in its errors. A unique violation says which columns it hit
//! (`UNIQUE constraint failed: purchases.user_id, purchases.course_id`), or, for an index on an
//! expression, which index (`UNIQUE constraint failed: index 'users_email_key'`); each is mapped
//! to the business error of the PostgreSQL index of the same name.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;
use lms_ports::{Context, RepoError};
use lms_sql_rows::unique_constraint_meaning;

/// The business error a unique violation means, from what SQLite reports about it; `None`
/// for a constraint with no business meaning.
fn unique_violation(message: &str) -> Option<RepoError> {
    let target = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    postgres_name(target).and_then(unique_constraint_meaning)
}

/// The PostgreSQL name of the unique index a SQLite violation `target` names: its meaning is
/// [`unique_constraint_meaning`]'s, shared with the PostgreSQL adapter.
fn postgres_name(target: &str) -> Option<&'static str> {
    Some(match target {
        // users_email_key, on lower(email).
        "index 'users_email_key'" => "users_email_key",
        // users_gateway_customer_id_key, partial: WHERE gateway_customer_id IS NOT NULL.
        "users.gateway_customer_id" => "users_gateway_customer_id_key",
        // The primary keys.
        "users.id" => "users_pkey",
        "courses.id" => "courses_pkey",
        "purchases.id" => "purchases_pkey",
        // purchases_active_slot_key, partial: WHERE holds_active_slot.
        "purchases.user_id, purchases.course_id" => "purchases_active_slot_key",
        "purchases.checkout_session_id" => "purchases_checkout_session_id_key",
        "purchases.payment_intent_id" => "purchases_payment_intent_id_key",
        "webhook_events.event_id" => "webhook_events_pkey",
        _ => return None,
    })
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
    let DieselError::DatabaseError(kind, info) = &error else {
        return RepoError::unexpected(error);
    };
    match kind {
        DatabaseErrorKind::UniqueViolation => match unique_violation(info.message()) {
            Some(meaning) => meaning,
            None => RepoError::unexpected(Context::new(
                "unique violation on a constraint with no business meaning",
                error,
            )),
        },
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
            RepoError::unavailable(error)
        }
        _ if is_unavailable(info.message()) => RepoError::unavailable(error),
        other => RepoError::unexpected(Context::new(format!("database error ({other:?})"), error)),
    }
}

pub(crate) fn from_connection(error: ConnectionError) -> RepoError {
    match error {
        ConnectionError::InvalidConnectionUrl(_) => {
            RepoError::unexpected("invalid SQLite database path")
        }
        ConnectionError::CouldntSetupConfiguration(error) => match &error {
            DieselError::DatabaseError(_, info) if is_unavailable(info.message()) => {
                RepoError::unavailable(error)
            }
            _ => RepoError::unexpected(Context::new(
                "cannot configure the SQLite connection",
                error,
            )),
        },
        other => RepoError::unavailable(Context::new("cannot open the SQLite database", other)),
    }
}

pub(crate) fn from_pool(error: bb8::RunError<PoolError>) -> RepoError {
    match error {
        bb8::RunError::TimedOut => {
            RepoError::unavailable("timed out waiting for a SQLite read connection")
        }
        bb8::RunError::User(PoolError::ConnectionError(error)) => from_connection(error),
        bb8::RunError::User(PoolError::QueryError(error)) => {
            RepoError::unavailable(Context::new("SQLite connection check failed", error))
        }
    }
}

lms_sql_rows::tx_error!(DieselError, from_diesel);

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
            unique("UNIQUE constraint failed: users.gateway_customer_id"),
            RepoError::Duplicate("gateway_customer_id")
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
