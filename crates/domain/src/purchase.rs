//! The purchase state machine.
//!
//! Webhooks arrive at least once and in any order, so a purchase does not move through
//! states by "transition from X to Y". It accumulates [`PaymentFact`]s into
//! [`PaymentFacts`], a join-semilattice: every field only ever grows (a flag turns on, an
//! amount takes the larger value, the time of payment the earlier one), so merging is
//! commutative, associative and idempotent.
//! The status is a pure function of the facts and the price. Consequences:
//!
//! - a duplicate event changes nothing;
//! - a refund that arrives before the payment it refunds is kept and takes effect when the
//!   payment arrives;
//! - a stale "attempt failed" after success changes nothing; a success after a failed attempt
//!   completes the purchase.
//!
//! The property tests at the bottom check the central claim: for any set of facts, every
//! order with any duplication yields the same purchase.

use crate::bill::{Bill, Sale};
use crate::course::Course;
use crate::error::DomainError;
use crate::ids::{CourseId, PurchaseId, UserId};
use crate::money::Money;
use time::{Duration, OffsetDateTime};

/// How a closed dispute ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeOutcome {
    Won,
    Lost,
}

/// One thing the payment gateway reported about a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentFact {
    /// Money was captured (`checkout.session.completed` paid, `async_payment_succeeded`,
    /// `charge.succeeded`, or a paid session found by sync); zero when a promotion code took
    /// the whole price off. `at` is when the gateway says the payment completed; `None` when
    /// the report does not say (a session found by sync).
    PaymentSucceeded {
        amount: Money,
        at: Option<OffsetDateTime>,
    },
    /// What the gateway computed the customer owed for the checkout (subtotal, discount,
    /// tax, total, and the amounts in the price's currency when presented in another one).
    Billed(Bill),
    /// A payment attempt failed. Not final: the customer may retry in the same session.
    PaymentAttemptFailed,
    /// Checkout completed with a delayed payment method (bank debit) that is still settling.
    PaymentProcessing,
    /// The delayed payment failed: final for this checkout.
    AsyncPaymentFailed,
    /// The checkout session closed without payment.
    CheckoutExpired,
    /// Starting checkout at the gateway failed, so the customer was never sent to pay.
    CheckoutNotStarted,
    /// The total refunded so far (cumulative, as the gateway reports it; not a delta).
    Refunded { total: Money },
    /// A dispute (chargeback) was opened.
    DisputeOpened,
    /// A dispute was closed.
    DisputeClosed(DisputeOutcome),
    /// An operator reviewed a payment that does not match the price and accepted it as
    /// paying for the course. Means nothing without such a payment.
    AcceptedByOperator,
}

/// Everything known about a purchase's payment: the join of all facts received.
///
/// Every combination of fields is a state that can really be reported, so the fields are
/// public for adapters to persist; only [`PaymentFacts::record`] should grow them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PaymentFacts {
    /// The payment captured, in the currency the customer paid in. One checkout captures one
    /// payment, reported by several events; should reports ever disagree, the largest by
    /// (currency, amount) is kept, so the result is order-free.
    pub captured: Option<Money>,
    /// The earliest completion time reported for the captured payment. Several reports of one
    /// payment (the session's event, the charge's) may carry slightly different times; the
    /// earliest is kept so that the result does not depend on which arrived first.
    pub paid_at: Option<OffsetDateTime>,
    /// What the gateway billed. Whether the captured payment pays for the course is decided
    /// against it when known (so a charge reported before its bill is judged again once the
    /// bill arrives); of contradictory bills, the largest is kept.
    pub bill: Option<Bill>,
    pub attempt_failed: bool,
    pub processing: bool,
    pub async_payment_failed: bool,
    pub checkout_expired: bool,
    pub checkout_not_started: bool,
    /// The largest cumulative refund reported (refund totals only grow).
    pub refunded: Option<Money>,
    pub dispute_opened: bool,
    pub dispute_won: bool,
    pub dispute_lost: bool,
    /// An operator accepted a mismatched payment as paying for the course.
    pub accepted_by_operator: bool,
}

