//! The storage ports' contract (`lms_ports::storage`) as executable checks.
//!
//! Every public `async fn` here takes a fresh, empty store and panics when the store breaks
//! the contract written on the port traits. An adapter's test binary runs the whole suite
//! with one line:
//!
//! ```text
//! lms_storage_contract::storage_contract_tests!(fresh_store());
//! ```
//!
//! where `fresh_store()` is an expression of a future yielding `(store, guard)`: the guard is
//! kept alive until the check ends (a Postgres adapter drops its per-test database in the
//! guard's `Drop`; an in-memory adapter passes `()`). Every check runs on a multi-threaded
//! runtime, so the concurrency checks race for real.
//!
//! Timestamps used here have microsecond precision, the resolution of PostgreSQL's
//! `timestamptz`: a store must round-trip them exactly.

// A test-support library: a failed check is a panic, as in any test.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failing unwrap is a failing test"
)]

use lms_domain::{
    Bill, CheckoutSession, Conversion, Course, CourseId, CourseText, Currency, DisputeOutcome,
    Email, Money, PaymentDetails, PaymentFact, PaymentFacts, Purchase, PurchaseId, PurchaseStatus,
    Role, User, UserId, UserName,
};
use lms_ports::{
    Applied, AuditLog, BuyerView, CourseRepo, DeliveryKind, DeploymentClaim, DeploymentRegistry,
    EventDelivery, EventEnvelope, EventInbox, EventOutcome, FactUpdate, InboxRecord, PageRequest,
    PaymentsMode, PurchaseRepo, PurchasedCourse, RepoError, StorageHealth, Unapplied, UserRepo,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

mod audit;
pub mod backfill;
mod commerce;
mod inbox;
mod reconciliation;

pub use audit::*;
pub use commerce::*;
pub use inbox::*;
pub use reconciliation::*;

/// Everything the suite needs from a store.
pub trait Store:
    UserRepo
    + CourseRepo
    + PurchaseRepo
    + EventInbox
    + AuditLog
    + DeploymentRegistry
    + StorageHealth
    + Clone
{
}

impl<S> Store for S where
    S: UserRepo
        + CourseRepo
        + PurchaseRepo
        + EventInbox
        + AuditLog
        + DeploymentRegistry
        + StorageHealth
        + Clone
{
}

/// Expands to one `#[tokio::test]` per contract check. The argument is an expression
/// evaluated afresh in every test, yielding a future of `(store, guard)`.
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! storage_contract_tests {
    ($fresh:expr) => {
        $crate::storage_contract_tests!(@each $fresh;
            ping_answers,
            users_round_trip_exactly,
            users_unknown_are_none,
            users_emails_are_unique_case_insensitively,
            users_session_generation_starts_at_zero_and_each_end_adds_one,
            users_end_sessions_of_unknown_is_not_found,
            users_set_role_round_trips,
            users_set_role_of_unknown_is_not_found,
            courses_round_trip_exactly,
            courses_ids_are_unique,
            courses_update_overwrites_every_field,
            courses_update_of_unknown_is_not_found,
            published_courses_are_newest_first_ties_by_id_and_paged,
            purchases_round_trip_every_field,
            purchases_unknown_are_none,
            purchases_ids_are_unique,
            purchases_one_active_slot_per_user_and_course,
            purchases_failure_releases_the_slot_and_late_payment_does_not_take_it_back,
            purchases_listed_for_user_and_course_newest_first_ties_by_id,
            buyer_view_reads_the_user_the_course_and_its_purchases_newest_first,
            attach_checkout_records_the_session,
            attach_checkout_unknown_is_not_found,
            attach_checkout_session_ids_are_unique,
            apply_facts_applies_an_event_exactly_once,
            apply_facts_unknown_purchase_is_not_found_and_records_no_event,
            apply_facts_without_event_is_idempotent,
            apply_facts_returns_the_saved_purchase,
            apply_facts_returns_the_buyers_other_purchases_of_the_course,
            apply_facts_links_the_first_payment_intent,
            apply_facts_duplicate_payment_intent_writes_nothing,
            apply_facts_keeps_the_earliest_payment_time,
            apply_facts_records_a_delivered_event_in_the_inbox,
            apply_facts_records_a_mismatched_payment_as_held,
            apply_facts_redelivery_only_counts,
            apply_facts_redelivery_of_an_unsettled_event_only_counts,
            apply_facts_replay_of_a_settled_event_changes_nothing,
            apply_facts_replay_of_an_unsettled_event_applies_and_overwrites_its_outcome,
            apply_facts_replay_of_an_event_not_in_the_inbox_applies_and_records_it,
            apply_facts_refused_replay_records_nothing,
            record_event_inserts_a_new_event_with_its_outcome,
            record_event_redelivery_only_counts_whatever_the_outcome,
            count_redelivery_counts_a_recorded_event_whatever_its_outcome_and_nothing_else,
            record_event_refuses_applied_and_held_outcomes,
            record_event_replay_overwrites_an_unsettled_outcome,
            record_event_replay_leaves_a_settled_event_alone,
            mark_failed_marks_any_event_failed_and_a_replay_applies_it_again,
            inbox_lists_most_recently_received_first_ties_by_id_and_paged,
            inbox_lists_filtered_by_outcome_and_since,
            inbox_knows_which_event_ids_it_holds,
            inbox_prunes_only_old_payloads_oldest_first_up_to_the_limit,
            reconciliation_claims_pending_unheld_purchases_created_before_the_cutoff_oldest_first,
            reconciliation_claims_are_leased_until_claimed_until,
            held_lists_purchases_held_for_review_oldest_first_ties_by_id_and_paged,
            held_and_claimed_purchases_follow_the_captured_payment_and_the_bill,
            bills_captured_payments_and_details_round_trip_through_every_read,
            payment_details_keep_the_first_value_learned,
            gateway_customers_link_once_and_the_first_link_wins,
            concurrent_gateway_customer_links_all_get_the_same_customer,
            refund_lease_is_granted_then_busy_until_released_or_run_out,
            concurrent_refund_lease_takers_get_exactly_one_lease,
            revenue_sums_each_course_s_sales_per_currency_as_computed_by_hand,
            revenue_without_sales_in_the_range_is_empty,
            audit_entries_round_trip_every_field,
            audit_lists_newest_first_ties_by_append_order_and_paged,
            unlocked_lists_completed_purchases_with_their_courses,
            history_lists_every_purchase_of_the_user_newest_first_ties_by_id_and_paged,
            concurrent_deliveries_of_one_event_apply_once,
            concurrent_replays_of_one_failed_event_apply_once,
            concurrent_reconciliation_claims_are_disjoint,
            concurrent_checkouts_of_one_course_let_exactly_one_win,
            concurrent_events_of_one_purchase_lose_no_fact,
            concurrent_payments_of_two_purchases_of_one_course_see_each_other,
            concurrent_session_ends_lose_no_increment,
            deployment_first_claim_records_then_the_same_mode_matches,
            deployment_another_mode_conflicts_and_the_first_stays_recorded,
            deployment_data_without_a_recorded_mode_is_claimed_by_the_first_caller,
            concurrent_first_claims_of_two_modes_record_exactly_one,
        );
    };
    (@each $fresh:expr; $($check:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (store, guard) = $fresh.await;
                $crate::$check(store).await;
                drop(guard);
            }
        )+
    };
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A fixed instant plus `seconds`, with a microsecond part so that precision is exercised.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_000_000 + seconds).unwrap()
        + Duration::microseconds(123_456)
}

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap()
}

pub fn money(minor: i64, code: &str) -> Money {
    Money::new(minor, Currency::parse(code).unwrap()).unwrap()
}

fn fresh_id() -> Uuid {
    Uuid::new_v4()
}

