//! Checks that a hand-kept diesel `schema.rs` says what the migrations create.
//!
//! No diesel CLI is needed: a test migrates a fresh database, reads the catalogue into a
//! [`Schema`] ([`postgres_catalogue`] here; the SQLite adapter's test reads `PRAGMA
//! table_info`), parses the file's `table!` and `joinable!` blocks into another, and
//! [`assert_same`] compares the two, rendered the way `diesel print-schema` lays them out.
//!
//! What is compared: every table, its primary key, its columns in order with their SQL types
//! and nullability, and the file's `joinable!` lines, each of which must be one `print-schema`
//! would write (a single-column foreign key to the parent's primary key). A foreign key the file
//! declares no `joinable!` for is not a difference: like `allow_tables_to_appear_in_same_query!`,
//! which is not compared either, it says which joins the code wants, and a wrong one would join
//! on a column no key backs, while a missing one only refuses a join at compile time. Not
//! compared either: doc comments and other attributes (`#[sql_name]`,
//! `#[max_length]`: none in use) and the order of tables (print-schema sorts them by name). Types are compared after a backend's `canonical` mapping, so diesel's aliases
//! (`SmallInt` = `Int2`, `BigInt` = `Int8`, ...) do not count as differences.

use std::fmt::Write as _;

/// A table as `diesel::table!` declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub primary_key: Vec<String>,
    pub columns: Vec<Column>,
}

/// A column; `sql_type` without `Nullable<..>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub sql_type: String,
    pub nullable: bool,
}

/// `diesel::joinable!(child -> parent (column))`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Joinable {
    pub child: String,
    pub parent: String,
    pub column: String,
}

/// What a `schema.rs` declares, or what a database holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub joinables: Vec<Joinable>,
}

impl Schema {
    /// The `table!` and `joinable!` blocks of a `schema.rs`.
    ///
    /// # Errors
    /// A block this parser does not understand, named.
    pub fn parse(source: &str) -> Result<Self, String> {
        // Comments and attributes are not compared (see the module's documentation).
        let text: String = source
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("//") && !line.starts_with("#["))
            .collect::<Vec<_>>()
            .join("\n");
        let mut schema = Self::default();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("table!") {
            let after = &rest[at + "table!".len()..];
            let open = after.find('{').ok_or("table! without a body")?;
            let body_len = matching(&after[open..], '{', '}').ok_or("unbalanced table! body")?;
            schema
                .tables
                .push(parse_table(&after[open + 1..open + body_len - 1])?);
            rest = &after[open + body_len..];
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("joinable!(") {
            let after = &rest[at + "joinable!".len()..];
            let len = matching(after, '(', ')').ok_or("unbalanced joinable!")?;
            schema.joinables.push(parse_joinable(&after[1..len])?);
            rest = &after[len..];
        }
        Ok(schema)
    }

    /// The same schema with every column type passed through `canonical`.
    #[must_use]
    pub fn with_types(mut self, canonical: impl Fn(&str) -> String) -> Self {
        for table in &mut self.tables {
            for column in &mut table.columns {
                column.sql_type = canonical(&column.sql_type);
            }
        }
        self
    }

    /// Rendered as `diesel print-schema` lays it out: tables by name, then the joinables.
    pub fn render(&self) -> String {
        let mut tables: Vec<&Table> = self.tables.iter().collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        let mut joinables = self.joinables.clone();
        joinables.sort();
        let mut out = String::new();
        for table in tables {
            let _ = writeln!(out, "diesel::table! {{");
            let _ = writeln!(
                out,
                "    {} ({}) {{",
                table.name,
                table.primary_key.join(", ")
            );
            for column in &table.columns {
                let ty = if column.nullable {
                    format!("Nullable<{}>", column.sql_type)
                } else {
                    column.sql_type.clone()
                };
                let _ = writeln!(out, "        {} -> {ty},", column.name);
            }
            let _ = writeln!(out, "    }}\n}}\n");
        }
        for j in &joinables {
            let _ = writeln!(
                out,
                "diesel::joinable!({} -> {} ({}));",
                j.child, j.parent, j.column
            );
        }
        out
    }
}

/// The length of `text` up to and including the bracket closing its first character.
fn matching(text: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0_usize;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(i + c.len_utf8());
            }
        }
    }
    None
}

/// `name (pk, ..) { column -> Type, .. }`
fn parse_table(body: &str) -> Result<Table, String> {
    let paren = body
        .find('(')
        .ok_or_else(|| format!("no primary key in {body:?}"))?;
    let name = body[..paren].trim();
    let name = name.rsplit('.').next().unwrap_or(name).to_owned();
    let close = body[paren..].find(')').ok_or("unclosed primary key")? + paren;
    let primary_key = body[paren + 1..close]
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let open = body[close..].find('{').ok_or("no columns")? + close;
    let end = body.rfind('}').ok_or("unclosed columns")?;
    let mut columns = Vec::new();
    for item in split_top_level(&body[open + 1..end]) {
        let (column, ty) = item
            .split_once("->")
            .ok_or_else(|| format!("not `column -> Type`: {item:?} in table {name}"))?;
        let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
        let (sql_type, nullable) = match ty
            .strip_prefix("Nullable<")
            .and_then(|t| t.strip_suffix('>'))
        {
            Some(inner) => (inner.to_owned(), true),
            None => (ty, false),
        };
        columns.push(Column {
            name: column.trim().to_owned(),
            sql_type: bare(&sql_type),
            nullable,
        });
    }
    Ok(Table {
        name,
        primary_key,
        columns,
    })
}

