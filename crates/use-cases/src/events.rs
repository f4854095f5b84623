//! The event inbox: every verified gateway event goes through one path, whether it came as a
//! webhook, from the gateway's event history (`sync`) or from the inbox itself (`replay`), and
//! is recorded with what became of it.
//!
//! Outcomes and what the gateway is answered (the HTTP adapter turns `Ok` into 2xx):
//! - applied / held: the facts were merged and the inbox row written in one atomic unit;
//! - ignored (a type we do not act on), unmatched (about no purchase of ours): recorded;
//! - failed: a cause retrying cannot fix (the payment intent is linked to another purchase);
//!   recorded with its error and answered 2xx, so the gateway stops and an operator replays it
//!   once the cause is fixed;
//! - a transient failure (storage or gateway unavailable) records nothing and is an `Err`, so
//!   the gateway delivers again.

use crate::error::Resource;
use crate::operations::Operator;
use crate::{Services, UseCaseError};
use lms_domain::{PaymentDetails, PaymentFact, Purchase, PurchaseId, PurchaseStatus};
use lms_ports::{
    Applied, AuditAction, AuditActor, DeliveryKind, EventDelivery, EventFilter, EventOutcome,
    EventQuery, FactUpdate, GatewayEvent, InboxRecord, Page, PageRequest, PurchaseLocator,
    Recorded, RepoError, Unapplied, WebhookEvent,
};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use time::{Duration, OffsetDateTime};
use tracing::Instrument;

/// What processing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The event's facts were merged into the purchase.
    Applied {
        purchase_id: PurchaseId,
        status: PurchaseStatus,
    },
    /// The facts were merged and the purchase is held for review (a payment that does not
    /// match the price): it stays pending and locked until an operator resolves it.
    Held { purchase_id: PurchaseId },
    /// The event was already recorded: a redelivery only counted, nothing else written.
    Duplicate,
    /// An authentic event of a type this product does not act on.
    Ignored,
    /// An authentic event about no purchase of ours.
    Unmatched,
    /// Recorded as failed for an operator: retrying as sent would not help.
    Failed { error: String },
}

impl WebhookOutcome {
    /// The metric label and summary word: `applied`, `held`, `duplicate`, `ignored`,
    /// `unmatched`, `failed`.
    pub const fn label(&self) -> &'static str {
        match self {
            WebhookOutcome::Applied { .. } => "applied",
            WebhookOutcome::Held { .. } => "held",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::Unmatched => "unmatched",
            WebhookOutcome::Failed { .. } => "failed",
        }
    }
}

/// How many items of a long run (events of a `sync` or `replay --failed`, purchases of a
/// reconciliation) ended with each label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// What is counted, singular: `event`, `purchase`.
    noun: &'static str,
    counts: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Counts events by [`WebhookOutcome::label`].
    pub fn events() -> Self {
        Self::of("event")
    }

    /// Counts `noun`s (singular) by label.
    pub fn of(noun: &'static str) -> Self {
        Self {
            noun,
            counts: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, label: &'static str) {
        *self.counts.entry(label).or_default() += 1;
    }

    /// How many ended with this label.
    pub fn count(&self, label: &str) -> u64 {
        self.counts.get(label).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// `3 events: applied 2, unmatched 1` (only the labels that occurred, alphabetically).
impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total();
        let plural = if total == 1 { "" } else { "s" };
        write!(f, "{total} {}{plural}", self.noun)?;
        let mut separator = ": ";
        for (label, count) in &self.counts {
            write!(f, "{separator}{label} {count}")?;
            separator = ", ";
        }
        Ok(())
    }
}

/// Where a long run stands, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunProgress {
    /// Items looked at so far.
    pub seen: u64,
    /// Items known to exist in all, when known (a replay knows; a sync learns page by page).
    pub total: Option<u64>,
}

/// How far back the gateway keeps events: a sync cannot start earlier.
pub const EVENT_HISTORY: Duration = Duration::days(30);

