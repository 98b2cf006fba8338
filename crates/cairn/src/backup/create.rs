//! `cairn admin backup --out DIR`: the database read in one consistent snapshot, then every
//! artifact-store object copied, into a temporary directory beside `DIR` that is fsynced and
//! renamed into place only when complete.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use cairn_artifacts::{ArtifactErrorKind, ArtifactStore};
use cairn_store::{Dialect, Store};
use futures::stream::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::format::{
    ARTIFACTS_DIR, ArtifactsEntry, FORMAT, FORMAT_VERSION, HashingWriter, MANIFEST, Manifest,
    ObjectEntry, Progress, SkippedObject, Source, TABLES_DIR, TableEntry, encode_row, human_bytes,
    table_file,
};

/// Objects copied at once.
const PARALLEL_COPIES: usize = 8;

/// Writes a backup of `store` and `artifacts` to `out`, which must not exist or be an empty
/// directory. Returns its manifest.
pub async fn backup(
    store: &Store,
    artifacts: &ArtifactStore,
    out: &Path,
) -> anyhow::Result<Manifest> {
    let started = Instant::now();
    refuse_non_empty(out)?;
    let staging = staging_dir(out)?;
    std::fs::create_dir_all(staging.join(TABLES_DIR))
        .with_context(|| format!("creating {}", staging.display()))?;
    let written = write_backup(store, artifacts, &staging, started).await;
    let manifest = match written {
        Ok(manifest) => manifest,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    if let Err(error) = publish(&staging, out) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    Ok(manifest)
}

fn refuse_non_empty(out: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "refusing to write the backup into {}: it exists and is not empty",
                    out.display()
                );
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotADirectory => {
            bail!("refusing to write the backup to {}: it is a file", out.display())
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", out.display())),
    }
}

/// A fresh directory beside `out` (same file system, so the final rename is atomic).
fn staging_dir(out: &Path) -> anyhow::Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("{} does not name a directory", out.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing the leftover {}", staging.display()))?;
    }
    Ok(staging)
}

async fn write_backup(
    store: &Store,
    artifacts: &ArtifactStore,
    staging: &Path,
    started: Instant,
) -> anyhow::Result<Manifest> {
    let created_at_ms = cairn_domain::time::now_millis();
    let mut snapshot = store.snapshot().await.context("opening a read transaction")?;
    let migrations = snapshot.schema_versions().await.context("reading the schema version")?;
    let Some(&schema_version) = migrations.last() else {
        bail!("the database has no Cairn schema (it was never migrated); nothing to back up");
    };
    let tables = snapshot.tables().await.context("reading the database catalog")?;
    let sequences = snapshot.sequences(&tables).await.context("reading the id sequences")?;
    let mut entries = Vec::with_capacity(tables.len());
    for table in &tables {
        let file_name = table_file(&table.name)?;
        let path = staging.join(&file_name);
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = HashingWriter::new(std::io::BufWriter::with_capacity(256 * 1024, file));
        let mut rows = 0_u64;
        let mut stream = snapshot.rows(table);
        while let Some(cells) = stream.next().await {
            let cells = cells.with_context(|| format!("reading table {}", table.name))?;
            serde_json::to_writer(&mut writer, &encode_row(&cells))?;
            writer.write_all(b"\n")?;
            rows += 1;
        }
        drop(stream);
        let (buffered, bytes, sha256) = writer.finish();
        let file = buffered.into_inner().map_err(|error| error.into_error())?;
        file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
        eprintln!("backup: table {}: {rows} rows ({})", table.name, human_bytes(bytes));
        entries.push(TableEntry {
            name: table.name.clone(),
            file: file_name,
            columns: table.columns.clone(),
            primary_key: table.primary_key.clone(),
            rows,
            bytes,
            sha256,
        });
    }
    snapshot.finish().await.context("ending the read transaction")?;
    let rows: u64 = entries.iter().map(|entry| entry.rows).sum();
    eprintln!("backup: database snapshot: {} tables, {rows} rows", entries.len());

    // Objects are written once under their key or are new, so everything the snapshot refers
    // to is still there when listed after it.
    let artifacts_entry = copy_artifacts(artifacts, staging).await?;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        cairn_version: env!("CARGO_PKG_VERSION").into(),
        schema_version,
        migrations,
        created_at: cairn_domain::time::format_utc(created_at_ms),
        created_at_ms,
        source: Source {
            database: match store.dialect() {
                Dialect::Sqlite => "sqlite".into(),
                Dialect::Postgres => "postgres".into(),
            },
            artifacts: if artifacts.root_url().starts_with("s3://") { "s3" } else { "file" }.into(),
        },
        tables: entries,
        sequences,
        artifacts: artifacts_entry,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let path = staging.join(MANIFEST);
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    serde_json::to_writer_pretty(&mut file, &manifest)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(manifest)
}

