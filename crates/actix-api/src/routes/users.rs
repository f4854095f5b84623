use crate::auth::{clearing_cookie, session_cookie, AuthenticatedUser, MaybeUser, SessionClaim};
use crate::dto::{json_response, CourseDto, UserDto};
use crate::error::ApiError;
use crate::openapi::{self as doc, ErrorEnvelope};
use crate::ApiState;
use actix_web::{web, HttpResponse};
use lms_domain::User;
use lms_use_cases::SignUp;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "password": "correct horse battery",
    "role": "student"
}))]
pub struct SignUpBody {
    name: String,
    email: String,
    password: String,
    /// `student` (the default) or `instructor`; `admin` cannot be chosen.
    role: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery"}))]
pub struct SignInBody {
    email: String,
    password: String,
}

/// A signed-in user: the same token is also set as the `token` cookie.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInResponse {
    #[schema(example = true)]
    success: bool,
    #[schema(example = "User registered successfully.")]
    message: String,
    user: UserDto,
    /// The session JWT, for clients that send `Authorization: Bearer` instead of the cookie.
    #[schema(example = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiIuLi4ifQ.c2lnbmF0dXJl")]
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOutResponse {
    #[schema(example = true)]
    success: bool,
    #[schema(example = "Signed out successfully.")]
    message: &'static str,
}

/// A course the user is enrolled in, and since when.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    course: CourseDto,
    /// RFC 3339: when the payment completed, as the payment provider reported it; when
    /// checkout started for a free course, or a purchase whose report carried no time.
    #[schema(format = DateTime)]
    enrolled_at: String,
}

/// The user object with the courses it unlocked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(flatten)]
    user: UserDto,
    enrolled_courses: Vec<Enrolment>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    #[schema(example = true)]
    success: bool,
    user: Profile,
}

/// 201/200 with `{success, message, user, token}` and the session cookie.
fn signed_in(
    state: &ApiState,
    user: &User,
    created: bool,
    message: &str,
) -> Result<HttpResponse, ApiError> {
    let token = state
        .jwt
        .issue(SessionClaim::current(user), OffsetDateTime::now_utc())?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    response.cookie(session_cookie(token.clone(), state.settings.cookie_secure));
    json_response(
        response,
        &SignedInResponse {
            success: true,
            message: message.to_owned(),
            user: UserDto::from(user),
            token,
        },
    )
}

/// `POST /api/v1/user/signup`; 429 once the client IP has spent its sign-up budget.
#[utoipa::path(
    post,
    path = "/api/v1/user/signup",
    tag = "users",
    summary = "Sign up",
    description = "Creates an account and signs it in (the `token` cookie is set and the token \
        is in the body). 429 once the client address has spent its sign-up budget.",
    request_body = SignUpBody,
    responses(
        (status = 201, description = "Account created and signed in; `token` cookie set.",
            body = SignedInResponse, headers(("Set-Cookie" = String, description = "`token=<JWT>; HttpOnly; SameSite=Strict; Path=/`"))),
        (status = 400, response = doc::BadRequest),
        (status = 409, description = "The e-mail is taken.", body = ErrorEnvelope,
            example = json!(doc::example(409, "EMAIL_TAKEN", "An account with this email already exists."))),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 429, response = doc::TooManyRequests),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::UnavailableOrBusy),
    ),
)]
pub async fn sign_up(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    body: web::Json<SignUpBody>,
) -> Result<HttpResponse, ApiError> {
    state.limits.check_sign_up(state.client_ip(&req))?;
    let SignUpBody {
        name,
        email,
        password,
        role,
    } = body.into_inner();
    let user = state
        .services
        .sign_up(SignUp {
            name,
            email,
            password,
            role,
        })
        .await?;
    signed_in(&state, &user, true, "User registered successfully.")
}

