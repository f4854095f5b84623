//! Courses and their pricing rules.

use crate::error::DomainError;
use crate::ids::{CourseId, UserId};
use crate::money::{Money, MAX_CHARGE_MINOR};
use time::OffsetDateTime;

/// Checks a course price: zero (a free course) or a chargeable amount, i.e. at least the
/// gateway's minimum charge in that currency and at most its maximum.
///
/// # Errors
/// [`DomainError::PriceBelowMinimum`] or [`DomainError::PriceAboveMaximum`].
pub fn validate_price(price: Money) -> Result<Money, DomainError> {
    let minimum = price.currency().minimum_charge_minor();
    if price.is_zero() {
        Ok(price)
    } else if price.minor() < minimum {
        Err(DomainError::PriceBelowMinimum {
            price,
            minimum: Money::new(minimum, price.currency())?,
        })
    } else if price.minor() > MAX_CHARGE_MINOR {
        Err(DomainError::PriceAboveMaximum { price })
    } else {
        Ok(price)
    }
}

/// A bounded, trimmed piece of course text (title, subtitle, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseText(String);

impl CourseText {
    /// # Errors
    /// [`DomainError::InvalidText`] when the trimmed text is outside `min..=max` characters.
    pub fn parse(
        field: &'static str,
        raw: &str,
        min: usize,
        max: usize,
    ) -> Result<Self, DomainError> {
        let text = raw.trim();
        let chars = text.chars().count();
        if chars < min || chars > max {
            return Err(DomainError::InvalidText { field, min, max });
        }
        Ok(Self(text.to_owned()))
    }

    pub fn title(raw: &str) -> Result<Self, DomainError> {
        Self::parse("title", raw, 1, 200)
    }

    pub fn subtitle(raw: &str) -> Result<Self, DomainError> {
        Self::parse("subtitle", raw, 0, 300)
    }

    pub fn description(raw: &str) -> Result<Self, DomainError> {
        Self::parse("description", raw, 0, 20_000)
    }

    pub fn category(raw: &str) -> Result<Self, DomainError> {
        Self::parse("category", raw, 0, 100)
    }

