//! Artifact operations behind MLflow's artifact proxy: the proxy path is a key under the
//! configured artifact root (local directory or S3 prefix).

use bytes::Bytes;
use cairn_artifacts::{ArtifactEntry, ArtifactPath, ArtifactStore, GetOutcome, PutOutcome};
use cairn_domain::audit::{AuditEntry, RequestContext};
use cairn_domain::identity::Access;

use crate::Authorizer;
use cairn_store::Store;
use futures::Stream;

use crate::{ServiceError, ServiceResult};

/// One entry of a directory listing, relative to the listed directory's root.
pub type ArtifactListing = ArtifactEntry;

/// Uploads, downloads, lists and deletes artifacts.
#[derive(Clone)]
pub struct ArtifactService {
    store: ArtifactStore,
    metadata: Store,
    authz: Authorizer,
}

/// Parses a proxy path, answering MLflow's "Invalid path" for anything unsafe.
/// A path that decodes to a traversal (`%2E%2E`) is refused too, as MLflow does.
fn parse_path(raw: &str) -> ServiceResult<ArtifactPath> {
    let invalid = || ServiceError::invalid("Invalid path");
    if raw.contains('%') {
        let decoded =
            percent_encoding::percent_decode_str(raw).decode_utf8().map_err(|_| invalid())?;
        ArtifactPath::parse(&decoded).map_err(|_| invalid())?;
    }
    ArtifactPath::parse(raw).map_err(|_| invalid())
}

impl ArtifactService {
    /// Wraps an artifact store.
    pub fn new(store: ArtifactStore, metadata: Store) -> Self {
        Self { authz: Authorizer::new(metadata.clone()), store, metadata }
    }

    /// Streams an upload to `path`; nothing is visible until it completes.
    /// The upload is audited once it is complete (with its size and sha256).
    pub async fn upload<S, E>(
        &self,
        context: &RequestContext,
        path: &str,
        body: S,
    ) -> ServiceResult<PutOutcome>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::error::Error + Send + Sync + 'static,
    {
        let path = parse_path(path)?;
        self.authorize(context, Some(path.as_str()), Access::Write).await?;
        let outcome = self.store.put_stream(&path, body).await?;
        let details = serde_json::json!({"size": outcome.size, "sha256": outcome.sha256});
        let entry = AuditEntry {
            action: "artifact.put".into(),
            target: format!("artifact:{}", path.as_str()),
            details,
        };
        self.metadata.record_audit(context, entry).await?;
        Ok(outcome)
    }

    /// Opens a download of `path`.
    pub async fn download(
        &self,
        context: &RequestContext,
        path: &str,
    ) -> ServiceResult<GetOutcome> {
        let path = parse_path(path)?;
        self.authorize(context, Some(path.as_str()), Access::Read).await?;
        let outcome = self.store.get(&path).await.map_err(|error| {
            let mut mapped = ServiceError::from(error);
            if mapped.kind == cairn_domain::ErrorKind::NotFound {
                mapped.message = format!("No such artifact: '{}'", path.as_str());
            }
            mapped
        })?;
        // A download with credentials is a sensitive read: who fetched which file is recorded.
        if context.principal.is_some() {
            let entry = AuditEntry {
                action: "artifact.read".into(),
                target: format!("artifact:{}", path.as_str()),
                details: serde_json::json!({"size": outcome.size}),
            };
            self.metadata.record_audit(context, entry).await?;
        }
        Ok(outcome)
    }

