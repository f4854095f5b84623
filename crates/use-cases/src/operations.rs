//! What operators do: the review queue of held purchases, the audit trail, admin roles, and
//! reconciliation of purchases whose outcome never arrived.

use crate::error::Resource;
use crate::{Services, UseCaseError};
use lms_domain::{
    DomainError, Email, PaymentFact, Purchase, PurchaseId, PurchaseStatus, Role, User,
};
use lms_ports::{
    AuditAction, AuditActor, AuditEntry, GatewayError, Page, PageRequest, RepoError, SessionStatus,
};
use time::Duration;

/// Who asks for an operations action: an admin over the API, or the operator at the command
/// line (who has the server's configuration, so is trusted).
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    Admin(&'a User),
    CommandLine,
}

impl Operator<'_> {
    /// The actor to audit.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`] for a signed-in user who is not an admin.
    pub(crate) fn authorise(self) -> Result<AuditActor, UseCaseError> {
        match self {
            Operator::Admin(user) if user.role == Role::Admin => Ok(AuditActor::User(user.id)),
            Operator::Admin(_) => Err(UseCaseError::Forbidden),
            Operator::CommandLine => Ok(AuditActor::Operator),
        }
    }
}

/// How long a reconciled purchase is left alone before it is claimed again (by this instance
/// or another): a session still open is asked about at most this often.
pub const RECONCILE_LEASE: Duration = Duration::minutes(10);

/// What one reconciliation did to a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub purchase_id: PurchaseId,
    /// The status after what the gateway said was applied.
    pub status: PurchaseStatus,
    /// The session was still open past the checkout lifetime and was closed at the gateway.
    pub expired_at_gateway: bool,
}

impl Reconciled {
    /// The summary word: `completed`, `failed`, `refunded`, `pending`; `expired` when the
    /// session was closed at the gateway.
    pub fn label(&self) -> &'static str {
        if self.expired_at_gateway {
            "expired"
        } else {
            self.status.as_str()
        }
    }
}

fn reason_given(reason: &str) -> Result<String, UseCaseError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(UseCaseError::field("reason", "must be 1 to 500 characters"));
    }
    Ok(reason.to_owned())
}

impl Services {
    /// Appends what `actor` did to a purchase (or an event) to the audit trail, now.
    pub(crate) async fn audit_purchase(
        &self,
        actor: AuditActor,
        action: AuditAction,
        purchase_id: Option<PurchaseId>,
        event_id: Option<&str>,
        amount: Option<lms_domain::Money>,
        reason: String,
    ) -> Result<(), UseCaseError> {
        let entry = AuditEntry {
            at: self.now(),
            actor,
            action,
            purchase_id,
            event_id: event_id.map(str::to_owned),
            subject_user_id: None,
            amount,
            reason,
        };
        Ok(self.audit.append_audit(&entry).await?)
    }

    /// Purchases held for review, oldest first.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`]; storage errors.
    pub async fn list_held(
        &self,
        operator: Operator<'_>,
        page: PageRequest,
    ) -> Result<Page<Purchase>, UseCaseError> {
        operator.authorise()?;
        Ok(self.purchases.list_held(page).await?)
    }

    async fn held_purchase(&self, purchase_id: PurchaseId) -> Result<Purchase, UseCaseError> {
        let purchase = self
            .purchases
            .get_purchase(purchase_id)
            .await?
            .ok_or(UseCaseError::NotFound(Resource::Purchase))?;
        if purchase.review_reason().is_none() {
            return Err(UseCaseError::NotHeld);
        }
        Ok(purchase)
    }

