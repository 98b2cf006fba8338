//! `cairn admin restore --from DIR`: a backup written into a new, empty database and artifact
//! store, of either engine. Every digest is checked before anything is written; the rows go in
//! one transaction, which commits only after every object was uploaded (each digest-checked
//! again as it streams), so a failure leaves neither rows nor objects behind.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use cairn_artifacts::{ArtifactPath, ArtifactStore};
use cairn_store::Store;
use cairn_store::backup::{Cell, Restore, Table};
use futures::stream::{StreamExt, TryStreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::format::{
    Manifest, ObjectEntry, Progress, TableEntry, artifact_file, check_files, decode_cell,
};

/// Objects uploaded at once.
const PARALLEL_UPLOADS: usize = 8;
/// The size of each chunk read from a backup file.
const CHUNK: usize = 1024 * 1024;

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Tables written.
    pub tables: usize,
    /// Rows written.
    pub rows: u64,
    /// Objects uploaded.
    pub objects: u64,
    /// Their total size.
    pub bytes: u64,
    /// The backup's schema version.
    pub schema_version: i64,
    /// Migrations applied after the restore (a backup of an older schema).
    pub migrated_forward: Vec<i64>,
}

/// Restores the backup in `from` into `store` and `artifacts`, which must be empty.
pub async fn restore(
    from: &Path,
    store: &Store,
    artifacts: &ArtifactStore,
) -> anyhow::Result<RestoreReport> {
    let manifest = Manifest::load(from)?;
    let latest = Store::latest_schema_version();
    if manifest.schema_version > latest {
        bail!(
            "the backup's schema version {} is newer than this cairn's ({latest}); restore it with cairn {} or newer",
            manifest.schema_version,
            manifest.cairn_version
        );
    }
    let problems = check_files(from, &manifest)?;
    if !problems.is_empty() {
        bail!(
            "the backup in {} is damaged; nothing was restored:\n  - {}",
            from.display(),
            problems.join("\n  - ")
        );
    }
    if !artifacts.is_empty().await.context("listing the target artifact store")? {
        bail!(
            "the artifact store {} is not empty; restore only into a new, empty artifact store",
            artifacts.root_url()
        );
    }
    let target_versions = store.schema_versions().await.context("reading the target schema")?;
    if let Some(&target) = target_versions.last()
        && target > manifest.schema_version
    {
        bail!(
            "the target database is at schema version {target}, newer than the backup's {}; restore into a new database that was never migrated (or was migrated by the same cairn version as the backup)",
            manifest.schema_version
        );
    }
    if !target_versions.is_empty() {
        // Refuse a database in use before migrating it, so a refusal changes nothing.
        let mut probe = store.begin_restore().await.context("reading the target database")?;
        let tables = probe.tables().await.context("reading the target catalog")?;
        refuse_occupied(&mut probe, &tables).await?;
    }
    store.migrate_to(manifest.schema_version).await.context("creating the backup's schema")?;

    let mut restore = store.begin_restore().await.context("starting the restore transaction")?;
    let tables = restore.tables().await.context("reading the target catalog")?;
    check_same_tables(&manifest, &tables)?;
    refuse_occupied(&mut restore, &tables).await?;
    restore.delete_seed_rows(&tables).await?;
    let mut rows = 0;
    for table in &tables {
        let entry = manifest
            .tables
            .iter()
            .find(|entry| entry.name == table.name)
            .with_context(|| format!("table {} is not in the backup", table.name))?;
        rows += restore_table(&mut restore, from, table, entry).await?;
    }
    restore
        .restore_sequences(&tables, &manifest.sequences)
        .await
        .context("moving the id sequences past the restored rows")?;

    let uploaded = match upload_artifacts(from, artifacts, &manifest.artifacts.objects).await {
        Ok(uploaded) => uploaded,
        Err((error, uploaded)) => {
            remove_uploaded(artifacts, &uploaded).await;
            return Err(error);
        }
    };
    if let Err(error) = restore.commit().await {
        remove_uploaded(artifacts, &uploaded).await;
        return Err(error).context("committing the restored rows");
    }
    eprintln!("restore: committed {rows} rows in {} tables", tables.len());
    let migrated_forward = if manifest.schema_version < latest {
        store.migrate().await.context("migrating the restored database forward")?
    } else {
        Vec::new()
    };
    Ok(RestoreReport {
        tables: tables.len(),
        rows,
        objects: uploaded.len() as u64,
        bytes: manifest.artifacts.bytes,
        schema_version: manifest.schema_version,
        migrated_forward,
    })
}

