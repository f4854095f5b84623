//! A password hasher at its concurrency bound: sign-in and sign-up answer busy, store nothing,
//! and do not reveal whether an email has an account.

use crate::support::{World, PASSWORD};
use lms_use_cases::{SignUp, UseCaseError};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(3);

fn busy() -> Result<(), UseCaseError> {
    Err(UseCaseError::Busy { retry_after: WAIT })
}

#[tokio::test]
async fn sign_in_with_a_busy_hasher_is_busy_for_known_and_unknown_emails_alike() {
    let world = World::new();
    let user = world.student().await;
    world.hasher.set_busy(Some(WAIT));

    let known = world.services.sign_in(user.email.as_str(), PASSWORD).await;
    assert_eq!(known.map(|_| ()), busy());
    let wrong = world
        .services
        .sign_in(user.email.as_str(), "wrong password")
        .await;
    assert_eq!(wrong.map(|_| ()), busy());
    // The unknown email takes the same bounded path: busy, not "invalid credentials".
    let unknown = world.services.sign_in("nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.map(|_| ()), busy());

    world.hasher.set_busy(None);
    assert_eq!(
        world
            .services
            .sign_in(user.email.as_str(), PASSWORD)
            .await
            .map(|u| u.id),
        Ok(user.id)
    );
}

#[tokio::test]
async fn sign_up_with_a_busy_hasher_is_busy_and_stores_nothing() {
    let world = World::new();
    world.hasher.set_busy(Some(WAIT));
    let request = SignUp {
        name: "Ada".to_owned(),
        email: "ada@example.com".to_owned(),
        password: PASSWORD.to_owned(),
        role: None,
    };
    assert_eq!(
        world.services.sign_up(request.clone()).await.map(|_| ()),
        busy()
    );
    assert_eq!(world.store.user_count(), 0);

    world.hasher.set_busy(None);
    assert!(world.services.sign_up(request).await.is_ok());
    assert_eq!(world.store.user_count(), 1);
}
