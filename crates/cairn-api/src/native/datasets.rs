//! Datasets over `/api/v1`: versions pushed with the project blob protocol
//! (`/projects/{project}/files/…`), their files and table metadata, the jobs that used them,
//! retention and soft deletes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::compute::SnapshotFile;
use cairn_domain::datasets::{Dataset, DatasetVersion};
use cairn_domain::identity::Access;
use cairn_service::Services;
use cairn_service::compute::DatasetLineage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Path, parse_json};
use crate::context::Caller;

/// A project's datasets.
#[utoipa::path(get, path = "/projects/{project}/datasets", tag = "datasets", params(("project" = String, Path)),
    responses((status = OK, body = Vec<Dataset>)))]
pub async fn list(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
) -> ApiResult<axum::Json<Vec<Dataset>>> {
    Ok(axum::Json(services.datasets.list(&context, &project).await?))
}

/// A dataset with all its versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetView {
    dataset: Dataset,
    /// Newest first, deleted ones included (with who deleted them).
    versions: Vec<DatasetVersion>,
}

/// One dataset with every version.
#[utoipa::path(get, path = "/projects/{project}/datasets/{name}", tag = "datasets",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = OK, body = DatasetView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<DatasetView>> {
    let (dataset, versions) = services.datasets.get(&context, &project, &name).await?;
    Ok(axum::Json(DatasetView { dataset, versions }))
}

/// A dataset's settings.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DatasetSettings {
    /// What it holds.
    #[serde(default)]
    description: String,
    /// Keep only the newest N versions (older ones are deleted, audited); absent: keep all.
    keep_versions: Option<i64>,
}

/// Set a dataset's description and retention.
#[utoipa::path(put, path = "/projects/{project}/datasets/{name}", tag = "datasets",
    params(("project" = String, Path), ("name" = String, Path)), request_body = DatasetSettings,
    responses((status = OK, body = Dataset), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn configure(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<axum::Json<Dataset>> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let body: DatasetSettings = parse_json(&body)?;
    Ok(axum::Json(
        services
            .datasets
            .configure(&context, &project, &name, &body.description, body.keep_versions)
            .await?,
    ))
}

/// Delete a dataset and its versions (their records stay; audited).
#[utoipa::path(delete, path = "/projects/{project}/datasets/{name}", tag = "datasets",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.datasets.delete(&context, &project, &name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A version to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushBody {
    /// Every file: path, sha256, size (contents uploaded to `/projects/{project}/files/blobs/{sha256}`).
    files: Vec<SnapshotFile>,
    /// What changed.
    #[serde(default)]
    message: String,
}

/// Record a new version (the dataset is created on its first).
#[utoipa::path(post, path = "/projects/{project}/datasets/{name}/versions", tag = "datasets",
    params(("project" = String, Path), ("name" = String, Path)), request_body = PushBody,
    responses((status = CREATED, body = DatasetVersion), (status = CONFLICT, body = ErrorBody)))]
pub async fn push(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<DatasetVersion>)> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let body: PushBody = parse_json(&body)?;
    let version =
        services.datasets.push(&context, &project, &name, body.files, &body.message).await?;
    Ok((StatusCode::CREATED, axum::Json(version)))
}

/// A version with its files and the jobs that used it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    #[serde(flatten)]
    lineage: DatasetLineage,
    files: Vec<SnapshotFile>,
}

fn version_number(raw: &str) -> Result<Option<i64>, ApiError> {
    if raw == "latest" {
        return Ok(None);
    }
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::invalid(format!("invalid version '{raw}': a number or 'latest'")))
}

/// One live version (a number or `latest`) with its files, tables and the jobs that used it.
#[utoipa::path(get, path = "/projects/{project}/datasets/{name}/versions/{version}", tag = "datasets",
    params(("project" = String, Path), ("name" = String, Path), ("version" = String, Path)),
    responses((status = OK, body = VersionView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn version(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name, version)): Path<(String, String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    services.projects.authorize(&context, &project, Access::Read).await?;
    let (lineage, manifest) =
        services.datasets.version(&context, &project, &name, version_number(&version)?).await?;
    Ok(axum::Json(VersionView { lineage, files: manifest.files }))
}

/// Delete one version (its record stays; audited).
#[utoipa::path(delete, path = "/projects/{project}/datasets/{name}/versions/{version}", tag = "datasets",
    params(("project" = String, Path), ("name" = String, Path), ("version" = i64, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete_version(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name, version)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let version =
        version_number(&version)?.ok_or_else(|| ApiError::invalid("name the version to delete"))?;
    services.datasets.delete(&context, &project, &name, Some(version)).await?;
    Ok(StatusCode::NO_CONTENT)
}
