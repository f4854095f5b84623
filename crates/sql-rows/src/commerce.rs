//! What the SQL adapters share of the commerce queries: the revenue report's rows, and how a
//! refund lease or a gateway customer link that wrote nothing is read.
//!
//! - **Refund lease.** One atomic statement takes it: `UPDATE purchases SET
//!   refund_lease_until = $until WHERE id = $id AND (refund_lease_until IS NULL OR
//!   refund_lease_until <= $now) RETURNING ..`, so of concurrent takers exactly one gets the
//!   row back. When none comes back, `SELECT refund_lease_until FROM purchases WHERE id = $id`
//!   says why ([`RefundLeaseMiss::of`]): no purchase, or a lease held until a later time. A
//!   lease released (or run out) between the two statements is taken again.
//! - **Gateway customer.** One atomic statement links it, first link wins: `UPDATE users SET
//!   gateway_customer_id = $customer WHERE id = $id AND gateway_customer_id IS NULL RETURNING
//!   gateway_customer_id`; when no row comes back, the customer already linked is read back
//!   ([`linked_gateway_customer`]).
//! - **Revenue.** One `SELECT .. FROM purchases JOIN courses .. WHERE sold_at IS NOT NULL [AND
//!   courses.instructor_id = $i] [AND sold_at >= $from] [AND sold_at < $before] GROUP BY
//!   course, currency ORDER BY title, course id, currency` over the `sale_*` columns the
//!   domain derived ([`RevenueRecord`]).

use lms_domain::{CourseId, Currency, UserId};
use lms_ports::{RepoError, RevenueLine};
use time::OffsetDateTime;

use crate::{corrupt, Encoding};

/// Why the lease-taking `UPDATE` returned no row, from what the follow-up read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundLeaseMiss {
    /// No purchase has this id.
    NotFound,
    /// Another refund holds the lease until then.
    Busy { until: OffsetDateTime },
    /// The lease was released or ran out between the two statements: take it again.
    Retry,
}

impl RefundLeaseMiss {
    /// `found` is the purchase's lease as read after the `UPDATE` missed (`None`: no such
    /// purchase; `Some(None)`: no lease held).
    pub fn of(found: Option<Option<OffsetDateTime>>, now: OffsetDateTime) -> Self {
        match found {
            None => Self::NotFound,
            Some(Some(until)) if until > now => Self::Busy { until },
            Some(_) => Self::Retry,
        }
    }
}

/// How often a lease is tried again when it was released between the `UPDATE` and the read
/// (each retry needs another refund to have finished in that instant).
pub const REFUND_LEASE_ATTEMPTS: usize = 4;

/// The error when every attempt met a lease released just before the read: refunds of the
/// purchase are coming and going too fast to tell; the caller may try again.
pub fn refund_lease_contended() -> RepoError {
    RepoError::unavailable("the refund lease changed hands on every attempt")
}

/// The customer linked to a user, read back after the linking `UPDATE` wrote nothing (`found`:
/// `None` when no user has the id, `Some(None)` when the user has none).
///
/// # Errors
/// [`RepoError::NotFound`] for an unknown user; [`RepoError::Unexpected`] when the user has no
/// customer although the `UPDATE` found one linked (links are never removed).
pub fn linked_gateway_customer(found: Option<Option<String>>) -> Result<String, RepoError> {
    match found {
        None => Err(RepoError::NotFound),
        Some(Some(customer)) => Ok(customer),
        Some(None) => Err(RepoError::unexpected(
            "the user's gateway customer was neither linkable nor linked",
        )),
    }
}

/// One row of the revenue report: a course, a currency and the sums of its sales' columns.
#[derive(Debug)]
pub struct RevenueRecord<E: Encoding> {
    pub course_id: E::Id,
    pub course_title: String,
    pub instructor_id: E::Id,
    pub currency: String,
    pub purchases: i64,
    pub gross: i64,
    pub discounts: i64,
    pub tax: i64,
    pub paid: i64,
    pub refunds: i64,
    pub disputes_lost: i64,
    pub net: i64,
}

impl<E: Encoding> RevenueRecord<E> {
    /// # Errors
    /// [`RepoError::Unexpected`] for a row the domain refuses (an unknown currency, a negative
    /// count).
    pub fn into_line(self) -> Result<RevenueLine, RepoError> {
        Ok(RevenueLine {
            course_id: CourseId::from_uuid(E::load_id(self.course_id, "revenue course id")?),
            course_title: self.course_title,
            instructor_id: UserId::from_uuid(E::load_id(
                self.instructor_id,
                "revenue instructor id",
            )?),
            currency: Currency::parse(&self.currency).map_err(|e| corrupt("sale currency", e))?,
            purchases: u64::try_from(self.purchases)
                .map_err(|e| corrupt("revenue purchase count", e))?,
            gross: self.gross,
            discounts: self.discounts,
            tax: self.tax,
            paid: self.paid,
            refunds: self.refunds,
            disputes_lost: self.disputes_lost,
            net: self.net,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Native;
    use time::Duration;
    use uuid::Uuid;

    #[test]
    fn a_missed_lease_is_not_found_busy_or_taken_again() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let later = now + Duration::minutes(2);
        assert_eq!(RefundLeaseMiss::of(None, now), RefundLeaseMiss::NotFound);
        assert_eq!(
            RefundLeaseMiss::of(Some(Some(later)), now),
            RefundLeaseMiss::Busy { until: later }
        );
        // Released, or run out exactly now: free again.
        assert_eq!(RefundLeaseMiss::of(Some(None), now), RefundLeaseMiss::Retry);
        assert_eq!(
            RefundLeaseMiss::of(Some(Some(now)), now),
            RefundLeaseMiss::Retry
        );
    }

    #[test]
    fn a_customer_read_back_is_the_linked_one_or_not_found() {
        assert_eq!(
            linked_gateway_customer(Some(Some("cus_1".to_owned()))),
            Ok("cus_1".to_owned())
        );
        assert_eq!(linked_gateway_customer(None), Err(RepoError::NotFound));
        assert!(matches!(
            linked_gateway_customer(Some(None)),
            Err(RepoError::Unexpected(_))
        ));
    }

    #[test]
    fn revenue_rows_become_lines_and_refused_ones_are_unexpected() {
        let row = |currency: &str, purchases| RevenueRecord::<Native> {
            course_id: Uuid::from_u128(1),
            course_title: "Rust".to_owned(),
            instructor_id: Uuid::from_u128(2),
            currency: currency.to_owned(),
            purchases,
            gross: 4000,
            discounts: 500,
            tax: 0,
            paid: 3500,
            refunds: 1000,
            disputes_lost: 0,
            net: 2500,
        };
        let line = row("usd", 2).into_line().unwrap();
        assert_eq!(line.currency, Currency::USD);
        assert_eq!(line.purchases, 2);
        assert_eq!(line.course_id, CourseId::from_uuid(Uuid::from_u128(1)));
        assert_eq!(line.instructor_id, UserId::from_uuid(Uuid::from_u128(2)));
        assert_eq!((line.gross, line.paid, line.net), (4000, 3500, 2500));
        assert!(matches!(
            row("XXX", 1).into_line(),
            Err(RepoError::Unexpected(_))
        ));
        assert!(matches!(
            row("USD", -1).into_line(),
            Err(RepoError::Unexpected(_))
        ));
    }
}
