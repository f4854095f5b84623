//! The `deployment` table: one row, the payments mode the database belongs to.
//!
//! Both adapters claim it with the same two statements: `INSERT .. ON CONFLICT (id) DO
//! NOTHING` (one row inserted: this claim recorded the mode), then, when nothing was inserted,
//! `SELECT payments_mode` (what an earlier or a concurrent claim recorded). The insert waits
//! for a concurrent one to commit or roll back before it decides, and the select runs after it,
//! so it always finds the row.

use lms_ports::{DeploymentClaim, PaymentsMode, RepoError};

use crate::corrupt;

/// The id of the table's only row (a CHECK allows no other).
pub const DEPLOYMENT_ROW_ID: i16 = 1;

/// What a claim of `wanted` found when the row already held `recorded`.
///
/// # Errors
/// [`RepoError::Unexpected`] when `recorded` names no mode this build knows.
pub fn deployment_claim(
    wanted: PaymentsMode,
    recorded: &str,
) -> Result<DeploymentClaim, RepoError> {
    match PaymentsMode::parse(recorded) {
        Some(mode) if mode == wanted => Ok(DeploymentClaim::Matches),
        Some(mode) => Ok(DeploymentClaim::Conflict { recorded: mode }),
        None => Err(corrupt(
            "payments mode",
            format!("{recorded:?} names no mode this build knows"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_mode_matches_conflicts_or_is_corrupt() {
        assert_eq!(
            deployment_claim(PaymentsMode::StripeLive, "stripe_live"),
            Ok(DeploymentClaim::Matches)
        );
        assert_eq!(
            deployment_claim(PaymentsMode::StripeLive, "stripe_test"),
            Ok(DeploymentClaim::Conflict {
                recorded: PaymentsMode::StripeTest
            })
        );
        assert!(matches!(
            deployment_claim(PaymentsMode::Sandbox, "paypal"),
            Err(RepoError::Unexpected(_))
        ));
    }
}
