use crate::auth::{clearing_cookie, session_cookie, AuthenticatedUser, MaybeUser, TokenSubject};
use crate::dto::{CourseDto, UserDto};
use crate::error::ApiError;
use crate::ApiState;
use actix_web::{web, HttpResponse};
use lms_domain::User;
use lms_use_cases::SignUp;
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Deserialize)]
pub struct SignUpBody {
    name: String,
    email: String,
    password: String,
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignInBody {
    email: String,
    password: String,
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
        .issue(TokenSubject::current(user), OffsetDateTime::now_utc())?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .cookie(session_cookie(token.clone(), state.settings.cookie_secure))
        .json(json!({
            "success": true,
            "message": message,
            "user": UserDto::from(user),
            "token": token,
        })))
}

/// `POST /api/v1/user/signup`; 429 once the client IP has spent its sign-up budget.
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
    signed_in(&state, &user, false, "Signed in successfully.")
}

/// `POST /api/v1/user/signout`: with a valid token (cookie or Bearer), ends every session of
/// the account, on every device: the token used and every other one issued before are
/// refused from now on (so there is no separate "sign out everywhere"). Always clears the
/// cookie. Without a token, or with one already refused (expired, ended, unknown user), there
/// is nothing to end: 200 all the same. A store that cannot be reached is a 5xx, cookie kept:
/// the sessions were not ended, and the client may retry.
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
    Ok(HttpResponse::Ok()
        .cookie(clearing_cookie(state.settings.cookie_secure))
        .json(json!({"success": true, "message": "Signed out successfully."})))
}

/// `GET /api/v1/user/profile`: the user with `enrolledCourses`.
pub async fn profile(
    state: web::Data<ApiState>,
    actor: AuthenticatedUser,
) -> Result<HttpResponse, ApiError> {
    let AuthenticatedUser(user) = actor;
    let enrolled = state.services.profile(&user).await?;
    let mut body = serde_json::to_value(UserDto::from(&user)).map_err(ApiError::internal)?;
    let courses: Vec<_> = enrolled
        .iter()
        .map(|item| {
            json!({
                "course": CourseDto::from(&item.course),
                "enrolledAt": item.purchase.created_at.format(&Rfc3339).unwrap_or_default(),
            })
        })
        .collect();
    if let Some(object) = body.as_object_mut() {
        object.insert("enrolledCourses".to_owned(), json!(courses));
    }
    Ok(HttpResponse::Ok().json(json!({"success": true, "user": body})))
}
