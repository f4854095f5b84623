//! Wire shapes (camelCase JSON). Built from domain values; never carry secrets.
//!
//! They also derive [`ToSchema`]: the OpenAPI document (`crate::openapi`) describes these very
//! types, so a field added here shows up there.

use crate::error::ApiError;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, HttpResponseBuilder};
use lms_domain::{Bill, Course, Purchase, PurchaseStatus, ReviewReason, Role, User};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::ToSchema;

/// A JSON response body, serialised straight from the typed body: its keys come in the type's
/// field order. (Through a `serde_json::Value` first, as it once was to keep the keys sorted,
/// every response built and dropped a map: about 10,000 instructions per status read under
/// callgrind, crates/bench/README.md.)
///
/// # Errors
/// A body that cannot become JSON (none of ours: they hold strings, numbers and maps).
pub fn json_response(
    mut builder: HttpResponseBuilder,
    body: &impl Serialize,
) -> Result<HttpResponse, ApiError> {
    let json = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok(builder.content_type(ContentType::json()).body(json))
}

/// A string schema limited to the given wire names, so the document lists exactly the values
/// the domain's own `as_str`/`name` produce.
pub(crate) fn wire_names(names: impl IntoIterator<Item = &'static str>, example: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .examples([example])
        .build()
}

fn role_schema() -> Object {
    let roles = [Role::Student, Role::Instructor, Role::Admin];
    wire_names(roles.map(Role::name), Role::Student.name())
}

pub(crate) fn purchase_status_schema() -> Object {
    use PurchaseStatus as S;
    let statuses = [S::Pending, S::Completed, S::Failed, S::Refunded];
    wire_names(statuses.map(S::as_str), S::Completed.as_str())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserDto {
    #[schema(format = Uuid, example = "0b5f8a4e-4c1e-4d0a-9a57-3f1c2b7d9e10")]
    pub id: String,
    /// The same value as `id`, under the name the original backend's frontend reads.
    #[serde(rename = "_id")]
    #[schema(format = Uuid, example = "0b5f8a4e-4c1e-4d0a-9a57-3f1c2b7d9e10")]
    pub legacy_id: String,
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    #[schema(format = Email, example = "ada@example.com")]
    pub email: String,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserDto {
    fn from(user: &User) -> Self {
        // The password hash is deliberately not a field here.
        Self {
            id: user.id.to_string(),
            legacy_id: user.id.to_string(),
            name: user.name.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            role: user.role.name(),
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Course)]
pub struct CourseDto {
    #[schema(format = Uuid, example = "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f")]
    pub id: String,
    /// The same value as `id`, under the name the original backend's frontend reads.
    #[serde(rename = "_id")]
    #[schema(format = Uuid, example = "5d2c1f0e-8a3b-4c6d-9e7f-1a2b3c4d5e6f")]
    pub legacy_id: String,
    #[schema(example = "Rust for web backends")]
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    /// The price in integer minor units of `currency` (0 is a free course).
    #[schema(example = 1999)]
    pub price_cents: i64,
    /// Major units as a JSON number (19.99), for display only: arithmetic uses `priceCents`.
    #[schema(example = 19.99)]
    pub price: f64,
    /// ISO 4217, upper case.
    #[schema(example = "USD")]
    pub currency: &'static str,
    pub is_published: bool,
    #[schema(format = Uuid)]
    pub instructor_id: String,
    /// The same value as `instructorId`, under the original backend's name.
    #[schema(format = Uuid)]
    pub instructor: String,
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
            legacy_id: course.id.to_string(),
            title: course.title.as_str().to_owned(),
            subtitle: text(&course.subtitle),
            description: text(&course.description),
            category: text(&course.category),
            level: text(&course.level),
            price_cents: course.price.minor(),
            price: display_major(course.price),
            currency: course.price.currency().code(),
            is_published: course.published,
            instructor_id: course.instructor_id.to_string(),
            instructor: course.instructor_id.to_string(),
            created_at: course.created_at,
            updated_at: course.updated_at,
        }
    }
}

/// An amount in major units for display (`1999` USD cents is `19.99`). Prices are far below
/// 2^53 minor units, where `f64` is exact, and the division rounds to the nearest display value.
#[expect(
    clippy::cast_precision_loss,
    reason = "display only; amounts stay integer minor units everywhere else"
)]
fn display_major(money: lms_domain::Money) -> f64 {
    let scale = 10_f64.powi(i32::from(money.currency().exponent()));
    money.minor() as f64 / scale
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Purchase)]
pub struct PurchaseDto {
    #[schema(format = Uuid, example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")]
    pub id: String,
    #[schema(format = Uuid)]
    pub course_id: String,
    #[schema(format = Uuid)]
    pub user_id: String,
    /// `completed` unlocks the course; `refunded` locks it again.
    #[schema(schema_with = purchase_status_schema)]
    pub status: &'static str,
    /// The price paid, in integer minor units of `currency`.
    #[schema(example = 1999)]
    pub amount_cents: i64,
    #[schema(example = "USD")]
    pub currency: &'static str,
    /// Refunded so far, in minor units.
    #[schema(example = 0)]
    pub refunded_cents: i64,
    /// Present while a payment is held for review (a payment that is not what was billed, or
    /// a bill for another price).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    /// Present when the purchase failed.
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
                ReviewReason::PriceMismatch { price, billed } => {
                    format!("price mismatch: the course costs {price}, the payment provider billed {billed}")
                }
            }),
            failure_reason: purchase.failure_reason().map(|reason| reason.as_str()),
            created_at: purchase.created_at,
            updated_at: purchase.updated_at,
        }
    }
}

/// A bill's amounts in the price's own currency, when the payment provider presented the
/// checkout in another one (Adaptive Pricing).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = BillConversion)]
pub struct ConversionDto {
    /// ISO 4217, upper case: the price's currency.
    #[schema(example = "USD")]
    pub currency: &'static str,
    /// The list price, in minor units of `currency`.
    #[schema(example = 2000)]
    pub subtotal_cents: i64,
    #[schema(example = 2000)]
    pub total_cents: i64,
}

/// What the payment provider computed the customer owed, in the currency the checkout was
/// presented (and paid) in. Tax is exclusive (added: `total = subtotal - discount + tax`) or
/// inclusive (part of the subtotal); the parts are as the provider reported them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Bill)]
pub struct BillDto {
    /// ISO 4217, upper case.
    #[schema(example = "USD")]
    pub currency: &'static str,
    /// Before discounts and tax: the list price.
    #[schema(example = 2000)]
    pub subtotal_cents: i64,
    /// Taken off by a promotion code.
    #[schema(example = 500)]
    pub discount_cents: i64,
    #[schema(example = 0)]
    pub tax_cents: i64,
    /// What the customer had to pay.
    #[schema(example = 1500)]
    pub total_cents: i64,
    /// `null` unless presented in another currency than the price's.
    #[schema(required = true)]
    pub conversion: Option<ConversionDto>,
}

impl From<&Bill> for BillDto {
    fn from(bill: &Bill) -> Self {
        Self {
            currency: bill.currency().code(),
            subtotal_cents: bill.subtotal().minor(),
            discount_cents: bill.discount().minor(),
            tax_cents: bill.tax().minor(),
            total_cents: bill.total().minor(),
            conversion: bill.conversion().map(|conversion| ConversionDto {
                currency: conversion.total.currency().code(),
                subtotal_cents: conversion.subtotal.minor(),
                total_cents: conversion.total.minor(),
            }),
        }
    }
}
