//! The artifact store's error type and the kinds it maps onto, including the translation of
//! `object_store` failures (missing object, unreachable backend, anything else).

use std::error::Error as StdError;

/// A boxed error from outside this crate: an upload body's failure, say.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong with an artifact operation, independent of any wire format.
///
/// The variants are a subset of `cairn_domain::ErrorKind` with the same names, so the service
/// layer maps them one to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactErrorKind {
    /// The caller sent a malformed path, a failing body or an unusable store URL.
    InvalidArgument,
    /// No object exists at the requested path.
    NotFound,
    /// The storage backend did not answer; retrying later may work.
    Unavailable,
    /// An unexpected backend failure (a misconfiguration or a bug).
    Internal,
}

/// An error raised by [`ArtifactStore`](crate::ArtifactStore) or [`ArtifactPath`](crate::ArtifactPath).
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The artifact path failed validation. The text is MLflow's own message (hence the
    /// capital letter), so the MLflow adapter can pass it through unchanged.
    #[error("Invalid path")]
    InvalidPath {
        /// The rejected input, kept for logs only.
        path: String,
    },
    /// The artifact store URL or its options cannot be used.
    #[error("invalid artifact store configuration: {reason}")]
    InvalidConfig {
        /// Why the configuration was refused.
        reason: String,
    },
    /// No object exists at the path.
    #[error("artifact not found: {path}")]
    NotFound {
        /// The path relative to the store root.
        path: String,
    },
    /// A file would sit where a directory is, or below another file. S3 allows both; a local
    /// store cannot.
    #[error("a file and a directory would share the path {path}")]
    PathConflict {
        /// The path relative to the store root.
        path: String,
    },
    /// The body's SHA-256 was not the one announced; nothing was stored.
    #[error("the content of {path} has sha256 {actual}, not the announced {expected}")]
    DigestMismatch {
        /// The path relative to the store root.
        path: String,
        /// The announced digest.
        expected: String,
        /// The body's digest.
        actual: String,
    },
    /// The upload body failed before it ended; nothing was stored.
    #[error("failed to read the upload body: {source}")]
    Body {
        /// The body stream's own error.
        source: BoxError,
    },
    /// The backend could not be reached or timed out.
    #[error("artifact store unavailable: {source}")]
    Unavailable {
        /// The underlying failure.
        source: BoxError,
    },
    /// Any other backend failure.
    #[error("artifact store failure: {source}")]
    Backend {
        /// The underlying `object_store` failure.
        source: object_store::Error,
    },
}

impl ArtifactError {
    /// Returns the kind of this error, which each surface maps to its own status codes.
    pub fn kind(&self) -> ArtifactErrorKind {
        match self {
            Self::InvalidPath { .. }
            | Self::InvalidConfig { .. }
            | Self::PathConflict { .. }
            | Self::DigestMismatch { .. }
            | Self::Body { .. } => ArtifactErrorKind::InvalidArgument,
            Self::NotFound { .. } => ArtifactErrorKind::NotFound,
            Self::Unavailable { .. } => ArtifactErrorKind::Unavailable,
            Self::Backend { .. } => ArtifactErrorKind::Internal,
        }
    }

    /// Builds the error for a path that failed validation.
    pub(crate) fn invalid_path(path: &str) -> Self {
        Self::InvalidPath { path: path.to_owned() }
    }

    /// Maps a failure to write or delete `path`, naming the artifact path rather than the
    /// backend's own location (for local files, an absolute server path).
    pub(crate) fn at(path: &str, error: object_store::Error) -> Self {
        Self::from(error).with_path(path)
    }

    /// Maps a failure to read `path`: a path that runs through a file is simply not found.
    pub(crate) fn reading(path: &str, error: object_store::Error) -> Self {
        match Self::at(path, error) {
            Self::PathConflict { path } => Self::NotFound { path },
            other => other,
        }
    }

