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
        paid_in_full -> Bool,
        mismatched_payment_cents -> Nullable<BigInt>,
        mismatched_payment_currency -> Nullable<Text>,
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
    }
}

diesel::table! {
    processed_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        purchase_id -> Text,
        received_at -> BigInt,
        payload -> Text,
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
diesel::joinable!(processed_events -> purchases (purchase_id));

diesel::allow_tables_to_appear_in_same_query!(users, courses, purchases, processed_events);
