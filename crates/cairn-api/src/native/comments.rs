//! Comments over `/api/v1/projects/{project}/comments`: list (on one target or the whole
//! project), write (with `@mentions`), delete. Authorisation is the service's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::comments::{Comment, CommentTarget};
use cairn_domain::identity::Access;
use cairn_service::Services;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Path, Query, parse_json};
use crate::context::Caller;

/// Which comments to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `project`, `run:<run id>` or `model_version:<name>/<version>`; absent: every comment of
    /// the project.
    target: Option<String>,
    /// Only comments with a larger id (the last id of the previous page).
    after: Option<i64>,
    /// At most this many (1–500, default 100).
    limit: Option<i64>,
}

/// A comment to write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// What it annotates: `project`, `run:<run id>` or `model_version:<name>/<version>`.
    target: String,
    /// Plain text, 1–10,000 characters; `@name` mentions a user.
    body: String,
}

fn target(raw: &str) -> ApiResult<CommentTarget> {
    CommentTarget::parse(raw).map_err(|error| ApiError::invalid(error.message))
}

/// A project's comments, oldest first (its viewers and up).
#[utoipa::path(get, path = "/projects/{project}/comments", tag = "comments",
    params(("project" = String, Path), ListQuery),
    responses((status = OK, body = Vec<Comment>), (status = BAD_REQUEST, body = ErrorBody)))]
pub async fn list(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<Vec<Comment>>> {
    let on = query.target.as_deref().map(target).transpose()?;
    let comments = services
        .comments
        .list(&context, &project, on.as_ref(), query.after.unwrap_or(0), query.limit.unwrap_or(100))
        .await?;
    Ok(axum::Json(comments))
}

/// Write a comment (the project's contributors and owners); `@name` mentions are recorded for
/// existing users.
#[utoipa::path(post, path = "/projects/{project}/comments", tag = "comments",
    params(("project" = String, Path)), request_body = NewComment,
    responses((status = CREATED, body = Comment), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn add(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Comment>)> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let new: NewComment = parse_json(&body)?;
    let on = target(&new.target)?;
    let comment = services.comments.add(&context, &project, &on, &new.body).await?;
    Ok((StatusCode::CREATED, axum::Json(comment)))
}

/// Delete a comment: its author, or a project owner.
#[utoipa::path(delete, path = "/projects/{project}/comments/{id}", tag = "comments",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = NO_CONTENT), (status = FORBIDDEN, body = ErrorBody), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    services.comments.delete(&context, &project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
