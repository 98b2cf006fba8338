//! Store failures, each with an [`ErrorKind`]; database errors are classified here, once.

use cairn_domain::{DomainError, ErrorKind};

/// A failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule of the domain was broken (not found, already exists, invalid input…).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration could not be applied.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The migration's number.
        version: i64,
        /// What the database said.
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Classifies the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Domain(error) => error.kind,
            StoreError::Database(error) => database_kind(error),
            StoreError::Migration { .. } => ErrorKind::Internal,
        }
    }

    /// Returns true when a unique constraint was violated.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}

fn database_kind(error: &sqlx::Error) -> ErrorKind {
    match error {
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            ErrorKind::Unavailable
        }
        sqlx::Error::Database(db) if db.is_unique_violation() => ErrorKind::AlreadyExists,
        _ => ErrorKind::Internal,
    }
}

/// The result type of store operations.
pub type StoreResult<T> = Result<T, StoreError>;
