//! Housekeeping that only the local-directory backend needs: removing directories left empty by
//! an aborted upload or a deletion, so that a local store lists exactly what S3 would (S3 has no
//! directories, only key prefixes).
//!
//! Everything here is best effort: a directory that is not empty, or that another request is
//! filling at the same moment, is simply left alone.

use std::path::{Path, PathBuf};

use crate::path::ArtifactPath;

/// Where a local store lives on disk.
#[derive(Debug, Clone)]
pub(crate) struct LocalRoot {
    dir: PathBuf,
}

impl LocalRoot {
    /// Wraps an existing, canonical directory.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Returns the directory itself.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the on-disk location of an artifact path.
    fn resolve(&self, path: &ArtifactPath) -> PathBuf {
        // Segments are validated (no `..`, no absolute parts), so this stays under the root.
        path.as_str().split('/').fold(self.dir.clone(), |dir, segment| dir.join(segment))
    }

    /// Whether `path` is an existing directory, which a file upload could not replace.
    pub(crate) async fn is_directory(&self, path: &ArtifactPath) -> bool {
        tokio::fs::metadata(self.resolve(path)).await.is_ok_and(|metadata| metadata.is_dir())
    }

    /// Removes the empty directories that lead to `path`, deepest first, stopping at the first
    /// one that is not empty and never touching the root.
    pub(crate) async fn prune_empty_parents(&self, path: &ArtifactPath) {
        let root = self.dir.clone();
        let target = self.resolve(path);
        let _ = tokio::task::spawn_blocking(move || remove_empty_ancestors(&root, &target)).await;
    }

    /// Removes every empty directory at or below `path`, then the empty ones above it.
    pub(crate) async fn prune_empty_tree(&self, path: &ArtifactPath) {
        let root = self.dir.clone();
        let target = self.resolve(path);
        let _ = tokio::task::spawn_blocking(move || {
            remove_empty_dirs_below(&target);
            remove_empty_ancestors(&root, &target);
        })
        .await;
    }
}

/// Removes `target`'s parent directories while they are empty, up to (excluding) `root`.
fn remove_empty_ancestors(root: &Path, target: &Path) {
    let mut current = target.parent();
    while let Some(dir) = current {
        if dir == root || !dir.starts_with(root) || std::fs::remove_dir(dir).is_err() {
            return;
        }
        current = dir.parent();
    }
}

/// Removes `dir` and the directories below it that hold no file, depth first. Symbolic links
/// are never followed.
fn remove_empty_dirs_below(dir: &Path) {
    let Ok(metadata) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                remove_empty_dirs_below(&entry.path());
            }
        }
    }
    // Fails, harmlessly, when a file remains.
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prunes_only_empty_directories_under_the_root() {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = LocalRoot::new(temp.path().to_path_buf());
        std::fs::create_dir_all(temp.path().join("a/b/c")).expect("mkdir");
        std::fs::create_dir_all(temp.path().join("a/keep")).expect("mkdir");
        std::fs::write(temp.path().join("a/keep/file"), b"x").expect("write");

        let path = ArtifactPath::parse("a/b/c/object").expect("valid");
        root.prune_empty_parents(&path).await;
        assert!(!temp.path().join("a/b").exists());
        assert!(temp.path().join("a/keep/file").exists());

        std::fs::create_dir_all(temp.path().join("t/x/y")).expect("mkdir");
        root.prune_empty_tree(&ArtifactPath::parse("t").expect("valid")).await;
        assert!(!temp.path().join("t").exists());
        assert!(temp.path().exists());
    }
}
