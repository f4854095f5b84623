//! Sign-up, sign-in, sign-out and the current user.

use crate::error::{FieldError, Resource};
use crate::{new_uuid, Services, UseCaseError};
use lms_domain::{DomainError, Email, Role, User, UserId, UserName};
use lms_ports::{PurchasedCourse, RepoError};

/// Whom a session token speaks for: the account and the session generation it was issued
/// under. A claim is honoured only while the account exists and that session was not ended
/// ([`User::honours_session`]); use cases that take one check it as part of their own read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionClaim {
    pub user_id: UserId,
    pub session_generation: u32,
}

impl SessionClaim {
    /// A session of `user` in its current generation.
    pub const fn current(user: &User) -> Self {
        Self {
            user_id: user.id,
            session_generation: user.session_generation,
        }
    }
}

/// A sign-up request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub name: String,
    pub email: String,
    pub password: String,
    /// `student` (default) or `instructor`; `admin` is never self-assigned.
    pub role: Option<String>,
}

const PASSWORD_MIN_CHARS: usize = 8;
const PASSWORD_MAX_CHARS: usize = 128;

/// A well-formed argon2id hash (default parameters) of nothing anyone knows: verified against
/// when the email is unknown, so that an unknown email costs the same time as a wrong password.
/// A hasher that does not understand it treats it as a non-match.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$MpA7tiFHuiz/EeLzHLzG7w$alabvT4EqgMfn1mWlT2KWP1+aCvqgFLWsB23/FWmGPs";

impl Services {
    /// Registers a user.
    ///
    /// # Errors
    /// [`UseCaseError::Validation`] (fields `name`, `email`, `password`, `role`),
    /// [`UseCaseError::EmailTaken`], [`UseCaseError::Busy`] when the password hasher is at its bound
    /// (nothing is stored), storage errors.
    pub async fn sign_up(&self, request: SignUp) -> Result<User, UseCaseError> {
        let mut errors = Vec::new();
        let name = UserName::parse(&request.name)
            .map_err(|e| errors.push(FieldError::new("name", e.to_string())));
        let email = Email::parse(&request.email)
            .map_err(|e| errors.push(FieldError::new("email", e.to_string())));
        let password_chars = request.password.chars().count();
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&password_chars) {
            errors.push(FieldError::new(
                "password",
                format!("password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"),
            ));
        }
        let role = Role::parse_self_assigned(request.role.as_deref()).map_err(|e| {
            let message = match e {
                DomainError::AdminNotSelfAssignable => e.to_string(),
                _ => "role must be student or instructor".to_owned(),
            };
            errors.push(FieldError::new("role", message));
        });
        let (Ok(name), Ok(email), Ok(role), true) = (name, email, role, errors.is_empty()) else {
            return Err(UseCaseError::Validation(errors));
        };
        let password_hash = self.hasher.hash(&request.password).await?;
        let user = User {
            id: UserId::from_uuid(new_uuid()),
            name,
            email,
            role,
            password_hash,
            session_generation: User::FIRST_SESSION_GENERATION,
            created_at: self.now(),
        };
        match self.users.create_user(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, role = user.role.name(), "user signed up");
                Ok(user)
            }
            Err(RepoError::Duplicate("email")) => Err(UseCaseError::EmailTaken),
            Err(err) => Err(err.into()),
        }
    }

    /// Checks credentials.
    ///
    /// # Errors
    /// [`UseCaseError::InvalidCredentials`] for an unknown email or a wrong password alike;
    /// [`UseCaseError::Busy`] when the password hasher is at its bound, for an unknown email too
    /// (so a busy answer does not reveal whether the account exists); storage errors.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<User, UseCaseError> {
        let user = match Email::parse(email) {
            Ok(email) => self.users.find_user_by_email(&email).await?,
            Err(_) => None,
        };
        match user {
            Some(user) => {
                if self.hasher.verify(password, &user.password_hash).await? {
                    Ok(user)
                } else {
                    Err(UseCaseError::InvalidCredentials)
                }
            }
            None => {
                // Spend the same effort as for a known user, so timing does not reveal accounts;
                // it takes a hashing slot like any verification, so it honours the same bound.
                self.hasher.verify(password, DUMMY_HASH).await?;
                Err(UseCaseError::InvalidCredentials)
            }
        }
    }

    /// The user a verified token names.
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(User)` when the account no longer exists; storage errors.
    pub async fn current_user(&self, id: UserId) -> Result<User, UseCaseError> {
        self.users
            .get_user(id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::User))
    }

    /// Signs the user out everywhere: ends every session of the account (every token issued
    /// so far, on any device, is refused from now on), not only the one that asked. Returns
    /// the new session generation, which tokens issued from now on carry.
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(User)` when the account no longer exists; storage errors.
    pub async fn sign_out(&self, actor: &User) -> Result<u32, UseCaseError> {
        match self.users.end_sessions(actor.id).await {
            Ok(generation) => {
                tracing::info!(
                    user_id = %actor.id,
                    session_generation = generation,
                    "user signed out everywhere"
                );
                Ok(generation)
            }
            Err(RepoError::NotFound) => Err(UseCaseError::NotFound(Resource::User)),
            Err(err) => Err(err.into()),
        }
    }

    /// The courses the user is enrolled in (completed purchases), newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn profile(&self, actor: &User) -> Result<Vec<PurchasedCourse>, UseCaseError> {
        Ok(self.purchases.list_unlocked_for_user(actor.id).await?)
    }
}
