//! Extractors whose rejections come back in the native error format, never as axum's plain
//! text.

use axum::extract::{
    FromRequest, FromRequestParts, Json as AxumJson, Path as AxumPath, Query as AxumQuery, Request,
};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Query-string parameters, deserialised into `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AxumQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumQuery(value)| Query(value))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// Path parameters, deserialised into `T`: an id that is not a number, or a segment that is
/// not UTF-8 once decoded, is a 400 in the native format like any other malformed input.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AxumPath::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumPath(value)| Path(value))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// A JSON body, deserialised into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        AxumJson::<T>::from_request(request, state)
            .await
            .map(|AxumJson(value)| Json(value))
            .map_err(|rejection| ApiError::invalid(rejection.body_text()))
    }
}

/// Parses a JSON body that a handler read as bytes, so it could authorise the caller first: a
/// caller without access learns nothing from the body's validation.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::invalid(format!("invalid body: {error}")))
}
