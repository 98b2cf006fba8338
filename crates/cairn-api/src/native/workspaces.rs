//! Workspaces over `/api/v1`: start, list, show, save (`sync`), stop and start again. JupyterLab
//! itself is served by the proxy at each workspace's `url`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::compute::Snapshot;
use cairn_domain::identity::Access;
use cairn_domain::workspaces::{Workspace, WorkspaceRequest};
use cairn_service::Services;
use cairn_service::workspaces::RestartOptions;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Path, Query, parse_json};
use crate::context::Caller;

/// A message for the snapshot a save or stop makes.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SaveBody {
    /// The snapshot's message (default `workspace <id>: saved`).
    #[serde(default)]
    message: Option<String>,
}

/// Options of starting a workspace again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartBody {
    /// Share it with the project's contributors and owners (or stop sharing); absent: as before.
    #[serde(default)]
    shared: Option<bool>,
    /// A new idle timeout in seconds; absent: as before.
    #[serde(default)]
    idle_timeout_s: Option<u64>,
}

/// What a save did.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAnswer {
    /// The new snapshot, or null when nothing changed since the last save.
    snapshot: Option<Snapshot>,
    /// The workspace now.
    workspace: Workspace,
}

/// Parses an optional JSON body (an empty body means the defaults).
fn optional<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(body)
}

/// Start a workspace: JupyterLab on the project's newest snapshot, in an approved environment
/// (JupyterLab is added when the environment does not name it), with the tier's CPU and memory.
/// It answers `starting`; poll until `running`, then open its `url`.
#[utoipa::path(post, path = "/projects/{project}/workspaces", tag = "workspaces",
    params(("project" = String, Path)), request_body = WorkspaceRequest,
    responses((status = CREATED, body = Workspace), (status = CONFLICT, body = ErrorBody)))]
pub async fn start(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Workspace>)> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let request: WorkspaceRequest = parse_json(&body)?;
    let workspace = services.workspaces.start(&context, &project, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(workspace)))
}

/// Paging of the workspace list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// At most this many (default 50, at most 500).
    limit: Option<i64>,
}

/// A project's workspaces, newest first.
#[utoipa::path(get, path = "/projects/{project}/workspaces", tag = "workspaces",
    params(("project" = String, Path), ListQuery), responses((status = OK, body = Vec<Workspace>)))]
pub async fn list(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<Vec<Workspace>>> {
    let limit = query.limit.unwrap_or(50);
    Ok(axum::Json(services.workspaces.list(&context, &project, limit).await?))
}

/// One workspace.
#[utoipa::path(get, path = "/projects/{project}/workspaces/{id}", tag = "workspaces",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = OK, body = Workspace), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
) -> ApiResult<axum::Json<Workspace>> {
    Ok(axum::Json(services.workspaces.get(&context, &project, id).await?))
}

/// Save the workspace's changed files as a new project snapshot (none when nothing changed).
/// Its owner, or the project's writers when it is shared.
#[utoipa::path(post, path = "/projects/{project}/workspaces/{id}/sync", tag = "workspaces",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = SaveBody,
    responses((status = OK, body = SyncAnswer), (status = CONFLICT, body = ErrorBody)))]
pub async fn sync(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
    body: Bytes,
) -> ApiResult<axum::Json<SyncAnswer>> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let save: SaveBody = optional(&body)?;
    let outcome = services.workspaces.sync(&context, &project, id, save.message.as_deref()).await?;
    Ok(axum::Json(SyncAnswer { snapshot: outcome.snapshot, workspace: outcome.workspace }))
}

/// Stop the workspace: its changed files are saved as a new snapshot — read after JupyterLab
/// stopped when local, just before it stops on Ray (if that fails the error is returned and the save is retried in the background until it
/// succeeds; the workspace is recorded stopped then).
#[utoipa::path(post, path = "/projects/{project}/workspaces/{id}/stop", tag = "workspaces",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = SaveBody,
    responses((status = OK, body = Workspace), (status = CONFLICT, body = ErrorBody)))]
pub async fn stop(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
    body: Bytes,
) -> ApiResult<axum::Json<Workspace>> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let save: SaveBody = optional(&body)?;
    let workspace =
        services.workspaces.stop(&context, &project, id, save.message.as_deref()).await?;
    Ok(axum::Json(workspace))
}

/// Start a stopped or failed workspace again, on the project's newest snapshot.
#[utoipa::path(post, path = "/projects/{project}/workspaces/{id}/start", tag = "workspaces",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = RestartBody,
    responses((status = OK, body = Workspace), (status = CONFLICT, body = ErrorBody)))]
pub async fn restart(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
    body: Bytes,
) -> ApiResult<axum::Json<Workspace>> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let body: RestartBody = optional(&body)?;
    let options = RestartOptions { shared: body.shared, idle_timeout_s: body.idle_timeout_s };
    Ok(axum::Json(services.workspaces.restart(&context, &project, id, &options).await?))
}
