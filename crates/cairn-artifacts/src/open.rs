//! Turning an artifact store URL (`file:///dir`, a plain directory, or `s3://bucket/prefix`)
//! plus [`S3Options`] into a concrete `object_store` backend.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use url::Url;

use crate::error::ArtifactError;
use crate::local::LocalRoot;

/// Connection settings for `s3://` stores. Each `Some` value overrides the matching `AWS_*`
/// environment variable; `None` leaves the environment's value (or the SDK default) in place.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// The S3 endpoint for S3-compatible servers, e.g. `http://127.0.0.1:8333`; `None` means AWS.
    pub endpoint: Option<String>,
    /// The region; S3-compatible servers usually accept any (the default is `us-east-1`).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key. Never printed by `Debug`.
    pub secret_access_key: Option<String>,
    /// Permits plain-HTTP endpoints. Implied when `endpoint` starts with `http://`.
    pub allow_http: bool,
    /// Addresses buckets as `bucket.endpoint` instead of the default `endpoint/bucket`.
    pub virtual_hosted_style: bool,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .finish()
    }
}

/// Which kind of backend a store runs on, with what only that kind needs.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// A directory on this machine.
    Local(LocalRoot),
    /// An S3-compatible bucket, possibly under a key prefix.
    S3,
}

/// A freshly opened backend: the object store, its kind, and its normalised URL.
pub(crate) struct Opened {
    pub(crate) inner: Arc<dyn ObjectStore>,
    pub(crate) backend: Backend,
    pub(crate) root_url: String,
}

/// Opens the backend that `url` names.
pub(crate) fn open_backend(url: &str, s3: &S3Options) -> Result<Opened, ArtifactError> {
    if let Some(rest) = url.strip_prefix("s3://") {
        return open_s3(rest, s3);
    }
    if url.starts_with("file:") {
        let parsed = Url::parse(url)
            .map_err(|error| ArtifactError::invalid_config(format!("bad file url: {error}")))?;
        let dir = parsed.to_file_path().map_err(|()| {
            ArtifactError::invalid_config("a file url needs an absolute local path")
        })?;
        return open_local(&dir);
    }
    if url.is_empty() || url.contains("://") {
        return Err(ArtifactError::invalid_config(
            "the artifact store must be a directory, a file:// url or an s3://bucket/prefix url",
        ));
    }
    open_local(FsPath::new(url))
}

/// Opens (creating it if needed) a local directory store.
fn open_local(dir: &FsPath) -> Result<Opened, ArtifactError> {
    std::fs::create_dir_all(dir).map_err(|error| {
        ArtifactError::invalid_config(format!("cannot create {}: {error}", dir.display()))
    })?;
    let canonical: PathBuf = std::fs::canonicalize(dir).map_err(|error| {
        ArtifactError::invalid_config(format!("cannot resolve {}: {error}", dir.display()))
    })?;
    let store = LocalFileSystem::new_with_prefix(&canonical)
        .map_err(|error| ArtifactError::invalid_config(error.to_string()))?
        .with_automatic_cleanup(true);
    let root_url = Url::from_file_path(&canonical)
        .map(String::from)
        .map_err(|()| ArtifactError::invalid_config("the local root is not an absolute path"))?;
    Ok(Opened {
        inner: Arc::new(store),
        backend: Backend::Local(LocalRoot::new(canonical)),
        root_url,
    })
}

/// Opens `bucket[/prefix]` (the part of an `s3://` URL after the scheme).
fn open_s3(bucket_and_prefix: &str, options: &S3Options) -> Result<Opened, ArtifactError> {
    let trimmed = bucket_and_prefix.trim_end_matches('/');
    let (bucket, prefix) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if bucket.is_empty() {
        return Err(ArtifactError::invalid_config("an s3 url needs a bucket: s3://bucket/prefix"));
    }
    let prefix_path = Path::parse(prefix)
        .map_err(|error| ArtifactError::invalid_config(format!("bad s3 key prefix: {error}")))?;

    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(options.virtual_hosted_style);
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let plain_http = options.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
    if options.allow_http || plain_http {
        builder = builder.with_allow_http(true);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    if let Some(key_id) = &options.access_key_id {
        builder = builder.with_access_key_id(key_id);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    let s3 = builder
        .build()
        .map_err(|error| ArtifactError::invalid_config(format!("s3 store: {error}")))?;

    let inner: Arc<dyn ObjectStore> = if prefix_path.is_root() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix_path))
    };
    Ok(Opened { inner, backend: Backend::S3, root_url: format!("s3://{trimmed}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_and_plain_paths_open_local_stores() {
        let temp = tempfile::tempdir().expect("tempdir");
        let nested = temp.path().join("made/on/demand");
        let url = Url::from_file_path(&nested).expect("absolute").to_string();
        let opened = open_backend(&url, &S3Options::default()).expect("file url opens");
        assert!(nested.is_dir());
        assert!(matches!(opened.backend, Backend::Local(_)));
        assert!(opened.root_url.starts_with("file:///"), "{}", opened.root_url);

        let plain = temp.path().join("plain");
        let plain_text = plain.to_str().expect("utf-8 temp path");
        let opened = open_backend(plain_text, &S3Options::default()).expect("plain path opens");
        assert!(plain.is_dir());
        assert!(opened.root_url.ends_with("/plain"), "{}", opened.root_url);
    }

    #[test]
    fn s3_urls_keep_bucket_and_prefix() {
        let options = S3Options {
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key_id: Some("key".into()),
            secret_access_key: Some("secret".into()),
            ..S3Options::default()
        };
        let opened = open_backend("s3://bucket/some/prefix/", &options).expect("s3 url opens");
        assert!(matches!(opened.backend, Backend::S3));
        assert_eq!(opened.root_url, "s3://bucket/some/prefix");
        assert!(open_backend("s3://", &options).is_err());
        assert!(open_backend("s3://bucket/a//b", &options).is_err());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        for url in ["gs://bucket", "http://host/x", ""] {
            let error = open_backend(url, &S3Options::default()).err().expect(url);
            assert_eq!(error.kind(), crate::ArtifactErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let options =
            S3Options { secret_access_key: Some("hunter2".into()), ..S3Options::default() };
        assert!(!format!("{options:?}").contains("hunter2"));
    }
}