pub fn new_user(email: &str, role: Role) -> User {
    User {
        id: UserId::from_uuid(fresh_id()),
        name: UserName::parse("Ada Lovelace").unwrap(),
        email: Email::parse(email).unwrap(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        session_generation: User::FIRST_SESSION_GENERATION,
        created_at: at(0),
    }
}

pub fn new_course(
    instructor: UserId,
    price: Money,
    published: bool,
    created_at: OffsetDateTime,
) -> Course {
    Course {
        id: CourseId::from_uuid(fresh_id()),
        instructor_id: instructor,
        title: CourseText::title("Rust for the web").unwrap(),
        subtitle: Some(CourseText::subtitle("From zero to production").unwrap()),
        description: None,
        category: Some(CourseText::category("programming").unwrap()),
        level: None,
        price,
        published,
        created_at,
        updated_at: created_at,
    }
}

/// A user who teaches and a user who buys.
pub async fn seed_people<S: Store>(store: &S) -> (User, User) {
    let instructor = new_user(
        &format!("teacher-{}@example.com", fresh_id().simple()),
        Role::Instructor,
    );
    let buyer = new_user(
        &format!("buyer-{}@example.com", fresh_id().simple()),
        Role::Student,
    );
    store.create_user(&instructor).await.unwrap();
    store.create_user(&buyer).await.unwrap();
    (instructor, buyer)
}

/// A published course of `instructor` at $19.99, created at `created_at`.
pub async fn seed_course<S: Store>(
    store: &S,
    instructor: &User,
    created_at: OffsetDateTime,
) -> Course {
    let course = new_course(instructor.id, usd(1999), true, created_at);
    store.create_course(&course).await.unwrap();
    course
}

/// What [`seed_purchase`] stored.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub instructor: User,
    pub buyer: User,
    pub course: Course,
    pub purchase: Purchase,
}

/// [`seed_people`], a course of theirs created at `at(0)`, and a purchase of it begun by the
/// buyer at `at(1)`, all stored.
pub async fn seed_purchase<S: Store>(store: &S) -> Seeded {
    let (instructor, buyer) = seed_people(store).await;
    let course = seed_course(store, &instructor, at(0)).await;
    let purchase = begin(&buyer, &course, at(1));
    store.create_purchase(&purchase).await.unwrap();
    Seeded {
        instructor,
        buyer,
        course,
        purchase,
    }
}

