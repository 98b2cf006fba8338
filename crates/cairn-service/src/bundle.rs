//! Compliance bundles: one `.tar.gz` per model version holding its model card revisions,
//! lineage (source run, params, metrics, tags, dataset inputs), approval requests with their
//! evidence and decisions, the policies (every revision) they were judged under, the alias and
//! stage history, and the audit records that touch the version, plus `manifest.json` (the
//! sha256 and size of every file) and `manifest.sha256` (the digest of the manifest).
//!
//! [`verify_bundle`] checks an archive offline: the gzip and tar framing, the manifest's digest,
//! every listed file's digest and size, that no file is missing or unlisted, and that every
//! included audit record still hashes to the value the server's chain gave it. A changed byte
//! anywhere fails one of these.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use cairn_domain::audit::{AuditRecord, RequestContext, record_hash};
use cairn_domain::entities::{ModelVersion, Run};
use cairn_domain::governance::{ApprovalRequest, HistoryEntry, Policy};
use cairn_domain::time::now_millis;
use cairn_store::{CardRevision, PolicyRevision};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{GovernanceService, ServiceError, ServiceResult};

/// The format tag written into every manifest.
pub const BUNDLE_FORMAT: &str = "cairn-compliance-bundle/1";

/// One file listed by a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the archive.
    pub path: String,
    /// Hex sha256 of its bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The project.
    pub project: String,
    /// The registered model.
    pub model: String,
    /// The version.
    pub version: i64,
    /// Who exported it.
    pub created_by: String,
    /// When (epoch ms).
    pub created_at: i64,
    /// Every other file of the archive.
    pub files: Vec<ManifestFile>,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// Files whose digest and size matched.
    pub verified_files: usize,
    /// Audit records whose hash was recomputed and matched.
    pub verified_audit_records: usize,
    /// Every problem found; empty when the bundle is intact.
    pub problems: Vec<String>,
}