fn earliest(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn larger(a: Option<Money>, b: Money) -> Money {
    match a {
        Some(a) if (a.currency(), a.minor()) >= (b.currency(), b.minor()) => a,
        _ => b,
    }
}

fn larger_bill(a: Option<Bill>, b: Bill) -> Bill {
    match a {
        Some(a) if a.order_key() >= b.order_key() => a,
        _ => b,
    }
}

impl PaymentFacts {
    /// Merges one fact in. Returns whether anything changed (false for a duplicate or an
    /// already-implied fact).
    pub fn record(&mut self, fact: PaymentFact) -> bool {
        let before = self.clone();
        match fact {
            PaymentFact::PaymentSucceeded { amount, at } => {
                self.captured = Some(larger(self.captured, amount));
                self.paid_at = earliest(self.paid_at, at);
            }
            PaymentFact::Billed(bill) => self.bill = Some(larger_bill(self.bill, bill)),
            PaymentFact::PaymentAttemptFailed => self.attempt_failed = true,
            PaymentFact::PaymentProcessing => self.processing = true,
            PaymentFact::AsyncPaymentFailed => self.async_payment_failed = true,
            PaymentFact::CheckoutExpired => self.checkout_expired = true,
            PaymentFact::CheckoutNotStarted => self.checkout_not_started = true,
            PaymentFact::Refunded { total } => self.refunded = Some(larger(self.refunded, total)),
            PaymentFact::DisputeOpened => self.dispute_opened = true,
            PaymentFact::DisputeClosed(DisputeOutcome::Won) => self.dispute_won = true,
            PaymentFact::DisputeClosed(DisputeOutcome::Lost) => self.dispute_lost = true,
            PaymentFact::AcceptedByOperator => self.accepted_by_operator = true,
        }
        *self != before
    }

    /// What the customer owed for a course at `price`: the total billed when the bill is for
    /// that price, the price itself when no bill is known (a gateway that reports none, or a
    /// charge reported before its checkout), nothing a payment could match when the gateway
    /// billed another price.
    fn owed(&self, price: Money) -> Option<Money> {
        match self.bill {
            None => Some(price),
            Some(bill) if bill.bills_price(price) => Some(bill.total()),
            Some(_) => None,
        }
    }

    /// Whether the captured payment is exactly what was owed.
    fn paid_as_billed(&self, price: Money) -> bool {
        self.captured.is_some() && self.captured == self.owed(price)
    }

    /// Whether the captured payment pays for the course: exactly what was owed, or another
    /// payment an operator accepted.
    fn pays_for_course(&self, price: Money) -> bool {
        self.paid_as_billed(price) || (self.captured.is_some() && self.accepted_by_operator)
    }

    fn refunded_in(&self, currency: crate::money::Currency) -> i64 {
        self.refunded
            .filter(|refunded| refunded.currency() == currency)
            .map_or(0, |refunded| refunded.minor())
    }
}

/// The status shown on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurchaseStatus {
    /// Waiting for payment, settling, or held for review.
    Pending,
    /// Paid: the course is unlocked.
    Completed,
    /// Closed without payment; a new checkout is allowed.
    Failed,
    /// Fully refunded or lost in a dispute: the course is locked again.
    Refunded,
}

impl PurchaseStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "pending",
            PurchaseStatus::Completed => "completed",
            PurchaseStatus::Failed => "failed",
            PurchaseStatus::Refunded => "refunded",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Completed, Self::Failed, Self::Refunded]
            .into_iter()
            .find(|status| status.as_str() == name)
    }

    /// Pending and completed purchases are active: they stop the user from starting another.
    pub const fn is_active(self) -> bool {
        matches!(self, PurchaseStatus::Pending | PurchaseStatus::Completed)
    }
}

/// Why a pending purchase is held for a human to look at instead of unlocking the course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewReason {
    /// The payment captured is not what was owed: the total billed, or the price when no
    /// bill is known.
    AmountMismatch { expected: Money, received: Money },
    /// The gateway billed a list price other than the course's (in the price's currency).
    PriceMismatch { price: Money, billed: Money },
}

/// Why a purchase failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    AsyncPaymentFailed,
    CheckoutExpired,
    CheckoutNotStarted,
}

