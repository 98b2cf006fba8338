//! Whole-database export and import for `cairn admin backup` and `restore`, driven by the
//! database catalog rather than a list of tables kept by hand: every table a migration creates
//! is found, its columns are typed from their declared types, and tables are ordered by their
//! foreign keys, so a new migration cannot escape a backup.
//!
//! A [`Snapshot`] reads every table in one read-only transaction (`REPEATABLE READ` on
//! PostgreSQL; one WAL read transaction on SQLite), so a backup taken while servers write is
//! consistent. A [`Restore`] writes every table in one transaction into a database that holds
//! nothing but what migrations seed, then moves the id sequences past the restored ids.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row, Transaction};

use crate::{Dialect, Store, StoreError, StoreResult};

/// The bookkeeping table of migrations: its versions travel in the backup's manifest, its rows
/// are rewritten by the restore's own migrations.
pub const MIGRATIONS_TABLE: &str = "cairn_migrations";

/// Rows that migrations insert into a new database (the `default` project and MLflow's
/// `Default` experiment), as `(table, condition)`: a database holding only these is empty.
/// Children come before their parents, the order they are deleted in.
const SEED_ROWS: &[(&str, &str)] = &[
    ("experiments", "experiment_id = 0 AND name = 'Default'"),
    ("projects", "id = 1 AND name = 'default'"),
];

/// The most bind parameters in one `INSERT` (below SQLite's and PostgreSQL's limits).
const MAX_PARAMS: usize = 4000;

/// How a column's values are carried, whatever the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// A 64-bit signed integer (also epoch-millisecond timestamps and 0/1 flags).
    Integer,
    /// A 64-bit float, NaN and infinities included.
    Float,
    /// UTF-8 text.
    Text,
    /// Raw bytes.
    Bytes,
    /// A boolean.
    Boolean,
    /// A PostgreSQL type with no portable form (a timestamp, a JSON document…), carried as its
    /// text form and cast back on restore.
    Other,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// How its values are carried.
    pub kind: ColumnKind,
    /// Its declared type in the source engine (for people; restores use their own catalog).
    pub declared_type: String,
    /// Whether it may hold NULL.
    pub nullable: bool,
}

/// One table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// Its columns, in declaration order.
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order (empty when it has none).
    pub primary_key: Vec<String>,
    /// The tables its foreign keys point at.
    pub references: BTreeSet<String>,
}

/// Where an id sequence stood: the last id it handed out (0 when none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceState {
    /// The table of the generated column.
    pub table: String,
    /// The generated column.
    pub column: String,
    /// The last value handed out.
    pub last_value: i64,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// Text (also the text form of [`ColumnKind::Other`] values).
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A boolean.
    Boolean(bool),
}

/// Quotes an identifier read from the catalog for both engines.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn invalid(message: String) -> StoreError {
    cairn_domain::DomainError::invalid(message).into()
}

impl Store {
    /// The migrations applied to this database, oldest first (empty when it was never
    /// migrated). Applies none.
    pub async fn schema_versions(&self) -> StoreResult<Vec<i64>> {
        let mut connection = self.reader.acquire().await?;
        applied_versions(self.dialect, &mut connection).await
    }

    /// Opens a consistent, read-only view of the whole database.
    pub async fn snapshot(&self) -> StoreResult<Snapshot> {
        let mut transaction = self.reader.begin().await?;
        match self.dialect {
            Dialect::Postgres => {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *transaction)
                    .await?;
            }
            Dialect::Sqlite => {
                // The first read fixes the WAL snapshot every later read in the transaction sees.
                sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                    .fetch_one(&mut *transaction)
                    .await?;
            }
        }
        Ok(Snapshot { dialect: self.dialect, transaction })
    }

    /// Starts writing a restore: one transaction, committed by [`Restore::commit`].
    pub async fn begin_restore(&self) -> StoreResult<Restore> {
        let transaction = self.begin().await?;
        Ok(Restore { dialect: self.dialect, transaction })
    }
}

