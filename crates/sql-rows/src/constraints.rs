//! What each unique index or constraint of the schema means to the ports.

use lms_ports::RepoError;

/// The business error a unique violation of `constraint` means, by the constraint's
/// PostgreSQL name (SQLite, which names no constraint in its errors, maps what it reports to
/// these names first). `None` for a constraint with no business meaning.
pub fn unique_constraint_meaning(constraint: &str) -> Option<RepoError> {
    Some(match constraint {
        // On lower(email).
        "users_email_key" => RepoError::Duplicate("email"),
        // Partial: WHERE gateway_customer_id IS NOT NULL (a customer is one user's).
        "users_gateway_customer_id_key" => RepoError::Duplicate("gateway_customer_id"),
        "users_pkey" | "courses_pkey" | "purchases_pkey" => RepoError::Duplicate("id"),
        // Partial: (user_id, course_id) WHERE holds_active_slot.
        "purchases_active_slot_key" => RepoError::ActivePurchaseExists,
        "purchases_checkout_session_id_key" => RepoError::Duplicate("checkout_session_id"),
        "purchases_payment_intent_id_key" => RepoError::Duplicate("payment_intent_id"),
        // The event inbox's deduplication key (its writes upsert, so only a plain insert hits it).
        "webhook_events_pkey" => RepoError::Duplicate("event_id"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unique_index_has_its_business_meaning() {
        let meaning = unique_constraint_meaning;
        assert_eq!(
            meaning("users_email_key"),
            Some(RepoError::Duplicate("email"))
        );
        assert_eq!(
            meaning("users_gateway_customer_id_key"),
            Some(RepoError::Duplicate("gateway_customer_id"))
        );
        assert_eq!(
            meaning("purchases_active_slot_key"),
            Some(RepoError::ActivePurchaseExists)
        );
        assert_eq!(
            meaning("purchases_checkout_session_id_key"),
            Some(RepoError::Duplicate("checkout_session_id"))
        );
        assert_eq!(
            meaning("purchases_payment_intent_id_key"),
            Some(RepoError::Duplicate("payment_intent_id"))
        );
        for key in ["users_pkey", "courses_pkey", "purchases_pkey"] {
            assert_eq!(meaning(key), Some(RepoError::Duplicate("id")));
        }
        assert_eq!(
            meaning("webhook_events_pkey"),
            Some(RepoError::Duplicate("event_id"))
        );
        assert_eq!(meaning("some_other_key"), None);
    }
}
