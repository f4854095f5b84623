//! The hand-kept `src/schema.rs` says what the migrations create: a fresh database file is
//! migrated, `PRAGMA table_info` and `foreign_key_list` read back, and compared with the file's
//! `table!` and `joinable!` blocks (what is and is not compared: `lms_test_db::schema`).
//!
//! SQLite records a declared type, not a width: `integer` holds any of diesel's `SmallInt`,
//! `Integer`, `BigInt` or `Bool` (the file says which the code means: 64-bit instants and
//! amounts are `BigInt`). So types are compared by storage class, SQLite's type affinity of
//! the declared type: a `Text` column declared `integer` fails, a `BigInt` one does not.

#![expect(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};
use lms_sqlite::SqliteStore;
use lms_test_db::schema::{assert_same, Column, Joinable, Schema, Table};

/// The storage class a diesel type is kept in on SQLite.
fn storage_class(diesel_type: &str) -> String {
    match diesel_type {
        "SmallInt" | "Integer" | "BigInt" | "Bool" | "TinyInt" => "Integer",
        "Text" | "VarChar" | "Varchar" => "Text",
        "Float" | "Double" => "Real",
        "Binary" => "Binary",
        other => other,
    }
    .to_owned()
}

/// The affinity SQLite gives a declared type (its own rules, in their order).
fn affinity(declared: &str) -> String {
    let declared = declared.to_ascii_uppercase();
    if declared.contains("INT") {
        "Integer"
    } else if ["CHAR", "CLOB", "TEXT"]
        .iter()
        .any(|t| declared.contains(t))
    {
        "Text"
    } else if declared.contains("BLOB") || declared.is_empty() {
        "Binary"
    } else if ["REAL", "FLOA", "DOUB"]
        .iter()
        .any(|t| declared.contains(t))
    {
        "Real"
    } else {
        "Numeric"
    }
    .to_owned()
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    column: String,
    #[diesel(sql_type = Nullable<Text>)]
    referenced: Option<String>,
    #[diesel(sql_type = Integer)]
    columns_in_key: i32,
}

fn catalogue(conn: &mut SqliteConnection) -> Schema {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '__diesel_schema_migrations' \
         ORDER BY name",
    )
    .load(conn)
    .unwrap();
    let mut schema = Schema::default();
    for Name { name: table } in tables {
        let rows: Vec<ColumnRow> = diesel::sql_query(
            "SELECT name, type AS declared, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .unwrap();
        let mut keyed: Vec<&ColumnRow> = rows.iter().filter(|r| r.pk > 0).collect();
        keyed.sort_by_key(|r| r.pk);
        let primary_key: Vec<String> = keyed.iter().map(|r| r.name.clone()).collect();
        let columns = rows
            .iter()
            .map(|r| Column {
                name: r.name.clone(),
                sql_type: affinity(&r.declared),
                // An INTEGER PRIMARY KEY is the rowid: never NULL, declared so or not.
                nullable: r.notnull == 0
                    && !(r.pk > 0 && r.declared.eq_ignore_ascii_case("integer")),
            })
            .collect();
        let keys: Vec<ForeignKeyRow> = diesel::sql_query(
            "SELECT \"table\" AS parent, \"from\" AS column, \"to\" AS referenced, \
                    count(*) OVER (PARTITION BY id) AS columns_in_key \
             FROM pragma_foreign_key_list(?)",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .unwrap();
        // As print-schema: single-column keys to the parent's primary key, and none for a
        // pair of tables joined by more than one.
        let mut parents_pk = |parent: &str| -> Vec<String> {
            diesel::sql_query("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk")
                .bind::<Text, _>(parent)
                .load::<Name>(&mut *conn)
                .unwrap()
                .into_iter()
                .map(|n| n.name)
                .collect()
        };
        let mut joinables: Vec<Joinable> = Vec::new();
        for key in keys
            .iter()
            .filter(|k| k.columns_in_key == 1 && k.parent != table)
        {
            let pk = parents_pk(&key.parent);
            let to_pk = pk.len() == 1 && key.referenced.as_ref().is_none_or(|r| *r == pk[0]);
            let between_pair = keys.iter().filter(|k| k.parent == key.parent).count();
            if to_pk && between_pair == 1 {
                joinables.push(Joinable {
                    child: table.clone(),
                    parent: key.parent.clone(),
                    column: key.column.clone(),
                });
            }
        }
        schema.joinables.extend(joinables);
        schema.tables.push(Table {
            name: table,
            primary_key,
            columns,
        });
    }
    schema
}

#[tokio::test]
async fn schema_rs_matches_what_the_migrations_create() {
    let dir = std::env::temp_dir().join(format!(
        "lms-sqlite-schema-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lms.db");
    let store = SqliteStore::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    store.run_migrations().await.unwrap();
    drop(store);
    let mut conn = SqliteConnection::establish(file.to_str().unwrap()).unwrap();
    let created = catalogue(&mut conn);
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);

    let declared = Schema::parse(include_str!("../src/schema.rs"))
        .unwrap()
        .with_types(storage_class);
    assert!(!declared.tables.is_empty(), "no table! block found");
    assert_same("crates/sqlite/src/schema.rs", &declared, &created);
}
