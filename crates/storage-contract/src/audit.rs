//! The audit trail.

use super::{at, event, money, seed_purchase, unapplied, usd, Seeded, Store};
use lms_ports::{AuditAction, AuditActor, AuditEntry, EventOutcome, PageRequest, Recorded};
use time::OffsetDateTime;

/// An operator's refund of nothing in particular, told apart by its reason.
fn entry(when: OffsetDateTime, reason: &str) -> AuditEntry {
    AuditEntry {
        at: when,
        actor: AuditActor::Operator,
        action: AuditAction::Refund,
        purchase_id: None,
        event_id: None,
        subject_user_id: None,
        amount: None,
        reason: reason.to_owned(),
    }
}

pub async fn audit_entries_round_trip_every_field<S: Store>(store: S) {
    let Seeded {
        instructor,
        buyer,
        purchase,
        ..
    } = seed_purchase(&store).await;
    // The event a replay entry names is in the inbox, as it would be.
    assert_eq!(
        store
            .record_event(
                &event("evt_audited"),
                &unapplied(EventOutcome::Failed, Some("x"), Some(purchase.id)),
                at(2)
            )
            .await,
        Ok(Recorded::Written)
    );

    let entries = vec![
        AuditEntry {
            at: at(10),
            actor: AuditActor::User(instructor.id),
            action: AuditAction::Refund,
            purchase_id: Some(purchase.id),
            event_id: None,
            subject_user_id: None,
            amount: Some(usd(1999)),
            reason: "asked by the student".to_owned(),
        },
        AuditEntry {
            at: at(11),
            actor: AuditActor::Operator,
            action: AuditAction::AcceptHeld,
            purchase_id: Some(purchase.id),
            event_id: None,
            subject_user_id: None,
            amount: None,
            reason: "paid the rest by bank transfer «Ünïcødé» ✓\nsecond line".to_owned(),
        },
        AuditEntry {
            at: at(12),
            actor: AuditActor::User(buyer.id),
            action: AuditAction::RefundHeld,
            purchase_id: Some(purchase.id),
            event_id: None,
            subject_user_id: None,
            amount: Some(money(2500, "EUR")),
            reason: "wrong currency".to_owned(),
        },
        AuditEntry {
            at: at(13),
            actor: AuditActor::System,
            action: AuditAction::RefundDoublePayment,
            purchase_id: Some(purchase.id),
            event_id: None,
            subject_user_id: None,
            amount: Some(money(500, "JPY")),
            reason: "a second payment for a course already owned".to_owned(),
        },
        AuditEntry {
            at: at(14),
            actor: AuditActor::Operator,
            action: AuditAction::ReplayEvent,
            purchase_id: None,
            event_id: Some("evt_audited".to_owned()),
            subject_user_id: None,
            amount: None,
            reason: "the course was restored".to_owned(),
        },
        AuditEntry {
            at: at(15),
            actor: AuditActor::Operator,
            action: AuditAction::GrantAdmin,
            purchase_id: None,
            event_id: None,
            subject_user_id: Some(buyer.id),
            amount: None,
            reason: "joins support".to_owned(),
        },
        AuditEntry {
            at: at(16),
            actor: AuditActor::User(buyer.id),
            action: AuditAction::RevokeAdmin,
            purchase_id: Some(purchase.id),
            event_id: Some("evt_audited".to_owned()),
            subject_user_id: Some(instructor.id),
            amount: Some(money(0, "USD")),
            reason: "left the team".to_owned(),
        },
    ];
    let actions: Vec<AuditAction> = entries.iter().map(|entry| entry.action).collect();
    assert_eq!(actions, AuditAction::ALL, "every action is exercised");

    for entry in &entries {
        store.append_audit(entry).await.unwrap();
    }
    let mut newest_first = entries;
    newest_first.reverse();
    let listed = store.list_audit(PageRequest::new(1, 100)).await.unwrap();
    assert_eq!(listed.total, 7);
    assert_eq!(listed.items, newest_first);
}

pub async fn audit_lists_newest_first_ties_by_append_order_and_paged<S: Store>(store: S) {
    let empty = store.list_audit(PageRequest::new(1, 10)).await.unwrap();
    assert_eq!((empty.items, empty.total), (vec![], 0));

    let appended = [
        entry(at(5), "a"),
        entry(at(3), "b"),
        entry(at(5), "c"),
        entry(at(7), "d"),
        entry(at(5), "e"),
        entry(at(3), "f"),
    ];
    for entry in &appended {
        store.append_audit(entry).await.unwrap();
    }
    let reasons = |items: &[AuditEntry]| -> Vec<String> {
        items.iter().map(|entry| entry.reason.clone()).collect()
    };
    let all = store.list_audit(PageRequest::new(1, 100)).await.unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(reasons(&all.items), ["d", "e", "c", "a", "f", "b"]);

    let mut paged = Vec::new();
    for page in 1..=3 {
        let got = store.list_audit(PageRequest::new(page, 2)).await.unwrap();
        assert_eq!(got.total, 6, "page {page}");
        assert_eq!(got.items.len(), 2, "page {page}");
        paged.extend(got.items);
    }
    assert_eq!(paged, all.items, "pages neither overlap nor skip");
    let beyond = store.list_audit(PageRequest::new(4, 2)).await.unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 6));

    // Appending more keeps the order.
    store.append_audit(&entry(at(5), "g")).await.unwrap();
    let first = store.list_audit(PageRequest::new(1, 3)).await.unwrap();
    assert_eq!(first.total, 7);
    assert_eq!(reasons(&first.items), ["d", "g", "e"]);
}
