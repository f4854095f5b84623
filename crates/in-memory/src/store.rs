//! The in-memory store: every storage port over one mutex-guarded state.
//!
//! Each method takes the lock once and does all its checks and writes under it, which is what
//! makes "check then insert" atomic here (the Postgres adapter gets the same from unique
//! indexes and transactions).

use async_trait::async_trait;
use lms_domain::{CheckoutSession, Course, CourseId, Email, Purchase, PurchaseId, User, UserId};
use lms_ports::{
    Applied, CourseRepo, DeploymentClaim, DeploymentRegistry, FactUpdate, Page, PageRequest,
    PaymentsMode, PurchaseRepo, PurchasedCourse, RepoError, StorageHealth, UserRepo,
};
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

/// A webhook event recorded by [`PurchaseRepo::apply_facts`], in arrival order.
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
    event_ids: HashSet<String>,
    events: Vec<RecordedEvent>,
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

impl InMemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every call (including `ping`) fails with [`RepoError::Unavailable`] and
    /// writes nothing: for testing the 5xx paths.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// The webhook event ids recorded so far, in arrival order.
    pub fn recorded_event_ids(&self) -> Vec<String> {
        self.snapshot(|state| {
            state
                .events
                .iter()
                .map(|event| event.event_id.clone())
                .collect()
        })
    }

    /// The webhook events recorded so far, in arrival order.
    pub fn recorded_events(&self) -> Vec<RecordedEvent> {
        self.snapshot(|state| state.events.clone())
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

    async fn end_sessions(&self, id: UserId) -> Result<u32, RepoError> {
        let mut state = self.lock()?;
        let user = state.users.get_mut(&id).ok_or(RepoError::NotFound)?;
        user.session_generation = user
            .session_generation
            .checked_add(1)
            .ok_or_else(|| RepoError::unexpected("session generation would overflow"))?;
        Ok(user.session_generation)
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
        let page = PageRequest::new(page.page, page.limit);
        let state = self.lock()?;
        let mut published: Vec<&Course> = state.courses.values().filter(|c| c.published).collect();
        newest_first(&mut published, |c| (c.created_at, c.id));
        let total = published.len() as u64;
        let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
        let items = published
            .into_iter()
            .skip(offset)
            .take(page.limit as usize)
            .cloned()
            .collect();
        Ok(Page { items, total })
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
        if let Some(event) = &update.event {
            if state.event_ids.contains(&event.event_id) {
                return Ok(Applied::DuplicateEvent);
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
            update.at,
        );
        if let Some(event) = &update.event {
            state.event_ids.insert(event.event_id.clone());
            state.events.push(RecordedEvent {
                event_id: event.event_id.clone(),
                event_type: event.event_type.clone(),
                purchase_id: purchase.id,
                payload: event.payload.clone(),
                received_at: update.at,
            });
        }
        state.purchases.insert(purchase.id, purchase.clone());
        Ok(Applied::Applied(purchase))
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
        let mut purchases: Vec<Purchase> = state
            .purchases
            .values()
            .filter(|p| p.user_id == user && p.course_id == course)
            .cloned()
            .collect();
        newest_first(&mut purchases, |p| (p.created_at, p.id));
        Ok(purchases)
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