/// The two `charge.refunded` deliveries [`record_payload_events`] applies: event id and raw
/// payload, one JSON (kept as it came) and one not (kept for audit as a JSON string).
const PAYLOAD_EVENTS: [(&str, &str); 2] = [
    ("evt_json", r#"{"id":"evt_json","data":{"amount":1999}}"#),
    ("evt_text", "not json"),
];

/// Applies two `charge.refunded` events to `purchase` at `at(2)`, teaching it nothing:
/// `evt_json` with the JSON payload `{"id":"evt_json","data":{"amount":1999}}` and `evt_text`
/// with the payload `not json`. The adapter's own tests then read how each was stored.
pub async fn record_payload_events<S: Store>(store: &S, purchase: PurchaseId) {
    for (id, payload) in PAYLOAD_EVENTS {
        let update = FactUpdate {
            purchase_id: purchase,
            facts: vec![],
            payment_intent_id: None,
            details: PaymentDetails::default(),
            event: Some(EventDelivery {
                envelope: EventEnvelope {
                    id: id.to_owned(),
                    event_type: "charge.refunded".to_owned(),
                    livemode: false,
                    created: at(1),
                    payload: payload.to_owned(),
                },
                kind: DeliveryKind::Delivered,
            }),
            at: at(2),
        };
        store.apply_facts(&update).await.unwrap();
    }
}

pub fn begin(buyer: &User, course: &Course, now: OffsetDateTime) -> Purchase {
    Purchase::begin(PurchaseId::from_uuid(fresh_id()), buyer.id, course, now).unwrap()
}

/// The one fact that pays a seeded course (USD 19.99) in full.
pub fn paid_in_full() -> Vec<PaymentFact> {
    vec![PaymentFact::PaymentSucceeded {
        amount: usd(1999),
        at: None,
    }]
}

pub fn session(id: &str, expires_at: OffsetDateTime) -> CheckoutSession {
    CheckoutSession {
        id: id.to_owned(),
        url: format!("https://checkout.stripe.com/c/pay/{id}"),
        expires_at,
    }
}

/// A test-mode `checkout.session.completed` event `id`, created by the gateway at `at(-60)`,
/// with a JSON payload naming it.
pub fn envelope(id: &str) -> EventEnvelope {
    EventEnvelope {
        id: id.to_owned(),
        event_type: "checkout.session.completed".to_owned(),
        livemode: false,
        created: at(-60),
        payload: format!(r#"{{"id":"{id}","object":"event","type":"checkout.session.completed"}}"#),
    }
}

/// The [`envelope`] `id` delivered by the gateway.
pub fn event(id: &str) -> EventDelivery {
    EventDelivery {
        envelope: envelope(id),
        kind: DeliveryKind::Delivered,
    }
}

/// The [`envelope`] `id` replayed by an operator.
pub fn replayed(id: &str) -> EventDelivery {
    EventDelivery {
        envelope: envelope(id),
        kind: DeliveryKind::Replayed,
    }
}

/// An outcome for [`EventInbox::record_event`].
pub fn unapplied(
    outcome: EventOutcome,
    error: Option<&str>,
    purchase_id: Option<PurchaseId>,
) -> Unapplied {
    Unapplied {
        outcome,
        error: error.map(str::to_owned),
        purchase_id,
    }
}

/// The inbox row a first delivery of `envelope` at `received` writes.
pub fn first_row(
    envelope: &EventEnvelope,
    received: OffsetDateTime,
    outcome: EventOutcome,
    error: Option<&str>,
    purchase_id: Option<PurchaseId>,
) -> InboxRecord {
    InboxRecord {
        event_id: envelope.id.clone(),
        event_type: envelope.event_type.clone(),
        livemode: envelope.livemode,
        created: envelope.created,
        first_received_at: received,
        last_received_at: received,
        delivery_count: 1,
        outcome,
        error: error.map(str::to_owned),
        purchase_id,
        payload: Some(envelope.payload.clone()),
    }
}

pub fn update(
    purchase: PurchaseId,
    facts: Vec<PaymentFact>,
    event_id: Option<&str>,
    now: OffsetDateTime,
) -> FactUpdate {
    FactUpdate {
        purchase_id: purchase,
        facts,
        payment_intent_id: None,
        details: PaymentDetails::default(),
        event: event_id.map(event),
        at: now,
    }
}

fn applied(result: Applied) -> Purchase {
    match result {
        Applied::Applied { purchase, .. } => purchase,
        Applied::DuplicateEvent => panic!("expected the update to apply, got DuplicateEvent"),
    }
}

/// Applies the [`update`] of these arguments, which must apply (not be a duplicate).
async fn apply<S: Store>(
    store: &S,
    purchase: PurchaseId,
    facts: Vec<PaymentFact>,
    event_id: Option<&str>,
    now: OffsetDateTime,
) -> Purchase {
    applied(
        store
            .apply_facts(&update(purchase, facts, event_id, now))
            .await
            .unwrap(),
    )
}

async fn get<S: Store>(store: &S, id: PurchaseId) -> Purchase {
    store
        .get_purchase(id)
        .await
        .unwrap()
        .expect("the purchase exists")
}

/// The inbox row of `event_id`, which must exist.
async fn row<S: Store>(store: &S, event_id: &str) -> InboxRecord {
    store
        .get_event(event_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{event_id} is in the inbox"))
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

pub async fn ping_answers<S: Store>(store: S) {
    let detail = store.ping().await.unwrap();
    assert!(!detail.trim().is_empty(), "ping should say something");
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

pub async fn users_round_trip_exactly<S: Store>(store: S) {
    let mut user = new_user("Grace.Hopper@Example.com", Role::Admin);
    user.created_at = at(42);
    user.session_generation = 7;
    store.create_user(&user).await.unwrap();

    let loaded = store
        .get_user(user.id)
        .await
        .unwrap()
        .expect("created user");
    assert_eq!(loaded, user);
    assert_eq!(loaded.name, user.name);
    assert_eq!(loaded.email.as_str(), "grace.hopper@example.com");
    assert_eq!(loaded.password_hash, user.password_hash);
    assert_eq!(loaded.created_at, at(42));
    assert_eq!(loaded.session_generation, 7);

    let by_email = store
        .find_user_by_email(&Email::parse("GRACE.HOPPER@example.COM").unwrap())
        .await
        .unwrap();
    assert_eq!(by_email, Some(user));
}

pub async fn users_unknown_are_none<S: Store>(store: S) {
    let (_, buyer) = seed_people(&store).await;
    assert_eq!(
        store.get_user(UserId::from_uuid(fresh_id())).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_user_by_email(&Email::parse("nobody@example.com").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_user(buyer.id).await.unwrap(), Some(buyer));
}

pub async fn users_emails_are_unique_case_insensitively<S: Store>(store: S) {
    let first = new_user("ada@example.com", Role::Student);
    store.create_user(&first).await.unwrap();

    let mut second = new_user("ADA@Example.COM", Role::Instructor);
    second.name = UserName::parse("Someone Else").unwrap();
    assert_eq!(
        store.create_user(&second).await,
        Err(RepoError::Duplicate("email"))
    );

    // Nothing of the refused user was written, and the first is intact.
    assert_eq!(store.get_user(second.id).await.unwrap(), None);
    let found = store
        .find_user_by_email(&Email::parse("Ada@example.com").unwrap())
        .await
        .unwrap();
    assert_eq!(found, Some(first));

    // A different address is fine.
    store
        .create_user(&new_user("ada2@example.com", Role::Student))
        .await
        .unwrap();
}

pub async fn users_session_generation_starts_at_zero_and_each_end_adds_one<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let generation = |user: &User| {
        let store = store.clone();
        let id = user.id;
        async move {
            store
                .get_user(id)
                .await
                .unwrap()
                .expect("the user exists")
                .session_generation
        }
    };
    assert_eq!(generation(&buyer).await, 0);
    assert_eq!(store.end_sessions(buyer.id).await, Ok(1));
    assert_eq!(store.end_sessions(buyer.id).await, Ok(2));
    assert_eq!(generation(&buyer).await, 2);
    let by_email = store.find_user_by_email(&buyer.email).await.unwrap();
    assert_eq!(by_email.map(|u| u.session_generation), Some(2));
    // Only that user's sessions end, and nothing else of the user changes.
    assert_eq!(generation(&instructor).await, 0);
    let loaded = store.get_user(buyer.id).await.unwrap().unwrap();
    assert_eq!(
        loaded,
        User {
            session_generation: 2,
            ..buyer
        }
    );
}

pub async fn users_end_sessions_of_unknown_is_not_found<S: Store>(store: S) {
    let (_, buyer) = seed_people(&store).await;
    assert_eq!(
        store.end_sessions(UserId::from_uuid(fresh_id())).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(store.get_user(buyer.id).await.unwrap(), Some(buyer));
}

pub async fn users_set_role_round_trips<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let admin = store.set_role(&buyer.email, Role::Admin).await.unwrap();
    assert_eq!(
        admin,
        User {
            role: Role::Admin,
            ..buyer.clone()
        }
    );
    assert_eq!(store.get_user(buyer.id).await.unwrap(), Some(admin.clone()));
    let shouted = Email::parse(&buyer.email.as_str().to_uppercase()).unwrap();
    assert_eq!(
        store.find_user_by_email(&shouted).await.unwrap(),
        Some(admin)
    );
    // Only that user changed.
    assert_eq!(
        store.get_user(instructor.id).await.unwrap(),
        Some(instructor.clone())
    );

    // And back; the role it already has is no change.
    assert_eq!(
        store.set_role(&shouted, Role::Student).await,
        Ok(buyer.clone())
    );
    assert_eq!(store.get_user(buyer.id).await.unwrap(), Some(buyer));
    assert_eq!(
        store.set_role(&instructor.email, Role::Instructor).await,
        Ok(instructor.clone())
    );
    assert_eq!(
        store.get_user(instructor.id).await.unwrap(),
        Some(instructor)
    );
}

pub async fn users_set_role_of_unknown_is_not_found<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert_eq!(
        store.set_role(&nobody, Role::Admin).await,
        Err(RepoError::NotFound)
    );
    assert_eq!(store.find_user_by_email(&nobody).await.unwrap(), None);
    assert_eq!(store.get_user(buyer.id).await.unwrap(), Some(buyer));
    assert_eq!(
        store.get_user(instructor.id).await.unwrap(),
        Some(instructor)
    );
}

// ---------------------------------------------------------------------------------------------
// Courses
// ---------------------------------------------------------------------------------------------

pub async fn courses_round_trip_exactly<S: Store>(store: S) {
    let (instructor, _) = seed_people(&store).await;
    let mut course = new_course(instructor.id, money(2500, "eur"), false, at(10));
    course.subtitle = Some(CourseText::subtitle("").unwrap()); // empty but present is not absent
    course.description =
        Some(CourseText::description("Ownership, borrowing, async.\nÜnïcødé ✓").unwrap());
    course.category = None;
    course.level = Some(CourseText::level("beginner").unwrap());
    course.updated_at = at(11);
    store.create_course(&course).await.unwrap();
    assert_eq!(
        store.get_course(course.id).await.unwrap(),
        Some(course.clone())
    );

    let free = new_course(instructor.id, money(0, "JPY"), true, at(12));
    store.create_course(&free).await.unwrap();
    let loaded = store.get_course(free.id).await.unwrap().unwrap();
    assert_eq!(loaded, free);
    assert_eq!(loaded.price.currency().code(), "JPY");
    assert_eq!(loaded.subtitle, free.subtitle);
    assert_eq!(loaded.description, None);

    assert_eq!(
        store
            .get_course(CourseId::from_uuid(fresh_id()))
            .await
            .unwrap(),
        None
    );
}

pub async fn courses_ids_are_unique<S: Store>(store: S) {
    let (instructor, _) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let mut again = course.clone();
    again.title = CourseText::title("Another title").unwrap();
    assert_eq!(
        store.create_course(&again).await,
        Err(RepoError::Duplicate("id"))
    );
    assert_eq!(store.get_course(course.id).await.unwrap(), Some(course));
}

pub async fn courses_update_overwrites_every_field<S: Store>(store: S) {
    let (instructor, other) = seed_people(&store).await;
    let course = new_course(instructor.id, usd(1999), false, at(0));
    store.create_course(&course).await.unwrap();

    let changed = Course {
        id: course.id,
        instructor_id: other.id,
        title: CourseText::title("Advanced Rust").unwrap(),
        subtitle: None,
        description: Some(CourseText::description("All of it").unwrap()),
        category: Some(CourseText::category("systems").unwrap()),
        level: Some(CourseText::level("advanced").unwrap()),
        price: money(4900, "GBP"),
        published: true,
        created_at: at(5),
        updated_at: at(99),
    };
    store.update_course(&changed).await.unwrap();
    assert_eq!(
        store.get_course(course.id).await.unwrap(),
        Some(changed.clone())
    );

    // And back to absent/other values: every field is written, None included.
    store.update_course(&course).await.unwrap();
    assert_eq!(store.get_course(course.id).await.unwrap(), Some(course));
}

pub async fn courses_update_of_unknown_is_not_found<S: Store>(store: S) {
    let (instructor, _) = seed_people(&store).await;
    let ghost = new_course(instructor.id, usd(1999), true, at(0));
    assert_eq!(store.update_course(&ghost).await, Err(RepoError::NotFound));
    assert_eq!(store.get_course(ghost.id).await.unwrap(), None);
}

pub async fn published_courses_are_newest_first_ties_by_id_and_paged<S: Store>(store: S) {
    let (instructor, _) = seed_people(&store).await;
    let mut published = Vec::new();
    // Seven published courses: three share one instant, two share another.
    for created in [at(1), at(3), at(3), at(3), at(2), at(5), at(5)] {
        published.push(seed_course(&store, &instructor, created).await);
    }
    for created in [at(4), at(6)] {
        store
            .create_course(&new_course(instructor.id, usd(999), false, created))
            .await
            .unwrap();
    }
    // A course unpublished after creation is not listed either.
    let mut withdrawn = seed_course(&store, &instructor, at(7)).await;
    withdrawn.published = false;
    store.update_course(&withdrawn).await.unwrap();

    let mut expected = published.clone();
    expected.sort_by_key(|item| std::cmp::Reverse((item.created_at, item.id)));

    let all = store
        .list_published_courses(PageRequest::new(1, 100))
        .await
        .unwrap();
    assert_eq!(all.total, 7);
    assert_eq!(all.items, expected);

    let mut paged = Vec::new();
    for page in 1..=3 {
        let got = store
            .list_published_courses(PageRequest::new(page, 3))
            .await
            .unwrap();
        assert_eq!(got.total, 7, "page {page}");
        assert_eq!(got.items.len(), if page < 3 { 3 } else { 1 }, "page {page}");
        paged.extend(got.items);
    }
    assert_eq!(paged, expected, "pages neither overlap nor skip");

    let beyond = store
        .list_published_courses(PageRequest::new(4, 3))
        .await
        .unwrap();
    assert_eq!(beyond.total, 7);
    assert!(beyond.items.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Purchases: creation, lookups, the active slot
// ---------------------------------------------------------------------------------------------

pub async fn purchases_round_trip_every_field<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;

    // Every field set, each fact column distinct from its neighbours.
    let full = Purchase {
        id: PurchaseId::from_uuid(fresh_id()),
        user_id: buyer.id,
        course_id: course.id,
        price: usd(1999),
        checkout: Some(session("cs_test_round_trip", at(3600))),
        payment_intent_id: Some("pi_round_trip".to_owned()),
        facts: PaymentFacts {
            captured: Some(money(1500, "EUR")),
            paid_at: Some(at(7)),
            bill: Some(
                Bill::new(
                    money(1850, "EUR"),
                    money(400, "EUR"),
                    money(50, "EUR"),
                    money(1500, "EUR"),
                    Some(Conversion::new(usd(1999), usd(1620)).unwrap()),
                )
                .unwrap(),
            ),
            attempt_failed: true,
            processing: true,
            async_payment_failed: true,
            checkout_expired: true,
            checkout_not_started: true,
            refunded: Some(money(700, "GBP")),
            dispute_opened: true,
            dispute_won: true,
            dispute_lost: true,
            accepted_by_operator: true,
        },
        details: PaymentDetails {
            receipt_url: Some("https://pay.stripe.com/receipts/payment/rcpt_round_trip".to_owned()),
            promotion_code: Some("promo_round_trip".to_owned()),
        },
        holds_active_slot: false,
        created_at: at(1),
        updated_at: at(2),
    };
    store.create_purchase(&full).await.unwrap();
    let loaded = get(&store, full.id).await;
    assert_eq!(loaded, full);
    assert_eq!(loaded.status(), PurchaseStatus::Refunded);

    // The other extreme: nothing known yet, slot held.
    let fresh = begin(&buyer, &course, at(5));
    store.create_purchase(&fresh).await.unwrap();
    let loaded = get(&store, fresh.id).await;
    assert_eq!(loaded, fresh);
    assert_eq!(loaded.facts, PaymentFacts::default());
    assert!(loaded.holds_active_slot);
    assert_eq!(loaded.status(), PurchaseStatus::Pending);

    // Single-field variants: each fact survives on its own.
    let variants: Vec<fn(&mut PaymentFacts)> = vec![
        |f| f.captured = Some(usd(1999)),
        |f| f.captured = Some(usd(0)),
        |f| f.paid_at = Some(at(9)),
        |f| f.bill = Some(Bill::of_price(usd(1999))),
        |f| f.attempt_failed = true,
        |f| f.processing = true,
        |f| f.async_payment_failed = true,
        |f| f.checkout_expired = true,
        |f| f.checkout_not_started = true,
        |f| f.refunded = Some(usd(1999)),
        |f| f.dispute_opened = true,
        |f| f.dispute_won = true,
        |f| f.dispute_lost = true,
        |f| f.accepted_by_operator = true,
    ];
    for (i, set) in variants.into_iter().enumerate() {
        let mut purchase = begin(&buyer, &course, at(10 + i64::try_from(i).unwrap()));
        set(&mut purchase.facts);
        purchase.holds_active_slot = false;
        store.create_purchase(&purchase).await.unwrap();
        assert_eq!(get(&store, purchase.id).await, purchase, "variant {i}");
    }
    let details = [
        PaymentDetails {
            receipt_url: Some("https://pay.stripe.com/receipts/alone".to_owned()),
            promotion_code: None,
        },
        PaymentDetails {
            receipt_url: None,
            promotion_code: Some("promo_alone".to_owned()),
        },
    ];
    for (i, details) in details.into_iter().enumerate() {
        let mut purchase = begin(&buyer, &course, at(40 + i64::try_from(i).unwrap()));
        purchase.details = details;
        purchase.holds_active_slot = false;
        store.create_purchase(&purchase).await.unwrap();
        assert_eq!(get(&store, purchase.id).await, purchase, "details {i}");
    }
}

pub async fn purchases_unknown_are_none<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        course,
        ..
    } = seed_purchase(&store).await;
    assert_eq!(
        store
            .get_purchase(PurchaseId::from_uuid(fresh_id()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.find_by_checkout_session("cs_unknown").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_by_payment_intent("pi_unknown").await.unwrap(),
        None
    );
    assert!(store
        .list_for_user_and_course(buyer.id, CourseId::from_uuid(fresh_id()))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_for_user_and_course(instructor.id, course.id)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_unlocked_for_user(buyer.id)
        .await
        .unwrap()
        .is_empty());
}

pub async fn purchases_ids_are_unique<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other = seed_course(&store, &instructor, at(0)).await;
    let purchase = begin(&buyer, &course, at(1));
    store.create_purchase(&purchase).await.unwrap();

    // Same id, another course (so the slot is not the conflict).
    let mut clash = begin(&buyer, &other, at(2));
    clash.id = purchase.id;
    assert_eq!(
        store.create_purchase(&clash).await,
        Err(RepoError::Duplicate("id"))
    );
    assert_eq!(get(&store, purchase.id).await, purchase);
    // The refused purchase did not take the slot of the other course.
    store
        .create_purchase(&begin(&buyer, &other, at(3)))
        .await
        .unwrap();
}

pub async fn purchases_one_active_slot_per_user_and_course<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let other_buyer = new_user("other-buyer@example.com", Role::Student);
    store.create_user(&other_buyer).await.unwrap();

    let first = begin(&buyer, &course, at(1));
    store.create_purchase(&first).await.unwrap();
    let second = begin(&buyer, &course, at(2));
    assert_eq!(
        store.create_purchase(&second).await,
        Err(RepoError::ActivePurchaseExists)
    );
    assert_eq!(
        store.get_purchase(second.id).await.unwrap(),
        None,
        "nothing written"
    );

    // A completed purchase holds the slot too.
    apply(&store, first.id, paid_in_full(), Some("evt_paid"), at(3)).await;
    assert_eq!(
        store.create_purchase(&begin(&buyer, &course, at(4))).await,
        Err(RepoError::ActivePurchaseExists)
    );

    // The slot is per user and per course.
    store
        .create_purchase(&begin(&other_buyer, &course, at(5)))
        .await
        .unwrap();
    store
        .create_purchase(&begin(&buyer, &other_course, at(6)))
        .await
        .unwrap();

    // A purchase created without the slot (already closed) never conflicts.
    let mut closed = begin(&buyer, &course, at(7));
    closed.facts.checkout_not_started = true;
    closed.holds_active_slot = false;
    store.create_purchase(&closed).await.unwrap();
    assert_eq!(
        store
            .list_for_user_and_course(buyer.id, course.id)
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn purchases_failure_releases_the_slot_and_late_payment_does_not_take_it_back<
    S: Store,
>(
    store: S,
) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let first = begin(&buyer, &course, at(1));
    store.create_purchase(&first).await.unwrap();

    let failed = apply(
        &store,
        first.id,
        vec![PaymentFact::CheckoutExpired],
        Some("evt_expired"),
        at(2),
    )
    .await;
    assert_eq!(failed.status(), PurchaseStatus::Failed);
    assert!(!failed.holds_active_slot);
    assert_eq!(get(&store, first.id).await, failed);

    let second = begin(&buyer, &course, at(3));
    store.create_purchase(&second).await.unwrap();

    // A payment that arrives late for the failed purchase completes it, without the slot.
    let late = apply(&store, first.id, paid_in_full(), Some("evt_late"), at(4)).await;
    assert_eq!(late.status(), PurchaseStatus::Completed);
    assert!(!late.holds_active_slot);
    assert!(get(&store, second.id).await.holds_active_slot);
    assert_eq!(
        store.create_purchase(&begin(&buyer, &course, at(5))).await,
        Err(RepoError::ActivePurchaseExists)
    );
}

pub async fn purchases_listed_for_user_and_course_newest_first_ties_by_id<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let mut created = Vec::new();
    // Each purchase is closed before the next starts; three share one instant.
    for (i, when) in [at(1), at(2), at(2), at(2), at(3)].into_iter().enumerate() {
        let purchase = begin(&buyer, &course, when);
        store.create_purchase(&purchase).await.unwrap();
        let expired = apply(
            &store,
            purchase.id,
            vec![PaymentFact::CheckoutExpired],
            Some(&format!("evt_{i}")),
            when,
        )
        .await;
        created.push(expired);
    }
    store
        .create_purchase(&begin(&buyer, &other_course, at(9)))
        .await
        .unwrap();

    let mut expected = created;
    expected.sort_by_key(|item| std::cmp::Reverse((item.created_at, item.id)));
    assert_eq!(
        store
            .list_for_user_and_course(buyer.id, course.id)
            .await
            .unwrap(),
        expected
    );
}

pub async fn buyer_view_reads_the_user_the_course_and_its_purchases_newest_first<S: Store>(
    store: S,
) {
    let (instructor, buyer) = seed_people(&store).await;
    let (_, stranger) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    // The buyer's session generation is not the initial one, so the user read is the stored one.
    store.end_sessions(buyer.id).await.unwrap();
    let buyer = store.get_user(buyer.id).await.unwrap().unwrap();

    // No purchase yet: the user and the course, nothing else.
    let view = store
        .buyer_view(buyer.id, course.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view,
        BuyerView {
            user: buyer.clone(),
            course: Some(course.clone()),
            purchases: Vec::new(),
        }
    );

    let mut mine = Vec::new();
    for (i, when) in [at(1), at(2), at(2), at(3)].into_iter().enumerate() {
        let purchase = begin(&buyer, &course, when);
        store.create_purchase(&purchase).await.unwrap();
        let event = format!("evt_view_{i}");
        mine.push(
            apply(
                &store,
                purchase.id,
                vec![PaymentFact::CheckoutExpired],
                Some(&event),
                when,
            )
            .await,
        );
    }
    // Neither another course's purchase nor another buyer's of this course belongs to the view.
    store
        .create_purchase(&begin(&buyer, &other_course, at(9)))
        .await
        .unwrap();
    store
        .create_purchase(&begin(&stranger, &course, at(9)))
        .await
        .unwrap();
    let paid = begin(&buyer, &course, at(4));
    store.create_purchase(&paid).await.unwrap();
    mine.push(
        apply(
            &store,
            paid.id,
            paid_in_full(),
            Some("evt_view_paid"),
            at(5),
        )
        .await,
    );

    let listed = store
        .list_for_user_and_course(buyer.id, course.id)
        .await
        .unwrap();
    let view = store
        .buyer_view(buyer.id, course.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.user, buyer);
    assert_eq!(view.course, Some(course.clone()));
    assert_eq!(
        view.purchases, listed,
        "as list_for_user_and_course lists them"
    );
    mine.sort_by_key(|item| std::cmp::Reverse((item.created_at, item.id)));
    assert_eq!(view.purchases, mine);

    // An unknown course: the user, no course and no purchase.
    assert_eq!(
        store
            .buyer_view(buyer.id, CourseId::from_uuid(fresh_id()))
            .await
            .unwrap(),
        Some(BuyerView {
            user: buyer.clone(),
            course: None,
            purchases: Vec::new(),
        })
    );
    // An unknown user: nothing, whatever the course.
    assert_eq!(
        store
            .buyer_view(UserId::from_uuid(fresh_id()), course.id)
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Checkout sessions
// ---------------------------------------------------------------------------------------------

pub async fn attach_checkout_records_the_session<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;

    let cs = session("cs_test_attach", at(1800));
    let saved = store
        .attach_checkout(purchase.id, &cs, at(2))
        .await
        .unwrap();
    let mut expected = purchase.clone();
    expected.attach_checkout(cs.clone(), at(2));
    assert_eq!(saved, expected);
    assert_eq!(get(&store, purchase.id).await, expected);
    assert_eq!(
        store
            .find_by_checkout_session("cs_test_attach")
            .await
            .unwrap(),
        Some(expected.clone())
    );

    // Re-attaching the same session to the same purchase is allowed (a retried request).
    let again = store
        .attach_checkout(purchase.id, &cs, at(3))
        .await
        .unwrap();
    assert_eq!(again.checkout, Some(cs));
    assert_eq!(again.updated_at, at(3));
}

pub async fn attach_checkout_unknown_is_not_found<S: Store>(store: S) {
    let result = store
        .attach_checkout(
            PurchaseId::from_uuid(fresh_id()),
            &session("cs_ghost", at(60)),
            at(1),
        )
        .await;
    assert_eq!(result, Err(RepoError::NotFound));
    assert_eq!(
        store.find_by_checkout_session("cs_ghost").await.unwrap(),
        None
    );
}

pub async fn attach_checkout_session_ids_are_unique<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let first = begin(&buyer, &course, at(1));
    let second = begin(&buyer, &other_course, at(1));
    store.create_purchase(&first).await.unwrap();
    store.create_purchase(&second).await.unwrap();

    let owner = store
        .attach_checkout(first.id, &session("cs_shared", at(600)), at(2))
        .await
        .unwrap();
    let clash = store
        .attach_checkout(second.id, &session("cs_shared", at(900)), at(3))
        .await;
    assert_eq!(clash, Err(RepoError::Duplicate("checkout_session_id")));
    assert_eq!(
        get(&store, second.id).await,
        second,
        "the refused attach wrote nothing"
    );
    assert_eq!(
        store.find_by_checkout_session("cs_shared").await.unwrap(),
        Some(owner)
    );
}

// ---------------------------------------------------------------------------------------------
// Fact updates
// ---------------------------------------------------------------------------------------------

pub async fn apply_facts_applies_an_event_exactly_once<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;

    let paid = apply(&store, purchase.id, paid_in_full(), Some("evt_once"), at(2)).await;
    assert_eq!(paid.status(), PurchaseStatus::Completed);
    assert_eq!(paid.updated_at, at(2));

    // Redelivered, even claiming other facts: nothing is written.
    let redelivered = update(
        purchase.id,
        vec![PaymentFact::Refunded { total: usd(1999) }],
        Some("evt_once"),
        at(3),
    );
    assert_eq!(
        store.apply_facts(&redelivered).await.unwrap(),
        Applied::DuplicateEvent
    );
    assert_eq!(
        store.apply_facts(&redelivered).await.unwrap(),
        Applied::DuplicateEvent
    );
    let after = get(&store, purchase.id).await;
    assert_eq!(after, paid);
    assert_eq!(after.updated_at, at(2));

    // The event id is the key, whatever purchase a duplicate names.
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let other = begin(&buyer, &other_course, at(4));
    store.create_purchase(&other).await.unwrap();
    let stray = update(
        other.id,
        vec![PaymentFact::CheckoutExpired],
        Some("evt_once"),
        at(5),
    );
    assert_eq!(
        store.apply_facts(&stray).await.unwrap(),
        Applied::DuplicateEvent
    );
    assert_eq!(get(&store, other.id).await, other);
    // Each duplicate was only counted; the row still names the purchase it was applied to.
    assert_eq!(
        row(&store, "evt_once").await,
        InboxRecord {
            last_received_at: at(5),
            delivery_count: 4,
            ..first_row(
                &envelope("evt_once"),
                at(2),
                EventOutcome::Applied,
                None,
                Some(purchase.id)
            )
        }
    );

    // A new event applies.
    let refunded = apply(
        &store,
        purchase.id,
        vec![PaymentFact::Refunded { total: usd(1999) }],
        Some("evt_refund"),
        at(6),
    )
    .await;
    assert_eq!(refunded.status(), PurchaseStatus::Refunded);
}

pub async fn apply_facts_unknown_purchase_is_not_found_and_records_no_event<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let ghost = PurchaseId::from_uuid(fresh_id());
    let paid = paid_in_full();
    assert_eq!(
        store
            .apply_facts(&update(ghost, paid.clone(), Some("evt_orphan"), at(1)))
            .await,
        Err(RepoError::NotFound)
    );
    assert_eq!(
        store
            .apply_facts(&update(ghost, paid.clone(), None, at(1)))
            .await,
        Err(RepoError::NotFound)
    );

    // The event was not recorded: the same event applies to a real purchase afterwards.
    assert_eq!(store.get_event("evt_orphan").await.unwrap(), None);
    let purchase = begin(&buyer, &course, at(2));
    store.create_purchase(&purchase).await.unwrap();
    let result = apply(&store, purchase.id, paid, Some("evt_orphan"), at(3)).await;
    assert_eq!(result.status(), PurchaseStatus::Completed);
}

pub async fn apply_facts_without_event_is_idempotent<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;

    let sync = update(
        purchase.id,
        vec![PaymentFact::PaymentProcessing],
        None,
        at(2),
    );
    let once = applied(store.apply_facts(&sync).await.unwrap());
    assert!(once.facts.processing);
    assert_eq!(once.updated_at, at(2));

    // Known facts change nothing, not even updated_at.
    let twice = applied(
        store
            .apply_facts(&FactUpdate { at: at(3), ..sync })
            .await
            .unwrap(),
    );
    assert_eq!(twice, once);
    assert_eq!(get(&store, purchase.id).await, once);

    // An empty update applies and changes nothing.
    let empty = apply(&store, purchase.id, Vec::new(), None, at(4)).await;
    assert_eq!(empty, once);
}

