use crate::auth::{AuthenticatedUser, MaybeUser};
use crate::dto::{json_response, CourseDto};
use crate::error::ApiError;
use crate::openapi as doc;
use crate::ApiState;
use actix_web::{web, HttpResponse};
use lms_domain::CourseId;
use lms_use_cases::{CourseChanges, NewCourse, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The wire shape of a new course, deserialized straight into the use case's input
/// (serde's remote derive: the field list is written once, here, and the schema is its own).
#[derive(Deserialize, ToSchema)]
#[serde(remote = "NewCourse", rename_all = "camelCase")]
#[schema(as = NewCourse, example = json!({
    "title": "Rust for web backends",
    "subtitle": "From zero to a payments API",
    "category": "programming",
    "level": "intermediate",
    "priceCents": 1999,
    "currency": "usd"
}))]
struct NewCourseWire {
    title: String,
    subtitle: Option<String>,
    description: Option<String>,
    category: Option<String>,
    level: Option<String>,
    /// Integer minor units; 0 is a free course.
    price_cents: i64,
    /// ISO 4217, case-insensitive; USD when absent.
    currency: Option<String>,
}

/// The wire shape of a course patch (every field optional, `isPublished` included).
#[derive(Deserialize, ToSchema)]
#[serde(remote = "CourseChanges", rename_all = "camelCase")]
#[schema(as = CourseChanges, example = json!({"priceCents": 2499, "isPublished": true}))]
struct CourseChangesWire {
    title: Option<String>,
    subtitle: Option<String>,
    description: Option<String>,
    category: Option<String>,
    level: Option<String>,
    price_cents: Option<i64>,
    currency: Option<String>,
    is_published: Option<bool>,
}

#[derive(Deserialize)]
pub struct CreateBody(#[serde(with = "NewCourseWire")] NewCourse);

#[derive(Deserialize)]
pub struct UpdateBody(#[serde(with = "CourseChangesWire")] CourseChanges);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based; 1 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, example = 1)]
    page: Option<u32>,
    /// Courses per page, clamped to 1..=100; 10 when absent or empty.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(minimum = 1, maximum = 100, example = 10)]
    limit: Option<u32>,
}

/// One course, with a message after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct CourseResponse {
    #[schema(example = true)]
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Course created successfully")]
    message: Option<&'static str>,
    course: CourseDto,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    #[schema(example = 1)]
    page: u32,
    #[schema(example = 10)]
    limit: u32,
    #[schema(example = 2)]
    total: u64,
    #[schema(example = 1)]
    total_pages: u64,
    has_next_page: bool,
    has_prev_page: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedCoursesResponse {
    #[schema(example = true)]
    success: bool,
    data: Vec<CourseDto>,
    pagination: Pagination,
}

impl Pagination {
    /// The pagination block of `page` in a listing of `total` items.
    pub(crate) fn of(page: PageRequest, total: u64) -> Self {
        let total_pages = total.div_ceil(u64::from(page.limit));
        Self {
            page: page.page,
            limit: page.limit,
            total,
            total_pages,
            has_next_page: u64::from(page.page) < total_pages,
            has_prev_page: page.page > 1,
        }
    }
}

/// `?page=&limit=` (a form's empty fields) means the defaults; anything else must be a number.
pub(crate) fn blank_as_none<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let raw: Option<String> = Option::deserialize(deserializer)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a whole number"))),
    }
}

/// The page size of a listing paged like the catalogue when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: u32 = 10;

/// A path id that is not a UUID names no course.
pub(crate) fn course_id(raw: &str) -> Result<CourseId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::from(lms_use_cases::UseCaseError::NotFound(
            lms_use_cases::Resource::Course,
        ))
    })
}

/// `POST /api/v1/courses`
#[utoipa::path(
    post,
    path = "/api/v1/courses",
    tag = "courses",
    summary = "Create a course",
    description = "An instructor or an admin creates a course, unpublished; a student gets 403.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    request_body = NewCourseWire,
    responses(
        (status = 201, description = "Created.", body = CourseResponse),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn create(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let CreateBody(new) = body.into_inner();
    let course = state.services.create_course(&actor.0, new).await?;
    json_response(
        HttpResponse::Created(),
        &CourseResponse {
            success: true,
            message: Some("Course created successfully"),
            course: CourseDto::from(&course),
        },
    )
}

/// `PATCH /api/v1/courses/{courseId}`
#[utoipa::path(
    patch,
    path = "/api/v1/courses/{courseId}",
    tag = "courses",
    summary = "Change a course",
    description = "The owner or an admin changes any of the fields, `isPublished` included.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    params(("courseId" = String, Path, format = Uuid, description = "The course's id; one that is not a UUID is not found.")),
    request_body = CourseChangesWire,
    responses(
        (status = 200, description = "Changed.", body = CourseResponse,
            example = json!({"success": true, "message": "Course updated successfully.", "course": doc::course_example()})),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::CourseNotFound),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn update(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = course_id(&path)?;
    let UpdateBody(changes) = body.into_inner();
    let course = state.services.update_course(&actor.0, id, changes).await?;
    json_response(
        HttpResponse::Ok(),
        &CourseResponse {
            success: true,
            message: Some("Course updated successfully."),
            course: CourseDto::from(&course),
        },
    )
}

/// `GET /api/v1/courses/published?page=&limit=`
#[utoipa::path(
    get,
    path = "/api/v1/courses/published",
    tag = "courses",
    summary = "Published courses",
    description = "Public: the published courses, one page at a time.",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of published courses.", body = PublishedCoursesResponse),
        (status = 422, response = doc::ValidationFailed),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn published(
    state: web::Data<ApiState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::new(
        query.page.unwrap_or(1),
        query.limit.unwrap_or(DEFAULT_LIMIT),
    );
    let result = state.services.published_courses(page).await?;
    let courses: Vec<CourseDto> = result.items.iter().map(CourseDto::from).collect();
    json_response(
        HttpResponse::Ok(),
        &PublishedCoursesResponse {
            success: true,
            data: courses,
            pagination: Pagination::of(page, result.total),
        },
    )
}

/// `GET /api/v1/courses/{courseId}`: unpublished courses only for their owner, an admin, or a
/// buyer whose purchase unlocks it.
#[utoipa::path(
    get,
    path = "/api/v1/courses/{courseId}",
    tag = "courses",
    summary = "One course",
    description = "Public for a published course; an unpublished one only for its owner, an \
        admin, or a buyer whose purchase unlocks it (404 for others). A stale token is treated \
        as none.",
    security((), ("cookie_token" = []), ("bearer_jwt" = [])),
    params(("courseId" = String, Path, format = Uuid, description = "The course's id; one that is not a UUID is not found.")),
    responses(
        (status = 200, description = "The course.", body = CourseResponse,
            example = json!({"success": true, "course": doc::course_example()})),
        (status = 404, response = doc::CourseNotFound),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn get(
    state: web::Data<ApiState>,
    actor: MaybeUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = course_id(&path)?;
    let course = state.services.course(actor.0.as_ref(), id).await?;
    json_response(
        HttpResponse::Ok(),
        &CourseResponse {
            success: true,
            message: None,
            course: CourseDto::from(&course),
        },
    )
}