impl FailureReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureReason::AsyncPaymentFailed => "the delayed payment failed",
            FailureReason::CheckoutExpired => "the checkout session expired without payment",
            FailureReason::CheckoutNotStarted => "the payment provider could not start checkout",
        }
    }
}

/// The hosted checkout page the customer is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
    pub expires_at: OffsetDateTime,
}

/// What the gateway said about a payment that decides nothing about its status, kept to show
/// the buyer. Each field keeps the first value learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentDetails {
    /// The gateway's receipt page for the charge.
    pub receipt_url: Option<String>,
    /// The gateway's id of the promotion code applied at checkout.
    pub promotion_code: Option<String>,
}

impl PaymentDetails {
    /// Fills each field still unknown from `learned`; returns whether anything changed.
    pub fn merge(&mut self, learned: &PaymentDetails) -> bool {
        let mut changed = false;
        for (known, learned) in [
            (&mut self.receipt_url, &learned.receipt_url),
            (&mut self.promotion_code, &learned.promotion_code),
        ] {
            if known.is_none() && learned.is_some() {
                known.clone_from(learned);
                changed = true;
            }
        }
        changed
    }
}

/// One attempt of a user to buy a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub id: PurchaseId,
    pub user_id: UserId,
    pub course_id: CourseId,
    /// The course price when the purchase started; later price changes do not affect it.
    pub price: Money,
    pub checkout: Option<CheckoutSession>,
    pub payment_intent_id: Option<String>,
    pub facts: PaymentFacts,
    pub details: PaymentDetails,
    /// Whether this purchase still holds the user's one active slot for the course. Set at
    /// creation, cleared for good once the status leaves pending/completed: a payment that
    /// arrives late for a failed purchase completes it without taking the slot back from a
    /// newer purchase (storage enforces "one slot holder per user and course").
    pub holds_active_slot: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A session closer to expiry than this is not handed out again: the customer needs time to pay.
const REUSE_MARGIN: Duration = Duration::minutes(5);

impl Purchase {
    /// Starts a paid purchase, before the checkout session exists.
    ///
    /// # Errors
    /// [`DomainError::CourseNotPublished`], [`DomainError::OwnCourse`], or
    /// [`DomainError::CourseIsFree`] (free courses use [`Purchase::enroll_free`]).
    pub fn begin(
        id: PurchaseId,
        buyer: UserId,
        course: &Course,
        now: OffsetDateTime,
    ) -> Result<Self, DomainError> {
        course.check_purchasable_by(buyer)?;
        if course.is_free() {
            return Err(DomainError::CourseIsFree);
        }
        Ok(Self::new(id, buyer, course, now))
    }

    /// Enrols a user in a free course: completed at once, no gateway involved.
    ///
    /// # Errors
    /// [`DomainError::CourseNotPublished`], [`DomainError::OwnCourse`], or
    /// [`DomainError::CourseIsPaid`] (paid courses go through [`Purchase::begin`]).
    pub fn enroll_free(
        id: PurchaseId,
        buyer: UserId,
        course: &Course,
        now: OffsetDateTime,
    ) -> Result<Self, DomainError> {
        course.check_purchasable_by(buyer)?;
        if !course.is_free() {
            return Err(DomainError::CourseIsPaid);
        }
        let mut purchase = Self::new(id, buyer, course, now);
        purchase.facts.captured = Some(course.price);
        Ok(purchase)
    }

