//! Refunds: an admin's or the instructor's, a held purchase's, a double payment's and the
//! buyer's own all go through [`Services::refund_serialized`], which makes the refunds of one
//! purchase one at a time.
//!
//! Why one at a time: a refund is planned against what was refunded so far, then asked of the
//! gateway, then recorded. Two refunds planned at once would both see the same amount left,
//! and together could ask for more than was paid (the gateway refuses the excess only if it
//! is the only one bounding it, and a pending refund does not count yet at every gateway).
//! The purchase's refund lease ([`lms_ports::PurchaseRepo::lease_refund`]) is taken around
//! plan-and-call, so the plan is made against the purchase as it is once nobody else refunds
//! it, and a second request meanwhile is refused ([`UseCaseError::RefundInProgress`]) rather
//! than queued.

use crate::error::Resource;
use crate::{Services, UseCaseError};
use lms_domain::{
    DomainError, Money, PaymentFact, Purchase, PurchaseId, PurchaseStatus, Role, User,
};
use lms_ports::{AuditAction, AuditActor, RefundLease, RefundRequest, RefundStatus, RepoError};
use time::{Duration, OffsetDateTime};

/// How long a refund may hold its purchase's lease: planning, the gateway call (with the
/// adapter's own retries) and recording the result take seconds; a lease never released (the
/// process died mid-refund) frees the purchase after this.
pub const REFUND_LEASE: Duration = Duration::minutes(2);

/// The refund reason the gateway is given when the buyer asks (the buyer's own words go to the
/// audit trail only): adapters map it to the gateway's vocabulary.
const BUYER_REFUND_REASON: &str = "requested_by_customer";

/// What a buyer's reason for a refund may be: optional, at most this many characters.
const MAX_REASON_CHARS: usize = 500;

/// What a refund made: the purchase as recorded afterwards, and the amount asked of the
/// gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refunded {
    pub(crate) purchase: Purchase,
    pub(crate) amount: Money,
}

/// The refund plan of a completed purchase, in the use cases' errors: an amount out of bounds
/// is the `amountCents` field's fault; nothing to refund is [`UseCaseError::NotRefundable`].
pub(crate) fn refund_plan_error(err: DomainError) -> UseCaseError {
    match err {
        DomainError::InvalidRefundAmount { .. } => {
            UseCaseError::field("amountCents", err.to_string())
        }
        DomainError::NotRefundable | DomainError::NoPaymentToRefund => {
            UseCaseError::NotRefundable(err.to_string())
        }
        other => UseCaseError::unexpected(other),
    }
}

/// The buyer's reason, trimmed; blank is none.
fn buyer_reason(reason: Option<String>) -> Result<Option<String>, UseCaseError> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(UseCaseError::field(
            "reason",
            "must be at most 500 characters",
        ));
    }
    Ok(Some(reason.to_owned()).filter(|reason| !reason.is_empty()))
}

impl Services {
    /// Refunds a purchase while holding its refund lease: takes the lease, decides the amount
    /// with `plan` against the purchase as leased (never against a copy read before), asks the
    /// gateway, records the new refunded total, and gives the lease back whatever happened.
    /// `purpose` names the idempotency key: `<purpose>-<purchase>-<refunded so far>-<amount>`,
    /// with no free text in it, so a retried request gets the gateway's first answer.
    ///
    /// # Errors
    /// [`UseCaseError::RefundInProgress`] while another refund holds the lease;
    /// [`UseCaseError::NotFound`]`(Purchase)`; whatever `plan` refuses; as
    /// [`Services::refund_through_gateway`].
    pub(crate) async fn refund_serialized(
        &self,
        purchase_id: PurchaseId,
        purpose: &str,
        reason: Option<String>,
        plan: impl FnOnce(&Purchase) -> Result<Money, UseCaseError> + Send,
    ) -> Result<Refunded, UseCaseError> {
        let now = self.now();
        let lease_until = now + REFUND_LEASE;
        let leased = match self
            .purchases
            .lease_refund(purchase_id, now, lease_until)
            .await
        {
            Ok(RefundLease::Granted(purchase)) => purchase,
            Ok(RefundLease::Busy { until }) => {
                tracing::info!(purchase_id = %purchase_id, busy_until = %until, "refund refused: another refund of the purchase is in progress");
                return Err(UseCaseError::RefundInProgress);
            }
            Err(RepoError::NotFound) => return Err(UseCaseError::NotFound(Resource::Purchase)),
            Err(err) => return Err(err.into()),
        };
        let refunded = match plan(&leased) {
            Ok(amount) => self
                .refund_through_gateway(&leased, amount, purpose, reason)
                .await
                .map(|purchase| Refunded { purchase, amount }),
            Err(err) => Err(err),
        };
        // Gives back this lease only: had it run out (a slow gateway), another refund may hold
        // the purchase's lease now, and releasing that one would let a third run beside it.
        if let Err(err) = self
            .purchases
            .release_refund(purchase_id, lease_until)
            .await
        {
            // Not returned: the refund's own outcome is the answer (it may have moved money),
            // and the lease runs out by itself.
            tracing::warn!(purchase_id = %purchase_id, error = %lms_ports::chain_text(&err), "could not release the refund lease; it runs out by itself");
        }
        refunded
    }

