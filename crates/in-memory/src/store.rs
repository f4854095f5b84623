//! The in-memory store: every storage port over one mutex-guarded state.
//!
//! Each method takes the lock once and does all its checks and writes under it, which is what
//! makes "check then insert" atomic here (the SQL adapters get the same from unique indexes,
//! row locks and transactions). It is the reference reading of the storage contract.

use async_trait::async_trait;
use lms_domain::{
    CheckoutSession, Course, CourseId, Currency, Email, Purchase, PurchaseId, PurchaseStatus, Role,
    User, UserId,
};
use lms_ports::{
    Applied, AuditEntry, AuditLog, BuyerView, CourseRepo, DeliveryKind, DeploymentClaim,
    DeploymentRegistry, EventDelivery, EventEnvelope, EventFilter, EventInbox, EventOutcome,
    FactUpdate, InboxRecord, Page, PageRequest, PaymentsMode, PurchaseRepo, PurchasedCourse,
    Recorded, RefundLease, RepoError, RevenueLine, RevenueQuery, StorageHealth, Unapplied,
    UserRepo,
};
use std::cmp::Reverse;
use std::collections::{btree_map, hash_map::Entry, BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

/// An event whose facts [`PurchaseRepo::apply_facts`] merged (a first delivery, or a replay
/// that applied), in the order they were merged. The inbox itself is read through
/// [`EventInbox`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub event_id: String,
    pub event_type: String,
    pub purchase_id: PurchaseId,
    pub payload: String,
    pub received_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, User>,
    courses: HashMap<CourseId, Course>,
    purchases: HashMap<PurchaseId, Purchase>,
    /// The event inbox, by event id.
    inbox: HashMap<String, InboxRecord>,
    events: Vec<RecordedEvent>,
    /// Until when each purchase is claimed by a reconciliation pass.
    claimed_until: HashMap<PurchaseId, OffsetDateTime>,
    /// Until when each purchase's refund lease is held (absent: never taken, or released).
    refund_leased_until: HashMap<PurchaseId, OffsetDateTime>,
    /// Each linked user's customer at the payment gateway.
    gateway_customers: HashMap<UserId, String>,
    /// The audit trail, in append order.
    audit: Vec<AuditEntry>,
    payments_mode: Option<PaymentsMode>,
}

/// Users, courses and purchases in memory. Cheap to clone: clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
    unavailable: Arc<AtomicBool>,
}

/// Newest first, ties broken by id (descending), as every listing port requires.
fn newest_first<T, I: Ord>(items: &mut [T], key: impl Fn(&T) -> (OffsetDateTime, I)) {
    items.sort_by_key(|item| Reverse(key(item)));
}

/// Every purchase of `user` for `course`, newest first (ties broken by id).
fn purchases_of(state: &State, user: UserId, course: CourseId) -> Vec<Purchase> {
    let mut purchases: Vec<Purchase> = state
        .purchases
        .values()
        .filter(|p| p.user_id == user && p.course_id == course)
        .cloned()
        .collect();
    newest_first(&mut purchases, |p| (p.created_at, p.id));
    purchases
}

/// The page `page` (clamped as [`PageRequest::new`] does) of `items`, already in order.
fn page_of<T: Clone>(items: &[T], page: PageRequest) -> Page<T> {
    let page = PageRequest::new(page.page, page.limit);
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    Page {
        items: items
            .iter()
            .skip(offset)
            .take(page.limit as usize)
            .cloned()
            .collect(),
        total: items.len() as u64,
    }
}

/// The inbox row a first delivery of `envelope` at `at` writes.
fn first_row(
    envelope: &EventEnvelope,
    at: OffsetDateTime,
    outcome: EventOutcome,
    error: Option<String>,
    purchase_id: Option<PurchaseId>,
) -> InboxRecord {
    InboxRecord {
        event_id: envelope.id.clone(),
        event_type: envelope.event_type.clone(),
        livemode: envelope.livemode,
        created: envelope.created,
        first_received_at: at,
        last_received_at: at,
        delivery_count: 1,
        outcome,
        error,
        purchase_id,
        payload: Some(envelope.payload.clone()),
    }
}