/// A read-only transaction over the whole database (see [`Store::snapshot`]).
pub struct Snapshot {
    dialect: Dialect,
    transaction: Transaction<'static, sqlx::Any>,
}

impl Snapshot {
    /// The migrations applied, oldest first.
    pub async fn schema_versions(&mut self) -> StoreResult<Vec<i64>> {
        applied_versions(self.dialect, &mut self.transaction).await
    }

    /// Every table but [`MIGRATIONS_TABLE`], parents before the tables that reference them.
    pub async fn tables(&mut self) -> StoreResult<Vec<Table>> {
        catalog(self.dialect, &mut self.transaction).await
    }

    /// Where each id sequence of `tables` stands.
    pub async fn sequences(&mut self, tables: &[Table]) -> StoreResult<Vec<SequenceState>> {
        let mut states = Vec::new();
        for (table, column, sequence) in
            sequences(self.dialect, &mut self.transaction, tables).await?
        {
            let last_value = match self.dialect {
                Dialect::Postgres => {
                    sqlx::query_scalar::<_, i64>(
                        "SELECT COALESCE(pg_sequence_last_value(to_regclass($1)), 0)",
                    )
                    .bind(&sequence)
                    .fetch_one(&mut *self.transaction)
                    .await?
                }
                Dialect::Sqlite => sqlite_sequence_value(&mut self.transaction, &table).await?,
            };
            states.push(SequenceState { table, column, last_value });
        }
        Ok(states)
    }

    /// The rows of `table`, ordered by primary key, each with one cell per column.
    pub fn rows<'a>(&'a mut self, table: &'a Table) -> BoxStream<'a, StoreResult<Vec<Cell>>> {
        let selected: Vec<String> = table
            .columns
            .iter()
            .map(|column| match column.kind {
                ColumnKind::Other => format!("CAST({} AS TEXT)", quote_identifier(&column.name)),
                _ => quote_identifier(&column.name),
            })
            .collect();
        let order: Vec<String> = if table.primary_key.is_empty() {
            table.columns.iter().map(|column| quote_identifier(&column.name)).collect()
        } else {
            table.primary_key.iter().map(|column| quote_identifier(column)).collect()
        };
        let mut text =
            format!("SELECT {} FROM {}", selected.join(", "), quote_identifier(&table.name));
        if !order.is_empty() {
            text.push_str(" ORDER BY ");
            text.push_str(&order.join(", "));
        }
        sqlx::query(AssertSqlSafe(text))
            .fetch(&mut *self.transaction)
            .map(move |row| decode_row(table, &row?))
            .boxed()
    }

    /// Ends the read transaction.
    pub async fn finish(self) -> StoreResult<()> {
        self.transaction.rollback().await?;
        Ok(())
    }
}

/// A restore in progress: one write transaction (see [`Store::begin_restore`]).
pub struct Restore {
    dialect: Dialect,
    transaction: Transaction<'static, sqlx::Any>,
}

impl Restore {
    /// Every table but [`MIGRATIONS_TABLE`], parents first.
    pub async fn tables(&mut self) -> StoreResult<Vec<Table>> {
        catalog(self.dialect, &mut self.transaction).await
    }

    /// The tables holding rows other than what migrations seed, with how many.
    pub async fn rows_beyond_seeds(&mut self, tables: &[Table]) -> StoreResult<Vec<(String, i64)>> {
        let mut found = Vec::new();
        for table in tables {
            let mut text = format!("SELECT COUNT(*) FROM {}", quote_identifier(&table.name));
            if let Some((_, seed)) = SEED_ROWS.iter().find(|(name, _)| *name == table.name) {
                text.push_str(&format!(" WHERE NOT ({seed})"));
            }
            let count: i64 =
                sqlx::query_scalar(AssertSqlSafe(text)).fetch_one(&mut *self.transaction).await?;
            if count > 0 {
                found.push((table.name.clone(), count));
            }
        }
        Ok(found)
    }