/// The page size asked of the gateway's event history.
const EVENT_PAGE: u32 = 100;

/// How many of the latest recorded events [`RecentEvents`] remembers: a fingerprint of 8
/// bytes each, kept in a set and in order, about 300 KiB when full.
const RECENT_EVENTS_CAPACITY: usize = 10_000;

/// The events this process saw recorded lately, by a fingerprint of their id, so that a
/// redelivery of one is only counted ([`lms_ports::EventInbox::count_redelivery`]): one
/// statement, without locating the purchase, asking the gateway for a promotion code's text,
/// or the upsert and lock of the inbox transaction. A hint, never the truth: an event
/// remembered that the inbox does not hold (two ids with one fingerprint, a store emptied
/// under the process) costs that statement, which then writes nothing, before the usual path;
/// an event forgotten (the oldest go first) or recorded by another instance takes the usual
/// path, which counts a redelivery as well. Only an event whose recording returned is
/// remembered, so a redelivery racing its first delivery takes the usual path too, and waits
/// for the first there.
#[derive(Debug, Default)]
pub(crate) struct RecentEvents {
    hasher: RandomState,
    remembered: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    fingerprints: HashSet<u64>,
    oldest_first: VecDeque<u64>,
}

impl RecentEvents {
    /// What stands for `event_id` here: taken once per event, for [`RecentEvents::holds`] and
    /// [`RecentEvents::remember`].
    pub(crate) fn fingerprint(&self, event_id: &str) -> u64 {
        self.hasher.hash_one(event_id)
    }

    pub(crate) fn holds(&self, fingerprint: u64) -> bool {
        self.lock().fingerprints.contains(&fingerprint)
    }

