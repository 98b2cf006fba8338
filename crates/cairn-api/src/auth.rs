//! Authentication for every route of the MLflow and native surfaces: the middleware reads the
//! `Authorization` header (Bearer token, or Basic with a token or password), asks the identity
//! service who it is, and stores the resulting [`RequestContext`] in the request. Missing
//! credentials are refused when the server requires authentication; wrong credentials are
//! always refused. Secrets are never logged. Under `/workspaces/` only, a request without an
//! `Authorization` header may instead carry the web UI's session cookie (a browser opening
//! JupyterLab); the JSON APIs never accept the cookie, so a cross-site page cannot use it there.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_service::{Credentials as ServiceCredentials, ServiceError, Services};

use crate::REQUEST_ID_HEADER;
use crate::context::ProjectScope;

/// Why the header could not be read.
const MALFORMED: &str =
    "malformed Authorization header: use 'Bearer <token>' or 'Basic <base64 user:secret>'";

/// What a request authenticates with.
enum Credentials {
    /// The `Authorization` header.
    Header(ServiceCredentials),
    /// A live session of the web UI (workspace proxy only).
    Session(Box<cairn_domain::identity::Principal>),
}

/// The principal of the request's session cookie, if it names a live session.
async fn session_principal(
    services: &Services,
    headers: &HeaderMap,
) -> Result<Option<Box<cairn_domain::identity::Principal>>, ServiceError> {
    let Some(secret) = crate::browser::cookie(headers, crate::browser::SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(services.sessions.authenticate(secret).await?.map(|session| Box::new(session.principal)))
}

fn parse_authorization(headers: &HeaderMap) -> Result<Option<Credentials>, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| MALFORMED)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(MALFORMED)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Some(Credentials::Header(ServiceCredentials::Bearer(rest.to_string()))));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).map_err(|_| MALFORMED)?;
        let decoded = String::from_utf8(decoded).map_err(|_| MALFORMED)?;
        let (username, secret) = decoded.split_once(':').ok_or(MALFORMED)?;
        return Ok(Some(Credentials::Header(ServiceCredentials::Basic {
            username: username.to_string(),
            secret: secret.to_string(),
        })));
    }
    Err(MALFORMED)
}

/// Renders a refusal in the format of the surface the path belongs to.
fn refuse(path: &str, error: ServiceError) -> Response {
    let mut response = if path.starts_with("/api/v1") || path.starts_with("/workspaces/") {
        crate::native::ApiError::from(error).into_response()
    } else {
        crate::mlflow::MlflowError::from(error).into_response()
    };
    if response.status() == axum::http::StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"cairn\""));
    }
    response
}

fn unauthenticated(message: &str) -> ServiceError {
    ServiceError { kind: ErrorKind::Unauthenticated, message: message.to_string() }
}

/// The authentication middleware.
pub async fn authenticate(
    State(services): State<Services>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let mut credentials = parse_authorization(request.headers());
    if matches!(credentials, Ok(None)) && path.starts_with("/workspaces/") {
        match session_principal(&services, request.headers()).await {
            Ok(Some(principal)) => credentials = Ok(Some(Credentials::Session(principal))),
            Ok(None) => {}
            Err(error) => return refuse(&path, error),
        }
    }
    let context = match credentials {
        Err(message) => return refuse(&path, unauthenticated(message)),
        Ok(Some(Credentials::Session(principal))) => RequestContext::user(*principal, request_id),
        Ok(None) if services.auth_required => {
            return refuse(
                &path,
                unauthenticated(
                    "authentication required: send a token (MLFLOW_TRACKING_TOKEN) or user name and password",
                ),
            );
        }
        Ok(None) => RequestContext::anonymous(request_id),
        Ok(Some(Credentials::Header(credentials))) => {
            match services.identity.authenticate(&credentials).await {
                Ok(principal) => RequestContext::user(principal, request_id),
                Err(error) => return refuse(&path, error),
            }
        }
    };
    let mut context = context;
    context.project = request.extensions().get::<ProjectScope>().map(|scope| scope.0.clone());
    request.extensions_mut().insert(context);
    next.run(request).await
}
