//! Service failures: a kind and a message safe to show to the caller.

use cairn_domain::{DomainError, ErrorKind};

/// A failure of a service operation.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A message for the caller. Internal failures carry the detail for the log only.
    pub message: String,
}

impl ServiceError {
    /// An invalid-argument failure.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::InvalidArgument, message: message.into() }
    }

    /// A failed-precondition failure: the request is valid but the state does not allow it.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::FailedPrecondition, message: message.into() }
    }

    /// A not-found failure.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::NotFound, message: message.into() }
    }

    /// A dependency (a database, a store, an executor, JupyterLab) does not answer now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Unavailable, message: message.into() }
    }

    /// An internal failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Internal, message: message.into() }
    }
}

impl From<DomainError> for ServiceError {
    fn from(error: DomainError) -> Self {
        Self { kind: error.kind, message: error.message }
    }
}

impl From<cairn_store::StoreError> for ServiceError {
    fn from(error: cairn_store::StoreError) -> Self {
        Self { kind: error.kind(), message: error.to_string() }
    }
}

impl From<cairn_artifacts::ArtifactError> for ServiceError {
    fn from(error: cairn_artifacts::ArtifactError) -> Self {
        let kind = match error.kind() {
            cairn_artifacts::ArtifactErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            cairn_artifacts::ArtifactErrorKind::NotFound => ErrorKind::NotFound,
            cairn_artifacts::ArtifactErrorKind::Unavailable => ErrorKind::Unavailable,
            cairn_artifacts::ArtifactErrorKind::Internal => ErrorKind::Internal,
        };
        Self { kind, message: error.to_string() }
    }
}

/// The result type of service operations.
pub type ServiceResult<T> = Result<T, ServiceError>;