    /// Asks the gateway for a refund of `amount` and, once it succeeded, records the new
    /// refunded total. Only [`Services::refund_serialized`] calls it, with the lease held.
    ///
    /// # Errors
    /// [`UseCaseError::NotRefundable`] without a known payment; [`UseCaseError::Gateway`];
    /// storage errors.
    async fn refund_through_gateway(
        &self,
        purchase: &Purchase,
        amount: Money,
        purpose: &str,
        reason: Option<String>,
    ) -> Result<Purchase, UseCaseError> {
        let Some(payment_intent_id) = purchase.payment_intent_id.clone() else {
            return Err(UseCaseError::NotRefundable(
                DomainError::NoPaymentToRefund.to_string(),
            ));
        };
        let so_far = purchase.refunded_amount();
        let request = RefundRequest {
            purchase_id: purchase.id,
            payment_intent_id,
            amount,
            reason,
            idempotency_key: format!(
                "{purpose}-{}-{}-{}",
                purchase.id,
                so_far.minor(),
                amount.minor()
            ),
        };
        let outcome = self.gateway.refund(&request).await.map_err(|err| {
            tracing::warn!(purchase_id = %purchase.id, error = %err, "refund failed at the payment provider");
            UseCaseError::Gateway(err)
        })?;
        tracing::info!(
            purchase_id = %purchase.id, refund_id = %outcome.refund_id, amount = amount.minor(),
            status = ?outcome.status, purpose, "refund requested"
        );
        if outcome.status != RefundStatus::Succeeded {
            return Ok(purchase.clone());
        }
        let total = so_far
            .checked_add(amount)
            .map_err(UseCaseError::unexpected)?;
        self.apply_sync(purchase.id, vec![PaymentFact::Refunded { total }], None)
            .await
    }

