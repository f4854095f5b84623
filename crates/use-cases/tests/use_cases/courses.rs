//! Course authoring, visibility and the catalogue.

use crate::support::{usd, WithdrawnCourse, World};
use lms_domain::{Currency, Money};
use lms_use_cases::{CourseChanges, NewCourse, PageRequest, Resource, UseCaseError};

fn new_course(title: &str, price_cents: i64, currency: Option<&str>) -> NewCourse {
    NewCourse {
        title: title.to_owned(),
        subtitle: Some("Subtitle".to_owned()),
        description: None,
        category: Some("Programming".to_owned()),
        level: None,
        price_cents,
        currency: currency.map(str::to_owned),
    }
}

fn fields(err: UseCaseError) -> Vec<String> {
    match err {
        UseCaseError::Validation(errors) => {
            errors.into_iter().map(|e| e.field.into_owned()).collect()
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn instructors_create_unpublished_courses_with_parsed_prices() {
    let world = World::new();
    let teacher = world.instructor().await;
    let course = world
        .services
        .create_course(&teacher, new_course(" Rust ", 1999, None))
        .await
        .unwrap();
    assert_eq!(course.title.as_str(), "Rust");
    assert_eq!(course.price, usd(1999));
    assert!(!course.published);
    assert_eq!(course.instructor_id, teacher.id);
    assert_eq!(
        course.category.as_ref().map(|c| c.as_str()),
        Some("Programming")
    );
    assert_eq!(world.store.all_courses(), vec![course]);

    let euro = world
        .services
        .create_course(&teacher, new_course("Go", 500, Some("eur")))
        .await
        .unwrap();
    assert_eq!(
        euro.price,
        Money::new(500, Currency::parse("EUR").unwrap()).unwrap()
    );
    let free = world
        .services
        .create_course(&teacher, new_course("Free", 0, None))
        .await
        .unwrap();
    assert!(free.is_free());
    let admin = world.admin().await;
    assert!(world
        .services
        .create_course(&admin, new_course("By admin", 0, None))
        .await
        .is_ok());
}

#[tokio::test]
async fn students_cannot_author_courses() {
    let world = World::new();
    let student = world.student().await;
    assert_eq!(
        world
            .services
            .create_course(&student, new_course("Rust", 1999, None))
            .await,
        Err(UseCaseError::Forbidden)
    );
    assert!(world.store.all_courses().is_empty());
}

#[tokio::test]
async fn invalid_course_fields_are_named() {
    let world = World::new();
    let teacher = world.instructor().await;
    let err = world
        .services
        .create_course(&teacher, new_course("", 10, Some("xyz")))
        .await
        .unwrap_err();
    assert_eq!(fields(err), vec!["title", "currency"]);
    let err = world
        .services
        .create_course(&teacher, new_course("Rust", 10, None))
        .await
        .unwrap_err();
    assert_eq!(fields(err), vec!["priceCents"]);
    let err = world
        .services
        .create_course(&teacher, new_course("Rust", -1, None))
        .await
        .unwrap_err();
    assert_eq!(fields(err), vec!["priceCents"]);
    let err = world
        .services
        .create_course(&teacher, new_course("Rust", 100_000_000, None))
        .await
        .unwrap_err();
    assert_eq!(fields(err), vec!["priceCents"]);
    assert!(world.store.all_courses().is_empty());
}

#[tokio::test]
async fn owners_and_admins_update_others_cannot() {
    let world = World::new();
    let teacher = world.instructor().await;
    let course = world.course(&teacher, 1999, false).await;
    let rival = world.instructor().await;
    let publish = CourseChanges {
        is_published: Some(true),
        ..CourseChanges::default()
    };

    assert_eq!(
        world
            .services
            .update_course(&rival, course.id, publish.clone())
            .await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    let published = world
        .services
        .update_course(&teacher, course.id, publish)
        .await
        .unwrap();
    assert!(published.published);
    let retitle = CourseChanges {
        title: Some("Renamed".to_owned()),
        ..CourseChanges::default()
    };
    assert_eq!(
        world
            .services
            .update_course(&rival, course.id, retitle.clone())
            .await,
        Err(UseCaseError::Forbidden)
    );

    let admin = world.admin().await;
    let reprice = CourseChanges {
        price_cents: Some(2999),
        currency: Some("gbp".to_owned()),
        ..retitle
    };
    let updated = world
        .services
        .update_course(&admin, course.id, reprice)
        .await
        .unwrap();
    assert_eq!(updated.title.as_str(), "Renamed");
    assert_eq!(
        updated.price,
        Money::new(2999, Currency::parse("GBP").unwrap()).unwrap()
    );
    assert_eq!(world.store.all_courses(), vec![updated.clone()]);

    let bad = CourseChanges {
        price_cents: Some(1),
        ..CourseChanges::default()
    };
    assert_eq!(
        fields(
            world
                .services
                .update_course(&teacher, course.id, bad)
                .await
                .unwrap_err()
        ),
        vec!["priceCents"]
    );
    assert_eq!(world.store.all_courses(), vec![updated]);
}

#[tokio::test]
async fn unpublished_courses_are_visible_only_to_owner_and_admins() {
    let world = World::new();
    let (teacher, hidden, student) = world.shop(1999, false).await;
    assert_eq!(
        world.services.course(None, hidden.id).await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    assert_eq!(
        world.services.course(Some(&student), hidden.id).await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    assert_eq!(
        world
            .services
            .course(Some(&teacher), hidden.id)
            .await
            .unwrap()
            .id,
        hidden.id
    );
    let admin = world.admin().await;
    assert!(world.services.course(Some(&admin), hidden.id).await.is_ok());
    let shown = world.course(&teacher, 0, true).await;
    assert_eq!(world.services.course(None, shown.id).await.unwrap(), shown);
}

#[tokio::test]
async fn the_catalogue_lists_published_courses_newest_first_in_pages() {
    let world = World::new();
    let teacher = world.instructor().await;
    let mut published = Vec::new();
    for _ in 0..3 {
        published.push(world.course(&teacher, 1999, true).await.id);
        world.clock.advance(time::Duration::minutes(1));
    }
    world.course(&teacher, 1999, false).await;
    let first = world
        .services
        .published_courses(PageRequest::new(1, 2))
        .await
        .unwrap();
    assert_eq!(first.total, 3);
    assert_eq!(
        first.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![published[2], published[1]]
    );
    let second = world
        .services
        .published_courses(PageRequest::new(2, 2))
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![published[0]]
    );
}

#[tokio::test]
async fn an_unpublished_course_stays_visible_to_its_buyers_only() {
    let world = World::new();
    let WithdrawnCourse {
        course: hidden,
        buyer,
        paid,
        refunded_buyer,
        stranger,
    } = world.withdrawn_course().await;
    let course = hidden.clone();

    assert_eq!(
        world.services.course(Some(&buyer), course.id).await,
        Ok(hidden.clone())
    );
    // Seeing it is not managing it.
    assert_eq!(
        world
            .services
            .update_course(
                &buyer,
                course.id,
                CourseChanges {
                    is_published: Some(true),
                    ..CourseChanges::default()
                },
            )
            .await,
        Err(UseCaseError::Forbidden)
    );
    for other in [Some(&refunded_buyer), Some(&stranger), None] {
        assert_eq!(
            world.services.course(other, course.id).await,
            Err(UseCaseError::NotFound(Resource::Course))
        );
    }
    // Only new sales stop: the unpublished course is not found for checkout.
    assert_eq!(
        world.services.start_checkout(&stranger, course.id).await,
        Err(UseCaseError::NotFound(Resource::Course))
    );
    assert_eq!(world.store.all_courses(), vec![hidden]);
    assert!(world.purchase(paid.id).await.unlocks_course());
}
