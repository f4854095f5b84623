//! Checkout, webhooks, purchase status and refunds.

use crate::courses::course_visible_to;
use crate::error::Resource;
use crate::{new_uuid, Services, SessionClaim, UseCaseError, UseCaseSettings};
use lms_domain::{
    CheckoutSession, Course, CourseId, DomainError, PaymentDetails, PaymentFact, Purchase,
    PurchaseId, PurchaseStatus, User, UserId,
};
use lms_ports::{
    Applied, BuyerView, CheckoutRequest, CustomerRequest, FactUpdate, GatewayError, GatewaySession,
    Page, PageRequest, PurchasedCourse, RepoError, SessionPaymentStatus, SessionStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use time::{Duration, OffsetDateTime};

/// What [`Services::start_checkout`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutStarted {
    /// A new purchase and a new checkout session.
    Created {
        purchase: Purchase,
        session: GatewaySession,
    },
    /// The user's open checkout session for this course, handed out again.
    Reused {
        purchase: Purchase,
        session: GatewaySession,
    },
    /// A free course: enrolled at once, no gateway involved.
    FreeEnrollment { purchase: Purchase },
}

impl CheckoutStarted {
    pub fn purchase(&self) -> &Purchase {
        match self {
            CheckoutStarted::Created { purchase, .. }
            | CheckoutStarted::Reused { purchase, .. }
            | CheckoutStarted::FreeEnrollment { purchase } => purchase,
        }
    }

    /// The session to send the customer to (`None` for a free enrolment).
    pub fn session(&self) -> Option<&GatewaySession> {
        match self {
            CheckoutStarted::Created { session, .. } | CheckoutStarted::Reused { session, .. } => {
                Some(session)
            }
            CheckoutStarted::FreeEnrollment { .. } => None,
        }
    }
}

/// A course and the user's purchase of it to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseStatusView {
    pub course: Course,
    /// The completed purchase if any, else the newest; `None` when never purchased.
    pub purchase: Option<Purchase>,
}

impl PurchaseStatusView {
    /// `pending` | `completed` | `failed` | `refunded` | `not purchased`.
    pub fn wire_status(&self) -> &'static str {
        self.purchase
            .as_ref()
            .map_or("not purchased", |p| p.status().as_str())
    }

    /// True exactly when the course is unlocked.
    pub fn is_purchased(&self) -> bool {
        self.purchase.as_ref().is_some_and(Purchase::unlocks_course)
    }
}

/// How many purchases [`SyncThrottle`] remembers. Past it, entries that no longer hold anything
/// back are dropped, then the oldest: memory stays bounded however many purchases are polled.
const SYNC_THROTTLE_CAPACITY: usize = 10_000;

/// When each purchase's checkout session was last retrieved for a status poll.
#[derive(Debug, Default)]
pub(crate) struct SyncThrottle {
    last: Mutex<HashMap<PurchaseId, OffsetDateTime>>,
}

impl SyncThrottle {
    /// Whether the purchase's session may be retrieved at `now`; when it may, `now` is recorded
    /// before the call, so concurrent polls and failed calls count too (a gateway that is down
    /// is not asked harder). A clock that went back releases the purchase rather than holding it.
    pub(crate) fn try_acquire(
        &self,
        purchase_id: PurchaseId,
        now: OffsetDateTime,
        min_interval: Duration,
    ) -> bool {
        if !min_interval.is_positive() {
            return true;
        }
        let holds = |at: OffsetDateTime| {
            let elapsed = now - at;
            !elapsed.is_negative() && elapsed < min_interval
        };
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(&purchase_id).is_some_and(|at| holds(*at)) {
            return false;
        }
        if last.len() >= SYNC_THROTTLE_CAPACITY && !last.contains_key(&purchase_id) {
            last.retain(|_, at| holds(*at));
            if last.len() >= SYNC_THROTTLE_CAPACITY {
                let oldest = last.iter().min_by_key(|(_, at)| **at).map(|(id, _)| *id);
                if let Some(oldest) = oldest {
                    last.remove(&oldest);
                }
            }
        }
        last.insert(purchase_id, now);
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Whether retrieving the purchase's checkout session could still change its status: only a
/// pending one. A completed, failed or refunded purchase is decided; a session can report no
/// more than payment, settling or expiry, which such a purchase already implies or outranks.
fn open_to_session_sync(purchase: &Purchase) -> bool {
    purchase.status() == PurchaseStatus::Pending
}

/// How many times checkout re-reads after losing a race for the active slot.
const CHECKOUT_ATTEMPTS: usize = 3;

fn checkout_key(purchase_id: PurchaseId) -> String {
    format!("checkout-{purchase_id}")
}

/// One customer per user: a retried or concurrent creation for the same user gets the same
/// customer from the gateway.
fn customer_key(user_id: UserId) -> String {
    format!("customer-{user_id}")
}

/// Why the buyer's customer at the gateway could not be had.
#[derive(Debug)]
enum CustomerError {
    Gateway(GatewayError),
    Store(RepoError),
}

impl From<GatewayError> for CustomerError {
    fn from(err: GatewayError) -> Self {
        CustomerError::Gateway(err)
    }
}

impl From<RepoError> for CustomerError {
    fn from(err: RepoError) -> Self {
        CustomerError::Store(err)
    }
}

fn metadata(purchase: &Purchase) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("purchase_id".to_owned(), purchase.id.to_string()),
        ("course_id".to_owned(), purchase.course_id.to_string()),
        ("user_id".to_owned(), purchase.user_id.to_string()),
    ])
}