    /// Refunds all (`amount_cents: None`) or part of a completed purchase, as an admin or the
    /// course's instructor. Audited.
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(Purchase)` when unknown or the actor is a stranger to it;
    /// [`UseCaseError::Forbidden`] for the buyer; [`UseCaseError::NotRefundable`];
    /// [`UseCaseError::Validation`] on `amountCents`; [`UseCaseError::RefundInProgress`];
    /// [`UseCaseError::Gateway`]; storage errors.
    pub async fn refund(
        &self,
        actor: &User,
        purchase_id: PurchaseId,
        amount_cents: Option<i64>,
        reason: Option<String>,
    ) -> Result<Purchase, UseCaseError> {
        let purchase = self
            .purchases
            .get_purchase(purchase_id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::Purchase))?;
        let course = self.courses.get_course(purchase.course_id).await?;
        let authorised = actor.role == Role::Admin
            || course
                .as_ref()
                .is_some_and(|course| course.is_owned_by(actor.id));
        if !authorised {
            return Err(if purchase.user_id == actor.id {
                UseCaseError::Forbidden
            } else {
                UseCaseError::NotFound(Resource::Purchase)
            });
        }
        let refunded = self
            .refund_serialized(purchase_id, "refund", reason.clone(), |leased| {
                leased.plan_refund(amount_cents).map_err(refund_plan_error)
            })
            .await?;
        self.audit_purchase(
            AuditActor::User(actor.id),
            AuditAction::Refund,
            Some(purchase_id),
            None,
            Some(refunded.amount),
            reason.unwrap_or_default(),
        )
        .await?;
        Ok(refunded.purchase)
    }

    /// The buyer asks for their money back: everything still refundable of a completed
    /// purchase paid within [`crate::UseCaseSettings::self_refund_window`], refunded through
    /// the same serialized path as an admin's refund. Audited as a refund by the buyer, with
    /// `reason` (optional, at most 500 characters).
    ///
    /// # Errors
    /// [`UseCaseError::NotFound`]`(Purchase)` when unknown or not the actor's;
    /// [`UseCaseError::SelfRefundUnavailable`] when the window setting is off;
    /// [`UseCaseError::Validation`] on `reason`; [`UseCaseError::RefundWindowClosed`] when paid
    /// longer ago than the window; [`UseCaseError::NotRefundable`] (not completed, nothing
    /// paid or left); [`UseCaseError::RefundInProgress`]; [`UseCaseError::Gateway`]; storage
    /// errors.
    pub async fn request_refund(
        &self,
        actor: &User,
        purchase_id: PurchaseId,
        reason: Option<String>,
    ) -> Result<Purchase, UseCaseError> {
        let purchase = self
            .purchases
            .get_purchase(purchase_id)
            .await?
            .filter(|purchase| purchase.user_id == actor.id)
            .ok_or(UseCaseError::NotFound(Resource::Purchase))?;
        let window = self
            .settings
            .self_refund_window
            .ok_or(UseCaseError::SelfRefundUnavailable)?;
        let reason = buyer_reason(reason)?;
        let now = self.now();
        let refunded = self
            .refund_serialized(
                purchase.id,
                "self-refund",
                Some(BUYER_REFUND_REASON.to_owned()),
                |leased| {
                    if leased.status() == PurchaseStatus::Completed
                        && !within_window(leased, window, now)
                    {
                        return Err(UseCaseError::RefundWindowClosed {
                            window_days: window_days(window),
                        });
                    }
                    leased.plan_refund(None).map_err(refund_plan_error)
                },
            )
            .await?;
        tracing::info!(purchase_id = %purchase.id, amount = refunded.amount.minor(), "refund requested by the buyer");
        self.audit_purchase(
            AuditActor::User(actor.id),
            AuditAction::Refund,
            Some(purchase.id),
            None,
            Some(refunded.amount),
            reason.unwrap_or_else(|| "requested by the buyer".to_owned()),
        )
        .await?;
        Ok(refunded.purchase)
    }

    /// Until when the buyer may ask for a refund of `purchase` ([`Services::request_refund`]),
    /// when they may right now: self-service refunds are on, the purchase is completed with
    /// a payment left to refund, and the window since its payment is still open. `None`
    /// otherwise.
    pub fn self_refund_until(&self, purchase: &Purchase) -> Option<OffsetDateTime> {
        let window = self.settings.self_refund_window?;
        let refundable = purchase.plan_refund(None).is_ok();
        (refundable && within_window(purchase, window, self.now()))
            .then(|| purchase.paid_at() + window)
    }
}

/// Whether `now` is at most `window` after the purchase's payment.
fn within_window(purchase: &Purchase, window: Duration, now: OffsetDateTime) -> bool {
    now <= purchase.paid_at() + window
}

/// The window in whole days, as the settings hold it (1..=365).
fn window_days(window: Duration) -> u32 {
    u32::try_from(window.whole_days()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyers_reason_is_trimmed_blank_is_none_and_long_is_refused() {
        assert_eq!(buyer_reason(None), Ok(None));
        assert_eq!(buyer_reason(Some("  ".to_owned())), Ok(None));
        assert_eq!(
            buyer_reason(Some(" not for me ".to_owned())),
            Ok(Some("not for me".to_owned()))
        );
        assert_eq!(
            buyer_reason(Some("é".repeat(500))),
            Ok(Some("é".repeat(500)))
        );
        assert!(matches!(
            buyer_reason(Some("x".repeat(501))),
            Err(UseCaseError::Validation(fields)) if fields[0].field == "reason"
        ));
    }
}
