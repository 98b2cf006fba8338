//! The closed set of error kinds every layer maps its failures onto, and the domain's own error.

/// What went wrong, independent of any wire format. Each surface maps a kind to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent something malformed or out of range.
    InvalidArgument,
    /// The addressed entity does not exist.
    NotFound,
    /// The entity to create exists already.
    AlreadyExists,
    /// The entity is in a state that forbids the operation (a deleted run, say).
    FailedPrecondition,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller may not do this.
    PermissionDenied,
    /// A quota or size limit was hit.
    ResourceExhausted,
    /// A backend is unreachable; retrying later may work.
    Unavailable,
    /// A bug or an unexpected backend failure.
    Internal,
}

/// An error raised by domain validation: a kind and a user-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// The message shown to the caller.
    pub message: String,
}

impl DomainError {
    /// Builds an `InvalidArgument` error with the given message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::InvalidArgument, message: message.into() }
    }

    /// Builds a `NotFound` error with the given message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::NotFound, message: message.into() }
    }

    /// Builds an `AlreadyExists` error with the given message.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::AlreadyExists, message: message.into() }
    }

    /// Builds a `FailedPrecondition` error with the given message.
    pub fn precondition(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::FailedPrecondition, message: message.into() }
    }
}
