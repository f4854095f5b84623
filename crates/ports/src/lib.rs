//! Ports: the traits the use cases need from the outside world, with their error contracts.
//!
//! Every adapter of a port must honour the contract written on the trait; the contract test
//! suites run the same checks against each adapter.

pub mod clock;
pub mod gateway;
pub mod password;
pub mod storage;

pub use clock::{Clock, SystemClock};
pub use gateway::{
    CheckoutRequest, GatewayError, GatewayEvent, GatewaySession, PaymentGateway, PurchaseLocator,
    RefundOutcome, RefundRequest, RefundStatus, SessionPaymentStatus, SessionStatus, WebhookEvent,
    WebhookRejection,
};
pub use password::{PasswordHashError, PasswordHasher};
pub use storage::{
    Applied, CourseRepo, DeploymentClaim, DeploymentRegistry, EventReceipt, FactUpdate, Page,
    PageRequest, PaymentsMode, PurchaseRepo, PurchasedCourse, RepoError, StorageHealth, UserRepo,
};
