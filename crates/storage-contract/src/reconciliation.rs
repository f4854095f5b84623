//! Purchases a reconciliation pass claims, and purchases held for review.

use super::{apply, at, begin, get, money, paid_in_full, seed_course, seed_people, usd, Store};
use lms_domain::{DisputeOutcome, Money, PaymentFact, Purchase, PurchaseStatus, User};
use lms_ports::PageRequest;
use std::collections::HashSet;
use time::OffsetDateTime;

/// A pending purchase by `buyer` of a new course of `instructor`, created at `created`.
async fn pending<S: Store>(
    store: &S,
    instructor: &User,
    buyer: &User,
    created: OffsetDateTime,
) -> Purchase {
    let course = seed_course(store, instructor, at(0)).await;
    let purchase = begin(buyer, &course, created);
    store.create_purchase(&purchase).await.unwrap();
    purchase
}

fn payment(amount: Money) -> PaymentFact {
    PaymentFact::PaymentSucceeded { amount, at: None }
}

/// The ids of `purchases`, in order.
fn ids(purchases: &[Purchase]) -> Vec<lms_domain::PurchaseId> {
    purchases.iter().map(|purchase| purchase.id).collect()
}

// ---------------------------------------------------------------------------------------------
// claim_for_reconciliation
// ---------------------------------------------------------------------------------------------

pub async fn reconciliation_claims_pending_unheld_purchases_created_before_the_cutoff_oldest_first<
    S: Store,
>(
    store: S,
) {
    let (instructor, buyer) = seed_people(&store).await;
    // Older than every claimable one, but not pending or held: never claimed.
    let completed = pending(&store, &instructor, &buyer, at(0)).await;
    apply(&store, completed.id, paid_in_full(), None, at(5)).await;
    let failed = pending(&store, &instructor, &buyer, at(0)).await;
    apply(
        &store,
        failed.id,
        vec![PaymentFact::CheckoutExpired],
        None,
        at(5),
    )
    .await;
    let refunded = pending(&store, &instructor, &buyer, at(0)).await;
    let full_refund = PaymentFact::Refunded { total: usd(1999) };
    apply(
        &store,
        refunded.id,
        vec![payment(usd(1999)), full_refund],
        None,
        at(5),
    )
    .await;
    let held = pending(&store, &instructor, &buyer, at(0)).await;
    let held = apply(&store, held.id, vec![payment(usd(500))], None, at(5)).await;
    assert!(held.review_reason().is_some());
    let accepted = pending(&store, &instructor, &buyer, at(0)).await;
    let accepted_facts = vec![payment(usd(500)), PaymentFact::AcceptedByOperator];
    apply(&store, accepted.id, accepted_facts, None, at(5)).await;

    // Pending and not held: claimable when created before the cutoff.
    let oldest = pending(&store, &instructor, &buyer, at(1)).await;
    let settling = pending(&store, &instructor, &buyer, at(2)).await;
    let settling = apply(
        &store,
        settling.id,
        vec![
            PaymentFact::PaymentProcessing,
            PaymentFact::PaymentAttemptFailed,
        ],
        None,
        at(6),
    )
    .await;
    assert_eq!(settling.status(), PurchaseStatus::Pending);
    let third = pending(&store, &instructor, &buyer, at(3)).await;
    let fourth = pending(&store, &instructor, &buyer, at(4)).await;
    let fourth = store
        .attach_checkout(fourth.id, &super::session("cs_fourth", at(3600)), at(7))
        .await
        .unwrap();
    // Created at or after the cutoff: not yet.
    let at_cutoff = pending(&store, &instructor, &buyer, at(10)).await;
    let later = pending(&store, &instructor, &buyer, at(11)).await;

    let claim = |limit| store.claim_for_reconciliation(at(10), at(100), at(200), limit);
    assert_eq!(
        claim(3).await.unwrap(),
        vec![oldest.clone(), settling.clone(), third.clone()]
    );
    assert_eq!(claim(3).await.unwrap(), vec![fourth.clone()]);
    assert_eq!(claim(3).await.unwrap(), vec![]);

    // Only the claim was written: every purchase reads as before.
    for purchase in [
        &oldest, &settling, &third, &fourth, &at_cutoff, &later, &held,
    ] {
        assert_eq!(&get(&store, purchase.id).await, purchase);
    }
    for untouched in [&completed, &failed, &refunded, &accepted] {
        assert_ne!(
            get(&store, untouched.id).await.status(),
            PurchaseStatus::Pending
        );
    }

    // A later cutoff reaches the younger ones (the older ones are still leased).
    assert_eq!(
        store
            .claim_for_reconciliation(at(12), at(100), at(200), 10)
            .await
            .unwrap(),
        vec![at_cutoff, later]
    );
}

