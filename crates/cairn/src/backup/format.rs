//! The backup directory: `manifest.json`, one JSON Lines file per table under `tables/`, and
//! every artifact-store object under `artifacts/` at its own key. This module owns the
//! manifest, the portable form of row values, and the digest checks shared by `backup verify`
//! and `restore`.
//!
//! A table file holds one JSON array per row, one value per column in the manifest's column
//! order: `null`; integers as JSON integers; floats as JSON numbers (shortest form that reads
//! back to the same bits), or the strings `"NaN"`, `"Infinity"`, `"-Infinity"`; text as JSON
//! strings; bytes as base64 strings; booleans as `true`/`false`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use cairn_artifacts::ArtifactPath;
use cairn_store::backup::{Cell, Column, ColumnKind, SequenceState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `format` field of every manifest.
pub const FORMAT: &str = "cairn-backup";
/// The newest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
/// The directory of table files.
pub const TABLES_DIR: &str = "tables";
/// The directory of artifact objects.
pub const ARTIFACTS_DIR: &str = "artifacts";

/// What a backup holds, with a digest of every file in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The version of the `cairn` that wrote it.
    pub cairn_version: String,
    /// The newest migration applied to the source database.
    pub schema_version: i64,
    /// Every migration applied to the source database.
    pub migrations: Vec<i64>,
    /// When the database snapshot was taken (UTC, RFC 3339).
    pub created_at: String,
    /// The same instant in epoch milliseconds.
    pub created_at_ms: i64,
    /// Which engines it came from.
    pub source: Source,
    /// Every table, parents before the tables that reference them.
    pub tables: Vec<TableEntry>,
    /// Where each id sequence stood.
    pub sequences: Vec<SequenceState>,
    /// The artifact store's objects.
    pub artifacts: ArtifactsEntry,
    /// How long the backup took.
    pub duration_ms: u64,
}

/// The engines a backup came from (kinds only: no URL, no credential).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    /// `sqlite` or `postgres`.
    pub database: String,
    /// `file` or `s3`.
    pub artifacts: String,
}

/// One table's file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    /// The table.
    pub name: String,
    /// Its file, relative to the backup directory.
    pub file: String,
    /// Its columns, in the order of each row's values.
    pub columns: Vec<Column>,
    /// Its primary key (rows are in key order).
    pub primary_key: Vec<String>,
    /// How many rows.
    pub rows: u64,
    /// The file's size.
    pub bytes: u64,
    /// The file's SHA-256 (lowercase hex).
    pub sha256: String,
}

/// The artifact store's objects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArtifactsEntry {
    /// How many objects were copied.
    pub count: u64,
    /// Their total size.
    pub bytes: u64,
    /// Each object, by key.
    pub objects: Vec<ObjectEntry>,
    /// Objects listed but not copied, with the reason (deleted meanwhile, or a key Cairn
    /// would never write).
    pub skipped: Vec<SkippedObject>,
}

/// One copied object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Its key in the store, and its path under `artifacts/`.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (lowercase hex).
    pub sha256: String,
}

/// An object that is not in the backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkippedObject {
    /// Its key.
    pub path: String,
    /// Why it was left out.
    pub reason: String,
}

impl Manifest {
    /// Reads and checks the manifest of the backup in `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("reading {} (is {} a Cairn backup?)", path.display(), dir.display())
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a Cairn backup manifest", path.display()))?;
        if manifest.format != FORMAT {
            bail!(
                "{} is not a Cairn backup manifest (format '{}')",
                path.display(),
                manifest.format
            );
        }
        if manifest.format_version > FORMAT_VERSION {
            bail!(
                "the backup's format version {} is newer than this cairn's {FORMAT_VERSION}; restore it with cairn {} or newer",
                manifest.format_version,
                manifest.cairn_version
            );
        }
        for table in &manifest.tables {
            if table.file != table_file(&table.name)? {
                bail!(
                    "the manifest names {} for table {}; expected {}",
                    table.file,
                    table.name,
                    table_file(&table.name)?
                );
            }
        }
        Ok(manifest)
    }
}

