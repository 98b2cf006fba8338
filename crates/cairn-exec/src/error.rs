//! The executor's error type and its mapping onto the domain's error kinds.

use cairn_domain::ErrorKind;

/// A failure of an executor operation (not of the job itself: a job that fails is a
/// [`JobState`](crate::JobState), not an error).
///
/// Messages never contain the values of a job's environment variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The executor does not know the job (never submitted, cleaned up, or forgotten by a restart).
    #[error("job not found: {0}")]
    NotFound(String),
    /// The job or environment spec cannot be run as given.
    #[error("invalid job spec: {0}")]
    InvalidSpec(String),
    /// Building the job's Python environment failed.
    #[error("environment build failed: {message}")]
    EnvironmentBuild {
        /// What failed, in one line.
        message: String,
        /// The last lines of the build log (pip's error is usually there).
        log_tail: String,
    },
    /// The backend (the Ray head, say) is unreachable or not ready; retrying later may work.
    #[error("executor unavailable: {0}")]
    Unavailable(String),
    /// An unexpected failure: a bug, a full disk, an answer the executor does not understand.
    #[error("executor failure: {0}")]
    Internal(String),
}

impl ExecError {
    /// Returns the domain kind the service layer maps this error onto.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::InvalidSpec(_) => ErrorKind::InvalidArgument,
            Self::EnvironmentBuild { .. } => ErrorKind::FailedPrecondition,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Builds an `Internal` error from an I/O failure, saying what was being done.
    pub(crate) fn io(context: impl std::fmt::Display, error: std::io::Error) -> Self {
        Self::Internal(format!("{context}: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_variant() {
        assert_eq!(ExecError::NotFound("a".into()).kind(), ErrorKind::NotFound);
        assert_eq!(ExecError::InvalidSpec("a".into()).kind(), ErrorKind::InvalidArgument);
        let build = ExecError::EnvironmentBuild { message: "m".into(), log_tail: "t".into() };
        assert_eq!(build.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(ExecError::Unavailable("a".into()).kind(), ErrorKind::Unavailable);
        assert_eq!(ExecError::Internal("a".into()).kind(), ErrorKind::Internal);
        assert_eq!(build.to_string(), "environment build failed: m");
    }
}
