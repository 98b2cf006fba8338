//! The caller of a request as the service layer sees it: who acts and under which request id.
//! The authentication middleware puts the context in the request; routes outside it (operator
//! endpoints) see an anonymous caller.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cairn_domain::audit::RequestContext;

use crate::REQUEST_ID_HEADER;

/// Extracts the [`RequestContext`] of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(context) = parts.extensions.get::<RequestContext>() {
            return Ok(Caller(context.clone()));
        }
        let request_id = parts
            .headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        Ok(Caller(RequestContext::anonymous(request_id)))
    }
}

/// The project named by a `/p/<project>/…` URL prefix, stripped from the path before routing.
#[derive(Debug, Clone)]
pub struct ProjectScope(pub String);

/// Strips a `/p/<project>` prefix from the request path and records it as the request's
/// [`ProjectScope`], so `MLFLOW_TRACKING_URI=http://host/p/churn` scopes every MLflow call.
pub fn scope_project(mut request: axum::extract::Request) -> axum::extract::Request {
    let Some(rest) = request.uri().path().strip_prefix("/p/") else { return request };
    let (project, remainder) = rest.split_once('/').unwrap_or((rest, ""));
    if project.is_empty() {
        return request;
    }
    let project = project.to_string();
    let path_and_query = match request.uri().query() {
        Some(query) => format!("/{remainder}?{query}"),
        None => format!("/{remainder}"),
    };
    let mut parts = request.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(parsed) => parts.path_and_query = Some(parsed),
        Err(_) => return request,
    }
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(ProjectScope(project));
    }
    request
}