/// One more delivery of a known event.
fn count_delivery(row: &mut InboxRecord, at: OffsetDateTime) {
    row.delivery_count = row.delivery_count.saturating_add(1);
    row.last_received_at = at;
}

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every call (including `ping`) fails with [`RepoError::Unavailable`] and
    /// writes nothing: for testing the 5xx paths.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// The ids of the events whose facts were merged so far, in that order (see
    /// [`RecordedEvent`]).
    pub fn recorded_event_ids(&self) -> Vec<String> {
        self.snapshot(|state| {
            state
                .events
                .iter()
                .map(|event| event.event_id.clone())
                .collect()
        })
    }

    /// The events whose facts were merged so far, in that order.
    pub fn recorded_events(&self) -> Vec<RecordedEvent> {
        self.snapshot(|state| state.events.clone())
    }

    /// Forgets the payment intent linked to a purchase, as an operator repairing a wrong link
    /// by hand would (test set-up for replaying an event that failed on that link; ignores
    /// the unavailable switch).
    pub fn unlink_payment_intent(&self, id: PurchaseId) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(purchase) = state.purchases.get_mut(&id) {
            purchase.payment_intent_id = None;
        }
    }

    /// Every purchase, newest first (test inspection; ignores the unavailable switch).
    pub fn all_purchases(&self) -> Vec<Purchase> {
        self.snapshot(|state| {
            let mut purchases: Vec<Purchase> = state.purchases.values().cloned().collect();
            newest_first(&mut purchases, |p| (p.created_at, p.id));
            purchases
        })
    }

    /// Every course, newest first (test inspection; ignores the unavailable switch).
    pub fn all_courses(&self) -> Vec<Course> {
        self.snapshot(|state| {
            let mut courses: Vec<Course> = state.courses.values().cloned().collect();
            newest_first(&mut courses, |c| (c.created_at, c.id));
            courses
        })
    }

    /// How many users exist (test inspection; ignores the unavailable switch).
    pub fn user_count(&self) -> usize {
        self.snapshot(|state| state.users.len())
    }

    fn snapshot<T>(&self, read: impl FnOnce(&State) -> T) -> T {
        let guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read(&guard)
    }

    /// Takes the lock for one operation, or fails as the switch says.
    fn lock(&self) -> Result<MutexGuard<'_, State>, RepoError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(RepoError::unavailable("in-memory store switched off"));
        }
        self.state
            .lock()
            .map_err(|_| RepoError::unexpected("in-memory store lock poisoned"))
    }
}

#[async_trait]
impl UserRepo for InMemoryStore {
    async fn create_user(&self, user: &User) -> Result<(), RepoError> {
        let mut state = self.lock()?;
        if state.users.contains_key(&user.id) {
            return Err(RepoError::Duplicate("id"));
        }
        // Emails are normalised to lower case by `Email::parse`; compare case-insensitively anyway.
        let taken = state.users.values().any(|existing| {
            existing
                .email
                .as_str()
                .eq_ignore_ascii_case(user.email.as_str())
        });
        if taken {
            return Err(RepoError::Duplicate("email"));
        }
        state.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        Ok(self.lock()?.users.get(&id).cloned())
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        let state = self.lock()?;
        Ok(state
            .users
            .values()
            .find(|user| user.email.as_str().eq_ignore_ascii_case(email.as_str()))
            .cloned())
    }

    async fn set_role(&self, email: &Email, role: Role) -> Result<User, RepoError> {
        let mut state = self.lock()?;
        let user = state
            .users
            .values_mut()
            .find(|user| user.email.as_str().eq_ignore_ascii_case(email.as_str()))
            .ok_or(RepoError::NotFound)?;
        user.role = role;
        Ok(user.clone())
    }

    async fn end_sessions(&self, id: UserId) -> Result<u32, RepoError> {
        let mut state = self.lock()?;
        let user = state.users.get_mut(&id).ok_or(RepoError::NotFound)?;
        user.session_generation = user
            .session_generation
            .checked_add(1)
            .ok_or_else(|| RepoError::unexpected("session generation would overflow"))?;
        Ok(user.session_generation)
    }

    async fn gateway_customer(&self, id: UserId) -> Result<Option<String>, RepoError> {
        Ok(self.lock()?.gateway_customers.get(&id).cloned())
    }

    async fn link_gateway_customer(
        &self,
        id: UserId,
        customer_id: &str,
    ) -> Result<String, RepoError> {
        let mut state = self.lock()?;
        if !state.users.contains_key(&id) {
            return Err(RepoError::NotFound);
        }
        // The first link stays: a later one only reads it back.
        Ok(state
            .gateway_customers
            .entry(id)
            .or_insert_with(|| customer_id.to_owned())
            .clone())
    }
}