    pub fn level(raw: &str) -> Result<Self, DomainError> {
        Self::parse("level", raw, 0, 50)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated new course, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseDraft {
    pub title: CourseText,
    pub subtitle: Option<CourseText>,
    pub description: Option<CourseText>,
    pub category: Option<CourseText>,
    pub level: Option<CourseText>,
    pub price: Money,
}

/// A partial update of a course; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoursePatch {
    pub title: Option<CourseText>,
    pub subtitle: Option<CourseText>,
    pub description: Option<CourseText>,
    pub category: Option<CourseText>,
    pub level: Option<CourseText>,
    pub price: Option<Money>,
    pub published: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course {
    pub id: CourseId,
    pub instructor_id: UserId,
    pub title: CourseText,
    pub subtitle: Option<CourseText>,
    pub description: Option<CourseText>,
    pub category: Option<CourseText>,
    pub level: Option<CourseText>,
    pub price: Money,
    pub published: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Course {
    /// A new, unpublished course.
    ///
    /// # Errors
    /// The price rules of [`validate_price`].
    pub fn create(
        id: CourseId,
        instructor_id: UserId,
        draft: CourseDraft,
        now: OffsetDateTime,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            id,
            instructor_id,
            title: draft.title,
            subtitle: draft.subtitle,
            description: draft.description,
            category: draft.category,
            level: draft.level,
            price: validate_price(draft.price)?,
            published: false,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies a patch; on error the course is left unchanged.
    ///
    /// # Errors
    /// The price rules of [`validate_price`].
    pub fn apply(&mut self, patch: CoursePatch, now: OffsetDateTime) -> Result<(), DomainError> {
        if let Some(price) = patch.price {
            self.price = validate_price(price)?;
        }
        let CoursePatch {
            title,
            subtitle,
            description,
            category,
            level,
            published,
            ..
        } = patch;
        if let Some(title) = title {
            self.title = title;
        }
        if subtitle.is_some() {
            self.subtitle = subtitle;
        }
        if description.is_some() {
            self.description = description;
        }
        if category.is_some() {
            self.category = category;
        }
        if level.is_some() {
            self.level = level;
        }
        if let Some(published) = published {
            self.published = published;
        }
        self.updated_at = now;
        Ok(())
    }

    pub fn is_free(&self) -> bool {
        self.price.is_zero()
    }

    pub fn is_owned_by(&self, user: UserId) -> bool {
        self.instructor_id == user
    }

    /// Whether `buyer` may start buying this course (ownership of a purchase is checked elsewhere).
    ///
    /// # Errors
    /// [`DomainError::CourseNotPublished`] or [`DomainError::OwnCourse`].
    pub fn check_purchasable_by(&self, buyer: UserId) -> Result<(), DomainError> {
        if !self.published {
            Err(DomainError::CourseNotPublished)
        } else if self.is_owned_by(buyer) {
            Err(DomainError::OwnCourse)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use uuid::Uuid;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD).unwrap()
    }

    fn course(price: Money) -> Course {
        let draft = CourseDraft {
            title: CourseText::title("Rust").unwrap(),
            subtitle: None,
            description: None,
            category: None,
            level: None,
            price,
        };
        let owner = UserId::from_uuid(Uuid::from_u128(1));
        Course::create(
            CourseId::from_uuid(Uuid::from_u128(2)),
            owner,
            draft,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn prices_are_free_or_chargeable() {
        assert_eq!(validate_price(usd(0)), Ok(usd(0)));
        assert_eq!(validate_price(usd(50)), Ok(usd(50)));
        assert_eq!(
            validate_price(usd(49)),
            Err(DomainError::PriceBelowMinimum {
                price: usd(49),
                minimum: usd(50)
            })
        );
        assert_eq!(
            validate_price(usd(MAX_CHARGE_MINOR)),
            Ok(usd(MAX_CHARGE_MINOR))
        );
        assert!(matches!(
            validate_price(usd(MAX_CHARGE_MINOR + 1)),
            Err(DomainError::PriceAboveMaximum { .. })
        ));
        let gbp = Money::new(30, Currency::parse("gbp").unwrap()).unwrap();
        assert_eq!(validate_price(gbp), Ok(gbp));
    }

    #[test]
    fn new_courses_are_unpublished_and_not_purchasable() {
        let course = course(usd(1999));
        let buyer = UserId::from_uuid(Uuid::from_u128(9));
        assert_eq!(
            course.check_purchasable_by(buyer),
            Err(DomainError::CourseNotPublished)
        );
    }

    #[test]
    fn owners_cannot_buy_their_own_course() {
        let mut course = course(usd(1999));
        course
            .apply(
                CoursePatch {
                    published: Some(true),
                    ..CoursePatch::default()
                },
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
        assert_eq!(
            course.check_purchasable_by(course.instructor_id),
            Err(DomainError::OwnCourse)
        );
        assert_eq!(
            course.check_purchasable_by(UserId::from_uuid(Uuid::from_u128(9))),
            Ok(())
        );
    }

    #[test]
    fn an_invalid_patch_leaves_the_course_unchanged() {
        let mut course = course(usd(1999));
        let before = course.clone();
        let patch = CoursePatch {
            title: Some(CourseText::title("New").unwrap()),
            price: Some(usd(10)),
            ..CoursePatch::default()
        };
        assert!(course.apply(patch, OffsetDateTime::now_utc()).is_err());
        assert_eq!(course, before);
    }

    #[test]
    fn course_text_is_bounded() {
        assert!(CourseText::title("  ").is_err());
        assert!(CourseText::title(&"x".repeat(201)).is_err());
        assert_eq!(CourseText::title(" Rust ").unwrap().as_str(), "Rust");
        assert_eq!(CourseText::subtitle("").unwrap().as_str(), "");
    }
}
