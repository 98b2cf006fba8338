//! This test's own reader of a whole instance, independent of the code under test: every table
//! dumped with the engine's own sqlx driver, and every object hashed through the one-level
//! listing of the artifact store.

use std::collections::BTreeMap;

use cairn_artifacts::{ArtifactPath, ArtifactStore};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};

/// One value of a dumped row, comparable across engines (floats by bits, NaN as one value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Val {
    Null,
    Int(i64),
    Float(u64),
    Text(String),
    Bytes(Vec<u8>),
}

pub(super) fn float(value: f64) -> Val {
    Val::Float(if value.is_nan() { f64::NAN.to_bits() } else { value.to_bits() })
}

/// Every table (but the migrations' bookkeeping): sorted column names, sorted rows.
pub(super) type Dump = BTreeMap<String, (Vec<String>, Vec<Vec<Val>>)>;

/// Dumps a database with the engine's own driver (not the code under test).
pub(super) async fn dump(database_url: &str) -> Dump {
    let mut dump = Dump::new();
    if database_url.starts_with("sqlite:") {
        let mut connection = sqlx::SqliteConnection::connect(database_url).await.expect("sqlite");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        for table in tables.into_iter().filter(|table| table != "cairn_migrations") {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                .fetch_all(&mut connection)
                .await
                .unwrap();
            let columns = column_names(&table, &mut connection).await;
            let mut values: Vec<Vec<Val>> =
                rows.iter().map(|row| sqlite_row(row, &columns)).collect();
            values.sort();
            dump.insert(table, (columns, values));
        }
    } else {
        let mut connection = sqlx::PgConnection::connect(database_url).await.expect("postgres");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        for table in tables.into_iter().filter(|table| table != "cairn_migrations") {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                .fetch_all(&mut connection)
                .await
                .unwrap();
            let mut columns: Vec<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(&table)
            .fetch_all(&mut connection)
            .await
            .unwrap();
            columns.sort();
            let mut values: Vec<Vec<Val>> = rows.iter().map(|row| pg_row(row, &columns)).collect();
            values.sort();
            dump.insert(table, (columns, values));
        }
    }
    dump
}

pub(super) async fn column_names(
    table: &str,
    connection: &mut sqlx::SqliteConnection,
) -> Vec<String> {
    let mut columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
        .bind(table)
        .fetch_all(connection)
        .await
        .unwrap();
    columns.sort();
    columns
}

pub(super) fn sqlite_row(row: &sqlx::sqlite::SqliteRow, columns: &[String]) -> Vec<Val> {
    columns
        .iter()
        .map(|column| {
            let raw = row.try_get_raw(column.as_str()).unwrap();
            if raw.is_null() {
                return Val::Null;
            }
            match raw.type_info().name() {
                "INTEGER" => Val::Int(row.get(column.as_str())),
                "REAL" => float(row.get(column.as_str())),
                "TEXT" => Val::Text(row.get(column.as_str())),
                other => {
                    assert_eq!(other, "BLOB", "sqlite storage class");
                    Val::Bytes(row.get(column.as_str()))
                }
            }
        })
        .collect()
}

pub(super) fn pg_row(row: &sqlx::postgres::PgRow, columns: &[String]) -> Vec<Val> {
    columns
        .iter()
        .map(|column| {
            let raw = row.try_get_raw(column.as_str()).unwrap();
            if raw.is_null() {
                return Val::Null;
            }
            let kind = row
                .columns()
                .iter()
                .find(|c| c.name() == column)
                .unwrap()
                .type_info()
                .name()
                .to_string();
            match kind.as_str() {
                "INT8" => Val::Int(row.get(column.as_str())),
                "INT4" => Val::Int(i64::from(row.get::<i32, _>(column.as_str()))),
                "FLOAT8" => float(row.get(column.as_str())),
                "TEXT" => Val::Text(row.get(column.as_str())),
                "BYTEA" => Val::Bytes(row.get(column.as_str())),
                other => panic!("column {column} has type {other}; teach this dump about it"),
            }
        })
        .collect()
}

pub(super) fn assert_same_dump(left: &Dump, right: &Dump, label: &str) {
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        right.keys().collect::<Vec<_>>(),
        "{label}: the same tables"
    );
    for (table, (columns, rows)) in left {
        let (other_columns, other_rows) = &right[table];
        assert_eq!(columns, other_columns, "{label}: the columns of {table}");
        assert_eq!(rows.len(), other_rows.len(), "{label}: the row count of {table}");
        for (row, other) in rows.iter().zip(other_rows) {
            assert_eq!(row, other, "{label}: a row of {table} ({columns:?})");
        }
    }
}

/// Every object of a store with its SHA-256, walked with the store's one-level listing.
pub(super) async fn artifact_digests(store: &ArtifactStore) -> BTreeMap<String, String> {
    let mut digests = BTreeMap::new();
    let mut pending: Vec<Option<ArtifactPath>> = vec![None];
    while let Some(dir) = pending.pop() {
        for entry in store.list(dir.as_ref()).await.expect("list") {
            let path = ArtifactPath::parse(&entry.path).expect("a valid path");
            if entry.is_dir {
                pending.push(Some(path));
                continue;
            }
            let download = store.get(&path).await.expect("get");
            let chunks: Vec<bytes::Bytes> = download.stream.try_collect().await.expect("read");
            let mut hasher = Sha256::new();
            chunks.iter().for_each(|chunk| hasher.update(chunk));
            digests.insert(entry.path, hex::encode(hasher.finalize()));
        }
    }
    digests
}