pub async fn apply_facts_keeps_the_earliest_payment_time<S: Store>(store: S) {
    let Seeded {
        buyer, purchase, ..
    } = seed_purchase(&store).await;
    let paid = |seconds: Option<i64>| {
        vec![PaymentFact::PaymentSucceeded {
            amount: usd(1999),
            at: seconds.map(at),
        }]
    };

    // The charge's report (later) arrives before the session's (earlier), then a sync that
    // knows no time: the earliest time stays, whatever the order.
    let first = apply(
        &store,
        purchase.id,
        paid(Some(40)),
        Some("evt_charge"),
        at(50),
    )
    .await;
    assert_eq!(first.facts.paid_at, Some(at(40)));
    let second = apply(
        &store,
        purchase.id,
        paid(Some(30)),
        Some("evt_session"),
        at(51),
    )
    .await;
    assert_eq!(second.facts.paid_at, Some(at(30)));
    let third = apply(&store, purchase.id, paid(None), None, at(52)).await;
    assert_eq!(third.facts.paid_at, Some(at(30)));
    assert_eq!(
        third.updated_at,
        at(51),
        "a report adding nothing is not a change"
    );

    let stored = get(&store, purchase.id).await;
    assert_eq!(stored, third);
    assert_eq!(stored.paid_at(), at(30));
    assert_eq!(stored.created_at, at(1));
    let unlocked = store.list_unlocked_for_user(buyer.id).await.unwrap();
    assert_eq!(
        unlocked
            .iter()
            .map(|item| item.purchase.paid_at())
            .collect::<Vec<_>>(),
        vec![at(30)]
    );
}

