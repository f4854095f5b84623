//! Demo data for the offline mode: one instructor and two published courses, created through
//! the use cases (so every business rule applies) the first time the app starts on a store.

use crate::DemoSeed;
use anyhow::Context;
use lms_domain::Email;
use lms_use_cases::{CourseChanges, NewCourse, Services, SignUp, UseCaseError};

/// The demo instructor's sign-in. The password is public on purpose (it is in this file and
/// printed in the log when created): never seed a store reachable by others.
pub const INSTRUCTOR_EMAIL: &str = "instructor@demo.lms";
pub const INSTRUCTOR_PASSWORD: &str = "demo-password";
pub const INSTRUCTOR_NAME: &str = "Demo Instructor";

pub const PAID_COURSE_TITLE: &str = "Rust for Web Developers";
pub const PAID_COURSE_PRICE_CENTS: i64 = 1999;
pub const PAID_COURSE_CURRENCY: &str = "USD";
pub const FREE_COURSE_TITLE: &str = "Cargo in 20 Minutes";

fn courses() -> [NewCourse; 2] {
    [
        NewCourse {
            title: PAID_COURSE_TITLE.to_owned(),
            subtitle: Some("Build and ship a production web service with actix-web".to_owned()),
            description: Some(
                "Ownership for people who know JavaScript or Python, async Rust, actix-web, \
                 databases with diesel, and testing a service end to end."
                    .to_owned(),
            ),
            category: Some("Programming".to_owned()),
            level: Some("Intermediate".to_owned()),
            price_cents: PAID_COURSE_PRICE_CENTS,
            currency: Some(PAID_COURSE_CURRENCY.to_owned()),
        },
        NewCourse {
            title: FREE_COURSE_TITLE.to_owned(),
            subtitle: Some("Create, build, test and publish a Rust project".to_owned()),
            description: Some(
                "A short free tour of cargo: new projects, dependencies, workspaces and tests."
                    .to_owned(),
            ),
            category: Some("Programming".to_owned()),
            level: Some("Beginner".to_owned()),
            price_cents: 0,
            currency: Some("USD".to_owned()),
        },
    ]
}

/// Creates the demo instructor and publishes the two demo courses, unless the instructor
/// already exists (then nothing is touched: a second start seeds nothing).
///
/// # Errors
/// Storage errors, or a use case refusing the demo data (a bug).
pub async fn seed(services: &Services) -> anyhow::Result<DemoSeed> {
    let email = Email::parse(INSTRUCTOR_EMAIL).context("demo instructor email")?;
    if services
        .users
        .find_user_by_email(&email)
        .await
        .context("looking for the demo instructor")?
        .is_some()
    {
        tracing::info!(email = INSTRUCTOR_EMAIL, "demo data already present");
        return Ok(DemoSeed::AlreadyPresent);
    }
    let instructor = match services
        .sign_up(SignUp {
            name: INSTRUCTOR_NAME.to_owned(),
            email: INSTRUCTOR_EMAIL.to_owned(),
            password: INSTRUCTOR_PASSWORD.to_owned(),
            role: Some("instructor".to_owned()),
        })
        .await
    {
        Ok(user) => user,
        // Another process sharing the store seeded it a moment ago.
        Err(UseCaseError::EmailTaken) => return Ok(DemoSeed::AlreadyPresent),
        Err(err) => return Err(err).context("creating the demo instructor"),
    };
    for new in courses() {
        let title = new.title.clone();
        let course = services
            .create_course(&instructor, new)
            .await
            .with_context(|| format!("creating the demo course {title:?}"))?;
        services
            .update_course(
                &instructor,
                course.id,
                CourseChanges {
                    is_published: Some(true),
                    ..CourseChanges::default()
                },
            )
            .await
            .with_context(|| format!("publishing the demo course {title:?}"))?;
    }
    tracing::info!(
        email = INSTRUCTOR_EMAIL,
        password = INSTRUCTOR_PASSWORD,
        courses = 2,
        "demo data created: sign in as the demo instructor with this email and password"
    );
    Ok(DemoSeed::Created)
}