    /// Accepts the mismatched payment of a held purchase as paying for the course: it
    /// unlocks. Written to the audit trail with `reason`.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`]; [`UseCaseError::Validation`] on `reason` (1 to 500
    /// characters); [`UseCaseError::NotFound`]`(Purchase)`; [`UseCaseError::NotHeld`];
    /// storage errors.
    pub async fn accept_held(
        &self,
        operator: Operator<'_>,
        purchase_id: PurchaseId,
        reason: &str,
    ) -> Result<Purchase, UseCaseError> {
        let actor = operator.authorise()?;
        let reason = reason_given(reason)?;
        let mut purchase = self.held_purchase(purchase_id).await?;
        let captured = purchase.captured();
        purchase
            .accept_held(self.now())
            .map_err(|_| UseCaseError::NotHeld)?;
        let accepted = self
            .apply_sync(purchase_id, vec![PaymentFact::AcceptedByOperator], None)
            .await?;
        self.audit_purchase(
            actor,
            AuditAction::AcceptHeld,
            Some(purchase_id),
            None,
            captured,
            reason,
        )
        .await?;
        tracing::info!(purchase_id = %purchase_id, status = accepted.status().as_str(), "held purchase accepted");
        Ok(accepted)
    }

    /// Resolves a held purchase by refunding everything it captured: it ends refunded.
    /// Written to the audit trail with `reason`. Serialized with every other refund of the
    /// purchase ([`Services::refund_serialized`]).
    ///
    /// # Errors
    /// As [`Services::accept_held`], plus [`UseCaseError::NotRefundable`] without a known
    /// payment, [`UseCaseError::RefundInProgress`] and [`UseCaseError::Gateway`].
    pub async fn refund_held(
        &self,
        operator: Operator<'_>,
        purchase_id: PurchaseId,
        reason: &str,
    ) -> Result<Purchase, UseCaseError> {
        let actor = operator.authorise()?;
        let reason = reason_given(reason)?;
        self.held_purchase(purchase_id).await?;
        let refunded = self
            .refund_serialized(purchase_id, "review-refund", None, |leased| {
                leased.plan_review_refund().map_err(|err| match err {
                    DomainError::NotHeldForReview => UseCaseError::NotHeld,
                    other => UseCaseError::NotRefundable(other.to_string()),
                })
            })
            .await?;
        self.audit_purchase(
            actor,
            AuditAction::RefundHeld,
            Some(purchase_id),
            None,
            Some(refunded.amount),
            reason,
        )
        .await?;
        Ok(refunded.purchase)
    }

    /// The audit trail, newest first.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`]; storage errors.
    pub async fn audit_trail(
        &self,
        operator: Operator<'_>,
        page: PageRequest,
    ) -> Result<Page<AuditEntry>, UseCaseError> {
        operator.authorise()?;
        Ok(self.audit.list_audit(page).await?)
    }

    /// Makes the user with this email an admin (`grant`), or takes the role back, leaving them
    /// `otherwise` (student or instructor). Only the operator at the command line may: an
    /// admin account is never made through the API. Audited.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`] for anyone but the operator; [`UseCaseError::Validation`]
    /// on `email`, or on `role` when `otherwise` is admin; [`UseCaseError::NotFound`]`(User)`;
    /// storage errors.
    pub async fn set_admin(
        &self,
        operator: Operator<'_>,
        email: &str,
        grant: bool,
        otherwise: Role,
    ) -> Result<User, UseCaseError> {
        if !matches!(operator, Operator::CommandLine) {
            return Err(UseCaseError::Forbidden);
        }
        let actor = operator.authorise()?;
        let email =
            Email::parse(email).map_err(|err| UseCaseError::field("email", err.to_string()))?;
        if otherwise == Role::Admin {
            return Err(UseCaseError::field(
                "role",
                "the role to leave must be student or instructor",
            ));
        }
        let role = if grant { Role::Admin } else { otherwise };
        let user = match self.users.set_role(&email, role).await {
            Ok(user) => user,
            Err(RepoError::NotFound) => return Err(UseCaseError::NotFound(Resource::User)),
            Err(err) => return Err(err.into()),
        };
        self.audit
            .append_audit(&AuditEntry {
                at: self.now(),
                actor,
                action: if grant {
                    AuditAction::GrantAdmin
                } else {
                    AuditAction::RevokeAdmin
                },
                purchase_id: None,
                event_id: None,
                subject_user_id: Some(user.id),
                amount: None,
                reason: format!("role set to {}", role.name()),
            })
            .await?;
        Ok(user)
    }

