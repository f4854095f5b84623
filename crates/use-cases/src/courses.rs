//! Course authoring and the catalogue.

use crate::error::{FieldError, Resource};
use crate::{new_uuid, Services, UseCaseError};
use lms_domain::course::validate_price;
use lms_domain::{
    Course, CourseDraft, CourseId, CoursePatch, CourseText, Currency, DomainError, Money, Purchase,
    Role, User,
};
use lms_ports::{Page, PageRequest, RepoError};

/// A new course as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCourse {
    pub title: String,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    /// Minor units; 0 is a free course.
    pub price_cents: i64,
    /// ISO 4217, case-insensitive; default USD.
    pub currency: Option<String>,
}

/// Changes to a course; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CourseChanges {
    pub title: Option<String>,
    pub subtitle: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub is_published: Option<bool>,
}

/// Collects field errors while parsing several fields.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn text(
        &mut self,
        raw: Option<&str>,
        parse: fn(&str) -> Result<CourseText, DomainError>,
        field: &'static str,
    ) -> Option<CourseText> {
        match raw.map(parse)? {
            Ok(text) => Some(text),
            Err(err) => {
                self.0.push(FieldError::new(field, err.to_string()));
                None
            }
        }
    }

    /// The currency, or `None` (recorded) when invalid: then the price cannot be judged.
    fn currency(&mut self, raw: Option<&str>, default: Currency) -> Option<Currency> {
        match raw.map(Currency::parse) {
            None => Some(default),
            Some(Ok(currency)) => Some(currency),
            Some(Err(err)) => {
                self.0.push(FieldError::new("currency", err.to_string()));
                None
            }
        }
    }

    fn price(&mut self, minor: i64, currency: Option<Currency>) -> Option<Money> {
        let currency = currency?;
        match Money::new(minor, currency)
            .map_err(DomainError::from)
            .and_then(validate_price)
        {
            Ok(price) => Some(price),
            Err(err) => {
                self.0.push(FieldError::new("priceCents", err.to_string()));
                None
            }
        }
    }

    fn finish(self) -> Result<(), UseCaseError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(UseCaseError::Validation(self.0))
        }
    }
}

fn may_manage(actor: &User, course: &Course) -> bool {
    actor.role == Role::Admin || course.is_owned_by(actor.id)
}

/// Whether the actor sees the course whatever they bought: it is published, or theirs to manage.
/// Decided without storage, so a published course costs no purchase look-up.
fn visible_regardless_of_purchases(actor: Option<&User>, course: &Course) -> bool {
    course.published || actor.is_some_and(|actor| may_manage(actor, course))
}

/// Whether `actor` sees `course`, given their purchases of it: besides the published and managed
/// cases, a buyer whose purchase unlocks the course keeps it after it is unpublished, because
/// unpublishing only stops new sales and must not take away what was paid for.
pub(crate) fn course_visible_to(actor: &User, course: &Course, purchases: &[Purchase]) -> bool {
    visible_regardless_of_purchases(Some(actor), course)
        || purchases.iter().any(|purchase| {
            purchase.user_id == actor.id
                && purchase.course_id == course.id
                && purchase.unlocks_course()
        })
}

fn price_error(err: DomainError) -> UseCaseError {
    UseCaseError::field("priceCents", err.to_string())
}

