//! MLflow's error body (`{"error_code", "message"}`) and its status table. Internal failures
//! are logged once here with the request's span and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_domain::ErrorKind;
use cairn_service::ServiceError;

/// An error in MLflow's wire format.
#[derive(Debug)]
pub struct MlflowError {
    /// MLflow's error code name, e.g. `RESOURCE_DOES_NOT_EXIST`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl MlflowError {
    /// `INVALID_PARAMETER_VALUE` (400) with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { code: "INVALID_PARAMETER_VALUE", message: message.into() }
    }

    /// `RESOURCE_DOES_NOT_EXIST` (404) with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { code: "RESOURCE_DOES_NOT_EXIST", message: message.into() }
    }

    /// The HTTP status MLflow uses for this code.
    pub fn status(&self) -> StatusCode {
        match self.code {
            "RESOURCE_DOES_NOT_EXIST" | "ENDPOINT_NOT_FOUND" | "NOT_FOUND" => StatusCode::NOT_FOUND,
            "INVALID_PARAMETER_VALUE" | "RESOURCE_ALREADY_EXISTS" | "BAD_REQUEST" => {
                StatusCode::BAD_REQUEST
            }
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "PERMISSION_DENIED" => StatusCode::FORBIDDEN,
            "RESOURCE_EXHAUSTED" | "REQUEST_LIMIT_EXCEEDED" => StatusCode::TOO_MANY_REQUESTS,
            "TEMPORARILY_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            "NOT_IMPLEMENTED" => StatusCode::NOT_IMPLEMENTED,
            "UNSUPPORTED_MEDIA_TYPE" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ServiceError> for MlflowError {
    fn from(error: ServiceError) -> Self {
        let code = match error.kind {
            ErrorKind::InvalidArgument | ErrorKind::FailedPrecondition => "INVALID_PARAMETER_VALUE",
            ErrorKind::NotFound => "RESOURCE_DOES_NOT_EXIST",
            ErrorKind::AlreadyExists => "RESOURCE_ALREADY_EXISTS",
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorKind::Unavailable => "TEMPORARILY_UNAVAILABLE",
            ErrorKind::Internal => "INTERNAL_ERROR",
        };
        if matches!(error.kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error.kind = ?error.kind, error.message = %error.message, "request failed");
            let message = if error.kind == ErrorKind::Internal {
                "internal error; see the server log for this request id".to_string()
            } else {
                "a backend is unavailable; retry later".to_string()
            };
            return Self { code, message };
        }
        Self { code, message: error.message }
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error_code": self.code, "message": self.message });
        (self.status(), Json(body)).into_response()
    }
}

/// The result type of MLflow handlers.
pub type MlflowResult<T> = Result<T, MlflowError>;
