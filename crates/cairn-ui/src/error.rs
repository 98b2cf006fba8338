//! Errors of the pages. A handler returns a [`PageError`]; the session middleware, which knows
//! the visitor, renders it as the error page in the site's layout with the right status.
//! Internal failures are logged there once, with the request id; the page shows a generic
//! message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_domain::ErrorKind;
use cairn_service::ServiceError;

/// A failed page.
#[derive(Debug, Clone)]
pub struct PageError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What the page says (safe to show).
    pub message: String,
    /// The real cause of an internal failure, for the log only.
    pub internal: Option<String>,
}

/// The result of a page handler.
pub type PageResult<T = Response> = Result<T, PageError>;

/// The message shown for failures the visitor cannot act on.
const GENERIC: &str = "something went wrong on the server; the failure was logged";

impl PageError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), internal: None }
    }

    /// 400: the request cannot be served as asked.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 500 with a generic message; `cause` goes to the log.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: GENERIC.to_string(),
            internal: Some(cause.into()),
        }
    }

    /// The page's title for this status.
    pub fn title(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Please log in",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
            _ => "Server error",
        }
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> Self {
        let status = match error.kind {
            ErrorKind::InvalidArgument | ErrorKind::FailedPrecondition => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => return PageError::internal(error.message),
        };
        PageError::new(status, error.message)
    }
}

impl From<askama::Error> for PageError {
    fn from(error: askama::Error) -> Self {
        PageError::internal(format!("rendering a page failed: {error}"))
    }
}

impl IntoResponse for PageError {
    /// An empty response carrying the error; the session middleware renders the page.
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, self.message.clone()).into_response();
        response.extensions_mut().insert(self);
        response
    }
}
