//! The use cases' error: business outcomes the HTTP adapter maps to status codes, and two
//! opaque variants that keep their cause (the policy: `lms_ports`' "Errors" section).

use lms_ports::{BoxError, GatewayError, PasswordHashError, RepoError, WebhookRejection};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// One invalid input field, named by its camelCase wire name (`email`, `priceCents`, ...).
///
/// The one field error of the workspace: the HTTP adapter names fields with it too (those of
/// a body it could not deserialise), so its name may be built at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a [`UseCaseError::NotFound`] could not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Course,
    Purchase,
    User,
    /// An event in the inbox.
    Event,
}

impl Resource {
    /// The lowercase noun: `course`, `purchase`, `user`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Resource::Course => "course",
            Resource::Purchase => "purchase",
            Resource::User => "user",
            Resource::Event => "event",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Error)]
pub enum UseCaseError {
    /// The input is invalid; every offending field is listed.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// Unknown email or wrong password: deliberately indistinguishable.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("an account with this email already exists")]
    EmailTaken,
    /// A session token's account no longer exists, or the session it was issued in was
    /// ended (signed out): the caller is not signed in.
    #[error("the session has ended")]
    SessionEnded,
    /// Authenticated, but not allowed to do this.
    #[error("not allowed")]
    Forbidden,
    /// Names what was not found.
    #[error("{0} not found")]
    NotFound(Resource),
    #[error("the course is already purchased")]
    AlreadyPurchased,
    #[error("instructors cannot buy their own course")]
    OwnCourse,
    /// A payment for this course is settling or held for review: the customer must not pay again.
    #[error("a payment for this course is already in progress")]
    PaymentInProgress,
    /// The purchase cannot be refunded (not completed, nothing captured, ...).
    #[error("the purchase cannot be refunded: {0}")]
    NotRefundable(String),
    /// Another refund of this purchase is being made right now; nothing was done. Refunds of
    /// one purchase are made one at a time, so that together they never exceed the payment.
    #[error("another refund of this purchase is in progress")]
    RefundInProgress,
    /// Buyers cannot ask for refunds themselves on this deployment.
    #[error("refunds cannot be requested by the buyer")]
    SelfRefundUnavailable,
    /// The buyer asked for a refund after the self-service window closed.
    #[error("{}", refund_window_text(*.window_days))]
    RefundWindowClosed { window_days: u32 },
    /// The purchase is not held for review (never was, or already resolved).
    #[error("the purchase is not held for review")]
    NotHeld,
    /// The stored event cannot be processed again; says why.
    #[error("the event cannot be replayed: {0}")]
    NotReplayable(String),
    /// The webhook failed verification; nothing was written.
    #[error("webhook rejected: {0}")]
    WebhookRejected(WebhookRejection),
    /// The payment gateway failed or refused.
    #[error(transparent)]
    Gateway(GatewayError),
    /// The server is at its bound for expensive work (password hashing) and refused this request
    /// rather than queue it; nothing was done. Clears by itself after about `retry_after`.
    #[error("the server is busy; retry after {retry_after:?}")]
    Busy { retry_after: Duration },
    /// Retryable: a dependency (the store) could not be reached or timed out; its error is the
    /// source.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else; the source says what.
    #[error("unexpected error")]
    Unexpected(#[source] BoxError),
}

impl UseCaseError {
    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> Self {
        UseCaseError::Validation(vec![FieldError::new(field, message)])
    }

