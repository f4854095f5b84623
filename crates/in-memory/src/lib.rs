//! In-memory adapters of every port, for tests and local runs.
//!
//! - [`InMemoryStore`]: one store implementing [`lms_ports::UserRepo`],
//!   [`lms_ports::CourseRepo`], [`lms_ports::PurchaseRepo`] and [`lms_ports::StorageHealth`],
//!   honouring the port contracts (uniqueness, the one-active-slot rule, exactly-once events)
//!   under one lock, with switches for tests (make every call fail, inspect recorded events).
//! - [`FakeGateway`]: a scriptable [`lms_ports::PaymentGateway`] with its own simple signed
//!   webhook format (no Stripe knowledge), recording every request and keeping the events it
//!   emits for `list_events`.
//! - [`ManualClock`]: a settable, advanceable [`lms_ports::Clock`].
//! - [`FakeHasher`]: an instant [`lms_ports::PasswordHasher`] that records what it verified.

mod clock;
mod gateway;
mod hasher;
mod store;

pub use clock::ManualClock;
pub use gateway::{FakeConversion, FakeCustomer, FakeEvent, FakeFact, FakeGateway, GatewayCall};
pub use hasher::FakeHasher;
pub use store::{InMemoryStore, RecordedEvent};
