//! The API test suite: the real server over HTTP, adapters swapped in by `spawn_app`.

mod admin;
mod busy;
mod commerce;
mod courses;
mod errors;
mod health;
pub(crate) mod helpers;
mod history;
mod limits;
mod payments;
pub(crate) mod stripe_events;
mod users;
mod webhooks;
mod wiring;