    /// Deletes the rows migrations seeded, which the backup brings back as they were.
    pub async fn delete_seed_rows(&mut self, tables: &[Table]) -> StoreResult<()> {
        for (name, seed) in SEED_ROWS {
            if tables.iter().any(|table| table.name == *name) {
                let text = format!("DELETE FROM {} WHERE {seed}", quote_identifier(name));
                sqlx::query(AssertSqlSafe(text)).execute(&mut *self.transaction).await?;
            }
        }
        Ok(())
    }

    /// The most rows of `table` one [`insert`](Self::insert) call takes.
    pub fn batch_rows(table: &Table) -> usize {
        (MAX_PARAMS / table.columns.len().max(1)).max(1)
    }

    /// Inserts `rows` (one cell per column of `table`, in its order) into `table`.
    pub async fn insert(&mut self, table: &Table, rows: &[Vec<Cell>]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let names: Vec<String> =
            table.columns.iter().map(|column| quote_identifier(&column.name)).collect();
        let mut text =
            format!("INSERT INTO {} ({}) VALUES ", quote_identifier(&table.name), names.join(", "));
        let mut placeholder = 0;
        for (index, row) in rows.iter().enumerate() {
            if row.len() != table.columns.len() {
                return Err(invalid(format!(
                    "a row of table {} has {} values for {} columns",
                    table.name,
                    row.len(),
                    table.columns.len()
                )));
            }
            text.push_str(if index == 0 { "(" } else { ", (" });
            for (position, column) in table.columns.iter().enumerate() {
                placeholder += 1;
                if position > 0 {
                    text.push_str(", ");
                }
                match (self.dialect, column.kind) {
                    (Dialect::Postgres, ColumnKind::Other) => {
                        text.push_str(&format!("CAST(${placeholder} AS {})", column.declared_type))
                    }
                    (Dialect::Sqlite, _) => text.push('?'),
                    (Dialect::Postgres, _) => text.push_str(&format!("${placeholder}")),
                }
            }
            text.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(text));
        for row in rows {
            for (cell, column) in row.iter().zip(&table.columns) {
                query = match (cell, column.kind) {
                    (Cell::Null, ColumnKind::Integer) => query.bind(Option::<i64>::None),
                    (Cell::Null, ColumnKind::Float) => query.bind(Option::<f64>::None),
                    (Cell::Null, ColumnKind::Bytes) => query.bind(Option::<Vec<u8>>::None),
                    (Cell::Null, ColumnKind::Boolean) => query.bind(Option::<bool>::None),
                    (Cell::Null, ColumnKind::Text | ColumnKind::Other) => {
                        query.bind(Option::<String>::None)
                    }
                    (Cell::Integer(value), _) => query.bind(*value),
                    (Cell::Float(value), _) => query.bind(*value),
                    (Cell::Text(value), _) => query.bind(value.clone()),
                    (Cell::Bytes(value), _) => query.bind(value.clone()),
                    (Cell::Boolean(value), _) => query.bind(*value),
                };
            }
        }
        query.execute(&mut *self.transaction).await?;
        Ok(())
    }

