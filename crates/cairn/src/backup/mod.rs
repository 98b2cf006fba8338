//! Backups: `cairn admin backup --out DIR` writes a self-describing directory (a manifest with
//! a digest of every file, every table as JSON Lines, every artifact object);
//! `cairn admin backup verify DIR` re-checks the digests; `cairn admin restore --from DIR`
//! writes it into a new, empty database and artifact store of either engine.

mod create;
pub mod format;
mod restore;

use std::path::Path;

pub use create::backup;
pub use format::Manifest;
pub use restore::{RestoreReport, restore};

/// Checks every digest of the backup in `dir` without restoring it; returns its manifest and
/// the problems found (none when it is intact).
pub fn verify(dir: &Path) -> anyhow::Result<(Manifest, Vec<String>)> {
    let manifest = Manifest::load(dir)?;
    let problems = format::check_files(dir, &manifest)?;
    Ok((manifest, problems))
}

/// `cairn admin backup [--out DIR | verify DIR]`.
pub async fn run_backup(args: &crate::cli::BackupArgs) -> anyhow::Result<()> {
    if let Some(crate::cli::BackupCommand::Verify { dir }) = &args.command {
        let started = std::time::Instant::now();
        let (manifest, problems) = verify(dir)?;
        if !problems.is_empty() {
            anyhow::bail!(
                "the backup in {} is damaged:\n  - {}",
                dir.display(),
                problems.join("\n  - ")
            );
        }
        let rows: u64 = manifest.tables.iter().map(|table| table.rows).sum();
        println!(
            "backup intact: {} tables ({rows} rows) and {} artifacts ({}) match their SHA-256 digests; schema version {}, taken {} ({:.1} s to verify)",
            manifest.tables.len(),
            manifest.artifacts.count,
            format::human_bytes(manifest.artifacts.bytes),
            manifest.schema_version,
            manifest.created_at,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let Some(out) = &args.out else {
        anyhow::bail!("say where to write the backup (--out DIR), or check one (verify DIR)");
    };
    let config = args.backend.config();
    let store = crate::connect_store_unmigrated(&config).await?;
    let artifacts = crate::open_artifacts(&config)?;
    let outcome = backup(&store, &artifacts, out).await;
    store.close().await;
    let manifest = outcome?;
    let rows: u64 = manifest.tables.iter().map(|table| table.rows).sum();
    let table_bytes: u64 = manifest.tables.iter().map(|table| table.bytes).sum();
    println!(
        "backup written to {}: {} tables, {rows} rows ({}), {} artifacts ({}), schema version {}, in {:.1} s",
        out.display(),
        manifest.tables.len(),
        format::human_bytes(table_bytes),
        manifest.artifacts.count,
        format::human_bytes(manifest.artifacts.bytes),
        manifest.schema_version,
        manifest.duration_ms as f64 / 1000.0
    );
    if !manifest.artifacts.skipped.is_empty() {
        eprintln!(
            "warning: {} artifact objects were not copied (see \"skipped\" in the manifest)",
            manifest.artifacts.skipped.len()
        );
    }
    if manifest.tables.iter().any(|table| table.name == "secrets" && table.rows > 0) {
        eprintln!(
            "note: secrets are in the backup sealed with the server's secrets key, which is not; keep a copy of the key (--secrets-key-file) with the backup"
        );
    }
    Ok(())
}

/// `cairn admin restore --from DIR`.
pub async fn run_restore(args: &crate::cli::RestoreArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let config = args.backend.config();
    let store = crate::connect_store_unmigrated(&config).await?;
    let artifacts = crate::open_artifacts(&config)?;
    let outcome = restore(&args.from, &store, &artifacts).await;
    store.close().await;
    let report = outcome?;
    let forward = if report.migrated_forward.is_empty() {
        String::new()
    } else {
        format!("; then migrated forward through {:?}", report.migrated_forward)
    };
    println!(
        "restored {} tables ({} rows) and {} artifacts ({}) at schema version {}{forward}, in {:.1} s",
        report.tables,
        report.rows,
        report.objects,
        format::human_bytes(report.bytes),
        report.schema_version,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