pub async fn reconciliation_claims_are_leased_until_claimed_until<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let first = pending(&store, &instructor, &buyer, at(1)).await;
    let second = pending(&store, &instructor, &buyer, at(2)).await;
    let claim = |now, until, limit| store.claim_for_reconciliation(at(10), now, until, limit);

    assert_eq!(ids(&claim(at(100), at(200), 1).await.unwrap()), [first.id]);
    assert_eq!(
        ids(&claim(at(150), at(250), 10).await.unwrap()),
        [second.id]
    );
    assert_eq!(claim(at(199), at(300), 10).await.unwrap(), vec![]);
    // At its lease's end a purchase is claimable again (and leased anew).
    assert_eq!(ids(&claim(at(200), at(300), 10).await.unwrap()), [first.id]);
    assert_eq!(claim(at(249), at(400), 10).await.unwrap(), vec![]);
    assert_eq!(
        ids(&claim(at(250), at(400), 10).await.unwrap()),
        [second.id]
    );
    assert_eq!(claim(at(299), at(400), 10).await.unwrap(), vec![]);

    // Paid meanwhile: never claimed again.
    apply(&store, first.id, paid_in_full(), None, at(260)).await;
    assert_eq!(
        ids(&claim(at(1000), at(2000), 10).await.unwrap()),
        [second.id]
    );
    assert_eq!(get(&store, second.id).await, second);
}

pub async fn concurrent_reconciliation_claims_are_disjoint<S: Store>(store: S) {
    let (instructor, buyer) = seed_people(&store).await;
    let mut all = Vec::new();
    for i in 1..=20 {
        all.push(pending(&store, &instructor, &buyer, at(i)).await.id);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .claim_for_reconciliation(at(100), at(100), at(200), 5)
                .await
        });
    }
    let mut claimed = HashSet::new();
    while let Some(result) = tasks.join_next().await {
        let batch = result.unwrap().unwrap();
        assert!(batch.len() <= 5, "{} claimed", batch.len());
        for purchase in batch {
            assert!(all.contains(&purchase.id));
            assert!(
                claimed.insert(purchase.id),
                "claimed twice: {}",
                purchase.id
            );
        }
    }
    // Whatever no task got is still claimable, oldest first; then nothing is.
    let rest: Vec<_> = all
        .iter()
        .copied()
        .filter(|id| !claimed.contains(id))
        .collect();
    let late = store
        .claim_for_reconciliation(at(100), at(100), at(200), 100)
        .await
        .unwrap();
    assert_eq!(ids(&late), rest);
    assert_eq!(
        store
            .claim_for_reconciliation(at(100), at(199), at(300), 100)
            .await
            .unwrap(),
        vec![]
    );
}

// ---------------------------------------------------------------------------------------------
// list_held
// ---------------------------------------------------------------------------------------------

pub async fn held_lists_purchases_held_for_review_oldest_first_ties_by_id_and_paged<S: Store>(
    store: S,
) {
    let (instructor, buyer) = seed_people(&store).await;
    let empty = store.list_held(PageRequest::new(1, 10)).await.unwrap();
    assert_eq!((empty.items, empty.total), (vec![], 0));

    let hold = |created, facts: Vec<PaymentFact>| {
        let (store, instructor, buyer) = (store.clone(), instructor.clone(), buyer.clone());
        async move {
            let purchase = pending(&store, &instructor, &buyer, created).await;
            apply(&store, purchase.id, facts, None, at(20)).await
        }
    };
    // Held: a captured payment that does not match the price, neither accepted nor refunded.
    let mut held = vec![
        hold(at(3), vec![payment(usd(500))]).await,
        hold(at(1), vec![payment(money(1999, "EUR"))]).await,
        hold(at(2), vec![payment(usd(2500))]).await,
        hold(at(2), vec![payment(usd(100))]).await,
        // Partly refunded: still held.
        hold(
            at(4),
            vec![payment(usd(500)), PaymentFact::Refunded { total: usd(100) }],
        )
        .await,
        // A dispute opened (not lost) does not release it either.
        hold(at(5), vec![payment(usd(500)), PaymentFact::DisputeOpened]).await,
    ];
    for purchase in &held {
        assert!(purchase.review_reason().is_some(), "{purchase:?}");
    }
    // Not held, though older.
    let not_held = [
        vec![],
        vec![PaymentFact::PaymentProcessing],
        paid_in_full(),
        vec![payment(usd(500)), PaymentFact::AcceptedByOperator],
        vec![payment(usd(500)), PaymentFact::Refunded { total: usd(500) }],
        vec![payment(usd(1999)), payment(usd(500))],
        vec![
            payment(usd(500)),
            PaymentFact::DisputeClosed(DisputeOutcome::Lost),
        ],
        vec![PaymentFact::CheckoutExpired],
    ];
    for facts in not_held {
        let purchase = hold(at(0), facts).await;
        assert_eq!(purchase.review_reason(), None, "{purchase:?}");
    }

    held.sort_by_key(|purchase| (purchase.created_at, purchase.id));
    let all = store.list_held(PageRequest::new(1, 100)).await.unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(all.items, held);

    let mut paged = Vec::new();
    for page in 1..=3 {
        let got = store.list_held(PageRequest::new(page, 2)).await.unwrap();
        assert_eq!(got.total, 6, "page {page}");
        assert_eq!(got.items.len(), 2, "page {page}");
        paged.extend(got.items);
    }
    assert_eq!(paged, held, "pages neither overlap nor skip");
    let beyond = store.list_held(PageRequest::new(4, 2)).await.unwrap();
    assert_eq!((beyond.items, beyond.total), (vec![], 6));

    // Accepted: no longer held.
    let accepted = apply(
        &store,
        held[0].id,
        vec![PaymentFact::AcceptedByOperator],
        None,
        at(30),
    )
    .await;
    assert_eq!(accepted.status(), PurchaseStatus::Completed);
    let after = store.list_held(PageRequest::new(1, 100)).await.unwrap();
    assert_eq!(after.total, 5);
    assert_eq!(after.items, held[1..]);
}