async fn copy_artifacts(
    artifacts: &ArtifactStore,
    staging: &Path,
) -> anyhow::Result<ArtifactsEntry> {
    let listed = artifacts.walk().await.context("listing the artifact store")?;
    let total = listed.len() as u64;
    let mut progress = Progress::new("backup: artifacts", total);
    let root = staging.join(ARTIFACTS_DIR);
    let mut copies = futures::stream::iter(listed)
        .map(|object| async move {
            let outcome = copy_object(artifacts, staging, &object.key).await;
            (object.key, outcome)
        })
        .buffer_unordered(PARALLEL_COPIES);
    let mut entry = ArtifactsEntry::default();
    let mut directories = BTreeSet::new();
    while let Some((key, outcome)) = copies.next().await {
        match outcome? {
            Copied::Object(object, directory) => {
                progress.advance(object.size);
                entry.bytes += object.size;
                entry.objects.push(object);
                let under_root = directory.ancestors().take_while(|dir| dir.starts_with(&root));
                directories.extend(under_root.map(Path::to_path_buf));
            }
            Copied::Skipped(reason) => {
                eprintln!("backup: warning: artifact {key} not copied: {reason}");
                entry.skipped.push(SkippedObject { path: key, reason });
            }
        }
    }
    progress.done();
    entry.objects.sort_by(|left, right| left.path.cmp(&right.path));
    entry.count = entry.objects.len() as u64;
    // The directories' entries must be durable too, not only the files.
    for directory in directories.iter().rev() {
        sync_dir(directory)?;
    }
    Ok(entry)
}

enum Copied {
    /// Copied, with the directory it went into.
    Object(ObjectEntry, PathBuf),
    /// Not copied, and why.
    Skipped(String),
}

async fn copy_object(
    artifacts: &ArtifactStore,
    staging: &Path,
    key: &str,
) -> anyhow::Result<Copied> {
    let Ok((path, file_path)) = super::format::artifact_file(staging, key) else {
        return Ok(Copied::Skipped("not a valid artifact path".into()));
    };
    let mut download = match artifacts.get(&path).await {
        Ok(download) => download,
        Err(error) if error.kind() == ArtifactErrorKind::NotFound => {
            return Ok(Copied::Skipped("deleted after it was listed".into()));
        }
        Err(error) => return Err(error).with_context(|| format!("reading artifact {key}")),
    };
    let directory = file_path.parent().unwrap_or(staging).to_path_buf();
    tokio::fs::create_dir_all(&directory)
        .await
        .with_context(|| format!("creating {}", directory.display()))?;
    let mut file = tokio::fs::File::create(&file_path)
        .await
        .with_context(|| format!("creating {}", file_path.display()))?;
    let mut hasher = Sha256::new();
    let mut size = 0_u64;
    while let Some(chunk) =
        download.stream.try_next().await.with_context(|| format!("reading artifact {key}"))?
    {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.with_context(|| format!("writing {}", file_path.display()))?;
    }
    file.sync_all().await.with_context(|| format!("syncing {}", file_path.display()))?;
    let object =
        ObjectEntry { path: key.to_string(), size, sha256: hex::encode(hasher.finalize()) };
    Ok(Copied::Object(object, directory))
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|directory| directory.sync_all())
        .with_context(|| format!("syncing the directory {}", path.display()))
}

/// Makes the staging directory the backup: syncs its directories, renames it onto `out` (an
/// empty directory is replaced), and syncs the parent so the rename survives a crash.
fn publish(staging: &Path, out: &Path) -> anyhow::Result<()> {
    sync_dir(&staging.join(TABLES_DIR))?;
    sync_dir(staging)?;
    refuse_non_empty(out)?;
    std::fs::rename(staging, out)
        .with_context(|| format!("renaming {} to {}", staging.display(), out.display()))?;
    let parent = match out.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    sync_dir(&parent)
}
