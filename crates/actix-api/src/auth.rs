//! JWT (HS256) sessions: the `token` cookie or `Authorization: Bearer`.
//!
//! A token names the user (`userId`) and the session generation it was issued under
//! (`sessionGeneration`, [`lms_domain::User::session_generation`]). It is honoured only while
//! that generation is the user's current one, checked against the user [`authenticate`] loads
//! anyway (no extra query). Signing out moves the account to the next generation, which ends
//! every token issued before, on every device. A token without the claim (issued before it
//! existed) counts as generation 0: it keeps working until it expires (a day at most) or the
//! user signs out, whichever comes first.

use crate::error::{ApiError, SESSION_ENDED};
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::header;
use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
pub use lms_use_cases::SessionClaim;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Duration, OffsetDateTime};

/// The cookie that carries the session token.
pub const TOKEN_COOKIE: &str = "token";

/// How long a token (and its cookie) lives.
pub const TOKEN_TTL: Duration = Duration::days(1);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "userId")]
    user_id: String,
    // Absent from tokens issued before sign-out ended sessions: generation 0, which a sign-out
    // ends like any other.
    #[serde(rename = "sessionGeneration", default)]
    session_generation: u32,
    iat: i64,
    exp: i64,
}

/// Signs and verifies session tokens. The secret never leaves this type (its `Debug` is redacted).
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

/// Why a token was refused (logged at debug level only; the client just gets 401).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token subject is not a user id")]
    BadSubject,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `subject`, valid for [`TOKEN_TTL`] from `now`.
    ///
    /// # Errors
    /// Only if signing itself fails.
    pub fn issue(&self, subject: SessionClaim, now: OffsetDateTime) -> Result<String, ApiError> {
        self.issue_with_expiry(subject, now, now + TOKEN_TTL)
    }

    /// A token with an explicit expiry (tests use it to make expired tokens).
    ///
    /// # Errors
    /// Only if signing itself fails.
    pub fn issue_with_expiry(
        &self,
        subject: SessionClaim,
        iat: OffsetDateTime,
        exp: OffsetDateTime,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            user_id: subject.user_id.to_string(),
            session_generation: subject.session_generation,
            iat: iat.unix_timestamp(),
            exp: exp.unix_timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Whom a token speaks for, if it is authentic and unexpired. Whether its session is
    /// still current is for the caller to check, against the user it loads.
    ///
    /// # Errors
    /// [`TokenError`] for anything else.
    pub fn verify(&self, token: &str) -> Result<SessionClaim, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?;
        let user_id = data
            .claims
            .user_id
            .parse()
            .map_err(|_| TokenError::BadSubject)?;
        Ok(SessionClaim {
            user_id,
            session_generation: data.claims.session_generation,
        })
    }
}

/// The token a request carries: `Authorization: Bearer` first, then the cookie.
pub fn token_from_request(req: &HttpRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|token| !token.is_empty());
    bearer.or_else(|| {
        req.cookie(TOKEN_COOKIE)
            .map(|cookie| cookie.value().to_owned())
            .filter(|token| !token.is_empty())
    })
}

/// The session cookie: HttpOnly, SameSite=Strict, Path=/, Secure when configured.
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build(TOKEN_COOKIE, token)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(CookieDuration::seconds(TOKEN_TTL.whole_seconds()))
        .finish()
}