    /// Moves every id sequence of `tables` past both the restored ids and where the source's
    /// sequence stood (`recorded`), so new rows never reuse an id, even one since deleted.
    pub async fn restore_sequences(
        &mut self,
        tables: &[Table],
        recorded: &[SequenceState],
    ) -> StoreResult<()> {
        for (table, column, sequence) in
            sequences(self.dialect, &mut self.transaction, tables).await?
        {
            let text = format!(
                "SELECT COALESCE(MAX({}), 0) FROM {}",
                quote_identifier(&column),
                quote_identifier(&table)
            );
            let highest: i64 =
                sqlx::query_scalar(AssertSqlSafe(text)).fetch_one(&mut *self.transaction).await?;
            let source = recorded
                .iter()
                .find(|state| state.table == table && state.column == column)
                .map_or(0, |state| state.last_value);
            let last = highest.max(source);
            match self.dialect {
                Dialect::Postgres => {
                    sqlx::query("SELECT setval(to_regclass($1), $2, $3) IS NOT NULL")
                        .bind(&sequence)
                        .bind(last.max(1))
                        .bind(last > 0)
                        .fetch_one(&mut *self.transaction)
                        .await?;
                }
                Dialect::Sqlite => {
                    let updated =
                        sqlx::query("UPDATE sqlite_sequence SET seq = $1 WHERE name = $2")
                            .bind(last)
                            .bind(&table)
                            .execute(&mut *self.transaction)
                            .await?;
                    if updated.rows_affected() == 0 && last > 0 {
                        sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)")
                            .bind(&table)
                            .bind(last)
                            .execute(&mut *self.transaction)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes everything restored durable at once.
    pub async fn commit(self) -> StoreResult<()> {
        self.transaction.commit().await?;
        Ok(())
    }
}

async fn applied_versions(
    dialect: Dialect,
    connection: &mut AnyConnection,
) -> StoreResult<Vec<i64>> {
    let exists_query = match dialect {
        Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = $1"
        }
    };
    let exists: i64 =
        sqlx::query_scalar(exists_query).bind(MIGRATIONS_TABLE).fetch_one(&mut *connection).await?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("SELECT version FROM cairn_migrations ORDER BY version")
        .fetch_all(&mut *connection)
        .await?)
}

/// Reads the tables, their columns, keys and references from the catalog, in dependency order.
async fn catalog(dialect: Dialect, connection: &mut AnyConnection) -> StoreResult<Vec<Table>> {
    let names: Vec<String> = match dialect {
        Dialect::Sqlite => {
            sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            )
            .fetch_all(&mut *connection)
            .await?
        }
        Dialect::Postgres => {
            sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = current_schema() \
                 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
            )
            .fetch_all(&mut *connection)
            .await?
        }
    };
    let mut tables = Vec::new();
    for name in names.into_iter().filter(|name| name != MIGRATIONS_TABLE) {
        let table = match dialect {
            Dialect::Sqlite => sqlite_table(connection, name).await?,
            Dialect::Postgres => postgres_table(connection, name).await?,
        };
        tables.push(table);
    }
    dependency_order(tables)
}

async fn sqlite_table(connection: &mut AnyConnection, name: String) -> StoreResult<Table> {
    let rows =
        sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1) ORDER BY cid")
            .bind(&name)
            .fetch_all(&mut *connection)
            .await?;
    let mut columns = Vec::new();
    let mut key: Vec<(i64, String)> = Vec::new();
    for row in rows {
        let column: String = row.try_get(0)?;
        let declared: String = row.try_get(1)?;
        let not_null: i64 = row.try_get(2)?;
        let key_position: i64 = row.try_get(3)?;
        let kind = sqlite_kind(&declared).ok_or_else(|| {
            invalid(format!(
                "table {name}, column {column}: declared type '{declared}' has no portable form"
            ))
        })?;
        if key_position > 0 {
            key.push((key_position, column.clone()));
        }
        // SQLite lets a non-integer primary key hold NULL, but Cairn never stores one there.
        let nullable = not_null == 0 && key_position == 0;
        columns.push(Column { name: column, kind, declared_type: declared, nullable });
    }
    key.sort();
    let references: BTreeSet<String> =
        sqlx::query_scalar("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)")
            .bind(&name)
            .fetch_all(&mut *connection)
            .await?
            .into_iter()
            .collect();
    let primary_key = key.into_iter().map(|(_, column)| column).collect();
    Ok(Table { name, columns, primary_key, references })
}