/// `others` of [`Applied::Applied`] for a fact update of `id`: the update must apply.
async fn others_seen<S: Store>(store: &S, update: &FactUpdate) -> (Purchase, Vec<Purchase>) {
    match store.apply_facts(update).await.unwrap() {
        Applied::Applied { purchase, others } => (purchase, others),
        Applied::DuplicateEvent => panic!("expected the update to apply, got DuplicateEvent"),
    }
}

pub async fn apply_facts_returns_the_buyers_other_purchases_of_the_course<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let (_, stranger) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let expired = begin(&buyer, &course, at(1));
    store.create_purchase(&expired).await.unwrap();
    let expired = apply(
        &store,
        expired.id,
        vec![PaymentFact::CheckoutExpired],
        Some("evt_o1"),
        at(1),
    )
    .await;
    let paid = begin(&buyer, &course, at(2));
    store.create_purchase(&paid).await.unwrap();
    let paid = apply(&store, paid.id, paid_in_full(), Some("evt_o2"), at(2)).await;
    let mut target = begin(&buyer, &course, at(3));
    target.holds_active_slot = false;
    store.create_purchase(&target).await.unwrap();
    // Not the buyer's purchases of this course: never among the others.
    store
        .create_purchase(&begin(&buyer, &other_course, at(4)))
        .await
        .unwrap();
    store
        .create_purchase(&begin(&stranger, &course, at(4)))
        .await
        .unwrap();

    let (saved, others) = others_seen(
        &store,
        &update(target.id, paid_in_full(), Some("evt_o3"), at(5)),
    )
    .await;
    assert_eq!(saved.id, target.id);
    assert_eq!(
        others,
        vec![paid.clone(), expired.clone()],
        "newest first, as stored"
    );
    // An update without an event returns them too.
    let (_, others) = others_seen(&store, &update(target.id, paid_in_full(), None, at(6))).await;
    assert_eq!(others, vec![paid, expired]);
    // A buyer's only purchase has none.
    let only = seed_purchase(&store).await.purchase;
    let (_, others) = others_seen(
        &store,
        &update(only.id, paid_in_full(), Some("evt_o4"), at(7)),
    )
    .await;
    assert!(others.is_empty());
}

