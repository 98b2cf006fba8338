//! Compute catalogue and project files over `/api/v1`: environments (revisions, approval),
//! hardware tiers, quotas, and project snapshots (blob upload, missing-blob check, snapshot
//! create, list and manifest).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_domain::compute::{
    Environment, EnvironmentDefinition, EnvironmentRevision, HardwareTier, Manifest, Quota,
    QuotaScope, RevisionState, Snapshot, SnapshotFile, TierSpec,
};
use cairn_domain::identity::Access;
use cairn_service::Services;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ErrorBody};
use super::extract::{Path, Query, parse_json};
use crate::context::Caller;

/// A new environment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateEnvironmentBody {
    /// Unique name.
    name: String,
    /// What it is for.
    #[serde(default)]
    description: String,
    /// The first revision (a draft until approved).
    definition: EnvironmentDefinition,
}

/// Every environment with its revisions.
#[utoipa::path(get, path = "/environments", tag = "compute",
    responses((status = OK, body = Vec<Environment>)))]
pub async fn list_environments(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<Environment>>> {
    Ok(axum::Json(services.catalog.environments(&context).await?))
}

/// Create an environment (site admins); its first revision is a draft.
#[utoipa::path(post, path = "/environments", tag = "compute", request_body = CreateEnvironmentBody,
    responses((status = CREATED, body = Environment), (status = CONFLICT, body = ErrorBody)))]
pub async fn create_environment(
    State(services): State<Services>,
    Caller(context): Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Environment>)> {
    services.catalog.require_admin(&context)?;
    let body: CreateEnvironmentBody = parse_json(&body)?;
    let environment = services
        .catalog
        .create_environment(&context, &body.name, &body.description, &body.definition)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(environment)))
}

/// One environment.
#[utoipa::path(get, path = "/environments/{name}", tag = "compute", params(("name" = String, Path)),
    responses((status = OK, body = Environment), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_environment(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Environment>> {
    Ok(axum::Json(services.catalog.environment(&context, &name).await?))
}

/// Add a draft revision to an environment (site admins).
#[utoipa::path(post, path = "/environments/{name}/revisions", tag = "compute", params(("name" = String, Path)),
    request_body = EnvironmentDefinition,
    responses((status = CREATED, body = EnvironmentRevision), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn revise_environment(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<EnvironmentRevision>)> {
    services.catalog.require_admin(&context)?;
    let definition: EnvironmentDefinition = parse_json(&body)?;
    let revision = services.catalog.revise_environment(&context, &name, &definition).await?;
    Ok((StatusCode::CREATED, axum::Json(revision)))
}

/// A revision's new state.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevisionStateBody {
    /// The revision.
    revision: i64,
    /// `approved` or `deprecated`.
    state: RevisionState,
}

/// Approve or deprecate a revision (site admins). Only approved revisions run.
#[utoipa::path(post, path = "/environments/{name}/state", tag = "compute", params(("name" = String, Path)),
    request_body = RevisionStateBody,
    responses((status = OK, body = EnvironmentRevision), (status = CONFLICT, body = ErrorBody)))]