async fn postgres_table(connection: &mut AnyConnection, name: String) -> StoreResult<Table> {
    let rows = sqlx::query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
         FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 \
         AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
    )
    .bind(&name)
    .fetch_all(&mut *connection)
    .await?;
    let mut columns = Vec::new();
    for row in rows {
        let column: String = row.try_get(0)?;
        let declared: String = row.try_get(1)?;
        let not_null: bool = row.try_get(2)?;
        let kind = postgres_kind(&declared);
        columns.push(Column { name: column, kind, declared_type: declared, nullable: !not_null });
    }
    let primary_key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a \
         ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = to_regclass(quote_ident($1)) AND i.indisprimary \
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(&name)
    .fetch_all(&mut *connection)
    .await?;
    let references: BTreeSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT r.relname::text FROM pg_constraint k JOIN pg_class r \
         ON r.oid = k.confrelid WHERE k.contype = 'f' \
         AND k.conrelid = to_regclass(quote_ident($1))",
    )
    .bind(&name)
    .fetch_all(&mut *connection)
    .await?
    .into_iter()
    .collect();
    Ok(Table { name, columns, primary_key, references })
}

/// SQLite's type affinity rules, narrowed to the types Cairn declares.
fn sqlite_kind(declared: &str) -> Option<ColumnKind> {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        Some(ColumnKind::Integer)
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|word| upper.contains(word)) {
        Some(ColumnKind::Text)
    } else if upper.contains("BLOB") {
        Some(ColumnKind::Bytes)
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|word| upper.contains(word)) {
        Some(ColumnKind::Float)
    } else if upper.contains("BOOL") {
        Some(ColumnKind::Boolean)
    } else {
        None
    }
}

fn postgres_kind(declared: &str) -> ColumnKind {
    match declared {
        "bigint" | "integer" | "smallint" => ColumnKind::Integer,
        "double precision" | "real" => ColumnKind::Float,
        "text" | "\"char\"" => ColumnKind::Text,
        "bytea" => ColumnKind::Bytes,
        "boolean" => ColumnKind::Boolean,
        other if other.starts_with("character") => ColumnKind::Text,
        _ => ColumnKind::Other,
    }
}

/// Sorts tables so each comes after the tables it references (ties by name); a cycle of
/// foreign keys is refused, since no insertion order could satisfy it.
fn dependency_order(tables: Vec<Table>) -> StoreResult<Vec<Table>> {
    let mut pending: BTreeMap<String, Table> =
        tables.into_iter().map(|table| (table.name.clone(), table)).collect();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .values()
            .filter(|table| {
                table
                    .references
                    .iter()
                    .all(|parent| parent == &table.name || !pending.contains_key(parent))
            })
            .map(|table| table.name.clone())
            .collect();
        if ready.is_empty() {
            let names: Vec<&str> = pending.keys().map(String::as_str).collect();
            return Err(invalid(format!(
                "the foreign keys of tables {} form a cycle; no restore order exists",
                names.join(", ")
            )));
        }
        for name in ready {
            if let Some(table) = pending.remove(&name) {
                ordered.push(table);
            }
        }
    }
    Ok(ordered)
}

/// The generated id columns of `tables` as (table, column, sequence): PostgreSQL serial and
/// identity columns with their sequence's name; SQLite `AUTOINCREMENT` keys (the sequence is
/// the table's `sqlite_sequence` row, named by the table).
async fn sequences(
    dialect: Dialect,
    connection: &mut AnyConnection,
    tables: &[Table],
) -> StoreResult<Vec<(String, String, String)>> {
    let mut found = Vec::new();
    for table in tables {
        match dialect {
            Dialect::Postgres => {
                for column in &table.columns {
                    let sequence: Option<String> = sqlx::query_scalar(
                        "SELECT pg_get_serial_sequence(quote_ident($1), $2)::text",
                    )
                    .bind(&table.name)
                    .bind(&column.name)
                    .fetch_one(&mut *connection)
                    .await?;
                    if let Some(sequence) = sequence {
                        found.push((table.name.clone(), column.name.clone(), sequence));
                    }
                }
            }
            Dialect::Sqlite => {
                let sql: Option<String> = sqlx::query_scalar(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(&table.name)
                .fetch_optional(&mut *connection)
                .await?
                .flatten();
                let autoincrement =
                    sql.is_some_and(|sql| sql.to_ascii_uppercase().contains("AUTOINCREMENT"));
                if let (true, [key]) = (autoincrement, table.primary_key.as_slice()) {
                    found.push((table.name.clone(), key.clone(), table.name.clone()));
                }
            }
        }
    }
    Ok(found)
}

async fn sqlite_sequence_value(connection: &mut AnyConnection, table: &str) -> StoreResult<i64> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
    )
    .fetch_one(&mut *connection)
    .await?;
    if exists == 0 {
        return Ok(0);
    }
    let value: Option<i64> = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
        .bind(table)
        .fetch_optional(&mut *connection)
        .await?;
    Ok(value.unwrap_or(0))
}

