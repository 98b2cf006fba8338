//! Whole-store walks for backups: every object under the store's root with its size, and
//! whether the store holds anything at all.

use futures::stream::StreamExt;

use crate::error::ArtifactError;
use crate::store::ArtifactStore;

/// One object found by [`ArtifactStore::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// The object's key relative to the store root (`a/b/c.txt`).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

impl ArtifactStore {
    /// Lists every object under the root, at any depth, sorted by key. Keys are returned as
    /// stored; callers parse them with [`ArtifactPath::parse`](crate::ArtifactPath::parse)
    /// before reading.
    pub async fn walk(&self) -> Result<Vec<StoredObject>, ArtifactError> {
        let mut listing = self.inner.list(None);
        let mut objects = Vec::new();
        while let Some(next) = listing.next().await {
            let meta = next.map_err(listing_error)?;
            objects.push(StoredObject { key: meta.location.as_ref().to_owned(), size: meta.size });
        }
        objects.sort_by(|left, right| left.key.cmp(&right.key));
        Ok(objects)
    }

    /// Whether the store holds no object at all (one listing request).
    pub async fn is_empty(&self) -> Result<bool, ArtifactError> {
        match self.inner.list(None).next().await {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(error)) => Err(listing_error(error)),
        }
    }
}

/// A listing that finds nothing at the root means a missing bucket, not a missing object.
fn listing_error(error: object_store::Error) -> ArtifactError {
    match error {
        error @ object_store::Error::NotFound { .. } => {
            ArtifactError::Unavailable { source: Box::new(error) }
        }
        other => ArtifactError::from(other),
    }
}