    fn new(id: PurchaseId, buyer: UserId, course: &Course, now: OffsetDateTime) -> Self {
        Self {
            id,
            user_id: buyer,
            course_id: course.id,
            price: course.price,
            checkout: None,
            payment_intent_id: None,
            facts: PaymentFacts::default(),
            details: PaymentDetails::default(),
            holds_active_slot: true,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn status(&self) -> PurchaseStatus {
        let Some(captured) = self.facts.captured else {
            return if self.failure_reason().is_some() {
                PurchaseStatus::Failed
            } else {
                PurchaseStatus::Pending
            };
        };
        let refunded = self.facts.refunded_in(captured.currency());
        let fully_refunded = refunded > 0 && refunded >= captured.minor();
        if self.facts.dispute_lost || fully_refunded {
            PurchaseStatus::Refunded
        } else if self.facts.pays_for_course(self.price) {
            PurchaseStatus::Completed
        } else {
            PurchaseStatus::Pending
        }
    }

    /// When the payment was captured, as the gateway reported it; the creation time when no
    /// report said (a free enrolment, or a purchase stored before times were kept).
    pub fn paid_at(&self) -> OffsetDateTime {
        self.facts.paid_at.unwrap_or(self.created_at)
    }

    /// Whether a captured payment paid for the course (the price in full, or a mismatched
    /// payment an operator accepted), whatever happened since (a refund, a dispute).
    pub fn was_paid(&self) -> bool {
        self.facts.pays_for_course(self.price)
    }

    /// What the purchase earned, for the revenue report: `None` unless a captured payment paid
    /// for the course (free enrolments, held and unpaid purchases earn nothing).
    pub fn sale(&self) -> Option<Sale> {
        let paid = self.facts.captured?;
        if !self.was_paid() || self.price.is_zero() {
            return None;
        }
        Some(Sale::of(
            paid,
            self.facts.bill,
            self.facts.refunded_in(paid.currency()),
            self.facts.dispute_lost,
            self.paid_at(),
        ))
    }

    /// What the gateway billed, when it said.
    pub fn bill(&self) -> Option<Bill> {
        self.facts.bill
    }

    /// The course is unlocked exactly when the purchase is completed.
    pub fn unlocks_course(&self) -> bool {
        self.status() == PurchaseStatus::Completed
    }

    /// Why the purchase waits for an operator: a captured payment that does not match the
    /// price, neither accepted nor refunded yet.
    pub fn review_reason(&self) -> Option<ReviewReason> {
        if self.status() != PurchaseStatus::Pending {
            return None;
        }
        let received = self.facts.captured?;
        if self.facts.pays_for_course(self.price) {
            return None;
        }
        Some(match self.facts.owed(self.price) {
            Some(expected) => ReviewReason::AmountMismatch { expected, received },
            None => ReviewReason::PriceMismatch {
                price: self.price,
                billed: self.facts.bill.map_or(received, |bill| bill.list_price()),
            },
        })
    }

    /// Why the purchase failed, when it closed without a captured payment.
    pub fn failure_reason(&self) -> Option<FailureReason> {
        if self.facts.captured.is_some() {
            None
        } else if self.facts.async_payment_failed {
            Some(FailureReason::AsyncPaymentFailed)
        } else if self.facts.checkout_expired {
            Some(FailureReason::CheckoutExpired)
        } else if self.facts.checkout_not_started {
            Some(FailureReason::CheckoutNotStarted)
        } else {
            None
        }
    }

    /// The payment captured for this purchase, in the currency the customer paid in (zero
    /// for a free enrolment or a 100%-off promotion code); `None` when nothing was captured.
    pub fn captured(&self) -> Option<Money> {
        self.facts.captured
    }

    /// The amount refunded so far, in the captured payment's currency (the price's when
    /// nothing was captured).
    pub fn refunded_amount(&self) -> Money {
        let currency = self.captured().unwrap_or(self.price).currency();
        Money::new(self.facts.refunded_in(currency), currency).unwrap_or(Money::zero(currency))
    }

    /// Records a gateway fact. Returns whether anything changed.
    pub fn record(&mut self, fact: PaymentFact, now: OffsetDateTime) -> bool {
        let changed = self.facts.record(fact);
        if changed {
            self.holds_active_slot &= self.status().is_active();
            self.updated_at = now;
        }
        changed
    }

    /// Merges what one gateway report revealed: its facts, its details and, if the purchase
    /// has none yet, the payment id. Returns whether anything changed (false for a replay),
    /// so storage can skip the write.
    pub fn absorb(
        &mut self,
        facts: &[PaymentFact],
        payment_intent_id: Option<&str>,
        details: &PaymentDetails,
        now: OffsetDateTime,
    ) -> bool {
        let mut changed = false;
        for fact in facts {
            changed |= self.record(*fact, now);
        }
        if self.details.merge(details) {
            self.updated_at = now;
            changed = true;
        }
        if let Some(payment_intent_id) = payment_intent_id {
            // Keeps the first intent learned; a different one later is ignored.
            changed |= self.payment_intent_id.is_none()
                && self.link_payment_intent(payment_intent_id, now);
        }
        changed
    }

    /// Remembers the hosted checkout session the customer pays on.
    pub fn attach_checkout(&mut self, session: CheckoutSession, now: OffsetDateTime) {
        self.checkout = Some(session);
        self.updated_at = now;
    }

    /// Remembers the gateway's payment id. The first one learned is kept (one checkout
    /// session has one payment intent); returns false if a different one was already known.
    pub fn link_payment_intent(&mut self, payment_intent_id: &str, now: OffsetDateTime) -> bool {
        match &self.payment_intent_id {
            Some(known) => known == payment_intent_id,
            None => {
                self.payment_intent_id = Some(payment_intent_id.to_owned());
                self.updated_at = now;
                true
            }
        }
    }

    /// The checkout session to send the customer to again instead of starting a new one:
    /// only while nothing has been paid or is settling and the session is comfortably open.
    pub fn reusable_checkout(&self, now: OffsetDateTime) -> Option<&CheckoutSession> {
        let untouched = self.status() == PurchaseStatus::Pending
            && !self.facts.processing
            && self.facts.captured.is_none();
        self.checkout
            .as_ref()
            .filter(|session| untouched && session.expires_at - REUSE_MARGIN > now)
    }

    /// Whether a payment is settling or held for review: the customer has paid (or tried to)
    /// and must not be sent to pay again.
    pub fn awaits_settlement(&self) -> bool {
        self.status() == PurchaseStatus::Pending
            && (self.facts.processing || self.facts.captured.is_some())
    }

    /// Decides how much to refund: the requested amount, or everything not yet refunded.
    /// Refunds are bounded by what was captured, in its currency.
    ///
    /// # Errors
    /// [`DomainError::NotRefundable`] unless completed, [`DomainError::NoPaymentToRefund`] for a
    /// free enrolment or an unknown payment, [`DomainError::InvalidRefundAmount`] when the
    /// amount is not within what remains.
    pub fn plan_refund(&self, requested_minor: Option<i64>) -> Result<Money, DomainError> {
        if self.status() != PurchaseStatus::Completed {
            return Err(DomainError::NotRefundable);
        }
        self.plan_refund_of_captured(requested_minor)
    }

    /// Decides the refund that resolves a purchase held for review: everything captured and
    /// not yet refunded, which leaves it refunded.
    ///
    /// # Errors
    /// [`DomainError::NotHeldForReview`] unless held; [`DomainError::NoPaymentToRefund`] without
    /// a known payment.
    pub fn plan_review_refund(&self) -> Result<Money, DomainError> {
        if self.review_reason().is_none() {
            return Err(DomainError::NotHeldForReview);
        }
        self.plan_refund_of_captured(None)
    }

    /// Records an operator's acceptance of the mismatched payment a held purchase received:
    /// it then unlocks the course. Returns whether anything changed.
    ///
    /// # Errors
    /// [`DomainError::NotHeldForReview`] unless held.
    pub fn accept_held(&mut self, now: OffsetDateTime) -> Result<bool, DomainError> {
        if self.review_reason().is_none() {
            return Err(DomainError::NotHeldForReview);
        }
        Ok(self.record(PaymentFact::AcceptedByOperator, now))
    }

    fn plan_refund_of_captured(&self, requested_minor: Option<i64>) -> Result<Money, DomainError> {
        let Some(captured) = self.captured() else {
            return Err(DomainError::NoPaymentToRefund);
        };
        if captured.is_zero() || self.payment_intent_id.is_none() {
            return Err(DomainError::NoPaymentToRefund);
        }
        let remaining = captured.checked_sub(self.refunded_amount())?;
        let amount = requested_minor.unwrap_or(remaining.minor());
        if amount < 1 || amount > remaining.minor() {
            return Err(DomainError::InvalidRefundAmount {
                remaining: remaining.minor(),
            });
        }
        Ok(Money::new(amount, captured.currency())?)
    }
}

#[cfg(test)]
mod tests;