/// Refuses a target database holding anything but the rows migrations seed.
async fn refuse_occupied(restore: &mut Restore, tables: &[Table]) -> anyhow::Result<()> {
    let occupied =
        restore.rows_beyond_seeds(tables).await.context("checking the target is empty")?;
    if occupied.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> =
        occupied.iter().map(|(table, rows)| format!("{table}: {rows} rows")).collect();
    bail!(
        "the target database already holds data ({}); restore only into a new, empty database",
        listed.join(", ")
    )
}

/// The target schema (at the backup's version) must hold exactly the backup's tables.
fn check_same_tables(manifest: &Manifest, tables: &[Table]) -> anyhow::Result<()> {
    for entry in &manifest.tables {
        if !tables.iter().any(|table| table.name == entry.name) {
            bail!("table {} of the backup does not exist in the target schema", entry.name);
        }
    }
    for table in tables {
        if !manifest.tables.iter().any(|entry| entry.name == table.name) {
            bail!("table {} of the target schema is not in the backup", table.name);
        }
    }
    Ok(())
}

/// Inserts one table's rows in batches, converting each value to the target's column types;
/// returns how many.
async fn restore_table(
    restore: &mut Restore,
    from: &Path,
    table: &Table,
    entry: &TableEntry,
) -> anyhow::Result<u64> {
    let mut positions = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let position = entry.columns.iter().position(|source| source.name == column.name);
        positions.push(position.with_context(|| {
            format!("column {} of table {} is not in the backup", column.name, table.name)
        })?);
    }
    if let Some(extra) = entry
        .columns
        .iter()
        .find(|source| !table.columns.iter().any(|column| column.name == source.name))
    {
        bail!(
            "column {} of table {} in the backup does not exist in the target",
            extra.name,
            table.name
        );
    }
    let batch_rows = Restore::batch_rows(table);
    let mut reader = TableReader::open(from, entry)?;
    let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(batch_rows);
    let mut rows = 0_u64;
    while let Some(values) = reader.next_row()? {
        if values.len() != entry.columns.len() {
            bail!(
                "{} line {}: {} values for {} columns",
                entry.file,
                reader.rows,
                values.len(),
                entry.columns.len()
            );
        }
        let mut cells = Vec::with_capacity(table.columns.len());
        for (column, position) in table.columns.iter().zip(&positions) {
            let cell = decode_cell(&values[*position], column.kind).map_err(|reason| {
                anyhow::anyhow!(
                    "{} line {}, column {}: {reason}",
                    entry.file,
                    reader.rows,
                    column.name
                )
            })?;
            cells.push(cell);
        }
        batch.push(cells);
        if batch.len() == batch_rows {
            restore
                .insert(table, &batch)
                .await
                .with_context(|| format!("restoring table {}", table.name))?;
            rows += batch.len() as u64;
            batch.clear();
        }
    }
    restore
        .insert(table, &batch)
        .await
        .with_context(|| format!("restoring table {}", table.name))?;
    rows += batch.len() as u64;
    reader.finish()?;
    eprintln!("restore: table {}: {rows} rows", table.name);
    Ok(rows)
}

/// Reads a table file row by row, hashing it on the way, so a file changed since it was
/// verified is caught before the transaction commits.
struct TableReader<'a> {
    entry: &'a TableEntry,
    reader: std::io::BufReader<std::fs::File>,
    hasher: Sha256,
    bytes: u64,
    rows: u64,
    line: Vec<u8>,
}

