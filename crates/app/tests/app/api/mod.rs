//! The API test suite: the real server over HTTP, adapters swapped in by `spawn_app`.

mod busy;
mod courses;
mod errors;
mod health;
mod helpers;
mod limits;
mod payments;
mod stripe_events;
mod users;
mod webhooks;
mod wiring;
