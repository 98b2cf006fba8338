//! `ArtifactStore`: one concrete type over `Arc<dyn ObjectStore>` for local directories and
//! S3-compatible buckets. This file holds opening, reading, listing and deleting; uploads live
//! in `upload.rs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{ArtifactError, BoxError};
use crate::open::{Backend, S3Options, open_backend};
use crate::path::ArtifactPath;

/// How long [`ArtifactStore::check`] waits for the backend before calling it unavailable.
/// Without it a dead S3 endpoint would keep the probe in `object_store`'s retry loop for minutes.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The artifact store: where run artifacts, model files and datasets live.
///
/// Cheap to clone (the backend is shared). Paths are relative to the store's root, which is the
/// directory or the `s3://bucket/prefix` it was opened with.
#[derive(Clone)]
pub struct ArtifactStore {
    pub(crate) inner: Arc<dyn ObjectStore>,
    pub(crate) backend: Backend,
    root_url: String,
}

/// An object being read: its size and its bytes as a stream.
pub struct GetOutcome {
    /// The object's size in bytes.
    pub size: u64,
    /// The object's content, in backend-sized chunks.
    pub stream: BoxStream<'static, Result<Bytes, ArtifactError>>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// The entry's path relative to the store root, without a trailing `/`.
    pub path: String,
    /// Whether the entry is a directory (a key prefix) rather than a file.
    pub is_dir: bool,
    /// The file's size in bytes; `None` for directories.
    pub size: Option<u64>,
}

impl ArtifactStore {
    /// Opens the store that `url` names: `file:///abs/dir` or a plain directory path (created if
    /// missing), or `s3://bucket/prefix` configured from the `AWS_*` environment variables and
    /// then `s3`. Nothing is contacted yet; call [`check`](Self::check) for that.
    pub fn open(url: &str, s3: &S3Options) -> Result<ArtifactStore, ArtifactError> {
        let opened = open_backend(url, s3)?;
        Ok(Self { inner: opened.inner, backend: opened.backend, root_url: opened.root_url })
    }

    /// Returns the store's normalised root URL: `file:///abs/dir` or `s3://bucket/prefix`.
    pub fn root_url(&self) -> &str {
        &self.root_url
    }

    /// Opens the file at `path` for streaming. A missing file, or a path that names a
    /// directory, yields a `NotFound` error.
    pub async fn get(&self, path: &ArtifactPath) -> Result<GetOutcome, ArtifactError> {
        let result = self
            .inner
            .get(&path.to_object_path())
            .await
            .map_err(|error| ArtifactError::reading(path.as_str(), error))?;
        let size = result.meta.size;
        let stream = result.into_stream().map_err(ArtifactError::from).boxed();
        Ok(GetOutcome { size, stream })
    }

    /// The size in bytes of the file at `path`; `NotFound` when there is none.
    pub async fn size(&self, path: &ArtifactPath) -> Result<u64, ArtifactError> {
        let meta = self
            .inner
            .head(&path.to_object_path())
            .await
            .map_err(|error| ArtifactError::reading(path.as_str(), error))?;
        Ok(meta.size)
    }