/// The gateway's view of a stored open session, rebuilt without asking the gateway.
fn stored_session_view(purchase: &Purchase, session: &CheckoutSession) -> GatewaySession {
    GatewaySession {
        id: session.id.clone(),
        url: Some(session.url.clone()),
        status: SessionStatus::Open,
        payment_status: SessionPaymentStatus::Unpaid,
        amount_total: purchase.price.minor(),
        currency: purchase.price.currency(),
        // Not billed yet: an open session has no discount or tax applied until the customer
        // enters them on the payment page.
        bill: None,
        expires_at: session.expires_at,
        metadata: metadata(purchase),
        purchase_id: Some(purchase.id),
        payment_intent_id: purchase.payment_intent_id.clone(),
    }
}

/// Counts a checkout in `lms_checkouts_started_total` by kind (`created`, `reused`, `free`).
fn counted(started: CheckoutStarted) -> CheckoutStarted {
    let kind = match &started {
        CheckoutStarted::Created { .. } => "created",
        CheckoutStarted::Reused { .. } => "reused",
        CheckoutStarted::FreeEnrollment { .. } => "free",
    };
    metrics::counter!("lms_checkouts_started_total", "kind" => kind).increment(1);
    started
}

/// What a purchase already holding the checkout slot means for a new checkout.
enum SlotHolder {
    /// This is the answer (its open session handed out again, or its checkout resumed).
    Answer(Box<CheckoutStarted>),
    /// The holder turned out to be finished and let the slot go: start a new purchase.
    Freed,
}

fn purchase_domain_error(err: DomainError) -> UseCaseError {
    match err {
        DomainError::CourseNotPublished => UseCaseError::NotFound(Resource::Course),
        DomainError::OwnCourse => UseCaseError::OwnCourse,
        other => UseCaseError::unexpected(other),
    }
}