impl BundleReport {
    /// Whether the bundle is intact.
    pub fn intact(&self) -> bool {
        self.problems.is_empty() && self.manifest.is_some()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

pub(crate) fn version_json(project: &str, version: &ModelVersion) -> serde_json::Value {
    serde_json::json!({
        "project": project,
        "name": version.name,
        "version": version.version,
        "source": version.source,
        "run_id": version.run_id,
        "model_id": version.model_id,
        "registered_by": version.user_id,
        "current_stage": version.current_stage.as_str(),
        "aliases": version.aliases,
        "description": version.description,
        "tags": version.tags.iter().map(|tag| (tag.key.clone(), tag.value.clone())).collect::<BTreeMap<_, _>>(),
        "creation_timestamp": version.creation_timestamp,
        "last_updated_timestamp": version.last_updated_timestamp,
    })
}

pub(crate) fn cards_json(cards: &[CardRevision]) -> serde_json::Value {
    serde_json::Value::Array(
        cards
            .iter()
            .map(|card| {
                serde_json::json!({
                    "revision": card.revision, "author": card.author,
                    "created_at": card.created_at, "card": card.card,
                    "missing": card.card.missing(),
                })
            })
            .collect(),
    )
}

pub(crate) fn run_json(run: &Run) -> serde_json::Value {
    let tags = |tags: &[cairn_domain::entities::Tag]| {
        tags.iter().map(|tag| (tag.key.clone(), tag.value.clone())).collect::<BTreeMap<_, _>>()
    };
    serde_json::json!({
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id.to_string(),
        "user_id": run.info.user_id,
        "status": run.info.status.as_str(),
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "artifact_uri": run.info.artifact_uri,
        "params": run.params.iter().map(|p| (p.key.clone(), p.value.clone())).collect::<BTreeMap<_, _>>(),
        "metrics": run.metrics.iter().map(|m| serde_json::json!({"key": m.key, "value": m.value, "step": m.step, "timestamp": m.timestamp})).collect::<Vec<_>>(),
        "tags": tags(&run.tags),
        "datasets": run.dataset_inputs.iter().map(|input| serde_json::json!({
            "name": input.dataset.name, "digest": input.dataset.digest,
            "source_type": input.dataset.source_type, "source": input.dataset.source,
            "schema": input.dataset.schema, "tags": tags(&input.tags),
        })).collect::<Vec<_>>(),
        "code": {
            "source": run.tags.iter().find(|t| t.key == "mlflow.source.name").map(|t| t.value.clone()),
            "git_commit": run.tags.iter().find(|t| t.key == "mlflow.source.git.commit").map(|t| t.value.clone()),
        },
        "logged_models": run.model_outputs.iter().map(|m| m.model_id.clone()).collect::<Vec<_>>(),
    })
}

pub(crate) fn request_json(request: &ApprovalRequest) -> serde_json::Value {
    serde_json::json!({
        "id": request.id,
        "model": request.model_name,
        "version": request.version,
        "target": format!("{}:{}", request.target.kind(), request.target.name()),
        "archive_existing_versions": request.archive_existing,
        "state": request.state.as_str(),
        "requested_by": request.requested_by,
        "comment": request.comment,
        "evidence": request.evidence,
        "decisions": request.decisions,
        "created_at": request.created_at,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at,
    })
}

pub(crate) fn policy_json(policy: &Policy, revisions: &[PolicyRevision]) -> serde_json::Value {
    serde_json::json!({
        "id": policy.id,
        "name": policy.name,
        "project": policy.project,
        "target": format!("{}:{}", policy.target.kind(), policy.target.name()),
        "model_name": policy.model_name,
        "active": policy.active,
        "current_revision": policy.revision,
        "revisions": revisions.iter().map(|revision| serde_json::json!({
            "revision": revision.revision, "rules": revision.rules,
            "created_by": revision.created_by, "created_at": revision.created_at,
        })).collect::<Vec<_>>(),
    })
}

pub(crate) fn history_json(entry: &HistoryEntry) -> serde_json::Value {
    serde_json::json!({
        "id": entry.id, "kind": entry.kind, "target": entry.target, "model": entry.model_name,
        "version": entry.version, "previous_version": entry.previous_version,
        "previous_stage": entry.previous_stage, "actor": entry.actor,
        "request_id": entry.request_id, "at": entry.at,
    })
}

fn append(
    builder: &mut tar::Builder<impl Write>,
    path: &str,
    bytes: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes)
}

/// Packs documents into a bundle archive with its manifest.
pub fn pack_bundle(
    project: &str,
    model: &str,
    version: i64,
    created_by: &str,
    documents: &[(String, serde_json::Value)],
) -> std::io::Result<Vec<u8>> {
    let created_at = now_millis();
    let files: Vec<(String, Vec<u8>)> =
        documents.iter().map(|(path, value)| (path.clone(), pretty(value))).collect();
    let manifest = Manifest {
        format: BUNDLE_FORMAT.to_string(),
        project: project.to_string(),
        model: model.to_string(),
        version,
        created_by: created_by.to_string(),
        created_at,
        files: files
            .iter()
            .map(|(path, bytes)| ManifestFile {
                path: path.clone(),
                sha256: sha256_hex(bytes),
                size: bytes.len() as u64,
            })
            .collect(),
    };
    let manifest_bytes = pretty(&serde_json::to_value(&manifest).unwrap_or_default());
    let manifest_digest = format!("{}  manifest.json\n", sha256_hex(&manifest_bytes));
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    let mtime = (created_at / 1000).max(0) as u64;
    append(&mut builder, "manifest.json", &manifest_bytes, mtime)?;
    append(&mut builder, "manifest.sha256", manifest_digest.as_bytes(), mtime)?;
    for (path, bytes) in &files {
        append(&mut builder, path, bytes, mtime)?;
    }
    builder.into_inner()?.finish()
}

/// Reads every regular file of a `.tar.gz`, failing on broken framing (gzip CRC, tar header
/// checksums) or duplicate paths.
fn unpack(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    // The gzip header is not covered by its CRC; bundles always carry the canonical one.
    let canonical = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
        .finish()
        .map_err(|error| error.to_string())?;
    if archive.len() < 10 || archive[..10] != canonical[..10] {
        return Err("not a Cairn bundle: unexpected gzip header".to_string());
    }
    let decoder = flate2::read::GzDecoder::new(archive);
    let mut reader = tar::Archive::new(decoder);
    let mut files = BTreeMap::new();
    let entries = reader.entries().map_err(|error| format!("not a tar.gz archive: {error}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|error| format!("damaged archive: {error}"))?;
        let path = entry
            .path()
            .map_err(|error| format!("damaged archive entry name: {error}"))?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|error| format!("damaged archive: {error}"))?;
        if files.insert(path.clone(), bytes).is_some() {
            return Err(format!("the archive holds '{path}' twice"));
        }
    }
    // Reading to the end makes the decoder check the gzip trailer (CRC and length).
    let mut rest = Vec::new();
    reader
        .into_inner()
        .read_to_end(&mut rest)
        .map_err(|error| format!("damaged archive: {error}"))?;
    Ok(files)
}

/// Verifies a bundle archive offline.
pub fn verify_bundle(archive: &[u8]) -> BundleReport {
    let mut report = BundleReport {
        manifest: None,
        verified_files: 0,
        verified_audit_records: 0,
        problems: Vec::new(),
    };
    let mut files = match unpack(archive) {
        Ok(files) => files,
        Err(problem) => {
            report.problems.push(problem);
            return report;
        }
    };
    let Some(manifest_bytes) = files.remove("manifest.json") else {
        report.problems.push("manifest.json is missing".into());
        return report;
    };
    match files.remove("manifest.sha256") {
        Some(recorded) => {
            let recorded = String::from_utf8_lossy(&recorded);
            let recorded = recorded.split_whitespace().next().unwrap_or_default();
            if recorded != sha256_hex(&manifest_bytes) {
                report.problems.push("manifest.json does not match manifest.sha256".into());
            }
        }
        None => report.problems.push("manifest.sha256 is missing".into()),
    }
    let manifest: Manifest = match serde_json::from_slice(&manifest_bytes) {
        Ok(manifest) => manifest,
        Err(error) => {
            report.problems.push(format!("manifest.json is unreadable: {error}"));
            return report;
        }
    };
    if manifest.format != BUNDLE_FORMAT {
        report.problems.push(format!("unknown bundle format '{}'", manifest.format));
    }
    for listed in &manifest.files {
        match files.remove(&listed.path) {
            None => report.problems.push(format!("{} is listed but missing", listed.path)),
            Some(bytes) => {
                if sha256_hex(&bytes) != listed.sha256 || bytes.len() as u64 != listed.size {
                    report.problems.push(format!("{} does not match its digest", listed.path));
                } else {
                    report.verified_files += 1;
                    if listed.path == "audit.json" {
                        check_audit(&bytes, &mut report);
                    }
                }
            }
        }
    }
    for unlisted in files.keys() {
        report.problems.push(format!("{unlisted} is not listed in the manifest"));
    }
    report.manifest = Some(manifest);
    report
}

fn check_audit(bytes: &[u8], report: &mut BundleReport) {
    let records: Vec<AuditRecord> = match serde_json::from_slice(bytes) {
        Ok(records) => records,
        Err(error) => {
            report.problems.push(format!("audit.json is unreadable: {error}"));
            return;
        }
    };
    for record in &records {
        if record_hash(record) == record.hash {
            report.verified_audit_records += 1;
        } else {
            report
                .problems
                .push(format!("audit record {} does not hash to its recorded hash", record.seq));
        }
    }
}

impl GovernanceService {
    /// Exports one version's compliance bundle (`.tar.gz`); the export is itself audited.
    pub async fn bundle(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
    ) -> ServiceResult<Vec<u8>> {
        let (project, documents) = self.bundle_documents(context, name, version).await?;
        let archive =
            pack_bundle(&project, name, version, &context.actor, &documents).map_err(|error| {
                ServiceError {
                    kind: cairn_domain::ErrorKind::Internal,
                    message: format!("packing the bundle failed: {error}"),
                }
            })?;
        self.record_export(context, name, version, &archive).await?;
        Ok(archive)
    }
}

impl GovernanceService {
    async fn record_export(
        &self,
        context: &RequestContext,
        name: &str,
        version: i64,
        archive: &[u8],
    ) -> ServiceResult<()> {
        let entry = cairn_domain::audit::AuditEntry {
            action: "model_version.bundle".to_string(),
            target: format!("registered_model:{name}"),
            details: serde_json::json!({"version": version, "sha256": sha256_hex(archive), "bytes": archive.len()}),
        };
        Ok(self.store.record_audit(context, entry).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let documents = vec![
            ("version.json".to_string(), serde_json::json!({"name": "churn", "version": 1})),
            ("audit.json".to_string(), serde_json::json!([])),
        ];
        pack_bundle("p", "churn", 1, "alice", &documents).unwrap()
    }

    #[test]
    fn a_fresh_bundle_verifies() {
        let report = verify_bundle(&sample());
        assert!(report.intact(), "{:?}", report.problems);
        assert_eq!(report.verified_files, 2);
    }

    #[test]
    fn any_changed_byte_of_the_archive_is_detected() {
        let archive = sample();
        // Every position, flipped: gzip CRC, tar checksums, digests or JSON catch each one.
        for position in 0..archive.len() {
            let mut damaged = archive.clone();
            damaged[position] ^= 0x01;
            assert!(!verify_bundle(&damaged).intact(), "byte {position} changed unnoticed");
        }
    }
}