    /// Claims up to `limit` purchases pending for longer than `older_than` that are due for
    /// reconciliation; each is not claimed again (by any instance) for [`RECONCILE_LEASE`].
    ///
    /// # Errors
    /// Storage errors.
    pub async fn claim_for_reconciliation(
        &self,
        older_than: Duration,
        limit: u32,
    ) -> Result<Vec<Purchase>, UseCaseError> {
        let now = self.now();
        Ok(self
            .purchases
            .claim_for_reconciliation(now - older_than, now, now + RECONCILE_LEASE, limit)
            .await?)
    }

    /// Asks the gateway what became of a pending purchase's checkout and applies it as facts:
    /// paid -> completed, expired -> failed, unknown at the gateway -> closed (expired). A
    /// session still open past the checkout lifetime is closed at the gateway first, so it
    /// can no longer be paid. A purchase whose checkout never started is closed once its
    /// checkout could no longer be opened. A payment found this way for a course the buyer
    /// already owns is refunded like a webhook's.
    ///
    /// # Errors
    /// [`UseCaseError::Gateway`]; storage errors. Nothing is applied on an error.
    pub async fn reconcile_purchase(
        &self,
        purchase: &Purchase,
    ) -> Result<Reconciled, UseCaseError> {
        let now = self.now();
        let Some(stored) = &purchase.checkout else {
            let status = if now >= purchase.created_at + self.settings.checkout_ttl {
                self.apply_sync(purchase.id, vec![PaymentFact::CheckoutNotStarted], None)
                    .await?
                    .status()
            } else {
                purchase.status()
            };
            return Ok(Reconciled {
                purchase_id: purchase.id,
                status,
                expired_at_gateway: false,
            });
        };
        let mut expired_at_gateway = false;
        let session = match self.gateway.retrieve_checkout_session(&stored.id).await {
            Ok(session) if session.status == SessionStatus::Open && now >= stored.expires_at => {
                match self.gateway.expire_checkout_session(&stored.id).await {
                    Ok(closed) => {
                        expired_at_gateway = true;
                        Some(closed)
                    }
                    // Paid or closed meanwhile: what it is now decides.
                    Err(GatewayError::Rejected { .. }) => {
                        Some(self.gateway.retrieve_checkout_session(&stored.id).await?)
                    }
                    Err(GatewayError::NotFound) => None,
                    Err(err) => return Err(err.into()),
                }
            }
            Ok(session) => Some(session),
            Err(GatewayError::NotFound) => None,
            Err(err) => return Err(err.into()),
        };
        let (facts, intent) = match &session {
            Some(session) => (session.facts(), session.payment_intent_id.clone()),
            None => (vec![PaymentFact::CheckoutExpired], None),
        };
        let pays = facts
            .iter()
            .any(|fact| matches!(fact, PaymentFact::PaymentSucceeded { .. }));
        let (synced, others) = if facts.is_empty() && intent.is_none() {
            (purchase.clone(), Vec::new())
        } else {
            self.apply_sync_seeing_others(purchase.id, facts, intent)
                .await?
        };
        if pays && synced.unlocks_course() {
            self.refund_double_payments(synced.clone(), others, None)
                .await?;
        }
        let reconciled = Reconciled {
            purchase_id: purchase.id,
            status: synced.status(),
            expired_at_gateway,
        };
        metrics::counter!("lms_reconciled_purchases_total", "result" => reconciled.label())
            .increment(1);
        tracing::info!(purchase_id = %purchase.id, result = reconciled.label(), "purchase reconciled");
        Ok(reconciled)
    }
}
