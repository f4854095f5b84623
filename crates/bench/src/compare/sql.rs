//! The SQL the app issues for each workload, as text, for the baselines to run straight
//! against the database. Each statement is written as the storage adapters' diesel queries
//! render it (white space aside: statements are compared and run with white space collapsed,
//! [`super::capture::normalize`]); `compare` checks at start-up that a request of each
//! workload still runs exactly these, in this order ([`super::check`]), and stops otherwise,
//! listing the difference (`--print-sql` prints what the app runs now).
//!
//! Where they come from:
//! - No pool check: `PgStore`'s pool asks a connection whether it is closed before handing it
//!   out, without a statement (it used to send `SELECT $1` per repository call); the SQLite
//!   store's readers use `RecyclingMethod::Fast` and its writer is not pooled.
//! - First delivery: `Services::handle_webhook` (`crates/use-cases/src/events.rs`)
//!   locates the purchase from the event's metadata (no query), then `PurchaseRepo::apply_facts`
//!   (`crates/postgres/src/lib.rs` `apply_in_transaction`, `crates/sqlite/src/lib.rs` the
//!   same): in one transaction, the inbox upsert (`upsert_event`, `DeliveryKind::Delivered`:
//!   a duplicate stops there and commits), the purchase and its buyer's other purchases of the
//!   course locked (`lock_buyers_purchases`, sent with the upsert on PostgreSQL: see
//!   [`Stmt::pipelined`]; SQLite's `BEGIN IMMEDIATE` already holds the write lock, so a plain
//!   `load_buyers_purchases` after the upsert) and its new state saved (`StateRow`). The other
//!   purchases read under the lock are what `refund_double_payments` looks at for a double
//!   payment: no read after the commit.
//! - Duplicate: the app remembers the events it recorded (`RecentEvents` in
//!   `crates/use-cases/src/events.rs`), so a redelivery of one is only counted
//!   (`EventInbox::count_redelivery`: `CountRedelivery` in `crates/postgres/src/rendered.rs`,
//!   whose commit does not wait for the WAL flush; an `UPDATE` on SQLite's writer). A
//!   redelivery it does not remember takes the first delivery's path, the upsert's answer
//!   stopping it.
//! - Purchase-status read: the JWT extractor verifies the token without a read
//!   (`SignedSession`, `crates/actix-api/src/auth.rs`); `Services::purchase_status`
//!   (`crates/use-cases/src/payments.rs`) reads the user, the course and the buyer's purchases
//!   of it in one statement (`PurchaseRepo::buyer_view`) and checks the session against the
//!   user it got.