    /// Names `path` in errors that carry one.
    pub(crate) fn with_path(self, path: &str) -> Self {
        match self {
            Self::NotFound { .. } => Self::NotFound { path: path.to_owned() },
            Self::PathConflict { .. } => Self::PathConflict { path: path.to_owned() },
            other => other,
        }
    }

    /// Builds the error for an unusable store URL or option.
    pub(crate) fn invalid_config(reason: impl Into<String>) -> Self {
        Self::InvalidConfig { reason: reason.into() }
    }
}

impl From<object_store::Error> for ArtifactError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { path, .. } => Self::NotFound { path },
            object_store::Error::InvalidPath { source } => {
                Self::InvalidPath { path: source.to_string() }
            }
            other if is_path_conflict(&other) => Self::PathConflict { path: String::new() },
            other if is_unavailable(&other) => Self::Unavailable { source: Box::new(other) },
            other => Self::Backend { source: other },
        }
    }
}

/// Whether a local-file failure came from a file standing where a directory must be, or the
/// reverse (`ENOTDIR`, `EISDIR`).
fn is_path_conflict(error: &object_store::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            return matches!(io.kind(), ErrorKind::NotADirectory | ErrorKind::IsADirectory);
        }
        current = cause.source();
    }
    false
}

/// Whether an `object_store` failure means the backend could not be reached: a refused
/// connection, a timeout or an interrupted request anywhere in the source chain.
fn is_unavailable(error: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};

    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(cause) = current {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && is_unavailable_io(io.kind())
        {
            return true;
        }
        current = cause.source();
    }
    false
}

/// Whether an I/O error kind means "the other side did not answer".
fn is_unavailable_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind;
    matches!(
        kind,
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
            | ErrorKind::TimedOut
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}

/// Turns the `std::io::Error` that `object_store`'s `AsyncWrite` adapter returns back into the
/// `object_store::Error` it wraps, so that it maps like any other backend failure.
pub(crate) fn from_io(error: std::io::Error) -> ArtifactError {
    let kind = error.kind();
    match error.into_inner() {
        Some(inner) => match inner.downcast::<object_store::Error>() {
            Ok(store_error) => ArtifactError::from(*store_error),
            Err(other) => io_failure(kind, other),
        },
        None => io_failure(kind, Box::new(std::io::Error::from(kind))),
    }
}

/// Wraps a plain I/O failure, as unavailable when the kind says the peer did not answer.
fn io_failure(kind: std::io::ErrorKind, source: BoxError) -> ArtifactError {
    if is_unavailable_io(kind) {
        return ArtifactError::Unavailable { source };
    }
    ArtifactError::Backend { source: object_store::Error::Generic { store: "io", source } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_not_found_maps_to_not_found() {
        let error = object_store::Error::NotFound { path: "a/b".into(), source: "gone".into() };
        let mapped = ArtifactError::from(error);
        assert_eq!(mapped.kind(), ArtifactErrorKind::NotFound);
    }

    #[test]
    fn connection_refused_maps_to_unavailable() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = object_store::Error::Generic { store: "S3", source: Box::new(io) };
        assert_eq!(ArtifactError::from(error).kind(), ArtifactErrorKind::Unavailable);
    }

    #[test]
    fn other_failures_map_to_internal() {
        let error = object_store::Error::Generic { store: "S3", source: "boom".into() };
        assert_eq!(ArtifactError::from(error).kind(), ArtifactErrorKind::Internal);
    }

    #[test]
    fn wrapped_io_errors_are_unwrapped() {
        let inner = object_store::Error::NotFound { path: "x".into(), source: "gone".into() };
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, inner);
        assert_eq!(from_io(io).kind(), ArtifactErrorKind::NotFound);
    }

    #[test]
    fn invalid_path_message_matches_mlflow() {
        let error = ArtifactError::invalid_path("../x");
        assert_eq!(error.to_string(), "Invalid path");
        assert_eq!(error.kind(), ArtifactErrorKind::InvalidArgument);
    }
}
