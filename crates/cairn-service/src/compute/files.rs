//! Project files: content-addressed blobs (`projects/<id>/blobs/<sha256>`) and immutable
//! snapshot manifests (`projects/<id>/snapshots/<digest>.json`) in the artifact store, recorded
//! in the metadata store. A push uploads only the blobs the project does not have yet.

use std::path::Path;

use bytes::Bytes;
use cairn_artifacts::ArtifactPath;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{Manifest, Snapshot, SnapshotFile, is_sha256_hex};
use cairn_domain::identity::{Access, Project};
use cairn_store::{NewSnapshot, Store};
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use crate::{ArtifactService, Authorizer, ServiceError, ServiceResult};

/// How many blob lookups or transfers run at once.
const PARALLEL: usize = 16;

/// Pushes, lists and fetches project snapshots.
#[derive(Clone)]
pub struct FilesService {
    store: Store,
    artifacts: ArtifactService,
    authz: Authorizer,
}

fn blob_path(project_id: i64, sha256: &str) -> String {
    format!("projects/{project_id}/blobs/{}/{sha256}", &sha256[..2])
}

fn manifest_path(project_id: i64, digest: &str) -> String {
    format!("projects/{project_id}/snapshots/{digest}.json")
}

fn parse_store_path(path: &str) -> ServiceResult<ArtifactPath> {
    ArtifactPath::parse(path).map_err(|error| ServiceError::internal(error.to_string()))
}

impl FilesService {
    /// Wraps the stores.
    pub fn new(store: Store, artifacts: ArtifactService) -> Self {
        Self { authz: Authorizer::new(store.clone()), store, artifacts }
    }

