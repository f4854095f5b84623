//! Translation of diesel and pool errors into the ports' [`RepoError`]; no diesel type leaves
//! this crate except as the source of an opaque variant (read as `dyn Error`, never matched).

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError;
use lms_ports::{Context, RepoError};
use lms_sql_rows::unique_constraint_meaning;
use std::sync::Arc;

/// A statement the server cancelled because it ran past `statement_timeout` (SQLSTATE 57014)
/// or waited for a lock past `lock_timeout` (55P03, also a `NOWAIT` lock not granted): the
/// database is overloaded or another transaction holds the row, and the same call later may
/// succeed. diesel's error information carries no SQLSTATE, so the server's message tells,
/// in the English the server speaks unless `lc_messages` says otherwise.
fn is_timeout(message: &str) -> bool {
    message.starts_with("canceling statement due to statement timeout")
        || message.starts_with("canceling statement due to lock timeout")
        || message.starts_with("could not obtain lock")
}

/// The server broke a cycle of lock waits by failing this statement (SQLSTATE 40P01): the
/// other transaction goes on, and the same call again succeeds. Grouped commits on several
/// lanes can meet one (see the `group_commit` module).
fn is_deadlock(message: &str) -> bool {
    message.starts_with("deadlock detected")
}

pub(crate) fn from_diesel(error: DieselError) -> RepoError {
    let DieselError::DatabaseError(kind, info) = &error else {
        return RepoError::unexpected(error);
    };
    match kind {
        DatabaseErrorKind::UniqueViolation => {
            match info.constraint_name().and_then(unique_constraint_meaning) {
                Some(meaning) => meaning,
                None => RepoError::unexpected(Context::new(
                    "unique violation on a constraint with no business meaning",
                    error,
                )),
            }
        }
        // Recording an event for a purchase that does not exist.
        DatabaseErrorKind::ForeignKeyViolation
            if info.constraint_name() == Some("webhook_events_purchase_id_fkey") =>
        {
            RepoError::NotFound
        }
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
            RepoError::unavailable(error)
        }
        _ if is_timeout(info.message()) || is_deadlock(info.message()) => {
            RepoError::unavailable(error)
        }
        other => RepoError::unexpected(Context::new(format!("database error ({other:?})"), error)),
    }
}

pub(crate) fn from_connection(error: ConnectionError) -> RepoError {
    match error {
        ConnectionError::InvalidConnectionUrl(_) => {
            // The message may echo the URL, which can carry a password: never pass it on.
            RepoError::unexpected("invalid database URL")
        }
        other => RepoError::unavailable(Context::new("cannot connect to the database", other)),
    }
}

/// `failure`: the latest failure to open a connection while the caller waited (as this
/// function translated it), the reason a wait timed out when there is one.
pub(crate) fn from_pool(
    error: bb8::RunError<PoolError>,
    failure: Option<Arc<RepoError>>,
) -> RepoError {
    const TIMED_OUT: &str = "timed out waiting for a database connection";
    match error {
        bb8::RunError::TimedOut => match failure {
            Some(failure) => RepoError::unavailable(Context::new(
                format!("{TIMED_OUT}; opening one failed"),
                failure,
            )),
            None => RepoError::unavailable(TIMED_OUT),
        },
        bb8::RunError::User(PoolError::ConnectionError(error)) => from_connection(error),
        bb8::RunError::User(PoolError::QueryError(error)) => {
            RepoError::unavailable(Context::new("database connection check failed", error))
        }
    }
}

lms_sql_rows::tx_error!(DieselError, from_diesel);

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::DatabaseErrorInformation;

    /// What the server reports, as diesel hands it over.
    struct Reported {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn reported(
        kind: DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> RepoError {
        from_diesel(DieselError::DatabaseError(
            kind,
            Box::new(Reported {
                message,
                constraint,
            }),
        ))
    }

    #[test]
    fn each_unique_index_has_its_business_meaning() {
        let unique = |constraint| {
            reported(
                DatabaseErrorKind::UniqueViolation,
                "duplicate key value violates unique constraint",
                constraint,
            )
        };
        assert_eq!(
            unique(Some("users_email_key")),
            RepoError::Duplicate("email")
        );
        assert_eq!(
            unique(Some("purchases_active_slot_key")),
            RepoError::ActivePurchaseExists
        );
        assert_eq!(
            unique(Some("purchases_checkout_session_id_key")),
            RepoError::Duplicate("checkout_session_id")
        );
        assert_eq!(
            unique(Some("purchases_payment_intent_id_key")),
            RepoError::Duplicate("payment_intent_id")
        );
        assert_eq!(unique(Some("purchases_pkey")), RepoError::Duplicate("id"));
        let unnamed = unique(None);
        assert!(matches!(unnamed, RepoError::Unexpected(_)));
        assert_eq!(
            lms_ports::chain_text(&unnamed),
            "unexpected storage error: unique violation on a constraint with no business meaning: \
             duplicate key value violates unique constraint"
        );
    }

    #[test]
    fn statement_and_lock_timeouts_and_deadlocks_are_retryable_and_keep_the_server_message() {
        for message in [
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "could not obtain lock on row in relation \"purchases\"",
            "deadlock detected",
        ] {
            let error = reported(DatabaseErrorKind::Unknown, message, None);
            assert!(matches!(error, RepoError::Unavailable(_)), "{message}");
            assert_eq!(
                lms_ports::chain_text(&error),
                format!("storage unavailable: {message}")
            );
        }
        let other = reported(DatabaseErrorKind::Unknown, "division by zero", None);
        assert!(matches!(other, RepoError::Unexpected(_)));
        assert_eq!(
            lms_ports::chain_text(&other),
            "unexpected storage error: database error (Unknown): division by zero"
        );
    }

    #[test]
    fn invalid_urls_are_not_echoed() {
        let error = ConnectionError::InvalidConnectionUrl("postgres://u:hunter2@h/db".to_owned());
        let error = from_connection(error);
        assert!(matches!(error, RepoError::Unexpected(_)));
        assert!(!format!("{error:?}").contains("hunter2"));
    }
}
