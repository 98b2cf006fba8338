//! Streaming uploads: `ArtifactStore::put_stream` writes a body of any size in bounded memory,
//! hashes it on the way through, and publishes it atomically — a body that fails, or an upload
//! that is dropped halfway, leaves no object behind and leaves an existing one untouched.
//!
//! Bodies smaller than [`PART_SIZE`] are sent in one `put`; larger ones become a multipart
//! upload (S3) or a staged file renamed into place (local). At most [`MAX_PARTS_IN_FLIGHT`]
//! parts are in flight, so memory stays near `(MAX_PARTS_IN_FLIGHT + 1) * PART_SIZE`.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::buffered::BufWriter;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{ArtifactError, BoxError, from_io};
use crate::open::Backend;
use crate::path::ArtifactPath;
use crate::store::ArtifactStore;

/// The multipart part size, and the size below which a body is sent in a single request.
/// S3 requires at least 5 MiB for every part but the last.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// How many parts may be uploading at once.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;

/// What a completed upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The number of bytes stored.
    pub size: u64,
    /// The lowercase hex SHA-256 of the bytes stored.
    pub sha256: String,
}

impl ArtifactStore {
    /// Streams `body` to `path`, replacing any file already there, and returns its size and
    /// SHA-256.
    ///
    /// A local store refuses (`PathConflict`, kind `InvalidArgument`) a file where a directory
    /// is or below another file; S3 stores both.
    ///
    /// If `body` yields an error the upload is aborted and a `Body` error (kind
    /// `InvalidArgument`) is returned; no partial object becomes visible and an existing
    /// object at `path` stays as it was. If the returned future is dropped midway (a client
    /// disconnecting), the upload is aborted in the background with the same guarantee.
    pub async fn put_stream<S, E>(
        &self,
        path: &ArtifactPath,
        body: S,
    ) -> Result<PutOutcome, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<BoxError>,
    {
        self.put_stream_checked(path, body, None).await
    }

    /// Like [`put_stream`](Self::put_stream), but publishes the object only if the body's
    /// SHA-256 is `expected_sha256` (lowercase hex); otherwise the upload is aborted, nothing
    /// becomes visible, and a `DigestMismatch` error (kind `InvalidArgument`) is returned.
    /// Content-addressed writers use it so a path never holds bytes that are not its name.
    pub async fn put_stream_checked<S, E>(
        &self,
        path: &ArtifactPath,
        mut body: S,
        expected_sha256: Option<&str>,
    ) -> Result<PutOutcome, ArtifactError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: Into<BoxError>,
    {
        // A local upload onto a directory would fail only at the final rename, after the
        // whole body was staged; refuse it up front instead.
        if let Backend::Local(root) = &self.backend
            && root.is_directory(path).await
        {
            return Err(ArtifactError::PathConflict { path: path.to_string() });
        }
        let writer = BufWriter::with_capacity(self.inner.clone(), path.to_object_path(), PART_SIZE)
            .with_max_concurrency(MAX_PARTS_IN_FLIGHT);
        let mut upload = AbortOnDrop::new(writer, self.backend.clone(), path.clone());
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;

        while let Some(next) = body.next().await {
            let chunk = match next {
                Ok(chunk) => chunk,
                Err(error) => {
                    upload.abort().await;
                    return Err(ArtifactError::Body { source: error.into() });
                }
            };
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if let Err(error) = upload.writer().put(chunk).await {
                upload.abort().await;
                return Err(ArtifactError::at(path.as_str(), error));
            }
        }

        let sha256 = hex::encode(hasher.finalize());
        if let Some(expected) = expected_sha256
            && expected != sha256
        {
            upload.abort().await;
            return Err(ArtifactError::DigestMismatch {
                path: path.to_string(),
                expected: expected.to_string(),
                actual: sha256,
            });
        }
        upload.finish().await?;
        Ok(PutOutcome { size, sha256 })
    }
}

/// Owns an in-progress upload and aborts it unless it was finished or aborted explicitly, so
/// that dropping `put_stream`'s future never leaves parts or staging files behind.
struct AbortOnDrop {
    writer: Option<BufWriter>,
    backend: Backend,
    path: ArtifactPath,
}

impl AbortOnDrop {
    fn new(writer: BufWriter, backend: Backend, path: ArtifactPath) -> Self {
        Self { writer: Some(writer), backend, path }
    }

    /// Returns the writer.
    fn writer(&mut self) -> &mut BufWriter {
        // Invariant: only `finish`, `abort` (both consume the guard) and `drop` take the writer.
        self.writer.as_mut().expect("the writer stays in the guard until the guard is consumed")
    }

    /// Completes the upload, publishing the object.
    async fn finish(mut self) -> Result<(), ArtifactError> {
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        // `shutdown` sends the buffered body, or completes the multipart upload; on failure
        // `object_store` aborts the multipart upload itself.
        let outcome =
            writer.shutdown().await.map_err(|error| from_io(error).with_path(self.path.as_str()));
        if outcome.is_err() {
            cleanup_local(&self.backend, &self.path).await;
        }
        outcome
    }

    /// Aborts the upload and removes what it left behind.
    async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            abort_writer(writer, &self.backend, &self.path).await;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let backend = self.backend.clone();
        let path = self.path.clone();
        drop(runtime.spawn(async move { abort_writer(writer, &backend, &path).await }));
    }
}

/// Aborts `writer`'s upload (a no-op while it is still only buffering) and, for a local store,
/// removes the directories the staging file needed.
async fn abort_writer(mut writer: BufWriter, backend: &Backend, path: &ArtifactPath) {
    if let Err(error) = writer.abort().await {
        tracing::warn!(artifact.path = %path, error = %error, "failed to abort an artifact upload");
    }
    cleanup_local(backend, path).await;
}

/// Removes directories that a failed local upload created and left empty.
async fn cleanup_local(backend: &Backend, path: &ArtifactPath) {
    if let Backend::Local(root) = backend {
        root.prune_empty_parents(path).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::S3Options;

    fn assert_send<T: Send>(_: &T) {}

    /// Axum handlers need `Send` futures; a non-`Send` upload would only fail to compile there.
    #[test]
    fn store_futures_are_send() {
        let temp = tempfile::tempdir().expect("tempdir");
        let root = temp.path().to_str().expect("utf-8");
        let store = ArtifactStore::open(root, &S3Options::default()).expect("open");
        let path = ArtifactPath::parse("x").expect("valid");
        let body = futures::stream::iter(Vec::<Result<Bytes, std::io::Error>>::new());
        assert_send(&store.put_stream(&path, body));
        assert_send(&store.get(&path));
        assert_send(&store.list(None));
        assert_send(&store.delete_prefix(&path));
        assert_send(&store.check());
    }
}