/// A cookie that makes the browser drop the session cookie.
pub fn clearing_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie(String::new(), secure);
    cookie.make_removal();
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;
    use lms_domain::UserId;
    use uuid::Uuid;

    fn subject(session_generation: u32) -> SessionClaim {
        SessionClaim {
            user_id: UserId::from_uuid(Uuid::new_v4()),
            session_generation,
        }
    }

    #[test]
    fn tokens_round_trip_and_carry_user_id_and_session_generation_claims() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let subject = subject(3);
        let user = subject.user_id;
        let token = keys.issue(subject, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), subject);
        let mut peek = Validation::new(Algorithm::HS256);
        peek.insecure_disable_signature_validation();
        let insecure = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b""),
            &peek,
        )
        .unwrap()
        .claims;
        assert_eq!(insecure["userId"], user.to_string());
        assert_eq!(insecure["sessionGeneration"], 3);
        assert!(insecure["exp"].as_i64().unwrap() - insecure["iat"].as_i64().unwrap() == 86_400);
    }

    #[test]
    fn a_token_from_before_session_generations_counts_as_generation_zero() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = JwtKeys::new(secret);
        let user = UserId::from_uuid(Uuid::new_v4());
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let legacy = serde_json::json!({"userId": user.to_string(), "iat": now, "exp": now + 60});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &legacy,
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_eq!(
            keys.verify(&token).unwrap(),
            SessionClaim {
                user_id: user,
                session_generation: 0
            }
        );
    }

    #[test]
    fn expired_foreign_and_garbage_tokens_are_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        let user = subject(0);
        let now = OffsetDateTime::now_utc();
        let expired = keys
            .issue_with_expiry(user, now - Duration::days(2), now - Duration::minutes(5))
            .unwrap();
        assert!(keys.verify(&expired).is_err());
        assert!(keys.verify(&other.issue(user, now).unwrap()).is_err());
        assert!(keys.verify("not.a.jwt").is_err());
        let none_alg = "eyJhbGciOiJub25lIn0.eyJ1c2VySWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.";
        assert!(keys.verify(none_alg).is_err());
    }

    #[test]
    fn session_cookie_flags() {
        let cookie = session_cookie("t".into(), true).to_string();
        for flag in [
            "token=t",
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=86400",
        ] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert!(!session_cookie("t".into(), false)
            .to_string()
            .contains("Secure"));
        assert!(clearing_cookie(false).to_string().contains("Max-Age=0"));
    }
}

/// The signed-in user, loaded through `Services::current_user`. Missing, invalid or expired
/// tokens, tokens of an ended session (signed out) and deleted users are all a 401.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub lms_domain::User);

/// The signed-in user when a valid token is present; anonymous otherwise (public routes).
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<lms_domain::User>);

fn state_of(req: &HttpRequest) -> Result<actix_web::web::Data<crate::ApiState>, ApiError> {
    req.app_data::<actix_web::web::Data<crate::ApiState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("ApiState is not registered"))
}

/// The answer to a request without a token on a route that needs one.
const SIGN_IN_REQUIRED: &str = "Authentication required. Please sign in.";

/// The session a valid token claims, not yet checked against the stored account: for the
/// routes whose use case reads the account together with what it needs anyway (the
/// purchase-status poll), which then answers an ended session with the same 401
/// ([`lms_use_cases::UseCaseError::SessionEnded`]). Missing, invalid or expired tokens are a
/// 401 here.
#[derive(Debug, Clone, Copy)]
pub struct SignedSession(pub SessionClaim);

/// The session the request's token claims, when it carries a token: `Err` for one that is
/// invalid or expired.
fn claimed_session(req: &HttpRequest) -> Result<Option<SessionClaim>, ApiError> {
    let state = state_of(req)?;
    let Some(token) = token_from_request(req) else {
        return Ok(None);
    };
    match state.jwt.verify(&token) {
        Ok(subject) => Ok(Some(subject)),
        Err(err) => {
            tracing::debug!(error = %err, "token refused");
            Err(ApiError::unauthorized(SESSION_ENDED))
        }
    }
}

async fn authenticate(req: HttpRequest) -> Result<Option<lms_domain::User>, ApiError> {
    let state = state_of(&req)?;
    let Some(subject) = claimed_session(&req)? else {
        return Ok(None);
    };
    match state.services.current_user(subject.user_id).await {
        Ok(user) if user.honours_session(subject.session_generation) => Ok(Some(user)),
        Ok(user) => {
            tracing::debug!(user_id = %user.id, "token of an ended session refused");
            Err(ApiError::unauthorized(SESSION_ENDED))
        }
        Err(lms_use_cases::UseCaseError::NotFound(_)) => Err(ApiError::unauthorized(SESSION_ENDED)),
        Err(err) => Err(err.into()),
    }
}

impl actix_web::FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match authenticate(req).await? {
                Some(user) => Ok(AuthenticatedUser(user)),
                None => Err(ApiError::unauthorized(SIGN_IN_REQUIRED)),
            }
        })
    }
}

impl actix_web::FromRequest for SignedSession {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(claimed_session(req).and_then(|claim| {
            claim
                .map(SignedSession)
                .ok_or_else(|| ApiError::unauthorized(SIGN_IN_REQUIRED))
        }))
    }
}

impl actix_web::FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match authenticate(req).await {
                Ok(user) => Ok(MaybeUser(user)),
                // A stale token on a public route: answer as for anyone.
                Err(err) if err.status == actix_web::http::StatusCode::UNAUTHORIZED => {
                    Ok(MaybeUser(None))
                }
                Err(err) => Err(err),
            }
        })
    }
}