/// `POST /api/v1/user/signin`; 429 once the client IP or the e-mail has spent its budget
/// (checked before the password, so a guess past the limit learns nothing). A success
/// forgives the e-mail's failed attempts.
#[utoipa::path(
    post,
    path = "/api/v1/user/signin",
    tag = "users",
    summary = "Sign in",
    description = "Checks the password and sets the `token` cookie (the token is in the body \
        too). 429 once the client address or the e-mail has spent its budget; the limit is \
        checked before the password.",
    request_body = SignInBody,
    responses(
        (status = 200, description = "Signed in; `token` cookie set.", body = SignedInResponse,
            headers(("Set-Cookie" = String, description = "`token=<JWT>; HttpOnly; SameSite=Strict; Path=/`")),
            example = json!({
                "success": true,
                "message": "Welcome back Ada Lovelace",
                "token": "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiIuLi4ifQ.c2lnbmF0dXJl",
                "user": doc::user_example(),
            })),
        (status = 400, response = doc::BadRequest),
        (status = 401, description = "Unknown e-mail or wrong password (indistinguishable).",
            body = ErrorEnvelope,
            example = json!(doc::example(401, "INVALID_CREDENTIALS", "Invalid email or password."))),
        (status = 413, response = doc::PayloadTooLarge),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 422, response = doc::ValidationFailed),
        (status = 429, response = doc::TooManyRequests),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::UnavailableOrBusy),
    ),
)]
pub async fn sign_in(
    state: web::Data<ApiState>,
    req: actix_web::HttpRequest,
    body: web::Json<SignInBody>,
) -> Result<HttpResponse, ApiError> {
    state
        .limits
        .check_sign_in(state.client_ip(&req), &body.email)?;
    let user = state.services.sign_in(&body.email, &body.password).await?;
    state.limits.sign_in_succeeded(&body.email);
    let welcome = format!("Welcome back {}", user.name.as_str());
    signed_in(&state, &user, false, &welcome)
}

/// `POST /api/v1/user/signout`: with a valid token (cookie or Bearer), ends every session of
/// the account, on every device: the token used and every other one issued before are
/// refused from now on (so there is no separate "sign out everywhere"). Always clears the
/// cookie. Without a token, or with one already refused (expired, ended, unknown user), there
/// is nothing to end: 200 all the same. A store that cannot be reached is a 5xx, cookie kept:
/// the sessions were not ended, and the client may retry.
#[utoipa::path(
    post,
    path = "/api/v1/user/signout",
    tag = "users",
    summary = "Sign out",
    description = "With a valid token (cookie or Bearer), ends every session of the account on \
        every device. Always clears the cookie; without a token, or with one already refused, \
        answers 200 all the same.",
    security((), ("cookie_token" = []), ("bearer_jwt" = [])),
    responses(
        (status = 200, description = "Signed out; the `token` cookie is cleared.",
            body = SignedOutResponse),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn sign_out(
    state: web::Data<ApiState>,
    actor: MaybeUser,
) -> Result<HttpResponse, ApiError> {
    if let MaybeUser(Some(user)) = actor {
        match state.services.sign_out(&user).await {
            // Deleted since its token was checked: no session of it is left to end.
            Ok(_) | Err(lms_use_cases::UseCaseError::NotFound(lms_use_cases::Resource::User)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let mut response = HttpResponse::Ok();
    response.cookie(clearing_cookie(state.settings.cookie_secure));
    json_response(
        response,
        &SignedOutResponse {
            success: true,
            message: "Signed out successfully.",
        },
    )
}

/// `GET /api/v1/user/profile`: the user with `enrolledCourses`.
#[utoipa::path(
    get,
    path = "/api/v1/user/profile",
    tag = "users",
    summary = "The signed-in user",
    description = "The user object with `enrolledCourses`: each course it unlocked and when.",
    security(("cookie_token" = []), ("bearer_jwt" = [])),
    responses(
        (status = 200, description = "The user and the courses it unlocked.", body = ProfileResponse),
        (status = 401, response = doc::Unauthorized),
        (status = 500, response = doc::InternalError),
        (status = 503, response = doc::Unavailable),
    ),
)]
pub async fn profile(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
) -> Result<HttpResponse, ApiError> {
    let AuthenticatedUser(user) = actor;
    let enrolled = state.services.profile(&user).await?;
    let enrolled_courses = enrolled
        .iter()
        .map(|item| Enrolment {
            course: CourseDto::from(&item.course),
            enrolled_at: item.purchase.paid_at().format(&Rfc3339).unwrap_or_default(),
        })
        .collect();
    json_response(
        HttpResponse::Ok(),
        &ProfileResponse {
            success: true,
            user: Profile {
                user: UserDto::from(&user),
                enrolled_courses,
            },
        },
    )
}
