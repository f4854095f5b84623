//! Diesel's view of the tables created by `migrations/sqlite/`: the PostgreSQL schema
//! with SQLite's types (uuid text, instants as unix nanoseconds, booleans as integers).

diesel::table! {
    users (id) {
        id -> Text,
        name -> Text,
        email -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        session_generation -> BigInt,
        gateway_customer_id -> Nullable<Text>,
    }
}

diesel::table! {
    courses (id) {
        id -> Text,
        instructor_id -> Text,
        title -> Text,
        subtitle -> Nullable<Text>,
        description -> Nullable<Text>,
        category -> Nullable<Text>,
        level -> Nullable<Text>,
        price_cents -> BigInt,
        currency -> Text,
        published -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    purchases (id) {
        id -> Text,
        user_id -> Text,
        course_id -> Text,
        status -> Text,
        price_cents -> BigInt,
        currency -> Text,
        checkout_session_id -> Nullable<Text>,
        checkout_url -> Nullable<Text>,
        checkout_expires_at -> Nullable<BigInt>,
        payment_intent_id -> Nullable<Text>,
        attempt_failed -> Bool,
        processing -> Bool,
        async_payment_failed -> Bool,
        checkout_expired -> Bool,
        checkout_not_started -> Bool,
        refunded_cents -> Nullable<BigInt>,
        refunded_currency -> Nullable<Text>,
        dispute_opened -> Bool,
        dispute_won -> Bool,
        dispute_lost -> Bool,
        holds_active_slot -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        paid_at -> Nullable<BigInt>,
        accepted_by_operator -> Bool,
        /// The reconciliation lease (no part of the purchase).
        reconcile_after -> Nullable<BigInt>,
        captured_cents -> Nullable<BigInt>,
        captured_currency -> Nullable<Text>,
        bill_currency -> Nullable<Text>,
        bill_subtotal_cents -> Nullable<BigInt>,
        bill_discount_cents -> Nullable<BigInt>,
        bill_tax_cents -> Nullable<BigInt>,
        bill_total_cents -> Nullable<BigInt>,
        conversion_currency -> Nullable<Text>,
        conversion_subtotal_cents -> Nullable<BigInt>,
        conversion_total_cents -> Nullable<BigInt>,
        receipt_url -> Nullable<Text>,
        promotion_code -> Nullable<Text>,
        /// The refund lease (no part of the purchase).
        refund_lease_until -> Nullable<BigInt>,
        /// The sale, derived by the domain on every write (never read back).
        sale_currency -> Nullable<Text>,
        sale_gross_cents -> Nullable<BigInt>,
        sale_discount_cents -> Nullable<BigInt>,
        sale_tax_cents -> Nullable<BigInt>,
        sale_paid_cents -> Nullable<BigInt>,
        sale_refunded_cents -> Nullable<BigInt>,
        sale_disputes_lost_cents -> Nullable<BigInt>,
        sale_net_cents -> Nullable<BigInt>,
        sold_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The event inbox: every verified gateway event and what became of it.
    webhook_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        purchase_id -> Nullable<Text>,
        first_received_at -> BigInt,
        payload -> Nullable<Text>,
        livemode -> Bool,
        created -> BigInt,
        last_received_at -> BigInt,
        delivery_count -> Integer,
        outcome -> Text,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    /// The append-only audit trail; `id` is the append order.
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        actor_kind -> Text,
        actor_user_id -> Nullable<Text>,
        action -> Text,
        purchase_id -> Nullable<Text>,
        event_id -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
        amount_cents -> Nullable<BigInt>,
        currency -> Nullable<Text>,
        reason -> Text,
    }
}

diesel::table! {
    /// One row (id 1): the payments mode the database belongs to.
    deployment (id) {
        id -> SmallInt,
        payments_mode -> Text,
        recorded_at -> BigInt,
    }
}

diesel::joinable!(courses -> users (instructor_id));
diesel::joinable!(purchases -> courses (course_id));
diesel::joinable!(webhook_events -> purchases (purchase_id));

diesel::allow_tables_to_appear_in_same_query!(users, courses, purchases, webhook_events);
