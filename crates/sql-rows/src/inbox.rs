//! The event inbox (`webhook_events`): one row per verified gateway event, with what became of
//! it.
//!
//! Both adapters write it with the same upsert, `INSERT .. ON CONFLICT (event_id) DO UPDATE ..
//! RETURNING delivery_count`, whose `DO UPDATE` depends on how the event came:
//! * a gateway delivery (`DeliveryKind::Delivered`) sets `delivery_count = delivery_count + 1`
//!   and `last_received_at = excluded.last_received_at`, whatever the row's outcome: a count of
//!   1 returned means the row was inserted (a first delivery), more means a redelivery;
//! * an operator's replay (`DeliveryKind::Replayed`) overwrites `outcome`, `error` and
//!   `purchase_id` `WHERE outcome NOT IN ('applied', 'held')`: no row returned means the event
//!   was already applied or held, and nothing changed.
//!
//! A concurrent duplicate waits in that statement for the first writer's transaction to end
//! (the primary key's lock on PostgreSQL; SQLite's single writer), then sees its row.

use lms_domain::PurchaseId;
use lms_ports::{EventEnvelope, EventOutcome, InboxRecord, RepoError};
use time::OffsetDateTime;

use crate::{corrupt, payload, Encoding, Record};

/// A `webhook_events` row, in the table's column order.
#[derive(Debug)]
pub struct WebhookEventRecord<E: Encoding> {
    pub event_id: String,
    pub event_type: String,
    pub purchase_id: Option<E::Id>,
    pub first_received_at: E::Instant,
    /// JSON text ([`payload`]); `NULL` once pruned.
    pub payload: Option<E::Json>,
    pub livemode: bool,
    pub created: E::Instant,
    pub last_received_at: E::Instant,
    /// `integer`: SQL has no unsigned type, and four billion deliveries of one event do not
    /// happen.
    pub delivery_count: i32,
    pub outcome: String,
    pub error: Option<String>,
}

/// The outcome a stored name means.
///
/// # Errors
/// [`RepoError::Unexpected`] for a name this build does not know.
pub fn event_outcome(stored: &str) -> Result<EventOutcome, RepoError> {
    EventOutcome::parse(stored).ok_or_else(|| {
        corrupt(
            "event outcome",
            format!("{stored:?} names no outcome this build knows"),
        )
    })
}

/// The inbox row of an event received (or replayed without a row) for the first time, at
/// `at`: delivered once, received first and last at `at`.
pub fn first_delivery(
    envelope: &EventEnvelope,
    outcome: EventOutcome,
    error: Option<String>,
    purchase_id: Option<PurchaseId>,
    at: OffsetDateTime,
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

impl<E: Encoding> Record for WebhookEventRecord<E> {
    type Domain = InboxRecord;

    fn from_domain(record: &InboxRecord) -> Result<Self, RepoError> {
        Ok(Self {
            event_id: record.event_id.clone(),
            event_type: record.event_type.clone(),
            purchase_id: record.purchase_id.map(|id| E::store_id(id.as_uuid())),
            first_received_at: E::store_instant(record.first_received_at)?,
            payload: record
                .payload
                .as_deref()
                .map(|raw| payload::to_json_text(raw).into()),
            livemode: record.livemode,
            created: E::store_instant(record.created)?,
            last_received_at: E::store_instant(record.last_received_at)?,
            delivery_count: i32::try_from(record.delivery_count)
                .map_err(|e| RepoError::unexpected(lms_ports::Context::new("delivery count", e)))?,
            outcome: record.outcome.as_str().to_owned(),
            error: record.error.clone(),
        })
    }

    fn into_domain(self) -> Result<InboxRecord, RepoError> {
        Ok(InboxRecord {
            purchase_id: self
                .purchase_id
                .map(|id| E::load_id(id, "event purchase id").map(PurchaseId::from_uuid))
                .transpose()?,
            first_received_at: E::load_instant(self.first_received_at, "event first receipt")?,
            payload: self
                .payload
                .map(|stored| payload::from_json_text(stored.into())),
            livemode: self.livemode,
            created: E::load_instant(self.created, "event creation time")?,
            last_received_at: E::load_instant(self.last_received_at, "event last receipt")?,
            delivery_count: u32::try_from(self.delivery_count)
                .map_err(|e| corrupt("event delivery count", e))?,
            outcome: event_outcome(&self.outcome)?,
            error: self.error,
            event_id: self.event_id,
            event_type: self.event_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Native;

    fn envelope() -> EventEnvelope {
        EventEnvelope {
            id: "evt_1".to_owned(),
            event_type: "charge.refunded".to_owned(),
            livemode: true,
            created: OffsetDateTime::UNIX_EPOCH,
            payload: r#"{"id":"evt_1"}"#.to_owned(),
        }
    }

    #[test]
    fn inbox_records_round_trip() {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(5);
        let purchase = PurchaseId::from_uuid(uuid::Uuid::new_v4());
        let record = first_delivery(
            &envelope(),
            EventOutcome::Failed,
            Some("no".to_owned()),
            Some(purchase),
            at,
        );
        assert_eq!(record.delivery_count, 1);
        assert_eq!(
            (record.first_received_at, record.last_received_at),
            (at, at)
        );
        let stored = WebhookEventRecord::<Native>::from_domain(&record).unwrap();
        assert_eq!(stored.outcome, "failed");
        assert_eq!(stored.into_domain().unwrap(), record);
    }

    #[test]
    fn unknown_outcomes_and_negative_counts_are_unexpected() {
        for outcome in EventOutcome::ALL {
            assert_eq!(event_outcome(outcome.as_str()).unwrap(), outcome);
        }
        assert!(matches!(
            event_outcome("refunded"),
            Err(RepoError::Unexpected(_))
        ));
        let record = first_delivery(
            &envelope(),
            EventOutcome::Ignored,
            None,
            None,
            OffsetDateTime::UNIX_EPOCH,
        );
        let mut stored = WebhookEventRecord::<Native>::from_domain(&record).unwrap();
        stored.delivery_count = -1;
        assert!(matches!(
            stored.into_domain(),
            Err(RepoError::Unexpected(_))
        ));
        let mut stored = WebhookEventRecord::<Native>::from_domain(&record).unwrap();
        stored.outcome = "Applied".to_owned();
        assert!(matches!(
            stored.into_domain(),
            Err(RepoError::Unexpected(_))
        ));
    }
}
