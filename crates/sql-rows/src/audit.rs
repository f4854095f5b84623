//! The audit trail (`audit_log`): who did what, when, to what, and why.
//!
//! The table's `id` (assigned by the database in append order) is not part of the record: it
//! only orders entries of the same instant, the later appended first.

use lms_domain::{PurchaseId, UserId};
use lms_ports::{AuditAction, AuditActor, AuditEntry, RepoError};

use crate::records::{optional_money, split_money};
use crate::{corrupt, Encoding, Record};

/// An `audit_log` row without its id.
#[derive(Debug)]
pub struct AuditRecord<E: Encoding> {
    pub at: E::Instant,
    /// `user`, `operator` or `system`.
    pub actor_kind: String,
    /// Set exactly when `actor_kind` is `user`.
    pub actor_user_id: Option<E::Id>,
    pub action: String,
    pub purchase_id: Option<E::Id>,
    pub event_id: Option<String>,
    pub subject_user_id: Option<E::Id>,
    pub amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub reason: String,
}

const USER: &str = "user";
const OPERATOR: &str = "operator";
const SYSTEM: &str = "system";

fn actor<E: Encoding>(kind: &str, user: Option<E::Id>) -> Result<AuditActor, RepoError> {
    match (kind, user) {
        (USER, Some(id)) => Ok(AuditActor::User(UserId::from_uuid(E::load_id(
            id,
            "audit actor id",
        )?))),
        (OPERATOR, None) => Ok(AuditActor::Operator),
        (SYSTEM, None) => Ok(AuditActor::System),
        (USER | OPERATOR | SYSTEM, _) => Err(corrupt(
            "audit actor",
            "a user id must be set exactly for a user",
        )),
        (other, _) => Err(corrupt(
            "audit actor",
            format!("{other:?} names no actor this build knows"),
        )),
    }
}

impl<E: Encoding> Record for AuditRecord<E> {
    type Domain = AuditEntry;

    fn from_domain(entry: &AuditEntry) -> Result<Self, RepoError> {
        let (actor_kind, actor_user_id) = match entry.actor {
            AuditActor::User(id) => (USER, Some(E::store_id(id.as_uuid()))),
            AuditActor::Operator => (OPERATOR, None),
            AuditActor::System => (SYSTEM, None),
        };
        let (amount_cents, currency) = split_money(entry.amount);
        Ok(Self {
            at: E::store_instant(entry.at)?,
            actor_kind: actor_kind.to_owned(),
            actor_user_id,
            action: entry.action.as_str().to_owned(),
            purchase_id: entry.purchase_id.map(|id| E::store_id(id.as_uuid())),
            event_id: entry.event_id.clone(),
            subject_user_id: entry.subject_user_id.map(|id| E::store_id(id.as_uuid())),
            amount_cents,
            currency,
            reason: entry.reason.clone(),
        })
    }

    fn into_domain(self) -> Result<AuditEntry, RepoError> {
        Ok(AuditEntry {
            at: E::load_instant(self.at, "audit time")?,
            actor: actor::<E>(&self.actor_kind, self.actor_user_id)?,
            action: AuditAction::parse(&self.action).ok_or_else(|| {
                corrupt(
                    "audit action",
                    format!("{:?} names no action this build knows", self.action),
                )
            })?,
            purchase_id: self
                .purchase_id
                .map(|id| E::load_id(id, "audit purchase id").map(PurchaseId::from_uuid))
                .transpose()?,
            event_id: self.event_id,
            subject_user_id: self
                .subject_user_id
                .map(|id| E::load_id(id, "audit subject id").map(UserId::from_uuid))
                .transpose()?,
            amount: optional_money(self.amount_cents, self.currency.as_deref(), "audit amount")?,
            reason: self.reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Native;
    use lms_domain::{Currency, Money};
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn entry(actor: AuditActor) -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::UNIX_EPOCH,
            actor,
            action: AuditAction::RefundHeld,
            purchase_id: Some(PurchaseId::from_uuid(Uuid::new_v4())),
            event_id: Some("evt_1".to_owned()),
            subject_user_id: None,
            amount: Some(Money::new(1500, Currency::USD).unwrap()),
            reason: "paid the wrong amount".to_owned(),
        }
    }

    #[test]
    fn audit_entries_round_trip_for_every_actor_and_action() {
        let user = AuditActor::User(UserId::from_uuid(Uuid::new_v4()));
        for actor in [user, AuditActor::Operator, AuditActor::System] {
            for action in AuditAction::ALL {
                let entry = AuditEntry {
                    action,
                    ..entry(actor)
                };
                let stored = AuditRecord::<Native>::from_domain(&entry).unwrap();
                assert_eq!(stored.action, action.as_str());
                assert_eq!(stored.into_domain().unwrap(), entry);
            }
        }
    }

    #[test]
    fn unknown_actors_and_actions_are_unexpected() {
        let stored = || AuditRecord::<Native>::from_domain(&entry(AuditActor::System)).unwrap();
        let mut unknown_action = stored();
        unknown_action.action = "delete_everything".to_owned();
        let mut unknown_actor = stored();
        unknown_actor.actor_kind = "robot".to_owned();
        let mut user_without_id = stored();
        user_without_id.actor_kind = "user".to_owned();
        let mut system_with_id = stored();
        system_with_id.actor_user_id = Some(Uuid::new_v4());
        for record in [
            unknown_action,
            unknown_actor,
            user_without_id,
            system_with_id,
        ] {
            assert!(matches!(
                record.into_domain(),
                Err(RepoError::Unexpected(_))
            ));
        }
    }
}