    async fn project(
        &self,
        context: &RequestContext,
        project: &str,
        access: Access,
    ) -> ServiceResult<Project> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project)
    }

    /// Which of `digests` the project does not hold yet.
    pub async fn missing_blobs(
        &self,
        context: &RequestContext,
        project: &str,
        digests: Vec<String>,
    ) -> ServiceResult<Vec<String>> {
        let project = self.project(context, project, Access::Write).await?;
        if let Some(bad) = digests.iter().find(|digest| !is_sha256_hex(digest)) {
            return Err(ServiceError::invalid(format!(
                "invalid sha256 '{bad}': use 64 lowercase hex digits"
            )));
        }
        let store = self.artifacts.store();
        let checks = futures::stream::iter(digests.into_iter().map(|digest| {
            let store = store.clone();
            let path = blob_path(project.id, &digest);
            async move {
                let exists = store.exists(&parse_store_path(&path)?).await?;
                Ok::<_, ServiceError>((!exists).then_some(digest))
            }
        }))
        .buffered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await?;
        let mut missing: Vec<String> = checks.into_iter().flatten().collect();
        missing.dedup();
        Ok(missing)
    }

    /// Stores one blob, refusing a body whose SHA-256 is not `sha256`.
    pub async fn put_blob<S, E>(
        &self,
        context: &RequestContext,
        project: &str,
        sha256: &str,
        body: S,
    ) -> ServiceResult<u64>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let project = self.project(context, project, Access::Write).await?;
        if !is_sha256_hex(sha256) {
            return Err(ServiceError::invalid(format!(
                "invalid sha256 '{sha256}': use 64 lowercase hex digits"
            )));
        }
        let path = parse_store_path(&blob_path(project.id, sha256))?;
        let outcome = self.artifacts.store().put_stream_checked(&path, body, Some(sha256)).await?;
        Ok(outcome.size)
    }

    /// Records a snapshot of `files`, every blob of which must be stored already.
    pub async fn create_snapshot(
        &self,
        context: &RequestContext,
        project: &str,
        files: Vec<SnapshotFile>,
        message: &str,
    ) -> ServiceResult<Snapshot> {
        let project = self.project(context, project, Access::Write).await?;
        if message.len() > 5000 {
            return Err(ServiceError::invalid("a snapshot message has at most 5000 characters"));
        }
        let manifest = Manifest::parse(files)?;
        self.verify_blobs(project.id, &manifest).await?;
        let previous = self.store.list_snapshots(project.id, 1).await?.pop();
        let new_bytes = self
            .new_bytes(
                project.id,
                previous.as_ref().map(|snapshot| snapshot.digest.as_str()),
                &manifest,
            )
            .await?;
        let digest = self.write_manifest(project.id, &manifest).await?;
        let count = i64::try_from(manifest.files.len()).unwrap_or(i64::MAX);
        let total = i64::try_from(manifest.total_bytes()).unwrap_or(i64::MAX);
        let snapshot = NewSnapshot {
            project_id: project.id,
            digest: &digest,
            message,
            file_count: count,
            total_bytes: total,
            new_bytes: i64::try_from(new_bytes).unwrap_or(i64::MAX),
        };
        Ok(self.store.create_snapshot(context, &snapshot).await?)
    }

    /// Checks that every file of `manifest` is stored with its announced size: a snapshot or
    /// dataset version never names bytes that are not there.
    pub(crate) async fn verify_blobs(
        &self,
        project_id: i64,
        manifest: &Manifest,
    ) -> ServiceResult<()> {
        let store = self.artifacts.store();
        let checks: Vec<(String, String, u64)> = manifest
            .files
            .iter()
            .map(|file| (file.path.clone(), file.sha256.clone(), file.size))
            .collect();
        let sizes = futures::stream::iter(checks.into_iter().map(|(path, sha256, announced)| {
            let store = store.clone();
            let blob = blob_path(project_id, &sha256);
            async move {
                let size = match store.size(&parse_store_path(&blob)?).await {
                    Ok(size) => size,
                    Err(error) if error.kind() == cairn_artifacts::ArtifactErrorKind::NotFound => {
                        return Err(ServiceError::precondition(format!(
                            "file '{path}' (sha256 {sha256}) was not uploaded: push its blob first"
                        )));
                    }
                    Err(error) => return Err(error.into()),
                };
                if size != announced {
                    return Err(ServiceError::invalid(format!(
                        "file '{path}' is {size} bytes, not the {announced} announced"
                    )));
                }
                Ok(())
            }
        }))
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await;
        sizes?;
        Ok(())
    }

    /// Stores a manifest where snapshots and dataset versions keep theirs.
    pub(crate) async fn write_manifest(
        &self,
        project_id: i64,
        manifest: &Manifest,
    ) -> ServiceResult<String> {
        let digest = manifest.digest();
        self.artifacts
            .write_internal(
                &manifest_path(project_id, &digest),
                manifest.canonical_json().into_bytes(),
            )
            .await?;
        Ok(digest)
    }

    /// Bytes of `manifest` whose contents `previous` (a manifest digest) does not hold.
    pub(crate) async fn new_bytes(
        &self,
        project_id: i64,
        previous: Option<&str>,
        manifest: &Manifest,
    ) -> ServiceResult<u64> {
        let Some(previous) = previous else { return Ok(manifest.total_bytes()) };
        let known = self.manifest(project_id, previous).await?;
        let known: std::collections::HashSet<&str> =
            known.files.iter().map(|file| file.sha256.as_str()).collect();
        Ok(manifest
            .files
            .iter()
            .filter(|file| !known.contains(file.sha256.as_str()))
            .map(|file| file.size)
            .sum())
    }

    /// The store path of a project's blob (for table readers).
    pub(crate) fn blob_store_path(project_id: i64, sha256: &str) -> String {
        blob_path(project_id, sha256)
    }

    /// A project's snapshots, newest first.
    pub async fn list_snapshots(
        &self,
        context: &RequestContext,
        project: &str,
        limit: i64,
    ) -> ServiceResult<Vec<Snapshot>> {
        let project = self.project(context, project, Access::Read).await?;
        Ok(self.store.list_snapshots(project.id, limit.clamp(1, 1000)).await?)
    }

    /// One snapshot (a digest or unique prefix; absent: the newest) with its manifest.
    pub async fn snapshot(
        &self,
        context: &RequestContext,
        project: &str,
        digest: Option<&str>,
    ) -> ServiceResult<(Snapshot, Manifest)> {
        let project = self.project(context, project, Access::Read).await?;
        if let Some(prefix) = digest
            && (prefix.len() < 8
                || prefix.len() > 64
                || !prefix.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ServiceError::invalid(format!(
                "invalid snapshot '{prefix}': use a digest or a prefix of at least 8 hex digits"
            )));
        }
        let snapshot = self.store.find_snapshot(project.id, digest).await?;
        let manifest = self.manifest(project.id, &snapshot.digest).await?;
        Ok((snapshot, manifest))
    }

    /// Opens one blob of a project for download.
    pub async fn blob(
        &self,
        context: &RequestContext,
        project: &str,
        sha256: &str,
    ) -> ServiceResult<cairn_artifacts::GetOutcome> {
        let project = self.project(context, project, Access::Read).await?;
        if !is_sha256_hex(sha256) {
            return Err(ServiceError::invalid(format!("invalid sha256 '{sha256}'")));
        }
        let path = parse_store_path(&blob_path(project.id, sha256))?;
        Ok(self.artifacts.store().get(&path).await?)
    }

    /// Reads a stored manifest (Cairn itself: the caller was authorised).
    pub(crate) async fn manifest(&self, project_id: i64, digest: &str) -> ServiceResult<Manifest> {
        let bytes = self.artifacts.read_internal(&manifest_path(project_id, digest)).await?;
        serde_json::from_slice(&bytes).map_err(|error| {
            ServiceError::internal(format!("snapshot manifest {digest} is unreadable: {error}"))
        })
    }

    /// Writes a snapshot's files under `target` (created), checking each blob's digest.
    pub(crate) async fn materialize(
        &self,
        project_id: i64,
        digest: &str,
        target: &Path,
    ) -> ServiceResult<()> {
        let manifest = self.manifest(project_id, digest).await?;
        tokio::fs::create_dir_all(target).await.map_err(io_error)?;
        let store = self.artifacts.store();
        futures::stream::iter(manifest.files.into_iter().map(|file| {
            let store = store.clone();
            let target = target.to_path_buf();
            async move { write_blob(&store, project_id, &file, &target).await }
        }))
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }
}

fn io_error(error: std::io::Error) -> ServiceError {
    ServiceError::internal(format!("writing project files failed: {error}"))
}

async fn write_blob(
    store: &cairn_artifacts::ArtifactStore,
    project_id: i64,
    file: &SnapshotFile,
    target: &Path,
) -> ServiceResult<()> {
    use sha2::{Digest, Sha256};
    let destination = target.join(&file.path);
    if let Some(parent) = destination.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
    }
    let mut stream =
        store.get(&parse_store_path(&blob_path(project_id, &file.sha256))?).await?.stream;
    let mut out = tokio::fs::File::create(&destination).await.map_err(io_error)?;
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.try_next().await? {
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(io_error)?;
    }
    out.flush().await.map_err(io_error)?;
    if hex::encode(hasher.finalize()) != file.sha256 {
        return Err(ServiceError::internal(format!(
            "blob of '{}' does not match its digest",
            file.path
        )));
    }
    if file.executable {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&destination, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(io_error)?;
    }
    Ok(())
}
