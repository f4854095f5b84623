//! Reading single values back over a raw connection, shared by the test binaries.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failing unwrap or panic is a failing test"
)]

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = Text)]
    value: String,
}

/// The `bigint` column `n` of the one row `sql` returns.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

/// The `text` column `value` of the one row `sql` returns.
#[allow(dead_code, reason = "not every test binary reads text")]
pub async fn text(conn: &mut AsyncPgConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<One>(conn)
        .await
        .unwrap()
        .value
}

/// Waits (10 s at most) until a session of `observer`'s database waits for a lock: a statement
/// stopped on a row a test holds.
#[allow(dead_code, reason = "not every test binary holds rows")]
pub async fn until_a_session_waits_for_a_lock(observer: &mut AsyncPgConnection) {
    until_sessions_wait_for_locks(observer, 1).await;
}

/// Waits (10 s at most) until `sessions` sessions of `observer`'s database wait for a lock.
#[allow(dead_code, reason = "not every test binary holds rows")]
pub async fn until_sessions_wait_for_locks(observer: &mut AsyncPgConnection, sessions: i64) {
    for _ in 0..1000 {
        let waiting = count(
            observer,
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting >= sessions {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {sessions} sessions ever waited for a lock at once");
}
