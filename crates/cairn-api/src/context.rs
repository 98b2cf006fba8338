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