pub async fn set_revision_state(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<EnvironmentRevision>> {
    services.catalog.require_admin(&context)?;
    let body: RevisionStateBody = parse_json(&body)?;
    Ok(axum::Json(
        services.catalog.set_revision_state(&context, &name, body.revision, body.state).await?,
    ))
}

/// Every hardware tier.
#[utoipa::path(get, path = "/tiers", tag = "compute", responses((status = OK, body = Vec<HardwareTier>)))]
pub async fn list_tiers(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<HardwareTier>>> {
    Ok(axum::Json(services.catalog.tiers(&context).await?))
}

/// A tier to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutTierBody {
    /// What it grants.
    spec: TierSpec,
    /// Whether new jobs may use it (default true).
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

/// One tier.
#[utoipa::path(get, path = "/tiers/{name}", tag = "compute", params(("name" = String, Path)),
    responses((status = OK, body = HardwareTier), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_tier(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<HardwareTier>> {
    Ok(axum::Json(services.catalog.tier(&context, &name).await?))
}

/// Create or replace a tier (site admins).
#[utoipa::path(put, path = "/tiers/{name}", tag = "compute", params(("name" = String, Path)), request_body = PutTierBody,
    responses((status = OK, body = HardwareTier), (status = BAD_REQUEST, body = ErrorBody)))]
pub async fn put_tier(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<HardwareTier>> {
    services.catalog.require_admin(&context)?;
    let body: PutTierBody = parse_json(&body)?;
    Ok(axum::Json(services.catalog.put_tier(&context, &name, &body.spec, body.active).await?))
}

/// Every quota.
#[utoipa::path(get, path = "/quotas", tag = "compute", responses((status = OK, body = Vec<Quota>)))]
pub async fn list_quotas(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<Quota>>> {
    Ok(axum::Json(services.catalog.quotas(&context).await?))
}

/// A quota to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetQuotaBody {
    /// `user:NAME`, `team:NAME` or `project:NAME`.
    scope: String,
    /// Most concurrent jobs (absent: unlimited).
    max_jobs: Option<i64>,
    /// Most GPUs in use (absent: unlimited).
    max_gpus: Option<i64>,
}

/// Set a quota (site admins); both limits absent removes it.
#[utoipa::path(put, path = "/quotas", tag = "compute", request_body = SetQuotaBody,
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn set_quota(
    State(services): State<Services>,
    Caller(context): Caller,
    body: Bytes,
) -> ApiResult<StatusCode> {
    services.catalog.require_admin(&context)?;
    let body: SetQuotaBody = parse_json(&body)?;
    let quota = Quota {
        scope: QuotaScope::parse(&body.scope)?,
        max_jobs: body.max_jobs,
        max_gpus: body.max_gpus,
    };
    services.catalog.set_quota(&context, &quota).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Digests to check.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MissingBody {
    /// SHA-256 digests (lowercase hex).
    digests: Vec<String>,
}

/// The digests the project does not hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct MissingView {
    /// Those to upload.
    missing: Vec<String>,
}

/// Which of these file contents the project lacks (upload only those).
#[utoipa::path(post, path = "/projects/{project}/files/missing", tag = "compute", params(("project" = String, Path)),
    request_body = MissingBody, responses((status = OK, body = MissingView)))]
pub async fn missing_blobs(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<MissingView>> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let body: MissingBody = parse_json(&body)?;
    if body.digests.len() > cairn_domain::compute::MAX_SNAPSHOT_FILES {
        return Err(super::ApiError::invalid("at most 100000 digests per request"));
    }
    let missing = services.files.missing_blobs(&context, &project, body.digests).await?;
    Ok(axum::Json(MissingView { missing }))
}

/// Upload one file's content, named by its SHA-256 (refused if the body does not match).
#[utoipa::path(put, path = "/projects/{project}/files/blobs/{sha256}", tag = "compute",
    params(("project" = String, Path), ("sha256" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = NO_CONTENT), (status = BAD_REQUEST, body = ErrorBody)))]
pub async fn put_blob(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, sha256)): Path<(String, String)>,
    request: Request,
) -> ApiResult<StatusCode> {
    let stream = request.into_body().into_data_stream().map_err(std::io::Error::other);
    services.files.put_blob(&context, &project, &sha256, stream).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Download one file's content.
#[utoipa::path(get, path = "/projects/{project}/files/blobs/{sha256}", tag = "compute",
    params(("project" = String, Path), ("sha256" = String, Path)),
    responses((status = OK, content_type = "application/octet-stream"), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_blob(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, sha256)): Path<(String, String)>,
) -> ApiResult<Response> {
    let outcome = services.files.blob(&context, &project, &sha256).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, outcome.size.to_string()),
        ],
        Body::from_stream(outcome.stream),
    )
        .into_response())
}

/// A snapshot to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSnapshotBody {
    /// Every file: path, sha256, size, executable.
    files: Vec<SnapshotFile>,
    /// What changed.
    #[serde(default)]
    message: String,
}

/// Record a snapshot whose file contents were uploaded.
#[utoipa::path(post, path = "/projects/{project}/snapshots", tag = "compute", params(("project" = String, Path)),
    request_body = CreateSnapshotBody,
    responses((status = CREATED, body = Snapshot), (status = CONFLICT, body = ErrorBody)))]
pub async fn create_snapshot(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Snapshot>)> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let body: CreateSnapshotBody = parse_json(&body)?;
    let snapshot =
        services.files.create_snapshot(&context, &project, body.files, &body.message).await?;
    Ok((StatusCode::CREATED, axum::Json(snapshot)))
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LimitQuery {
    /// At most this many (default 50).
    limit: Option<i64>,
}

/// A project's snapshots, newest first.
#[utoipa::path(get, path = "/projects/{project}/snapshots", tag = "compute", params(("project" = String, Path), LimitQuery),
    responses((status = OK, body = Vec<Snapshot>)))]
pub async fn list_snapshots(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    Query(query): Query<LimitQuery>,
) -> ApiResult<axum::Json<Vec<Snapshot>>> {
    Ok(axum::Json(
        services.files.list_snapshots(&context, &project, query.limit.unwrap_or(50)).await?,
    ))
}

/// A snapshot with its files.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotView {
    snapshot: Snapshot,
    files: Vec<SnapshotFile>,
}

/// One snapshot (a digest, a unique prefix of 8+ digits, or `latest`) with its files.
#[utoipa::path(get, path = "/projects/{project}/snapshots/{digest}", tag = "compute",
    params(("project" = String, Path), ("digest" = String, Path)),
    responses((status = OK, body = SnapshotView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_snapshot(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, digest)): Path<(String, String)>,
) -> ApiResult<axum::Json<SnapshotView>> {
    let wanted = (digest != "latest").then_some(digest.as_str());
    let (snapshot, Manifest { files }) =
        services.files.snapshot(&context, &project, wanted).await?;
    Ok(axum::Json(SnapshotView { snapshot, files }))
}
