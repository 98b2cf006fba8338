//! `GET /api/v1/search`: one term across projects, experiments, runs, registered models,
//! datasets and comments the caller may read.

use axum::extract::State;
use cairn_domain::global_search::SearchHit;
use cairn_service::Services;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiResult;
use super::extract::Query;
use crate::context::Caller;

/// A search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// A case-sensitive name prefix; `key=value` also finds runs by tag, 32 hex digits a run
    /// by id; comments match a case-insensitive substring. Empty finds nothing.
    q: Option<String>,
    /// Hits per kind (1–50, default 10).
    limit: Option<i64>,
}

/// What a search found.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchAnswer {
    /// Hits by kind (projects, experiments, runs, models, datasets, comments), then name.
    hits: Vec<SearchHit>,
}

/// Search what I may read.
#[utoipa::path(get, path = "/search", tag = "search", params(SearchParams),
    responses((status = OK, body = SearchAnswer)))]
pub async fn search(
    State(services): State<Services>,
    Caller(context): Caller,
    Query(params): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchAnswer>> {
    let term = params.q.unwrap_or_default();
    let hits = services.search.search(&context, &term, params.limit.unwrap_or(10)).await?;
    Ok(axum::Json(SearchAnswer { hits }))
}