/// The file of `table` inside a backup; refuses names that are not plain identifiers, so a
/// manifest cannot point outside the backup directory.
pub fn table_file(table: &str) -> anyhow::Result<String> {
    let plain =
        !table.is_empty() && table.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !plain {
        bail!("table name '{table}' is not a plain identifier; it cannot be a file name");
    }
    Ok(format!("{TABLES_DIR}/{table}.jsonl"))
}

/// The on-disk path of an artifact key inside the backup in `dir`; refuses keys that are not
/// valid artifact paths (no `..`, no absolute path).
pub fn artifact_file(dir: &Path, key: &str) -> anyhow::Result<(ArtifactPath, PathBuf)> {
    let path = ArtifactPath::parse(key)
        .map_err(|_| anyhow::anyhow!("artifact key '{key}' is not a valid artifact path"))?;
    let file = path.as_str().split('/').fold(dir.join(ARTIFACTS_DIR), |file, part| file.join(part));
    Ok((path, file))
}

/// A row's values in their portable JSON form.
pub fn encode_row(cells: &[Cell]) -> Value {
    Value::Array(cells.iter().map(encode_cell).collect())
}

fn encode_cell(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Integer(value) => Value::from(*value),
        Cell::Float(value) if value.is_nan() => Value::from("NaN"),
        Cell::Float(value) if value.is_infinite() => {
            Value::from(if *value > 0.0 { "Infinity" } else { "-Infinity" })
        }
        Cell::Float(value) => Value::from(*value),
        Cell::Text(value) => Value::from(value.as_str()),
        Cell::Bytes(value) => Value::from(base64::engine::general_purpose::STANDARD.encode(value)),
        Cell::Boolean(value) => Value::from(*value),
    }
}

/// Reads a value back as a column of `kind` (the restoring database's own type, which may be
/// another engine's).
pub fn decode_cell(value: &Value, kind: ColumnKind) -> Result<Cell, String> {
    let unexpected = || format!("{value} is not a {kind:?} value");
    let cell = match (value, kind) {
        (Value::Null, _) => Cell::Null,
        (Value::Number(number), ColumnKind::Integer) => {
            Cell::Integer(number.as_i64().ok_or_else(unexpected)?)
        }
        (Value::Bool(flag), ColumnKind::Integer) => Cell::Integer(i64::from(*flag)),
        (Value::Number(number), ColumnKind::Float) => {
            Cell::Float(number.as_f64().ok_or_else(unexpected)?)
        }
        (Value::String(text), ColumnKind::Float) => Cell::Float(match text.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return Err(unexpected()),
        }),
        (Value::String(text), ColumnKind::Text | ColumnKind::Other) => Cell::Text(text.clone()),
        (Value::String(text), ColumnKind::Bytes) => Cell::Bytes(
            base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| unexpected())?,
        ),
        (Value::Bool(flag), ColumnKind::Boolean) => Cell::Boolean(*flag),
        (Value::Number(number), ColumnKind::Boolean) => match number.as_i64() {
            Some(0) => Cell::Boolean(false),
            Some(1) => Cell::Boolean(true),
            _ => return Err(unexpected()),
        },
        _ => return Err(unexpected()),
    };
    Ok(cell)
}