use super::capture::normalize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One statement of a workload; its text depends on the backend ([`Stmt::sql`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stmt {
    Begin,
    Commit,
    /// A redelivery counted: its delivery count and last receipt time, one statement (on
    /// PostgreSQL, committed without waiting for the WAL flush).
    CountRedelivery,
    /// The inbox upsert of a gateway delivery; returns the delivery count (1: inserted).
    UpsertEvent,
    /// The purchase and its buyer's other purchases of the course, locked on PostgreSQL.
    LockPurchases,
    /// Every column a fact update may change.
    UpdatePurchase,
    /// The user, the course and the user's purchases of it, in one statement.
    BuyerView,
}

/// Which database's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Stmt {
    pub const ALL: [Self; 7] = [
        Self::Begin,
        Self::Commit,
        Self::CountRedelivery,
        Self::UpsertEvent,
        Self::LockPurchases,
        Self::UpdatePurchase,
        Self::BuyerView,
    ];

    /// Whether the app sends `next` right after `first` without waiting for `first`'s answer
    /// (pipelined: one round trip for both). On PostgreSQL, `BEGIN`, the inbox upsert and the
    /// lock; then a first delivery's `UPDATE` and `COMMIT` (`apply_with_pipelined_begin` and
    /// `write_merge_and_commit` in `crates/postgres/src/lib.rs`).
    pub fn pipelined(backend: Backend, first: Self, next: Self) -> bool {
        backend == Backend::Postgres
            && matches!(
                (first, next),
                (Self::Begin, Self::UpsertEvent)
                    | (Self::UpsertEvent, Self::LockPurchases)
                    | (Self::UpdatePurchase, Self::Commit)
            )
    }

    /// The statement's text on `backend` as sent: white space collapsed
    /// ([`super::capture::normalize`]), which gives the text diesel generates.
    pub fn text(self, backend: Backend) -> &'static str {
        static TEXTS: OnceLock<HashMap<(Stmt, Backend), String>> = OnceLock::new();
        TEXTS
            .get_or_init(|| {
                Self::ALL
                    .iter()
                    .flat_map(|&stmt| {
                        [Backend::Postgres, Backend::Sqlite]
                            .map(|backend| ((stmt, backend), normalize(stmt.sql(backend))))
                    })
                    .collect()
            })
            .get(&(self, backend))
            .map_or("", String::as_str)
    }

    /// The statement's text on `backend`, as written here (not yet normalized).
    pub fn sql(self, backend: Backend) -> &'static str {
        match backend {
            Backend::Postgres => match self {
                Self::Begin => "BEGIN",
                Self::Commit => "COMMIT",
                Self::CountRedelivery => PG_COUNT_REDELIVERY,
                Self::UpsertEvent => PG_UPSERT_EVENT,
                Self::LockPurchases => PG_LOCK_PURCHASES,
                Self::UpdatePurchase => PG_UPDATE_PURCHASE,
                Self::BuyerView => PG_BUYER_VIEW,
            },
            Backend::Sqlite => match self {
                Self::Begin => "BEGIN IMMEDIATE",
                Self::Commit => "COMMIT",
                Self::CountRedelivery => SQLITE_COUNT_REDELIVERY,
                Self::UpsertEvent => SQLITE_UPSERT_EVENT,
                Self::LockPurchases => SQLITE_LOAD_PURCHASES,
                Self::UpdatePurchase => SQLITE_UPDATE_PURCHASE,
                Self::BuyerView => SQLITE_BUYER_VIEW,
            },
        }
    }
}

/// The statements of one request of each workload, in order.
#[derive(Debug, Clone, Copy)]
pub struct Statements {
    pub first_delivery: &'static [Stmt],
    pub duplicate: &'static [Stmt],
    pub status_read: &'static [Stmt],
}

/// PostgreSQL: every repository call checks out a pooled connection (no statement for that).
pub const POSTGRES: Statements = Statements {
    first_delivery: &[
        Stmt::Begin,
        Stmt::UpsertEvent,
        Stmt::LockPurchases,
        Stmt::UpdatePurchase,
        Stmt::Commit,
    ],
    duplicate: &[Stmt::CountRedelivery],
    status_read: &[Stmt::BuyerView],
};

/// SQLite: a transaction on the single writer, every other read on a reader connection.
pub const SQLITE: Statements = Statements {
    first_delivery: &[
        Stmt::Begin,
        Stmt::UpsertEvent,
        Stmt::LockPurchases,
        Stmt::UpdatePurchase,
        Stmt::Commit,
    ],
    duplicate: &[Stmt::CountRedelivery],
    status_read: &[Stmt::BuyerView],
};

impl Statements {
    pub fn of(backend: Backend) -> Self {
        match backend {
            Backend::Postgres => POSTGRES,
            Backend::Sqlite => SQLITE,
        }
    }
}

// The column lists diesel writes for a whole row (`as_select()`), table-qualified.

macro_rules! pg_purchase_columns {
    () => {
        r#""purchases"."id", "purchases"."user_id",
    "purchases"."course_id", "purchases"."price_cents", "purchases"."currency",
    "purchases"."checkout_session_id", "purchases"."checkout_url",
    "purchases"."checkout_expires_at", "purchases"."status", "purchases"."payment_intent_id",
    "purchases"."captured_cents", "purchases"."captured_currency", "purchases"."paid_at",
    "purchases"."bill_currency", "purchases"."bill_subtotal_cents",
    "purchases"."bill_discount_cents", "purchases"."bill_tax_cents", "purchases"."bill_total_cents",
    "purchases"."conversion_currency", "purchases"."conversion_subtotal_cents",
    "purchases"."conversion_total_cents", "purchases"."attempt_failed", "purchases"."processing",
    "purchases"."async_payment_failed", "purchases"."checkout_expired",
    "purchases"."checkout_not_started", "purchases"."refunded_cents",
    "purchases"."refunded_currency", "purchases"."dispute_opened", "purchases"."dispute_won",
    "purchases"."dispute_lost", "purchases"."accepted_by_operator", "purchases"."receipt_url",
    "purchases"."promotion_code", "purchases"."sale_currency", "purchases"."sale_gross_cents",
    "purchases"."sale_discount_cents", "purchases"."sale_tax_cents", "purchases"."sale_paid_cents",
    "purchases"."sale_refunded_cents", "purchases"."sale_disputes_lost_cents",
    "purchases"."sale_net_cents", "purchases"."sold_at", "purchases"."holds_active_slot",
    "purchases"."updated_at", "purchases"."created_at""#
    };
}

