//! Saving a workspace: its files (the directory JupyterLab serves, read on this replica,
//! keeping executable bits and dotfiles; symbolic links, `.ipynb_checkpoints` and the other
//! directories `cairn push` skips are left out) become a new project snapshot with a message
//! and an author, uploading only contents the project does not hold. Nothing is saved when the
//! files still match the snapshot the workspace started from or last saved.
//!
//! Datasets copied under `datasets/<name>/` are never saved; what the project itself held
//! there is kept as it was. A remote workspace's files (on a Ray node) are first read through
//! JupyterLab's contents API into the local mirror — only those whose size or modification
//! time changed — and saved from there; executable bits are the mirror's (the contents API
//! does not carry them), so new files are saved without one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{Manifest, Snapshot, SnapshotFile};
use cairn_domain::workspaces::{Workspace, sync_skips};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::{Live, WorkspaceService, jupyter};
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
    /// workspace's record of it (`trigger` says why: `sync`, `stop`, `idle`…). A remote
    /// workspace's files are read from JupyterLab first when `read_remote`. The caller holds
    /// `live.busy`.
    pub(super) async fn save(
        &self,
        live: &Live,
        author: &RequestContext,
        audit: &RequestContext,
        message: &str,
        trigger: &str,
        read_remote: bool,
    ) -> ServiceResult<Option<Snapshot>> {
        if live.remote && read_remote {
            self.pull_remote(live).await?;
        }
        let record = &live.record;
        let root = live.files_dir();
        let datasets = live.datasets.clone();
        let listed = tokio::task::spawn_blocking(move || collect(&root, &datasets))
            .await
            .map_err(|error| {
                ServiceError::internal(format!("reading workspace files failed: {error}"))
            })?
            .map_err(|error| {
                ServiceError::internal(format!("reading workspace files failed: {error}"))
            })?;
        let base = super::lock(&live.base).clone();
        let mut entries: Vec<SnapshotFile> = listed.iter().map(|(file, _)| file.clone()).collect();
        if let Some(base) = &base
            && !live.datasets.is_empty()
        {
            // What the project held where a dataset is mounted stays as it was.
            let held = self.jobs.files.manifest(record.project_id, base).await?;
            entries.extend(
                held.files.into_iter().filter(|file| under_datasets(&file.path, &live.datasets)),
            );
        }
        if base.is_none() && entries.is_empty() {
            return Ok(None);
        }
        let manifest = Manifest::parse(entries)?;
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

impl WorkspaceService {
    /// Brings the mirror up to date with a remote workspace's files: downloads those new or
    /// changed since last read, removes those deleted there.
    pub(super) async fn pull_remote(&self, live: &Live) -> ServiceResult<()> {
        let id = live.record.workspace.id;
        let datasets = live.datasets.clone();
        let skip = move |path: &str, is_dir: bool| {
            skipped(path, is_dir, &datasets) || cairn_exec::RAY_ADDED_FILES.contains(&path)
        };
        let unreadable = |error: String| {
            ServiceError::unavailable(format!(
                "reading workspace {id}'s files from JupyterLab failed: {error}"
            ))
        };
        let files = jupyter::list_files(&self.http, live.address, id, &live.token, &skip)
            .await
            .map_err(unreadable)?;
        let root = live.files_dir();
        let mut kept = HashSet::new();
        for file in files {
            if !safe_relative(&file.path) {
                tracing::warn!(workspace.id = id, path = %file.path, "skipping a file whose path is not a plain relative path");
                continue;
            }
            kept.insert(file.path.clone());
            let target = root.join(&file.path);
            let stamp = (file.size, file.modified.clone());
            let known = super::lock(&live.seen).get(&file.path) == Some(&stamp);
            if known && tokio::fs::metadata(&target).await.is_ok_and(|meta| meta.is_file()) {
                continue;
            }
            let bytes = jupyter::read_file(&self.http, live.address, id, &live.token, &file.path)
                .await
                .map_err(unreadable)?;
            write_mirrored(&root, &file.path, bytes).await.map_err(|error| {
                ServiceError::internal(format!(
                    "writing '{}' to the mirror failed: {error}",
                    file.path
                ))
            })?;
            super::lock(&live.seen).insert(file.path, stamp);
        }
        let datasets = live.datasets.clone();
        let mirror = root.clone();
        let present = tokio::task::spawn_blocking(move || collect_paths(&mirror, &datasets))
            .await
            .map_err(|error| ServiceError::internal(format!("reading the mirror failed: {error}")))?
            .map_err(|error| {
                ServiceError::internal(format!("reading the mirror failed: {error}"))
            })?;
        for path in present.into_iter().filter(|path| !kept.contains(path)) {
            let _ = tokio::fs::remove_file(root.join(&path)).await;
            super::lock(&live.seen).remove(&path);
        }
        Ok(())
    }
}

/// Whether a path from JupyterLab is plain and relative (no `..`, `.`, empty or absolute part).
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && path.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// Writes a downloaded file into the mirror, keeping the executable bit the mirror had for it.
async fn write_mirrored(root: &Path, relative: &str, bytes: Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let target = root.join(relative);
    if let Some(parent) = target.parent() {
        // A file where the workspace now has a folder (or the reverse) is replaced.
        let mut ancestor = parent;
        while ancestor != root {
            if tokio::fs::symlink_metadata(ancestor).await.is_ok_and(|meta| !meta.is_dir()) {
                tokio::fs::remove_file(ancestor).await?;
            }
            ancestor = ancestor.parent().unwrap_or(root);
        }
        tokio::fs::create_dir_all(parent).await?;
    }
    let mode = match tokio::fs::symlink_metadata(&target).await {
        Ok(meta) if meta.is_dir() => {
            tokio::fs::remove_dir_all(&target).await?;
            0o644
        }
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(_) => 0o644,
    };
    let temporary =
        target.with_file_name(format!(".cairn-download-{}", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode)).await?;
    tokio::fs::rename(&temporary, &target).await
}

/// Whether a save leaves out `path` (relative, `/`-separated): what `cairn push` skips, and
/// the datasets mounted under `datasets/<name>/`.
fn skipped(path: &str, is_dir: bool, datasets: &[String]) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    sync_skips(name, is_dir)
        || (is_dir
            && path
                .strip_prefix("datasets/")
                .is_some_and(|name| datasets.iter().any(|dataset| dataset == name)))
}