    /// Lists one directory level; `None` or an empty path lists the root.
    pub async fn list(
        &self,
        context: &RequestContext,
        path: Option<&str>,
    ) -> ServiceResult<Vec<ArtifactListing>> {
        let path = match path.map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
            Some(raw) => Some(parse_path(raw)?),
            None => None,
        };
        self.authorize(context, path.as_ref().map(|path| path.as_str()), Access::Read).await?;
        Ok(self.store.list(path.as_ref()).await?)
    }

    /// Deletes a file or a whole directory.
    pub async fn delete(&self, context: &RequestContext, path: &str) -> ServiceResult<()> {
        let path = parse_path(path)?;
        self.authorize(context, Some(path.as_str()), Access::Write).await?;
        self.store.delete_prefix(&path).await?;
        let entry = AuditEntry {
            action: "artifact.delete".into(),
            target: format!("artifact:{}", path.as_str()),
            details: serde_json::json!({}),
        };
        Ok(self.metadata.record_audit(context, entry).await?)
    }

    /// Requires `access` to the experiment a proxy path lives under (its first segment); paths
    /// outside any experiment (the root, say) are for site admins.
    async fn authorize(
        &self,
        context: &RequestContext,
        path: Option<&str>,
        access: Access,
    ) -> ServiceResult<()> {
        let first = path.and_then(|path| path.split('/').find(|segment| !segment.is_empty()));
        match first.map(str::parse::<i64>) {
            Some(Ok(experiment_id)) => {
                self.authz.require_experiment(context, experiment_id, access).await
            }
            _ => self.authz.require_admin(context),
        }
    }

    /// Checks that `path` is safe and that the caller has `access` to it, without touching the
    /// store (for endpoints that refuse the transfer itself).
    pub async fn check_access(
        &self,
        context: &RequestContext,
        path: &str,
        access: Access,
    ) -> ServiceResult<()> {
        let path = parse_path(path)?;
        self.authorize(context, Some(path.as_str()), access).await
    }

    /// Checks that `path` is a safe relative artifact path, without touching the store.
    pub fn validate_path(&self, path: &str) -> ServiceResult<()> {
        parse_path(path).map(|_| ())
    }

    /// The underlying store, for Cairn's own writers (prediction capture).
    pub(crate) fn store(&self) -> ArtifactStore {
        self.store.clone()
    }

    /// The store-relative path of an artifact URI inside this store (`mlflow-artifacts:/…` or
    /// the store's own root URL followed by a path); `None` for a URI elsewhere.
    pub(crate) fn relative_path(&self, uri: &str) -> Option<String> {
        let root = self.store.root_url().trim_end_matches('/');
        uri.strip_prefix("mlflow-artifacts:")
            .map(|rest| rest.trim_start_matches('/'))
            .or_else(|| uri.strip_prefix(root).and_then(|rest| rest.strip_prefix('/')))
            .map(|relative| relative.trim_end_matches('/').to_string())
    }

    /// Lists one directory level for Cairn itself (no caller to authorise; the caller of the
    /// operation that needs it was authorised).
    pub(crate) async fn list_internal(&self, dir: &str) -> ServiceResult<Vec<ArtifactListing>> {
        let path = parse_path(dir)?;
        Ok(self.store.list(Some(&path)).await?)
    }

    /// The sha256 (hex) and size of a file, read as a stream (never whole in memory).
    pub(crate) async fn digest_internal(&self, path: &str) -> ServiceResult<(String, u64)> {
        use futures::TryStreamExt;
        use sha2::{Digest, Sha256};
        let path = parse_path(path)?;
        let mut stream = self.store.get(&path).await?.stream;
        let (mut hasher, mut size) = (Sha256::new(), 0_u64);
        while let Some(chunk) = stream.try_next().await? {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), size))
    }

    /// A table (Parquet or CSV) in the store, to read column by column.
    pub(crate) fn table(&self, path: &str) -> ServiceResult<crate::tables::TableSource> {
        crate::tables::TableSource::artifact(self.store.clone(), parse_path(path)?)
            .map_err(|error| ServiceError::invalid(error.to_string()))
    }

    /// A file in the store read as a table of `format`, whatever its name.
    pub(crate) fn table_as(
        &self,
        path: &str,
        format: crate::tables::TableFormat,
    ) -> ServiceResult<crate::tables::TableSource> {
        Ok(crate::tables::TableSource::artifact_as(self.store.clone(), parse_path(path)?, format))
    }

    /// Writes a whole file for Cairn itself (monitoring reports), durably, replacing any.
    pub(crate) async fn write_internal(&self, path: &str, bytes: Vec<u8>) -> ServiceResult<()> {
        let path = parse_path(path)?;
        let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
        self.store.put_stream(&path, body).await?;
        Ok(())
    }

    /// Reads a whole file for Cairn itself (model files to serve).
    pub(crate) async fn read_internal(&self, path: &str) -> ServiceResult<Vec<u8>> {
        use futures::TryStreamExt;
        let path = parse_path(path)?;
        let outcome = self.store.get(&path).await?;
        let mut bytes = Vec::with_capacity(usize::try_from(outcome.size).unwrap_or(0));
        let mut stream = outcome.stream;
        while let Some(chunk) = stream.try_next().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Reads at most `len` bytes from `offset` of a file for Cairn itself (saved job logs);
    /// empty at or past the end.
    pub(crate) async fn read_range_internal(
        &self,
        path: &str,
        offset: u64,
        len: u64,
    ) -> ServiceResult<Vec<u8>> {
        let path = parse_path(path)?;
        let size = self.store.size(&path).await?;
        if offset >= size {
            return Ok(Vec::new());
        }
        let end = size.min(offset.saturating_add(len));
        Ok(self.store.get_range(&path, offset..end).await?.to_vec())
    }

    /// Checks that the artifact backend answers.
    pub async fn check(&self) -> ServiceResult<()> {
        Ok(self.store.check().await?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::parse_path;

    /// Whether `text` is safe to hand to a store: relative, without an empty, `.` or `..`
    /// segment, without backslashes or control characters.
    fn is_safe(text: &str) -> bool {
        !text.is_empty()
            && !text.starts_with('/')
            && !text.contains('\\')
            && !text.chars().any(char::is_control)
            && text.split('/').all(|segment| !matches!(segment, "" | "." | ".."))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// A proxy path that is accepted is safe as written and once percent-decoded (the
        /// store must never see a traversal, encoded or not).
        #[test]
        fn accepted_proxy_paths_are_safe_decoded_or_not(
            pieces in prop::collection::vec(
                prop::sample::select(&[
                    "a", "..", ".", "%2e%2e", "%2E%2e", "%2e", "%2f", "%2F", "%5c", "%00", "%ff",
                    "%25", "%252e%252e", "%", "%e2%80%ae", "b%20c", "", "\\", "é",
                ][..]),
                1..7,
            ),
            separators in prop::collection::vec(prop::sample::select(&["/", "", "%2f"][..]), 7),
        ) {
            let raw: String = pieces.iter().zip(&separators).map(|(piece, gap)| format!("{piece}{gap}")).collect();
            if let Ok(path) = parse_path(&raw) {
                prop_assert!(is_safe(path.as_str()), "{raw:?} -> {path}");
                let decoded = percent_encoding::percent_decode_str(path.as_str()).decode_utf8_lossy();
                prop_assert!(is_safe(decoded.trim_end_matches('/')), "{raw:?} decodes to {decoded:?}");
            }
        }

        #[test]
        fn arbitrary_proxy_paths_never_panic(raw in any::<String>()) {
            let _ = parse_path(&raw);
        }
    }
}