macro_rules! pg_user_columns {
    () => {
        r#""users"."id", "users"."name", "users"."email",
    "users"."role", "users"."password_hash", "users"."session_generation", "users"."created_at""#
    };
}

macro_rules! pg_course_columns {
    () => {
        r#""courses"."id", "courses"."instructor_id",
    "courses"."title", "courses"."subtitle", "courses"."description", "courses"."category",
    "courses"."level", "courses"."price_cents", "courses"."currency", "courses"."published",
    "courses"."created_at", "courses"."updated_at""#
    };
}

macro_rules! sqlite_purchase_columns {
    () => {
        "`purchases`.`id`, `purchases`.`user_id`,
    `purchases`.`course_id`, `purchases`.`price_cents`, `purchases`.`currency`,
    `purchases`.`checkout_session_id`, `purchases`.`checkout_url`,
    `purchases`.`checkout_expires_at`, `purchases`.`status`, `purchases`.`payment_intent_id`,
    `purchases`.`captured_cents`, `purchases`.`captured_currency`, `purchases`.`paid_at`,
    `purchases`.`bill_currency`, `purchases`.`bill_subtotal_cents`,
    `purchases`.`bill_discount_cents`, `purchases`.`bill_tax_cents`, `purchases`.`bill_total_cents`,
    `purchases`.`conversion_currency`, `purchases`.`conversion_subtotal_cents`,
    `purchases`.`conversion_total_cents`, `purchases`.`attempt_failed`, `purchases`.`processing`,
    `purchases`.`async_payment_failed`, `purchases`.`checkout_expired`,
    `purchases`.`checkout_not_started`, `purchases`.`refunded_cents`,
    `purchases`.`refunded_currency`, `purchases`.`dispute_opened`, `purchases`.`dispute_won`,
    `purchases`.`dispute_lost`, `purchases`.`accepted_by_operator`, `purchases`.`receipt_url`,
    `purchases`.`promotion_code`, `purchases`.`sale_currency`, `purchases`.`sale_gross_cents`,
    `purchases`.`sale_discount_cents`, `purchases`.`sale_tax_cents`, `purchases`.`sale_paid_cents`,
    `purchases`.`sale_refunded_cents`, `purchases`.`sale_disputes_lost_cents`,
    `purchases`.`sale_net_cents`, `purchases`.`sold_at`, `purchases`.`holds_active_slot`,
    `purchases`.`updated_at`, `purchases`.`created_at`"
    };
}

macro_rules! sqlite_user_columns {
    () => {
        "`users`.`id`, `users`.`name`, `users`.`email`,
    `users`.`role`, `users`.`password_hash`, `users`.`session_generation`, `users`.`created_at`"
    };
}

macro_rules! sqlite_course_columns {
    () => {
        "`courses`.`id`, `courses`.`instructor_id`,
    `courses`.`title`, `courses`.`subtitle`, `courses`.`description`, `courses`.`category`,
    `courses`.`level`, `courses`.`price_cents`, `courses`.`currency`, `courses`.`published`,
    `courses`.`created_at`, `courses`.`updated_at`"
    };
}

// ---- PostgreSQL (`crates/postgres/src/lib.rs`, diesel's `Pg` query builder) ----