pub async fn apply_facts_returns_the_saved_purchase<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;
    store
        .attach_checkout(purchase.id, &session("cs_saved", at(3600)), at(2))
        .await
        .unwrap();

    let facts = vec![
        PaymentFact::PaymentAttemptFailed,
        PaymentFact::PaymentSucceeded {
            amount: money(2500, "EUR"),
            at: Some(at(1)),
        },
        PaymentFact::Refunded {
            total: money(100, "EUR"),
        },
        PaymentFact::DisputeOpened,
        PaymentFact::DisputeClosed(DisputeOutcome::Won),
    ];
    let mut expected = get(&store, purchase.id).await;
    for fact in &facts {
        expected.record(*fact, at(5));
    }
    expected.link_payment_intent("pi_saved", at(5));
    let saved = applied(
        store
            .apply_facts(&FactUpdate {
                purchase_id: purchase.id,
                facts,
                payment_intent_id: Some("pi_saved".to_owned()),
                details: PaymentDetails::default(),
                event: Some(event("evt_saved")),
                at: at(5),
            })
            .await
            .unwrap(),
    );
    assert_eq!(saved, expected);
    assert_eq!(saved.status(), PurchaseStatus::Pending, "held for review");
    assert_eq!(get(&store, purchase.id).await, expected);
    assert_eq!(
        store.find_by_checkout_session("cs_saved").await.unwrap(),
        Some(expected)
    );
}

pub async fn apply_facts_links_the_first_payment_intent<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;

    let link = |pi: &str, event_id: &str, when| FactUpdate {
        purchase_id: purchase.id,
        facts: Vec::new(),
        payment_intent_id: Some(pi.to_owned()),
        details: PaymentDetails::default(),
        event: Some(event(event_id)),
        at: when,
    };
    let linked = applied(
        store
            .apply_facts(&link("pi_first", "evt_a", at(2)))
            .await
            .unwrap(),
    );
    assert_eq!(linked.payment_intent_id.as_deref(), Some("pi_first"));
    assert_eq!(linked.updated_at, at(2));
    assert_eq!(
        store.find_by_payment_intent("pi_first").await.unwrap(),
        Some(linked.clone())
    );

    // A different intent later does not replace the first.
    let kept = applied(
        store
            .apply_facts(&link("pi_second", "evt_b", at(3)))
            .await
            .unwrap(),
    );
    assert_eq!(kept, linked);
    assert_eq!(
        store.find_by_payment_intent("pi_second").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_by_payment_intent("pi_first").await.unwrap(),
        Some(linked)
    );
}

pub async fn apply_facts_duplicate_payment_intent_writes_nothing<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let other_course = seed_course(&store, &instructor, at(0)).await;
    let first = begin(&buyer, &course, at(1));
    let second = begin(&buyer, &other_course, at(1));
    store.create_purchase(&first).await.unwrap();
    store.create_purchase(&second).await.unwrap();

    let with_intent = |id, event_id: &str| FactUpdate {
        purchase_id: id,
        facts: paid_in_full(),
        payment_intent_id: Some("pi_taken".to_owned()),
        details: PaymentDetails::default(),
        event: Some(event(event_id)),
        at: at(2),
    };
    let owner = applied(
        store
            .apply_facts(&with_intent(first.id, "evt_first"))
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .apply_facts(&with_intent(second.id, "evt_second"))
            .await,
        Err(RepoError::Duplicate("payment_intent_id"))
    );
    // Neither the facts nor the event were recorded.
    assert_eq!(get(&store, second.id).await, second);
    assert_eq!(store.get_event("evt_second").await.unwrap(), None);
    assert_eq!(
        store.find_by_payment_intent("pi_taken").await.unwrap(),
        Some(owner)
    );
    let retry = FactUpdate {
        payment_intent_id: None,
        ..with_intent(second.id, "evt_second")
    };
    let paid = applied(store.apply_facts(&retry).await.unwrap());
    assert_eq!(paid.status(), PurchaseStatus::Completed);
    assert_eq!(paid.payment_intent_id, None);
}

// ---------------------------------------------------------------------------------------------
// Unlocked courses
// ---------------------------------------------------------------------------------------------

