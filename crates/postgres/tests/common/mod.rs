//! Reading single values back over a raw connection, shared by the test binaries.

#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
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