    /// Remembers an event, forgetting the oldest beyond [`RECENT_EVENTS_CAPACITY`].
    pub(crate) fn remember(&self, fingerprint: u64) {
        let mut remembered = self.lock();
        if !remembered.fingerprints.insert(fingerprint) {
            return;
        }
        remembered.oldest_first.push_back(fingerprint);
        if remembered.oldest_first.len() > RECENT_EVENTS_CAPACITY {
            if let Some(oldest) = remembered.oldest_first.pop_front() {
                remembered.fingerprints.remove(&oldest);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Remembered> {
        // Every change leaves the set and the order consistent before anything can panic.
        self.remembered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts one processed event in `lms_webhook_deliveries_total`. Event types come from
/// verified events only, and the gateway's set of them is small, so the label stays bounded.
pub(crate) fn record_webhook(event_type: &str, outcome: &'static str) {
    metrics::counter!(
        "lms_webhook_deliveries_total",
        "event_type" => event_type.to_owned(),
        "outcome" => outcome,
    )
    .increment(1);
}

impl Services {
    /// Verifies a gateway webhook and processes it through the inbox; counts the delivery in
    /// `lms_webhook_deliveries_total` by event type and outcome (`applied`, `held`,
    /// `duplicate`, `ignored`, `unmatched`, `failed`, `bad_signature`). An unverified request
    /// is never stored.
    ///
    /// # Errors
    /// [`UseCaseError::WebhookRejected`] (nothing written); [`UseCaseError::Unavailable`] /
    /// [`UseCaseError::Unexpected`] / [`UseCaseError::Gateway`] when it could not be processed
    /// now (nothing recorded: the gateway should retry).
    pub async fn handle_webhook(
        &self,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookOutcome, UseCaseError> {
        let event = match self.gateway.verify_webhook(payload, signature) {
            Ok(event) => event,
            Err(rejection) => {
                tracing::warn!(reason = %rejection, "webhook rejected");
                // Nothing of an unverified payload is trusted, not even as a metric label.
                record_webhook("unknown", "bad_signature");
                return Err(UseCaseError::WebhookRejected(rejection));
            }
        };
        self.process_event(event, DeliveryKind::Delivered).await
    }

    /// Processes one verified event: records it in the inbox with its outcome, merging its
    /// facts exactly once when it is about one of our purchases.
    ///
    /// # Errors
    /// As [`Services::handle_webhook`], without the rejection.
    pub(crate) async fn process_event(
        &self,
        event: WebhookEvent,
        kind: DeliveryKind,
    ) -> Result<WebhookOutcome, UseCaseError> {
        let (envelope, about) = match event {
            WebhookEvent::Relevant(GatewayEvent {
                envelope,
                locator,
                facts,
                details,
            }) => (envelope, Some((locator, facts, details))),
            WebhookEvent::Ignored(envelope) => (envelope, None),
        };
        let span = tracing::info_span!(
            "webhook",
            event_id = %envelope.id,
            event_type = %envelope.event_type,
            purchase_id = tracing::field::Empty,
        );
        let event_type = envelope.event_type.clone();
        let fingerprint = self.recent_events.fingerprint(&envelope.id);
        let delivery = EventDelivery { envelope, kind };
        let result = self
            .settle(delivery, about, fingerprint)
            .instrument(span)
            .await;
        let label = match &result {
            Ok(outcome) => {
                // Whatever the outcome, the inbox holds the event now.
                self.recent_events.remember(fingerprint);
                outcome.label()
            }
            Err(_) => "failed",
        };
        record_webhook(&event_type, label);
        result
    }

    async fn settle(
        &self,
        delivery: EventDelivery,
        about: Option<(PurchaseLocator, Vec<PaymentFact>, PaymentDetails)>,
        fingerprint: u64,
    ) -> Result<WebhookOutcome, UseCaseError> {
        if delivery.kind == DeliveryKind::Delivered && self.recent_events.holds(fingerprint) {
            let event_id = &delivery.envelope.id;
            if self.inbox.count_redelivery(event_id, self.now()).await? {
                tracing::info!("duplicate webhook");
                return Ok(WebhookOutcome::Duplicate);
            }
            // Two ids with one 64-bit fingerprint are not what to expect here.
            tracing::warn!(
                "an event recorded through this process is not in the inbox (was the database \
                 restored or replaced under the running app?); processing it as new"
            );
        }
        let Some((locator, facts, details)) = about else {
            tracing::debug!("webhook of a type not acted on");
            return self
                .record_unapplied(&delivery, EventOutcome::Ignored, None, None)
                .await;
        };
        // A transient failure here records nothing: the gateway delivers again.
        let Some(purchase_id) = self.locate(&locator).await? else {
            tracing::warn!("webhook matches no purchase");
            return self
                .record_unapplied(&delivery, EventOutcome::Unmatched, None, None)
                .await;
        };
        tracing::Span::current().record("purchase_id", tracing::field::display(purchase_id));
        let details = self.with_promotion_code_text(details).await;
        let pays = facts
            .iter()
            .any(|fact| matches!(fact, PaymentFact::PaymentSucceeded { .. }));
        let update = FactUpdate {
            purchase_id,
            facts,
            payment_intent_id: locator.payment_intent_id,
            details,
            event: Some(delivery),
            at: self.now(),
        };
        let applied = self.purchases.apply_facts(&update).await;
        let FactUpdate {
            event: Some(delivery),
            ..
        } = update
        else {
            return Err(UseCaseError::unexpected("the event left its update"));
        };
        match applied {
            Ok(Applied::Applied { purchase, others }) => {
                let outcome = applied_outcome(&purchase);
                // `purchase_id` is the span's, recorded above.
                tracing::info!(
                    status = purchase.status().as_str(),
                    outcome = outcome.label(),
                    "webhook applied"
                );
                // The status each applied event left the purchase in (not a count of purchases).
                metrics::counter!("lms_purchase_updates_total", "status" => purchase.status().as_str())
                    .increment(1);
                if pays && purchase.unlocks_course() {
                    self.refund_double_payments(
                        purchase.clone(),
                        others,
                        Some(&delivery.envelope.id),
                    )
                    .await?;
                }
                Ok(outcome)
            }
            Ok(Applied::DuplicateEvent) => {
                tracing::info!(purchase_id = %purchase_id, "duplicate webhook");
                Ok(WebhookOutcome::Duplicate)
            }
            // The event names a purchase id we do not have: not ours.
            Err(RepoError::NotFound) => {
                tracing::warn!(purchase_id = %purchase_id, "webhook names an unknown purchase");
                self.record_unapplied(&delivery, EventOutcome::Unmatched, None, None)
                    .await
            }
            Err(RepoError::Duplicate(field)) => {
                let error = format!(
                    "another purchase is already linked to this event's {}",
                    field.replace('_', " ")
                );
                tracing::error!(purchase_id = %purchase_id, %error, "webhook cannot be applied; recorded as failed");
                self.record_unapplied(
                    &delivery,
                    EventOutcome::Failed,
                    Some(error),
                    Some(purchase_id),
                )
                .await
            }
            // Logged with its cause chain where it becomes a 5xx.
            Err(err) => Err(err.into()),
        }
    }

    /// The details with the promotion code as the customer typed it (`SPRING25`) instead of
    /// the gateway's id for it (`promo_...`, all an event carries). Only a checkout with a code
    /// costs the gateway call; when the gateway cannot say (unknown code, or unavailable), the
    /// id is kept: it still names the code, and the payment must not wait on a label.
    async fn with_promotion_code_text(&self, mut details: PaymentDetails) -> PaymentDetails {
        let Some(id) = details.promotion_code.as_deref() else {
            return details;
        };
        match self.gateway.promotion_code_text(id).await {
            Ok(Some(text)) => details.promotion_code = Some(text),
            Ok(None) => tracing::warn!(
                promotion_code = id,
                "the payment provider does not know the promotion code; its id is kept"
            ),
            Err(err) => {
                tracing::warn!(promotion_code = id, error = %lms_ports::chain_text(&err), "could not read the promotion code; its id is kept")
            }
        }
        details
    }

    async fn record_unapplied(
        &self,
        delivery: &EventDelivery,
        outcome: EventOutcome,
        error: Option<String>,
        purchase_id: Option<PurchaseId>,
    ) -> Result<WebhookOutcome, UseCaseError> {
        let unapplied = Unapplied {
            outcome,
            error: error.clone(),
            purchase_id,
        };
        match self
            .inbox
            .record_event(delivery, &unapplied, self.now())
            .await?
        {
            Recorded::Duplicate => Ok(WebhookOutcome::Duplicate),
            Recorded::Written => Ok(match outcome {
                EventOutcome::Ignored => WebhookOutcome::Ignored,
                EventOutcome::Unmatched => WebhookOutcome::Unmatched,
                _ => WebhookOutcome::Failed {
                    error: error.unwrap_or_default(),
                },
            }),
        }
    }

    /// Which purchase an event is about: its purchase id, else its checkout session, else its
    /// payment intent (ours, then the gateway's session for it).
    async fn locate(&self, locator: &PurchaseLocator) -> Result<Option<PurchaseId>, UseCaseError> {
        if let Some(id) = locator.purchase_id {
            return Ok(Some(id));
        }
        if let Some(session_id) = &locator.checkout_session_id {
            if let Some(purchase) = self.purchases.find_by_checkout_session(session_id).await? {
                return Ok(Some(purchase.id));
            }
        }
        let Some(intent) = &locator.payment_intent_id else {
            return Ok(None);
        };
        if let Some(purchase) = self.purchases.find_by_payment_intent(intent).await? {
            return Ok(Some(purchase.id));
        }
        let Some(session) = self.gateway.find_session_by_payment_intent(intent).await? else {
            return Ok(None);
        };
        if let Some(id) = session.purchase_id {
            return Ok(Some(id));
        }
        Ok(self
            .purchases
            .find_by_checkout_session(&session.id)
            .await?
            .map(|p| p.id))
    }

    /// A payment just unlocked `paid`'s course: when another purchase of the same buyer and
    /// course (among `others`, all of them as read with `paid`, see
    /// [`lms_ports::Applied::Applied`]) unlocks it too (two tabs, a late payment of an expired
    /// checkout), every one but the keeper is refunded in full, if
    /// [`crate::UseCaseSettings::auto_refund_double_payments`].
    /// The keeper is the purchase holding the active slot, else the earliest paid, so every
    /// instance and every order of events picks the same one; two events deciding at once are
    /// serialized by the purchase's refund lease and refund it once (the second finds nothing
    /// left, or the first still at it).
    ///
    /// A refund the gateway refuses marks the event failed (when there is one), so an operator
    /// sees it and a replay tries again.
    pub(crate) async fn refund_double_payments(
        &self,
        paid: Purchase,
        others: Vec<Purchase>,
        event_id: Option<&str>,
    ) -> Result<(), UseCaseError> {
        let unlocking: Vec<Purchase> = std::iter::once(paid)
            .chain(others)
            .filter(Purchase::unlocks_course)
            .collect();
        if unlocking.len() < 2 {
            return Ok(());
        }
        let keeper = unlocking
            .iter()
            .min_by_key(|p| (!p.holds_active_slot, p.paid_at(), p.created_at, p.id))
            .map(|p| p.id);
        for extra in unlocking.iter().filter(|p| Some(p.id) != keeper) {
            if !self.settings.auto_refund_double_payments {
                tracing::error!(
                    purchase_id = %extra.id, user_id = %extra.user_id, course_id = %extra.course_id,
                    "a second payment for a course the buyer already owns; automatic refunds are off"
                );
                continue;
            }
            if let Err(err) = self.refund_double_payment(extra).await {
                let error = format!("the automatic refund of a double payment failed: {err}");
                tracing::error!(purchase_id = %extra.id, error = %lms_ports::chain_text(&err), "automatic refund of a double payment failed");
                let Some(event_id) = event_id else {
                    return Err(err);
                };
                self.inbox.mark_failed(event_id, &error).await?;
            }
        }
        Ok(())
    }

    /// Refunds a double payment in full, serialized with any other refund of it. Planned
    /// against the purchase as leased: when it was refunded meanwhile (the other event about
    /// the same payment got there first), nothing is left to do. When another refund of it is
    /// in progress right now, that one is left to finish: it is the other event's refund of
    /// this very payment, or an operator's, and either reports its own failure.
    async fn refund_double_payment(&self, extra: &Purchase) -> Result<(), UseCaseError> {
        let planned = self
            .refund_serialized(
                extra.id,
                "double-payment",
                Some("duplicate".to_owned()),
                |leased| {
                    if leased.payment_intent_id.is_none() {
                        return Err(UseCaseError::unexpected(
                            "a double payment without a known payment intent",
                        ));
                    }
                    leased
                        .plan_refund(None)
                        .map_err(|err| UseCaseError::NotRefundable(err.to_string()))
                },
            )
            .await;
        let refunded = match planned {
            Ok(refunded) => refunded,
            // Nothing captured is left to refund (already refunded meanwhile).
            Err(UseCaseError::NotRefundable(_)) => return Ok(()),
            Err(UseCaseError::RefundInProgress) => {
                tracing::info!(purchase_id = %extra.id, "a refund of this double payment is already in progress");
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        tracing::warn!(
            purchase_id = %extra.id, amount = refunded.amount.minor(),
            "refunded a second payment for a course the buyer already owns"
        );
        metrics::counter!("lms_double_payments_refunded_total").increment(1);
        self.audit_purchase(
            AuditActor::System,
            AuditAction::RefundDoublePayment,
            Some(extra.id),
            None,
            Some(refunded.amount),
            "a second payment for a course the buyer already owned".to_owned(),
        )
        .await?;
        Ok(())
    }

    /// Inbox events matching `filter`, most recently received first.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`] unless an admin or the operator; storage errors.
    pub async fn list_events(
        &self,
        operator: Operator<'_>,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Page<InboxRecord>, UseCaseError> {
        operator.authorise()?;
        Ok(self.inbox.list_events(filter, page).await?)
    }

    /// One inbox event, with its payload while kept.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`] unless an admin or the operator;
    /// [`UseCaseError::NotFound`]`(Event)`; storage errors.
    pub async fn event(
        &self,
        operator: Operator<'_>,
        event_id: &str,
    ) -> Result<InboxRecord, UseCaseError> {
        operator.authorise()?;
        self.inbox
            .get_event(event_id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::Event))
    }

    /// Processes a stored event again from its payload, through the same exactly-once path:
    /// an event already applied or held is left alone ([`WebhookOutcome::Duplicate`]).
    /// Written to the audit trail.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`]; [`UseCaseError::NotFound`]`(Event)`;
    /// [`UseCaseError::NotReplayable`] when its payload was pruned or no longer decodes;
    /// as [`Services::handle_webhook`] otherwise.
    pub async fn replay_event(
        &self,
        operator: Operator<'_>,
        event_id: &str,
    ) -> Result<WebhookOutcome, UseCaseError> {
        let actor = operator.authorise()?;
        let record = self
            .inbox
            .get_event(event_id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::Event))?;
        let Some(payload) = record.payload else {
            return Err(UseCaseError::NotReplayable(
                "its payload was pruned after the retention period".to_owned(),
            ));
        };
        let event = self
            .gateway
            .decode_stored_event(payload.as_bytes())
            .map_err(|rejection| {
                UseCaseError::NotReplayable(format!("its payload does not decode: {rejection}"))
            })?;
        let outcome = self.process_event(event, DeliveryKind::Replayed).await?;
        tracing::info!(event_id, outcome = outcome.label(), "event replayed");
        self.audit_purchase(
            actor,
            AuditAction::ReplayEvent,
            record.purchase_id,
            Some(event_id),
            None,
            format!("was {}, now {}", record.outcome, outcome.label()),
        )
        .await?;
        Ok(outcome)
    }

    /// Replays every failed event; `progress` hears after each one.
    ///
    /// # Errors
    /// As [`Services::replay_event`]; the first error stops the run.
    pub async fn replay_failed(
        &self,
        operator: Operator<'_>,
        progress: &mut (dyn FnMut(RunProgress) + Send),
    ) -> Result<Tally, UseCaseError> {
        operator.authorise()?;
        // Ids first: a replayed event leaves the failed list, so paging while replaying would
        // skip some.
        let filter = EventFilter {
            outcome: Some(EventOutcome::Failed),
            since: None,
        };
        let mut ids = Vec::new();
        for page_number in 1.. {
            let page = self
                .inbox
                .list_events(
                    filter,
                    PageRequest::new(page_number, PageRequest::MAX_LIMIT),
                )
                .await?;
            let full = page.items.len() == PageRequest::MAX_LIMIT as usize;
            ids.extend(page.items.into_iter().map(|record| record.event_id));
            if !full {
                break;
            }
        }
        let total = Some(ids.len() as u64);
        let mut tally = Tally::events();
        for (done, id) in ids.iter().enumerate() {
            let outcome = self.replay_event(operator, id).await?;
            tally.add(outcome.label());
            progress(RunProgress {
                seen: done as u64 + 1,
                total,
            });
        }
        Ok(tally)
    }

    /// Reads the gateway's event history from `since` and processes every event the inbox
    /// does not hold yet, through the same path as a webhook: recovery after an outage or a
    /// wrong webhook secret. `progress` hears after each page.
    ///
    /// # Errors
    /// [`UseCaseError::Validation`] on `since` when in the future or older than the gateway
    /// keeps events ([`EVENT_HISTORY`]); [`UseCaseError::Gateway`]; as
    /// [`Services::handle_webhook`]. The first error stops the run; running it again is safe.
    pub async fn sync_events(
        &self,
        since: OffsetDateTime,
        progress: &mut (dyn FnMut(RunProgress) + Send),
    ) -> Result<Tally, UseCaseError> {
        let now = self.now();
        if since > now {
            return Err(UseCaseError::field("since", "must not be in the future"));
        }
        if since < now - EVENT_HISTORY {
            return Err(UseCaseError::field(
                "since",
                "the payment provider keeps events for 30 days: start within them",
            ));
        }
        let mut tally = Tally::events();
        let mut seen = 0_u64;
        let mut starting_after = None;
        loop {
            let query = EventQuery {
                created_from: since,
                starting_after: starting_after.take(),
                limit: EVENT_PAGE,
            };
            let page = self.gateway.list_events(&query).await?;
            let ids: Vec<String> = page
                .events
                .iter()
                .map(|event| event.envelope().id.clone())
                .collect();
            let known: HashSet<String> = self
                .inbox
                .known_event_ids(&ids)
                .await?
                .into_iter()
                .collect();
            starting_after = ids.last().cloned();
            seen += ids.len() as u64;
            for event in page.events {
                if known.contains(&event.envelope().id) {
                    continue;
                }
                let outcome = self.process_event(event, DeliveryKind::Delivered).await?;
                tally.add(outcome.label());
            }
            progress(RunProgress { seen, total: None });
            if !page.has_more || starting_after.is_none() {
                break;
            }
        }
        Ok(tally)
    }

    /// Drops the payloads of events received more than `retention` ago, in batches of
    /// `batch`; their rows and outcomes stay. Returns how many were pruned.
    ///
    /// # Errors
    /// Storage errors (what was pruned before stays pruned).
    pub async fn prune_event_payloads(
        &self,
        retention: Duration,
        batch: u32,
    ) -> Result<u64, UseCaseError> {
        let cutoff = self.now() - retention;
        let mut pruned = 0;
        loop {
            let count = self.inbox.prune_payloads(cutoff, batch).await?;
            pruned += count;
            if count < u64::from(batch) {
                break;
            }
        }
        if pruned > 0 {
            tracing::info!(pruned, "pruned event payloads past their retention");
        }
        Ok(pruned)
    }
}

fn applied_outcome(purchase: &Purchase) -> WebhookOutcome {
    match EventOutcome::of_applied(purchase) {
        EventOutcome::Held => {
            if let Some(reason) = purchase.review_reason() {
                // Kept pending and locked; an operator must look at it.
                tracing::warn!(purchase_id = %purchase.id, ?reason, "payment held for review");
            }
            WebhookOutcome::Held {
                purchase_id: purchase.id,
            }
        }
        _ => WebhookOutcome::Applied {
            purchase_id: purchase.id,
            status: purchase.status(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{RecentEvents, RECENT_EVENTS_CAPACITY};

    #[test]
    fn recent_events_forget_the_oldest_beyond_their_capacity() {
        let recent = RecentEvents::default();
        let holds = |id: &str| recent.holds(recent.fingerprint(id));
        let remember = |id: &str| recent.remember(recent.fingerprint(id));
        assert!(!holds("evt_0"));
        for n in 0..RECENT_EVENTS_CAPACITY {
            remember(&format!("evt_{n}"));
        }
        // Remembered again: still one entry, and not made younger.
        remember("evt_0");
        assert!(holds("evt_0"));

        remember("evt_new");
        assert!(!holds("evt_0"), "the oldest is forgotten");
        assert!(holds("evt_1"));
        assert!(holds(&format!("evt_{}", RECENT_EVENTS_CAPACITY - 1)));
        assert!(holds("evt_new"));
        assert!(!holds("evt_never"));
    }
}