pub async fn unlocked_lists_completed_purchases_with_their_courses<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let other_buyer = new_user("someone@example.com", Role::Student);
    store.create_user(&other_buyer).await.unwrap();
    let mut courses = Vec::new();
    for i in 0..6 {
        courses.push(seed_course(&store, &instructor, at(i)).await);
    }
    let pay = |id, amount| {
        apply(
            &store,
            id,
            vec![PaymentFact::PaymentSucceeded { amount, at: None }],
            None,
            at(50),
        )
    };

    // 0 and 1 and 2: completed (1 and 2 at the same instant); 3: pending; 4: failed; 5: refunded.
    let mut unlocked = Vec::new();
    for (index, when) in [(0, at(10)), (1, at(20)), (2, at(20))] {
        let purchase = begin(&buyer, &courses[index], when);
        store.create_purchase(&purchase).await.unwrap();
        let purchase = pay(purchase.id, usd(1999)).await;
        unlocked.push(PurchasedCourse {
            purchase,
            course: courses[index].clone(),
        });
    }
    store
        .create_purchase(&begin(&buyer, &courses[3], at(30)))
        .await
        .unwrap();
    let failed = begin(&buyer, &courses[4], at(31));
    store.create_purchase(&failed).await.unwrap();
    apply(
        &store,
        failed.id,
        vec![PaymentFact::AsyncPaymentFailed],
        None,
        at(32),
    )
    .await;
    let refunded = begin(&buyer, &courses[5], at(33));
    store.create_purchase(&refunded).await.unwrap();
    pay(refunded.id, usd(1999)).await;
    let full_refund = vec![PaymentFact::Refunded { total: usd(1999) }];
    apply(&store, refunded.id, full_refund, None, at(34)).await;
    // Held for review (wrong amount) does not unlock.
    let mismatched = begin(&other_buyer, &courses[3], at(35));
    store.create_purchase(&mismatched).await.unwrap();
    pay(mismatched.id, usd(5)).await;
    // Another user's completed purchase is not listed.
    let theirs = begin(&other_buyer, &courses[0], at(36));
    store.create_purchase(&theirs).await.unwrap();
    pay(theirs.id, usd(1999)).await;

    // The course as it is now, not as it was when bought.
    let mut renamed = courses[0].clone();
    renamed.title = CourseText::title("Renamed").unwrap();
    store.update_course(&renamed).await.unwrap();
    unlocked[0].course = renamed;

    unlocked.sort_by(|a, b| {
        (b.purchase.created_at, b.purchase.id).cmp(&(a.purchase.created_at, a.purchase.id))
    });
    assert_eq!(
        store.list_unlocked_for_user(buyer.id).await.unwrap(),
        unlocked
    );
    assert!(store
        .list_unlocked_for_user(instructor.id)
        .await
        .unwrap()
        .is_empty());
    let theirs_listed = store.list_unlocked_for_user(other_buyer.id).await.unwrap();
    assert_eq!(theirs_listed.len(), 1);
    assert_eq!(theirs_listed[0].purchase.id, theirs.id);
}

// ---------------------------------------------------------------------------------------------
// Order history
// ---------------------------------------------------------------------------------------------

pub async fn history_lists_every_purchase_of_the_user_newest_first_ties_by_id_and_paged<
    S: Store,
>(
    store: S,
) {
    let (instructor, buyer) = seed_people(&store).await;
    let other_buyer = new_user("someone-else@example.com", Role::Student);
    store.create_user(&other_buyer).await.unwrap();
    let mut courses = Vec::new();
    for i in 0..5 {
        courses.push(seed_course(&store, &instructor, at(i)).await);
    }
    let pay = |id, amount| {
        apply(
            &store,
            id,
            vec![PaymentFact::PaymentSucceeded { amount, at: None }],
            None,
            at(60),
        )
    };

    // Every status: completed (two at the same instant), pending, failed then bought again,
    // refunded, held for review.
    let mut mine = Vec::new();
    for index in [0, 1] {
        let purchase = begin(&buyer, &courses[index], at(10));
        store.create_purchase(&purchase).await.unwrap();
        mine.push(pay(purchase.id, usd(1999)).await);
    }
    let pending = begin(&buyer, &courses[2], at(20));
    store.create_purchase(&pending).await.unwrap();
    mine.push(pending);
    let failed = begin(&buyer, &courses[3], at(21));
    store.create_purchase(&failed).await.unwrap();
    let failure = vec![PaymentFact::AsyncPaymentFailed];
    mine.push(apply(&store, failed.id, failure, None, at(22)).await);
    let again = begin(&buyer, &courses[3], at(23));
    store.create_purchase(&again).await.unwrap();
    mine.push(again);
    let refunded = begin(&buyer, &courses[4], at(24));
    store.create_purchase(&refunded).await.unwrap();
    pay(refunded.id, usd(1999)).await;
    let full_refund = vec![PaymentFact::Refunded { total: usd(1999) }];
    mine.push(apply(&store, refunded.id, full_refund, None, at(61)).await);
    // Paid the wrong amount: held for review, still pending.
    let held_course = seed_course(&store, &instructor, at(5)).await;
    let held = begin(&buyer, &held_course, at(5));
    store.create_purchase(&held).await.unwrap();
    mine.push(pay(held.id, usd(5)).await);
    // Another user's purchases are never listed.
    for index in [0, 2] {
        let theirs = begin(&other_buyer, &courses[index], at(30));
        store.create_purchase(&theirs).await.unwrap();
    }

    // The course as it is now, not as it was when bought.
    let mut renamed = courses[1].clone();
    renamed.title = CourseText::title("Renamed").unwrap();
    store.update_course(&renamed).await.unwrap();
    let course_of = |purchase: &Purchase| {
        if purchase.course_id == renamed.id {
            renamed.clone()
        } else if purchase.course_id == held_course.id {
            held_course.clone()
        } else {
            courses
                .iter()
                .find(|c| c.id == purchase.course_id)
                .unwrap()
                .clone()
        }
    };
    let mut expected: Vec<PurchasedCourse> = mine
        .iter()
        .map(|purchase| PurchasedCourse {
            purchase: purchase.clone(),
            course: course_of(purchase),
        })
        .collect();
    expected.sort_by_key(|pc| std::cmp::Reverse((pc.purchase.created_at, pc.purchase.id)));
    let statuses: Vec<PurchaseStatus> = expected.iter().map(|pc| pc.purchase.status()).collect();
    for status in [
        PurchaseStatus::Completed,
        PurchaseStatus::Pending,
        PurchaseStatus::Failed,
        PurchaseStatus::Refunded,
    ] {
        assert!(
            statuses.contains(&status),
            "the fixture has a {status:?} one"
        );
    }
    assert!(expected
        .iter()
        .any(|pc| pc.purchase.review_reason().is_some()));

    let all = store
        .list_for_user(buyer.id, PageRequest::new(1, 100))
        .await
        .unwrap();
    assert_eq!(all.total, 7);
    assert_eq!(all.items, expected);

    let mut paged = Vec::new();
    for page in 1..=3 {
        let got = store
            .list_for_user(buyer.id, PageRequest::new(page, 3))
            .await
            .unwrap();
        assert_eq!(got.total, 7, "page {page}");
        assert_eq!(got.items.len(), if page < 3 { 3 } else { 1 }, "page {page}");
        paged.extend(got.items);
    }
    assert_eq!(paged, expected, "pages neither overlap nor skip");

    let beyond = store
        .list_for_user(buyer.id, PageRequest::new(4, 3))
        .await
        .unwrap();
    assert_eq!(beyond.total, 7);
    assert!(beyond.items.is_empty());

    let theirs = store
        .list_for_user(other_buyer.id, PageRequest::new(1, 100))
        .await
        .unwrap();
    assert_eq!(theirs.total, 2);
    assert!(theirs
        .items
        .iter()
        .all(|pc| pc.purchase.user_id == other_buyer.id));
    let none = store
        .list_for_user(instructor.id, PageRequest::new(1, 10))
        .await
        .unwrap();
    assert_eq!(none.total, 0);
    assert!(none.items.is_empty());
}