fn decode_row(table: &Table, row: &AnyRow) -> StoreResult<Vec<Cell>> {
    let mut cells = Vec::with_capacity(table.columns.len());
    for (index, column) in table.columns.iter().enumerate() {
        let cell = decode_cell(row, index, column.kind).map_err(|error| {
            invalid(format!("table {}, column {}: {error}", table.name, column.name))
        })?;
        cells.push(cell);
    }
    Ok(cells)
}

fn decode_cell(row: &AnyRow, index: usize, kind: ColumnKind) -> Result<Cell, sqlx::Error> {
    let cell = match kind {
        ColumnKind::Integer => row.try_get::<Option<i64>, _>(index)?.map(Cell::Integer),
        // SQLite may hand back a whole-number float as an integer.
        ColumnKind::Float => match row.try_get::<Option<f64>, _>(index) {
            Ok(value) => value.map(Cell::Float),
            Err(error) => row
                .try_get::<Option<i64>, _>(index)
                .map_err(|_| error)?
                .map(|value| Cell::Float(value as f64)),
        },
        ColumnKind::Text | ColumnKind::Other => {
            row.try_get::<Option<String>, _>(index)?.map(Cell::Text)
        }
        ColumnKind::Bytes => row.try_get::<Option<Vec<u8>>, _>(index)?.map(Cell::Bytes),
        ColumnKind::Boolean => match row.try_get::<Option<bool>, _>(index) {
            Ok(value) => value.map(Cell::Boolean),
            Err(error) => row
                .try_get::<Option<i64>, _>(index)
                .map_err(|_| error)?
                .map(|value| Cell::Boolean(value != 0)),
        },
    };
    Ok(cell.unwrap_or(Cell::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, references: &[&str]) -> Table {
        Table {
            name: name.into(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            references: references.iter().map(|name| name.to_string()).collect(),
        }
    }

    #[test]
    fn parents_come_first_and_cycles_are_refused() {
        let ordered = dependency_order(vec![
            table("c", &["b", "a"]),
            table("b", &["a", "b"]),
            table("a", &[]),
            table("d", &["elsewhere"]),
        ])
        .expect("an order exists");
        let names: Vec<&str> = ordered.iter().map(|table| table.name.as_str()).collect();
        assert_eq!(names, ["a", "d", "b", "c"]);
        let error = dependency_order(vec![table("x", &["y"]), table("y", &["x"])]).unwrap_err();
        assert!(error.to_string().contains("cycle"), "{error}");
    }

    #[test]
    fn declared_types_map_to_portable_kinds() {
        assert_eq!(sqlite_kind("INTEGER"), Some(ColumnKind::Integer));
        assert_eq!(sqlite_kind("REAL"), Some(ColumnKind::Float));
        assert_eq!(sqlite_kind("TEXT"), Some(ColumnKind::Text));
        assert_eq!(sqlite_kind(""), None);
        assert_eq!(postgres_kind("bigint"), ColumnKind::Integer);
        assert_eq!(postgres_kind("double precision"), ColumnKind::Float);
        assert_eq!(postgres_kind("character varying(20)"), ColumnKind::Text);
        assert_eq!(postgres_kind("timestamp with time zone"), ColumnKind::Other);
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
    }
}
