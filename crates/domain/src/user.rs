//! Users: who they are and what they may do.

use crate::error::DomainError;
use crate::ids::UserId;
use std::fmt;
use time::OffsetDateTime;

/// A syntactically valid email address, trimmed and lower-cased so that uniqueness is
/// case-insensitive everywhere.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    const MAX_LEN: usize = 254;

    /// # Errors
    /// [`DomainError::InvalidEmail`] unless the input looks like `local@domain.tld`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let email = raw.trim().to_lowercase();
        let (local, domain) = email.split_once('@').ok_or(DomainError::InvalidEmail)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        let chars_ok =
            !email.chars().any(|c| c.is_whitespace() || c.is_control()) && !domain.contains('@');
        if local.is_empty() || !domain_ok || !chars_ok || email.len() > Self::MAX_LEN {
            return Err(DomainError::InvalidEmail);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    // Addresses are personal data: keep them out of debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

/// A display name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    const MAX_CHARS: usize = 100;

    /// # Errors
    /// [`DomainError::InvalidName`] when empty or longer than 100 characters.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::InvalidName {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Student,
    Instructor,
    Admin,
}

impl Role {
    /// The role a user may pick at sign-up: student (the default) or instructor.
    ///
    /// # Errors
    /// [`DomainError::AdminNotSelfAssignable`] for `admin`, [`DomainError::InvalidRole`] otherwise.
    pub fn parse_self_assigned(raw: Option<&str>) -> Result<Self, DomainError> {
        match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
            None | Some("student") => Ok(Role::Student),
            Some("instructor") => Ok(Role::Instructor),
            Some("admin") => Err(DomainError::AdminNotSelfAssignable),
            Some(_) => Err(DomainError::InvalidRole(raw.unwrap_or_default().to_owned())),
        }
    }

    /// Parses a stored role name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "student" => Some(Role::Student),
            "instructor" => Some(Role::Instructor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Instructor => "instructor",
            Role::Admin => "admin",
        }
    }

    /// Instructors and admins author courses; students do not.
    pub const fn can_author_courses(self) -> bool {
        matches!(self, Role::Instructor | Role::Admin)
    }
}

/// A registered user. The password hash is opaque to the domain (hashing is a port).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: UserName,
    pub email: Email,
    pub role: Role,
    pub password_hash: String,
    /// Which generation of sessions is current: 0 for a new account, one more each time the
    /// user signs out. A session (a token) remembers the generation it was opened under and
    /// is honoured only while that generation is current, so one increment ends every
    /// session opened before it, on every device.
    pub session_generation: u32,
    pub created_at: OffsetDateTime,
}

impl User {
    /// The generation of sessions of a new account.
    pub const FIRST_SESSION_GENERATION: u32 = 0;

    /// Whether a session opened under `generation` is still honoured: only the current
    /// generation is (an older one was ended by a sign-out; a newer one cannot have been
    /// issued by this account's history).
    pub const fn honours_session(&self, generation: u32) -> bool {
        self.session_generation == generation
    }
}

impl fmt::Debug for User {
    // Never let a password hash reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@.com",
            "ada@ex..com",
            "a da@x.io",
            "a@b@c.io",
        ] {
            assert_eq!(Email::parse(raw), Err(DomainError::InvalidEmail), "{raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(DomainError::InvalidEmail));
    }

    #[test]
    fn email_debug_hides_the_address() {
        let email = Email::parse("ada@example.com").unwrap();
        assert!(!format!("{email:?}").contains("ada"));
    }

    #[test]
    fn roles_default_to_student_and_admin_is_never_self_assigned() {
        assert_eq!(Role::parse_self_assigned(None), Ok(Role::Student));
        assert_eq!(
            Role::parse_self_assigned(Some("Instructor")),
            Ok(Role::Instructor)
        );
        assert_eq!(
            Role::parse_self_assigned(Some("admin")),
            Err(DomainError::AdminNotSelfAssignable)
        );
        assert_eq!(
            Role::parse_self_assigned(Some("root")),
            Err(DomainError::InvalidRole("root".into()))
        );
        for role in [Role::Student, Role::Instructor, Role::Admin] {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
    }

    #[test]
    fn only_the_current_session_generation_is_honoured() {
        let user = User {
            id: UserId::from_uuid(uuid::Uuid::from_u128(1)),
            name: UserName::parse("Ada").unwrap(),
            email: Email::parse("ada@example.com").unwrap(),
            role: Role::Student,
            password_hash: "x".to_owned(),
            session_generation: 2,
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(user.honours_session(2));
        assert!(!user.honours_session(1), "ended by a sign-out");
        assert!(!user.honours_session(3));
        assert!(!user.honours_session(User::FIRST_SESSION_GENERATION));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(UserName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(UserName::parse("   ").is_err());
        assert!(UserName::parse(&"x".repeat(101)).is_err());
    }
}
