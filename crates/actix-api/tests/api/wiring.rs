//! How each wiring builds its `Services`.

use lms_application::{Services, Settings};
use lms_in_memory::{FakeGateway, InMemoryStore, ManualClock};
use lms_password_argon2::Argon2Hasher;
use std::sync::Arc;

pub fn memory_services(store: &InMemoryStore, gateway: &FakeGateway, clock: &ManualClock) -> Services {
    Services::with_store(
        store.clone(),
        Arc::new(gateway.clone()),
        Arc::new(Argon2Hasher::fast_for_tests().unwrap()),
        Arc::new(clock.clone()),
        Settings::default(),
    )
}