    /// Reads the bytes `range` of the file at `path` (one ranged request on S3), e.g. a
    /// Parquet footer or one column chunk.
    pub async fn get_range(
        &self,
        path: &ArtifactPath,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, ArtifactError> {
        self.inner
            .get_range(&path.to_object_path(), range)
            .await
            .map_err(|error| ArtifactError::reading(path.as_str(), error))
    }

    /// Whether a file exists at `path` (a directory does not count).
    pub async fn exists(&self, path: &ArtifactPath) -> Result<bool, ArtifactError> {
        match self.inner.head(&path.to_object_path()).await {
            Ok(_) => Ok(true),
            Err(error) => match ArtifactError::reading(path.as_str(), error) {
                ArtifactError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    /// Lists one level of `dir` (`None` for the root): files and subdirectories, sorted by
    /// path. A directory that does not exist lists as empty; a missing bucket is `Unavailable`.
    /// When a key is both a file and a directory prefix (possible on S3), only the directory
    /// is listed.
    pub async fn list(
        &self,
        dir: Option<&ArtifactPath>,
    ) -> Result<Vec<ArtifactEntry>, ArtifactError> {
        let prefix = dir.map(ArtifactPath::to_object_path);
        let listing = match self.inner.list_with_delimiter(prefix.as_ref()).await {
            Ok(listing) => listing,
            // A missing directory lists as empty; only a missing bucket answers "not found".
            Err(error @ object_store::Error::NotFound { .. }) => {
                return Err(ArtifactError::Unavailable { source: Box::new(error) });
            }
            Err(error) => return Err(ArtifactError::from(error)),
        };
        let directories = listing.common_prefixes.into_iter().map(|location| ArtifactEntry {
            path: location.as_ref().to_owned(),
            is_dir: true,
            size: None,
        });
        let files = listing.objects.into_iter().map(|meta| ArtifactEntry {
            path: meta.location.as_ref().to_owned(),
            is_dir: false,
            size: Some(meta.size),
        });
        let own_path = prefix.as_ref().map(|p| p.as_ref().to_owned()).unwrap_or_default();
        let mut entries: Vec<ArtifactEntry> = directories
            .chain(files)
            // Some S3 servers echo a directory marker object for the prefix itself.
            .filter(|entry| !entry.path.is_empty() && entry.path != own_path)
            .collect();
        entries.sort_by(|left, right| left.path.cmp(&right.path));
        entries.dedup_by(|later, earlier| later.path == earlier.path);
        Ok(entries)
    }

    /// Deletes the file at `path`, or everything under `path` taken as a directory, or both.
    /// Deleting something that does not exist succeeds.
    pub async fn delete_prefix(&self, path: &ArtifactPath) -> Result<(), ArtifactError> {
        let location = path.to_object_path();
        let under: BoxStream<'static, object_store::Result<Path>> =
            self.inner.list(Some(&location)).map_ok(|meta| meta.location).boxed();
        let mut deleted = self.inner.delete_stream(under);
        while let Some(outcome) = deleted.next().await {
            match outcome {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(ArtifactError::at(path.as_str(), error)),
            }
        }
        drop(deleted);
        // A local directory is not an object, so only delete the path itself if it is a file.
        if self.exists(path).await? {
            match self.inner.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(ArtifactError::at(path.as_str(), error)),
            }
        }
        if let Backend::Local(root) = &self.backend {
            root.prune_empty_tree(path).await;
        }
        Ok(())
    }

    /// Proves that the backend answers: the local directory exists, or the first page of
    /// the bucket's listing (one request, whatever the bucket holds) comes back. Any failure,
    /// or no answer within [`CHECK_TIMEOUT`], is `Unavailable`.
    pub async fn check(&self) -> Result<(), ArtifactError> {
        let probe = async {
            if let Backend::Local(root) = &self.backend {
                let metadata = tokio::fs::metadata(root.dir()).await;
                if metadata.as_ref().is_ok_and(|m| m.is_dir()) {
                    return Ok(());
                }
                let reason = format!("{} is not a directory", root.dir().display());
                return Err(reason.into());
            }
            match self.inner.list(None).next().await {
                None | Some(Ok(_)) => Ok(()),
                Some(Err(error)) => Err(BoxError::from(error)),
            }
        };
        match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ArtifactError::Unavailable { source }),
            Err(elapsed) => Err(ArtifactError::Unavailable { source: Box::new(elapsed) }),
        }
    }
}

/// Shows the size only; the stream has nothing printable.
impl std::fmt::Debug for GetOutcome {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("GetOutcome").field("size", &self.size).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ArtifactStore").field("root_url", &self.root_url).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ArtifactErrorKind;

    #[tokio::test]
    async fn unreachable_s3_is_unavailable_within_the_timeout() {
        let options = S3Options {
            endpoint: Some("http://127.0.0.1:9".into()),
            access_key_id: Some("key".into()),
            secret_access_key: Some("secret".into()),
            ..S3Options::default()
        };
        let store = ArtifactStore::open("s3://bucket/prefix", &options).expect("opens lazily");
        let started = std::time::Instant::now();
        let error = store.check().await.expect_err("nothing listens on port 9");
        assert_eq!(error.kind(), ArtifactErrorKind::Unavailable);
        assert!(started.elapsed() < CHECK_TIMEOUT + Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_removed_local_root_is_unavailable() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("store");
        let store = ArtifactStore::open(dir.to_str().expect("utf-8"), &S3Options::default())
            .expect("opens");
        store.check().await.expect("fresh directory is ready");
        std::fs::remove_dir(&dir).expect("rmdir");
        let error = store.check().await.expect_err("missing directory");
        assert_eq!(error.kind(), ArtifactErrorKind::Unavailable);
    }
}
