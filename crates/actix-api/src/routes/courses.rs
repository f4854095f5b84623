use crate::auth::{AuthenticatedUser, MaybeUser};
use crate::dto::CourseDto;
use crate::error::ApiError;
use crate::ApiState;
use actix_web::{web, HttpResponse};
use lms_domain::CourseId;
use lms_use_cases::{CourseChanges, NewCourse, PageRequest};
use serde::Deserialize;
use serde_json::json;

/// The wire shape of a new course, deserialized straight into the use case's input
/// (serde's remote derive: the field list is written once, here).
#[derive(Deserialize)]
#[serde(remote = "NewCourse", rename_all = "camelCase")]
struct NewCourseWire {
    title: String,
    subtitle: Option<String>,
    description: Option<String>,
    category: Option<String>,
    level: Option<String>,
    price_cents: i64,
    currency: Option<String>,
}

/// The wire shape of a course patch (every field optional, `isPublished` included).
#[derive(Deserialize)]
#[serde(remote = "CourseChanges", rename_all = "camelCase")]
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

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    #[serde(default, deserialize_with = "blank_as_none")]
    page: Option<u32>,
    #[serde(default, deserialize_with = "blank_as_none")]
    limit: Option<u32>,
}

/// `?page=&limit=` (a form's empty fields) means the defaults; anything else must be a number.
fn blank_as_none<'de, D: serde::Deserializer<'de>>(
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

const DEFAULT_LIMIT: u32 = 10;

/// A path id that is not a UUID names no course.
pub(crate) fn course_id(raw: &str) -> Result<CourseId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::from(lms_use_cases::UseCaseError::NotFound(
            lms_use_cases::Resource::Course,
        ))
    })
}

/// `POST /api/v1/courses`
pub async fn create(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let CreateBody(new) = body.into_inner();
    let course = state.services.create_course(&actor.0, new).await?;
    Ok(HttpResponse::Created().json(json!({
        "success": true,
        "message": "Course created successfully.",
        "course": CourseDto::from(&course),
    })))
}

/// `PATCH /api/v1/courses/{courseId}`
pub async fn update(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = course_id(&path)?;
    let UpdateBody(changes) = body.into_inner();
    let course = state.services.update_course(&actor.0, id, changes).await?;
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "message": "Course updated successfully.",
        "course": CourseDto::from(&course),
    })))
}

/// `GET /api/v1/courses/published?page=&limit=`
pub async fn published(
    state: web::Data<ApiState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = PageRequest::new(
        query.page.unwrap_or(1),
        query.limit.unwrap_or(DEFAULT_LIMIT),
    );
    let result = state.services.published_courses(page).await?;
    let total_pages = result.total.div_ceil(u64::from(page.limit));
    let courses: Vec<CourseDto> = result.items.iter().map(CourseDto::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "success": true,
        "data": courses,
        "pagination": {
            "page": page.page,
            "limit": page.limit,
            "total": result.total,
            "totalPages": total_pages,
            "hasNextPage": u64::from(page.page) < total_pages,
            "hasPrevPage": page.page > 1,
        },
    })))
}

/// `GET /api/v1/courses/{courseId}`: unpublished courses only for their owner or an admin.
pub async fn get(
    state: web::Data<ApiState>,
    actor: MaybeUser,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = course_id(&path)?;
    let course = state.services.course(actor.0.as_ref(), id).await?;
    Ok(HttpResponse::Ok().json(json!({"success": true, "course": CourseDto::from(&course)})))
}
