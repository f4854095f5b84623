//! The purchase domain of the LMS payments backend.
//!
//! Pure and total: no I/O, no framework types. Everything here is a value
//! parsed at the boundary ([`Email::parse`], [`Money::new`]) or a state change
//! that cannot leave an impossible state behind.
//!
//! The heart is [`purchase`]: a purchase accumulates *facts* reported by the
//! payment gateway and derives its status from the set of facts, so duplicate
//! and reordered webhooks cannot change the outcome.

pub mod bill;
pub mod course;
pub mod error;
pub mod ids;
pub mod money;
pub mod purchase;
pub mod user;

pub use bill::{Bill, Conversion, Sale};
pub use course::{Course, CourseDraft, CoursePatch, CourseText};
pub use error::DomainError;
pub use ids::{CourseId, PurchaseId, UserId};
pub use money::{Currency, Money, MoneyError, MAX_CHARGE_MINOR};
pub use purchase::{
    CheckoutSession, DisputeOutcome, FailureReason, PaymentDetails, PaymentFact, PaymentFacts,
    Purchase, PurchaseStatus, ReviewReason,
};
pub use user::{Email, Role, User, UserName};
