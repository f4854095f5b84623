//! Sign-up, sign-in, current user, profile, health.

use crate::support::{World, PASSWORD};
use lms_domain::{Role, UserId};
use lms_use_cases::{Resource, SignUp, UseCaseError};

fn sign_up(name: &str, email: &str, password: &str, role: Option<&str>) -> SignUp {
    SignUp {
        name: name.to_owned(),
        email: email.to_owned(),
        password: password.to_owned(),
        role: role.map(str::to_owned),
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
async fn sign_up_stores_a_normalised_user_with_a_hashed_password() {
    let world = World::new();
    let user = world
        .services
        .sign_up(sign_up(" Ada ", "Ada@Example.COM", PASSWORD, None))
        .await
        .unwrap();
    assert_eq!(user.role, Role::Student);
    assert_eq!(user.name.as_str(), "Ada");
    assert_eq!(user.email.as_str(), "ada@example.com");
    assert_ne!(user.password_hash, PASSWORD);
    assert_eq!(world.services.current_user(user.id).await.unwrap(), user);

    let teacher = world
        .services
        .sign_up(sign_up(
            "Grace",
            "grace@example.com",
            PASSWORD,
            Some("Instructor"),
        ))
        .await
        .unwrap();
    assert_eq!(teacher.role, Role::Instructor);
}

#[tokio::test]
async fn sign_up_names_every_invalid_field() {
    let world = World::new();
    let err = world
        .services
        .sign_up(sign_up("  ", "not-an-email", "short", Some("admin")))
        .await
        .unwrap_err();
    assert_eq!(fields(err), vec!["name", "email", "password", "role"]);
    let err = world
        .services
        .sign_up(sign_up(
            "Ada",
            "ada@example.com",
            &"x".repeat(129),
            Some("wizard"),
        ))
        .await
        .unwrap_err();
    assert_eq!(fields(err), vec!["password", "role"]);
    assert!(world
        .services
        .sign_up(sign_up("Ada", "ada@example.com", &"x".repeat(128), None))
        .await
        .is_ok());
    assert_eq!(world.store.user_count(), 1);
}

#[tokio::test]
async fn a_taken_email_is_refused_whatever_its_case() {
    let world = World::new();
    world
        .services
        .sign_up(sign_up("Ada", "ada@example.com", PASSWORD, None))
        .await
        .unwrap();
    assert_eq!(
        world
            .services
            .sign_up(sign_up("Other", "ADA@example.com", PASSWORD, None))
            .await,
        Err(UseCaseError::EmailTaken)
    );
    assert_eq!(world.store.user_count(), 1);
}

#[tokio::test]
async fn sign_in_checks_the_password_and_hides_which_part_was_wrong() {
    let world = World::new();
    let user = world
        .services
        .sign_up(sign_up("Ada", "ada@example.com", PASSWORD, None))
        .await
        .unwrap();
    assert_eq!(
        world
            .services
            .sign_in("ADA@example.com", PASSWORD)
            .await
            .unwrap()
            .id,
        user.id
    );
    assert_eq!(
        world
            .services
            .sign_in("ada@example.com", "wrong password")
            .await,
        Err(UseCaseError::InvalidCredentials)
    );

    world.hasher.clear_verifications();
    assert_eq!(
        world.services.sign_in("nobody@example.com", PASSWORD).await,
        Err(UseCaseError::InvalidCredentials)
    );
    // An unknown email still costs one verification (against a dummy hash), like a known one.
    let verified = world.hasher.verified_against();
    assert_eq!(verified.len(), 1);
    assert!(verified[0].starts_with("$argon2id$"));
    assert_eq!(
        world.services.sign_in("garbage", PASSWORD).await,
        Err(UseCaseError::InvalidCredentials)
    );
}

#[tokio::test]
async fn current_user_of_a_vanished_account_is_not_found() {
    let world = World::new();
    let ghost = UserId::from_uuid(uuid::Uuid::new_v4());
    assert_eq!(
        world.services.current_user(ghost).await,
        Err(UseCaseError::NotFound(Resource::User))
    );
}

#[tokio::test]
async fn sign_out_moves_the_account_to_its_next_session_generation() {
    let world = World::new();
    let user = world
        .services
        .sign_up(sign_up("Ada", "ada@example.com", PASSWORD, None))
        .await
        .unwrap();
    let other = world.student().await;
    assert_eq!(user.session_generation, 0);
    assert!(user.honours_session(0));

    assert_eq!(world.services.sign_out(&user).await, Ok(1));
    let current = world.services.current_user(user.id).await.unwrap();
    assert_eq!(current.session_generation, 1);
    assert!(
        !current.honours_session(0),
        "the sessions opened before are ended"
    );
    // Signing in again opens a session of the new generation.
    let signed_in = world
        .services
        .sign_in("ada@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(signed_in.session_generation, 1);
    // A stale copy of the user signs out just as well: the store counts, not the caller.
    assert_eq!(world.services.sign_out(&user).await, Ok(2));
    let untouched = world.services.current_user(other.id).await.unwrap();
    assert_eq!(untouched.session_generation, 0);
}

#[tokio::test]
async fn sign_out_of_a_vanished_account_is_not_found_and_storage_errors_pass_through() {
    let world = World::new();
    let user = world.student().await;
    let mut ghost = user.clone();
    ghost.id = UserId::from_uuid(uuid::Uuid::new_v4());
    assert_eq!(
        world.services.sign_out(&ghost).await,
        Err(UseCaseError::NotFound(Resource::User))
    );
    world.store.set_unavailable(true);
    assert!(matches!(
        world.services.sign_out(&user).await,
        Err(UseCaseError::Unavailable(_))
    ));
    world.store.set_unavailable(false);
    let current = world.services.current_user(user.id).await.unwrap();
    assert_eq!(current.session_generation, 0);
}

#[tokio::test]
async fn the_profile_lists_enrolled_courses_newest_first() {
    let world = World::new();
    let teacher = world.instructor().await;
    let first = world.course(&teacher, 0, true).await;
    let second = world.course(&teacher, 1999, true).await;
    let third = world.course(&teacher, 2999, true).await;
    let buyer = world.student().await;
    world
        .services
        .start_checkout(&buyer, first.id)
        .await
        .unwrap();
    world.clock.advance(time::Duration::minutes(1));
    world.paid_purchase(&buyer, &second, "pi_2").await;
    world.clock.advance(time::Duration::minutes(1));
    world.checkout(&buyer, &third).await; // pending: not enrolled
    let profile = world.services.profile(&buyer).await.unwrap();
    assert_eq!(
        profile.iter().map(|pc| pc.course.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
}

#[tokio::test]
async fn health_reports_the_store() {
    let world = World::new();
    let report = world.services.health().await;
    assert!(report.is_healthy());
    world.store.set_unavailable(true);
    let report = world.services.health().await;
    assert!(!report.is_healthy());
    assert_eq!(report.database_detail, "unreachable");
}
