//! The application's error: business outcomes the HTTP adapter maps to status codes.

use lms_ports::{GatewayError, PasswordHashError, RepoError, WebhookRejection};
use std::time::Duration;
use thiserror::Error;

/// One invalid input field, named by its camelCase wire name (`email`, `priceCents`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UseCaseError {
    /// The input is invalid; every offending field is listed.
    #[error("invalid input: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    /// Unknown email or wrong password: deliberately indistinguishable.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Authenticated, but not allowed to do this.
    #[error("not allowed")]
    Forbidden,
    /// Names what was not found (`"course"`, `"purchase"`, `"user"`).
    #[error("{0} not found")]
    NotFound(&'static str),
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
    /// Retryable: the store could not be reached.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected error: {0}")]
    Unexpected(String),
}

impl UseCaseError {
    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> Self {
        UseCaseError::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<RepoError> for UseCaseError {
    /// The generic mapping; use cases handle the business variants they expect before this.
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::Unavailable(detail) => UseCaseError::Unavailable(detail),
            other => UseCaseError::Unexpected(other.to_string()),
        }
    }
}

impl From<PasswordHashError> for UseCaseError {
    fn from(err: PasswordHashError) -> Self {
        match err {
            PasswordHashError::Busy { retry_after } => UseCaseError::Busy { retry_after },
            unexpected @ PasswordHashError::Unexpected(_) => {
                // `Unexpected` holds text only: keep the whole cause chain in it.
                let mut chain = unexpected.to_string();
                let mut source = std::error::Error::source(&unexpected);
                while let Some(cause) = source {
                    chain.push_str(": ");
                    chain.push_str(&cause.to_string());
                    source = cause.source();
                }
                UseCaseError::Unexpected(chain)
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