/// Whether `path` lies under a mounted dataset's directory.
fn under_datasets(path: &str, datasets: &[String]) -> bool {
    path.strip_prefix("datasets/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(name, _)| datasets.iter().any(|dataset| dataset == name))
}

/// The relative paths of the files under `root` a save considers.
fn collect_paths(root: &Path, datasets: &[String]) -> std::io::Result<Vec<String>> {
    let mut paths = Vec::new();
    walk(root, datasets, &mut |relative, _| {
        paths.push(relative);
        Ok(())
    })?;
    Ok(paths)
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
fn collect(root: &Path, datasets: &[String]) -> std::io::Result<Vec<(SnapshotFile, PathBuf)>> {
    let mut files = Vec::new();
    walk(root, datasets, &mut |relative, path| {
        files.push((hash_file(&path, relative)?, path));
        Ok(())
    })?;
    Ok(files)
}

/// Calls `visit` with each regular file under `root` a save considers (relative path, location).
fn walk(
    root: &Path,
    datasets: &[String],
    visit: &mut dyn FnMut(String, PathBuf) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(dir = %dir.display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            let relative = format!("{prefix}{name}");
            if kind.is_symlink()
                || skipped(&relative, kind.is_dir(), datasets)
                || name.starts_with(".cairn-download-")
            {
                continue;
            }
            if kind.is_dir() {
                pending.push((entry.path(), format!("{relative}/")));
            } else if kind.is_file() {
                visit(relative, entry.path())?;
            }
        }
    }
    Ok(())
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
        std::fs::create_dir_all(root.join("datasets/iris")).unwrap();
        std::fs::write(root.join("datasets/iris/rows.csv"), "a\n1\n").unwrap();
        let mut files: Vec<SnapshotFile> = collect(root, &["iris".to_string()])
            .unwrap()
            .into_iter()
            .map(|(file, _)| file)
            .collect();
        files.sort_by(|left, right| left.path.cmp(&right.path));
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(paths, [".env", "notebooks/a.ipynb", "run.sh"]);
        assert!(files[2].executable && !files[1].executable);
        assert_eq!(files[1].size, 2);
        assert_eq!(files[1].sha256, hex::encode(Sha256::digest(b"{}")));
        let all = collect(root, &[]).unwrap();
        assert!(all.iter().any(|(file, _)| file.path == "datasets/iris/rows.csv"));
    }

    #[test]
    fn remote_paths_must_stay_inside_and_datasets_are_recognised() {
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\b"] {
            assert!(!safe_relative(bad), "{bad}");
        }
        assert!(safe_relative("notebooks/a.ipynb") && safe_relative(".env"));
        let datasets = ["iris".to_string()];
        assert!(skipped("datasets/iris", true, &datasets));
        assert!(!skipped("datasets/iris", false, &datasets));
        assert!(!skipped("datasets/census", true, &datasets));
        assert!(skipped("a/__pycache__", true, &datasets));
        assert!(under_datasets("datasets/iris/rows.csv", &datasets));
        assert!(!under_datasets("datasets/iris", &datasets));
        assert!(!under_datasets("datasets/irises/rows.csv", &datasets));
    }

    #[tokio::test]
    async fn mirrored_writes_keep_modes_and_replace_files_by_folders() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("run.sh"), "old").unwrap();
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        write_mirrored(root, "run.sh", b"new".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(root.join("run.sh")).unwrap(), b"new");
        let mode = std::fs::metadata(root.join("run.sh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        std::fs::write(root.join("data"), "a file").unwrap();
        write_mirrored(root, "data/part.csv", b"x".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(root.join("data/part.csv")).unwrap(), b"x");
        assert_eq!(collect_paths(root, &[]).unwrap().len(), 2);
    }
}
