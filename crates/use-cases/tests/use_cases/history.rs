//! The buyer's order history.

use crate::support::{usd, World};
use lms_domain::{PaymentFact, PurchaseStatus};
use lms_ports::PageRequest;
use time::Duration;

#[tokio::test]
async fn the_history_lists_every_purchase_of_the_buyer_newest_first_and_paged() {
    let world = World::new();
    let (teacher, paid_course, buyer) = world.shop(1999, true).await;
    let paid = world.paid_purchase(&buyer, &paid_course, "pi_paid").await;

    world.clock.advance(Duration::seconds(1));
    let failed_course = world.course(&teacher, 2500, true).await;
    let (failed, _) = world.checkout(&buyer, &failed_course).await;
    world
        .event("evt_failed", &failed, &[PaymentFact::AsyncPaymentFailed])
        .await;

    world.clock.advance(Duration::seconds(1));
    let refunded_course = world.course(&teacher, 990, true).await;
    let refunded = world
        .paid_purchase(&buyer, &refunded_course, "pi_refunded")
        .await;
    world
        .event(
            "evt_refunded",
            &refunded,
            &[PaymentFact::Refunded { total: usd(990) }],
        )
        .await;

    // Someone else's purchase of the same course is not the buyer's history.
    let stranger = world.student().await;
    world
        .paid_purchase(&stranger, &paid_course, "pi_theirs")
        .await;

    let history = world
        .services
        .purchase_history(&buyer, PageRequest::new(1, 20))
        .await
        .unwrap();
    assert_eq!(history.total, 3);
    let listed: Vec<_> = history
        .items
        .iter()
        .map(|pc| {
            (
                pc.purchase.id,
                pc.course.id,
                pc.purchase.status(),
                pc.purchase.price,
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                refunded.id,
                refunded_course.id,
                PurchaseStatus::Refunded,
                usd(990)
            ),
            (
                failed.id,
                failed_course.id,
                PurchaseStatus::Failed,
                usd(2500)
            ),
            (
                paid.id,
                paid_course.id,
                PurchaseStatus::Completed,
                usd(1999)
            ),
        ]
    );

    let second = world
        .services
        .purchase_history(&buyer, PageRequest::new(2, 2))
        .await
        .unwrap();
    assert_eq!(second.total, 3);
    assert_eq!(second.items, history.items[2..].to_vec());

    let none = world
        .services
        .purchase_history(&teacher, PageRequest::new(1, 20))
        .await
        .unwrap();
    assert_eq!((none.total, none.items.len()), (0, 0));
}
