//! The backend-neutral half of the SQL storage adapters (`lms-postgres`, `lms-sqlite`).
//!
//! Both adapters store the same rows; they differ only in how an id and an instant are written
//! (PostgreSQL: `uuid` and `timestamptz`; SQLite: uuid text and `i64` nanoseconds), in the type
//! of their JSON column (both keep JSON text; see [`payload`]) and in how their errors name a
//! constraint. So what does not depend on the backend lives here once, with no database
//! dependency:
//! * the translation between domain values and stored records ([`UserRecord`],
//!   [`CourseRecord`], [`PurchaseRecord`] and its [`StateRecord`], what a fact update
//!   writes, the payment details and the derived sale; the event inbox's [`WebhookEventRecord`] and the audit trail's [`AuditRecord`]),
//!   generic over an [`Encoding`] of ids, instants and event payloads;
//! * what each unique constraint means ([`unique_constraint_meaning`]);
//! * what a claim of the payments mode found ([`deployment_claim`]);
//! * the commerce queries' shared half: the revenue report's rows ([`RevenueRecord`]), and
//!   how a refund lease or a gateway customer link that wrote nothing is read
//!   ([`RefundLeaseMiss`], [`linked_gateway_customer`]);
//! * small query-side rules: which purchases unlock a course ([`unlocked`]), a buyer's view
//!   read in one statement ([`buyer_view`]), paging
//!   ([`limit_offset`]);
//! * the adapters' plumbing: [`row!`] declares a diesel row struct and generates its field
//!   moves to and from its record, [`tx_error!`] the error type of transaction bodies.
//!
//! Each adapter keeps its diesel schema and row structs, its queries and its error
//! translation.
//!
//! Reading a record re-validates it through the domain's parsers (`Email::parse`,
//! `Currency::parse`, ...): a record the domain would not accept is reported as
//! [`RepoError::Unexpected`] instead of being smuggled in.

mod audit;
mod commerce;
mod constraints;
mod deployment;
mod inbox;
pub mod payload;
mod records;

pub use crate::audit::AuditRecord;
pub use crate::commerce::{
    linked_gateway_customer, refund_lease_contended, RefundLeaseMiss, RevenueRecord,
    REFUND_LEASE_ATTEMPTS,
};
pub use crate::constraints::unique_constraint_meaning;
pub use crate::deployment::{deployment_claim, DEPLOYMENT_ROW_ID};
pub use crate::inbox::{event_outcome, first_delivery, WebhookEventRecord};
pub use crate::records::{
    buyer_view, limit_offset, page, purchase_and_others, session_generation, total, unlocked,
    CourseRecord, PurchaseRecord, Record, StateRecord, UserRecord,
};

use std::marker::PhantomData;

use lms_ports::RepoError;
use time::OffsetDateTime;
use uuid::Uuid;

/// How a backend stores ids, instants and event payloads. `what` names the stored value in
/// the error a corrupt one is reported with.
pub trait Encoding {
    /// The stored form of an id.
    type Id;
    /// The stored form of an instant.
    type Instant;
    /// The stored form of an event payload: JSON text (see [`payload`]), in the type the
    /// backend's JSON column takes.
    type Json: From<String> + Into<String>;

    fn store_id(id: Uuid) -> Self::Id;

    /// # Errors
    /// [`RepoError::Unexpected`] for a stored value that is not an id.
    fn load_id(stored: Self::Id, what: &str) -> Result<Uuid, RepoError>;

    /// # Errors
    /// [`RepoError::Unexpected`] for an instant the backend cannot hold.
    fn store_instant(at: OffsetDateTime) -> Result<Self::Instant, RepoError>;

    /// # Errors
    /// [`RepoError::Unexpected`] for a stored value that is not an instant.
    fn load_instant(stored: Self::Instant, what: &str) -> Result<OffsetDateTime, RepoError>;
}

/// A backend with native `uuid` and timestamp types (PostgreSQL): both are stored as they are.
/// `J` is the adapter's type for its JSON column's text. Never constructed: a type-level name.
#[derive(Debug)]
pub struct Native<J = String>(PhantomData<J>);

impl<J: From<String> + Into<String>> Encoding for Native<J> {
    type Id = Uuid;
    type Instant = OffsetDateTime;
    type Json = J;

    fn store_id(id: Uuid) -> Uuid {
        id
    }

    fn load_id(stored: Uuid, _what: &str) -> Result<Uuid, RepoError> {
        Ok(stored)
    }