impl Services {
    /// Creates an unpublished course owned by `actor`.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`] unless the actor may author courses; [`UseCaseError::Validation`]
    /// (`title`, `subtitle`, `description`, `category`, `level`, `priceCents`, `currency`);
    /// storage errors.
    pub async fn create_course(
        &self,
        actor: &User,
        new: NewCourse,
    ) -> Result<Course, UseCaseError> {
        if !actor.role.can_author_courses() {
            return Err(UseCaseError::Forbidden);
        }
        let mut fields = Fields::default();
        let title = fields.text(Some(&new.title), CourseText::title, "title");
        let subtitle = fields.text(new.subtitle.as_deref(), CourseText::subtitle, "subtitle");
        let description = fields.text(
            new.description.as_deref(),
            CourseText::description,
            "description",
        );
        let category = fields.text(new.category.as_deref(), CourseText::category, "category");
        let level = fields.text(new.level.as_deref(), CourseText::level, "level");
        let currency = fields.currency(new.currency.as_deref(), Currency::USD);
        let price = fields.price(new.price_cents, currency);
        fields.finish()?;
        let (Some(title), Some(price)) = (title, price) else {
            return Err(UseCaseError::unexpected("validated course fields missing"));
        };
        let draft = CourseDraft {
            title,
            subtitle,
            description,
            category,
            level,
            price,
        };
        let course = Course::create(CourseId::from_uuid(new_uuid()), actor.id, draft, self.now())
            .map_err(price_error)?;
        self.courses.create_course(&course).await?;
        tracing::info!(course_id = %course.id, instructor_id = %actor.id, "course created");
        Ok(course)
    }

    /// Changes a course (its owner or an admin).
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(Course)` when unknown or hidden from the actor (as in
    /// [`Services::course`]); [`UseCaseError::Forbidden`] for a visible course the actor does not
    /// manage;
    /// [`UseCaseError::Validation`]; storage errors.
    pub async fn update_course(
        &self,
        actor: &User,
        id: CourseId,
        changes: CourseChanges,
    ) -> Result<Course, UseCaseError> {
        let mut course = self.visible_course(Some(actor), id).await?;
        if !may_manage(actor, &course) {
            return Err(UseCaseError::Forbidden);
        }
        let mut fields = Fields::default();
        let patch = CoursePatch {
            title: fields.text(changes.title.as_deref(), CourseText::title, "title"),
            subtitle: fields.text(
                changes.subtitle.as_deref(),
                CourseText::subtitle,
                "subtitle",
            ),
            description: fields.text(
                changes.description.as_deref(),
                CourseText::description,
                "description",
            ),
            category: fields.text(
                changes.category.as_deref(),
                CourseText::category,
                "category",
            ),
            level: fields.text(changes.level.as_deref(), CourseText::level, "level"),
            price: if changes.price_cents.is_some() || changes.currency.is_some() {
                let currency =
                    fields.currency(changes.currency.as_deref(), course.price.currency());
                fields.price(
                    changes.price_cents.unwrap_or(course.price.minor()),
                    currency,
                )
            } else {
                None
            },
            published: changes.is_published,
        };
        fields.finish()?;
        course.apply(patch, self.now()).map_err(price_error)?;
        match self.courses.update_course(&course).await {
            Ok(()) => Ok(course),
            Err(RepoError::NotFound) => Err(UseCaseError::NotFound(Resource::Course)),
            Err(err) => Err(err.into()),
        }
    }

    /// One page of the published catalogue, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn published_courses(&self, page: PageRequest) -> Result<Page<Course>, UseCaseError> {
        Ok(self
            .courses
            .list_published_courses(PageRequest::new(page.page, page.limit))
            .await?)
    }

    /// One course: published ones for everyone, unpublished ones for their owner, admins and the
    /// buyers whose purchase unlocks it.
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(Course)` when unknown or hidden from the actor; storage errors.
    pub async fn course(&self, actor: Option<&User>, id: CourseId) -> Result<Course, UseCaseError> {
        self.visible_course(actor, id).await
    }

    pub(crate) async fn visible_course(
        &self,
        actor: Option<&User>,
        id: CourseId,
    ) -> Result<Course, UseCaseError> {
        let course = self.stored_course(id).await?;
        if visible_regardless_of_purchases(actor, &course) {
            return Ok(course);
        }
        if let Some(actor) = actor {
            let purchases = self
                .purchases
                .list_for_user_and_course(actor.id, course.id)
                .await?;
            if course_visible_to(actor, &course, &purchases) {
                return Ok(course);
            }
        }
        Err(UseCaseError::NotFound(Resource::Course))
    }

    /// The course, whoever may see it.
    pub(crate) async fn stored_course(&self, id: CourseId) -> Result<Course, UseCaseError> {
        self.courses
            .get_course(id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::Course))
    }
}
