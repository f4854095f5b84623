//! Diesel's view of the tables created by `migrations/postgres/`.

diesel::table! {
    users (id) {
        id -> Uuid,
        name -> Text,
        email -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        session_generation -> Int8,
        gateway_customer_id -> Nullable<Text>,
    }
}

diesel::table! {
    courses (id) {
        id -> Uuid,
        instructor_id -> Uuid,
        title -> Text,
        subtitle -> Nullable<Text>,
        description -> Nullable<Text>,
        category -> Nullable<Text>,
        level -> Nullable<Text>,
        price_cents -> Int8,
        currency -> Text,
        published -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    purchases (id) {
        id -> Uuid,
        user_id -> Uuid,
        course_id -> Uuid,
        status -> Text,
        price_cents -> Int8,
        currency -> Text,
        checkout_session_id -> Nullable<Text>,
        checkout_url -> Nullable<Text>,
        checkout_expires_at -> Nullable<Timestamptz>,
        payment_intent_id -> Nullable<Text>,
        attempt_failed -> Bool,
        processing -> Bool,
        async_payment_failed -> Bool,
        checkout_expired -> Bool,
        checkout_not_started -> Bool,
        refunded_cents -> Nullable<Int8>,
        refunded_currency -> Nullable<Text>,
        dispute_opened -> Bool,
        dispute_won -> Bool,
        dispute_lost -> Bool,
        holds_active_slot -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        paid_at -> Nullable<Timestamptz>,
        accepted_by_operator -> Bool,
        /// The reconciliation lease (no part of the purchase).
        reconcile_after -> Nullable<Timestamptz>,
        captured_cents -> Nullable<Int8>,
        captured_currency -> Nullable<Text>,
        bill_currency -> Nullable<Text>,
        bill_subtotal_cents -> Nullable<Int8>,
        bill_discount_cents -> Nullable<Int8>,
        bill_tax_cents -> Nullable<Int8>,
        bill_total_cents -> Nullable<Int8>,
        conversion_currency -> Nullable<Text>,
        conversion_subtotal_cents -> Nullable<Int8>,
        conversion_total_cents -> Nullable<Int8>,
        receipt_url -> Nullable<Text>,
        promotion_code -> Nullable<Text>,
        /// The refund lease (no part of the purchase).
        refund_lease_until -> Nullable<Timestamptz>,
        /// The sale, derived by the domain on every write (never read back).
        sale_currency -> Nullable<Text>,
        sale_gross_cents -> Nullable<Int8>,
        sale_discount_cents -> Nullable<Int8>,
        sale_tax_cents -> Nullable<Int8>,
        sale_paid_cents -> Nullable<Int8>,
        sale_refunded_cents -> Nullable<Int8>,
        sale_disputes_lost_cents -> Nullable<Int8>,
        sale_net_cents -> Nullable<Int8>,
        sold_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    /// The event inbox: every verified gateway event and what became of it.
    webhook_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        purchase_id -> Nullable<Uuid>,
        first_received_at -> Timestamptz,
        payload -> Nullable<Json>,
        livemode -> Bool,
        created -> Timestamptz,
        last_received_at -> Timestamptz,
        delivery_count -> Int4,
        outcome -> Text,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    /// The append-only audit trail; `id` is the append order.
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor_kind -> Text,
        actor_user_id -> Nullable<Uuid>,
        action -> Text,
        purchase_id -> Nullable<Uuid>,
        event_id -> Nullable<Text>,
        subject_user_id -> Nullable<Uuid>,
        amount_cents -> Nullable<Int8>,
        currency -> Nullable<Text>,
        reason -> Text,
    }
}

diesel::table! {
    /// One row (id 1): the payments mode the database belongs to.
    deployment (id) {
        id -> SmallInt,
        payments_mode -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::joinable!(courses -> users (instructor_id));
diesel::joinable!(purchases -> courses (course_id));
diesel::joinable!(webhook_events -> purchases (purchase_id));

diesel::allow_tables_to_appear_in_same_query!(users, courses, purchases, webhook_events);
