//! The one error type of the domain: every business rule a caller may need to match on.

use crate::money::{Money, MoneyError};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("invalid email address")]
    InvalidEmail,
    #[error("name must be 1 to {max} characters")]
    InvalidName { max: usize },
    #[error("{field} must be {min} to {max} characters")]
    InvalidText {
        field: &'static str,
        min: usize,
        max: usize,
    },
    #[error("unknown role {0:?}: expected student or instructor")]
    InvalidRole(String),
    #[error("the admin role cannot be self-assigned")]
    AdminNotSelfAssignable,
    #[error("price {price} is below the minimum charge of {minimum} (use 0 for a free course)")]
    PriceBelowMinimum { price: Money, minimum: Money },
    #[error("price {price} is above the maximum charge")]
    PriceAboveMaximum { price: Money },
    #[error("the course is not published")]
    CourseNotPublished,
    #[error("instructors cannot buy their own course")]
    OwnCourse,
    #[error("the course is free: it needs no payment")]
    CourseIsFree,
    #[error("the course has a price: it is bought through checkout")]
    CourseIsPaid,
    #[error("only completed purchases can be refunded")]
    NotRefundable,
    #[error("refund amount must be between 1 and {remaining} minor units")]
    InvalidRefundAmount { remaining: i64 },
    #[error("the purchase has no captured payment to refund")]
    NoPaymentToRefund,
    #[error("the purchase is not held for review")]
    NotHeldForReview,
}
