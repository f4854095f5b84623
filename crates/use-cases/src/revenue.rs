//! The revenue report: what the courses earned, per course and currency, over a time range.

use crate::{Services, UseCaseError};
use lms_domain::{Currency, Role, User, UserId};
use lms_ports::{RevenueLine, RevenueQuery};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Which sales to report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevenueRequest {
    /// One instructor's courses; `None`: an instructor's own, or every course for an admin.
    pub instructor: Option<UserId>,
    /// Sales at or after this instant; unbounded when `None`.
    pub from: Option<OffsetDateTime>,
    /// Sales before this instant; unbounded when `None`.
    pub to: Option<OffsetDateTime>,
}

/// The sums of every line of one currency (amounts in different currencies are never added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueTotals {
    pub currency: Currency,
    pub purchases: u64,
    pub gross: i64,
    pub discounts: i64,
    pub tax: i64,
    pub paid: i64,
    pub refunds: i64,
    pub disputes_lost: i64,
    pub net: i64,
}

impl RevenueTotals {
    fn zero(currency: Currency) -> Self {
        Self {
            currency,
            purchases: 0,
            gross: 0,
            discounts: 0,
            tax: 0,
            paid: 0,
            refunds: 0,
            disputes_lost: 0,
            net: 0,
        }
    }

    fn add(&mut self, line: &RevenueLine) {
        self.purchases = self.purchases.saturating_add(line.purchases);
        for (total, amount) in [
            (&mut self.gross, line.gross),
            (&mut self.discounts, line.discounts),
            (&mut self.tax, line.tax),
            (&mut self.paid, line.paid),
            (&mut self.refunds, line.refunds),
            (&mut self.disputes_lost, line.disputes_lost),
            (&mut self.net, line.net),
        ] {
            *total = total.saturating_add(amount);
        }
    }
}

/// What [`Services::revenue`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueReport {
    /// Per course and currency, ordered by course title, course id and currency.
    pub lines: Vec<RevenueLine>,
    /// Per currency, ordered by currency code.
    pub totals: Vec<RevenueTotals>,
}

impl RevenueReport {
    fn of(lines: Vec<RevenueLine>) -> Self {
        let mut totals: BTreeMap<&'static str, RevenueTotals> = BTreeMap::new();
        for line in &lines {
            totals
                .entry(line.currency.code())
                .or_insert_with(|| RevenueTotals::zero(line.currency))
                .add(line);
        }
        Self {
            totals: totals.into_values().collect(),
            lines,
        }
    }
}

impl Services {
    /// The revenue report of the sales in `[from, to)`: an instructor sees their own courses
    /// (naming another instructor is forbidden), an admin every course or one instructor's.
    /// One storage query.
    ///
    /// # Errors
    /// [`UseCaseError::Forbidden`] for a student, or an instructor naming another instructor;
    /// [`UseCaseError::Validation`] on `from` when it is after `to`; storage errors.
    pub async fn revenue(
        &self,
        actor: &User,
        request: RevenueRequest,
    ) -> Result<RevenueReport, UseCaseError> {
        let instructor = match actor.role {
            Role::Admin => request.instructor,
            Role::Instructor => match request.instructor {
                Some(other) if other != actor.id => return Err(UseCaseError::Forbidden),
                _ => Some(actor.id),
            },
            Role::Student => return Err(UseCaseError::Forbidden),
        };
        if let (Some(from), Some(to)) = (request.from, request.to) {
            if from > to {
                return Err(UseCaseError::field("from", "must not be after `to`"));
            }
        }
        let query = RevenueQuery {
            instructor,
            sold_from: request.from,
            sold_before: request.to,
        };
        Ok(RevenueReport::of(self.purchases.revenue(&query).await?))
    }
}