/// `upsert_event`, `DeliveryKind::Delivered` (`UpsertDelivery` in
/// `crates/postgres/src/rendered.rs`). Binds: event id, type, purchase id, received at, payload
/// (json), livemode, created, received at again, 1 (delivery count), `applied`, NULL (error),
/// then the 1 added to the count of a redelivery.
const PG_UPSERT_EVENT: &str = r#"INSERT INTO "webhook_events" ("event_id", "event_type",
    "purchase_id", "first_received_at", "payload", "livemode", "created", "last_received_at",
    "delivery_count", "outcome", "error") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT ("event_id") DO UPDATE SET "delivery_count" =
    ("webhook_events"."delivery_count" + $12), "last_received_at" = excluded."last_received_at"
    RETURNING "webhook_events"."delivery_count""#;

/// `CountRedelivery` (`crates/postgres/src/rendered.rs`, written by hand). Binds: received at,
/// event id.
const PG_COUNT_REDELIVERY: &str = r#"UPDATE "webhook_events" SET "delivery_count" =
    "webhook_events"."delivery_count" + 1, "last_received_at" = $1 FROM (SELECT
    set_config('synchronous_commit', 'off', true)) AS "relaxed" WHERE
    "webhook_events"."event_id" = $2"#;

/// `lock_buyers_purchases` of a delivery: the purchase's buyer and course from two scalar
/// subqueries of an alias (`single_value`), only if the event's inbox row counts one delivery
/// (none for a redelivery), the rows in id order, locked. Binds: purchase id, 1 (limit),
/// purchase id, 1, event id, 1 (delivery count).
const PG_LOCK_PURCHASES: &str = concat!(
    "SELECT ",
    pg_purchase_columns!(),
    r#" FROM "purchases" WHERE ((("purchases"."user_id" = (SELECT "target"."user_id" FROM
    "purchases" AS "target" WHERE ("target"."id" = $1) LIMIT $2)) AND ("purchases"."course_id" =
    (SELECT "target"."course_id" FROM "purchases" AS "target" WHERE ("target"."id" = $3) LIMIT
    $4))) AND EXISTS (SELECT "webhook_events"."event_id", "webhook_events"."event_type",
    "webhook_events"."purchase_id", "webhook_events"."first_received_at", "webhook_events"."payload",
    "webhook_events"."livemode", "webhook_events"."created", "webhook_events"."last_received_at",
    "webhook_events"."delivery_count", "webhook_events"."outcome", "webhook_events"."error" FROM
    "webhook_events" WHERE (("webhook_events"."event_id" = $5) AND
    ("webhook_events"."delivery_count" = $6)))) ORDER BY "purchases"."id" FOR NO KEY UPDATE"#
);

/// `UpdatePurchaseState` (`crates/postgres/src/rendered.rs`: diesel's `update(..).set(StateRow)`
/// rendered once). Binds: the state's 37 columns in this order (facts, details, the derived
/// status and sale, slot, update time), then the purchase id.
const PG_UPDATE_PURCHASE: &str = r#"UPDATE "purchases" SET "status" = $1, "payment_intent_id" = $2,
    "captured_cents" = $3, "captured_currency" = $4, "paid_at" = $5, "bill_currency" = $6,
    "bill_subtotal_cents" = $7, "bill_discount_cents" = $8, "bill_tax_cents" = $9,
    "bill_total_cents" = $10, "conversion_currency" = $11, "conversion_subtotal_cents" = $12,
    "conversion_total_cents" = $13, "attempt_failed" = $14, "processing" = $15,
    "async_payment_failed" = $16, "checkout_expired" = $17, "checkout_not_started" = $18,
    "refunded_cents" = $19, "refunded_currency" = $20, "dispute_opened" = $21, "dispute_won" = $22,
    "dispute_lost" = $23, "accepted_by_operator" = $24, "receipt_url" = $25, "promotion_code" = $26,
    "sale_currency" = $27, "sale_gross_cents" = $28, "sale_discount_cents" = $29,
    "sale_tax_cents" = $30, "sale_paid_cents" = $31, "sale_refunded_cents" = $32,
    "sale_disputes_lost_cents" = $33, "sale_net_cents" = $34, "sold_at" = $35,
    "holds_active_slot" = $36, "updated_at" = $37 WHERE ("purchases"."id" = $38)"#;