/// `diesel::sql_types::Text` -> `Text` (the path is not part of the type's identity here).
fn bare(ty: &str) -> String {
    ty.split('<')
        .map(|part| part.rsplit("::").next().unwrap_or(part))
        .collect::<Vec<_>>()
        .join("<")
}

/// Splits at commas outside `<..>`, dropping empty items (the trailing comma).
fn split_top_level(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    let mut previous = ' ';
    for (i, c) in text.char_indices() {
        let arrow = previous == '-';
        previous = c;
        match c {
            '<' => depth += 1,
            // The `>` of `->` closes nothing.
            '>' if !arrow => depth -= 1,
            ',' if depth == 0 => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(text[start..].trim());
    items.retain(|item| !item.is_empty());
    items
}

/// `(child -> parent (column))`
fn parse_joinable(inner: &str) -> Result<Joinable, String> {
    let inner = inner.trim().trim_start_matches('(');
    let (child, rest) = inner
        .split_once("->")
        .ok_or_else(|| format!("bad joinable!({inner})"))?;
    let (parent, column) = rest
        .split_once('(')
        .ok_or_else(|| format!("bad joinable!({inner})"))?;
    Ok(Joinable {
        child: child.trim().to_owned(),
        parent: parent.trim().to_owned(),
        column: column.trim_end_matches(')').trim().to_owned(),
    })
}

/// Panics, showing a line diff, unless `declared` (parsed from `file`) and `created` (read from
/// a migrated database) render the same, `created`'s joinables narrowed to those `declared`
/// names (see the module's documentation).
pub fn assert_same(file: &str, declared: &Schema, created: &Schema) {
    let catalogue = created.render();
    let mut created = created.clone();
    created.joinables.retain(|j| declared.joinables.contains(j));
    let (declared, created) = (declared.render(), created.render());
    if declared == created {
        return;
    }
    let mut message = format!(
        "{file} does not match what the migrations create.\n\
         --- {file} (normalised)\n+++ the migrated database's catalogue\n"
    );
    message.push_str(&line_diff(&declared, &created));
    message.push_str("\nThe catalogue, rendered:\n");
    message.push_str(&catalogue);
    panic!("{message}");
}

/// A unified-style diff (every line, `-`/`+` where they differ) by longest common subsequence.
fn line_diff(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let mut lcs = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "  {}", a[i]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        }
    }
    out
}

/// PostgreSQL: diesel's aliases spelled as `print-schema` spells the types.
pub fn postgres_canonical(ty: &str) -> String {
    match ty {
        "SmallInt" => "Int2",
        "Integer" => "Int4",
        "BigInt" => "Int8",
        "Float" => "Float4",
        "Double" => "Float8",
        // diesel's aliases of Text (char(n) is `bpchar` in the catalogue).
        "VarChar" | "Varchar" | "Bpchar" => "Text",
        "Bytea" => "Binary",
        "Timestamptz" => "Timestamptz",
        other => other,
    }
    .to_owned()
}

/// The diesel type `print-schema` gives a PostgreSQL column of `udt_name` (its catalogue
/// type name: `int8`, `_text` for arrays, ...), before [`postgres_canonical`].
pub fn postgres_type(udt_name: &str) -> String {
    if let Some(element) = udt_name.strip_prefix('_') {
        return format!("Array<Nullable<{}>>", postgres_type(element));
    }
    let mut camel = String::new();
    for part in udt_name.split('_') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            camel.extend(first.to_uppercase());
            camel.push_str(chars.as_str());
        }
    }
    postgres_canonical(&camel)
}

mod postgres {
    use diesel::sql_types::{Bool, Text};
    use diesel::QueryableByName;
    use diesel_async::{AsyncPgConnection, RunQueryDsl};

    use super::{postgres_type, Column, Joinable, Schema, Table};

    #[derive(QueryableByName)]
    struct ColumnRow {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        udt_name: String,
        #[diesel(sql_type = Bool)]
        nullable: bool,
    }

    #[derive(QueryableByName)]
    struct KeyRow {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
    }

    #[derive(QueryableByName)]
    struct ForeignKeyRow {
        #[diesel(sql_type = Text)]
        child: String,
        #[diesel(sql_type = Text)]
        parent: String,
        #[diesel(sql_type = Text)]
        column: String,
    }