    /// An opaque failure keeping `cause` as its source.
    pub fn unexpected(cause: impl Into<BoxError>) -> Self {
        UseCaseError::Unexpected(cause.into())
    }
}

/// Business variants compare by value; opaque ones when they are the same variant with causes
/// that read the same at every level (causes have no equality of their own).
impl PartialEq for UseCaseError {
    fn eq(&self, other: &Self) -> bool {
        use UseCaseError as E;
        match (self, other) {
            (E::Validation(a), E::Validation(b)) => a == b,
            (E::InvalidCredentials, E::InvalidCredentials)
            | (E::EmailTaken, E::EmailTaken)
            | (E::SessionEnded, E::SessionEnded)
            | (E::Forbidden, E::Forbidden)
            | (E::AlreadyPurchased, E::AlreadyPurchased)
            | (E::OwnCourse, E::OwnCourse)
            | (E::PaymentInProgress, E::PaymentInProgress)
            | (E::RefundInProgress, E::RefundInProgress)
            | (E::SelfRefundUnavailable, E::SelfRefundUnavailable)
            | (E::NotHeld, E::NotHeld) => true,
            (
                E::RefundWindowClosed { window_days: a },
                E::RefundWindowClosed { window_days: b },
            ) => a == b,
            (E::NotReplayable(a), E::NotReplayable(b)) => a == b,
            (E::NotFound(a), E::NotFound(b)) => a == b,
            (E::NotRefundable(a), E::NotRefundable(b)) => a == b,
            (E::WebhookRejected(a), E::WebhookRejected(b)) => a == b,
            (E::Gateway(a), E::Gateway(b)) => a == b,
            (E::Busy { retry_after: a }, E::Busy { retry_after: b }) => a == b,
            (E::Unavailable(a), E::Unavailable(b)) | (E::Unexpected(a), E::Unexpected(b)) => {
                lms_ports::error::same_cause(a, b)
            }
            _ => false,
        }
    }
}

/// `refunds can be requested within 14 days of payment`: what a closed window says, naming it.
pub fn refund_window_text(window_days: u32) -> String {
    let unit = if window_days == 1 { "day" } else { "days" };
    format!("refunds can be requested within {window_days} {unit} of payment")
}

impl From<RepoError> for UseCaseError {
    /// The generic mapping; use cases handle the business variants they expect before this.
    /// The storage error itself becomes the source: the log then reads which layer failed,
    /// then why.
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::Unavailable(_) => UseCaseError::Unavailable(Box::new(err)),
            other => UseCaseError::Unexpected(Box::new(other)),
        }
    }
}

impl From<PasswordHashError> for UseCaseError {
    fn from(err: PasswordHashError) -> Self {
        match err {
            PasswordHashError::Busy { retry_after } => UseCaseError::Busy { retry_after },
            unexpected @ PasswordHashError::Unexpected(_) => {
                UseCaseError::Unexpected(Box::new(unexpected))
            }
        }
    }
}

impl From<GatewayError> for UseCaseError {
    fn from(err: GatewayError) -> Self {
        UseCaseError::Gateway(err)
    }
}

impl From<WebhookRejection> for UseCaseError {
    fn from(rejection: WebhookRejection) -> Self {
        UseCaseError::WebhookRejected(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_become_the_source_with_their_whole_chain() {
        let unavailable: UseCaseError =
            RepoError::unavailable(lms_ports::Context::new("pool timed out", "no connection"))
                .into();
        assert!(matches!(unavailable, UseCaseError::Unavailable(_)));
        assert_eq!(
            lms_ports::chain_text(&unavailable),
            "a dependency is unavailable: storage unavailable: pool timed out: no connection"
        );
        let source = std::error::Error::source(&unavailable)
            .and_then(|source| source.downcast_ref::<RepoError>());
        assert!(matches!(source, Some(RepoError::Unavailable(_))));

        let unexpected: UseCaseError = RepoError::Duplicate("email").into();
        assert_eq!(
            lms_ports::chain_text(&unexpected),
            "unexpected error: a record with this email already exists"
        );
    }

    #[test]
    fn a_failed_hasher_stays_the_source() {
        let err: UseCaseError = PasswordHashError::unexpected("task panicked").into();
        assert_eq!(
            lms_ports::chain_text(&err),
            "unexpected error: password hashing failed: task panicked"
        );
    }
}