impl Services {
    /// Starts (or resumes) buying a course.
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(Course)` (unknown or unpublished), [`UseCaseError::OwnCourse`],
    /// [`UseCaseError::AlreadyPurchased`], [`UseCaseError::PaymentInProgress`], [`UseCaseError::Gateway`]
    /// (no purchase is left holding the slot), storage errors.
    pub async fn start_checkout(
        &self,
        actor: &User,
        course_id: CourseId,
    ) -> Result<CheckoutStarted, UseCaseError> {
        let course = self
            .courses
            .get_course(course_id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::Course))?;
        course
            .check_purchasable_by(actor.id)
            .map_err(purchase_domain_error)?;
        for _ in 0..CHECKOUT_ATTEMPTS {
            let purchases = self
                .purchases
                .list_for_user_and_course(actor.id, course.id)
                .await?;
            if purchases.iter().any(Purchase::unlocks_course) {
                return Err(UseCaseError::AlreadyPurchased);
            }
            if let Some(holder) = purchases.into_iter().find(|p| p.holds_active_slot) {
                match self.resolve_slot_holder(actor, &course, holder).await? {
                    SlotHolder::Answer(started) => return Ok(counted(*started)),
                    SlotHolder::Freed => {}
                }
            }
            // Another request may take the slot meanwhile (`None`); re-read and answer as above.
            if let Some(started) = self.begin_purchase(actor, &course).await? {
                return Ok(counted(started));
            }
        }
        Err(UseCaseError::unexpected(
            "checkout kept losing the race for the purchase slot",
        ))
    }

    /// The user already has a pending purchase holding the slot: hand its session out again,
    /// refuse while a payment settles, or find out what became of it.
    async fn resolve_slot_holder(
        &self,
        actor: &User,
        course: &Course,
        holder: Purchase,
    ) -> Result<SlotHolder, UseCaseError> {
        if let Some(session) = holder.reusable_checkout(self.now()) {
            let session = stored_session_view(&holder, session);
            tracing::info!(purchase_id = %holder.id, "reusing open checkout session");
            return Ok(SlotHolder::Answer(Box::new(CheckoutStarted::Reused {
                purchase: holder,
                session,
            })));
        }
        if holder.awaits_settlement() {
            return Err(UseCaseError::PaymentInProgress);
        }
        match holder.checkout.clone() {
            None => self.resume_unstarted_checkout(actor, course, holder).await,
            Some(stored) => self.sync_stale_checkout(holder, &stored.id).await,
        }
    }

    /// Creation stopped between storing the purchase and attaching its session. While its
    /// session could still be opened with the same parameters, resume it with the same
    /// idempotency key (the gateway returns the session if it exists). Once too old, close it:
    /// the customer was never sent to pay, and a late payment would still complete it without
    /// taking the slot back.
    async fn resume_unstarted_checkout(
        &self,
        actor: &User,
        course: &Course,
        holder: Purchase,
    ) -> Result<SlotHolder, UseCaseError> {
        let resumable_until =
            holder.created_at + self.settings.checkout_ttl - UseCaseSettings::MIN_CHECKOUT_TTL;
        if self.now() < resumable_until {
            return self
                .open_checkout(actor, course, holder)
                .await
                .map(|started| SlotHolder::Answer(Box::new(started)));
        }
        tracing::warn!(purchase_id = %holder.id, "closing a purchase whose checkout never started");
        self.apply_sync(holder.id, vec![PaymentFact::CheckoutNotStarted], None)
            .await?;
        Ok(SlotHolder::Freed)
    }

    /// The stored session is (nearly) expired: ask the gateway what became of it, record that,
    /// and answer from the result.
    async fn sync_stale_checkout(
        &self,
        holder: Purchase,
        session_id: &str,
    ) -> Result<SlotHolder, UseCaseError> {
        let session = match self.gateway.retrieve_checkout_session(session_id).await {
            Ok(session) => Some(session),
            // Gone at the gateway: nobody can pay it any more.
            Err(GatewayError::NotFound) => None,
            Err(err) => {
                tracing::warn!(purchase_id = %holder.id, error = %err, "could not sync a stale checkout session");
                return Err(UseCaseError::Gateway(err));
            }
        };
        let facts = session
            .as_ref()
            .map_or_else(|| vec![PaymentFact::CheckoutExpired], GatewaySession::facts);
        let intent = session.as_ref().and_then(|s| s.payment_intent_id.clone());
        let synced = self.apply_sync(holder.id, facts, intent).await?;
        if synced.unlocks_course() {
            return Err(UseCaseError::AlreadyPurchased);
        }
        if synced.awaits_settlement() {
            return Err(UseCaseError::PaymentInProgress);
        }
        if !synced.holds_active_slot {
            return Ok(SlotHolder::Freed);
        }
        match session {
            // Still open at the gateway, only close to expiry: the customer may still pay there.
            Some(session) if session.status == SessionStatus::Open && session.url.is_some() => {
                Ok(SlotHolder::Answer(Box::new(CheckoutStarted::Reused {
                    purchase: synced,
                    session,
                })))
            }
            _ => Err(UseCaseError::PaymentInProgress),
        }
    }

    /// Stores a new purchase holding the slot, then opens its checkout (paid) or completes it
    /// (free). `None` when another purchase took the slot first.
    async fn begin_purchase(
        &self,
        actor: &User,
        course: &Course,
    ) -> Result<Option<CheckoutStarted>, UseCaseError> {
        let now = self.now();
        let id = PurchaseId::from_uuid(new_uuid());
        let purchase = if course.is_free() {
            Purchase::enroll_free(id, actor.id, course, now)
        } else {
            Purchase::begin(id, actor.id, course, now)
        }
        .map_err(purchase_domain_error)?;
        match self.purchases.create_purchase(&purchase).await {
            Ok(()) => {}
            Err(RepoError::ActivePurchaseExists) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
        if course.is_free() {
            tracing::info!(purchase_id = %purchase.id, "free enrolment");
            return Ok(Some(CheckoutStarted::FreeEnrollment { purchase }));
        }
        self.open_checkout(actor, course, purchase).await.map(Some)
    }

    /// The buyer's customer at the gateway: the one linked to the user, else one created now
    /// and linked (the first link wins, so concurrent checkouts of one user end up with one
    /// customer: the gateway returns the same one for the same idempotency key anyway).
    ///
    /// # Errors
    /// [`CustomerError::Gateway`] when the gateway cannot create it; [`CustomerError::Store`]
    /// when the link cannot be read or written.
    async fn gateway_customer(&self, actor: &User) -> Result<String, CustomerError> {
        if let Some(customer) = self.users.gateway_customer(actor.id).await? {
            return Ok(customer);
        }
        let request = CustomerRequest {
            user_id: actor.id,
            email: actor.email.as_str().to_owned(),
            name: actor.name.as_str().to_owned(),
            idempotency_key: customer_key(actor.id),
        };
        let created = self.gateway.create_customer(&request).await?;
        let linked = self.users.link_gateway_customer(actor.id, &created).await?;
        if linked != created {
            tracing::info!(user_id = %actor.id, "another checkout linked the user's customer first");
        }
        Ok(linked)
    }

    /// Creates the gateway session of a stored pending purchase and attaches it. On failure the
    /// purchase is closed (`CheckoutNotStarted`) so it does not block a retry; that includes a
    /// failure to create the buyer's customer at the gateway.
    async fn open_checkout(
        &self,
        actor: &User,
        course: &Course,
        purchase: Purchase,
    ) -> Result<CheckoutStarted, UseCaseError> {
        let customer_id = match self.gateway_customer(actor).await {
            Ok(customer) => customer,
            Err(CustomerError::Gateway(err)) => {
                return Err(self.checkout_not_started(purchase.id, err).await)
            }
            // The purchase keeps the slot without a session: the next checkout resumes it.
            Err(CustomerError::Store(err)) => return Err(err.into()),
        };
        let request = CheckoutRequest {
            purchase_id: purchase.id,
            course_id: course.id,
            user_id: actor.id,
            course_title: course.title.as_str().to_owned(),
            amount: purchase.price,
            // The customer carries the e-mail; the gateway refuses both at once.
            customer_id: Some(customer_id),
            customer_email: None,
            // Derived from the purchase, so a resumed creation sends identical parameters.
            expires_at: purchase.created_at + self.settings.checkout_ttl,
            idempotency_key: checkout_key(purchase.id),
        };
        let created = self.gateway.create_checkout_session(&request).await;
        let (session, url) = match created {
            Ok(session) => match session.url.clone() {
                Some(url) => (session, url),
                None => {
                    let err = GatewayError::unexpected("checkout session has no payment page");
                    return Err(self.checkout_not_started(purchase.id, err).await);
                }
            },
            Err(err) => return Err(self.checkout_not_started(purchase.id, err).await),
        };
        let stored = CheckoutSession {
            id: session.id.clone(),
            url,
            expires_at: session.expires_at,
        };
        let purchase = match self
            .purchases
            .attach_checkout(purchase.id, &stored, self.now())
            .await
        {
            Ok(purchase) => purchase,
            Err(RepoError::NotFound) => {
                return Err(UseCaseError::unexpected(
                    "purchase vanished during checkout",
                ))
            }
            Err(err) => return Err(err.into()),
        };
        tracing::info!(purchase_id = %purchase.id, session_id = %session.id, "checkout session created");
        Ok(CheckoutStarted::Created { purchase, session })
    }

    /// Records that checkout could not start, freeing the slot, and returns the gateway error.
    async fn checkout_not_started(
        &self,
        purchase_id: PurchaseId,
        err: GatewayError,
    ) -> UseCaseError {
        tracing::warn!(purchase_id = %purchase_id, error = %err, "payment provider could not start checkout");
        if let Err(store_err) = self
            .apply_sync(purchase_id, vec![PaymentFact::CheckoutNotStarted], None)
            .await
        {
            // Not returned, so logged here, with its whole chain.
            tracing::error!(purchase_id = %purchase_id, error = %lms_ports::chain_text(&store_err), "could not release the purchase slot");
        }
        UseCaseError::Gateway(err)
    }

    /// Applies facts learned by asking the gateway (no event id).
    pub(crate) async fn apply_sync(
        &self,
        purchase_id: PurchaseId,
        facts: Vec<PaymentFact>,
        payment_intent_id: Option<String>,
    ) -> Result<Purchase, UseCaseError> {
        Ok(self
            .apply_sync_seeing_others(purchase_id, facts, payment_intent_id)
            .await?
            .0)
    }

    /// [`Services::apply_sync`], with the buyer's other purchases of the course as read with
    /// the update ([`Applied::Applied`]'s `others`).
    pub(crate) async fn apply_sync_seeing_others(
        &self,
        purchase_id: PurchaseId,
        facts: Vec<PaymentFact>,
        payment_intent_id: Option<String>,
    ) -> Result<(Purchase, Vec<Purchase>), UseCaseError> {
        let update = FactUpdate {
            purchase_id,
            facts,
            payment_intent_id,
            // What the gateway says when asked (a session's state) or an operator decides
            // carries no receipt page or promotion code; events bring those.
            details: PaymentDetails::default(),
            event: None,
            at: self.now(),
        };
        match self.purchases.apply_facts(&update).await {
            Ok(Applied::Applied { purchase, others }) => Ok((purchase, others)),
            // The port applies every update without an event.
            Ok(Applied::DuplicateEvent) => Err(UseCaseError::unexpected(
                "the store counted an update without an event as a duplicate",
            )),
            Err(RepoError::NotFound) => Err(UseCaseError::NotFound(Resource::Purchase)),
            Err(err) => Err(err.into()),
        }
    }

    /// Whether the purchase of a course by the account `session` speaks for unlocks it; with
    /// `session_id`, first asks the gateway about that session (when it is one of the actor's
    /// for this course, its purchase is still pending, and it was not asked within
    /// [`UseCaseSettings::gateway_sync_min_interval`]). An unpublished course is answered to
    /// its owner, admins and the buyers it is unlocked for.
    ///
    /// The frontend polls this while a payment settles, so the account, the course and the
    /// purchases are one read ([`lms_ports::PurchaseRepo::buyer_view`]), and the session is
    /// checked against the account it returns rather than by a read of its own.
    ///
    /// # Errors
    /// [`UseCaseError::SessionEnded`] when the account is gone or the session was ended;
    /// [`UseCaseError::NotFound`]`(Course)` when unknown or hidden from the actor; storage
    /// errors. A gateway failure during the sync is logged, not returned.
    pub async fn purchase_status(
        &self,
        session: SessionClaim,
        course_id: CourseId,
        session_id: Option<&str>,
    ) -> Result<PurchaseStatusView, UseCaseError> {
        let BuyerView {
            user: actor,
            course,
            mut purchases,
        } = self
            .purchases
            .buyer_view(session.user_id, course_id)
            .await?
            .filter(|view| view.user.honours_session(session.session_generation))
            .ok_or(UseCaseError::SessionEnded)?;
        let actor = &actor;
        // Visibility is decided below from the purchases read with it.
        let course = course.ok_or(UseCaseError::NotFound(Resource::Course))?;
        let own_session = session_id.and_then(|sid| {
            purchases
                .iter()
                .find(|p| p.checkout.as_ref().is_some_and(|s| s.id == sid))
                .map(|p| (p.id, sid, open_to_session_sync(p)))
        });
        let own_session = match own_session {
            Some((purchase_id, _, false)) => {
                tracing::debug!(purchase_id = %purchase_id, "purchase is decided; status answered without the gateway");
                None
            }
            Some((purchase_id, sid, true)) => {
                let min_interval = self.settings.gateway_sync_min_interval;
                if self
                    .sync_throttle
                    .try_acquire(purchase_id, self.now(), min_interval)
                {
                    Some((purchase_id, sid))
                } else {
                    tracing::debug!(purchase_id = %purchase_id, "session asked about recently; status answered from storage");
                    None
                }
            }
            None => {
                if session_id.is_some() {
                    tracing::warn!(course_id = %course.id, "purchase status asked with a session that is not the user's");
                }
                None
            }
        };
        if let Some((purchase_id, sid)) = own_session {
            match self.gateway.retrieve_checkout_session(sid).await {
                // An open unpaid session proves nothing: no write.
                Ok(session)
                    if session.facts().is_empty() && session.payment_intent_id.is_none() => {}
                Ok(session) => {
                    let synced = self
                        .apply_sync(
                            purchase_id,
                            session.facts(),
                            session.payment_intent_id.clone(),
                        )
                        .await?;
                    if let Some(slot) = purchases.iter_mut().find(|p| p.id == synced.id) {
                        *slot = synced;
                    }
                }
                Err(err) => {
                    // Not returned, so logged here, with its whole chain.
                    tracing::warn!(purchase_id = %purchase_id, error = %lms_ports::chain_text(&err), "session sync failed; answering from stored state");
                }
            }
        }
        // After the sync: a buyer who paid just before the course was unpublished, and whose
        // webhook has not arrived yet, is a buyer it stays unlocked for. Only the actor's own
        // purchase of this course is ever synced, so a stranger causes no gateway call.
        if !course_visible_to(actor, &course, &purchases) {
            return Err(UseCaseError::NotFound(Resource::Course));
        }
        let shown = match purchases.iter().position(Purchase::unlocks_course) {
            Some(index) => Some(purchases.swap_remove(index)),
            None => purchases.into_iter().next(),
        };
        Ok(PurchaseStatusView {
            course,
            purchase: shown,
        })
    }

    /// The actor's unlocked courses, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn purchased_courses(
        &self,
        actor: &User,
    ) -> Result<Vec<PurchasedCourse>, UseCaseError> {
        Ok(self.purchases.list_unlocked_for_user(actor.id).await?)
    }

    /// One page of the actor's order history: every purchase of theirs, whatever its status,
    /// with its course, newest first (ties broken by id).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn purchase_history(
        &self,
        actor: &User,
        page: PageRequest,
    ) -> Result<Page<PurchasedCourse>, UseCaseError> {
        Ok(self
            .purchases
            .list_for_user(actor.id, PageRequest::new(page.page, page.limit))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> PurchaseId {
        PurchaseId::from_uuid(uuid::Uuid::from_u128(n))
    }

    const T0: OffsetDateTime = time::macros::datetime!(2026-01-01 00:00 UTC);
    const EVERY_5S: Duration = Duration::seconds(5);

    #[test]
    fn a_purchase_is_let_through_once_per_interval() {
        let throttle = SyncThrottle::default();
        assert!(throttle.try_acquire(id(1), T0, EVERY_5S));
        assert!(!throttle.try_acquire(id(1), T0 + Duration::seconds(4), EVERY_5S));
        assert!(throttle.try_acquire(id(2), T0 + Duration::seconds(4), EVERY_5S));
        assert!(throttle.try_acquire(id(1), T0 + EVERY_5S, EVERY_5S));
        assert!(!throttle.try_acquire(id(1), T0 + Duration::seconds(9), EVERY_5S));
    }

    #[test]
    fn zero_interval_never_throttles_and_a_clock_gone_back_releases() {
        let throttle = SyncThrottle::default();
        assert!(throttle.try_acquire(id(1), T0, Duration::ZERO));
        assert!(throttle.try_acquire(id(1), T0, Duration::ZERO));
        assert_eq!(throttle.len(), 0);
        assert!(throttle.try_acquire(id(1), T0, EVERY_5S));
        assert!(throttle.try_acquire(id(1), T0 - Duration::seconds(1), EVERY_5S));
    }

    #[test]
    fn memory_stays_bounded_dropping_expired_entries_first_then_the_oldest() {
        let throttle = SyncThrottle::default();
        let cap = u128::try_from(SYNC_THROTTLE_CAPACITY).unwrap();
        for n in 0..cap {
            assert!(throttle.try_acquire(id(n), T0, EVERY_5S));
        }
        // All still fresh: the oldest one goes, the rest keep holding.
        let later = T0 + Duration::seconds(1);
        assert!(throttle.try_acquire(id(cap), later, EVERY_5S));
        assert_eq!(throttle.len(), SYNC_THROTTLE_CAPACITY);
        assert!(!throttle.try_acquire(id(cap), later, EVERY_5S));
        // Once the interval has passed, a new entry sweeps every expired one away.
        assert!(throttle.try_acquire(id(cap + 1), T0 + Duration::seconds(5), EVERY_5S));
        assert_eq!(throttle.len(), 2);
    }
}