    fn store_instant(at: OffsetDateTime) -> Result<OffsetDateTime, RepoError> {
        Ok(at)
    }

    fn load_instant(stored: OffsetDateTime, _what: &str) -> Result<OffsetDateTime, RepoError> {
        Ok(stored)
    }
}

#[doc(hidden)]
pub mod __private {
    //! What the expansions of [`row!`](crate::row) and [`tx_error!`](crate::tx_error) name.
    pub use lms_ports::RepoError;
}

/// The error for a stored value the domain refuses; `cause` is the refusal (the parser's
/// error, or what is wrong in words).
pub fn corrupt(what: &str, cause: impl Into<lms_ports::BoxError>) -> RepoError {
    RepoError::unexpected(lms_ports::Context::new(
        format!("stored {what} is invalid"),
        cause,
    ))
}

/// Declares a diesel row struct and the field moves between it and its record (`From` both
/// ways, so a field missing from either side fails to compile). The struct is written out in
/// full, attributes and all, followed by `as` and its [`Record`], which also gives the row
/// `from_domain` / `into_domain`:
///
/// ```ignore
/// lms_sql_rows::row! {
///     #[derive(Debug, Queryable, Selectable, Insertable)]
///     #[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
///     pub(crate) struct UserRow as UserRecord<Native> {
///         pub id: Uuid,
///         // ... every field of the record, with the backend's types
///     }
/// }
/// ```
///
/// With `mirrors` instead of `as`, only the field moves (for [`StateRecord`], which is not a
/// whole domain value). A field marked `#[diesel(embed)]` holds such a nested row; every field
/// moves with `Into`.
#[macro_export]
macro_rules! row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $row:ident mirrors $record:ty {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $type:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $row {
            $($(#[$field_meta])* $field_vis $field: $type),+
        }

        impl ::core::convert::From<$record> for $row {
            fn from(record: $record) -> Self {
                Self { $($field: ::core::convert::Into::into(record.$field)),+ }
            }
        }

        impl ::core::convert::From<$row> for $record {
            fn from(row: $row) -> Self {
                Self { $($field: ::core::convert::Into::into(row.$field)),+ }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $row:ident as $record:ty {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $type:ty),+ $(,)?
        }
    ) => {
        $crate::row! {
            $(#[$meta])*
            $vis struct $row mirrors $record {
                $($(#[$field_meta])* $field_vis $field: $type),+
            }
        }

        impl $row {
            /// # Errors
            /// As the record's `from_domain`.
            #[allow(dead_code, reason = "each table mirror uses only the conversions its adapter needs")]
            pub fn from_domain(
                value: &<$record as $crate::Record>::Domain,
            ) -> ::core::result::Result<Self, $crate::__private::RepoError> {
                <$record as $crate::Record>::from_domain(value).map(Self::from)
            }

            /// # Errors
            /// As the record's `into_domain`.
            #[allow(dead_code, reason = "each table mirror uses only the conversions its adapter needs")]
            pub fn into_domain(
                self,
            ) -> ::core::result::Result<<$record as $crate::Record>::Domain, $crate::__private::RepoError> {
                $crate::Record::into_domain(<$record>::from(self))
            }
        }
    };
}

/// Declares `TxError`, the error type of an adapter's transaction bodies: a database error
/// (`$db_error`, turned into a [`RepoError`] by `$from_db`) or a business outcome that rolls
/// the transaction back. Converts from both with `?`, and into [`RepoError`].
///
/// ```ignore
/// lms_sql_rows::tx_error!(diesel::result::Error, from_diesel);
/// ```
#[macro_export]
macro_rules! tx_error {
    ($db_error:ty, $from_db:path) => {
        /// The error type of a transaction body: a database error or a business outcome that
        /// rolls the transaction back.
        #[derive(Debug)]
        pub(crate) enum TxError {
            Db($db_error),
            Repo($crate::__private::RepoError),
        }

        impl ::core::convert::From<$db_error> for TxError {
            fn from(error: $db_error) -> Self {
                TxError::Db(error)
            }
        }

        impl ::core::convert::From<$crate::__private::RepoError> for TxError {
            fn from(error: $crate::__private::RepoError) -> Self {
                TxError::Repo(error)
            }
        }

        impl ::core::convert::From<TxError> for $crate::__private::RepoError {
            fn from(error: TxError) -> Self {
                match error {
                    TxError::Db(error) => $from_db(error),
                    TxError::Repo(error) => error,
                }
            }
        }
    };
}
