//! Saving a workspace: its files (the directory JupyterLab serves, read on this replica,
//! keeping executable bits and dotfiles; symbolic links, `.ipynb_checkpoints` and the other
//! directories `cairn push` skips are left out) become a new project snapshot with a message
//! and an author, uploading only contents the project does not hold. Nothing is saved when the
//! files still match the snapshot the workspace started from or last saved.

use std::path::{Path, PathBuf};

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{Manifest, Snapshot, SnapshotFile};
use cairn_domain::workspaces::{Workspace, sync_skips};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::{Live, WorkspaceService};
use crate::{ServiceError, ServiceResult};

/// How many blobs upload at once.
const PARALLEL_UPLOADS: usize = 8;

/// What a sync did.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// The new snapshot, or none when nothing changed.
    pub snapshot: Option<Snapshot>,
    /// The workspace now.
    pub workspace: Workspace,
}

impl WorkspaceService {
    /// Saves a live workspace's files as a snapshot authored by `author`; `audit` acts for the
    /// workspace's record of it (`trigger` says why: `sync`, `stop`, `idle`…). The caller holds
    /// `live.busy`.
    pub(super) async fn save(
        &self,
        live: &Live,
        author: &RequestContext,
        audit: &RequestContext,
        message: &str,
        trigger: &str,
    ) -> ServiceResult<Option<Snapshot>> {
        let record = &live.record;
        let root = live.files_dir();
        let listed = tokio::task::spawn_blocking(move || collect(&root))
            .await
            .map_err(|error| {
                ServiceError::internal(format!("reading workspace files failed: {error}"))
            })?
            .map_err(|error| {
                ServiceError::internal(format!("reading workspace files failed: {error}"))
            })?;
        let base = super::lock(&live.base).clone();
        if base.is_none() && listed.is_empty() {
            return Ok(None);
        }
        let manifest = Manifest::parse(listed.iter().map(|(file, _)| file.clone()).collect())?;
        let digest = manifest.digest();
        if base.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        let project = &record.workspace.project;
        let digests: Vec<String> = listed.iter().map(|(file, _)| file.sha256.clone()).collect();
        let missing = self.jobs.files.missing_blobs(author, project, digests).await?;
        let mut uploads = Vec::new();
        for (file, path) in listed.iter().filter(|(file, _)| missing.contains(&file.sha256)) {
            uploads.push(self.upload(author, project, file, path));
        }
        futures::stream::iter(uploads)
            .buffer_unordered(PARALLEL_UPLOADS)
            .try_collect::<Vec<()>>()
            .await?;
        let snapshot =
            self.jobs.files.create_snapshot(author, project, manifest.files, message).await?;
        self.store()
            .record_workspace_sync(audit, record.workspace.id, &snapshot.digest, trigger)
            .await?;
        *super::lock(&live.base) = Some(snapshot.digest.clone());
        tracing::info!(workspace.id = record.workspace.id, snapshot = %snapshot.digest, trigger, "workspace saved");
        Ok(Some(snapshot))
    }

    async fn upload(
        &self,
        author: &RequestContext,
        project: &str,
        file: &SnapshotFile,
        path: &Path,
    ) -> ServiceResult<()> {
        let opened = tokio::fs::File::open(path).await.map_err(|error| {
            ServiceError::internal(format!("reading '{}' failed: {error}", file.path))
        })?;
        let body = Box::pin(read_chunks(opened));
        match self.jobs.files.put_blob(author, project, &file.sha256, body).await {
            Ok(_) => Ok(()),
            Err(error) if error.kind == cairn_domain::ErrorKind::InvalidArgument => {
                Err(ServiceError::precondition(format!(
                    "file '{}' changed while it was being saved: save again",
                    file.path
                )))
            }
            Err(error) => Err(error),
        }
    }
}

/// A file's bytes as a stream of chunks.
fn read_chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buffer = vec![0_u8; 256 * 1024];
        let read = tokio::io::AsyncReadExt::read(&mut file, &mut buffer).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some((bytes::Bytes::from(buffer), file)))
    })
}

/// Lists and hashes the files under `root`: each with its relative path and location.
fn collect(root: &Path) -> std::io::Result<Vec<(SnapshotFile, PathBuf)>> {
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(dir = %dir.display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            if kind.is_symlink() || sync_skips(&name, kind.is_dir()) {
                continue;
            }
            let relative = format!("{prefix}{name}");
            if kind.is_dir() {
                pending.push((entry.path(), format!("{relative}/")));
            } else if kind.is_file() {
                files.push((hash_file(&entry.path(), relative)?, entry.path()));
            }
        }
    }
    Ok(files)
}

fn hash_file(path: &Path, relative: String) -> std::io::Result<SnapshotFile> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let mut file = std::fs::File::open(path)?;
    let executable = file.metadata()?.permissions().mode() & 0o111 != 0;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut size = 0_u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok(SnapshotFile { path: relative, sha256: hex::encode(hasher.finalize()), size, executable })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collecting_skips_checkpoints_caches_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("notebooks/.ipynb_checkpoints")).unwrap();
        std::fs::create_dir_all(root.join("__pycache__")).unwrap();
        std::fs::write(root.join("notebooks/a.ipynb"), "{}").unwrap();
        std::fs::write(root.join("notebooks/.ipynb_checkpoints/a-checkpoint.ipynb"), "{}").unwrap();
        std::fs::write(root.join("__pycache__/x.pyc"), "x").unwrap();
        std::fs::write(root.join(".env"), "A=1").unwrap();
        std::fs::write(root.join("run.sh"), "echo").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let mut files: Vec<SnapshotFile> =
            collect(root).unwrap().into_iter().map(|(file, _)| file).collect();
        files.sort_by(|left, right| left.path.cmp(&right.path));
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(paths, [".env", "notebooks/a.ipynb", "run.sh"]);
        assert!(files[2].executable && !files[1].executable);
        assert_eq!(files[1].size, 2);
        assert_eq!(files[1].sha256, hex::encode(Sha256::digest(b"{}")));
    }
}