#[async_trait]
impl CourseRepo for InMemoryStore {
    async fn create_course(&self, course: &Course) -> Result<(), RepoError> {
        let mut state = self.lock()?;
        if state.courses.contains_key(&course.id) {
            return Err(RepoError::Duplicate("id"));
        }
        state.courses.insert(course.id, course.clone());
        Ok(())
    }

    async fn get_course(&self, id: CourseId) -> Result<Option<Course>, RepoError> {
        Ok(self.lock()?.courses.get(&id).cloned())
    }

    async fn update_course(&self, course: &Course) -> Result<(), RepoError> {
        let mut state = self.lock()?;
        let stored = state
            .courses
            .get_mut(&course.id)
            .ok_or(RepoError::NotFound)?;
        *stored = course.clone();
        Ok(())
    }

    async fn list_published_courses(&self, page: PageRequest) -> Result<Page<Course>, RepoError> {
        let state = self.lock()?;
        let mut published: Vec<&Course> = state.courses.values().filter(|c| c.published).collect();
        newest_first(&mut published, |c| (c.created_at, c.id));
        let page = page_of(&published, page);
        Ok(Page {
            items: page.items.into_iter().cloned().collect(),
            total: page.total,
        })
    }
}

#[async_trait]
impl PurchaseRepo for InMemoryStore {
    async fn create_purchase(&self, purchase: &Purchase) -> Result<(), RepoError> {
        let mut state = self.lock()?;
        if state.purchases.contains_key(&purchase.id) {
            return Err(RepoError::Duplicate("id"));
        }
        if purchase.holds_active_slot {
            let slot_taken = state.purchases.values().any(|other| {
                other.holds_active_slot
                    && other.user_id == purchase.user_id
                    && other.course_id == purchase.course_id
            });
            if slot_taken {
                return Err(RepoError::ActivePurchaseExists);
            }
        }
        if let Some(session) = &purchase.checkout {
            if state
                .purchases
                .values()
                .any(|other| other.checkout.as_ref().is_some_and(|s| s.id == session.id))
            {
                return Err(RepoError::Duplicate("checkout_session_id"));
            }
        }
        if let Some(intent) = &purchase.payment_intent_id {
            if state
                .purchases
                .values()
                .any(|other| other.payment_intent_id.as_ref() == Some(intent))
            {
                return Err(RepoError::Duplicate("payment_intent_id"));
            }
        }
        state.purchases.insert(purchase.id, purchase.clone());
        Ok(())
    }

    async fn attach_checkout(
        &self,
        id: PurchaseId,
        session: &CheckoutSession,
        at: OffsetDateTime,
    ) -> Result<Purchase, RepoError> {
        let mut state = self.lock()?;
        if !state.purchases.contains_key(&id) {
            return Err(RepoError::NotFound);
        }
        let taken = state.purchases.values().any(|other| {
            other.id != id && other.checkout.as_ref().is_some_and(|s| s.id == session.id)
        });
        if taken {
            return Err(RepoError::Duplicate("checkout_session_id"));
        }
        let purchase = state.purchases.get_mut(&id).ok_or(RepoError::NotFound)?;
        purchase.attach_checkout(session.clone(), at);
        Ok(purchase.clone())
    }

    async fn apply_facts(&self, update: &FactUpdate) -> Result<Applied, RepoError> {
        let mut state = self.lock()?;
        if let Some(delivery) = &update.event {
            if let Some(row) = state.inbox.get_mut(&delivery.envelope.id) {
                match delivery.kind {
                    DeliveryKind::Delivered => {
                        count_delivery(row, update.at);
                        return Ok(Applied::DuplicateEvent);
                    }
                    DeliveryKind::Replayed if row.outcome.is_settled() => {
                        return Ok(Applied::DuplicateEvent);
                    }
                    // Ignored, unmatched or failed: applied now, its outcome overwritten below.
                    DeliveryKind::Replayed => {}
                }
            }
        }
        let mut purchase = state
            .purchases
            .get(&update.purchase_id)
            .cloned()
            .ok_or(RepoError::NotFound)?;
        if let Some(intent) = &update.payment_intent_id {
            // What the unique index on payment_intent_id does in SQL stores.
            let linked_elsewhere = purchase.payment_intent_id.is_none()
                && state.purchases.values().any(|other| {
                    other.id != purchase.id && other.payment_intent_id.as_ref() == Some(intent)
                });
            if linked_elsewhere {
                return Err(RepoError::Duplicate("payment_intent_id"));
            }
        }
        purchase.absorb(
            &update.facts,
            update.payment_intent_id.as_deref(),
            &update.details,
            update.at,
        );
        if let Some(EventDelivery { envelope, .. }) = &update.event {
            let outcome = EventOutcome::of_applied(&purchase);
            match state.inbox.entry(envelope.id.clone()) {
                Entry::Occupied(mut row) => {
                    let row = row.get_mut();
                    row.outcome = outcome;
                    row.error = None;
                    row.purchase_id = Some(purchase.id);
                }
                Entry::Vacant(slot) => {
                    slot.insert(first_row(
                        envelope,
                        update.at,
                        outcome,
                        None,
                        Some(purchase.id),
                    ));
                }
            }
            state.events.push(RecordedEvent {
                event_id: envelope.id.clone(),
                event_type: envelope.event_type.clone(),
                purchase_id: purchase.id,
                payload: envelope.payload.clone(),
                received_at: update.at,
            });
        }
        state.purchases.insert(purchase.id, purchase.clone());
        let mut others = purchases_of(&state, purchase.user_id, purchase.course_id);
        others.retain(|other| other.id != purchase.id);
        Ok(Applied::Applied { purchase, others })
    }

