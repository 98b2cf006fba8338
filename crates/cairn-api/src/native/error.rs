//! The native API's error body, `{"error": {"code", "message"}}`, with a status per kind.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_domain::ErrorKind;
use cairn_service::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every native API error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human-readable message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One of `invalid_argument`, `not_found`, `already_exists`, `failed_precondition`,
    /// `unauthenticated`, `permission_denied`, `resource_exhausted`, `unavailable`, `internal`.
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

/// A native API failure.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    /// An invalid-argument error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::InvalidArgument, message: message.into() }
    }

    /// A not-found error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::NotFound, message: message.into() }
    }
}

fn code_and_status(kind: ErrorKind) -> (&'static str, StatusCode) {
    match kind {
        ErrorKind::InvalidArgument => ("invalid_argument", StatusCode::BAD_REQUEST),
        ErrorKind::NotFound => ("not_found", StatusCode::NOT_FOUND),
        ErrorKind::AlreadyExists => ("already_exists", StatusCode::CONFLICT),
        ErrorKind::FailedPrecondition => ("failed_precondition", StatusCode::CONFLICT),
        ErrorKind::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
        ErrorKind::PermissionDenied => ("permission_denied", StatusCode::FORBIDDEN),
        ErrorKind::ResourceExhausted => ("resource_exhausted", StatusCode::TOO_MANY_REQUESTS),
        ErrorKind::Unavailable => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
        ErrorKind::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        if matches!(error.kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error.kind = ?error.kind, error.message = %error.message, "request failed");
            let message = if error.kind == ErrorKind::Internal {
                "internal error; see the server log for this request id"
            } else {
                "a backend is unavailable; retry later"
            };
            return Self { kind: error.kind, message: message.to_string() };
        }
        Self { kind: error.kind, message: error.message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = code_and_status(self.kind);
        (status, Json(ErrorBody { error: ErrorDetail { code, message: self.message } }))
            .into_response()
    }
}

/// The result type of native handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<cairn_domain::DomainError> for ApiError {
    fn from(error: cairn_domain::DomainError) -> Self {
        ServiceError::from(error).into()
    }
}