/// A writer that counts and hashes what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// Returns the inner writer, the byte count and the SHA-256 (lowercase hex).
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buffer)?;
        self.hasher.update(&buffer[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The size and SHA-256 of a file.
pub fn file_digest(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 256 * 1024];
    let mut size = 0_u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Checks that every file the manifest lists is present with its size and SHA-256, reporting
/// progress on stderr. Returns every problem found (empty when the backup is intact).
pub fn check_files(dir: &Path, manifest: &Manifest) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for table in &manifest.tables {
        let path = dir.join(&table.file);
        match file_digest(&path) {
            Ok((size, sha256)) if size == table.bytes && sha256 == table.sha256 => {}
            Ok((size, sha256)) => problems.push(format!(
                "table file {} does not match the manifest: {size} bytes with sha256 {sha256}, expected {} bytes with sha256 {}",
                table.file, table.bytes, table.sha256
            )),
            Err(error) => problems.push(format!("table file {}: {error}", table.file)),
        }
    }
    eprintln!("verify: {} table files checked", manifest.tables.len());
    let mut progress = Progress::new("verify: artifacts", manifest.artifacts.count);
    for object in &manifest.artifacts.objects {
        let (_, path) = artifact_file(dir, &object.path)?;
        match file_digest(&path) {
            Ok((size, sha256)) if size == object.size && sha256 == object.sha256 => {}
            Ok((size, sha256)) => problems.push(format!(
                "artifact {} does not match the manifest: {size} bytes with sha256 {sha256}, expected {} bytes with sha256 {}",
                object.path, object.size, object.sha256
            )),
            Err(error) => problems.push(format!("artifact {}: {error}", object.path)),
        }
        progress.advance(object.size);
    }
    progress.done();
    Ok(problems)
}

/// Progress of a long step on stderr: a line at most every two seconds, and one at the end.
pub struct Progress {
    label: &'static str,
    total: u64,
    done: u64,
    bytes: u64,
    last: std::time::Instant,
}

impl Progress {
    /// Starts counting `total` items.
    pub fn new(label: &'static str, total: u64) -> Self {
        Self { label, total, done: 0, bytes: 0, last: std::time::Instant::now() }
    }

    /// Counts one item of `bytes`.
    pub fn advance(&mut self, bytes: u64) {
        self.done += 1;
        self.bytes += bytes;
        if self.last.elapsed() >= std::time::Duration::from_secs(2) {
            self.last = std::time::Instant::now();
            self.print();
        }
    }

    /// Prints the final count.
    pub fn done(&self) {
        self.print();
    }

    fn print(&self) {
        eprintln!("{} {}/{} ({})", self.label, self.done, self.total, human_bytes(self.bytes));
    }
}

/// `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_through_json() {
        let cells = vec![
            Cell::Null,
            Cell::Integer(i64::MIN),
            Cell::Float(0.1),
            Cell::Float(-0.0),
            Cell::Float(f64::NAN),
            Cell::Float(f64::INFINITY),
            Cell::Float(f64::NEG_INFINITY),
            Cell::Float(1e300),
            Cell::Text("ünï \"quoted\"\n".into()),
            Cell::Bytes(vec![0, 255, 10]),
            Cell::Boolean(true),
        ];
        let kinds = [
            ColumnKind::Text,
            ColumnKind::Integer,
            ColumnKind::Float,
            ColumnKind::Float,
            ColumnKind::Float,
            ColumnKind::Float,
            ColumnKind::Float,
            ColumnKind::Float,
            ColumnKind::Text,
            ColumnKind::Bytes,
            ColumnKind::Boolean,
        ];
        let line = encode_row(&cells).to_string();
        let values: Vec<Value> = serde_json::from_str(&line).unwrap();
        for ((value, kind), cell) in values.iter().zip(kinds).zip(&cells) {
            let back = decode_cell(value, kind).unwrap();
            match (&back, cell) {
                (Cell::Float(left), Cell::Float(right)) => {
                    assert!(left.to_bits() == right.to_bits() || (left.is_nan() && right.is_nan()));
                }
                _ => assert_eq!(&back, cell),
            }
        }
        assert!(decode_cell(&Value::from("x"), ColumnKind::Integer).is_err());
        assert!(decode_cell(&Value::from("nan"), ColumnKind::Float).is_err());
        assert_eq!(decode_cell(&Value::from(3), ColumnKind::Float).unwrap(), Cell::Float(3.0));
    }

    #[test]
    fn names_and_keys_cannot_leave_the_backup() {
        assert_eq!(table_file("runs").unwrap(), "tables/runs.jsonl");
        assert!(table_file("../etc/passwd").is_err());
        assert!(table_file("a/b").is_err());
        let dir = Path::new("/backup");
        assert_eq!(artifact_file(dir, "1/abc/a.txt").unwrap().1, dir.join("artifacts/1/abc/a.txt"));
        assert!(artifact_file(dir, "../x").is_err());
        assert!(artifact_file(dir, "/abs").is_err());
    }
}