    async fn get_purchase(&self, id: PurchaseId) -> Result<Option<Purchase>, RepoError> {
        Ok(self.lock()?.purchases.get(&id).cloned())
    }

    async fn find_by_checkout_session(
        &self,
        session_id: &str,
    ) -> Result<Option<Purchase>, RepoError> {
        let state = self.lock()?;
        Ok(state
            .purchases
            .values()
            .find(|p| p.checkout.as_ref().is_some_and(|s| s.id == session_id))
            .cloned())
    }

    async fn find_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> Result<Option<Purchase>, RepoError> {
        let state = self.lock()?;
        Ok(state
            .purchases
            .values()
            .find(|p| p.payment_intent_id.as_deref() == Some(payment_intent_id))
            .cloned())
    }

    async fn list_for_user_and_course(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Vec<Purchase>, RepoError> {
        let state = self.lock()?;
        Ok(purchases_of(&state, user, course))
    }

    async fn buyer_view(
        &self,
        user: UserId,
        course: CourseId,
    ) -> Result<Option<BuyerView>, RepoError> {
        // One lock: the three parts are read at one instant, as one SQL statement reads them.
        let state = self.lock()?;
        let Some(found) = state.users.get(&user) else {
            return Ok(None);
        };
        Ok(Some(BuyerView {
            user: found.clone(),
            course: state.courses.get(&course).cloned(),
            purchases: purchases_of(&state, user, course),
        }))
    }

    async fn claim_for_reconciliation(
        &self,
        created_before: OffsetDateTime,
        now: OffsetDateTime,
        claimed_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Purchase>, RepoError> {
        let mut state = self.lock()?;
        let mut claimable: Vec<&Purchase> = state
            .purchases
            .values()
            .filter(|p| {
                // Not held for review: nothing captured yet (a captured payment that left
                // the purchase pending is one an operator has to look at).
                p.created_at < created_before
                    && p.status() == PurchaseStatus::Pending
                    && p.captured().is_none()
                    && state
                        .claimed_until
                        .get(&p.id)
                        .is_none_or(|until| *until <= now)
            })
            .collect();
        claimable.sort_by_key(|p| (p.created_at, p.id));
        let claimed: Vec<Purchase> = claimable
            .into_iter()
            .take(limit as usize)
            .cloned()
            .collect();
        for purchase in &claimed {
            state.claimed_until.insert(purchase.id, claimed_until);
        }
        Ok(claimed)
    }

    async fn list_held(&self, page: PageRequest) -> Result<Page<Purchase>, RepoError> {
        let state = self.lock()?;
        let mut held: Vec<Purchase> = state
            .purchases
            .values()
            .filter(|p| p.status() == PurchaseStatus::Pending && p.captured().is_some())
            .cloned()
            .collect();
        held.sort_by_key(|p| (p.created_at, p.id));
        Ok(page_of(&held, page))
    }

    async fn list_unlocked_for_user(
        &self,
        user: UserId,
    ) -> Result<Vec<PurchasedCourse>, RepoError> {
        let state = self.lock()?;
        let mut unlocked: Vec<PurchasedCourse> = state
            .purchases
            .values()
            .filter(|p| p.user_id == user && p.unlocks_course())
            .filter_map(|p| {
                state
                    .courses
                    .get(&p.course_id)
                    .map(|course| PurchasedCourse {
                        purchase: p.clone(),
                        course: course.clone(),
                    })
            })
            .collect();
        newest_first(&mut unlocked, |pc| (pc.purchase.created_at, pc.purchase.id));
        Ok(unlocked)
    }

    async fn list_for_user(
        &self,
        user: UserId,
        page: PageRequest,
    ) -> Result<Page<PurchasedCourse>, RepoError> {
        let state = self.lock()?;
        let mut bought = state
            .purchases
            .values()
            .filter(|p| p.user_id == user)
            .map(|p| {
                // The foreign key of the SQL stores: a purchase always has its course.
                let course = state.courses.get(&p.course_id).ok_or_else(|| {
                    RepoError::unexpected(format!("purchase {} has no course", p.id))
                })?;
                Ok(PurchasedCourse {
                    purchase: p.clone(),
                    course: course.clone(),
                })
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        newest_first(&mut bought, |pc| (pc.purchase.created_at, pc.purchase.id));
        Ok(page_of(&bought, page))
    }

    async fn lease_refund(
        &self,
        id: PurchaseId,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<RefundLease, RepoError> {
        let mut state = self.lock()?;
        let purchase = state
            .purchases
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound)?;
        match state.refund_leased_until.get(&id) {
            Some(held_until) if *held_until > now => Ok(RefundLease::Busy { until: *held_until }),
            _ => {
                state.refund_leased_until.insert(id, until);
                Ok(RefundLease::Granted(purchase))
            }
        }
    }

    async fn release_refund(&self, id: PurchaseId, until: OffsetDateTime) -> Result<(), RepoError> {
        let mut state = self.lock()?;
        if state.refund_leased_until.get(&id) == Some(&until) {
            state.refund_leased_until.remove(&id);
        }
        Ok(())
    }

    async fn revenue(&self, query: &RevenueQuery) -> Result<Vec<RevenueLine>, RepoError> {
        let state = self.lock()?;
        let mut lines: BTreeMap<(String, CourseId, &'static str), RevenueLine> = BTreeMap::new();
        for purchase in state.purchases.values() {
            let Some(sale) = purchase.sale() else {
                continue;
            };
            let in_range = query.sold_from.is_none_or(|from| sale.sold_at >= from)
                && query.sold_before.is_none_or(|before| sale.sold_at < before);
            if !in_range {
                continue;
            }
            // The foreign key of the SQL stores: a purchase always has its course.
            let course = state.courses.get(&purchase.course_id).ok_or_else(|| {
                RepoError::unexpected(format!("purchase {} has no course", purchase.id))
            })?;
            if query
                .instructor
                .is_some_and(|instructor| course.instructor_id != instructor)
            {
                continue;
            }
            let key = (
                course.title.as_str().to_owned(),
                course.id,
                sale.currency.code(),
            );
            let line = match lines.entry(key) {
                btree_map::Entry::Occupied(line) => line.into_mut(),
                btree_map::Entry::Vacant(slot) => slot.insert(empty_line(course, sale.currency)),
            };
            line.purchases += 1;
            line.gross += sale.gross;
            line.discounts += sale.discount;
            line.tax += sale.tax;
            line.paid += sale.paid;
            line.refunds += sale.refunded;
            line.disputes_lost += sale.disputes_lost;
            line.net += sale.net;
        }
        // The map's order is the report's: course title, course id, currency code.
        Ok(lines.into_values().collect())
    }
}

/// A revenue line of `course` in `currency` before any sale is added.
fn empty_line(course: &Course, currency: Currency) -> RevenueLine {
    RevenueLine {
        course_id: course.id,
        course_title: course.title.as_str().to_owned(),
        instructor_id: course.instructor_id,
        currency,
        purchases: 0,
        gross: 0,
        discounts: 0,
        tax: 0,
        paid: 0,
        refunds: 0,
        disputes_lost: 0,
        net: 0,
    }
}

#[async_trait]
impl EventInbox for InMemoryStore {
    async fn record_event(
        &self,
        delivery: &EventDelivery,
        outcome: &Unapplied,
        at: OffsetDateTime,
    ) -> Result<Recorded, RepoError> {
        let mut state = self.lock()?;
        if outcome.outcome.is_settled() {
            return Err(RepoError::unexpected(format!(
                "record_event takes no {} outcome: only apply_facts writes it",
                outcome.outcome
            )));
        }
        let envelope = &delivery.envelope;
        let Some(row) = state.inbox.get_mut(&envelope.id) else {
            let row = first_row(
                envelope,
                at,
                outcome.outcome,
                outcome.error.clone(),
                outcome.purchase_id,
            );
            state.inbox.insert(envelope.id.clone(), row);
            return Ok(Recorded::Written);
        };
        Ok(match delivery.kind {
            DeliveryKind::Delivered => {
                count_delivery(row, at);
                Recorded::Duplicate
            }
            DeliveryKind::Replayed if row.outcome.is_settled() => Recorded::Duplicate,
            DeliveryKind::Replayed => {
                row.outcome = outcome.outcome;
                row.error.clone_from(&outcome.error);
                row.purchase_id = outcome.purchase_id;
                Recorded::Written
            }
        })
    }

    async fn count_redelivery(
        &self,
        event_id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        let mut state = self.lock()?;
        let Some(row) = state.inbox.get_mut(event_id) else {
            return Ok(false);
        };
        count_delivery(row, at);
        Ok(true)
    }

    async fn mark_failed(&self, event_id: &str, error: &str) -> Result<(), RepoError> {
        let mut state = self.lock()?;
        let row = state.inbox.get_mut(event_id).ok_or(RepoError::NotFound)?;
        row.outcome = EventOutcome::Failed;
        row.error = Some(error.to_owned());
        Ok(())
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<InboxRecord>, RepoError> {
        Ok(self.lock()?.inbox.get(event_id).cloned())
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<InboxRecord>, RepoError> {
        let state = self.lock()?;
        let mut matching: Vec<&InboxRecord> = state
            .inbox
            .values()
            .filter(|row| filter.outcome.is_none_or(|outcome| row.outcome == outcome))
            .filter(|row| {
                filter
                    .since
                    .is_none_or(|since| row.first_received_at >= since)
            })
            .collect();
        newest_first(&mut matching, |row| {
            (row.first_received_at, row.event_id.clone())
        });
        let page = page_of(&matching, page);
        Ok(Page {
            items: page.items.into_iter().cloned().collect(),
            total: page.total,
        })
    }

    async fn known_event_ids(&self, event_ids: &[String]) -> Result<Vec<String>, RepoError> {
        let state = self.lock()?;
        let mut seen = HashSet::new();
        Ok(event_ids
            .iter()
            .filter(|id| state.inbox.contains_key(*id) && seen.insert(*id))
            .cloned()
            .collect())
    }

    async fn prune_payloads(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, RepoError> {
        let mut state = self.lock()?;
        let mut old: Vec<(OffsetDateTime, String)> = state
            .inbox
            .values()
            .filter(|row| row.payload.is_some() && row.first_received_at < received_before)
            .map(|row| (row.first_received_at, row.event_id.clone()))
            .collect();
        old.sort_unstable();
        old.truncate(limit as usize);
        for (_, event_id) in &old {
            if let Some(row) = state.inbox.get_mut(event_id) {
                row.payload = None;
            }
        }
        Ok(old.len() as u64)
    }
}

#[async_trait]
impl AuditLog for InMemoryStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), RepoError> {
        self.lock()?.audit.push(entry.clone());
        Ok(())
    }

    async fn list_audit(&self, page: PageRequest) -> Result<Page<AuditEntry>, RepoError> {
        let state = self.lock()?;
        let mut entries: Vec<(usize, &AuditEntry)> = state.audit.iter().enumerate().collect();
        // Newest first; of one instant, the later appended first.
        newest_first(&mut entries, |(index, entry)| (entry.at, *index));
        let page = page_of(&entries, page);
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|(_, entry)| entry.clone())
                .collect(),
            total: page.total,
        })
    }
}

#[async_trait]
impl DeploymentRegistry for InMemoryStore {
    async fn claim_payments_mode(&self, mode: PaymentsMode) -> Result<DeploymentClaim, RepoError> {
        let mut state = self.lock()?;
        Ok(match state.payments_mode {
            None => {
                state.payments_mode = Some(mode);
                DeploymentClaim::Recorded
            }
            Some(recorded) if recorded == mode => DeploymentClaim::Matches,
            Some(recorded) => DeploymentClaim::Conflict { recorded },
        })
    }
}

#[async_trait]
impl StorageHealth for InMemoryStore {
    async fn ping(&self) -> Result<String, RepoError> {
        let state = self.lock()?;
        Ok(format!(
            "in-memory store: {} users, {} courses, {} purchases",
            state.users.len(),
            state.courses.len(),
            state.purchases.len()
        ))
    }
}

#[cfg(test)]
mod tests;
