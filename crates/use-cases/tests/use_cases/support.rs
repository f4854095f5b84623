//! The test world: services wired to in-memory adapters, plus shortcuts.

use lms_domain::{
    Bill, Course, Currency, Email, Money, PaymentFact, Purchase, PurchaseId, Role, User, UserId,
    UserName,
};
use lms_in_memory::{FakeEvent, FakeGateway, FakeHasher, InMemoryStore, ManualClock};
use lms_ports::{GatewaySession, PurchaseRepo};
use lms_use_cases::{
    CheckoutStarted, CourseChanges, NewCourse, PurchaseStatusView, Services, SessionClaim, SignUp,
    UseCaseError, UseCaseSettings, WebhookOutcome,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub const PASSWORD: &str = "correct horse battery";

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

/// A bill in USD cents: subtotal, discount, tax, total.
pub fn usd_bill(subtotal: i64, discount: i64, tax: i64, total: i64) -> Bill {
    Bill::new(usd(subtotal), usd(discount), usd(tax), usd(total), None).unwrap()
}

pub struct World {
    pub services: Services,
    pub store: InMemoryStore,
    pub gateway: FakeGateway,
    pub clock: ManualClock,
    pub hasher: FakeHasher,
    next: AtomicU32,
}

impl World {
    pub fn new() -> Self {
        Self::with_settings(UseCaseSettings::default())
    }

    pub fn with_settings(settings: UseCaseSettings) -> Self {
        let store = InMemoryStore::new();
        let clock = ManualClock::default();
        // The events the fake emits carry the test's time, as the gateway's history would.
        let gateway = FakeGateway::new().with_clock(Arc::new(clock.clone()));
        let hasher = FakeHasher::new();
        let services = Services::with_store(
            store.clone(),
            Arc::new(gateway.clone()),
            Arc::new(hasher.clone()),
            Arc::new(clock.clone()),
            settings,
        );
        Self {
            services,
            store,
            gateway,
            clock,
            hasher,
            next: AtomicU32::new(1),
        }
    }

    fn unique(&self) -> u32 {
        self.next.fetch_add(1, Ordering::SeqCst)
    }

    pub async fn sign_up(&self, role: &str) -> User {
        let n = self.unique();
        self.services
            .sign_up(SignUp {
                name: format!("{role} {n}"),
                email: format!("{role}{n}@example.com"),
                password: PASSWORD.to_owned(),
                role: Some(role.to_owned()),
            })
            .await
            .unwrap()
    }

    pub async fn student(&self) -> User {
        self.sign_up("student").await
    }

    pub async fn instructor(&self) -> User {
        self.sign_up("instructor").await
    }

    /// Admins cannot sign up: stored directly.
    pub async fn admin(&self) -> User {
        use lms_ports::UserRepo;
        let n = self.unique();
        let admin = User {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            name: UserName::parse("Admin").unwrap(),
            email: Email::parse(&format!("admin{n}@example.com")).unwrap(),
            role: Role::Admin,
            password_hash: "unused".to_owned(),
            session_generation: User::FIRST_SESSION_GENERATION,
            created_at: lms_ports::Clock::now(&self.clock),
        };
        self.store.create_user(&admin).await.unwrap();
        admin
    }

    /// A course by `owner` priced in USD cents, published or not.
    pub async fn course(&self, owner: &User, price_cents: i64, published: bool) -> Course {
        let course = self
            .services
            .create_course(
                owner,
                NewCourse {
                    title: "Rust for the web".to_owned(),
                    subtitle: None,
                    description: Some("Actix and Diesel".to_owned()),
                    category: None,
                    level: None,
                    price_cents,
                    currency: None,
                },
            )
            .await
            .unwrap();
        if !published {
            return course;
        }
        self.services
            .update_course(
                owner,
                course.id,
                CourseChanges {
                    is_published: Some(true),
                    ..CourseChanges::default()
                },
            )
            .await
            .unwrap()
    }

    /// A fresh instructor's course priced in USD cents (published or not) and a fresh student:
    /// `(instructor, course, student)`.
    pub async fn shop(&self, price_cents: i64, published: bool) -> (User, Course, User) {
        let teacher = self.instructor().await;
        let course = self.course(&teacher, price_cents, published).await;
        let buyer = self.student().await;
        (teacher, course, buyer)
    }

    /// A pending purchase stored without its checkout session, as if a previous request
    /// crashed between storing the purchase and attaching the session.
    pub async fn orphan_purchase(&self, buyer: &User, course: &Course) -> Purchase {
        let orphan = Purchase::begin(
            PurchaseId::from_uuid(uuid::Uuid::new_v4()),
            buyer.id,
            course,
            lms_ports::Clock::now(&self.clock),
        )
        .unwrap();
        self.store.create_purchase(&orphan).await.unwrap();
        orphan
    }

    /// Starts a paid checkout that must create a new session.
    pub async fn checkout(&self, buyer: &User, course: &Course) -> (Purchase, GatewaySession) {
        match self
            .services
            .start_checkout(buyer, course.id)
            .await
            .unwrap()
        {
            CheckoutStarted::Created { purchase, session } => (purchase, session),
            other => panic!("expected a new checkout, got {other:?}"),
        }
    }

    /// Starts a paid checkout that must hand out the open session again.
    pub async fn reused_checkout(
        &self,
        buyer: &User,
        course: &Course,
    ) -> (Purchase, GatewaySession) {
        match self
            .services
            .start_checkout(buyer, course.id)
            .await
            .unwrap()
        {
            CheckoutStarted::Reused { purchase, session } => (purchase, session),
            other => panic!("expected the open session again, got {other:?}"),
        }
    }

    /// What the purchase-status use case shows `buyer` for `course` (syncing `session` first).
    pub async fn status_view(
        &self,
        buyer: &User,
        course: &Course,
        session: Option<&str>,
    ) -> PurchaseStatusView {
        self.services
            .purchase_status(SessionClaim::current(buyer), course.id, session)
            .await
            .unwrap()
    }

    pub async fn purchase(&self, id: PurchaseId) -> Purchase {
        self.store.get_purchase(id).await.unwrap().unwrap()
    }

    pub async fn webhook(&self, event: &FakeEvent) -> Result<WebhookOutcome, UseCaseError> {
        let (body, signature) = FakeGateway::signed_event(event);
        self.services.handle_webhook(&body, Some(&signature)).await
    }

    /// A webhook carrying facts about a purchase (located by purchase id).
    pub async fn event(
        &self,
        id: &str,
        purchase: &Purchase,
        facts: &[PaymentFact],
    ) -> WebhookOutcome {
        let mut event = FakeEvent::new(id, "test.event").for_purchase(purchase.id);
        for fact in facts {
            event = event.with_fact(*fact);
        }
        self.webhook(&event).await.unwrap()
    }

    /// A purchase paid in full through a `checkout.session.completed`-like webhook.
    pub async fn paid_purchase(&self, buyer: &User, course: &Course, intent: &str) -> Purchase {
        let (purchase, session) = self.checkout(buyer, course).await;
        self.gateway.pay_session(&session.id, intent);
        let event = FakeEvent::new(format!("evt_paid_{intent}"), "checkout.session.completed")
            .with_session(&session.id)
            .with_payment_intent(intent)
            .with_fact(PaymentFact::PaymentSucceeded {
                amount: course.price,
                at: None,
            });
        self.webhook(&event).await.unwrap();
        let purchase = self.purchase(purchase.id).await;
        assert!(purchase.unlocks_course());
        purchase
    }

    /// A checkout the customer paid as `bill` (a discount, tax, another presentment currency),
    /// announced by a `checkout.session.completed`-like webhook carrying the payment, the bill
    /// and `promotion_code` if any, stamped at the clock's time. Returns the purchase as stored,
    /// whatever became of it.
    pub async fn billed_purchase(
        &self,
        buyer: &User,
        course: &Course,
        intent: &str,
        bill: Bill,
        promotion_code: Option<&str>,
    ) -> Purchase {
        let (purchase, session) = self.checkout(buyer, course).await;
        assert!(self.gateway.pay_session_billed(&session.id, intent, bill));
        let mut event =
            FakeEvent::new(format!("evt_billed_{intent}"), "checkout.session.completed")
                .created_at(lms_ports::Clock::now(&self.clock))
                .with_session(&session.id)
                .with_payment_intent(intent)
                .with_fact(PaymentFact::PaymentSucceeded {
                    amount: bill.total(),
                    at: None,
                })
                .with_fact(PaymentFact::Billed(bill));
        if let Some(code) = promotion_code {
            event = event.with_promotion_code(code);
        }
        self.webhook(&event).await.unwrap();
        self.purchase(purchase.id).await
    }

    /// A course with one buyer who keeps it, one whose payment was refunded in full and one
    /// stranger, then unpublished by its instructor: who may still see it?
    pub async fn withdrawn_course(&self) -> WithdrawnCourse {
        let (teacher, course, buyer) = self.shop(1999, true).await;
        let paid = self.paid_purchase(&buyer, &course, "pi_kept").await;
        let refunded_buyer = self.student().await;
        let refunded = self
            .paid_purchase(&refunded_buyer, &course, "pi_given_back")
            .await;
        self.event(
            "evt_refund_all",
            &refunded,
            &[PaymentFact::Refunded { total: usd(1999) }],
        )
        .await;
        let stranger = self.student().await;
        let course = self.unpublish(&teacher, &course).await;
        WithdrawnCourse {
            course,
            buyer,
            paid,
            refunded_buyer,
            stranger,
        }
    }

    /// The course, unpublished by `teacher`.
    pub async fn unpublish(&self, teacher: &User, course: &Course) -> Course {
        let changes = CourseChanges {
            is_published: Some(false),
            ..CourseChanges::default()
        };
        let hidden = self
            .services
            .update_course(teacher, course.id, changes)
            .await
            .unwrap();
        assert!(!hidden.published);
        hidden
    }
}

/// What [`World::withdrawn_course`] sets up.
pub struct WithdrawnCourse {
    /// Unpublished now.
    pub course: Course,
    /// Paid in full and kept.
    pub buyer: User,
    pub paid: Purchase,
    /// Paid, then refunded in full: no longer unlocks it.
    pub refunded_buyer: User,
    /// Never bought it.
    pub stranger: User,
}