impl<'a> TableReader<'a> {
    fn open(from: &Path, entry: &'a TableEntry) -> anyhow::Result<Self> {
        let path = from.join(&entry.file);
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(Self {
            entry,
            reader: std::io::BufReader::with_capacity(256 * 1024, file),
            hasher: Sha256::new(),
            bytes: 0,
            rows: 0,
            line: Vec::new(),
        })
    }

    fn next_row(&mut self) -> anyhow::Result<Option<Vec<Value>>> {
        self.line.clear();
        let read = self.reader.read_until(b'\n', &mut self.line)?;
        if read == 0 {
            return Ok(None);
        }
        self.hasher.update(&self.line);
        self.bytes += read as u64;
        self.rows += 1;
        let values = serde_json::from_slice(&self.line).with_context(|| {
            format!("{} line {} is not a JSON array", self.entry.file, self.rows)
        })?;
        Ok(Some(values))
    }

    fn finish(self) -> anyhow::Result<()> {
        let sha256 = hex::encode(self.hasher.finalize());
        if sha256 != self.entry.sha256 || self.bytes != self.entry.bytes {
            bail!(
                "table file {} changed while it was restored (sha256 {sha256}, expected {})",
                self.entry.file,
                self.entry.sha256
            );
        }
        if self.rows != self.entry.rows {
            bail!(
                "table file {} holds {} rows; the manifest says {}",
                self.entry.file,
                self.rows,
                self.entry.rows
            );
        }
        Ok(())
    }
}

/// Uploads every object, each published only if its bytes have the manifest's SHA-256. On
/// failure, returns the error with the objects already uploaded (to remove them).
async fn upload_artifacts(
    from: &Path,
    artifacts: &ArtifactStore,
    objects: &[ObjectEntry],
) -> Result<Vec<ArtifactPath>, (anyhow::Error, Vec<ArtifactPath>)> {
    let mut progress = Progress::new("restore: artifacts", objects.len() as u64);
    let mut uploads = futures::stream::iter(objects)
        .map(|object| upload_object(from, artifacts, object))
        .buffer_unordered(PARALLEL_UPLOADS);
    let mut uploaded = Vec::with_capacity(objects.len());
    let mut failure = None;
    while let Some(outcome) = uploads.next().await {
        match outcome {
            Ok((path, size)) => {
                progress.advance(size);
                uploaded.push(path);
            }
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    progress.done();
    match failure {
        Some(error) => Err((error, uploaded)),
        None => Ok(uploaded),
    }
}

async fn upload_object(
    from: &Path,
    artifacts: &ArtifactStore,
    object: &ObjectEntry,
) -> anyhow::Result<(ArtifactPath, u64)> {
    let (path, file_path) = artifact_file(from, &object.path)?;
    let file = tokio::fs::File::open(&file_path)
        .await
        .with_context(|| format!("opening {}", file_path.display()))?;
    let body = futures::stream::try_unfold(file, |mut file| async move {
        let mut buffer = Vec::with_capacity(CHUNK);
        let read = (&mut file).take(CHUNK as u64).read_to_end(&mut buffer).await?;
        if read == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        Ok(Some((Bytes::from(buffer), file)))
    })
    .into_stream()
    .boxed();
    let outcome = artifacts
        .put_stream_checked(&path, body, Some(&object.sha256))
        .await
        .with_context(|| format!("restoring artifact {}", object.path))?;
    if outcome.size != object.size {
        bail!(
            "artifact {} has {} bytes; the manifest says {}",
            object.path,
            outcome.size,
            object.size
        );
    }
    Ok((path, outcome.size))
}

/// Deletes what a failed restore uploaded (the store was empty before it).
async fn remove_uploaded(artifacts: &ArtifactStore, uploaded: &[ArtifactPath]) {
    for path in uploaded {
        if let Err(error) = artifacts.delete_prefix(path).await {
            eprintln!("restore: warning: could not remove {path} after the failure: {error}");
        }
    }
}