/// Not in [`storage_contract_tests!`]: the stored `status` column is derived, and only the
/// adapter's own test can write a stale one by hand. Seeds a paid purchase and a pending one of
/// one buyer, hands `corrupt` the SQL statements that swap their stored statuses (the paid one
/// says `pending`, the unpaid one `completed`, as a row written under other derivation rules
/// would), then checks that the listing still follows the facts.
pub async fn unlocked_listing_ignores_a_stale_stored_status<S, F, Fut>(store: S, corrupt: F)
where
    S: Store,
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Seeded {
        instructor,
        buyer,
        course,
        purchase: paid,
    } = seed_purchase(&store).await;
    let paid = apply(&store, paid.id, paid_in_full(), None, at(2)).await;
    let other_course = seed_course(&store, &instructor, at(3)).await;
    let unpaid = begin(&buyer, &other_course, at(4));
    store.create_purchase(&unpaid).await.unwrap();

    corrupt(vec![
        format!(
            "UPDATE purchases SET status = 'pending' WHERE id = '{}'",
            paid.id
        ),
        format!(
            "UPDATE purchases SET status = 'completed' WHERE id = '{}'",
            unpaid.id
        ),
    ])
    .await;

    assert_eq!(
        store.list_unlocked_for_user(buyer.id).await.unwrap(),
        vec![PurchasedCourse {
            purchase: paid.clone(),
            course,
        }]
    );
    assert_eq!(
        get(&store, paid.id).await.status(),
        PurchaseStatus::Completed
    );
    assert_eq!(
        get(&store, unpaid.id).await.status(),
        PurchaseStatus::Pending
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

pub async fn concurrent_deliveries_of_one_event_apply_once<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;

    let delivery = update(purchase.id, paid_in_full(), Some("evt_storm"), at(2));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = store.clone();
        let delivery = delivery.clone();
        tasks.spawn(async move { store.apply_facts(&delivery).await });
    }
    let (mut applied_count, mut duplicates) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(Applied::Applied {
                purchase: saved, ..
            }) => {
                applied_count += 1;
                assert_eq!(saved.status(), PurchaseStatus::Completed);
            }
            Ok(Applied::DuplicateEvent) => duplicates += 1,
            Err(error) => panic!("a delivery failed: {error}"),
        }
    }
    assert_eq!((applied_count, duplicates), (1, 49));
    let saved = get(&store, purchase.id).await;
    assert_eq!(saved.status(), PurchaseStatus::Completed);
    assert_eq!(saved.updated_at, at(2));
    // Every delivery was counted, none lost to a race.
    assert_eq!(
        row(&store, "evt_storm").await,
        InboxRecord {
            delivery_count: 50,
            ..first_row(
                &envelope("evt_storm"),
                at(2),
                EventOutcome::Applied,
                None,
                Some(purchase.id)
            )
        }
    );
}

pub async fn concurrent_checkouts_of_one_course_let_exactly_one_win<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let course = seed_course(&store, &instructor, at(0)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = store.clone();
        let purchase = begin(&buyer, &course, at(1 + i));
        tasks.spawn(async move { (purchase.id, store.create_purchase(&purchase).await) });
    }
    let mut winners = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            (id, Ok(())) => winners.push(id),
            (_, Err(RepoError::ActivePurchaseExists)) => {}
            (_, Err(error)) => panic!("unexpected error: {error}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one creation wins");
    let stored = store
        .list_for_user_and_course(buyer.id, course.id)
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|p| p.id).collect::<Vec<_>>(), winners);
}

pub async fn concurrent_events_of_one_purchase_lose_no_fact<S: Store>(store: S) {
    let purchase = seed_purchase(&store).await.purchase;

    // Twenty different events, each with a different fact: the result is their join.
    let mut facts = vec![
        PaymentFact::PaymentSucceeded {
            amount: usd(1999),
            at: None,
        },
        PaymentFact::PaymentAttemptFailed,
        PaymentFact::DisputeOpened,
        PaymentFact::DisputeClosed(DisputeOutcome::Won),
    ];
    facts.extend((1..=16).map(|cents| PaymentFact::Refunded {
        total: usd(cents * 10),
    }));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, fact) in facts.iter().enumerate() {
        let store = store.clone();
        let delivery = update(purchase.id, vec![*fact], Some(&format!("evt_{i}")), at(2));
        tasks.spawn(async move { store.apply_facts(&delivery).await });
    }
    while let Some(result) = tasks.join_next().await {
        applied(result.unwrap().unwrap());
    }
    let mut expected = purchase.clone();
    for fact in facts {
        expected.record(fact, at(2));
    }
    let saved = get(&store, purchase.id).await;
    assert_eq!(saved.facts, expected.facts);
    assert_eq!(saved.facts.refunded, Some(usd(160)));
    assert_eq!(saved.status(), PurchaseStatus::Completed);
}

/// Two purchases of one buyer and course paid at the same moment (two tabs): whichever update
/// comes second sees the first as paid, so a double payment is always noticed. Repeated, to
/// give the interleavings a chance.
pub async fn concurrent_payments_of_two_purchases_of_one_course_see_each_other<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    for round in 0..10 {
        let course = seed_course(&store, &instructor, at(0)).await;
        let first = begin(&buyer, &course, at(1));
        let mut second = begin(&buyer, &course, at(1));
        second.holds_active_slot = false;
        store.create_purchase(&first).await.unwrap();
        store.create_purchase(&second).await.unwrap();
        let pay = |id: PurchaseId, event: String| {
            let store = store.clone();
            tokio::spawn(async move {
                others_seen(&store, &update(id, paid_in_full(), Some(&event), at(2))).await
            })
        };
        let (a, b) = tokio::join!(
            pay(first.id, format!("evt_tab_a_{round}")),
            pay(second.id, format!("evt_tab_b_{round}"))
        );
        let seen_paid = |(_, others): &(Purchase, Vec<Purchase>), other: PurchaseId| {
            others.iter().any(|p| p.id == other && p.unlocks_course())
        };
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            seen_paid(&a, second.id) || seen_paid(&b, first.id),
            "round {round}: neither update saw the other payment"
        );
    }
}

pub async fn concurrent_session_ends_lose_no_increment<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.spawn(async move { store.end_sessions(buyer.id).await });
    }
    let mut returned = Vec::new();
    while let Some(result) = tasks.join_next().await {
        returned.push(result.unwrap().unwrap());
    }
    returned.sort_unstable();
    assert_eq!(
        returned,
        (1..=20).collect::<Vec<u32>>(),
        "each call saw its own increment"
    );
    let saved = store.get_user(buyer.id).await.unwrap().unwrap();
    assert_eq!(saved.session_generation, 20);
    let untouched = store.get_user(instructor.id).await.unwrap().unwrap();
    assert_eq!(untouched.session_generation, 0);
}

// ---------------------------------------------------------------------------------------------
// Deployment: the payments mode a database belongs to
// ---------------------------------------------------------------------------------------------

pub async fn deployment_first_claim_records_then_the_same_mode_matches<S: Store>(store: S) {
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::StripeTest).await,
        Ok(DeploymentClaim::Recorded)
    );
    for _ in 0..2 {
        assert_eq!(
            store.claim_payments_mode(PaymentsMode::StripeTest).await,
            Ok(DeploymentClaim::Matches)
        );
    }
}

pub async fn deployment_another_mode_conflicts_and_the_first_stays_recorded<S: Store>(store: S) {
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::Sandbox).await,
        Ok(DeploymentClaim::Recorded)
    );
    for other in [PaymentsMode::StripeTest, PaymentsMode::StripeLive] {
        assert_eq!(
            store.claim_payments_mode(other).await,
            Ok(DeploymentClaim::Conflict {
                recorded: PaymentsMode::Sandbox
            }),
            "{other}"
        );
    }
    // The refused claims changed nothing.
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::Sandbox).await,
        Ok(DeploymentClaim::Matches)
    );
}

pub async fn deployment_data_without_a_recorded_mode_is_claimed_by_the_first_caller<S: Store>(
    store: S,
) {
    // A database written before modes were recorded: data, but no mode.
    seed_purchase(&store).await;
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::StripeLive).await,
        Ok(DeploymentClaim::Recorded)
    );
    assert_eq!(
        store.claim_payments_mode(PaymentsMode::StripeTest).await,
        Ok(DeploymentClaim::Conflict {
            recorded: PaymentsMode::StripeLive
        })
    );
}

pub async fn concurrent_first_claims_of_two_modes_record_exactly_one<S: Store>(store: S) {
    let mut tasks = tokio::task::JoinSet::new();
    // Several instances of each mode starting at once.
    for mode in [PaymentsMode::Sandbox, PaymentsMode::StripeLive].repeat(5) {
        let store = store.clone();
        tasks.spawn(async move { (mode, store.claim_payments_mode(mode).await.unwrap()) });
    }
    let mut outcomes = Vec::new();
    while let Some(result) = tasks.join_next().await {
        outcomes.push(result.unwrap());
    }
    let winners: Vec<PaymentsMode> = outcomes
        .iter()
        .filter(|(_, claim)| *claim == DeploymentClaim::Recorded)
        .map(|(mode, _)| *mode)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim records: {outcomes:?}");
    let winner = winners[0];
    for (mode, claim) in &outcomes {
        let expected = if *mode != winner {
            DeploymentClaim::Conflict { recorded: winner }
        } else if *claim == DeploymentClaim::Recorded {
            DeploymentClaim::Recorded
        } else {
            DeploymentClaim::Matches
        };
        assert_eq!(*claim, expected, "{mode}: {outcomes:?}");
    }
    assert_eq!(
        store.claim_payments_mode(winner).await,
        Ok(DeploymentClaim::Matches)
    );
}