    /// The tables of the `public` schema (diesel's migration bookkeeping left out).
    ///
    /// # Errors
    /// A catalogue query that fails.
    pub async fn postgres_catalogue(
        conn: &mut AsyncPgConnection,
    ) -> Result<Schema, diesel::result::Error> {
        let columns: Vec<ColumnRow> = diesel::sql_query(
            "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, \
                    c.is_nullable = 'YES' AS nullable \
             FROM information_schema.columns c \
             JOIN information_schema.tables t USING (table_schema, table_name) \
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
               AND c.table_name <> '__diesel_schema_migrations' \
             ORDER BY c.table_name, c.ordinal_position",
        )
        .load(conn)
        .await?;
        let keys: Vec<KeyRow> = diesel::sql_query(
            "SELECT k.table_name::text, k.column_name::text \
             FROM information_schema.table_constraints c \
             JOIN information_schema.key_column_usage k \
               USING (constraint_schema, constraint_name, table_schema, table_name) \
             WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = 'public' \
             ORDER BY k.table_name, k.ordinal_position",
        )
        .load(conn)
        .await?;
        // Single-column foreign keys to the parent's primary key, the ones print-schema
        // writes a joinable! for; a pair of tables joined by more than one gets none.
        let foreign_keys: Vec<ForeignKeyRow> = diesel::sql_query(
            "SELECT child::text, parent::text, column_name::text AS column FROM ( \
               SELECT ch.relname AS child, pa.relname AS parent, a.attname AS column_name, \
                      count(*) OVER (PARTITION BY ch.relname, pa.relname) AS between_pair \
               FROM pg_constraint f \
               JOIN pg_class ch ON ch.oid = f.conrelid \
               JOIN pg_class pa ON pa.oid = f.confrelid \
               JOIN pg_namespace n ON n.oid = ch.relnamespace \
               JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = f.conkey[1] \
               JOIN pg_constraint pk ON pk.conrelid = f.confrelid AND pk.contype = 'p' \
               WHERE f.contype = 'f' AND n.nspname = 'public' \
                 AND cardinality(f.conkey) = 1 AND pk.conkey = f.confkey \
                 AND ch.oid <> pa.oid \
             ) fks WHERE between_pair = 1",
        )
        .load(conn)
        .await?;
        let mut schema = Schema::default();
        for row in columns {
            if schema
                .tables
                .last()
                .is_none_or(|t| t.name != row.table_name)
            {
                schema.tables.push(Table {
                    name: row.table_name.clone(),
                    primary_key: keys
                        .iter()
                        .filter(|k| k.table_name == row.table_name)
                        .map(|k| k.column_name.clone())
                        .collect(),
                    columns: Vec::new(),
                });
            }
            if let Some(table) = schema.tables.last_mut() {
                table.columns.push(Column {
                    name: row.column_name,
                    sql_type: postgres_type(&row.udt_name),
                    nullable: row.nullable,
                });
            }
        }
        schema.joinables = foreign_keys
            .into_iter()
            .map(|f| Joinable {
                child: f.child,
                parent: f.parent,
                column: f.column,
            })
            .collect();
        Ok(schema)
    }
}

pub use postgres::postgres_catalogue;

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r"
//! A schema.
diesel::table! {
    /// Docs are not compared.
    users (id) {
        id -> Uuid,
        note -> Nullable<diesel::sql_types::Text>,
        n -> BigInt,
    }
}

diesel::table! {
    a (x, y) { x -> Int4, y -> SmallInt }
}

diesel::joinable!(a -> users (x));
diesel::allow_tables_to_appear_in_same_query!(a, users);
";

    #[test]
    fn a_schema_file_parses_and_renders_like_print_schema() {
        let schema = Schema::parse(FILE).unwrap().with_types(postgres_canonical);
        assert_eq!(
            schema.render(),
            "diesel::table! {\n    a (x, y) {\n        x -> Int4,\n        y -> Int2,\n    }\n}\n\n\
             diesel::table! {\n    users (id) {\n        id -> Uuid,\n        note -> Nullable<Text>,\n        \
             n -> Int8,\n    }\n}\n\n\
             diesel::joinable!(a -> users (x));\n"
        );
    }

    #[test]
    fn postgres_catalogue_names_become_diesel_types() {
        assert_eq!(postgres_type("int8"), "Int8");
        assert_eq!(postgres_type("timestamptz"), "Timestamptz");
        assert_eq!(postgres_type("varchar"), "Text");
        assert_eq!(postgres_type("_int4"), "Array<Nullable<Int4>>");
        assert_eq!(postgres_type("my_enum"), "MyEnum");
    }

    #[test]
    fn a_difference_is_shown_line_by_line() {
        let declared = Schema::parse(FILE).unwrap();
        let mut created = declared.clone();
        created.tables[0].columns[1].nullable = false;
        let failure = std::panic::catch_unwind(|| assert_same("schema.rs", &declared, &created));
        let message = *failure.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("-         note -> Nullable<Text>,"),
            "{message}"
        );
        assert!(message.contains("+         note -> Text,"), "{message}");
        assert!(
            message.contains("  diesel::joinable!(a -> users (x));"),
            "{message}"
        );
    }
}