/// `buyer_view`: the user, left-joined to the course and to the user's purchases of it, unordered
/// (the app orders the purchases).
/// Binds: course id, course id, user id.
const PG_BUYER_VIEW: &str = concat!(
    "SELECT ",
    pg_user_columns!(),
    ", ",
    pg_course_columns!(),
    ", ",
    pg_purchase_columns!(),
    r#" FROM (("users" LEFT OUTER JOIN "courses" ON ("courses"."id" = $1)) LEFT OUTER JOIN
    "purchases" ON (("purchases"."user_id" = "users"."id") AND ("purchases"."course_id" = $2)))
    WHERE ("users"."id" = $3)"#
);

// ---- SQLite (`crates/sqlite/src/lib.rs`, diesel's `Sqlite` query builder) ----

/// `upsert_event`, as on PostgreSQL; SQLite's insert leaves the `None` error column out.
const SQLITE_UPSERT_EVENT: &str = "INSERT INTO `webhook_events` (`event_id`, `event_type`,
    `purchase_id`, `first_received_at`, `payload`, `livemode`, `created`, `last_received_at`,
    `delivery_count`, `outcome`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (`event_id`)
    DO UPDATE SET `delivery_count` = (`webhook_events`.`delivery_count` + ?),
    `last_received_at` = excluded.`last_received_at` RETURNING `delivery_count`";

/// `count_redelivery`: diesel's `update(..).set(..)`. Binds: 1 (added to the count), received
/// at, event id.
const SQLITE_COUNT_REDELIVERY: &str = "UPDATE `webhook_events` SET `delivery_count` =
    (`webhook_events`.`delivery_count` + ?), `last_received_at` = ? WHERE
    (`webhook_events`.`event_id` = ?)";

/// `load_buyers_purchases`, as on PostgreSQL without the order and the lock (the transaction
/// holds the database's write lock).
const SQLITE_LOAD_PURCHASES: &str = concat!(
    "SELECT ",
    sqlite_purchase_columns!(),
    " FROM `purchases` WHERE ((`purchases`.`user_id` = (SELECT `target`.`user_id` FROM
    `purchases` AS `target` WHERE (`target`.`id` = ?) LIMIT ?)) AND (`purchases`.`course_id` =
    (SELECT `target`.`course_id` FROM `purchases` AS `target` WHERE (`target`.`id` = ?) LIMIT
    ?)))"
);

const SQLITE_UPDATE_PURCHASE: &str = "UPDATE `purchases` SET `status` = ?, `payment_intent_id` = ?,
    `captured_cents` = ?, `captured_currency` = ?, `paid_at` = ?, `bill_currency` = ?,
    `bill_subtotal_cents` = ?, `bill_discount_cents` = ?, `bill_tax_cents` = ?,
    `bill_total_cents` = ?, `conversion_currency` = ?, `conversion_subtotal_cents` = ?,
    `conversion_total_cents` = ?, `attempt_failed` = ?, `processing` = ?,
    `async_payment_failed` = ?, `checkout_expired` = ?, `checkout_not_started` = ?,
    `refunded_cents` = ?, `refunded_currency` = ?, `dispute_opened` = ?, `dispute_won` = ?,
    `dispute_lost` = ?, `accepted_by_operator` = ?, `receipt_url` = ?, `promotion_code` = ?,
    `sale_currency` = ?, `sale_gross_cents` = ?, `sale_discount_cents` = ?, `sale_tax_cents` = ?,
    `sale_paid_cents` = ?, `sale_refunded_cents` = ?, `sale_disputes_lost_cents` = ?,
    `sale_net_cents` = ?, `sold_at` = ?, `holds_active_slot` = ?, `updated_at` = ? WHERE
    (`purchases`.`id` = ?)";

const SQLITE_BUYER_VIEW: &str = concat!(
    "SELECT ",
    sqlite_user_columns!(),
    ", ",
    sqlite_course_columns!(),
    ", ",
    sqlite_purchase_columns!(),
    " FROM ((`users` LEFT OUTER JOIN `courses` ON (`courses`.`id` = ?)) LEFT OUTER JOIN
    `purchases` ON ((`purchases`.`user_id` = `users`.`id`) AND (`purchases`.`course_id` = ?)))
    WHERE (`users`.`id` = ?)"
);
