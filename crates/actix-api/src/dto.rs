//! Wire shapes (camelCase JSON). Built from domain values; never carry secrets.

use lms_domain::{Course, Purchase, ReviewReason, User};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserDto {
    fn from(user: &User) -> Self {
        // The password hash is deliberately not a field here.
        Self {
            id: user.id.to_string(),
            name: user.name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.name(),
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseDto {
    pub id: String,
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub price_cents: i64,
    /// Decimal major units, for display only.
    pub price: String,
    pub currency: &'static str,
    pub is_published: bool,
    pub instructor_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Course> for CourseDto {
    fn from(course: &Course) -> Self {
        let text = |t: &Option<lms_domain::CourseText>| t.as_ref().map(|t| t.as_str().to_owned());
        Self {
            id: course.id.to_string(),
            title: course.title.as_str().to_owned(),
            subtitle: text(&course.subtitle),
            description: text(&course.description),
            category: text(&course.category),
            level: text(&course.level),
            price_cents: course.price.minor(),
            price: course.price.major_display(),
            currency: course.price.currency().code(),
            is_published: course.published,
            instructor_id: course.instructor_id.to_string(),
            created_at: course.created_at,
            updated_at: course.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseDto {
    pub id: String,
    pub course_id: String,
    pub user_id: String,
    pub status: &'static str,
    pub amount_cents: i64,
    pub currency: &'static str,
    pub refunded_cents: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<&'static str>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Purchase> for PurchaseDto {
    fn from(purchase: &Purchase) -> Self {
        Self {
            id: purchase.id.to_string(),
            course_id: purchase.course_id.to_string(),
            user_id: purchase.user_id.to_string(),
            status: purchase.status().as_str(),
            amount_cents: purchase.price.minor(),
            currency: purchase.price.currency().code(),
            refunded_cents: purchase.refunded_amount().minor(),
            review_reason: purchase.review_reason().map(|reason| match reason {
                ReviewReason::AmountMismatch { expected, received } => {
                    format!("payment amount mismatch: expected {expected}, received {received}")
                }
            }),
            failure_reason: purchase.failure_reason().map(|reason| reason.as_str()),
            created_at: purchase.created_at,
            updated_at: purchase.updated_at,
        }
    }
}
