//! Jobs, schedules and secrets over `/api/v1`, all inside a project (user secrets under `/me`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use cairn_domain::compute::{
    Job, JobState, JobTemplate, MissedPolicy, Schedule, SecretInfo, SecretScope,
};
use cairn_domain::identity::Access;
use cairn_service::Services;
use cairn_service::compute::ScheduleRequest;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Path, Query, parse_json};
use crate::context::Caller;

/// Submit a job: the command runs on a project snapshot in an approved environment on a tier;
/// its run is created at once (status SCHEDULED) and linked.
#[utoipa::path(post, path = "/projects/{project}/jobs", tag = "compute", params(("project" = String, Path)),
    request_body = JobTemplate,
    responses((status = CREATED, body = Job), (status = CONFLICT, body = ErrorBody)))]
pub async fn submit(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let template: JobTemplate = parse_json(&body)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(services.jobs.submit(&context, &project, &template).await?),
    ))
}

/// Filters of the job list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct JobsQuery {
    /// Only jobs in this state.
    state: Option<String>,
    /// Only jobs with a smaller id (the next page).
    before: Option<i64>,
    /// At most this many (default 50, at most 500).
    limit: Option<i64>,
}

/// A project's jobs, newest first.
#[utoipa::path(get, path = "/projects/{project}/jobs", tag = "compute", params(("project" = String, Path), JobsQuery),
    responses((status = OK, body = Vec<Job>)))]
pub async fn list(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    Query(query): Query<JobsQuery>,
) -> ApiResult<axum::Json<Vec<Job>>> {
    services.projects.authorize(&context, &project, Access::Read).await?;
    let state = query.state.as_deref().map(JobState::parse).transpose()?;
    let limit = query.limit.unwrap_or(50);
    Ok(axum::Json(services.jobs.list(&context, &project, state, query.before, limit).await?))
}

/// One job.
#[utoipa::path(get, path = "/projects/{project}/jobs/{id}", tag = "compute",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = OK, body = Job), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(services.jobs.get(&context, &project, id).await?))
}

/// Cancel a job: a queued one at once, a running one is stopped (SIGTERM, then SIGKILL).
#[utoipa::path(post, path = "/projects/{project}/jobs/{id}/cancel", tag = "compute",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = OK, body = Job), (status = CONFLICT, body = ErrorBody)))]
pub async fn cancel(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(services.jobs.cancel(&context, &project, id).await?))
}

/// Where to read a log from.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogsQuery {
    /// Byte offset (default 0); pass the previous answer's `next_offset` to follow.
    offset: Option<u64>,
}

/// A piece of a job's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogView {
    /// The bytes, base64 (logs need not be UTF-8).
    data: String,
    /// Where the next read starts.
    next_offset: u64,
    /// Whether the job ended and this is the end of its log.
    complete: bool,
    /// The job's state now.
    state: JobState,
}

/// A job's log from an offset: live while it runs, saved once it ended.
#[utoipa::path(get, path = "/projects/{project}/jobs/{id}/logs", tag = "compute",
    params(("project" = String, Path), ("id" = i64, Path), LogsQuery),
    responses((status = OK, body = LogView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn logs(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, id)): Path<(String, i64)>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<axum::Json<LogView>> {
    let log = services.jobs.logs(&context, &project, id, query.offset.unwrap_or(0)).await?;
    Ok(axum::Json(LogView {
        data: base64::engine::general_purpose::STANDARD.encode(&log.bytes),
        next_offset: log.next_offset,
        complete: log.complete && log.state.is_terminal(),
        state: log.state,
    }))
}

/// Re-run the job that produced a run: same snapshot, environment revision and tier; the new
/// run is tagged `cairn.reproduces`.
#[utoipa::path(post, path = "/projects/{project}/runs/{run_id}/reproduce", tag = "compute",
    params(("project" = String, Path), ("run_id" = String, Path)),
    responses((status = CREATED, body = Job), (status = CONFLICT, body = ErrorBody)))]
pub async fn reproduce(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, run_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, axum::Json<Job>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(services.jobs.reproduce(&context, &project, &run_id).await?),
    ))
}

/// Where a run came from: the job, its snapshot, environment revision, tier and executor, the
/// dataset versions it read, and the runs that reproduce it.
#[utoipa::path(get, path = "/projects/{project}/runs/{run_id}/lineage", tag = "compute",
    params(("project" = String, Path), ("run_id" = String, Path)),
    responses((status = OK, body = cairn_service::compute::RunLineage), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn lineage(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, run_id)): Path<(String, String)>,
) -> ApiResult<axum::Json<cairn_service::compute::RunLineage>> {
    Ok(axum::Json(services.jobs.lineage(&context, &project, &run_id).await?))
}

/// A schedule's settings.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScheduleBody {
    /// Unique in the project (ignored on update: the path names it).
    #[serde(default)]
    name: Option<String>,
    /// Cron: five fields, six with seconds first, or `@hourly`-style nicknames.
    cron: String,
    /// IANA time zone (default `UTC`).
    #[serde(default)]
    timezone: Option<String>,
    /// What each firing runs.
    template: JobTemplate,
    /// `skip` (default) or `catch_up`.
    #[serde(default)]
    missed: Option<MissedPolicy>,
    /// Whether it fires (default true).
    #[serde(default)]
    enabled: Option<bool>,
}

impl ScheduleBody {
    fn request(self) -> ScheduleRequest {
        ScheduleRequest {
            cron: self.cron,
            timezone: self.timezone.unwrap_or_else(|| "UTC".into()),
            template: self.template,
            missed: self.missed.unwrap_or(MissedPolicy::Skip),
            enabled: self.enabled.unwrap_or(true),
        }
    }
}

/// A project's schedules.
#[utoipa::path(get, path = "/projects/{project}/schedules", tag = "compute", params(("project" = String, Path)),
    responses((status = OK, body = Vec<Schedule>)))]
pub async fn list_schedules(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
) -> ApiResult<axum::Json<Vec<Schedule>>> {
    Ok(axum::Json(services.jobs.schedules(&context, &project).await?))
}

/// Create a schedule; its firings run as the caller.
#[utoipa::path(post, path = "/projects/{project}/schedules", tag = "compute", params(("project" = String, Path)),
    request_body = ScheduleBody,
    responses((status = CREATED, body = Schedule), (status = BAD_REQUEST, body = ErrorBody),
        (status = CONFLICT, description = "The name is taken, or the template's environment or tier cannot run jobs", body = ErrorBody)))]
pub async fn create_schedule(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<Schedule>)> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let mut body: ScheduleBody = parse_json(&body)?;
    let name = body.name.take().ok_or_else(|| ApiError::invalid("a schedule needs a name"))?;
    let schedule =
        services.jobs.create_schedule(&context, &project, &name, &body.request()).await?;
    Ok((StatusCode::CREATED, axum::Json(schedule)))
}

/// A schedule with the jobs it fired.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    schedule: Schedule,
    /// The jobs it fired, newest first.
    history: Vec<Job>,
}

/// One schedule with its history.
#[utoipa::path(get, path = "/projects/{project}/schedules/{name}", tag = "compute",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = OK, body = ScheduleView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_schedule(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<ScheduleView>> {
    let (schedule, history) = services.jobs.schedule(&context, &project, &name, 50).await?;
    Ok(axum::Json(ScheduleView { schedule, history }))
}

/// Replace a schedule's settings.
#[utoipa::path(put, path = "/projects/{project}/schedules/{name}", tag = "compute",
    params(("project" = String, Path), ("name" = String, Path)), request_body = ScheduleBody,
    responses((status = OK, body = Schedule), (status = NOT_FOUND, body = ErrorBody),
        (status = CONFLICT, description = "The template's environment or tier cannot run jobs", body = ErrorBody)))]
pub async fn update_schedule(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<axum::Json<Schedule>> {
    services.projects.authorize(&context, &project, Access::Write).await?;
    let body: ScheduleBody = parse_json(&body)?;
    Ok(axum::Json(services.jobs.update_schedule(&context, &project, &name, &body.request()).await?))
}

/// Delete a schedule (its jobs stay on record).
#[utoipa::path(delete, path = "/projects/{project}/schedules/{name}", tag = "compute",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete_schedule(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.jobs.delete_schedule(&context, &project, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A secret's value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SecretBody {
    /// The value; never returned by any API.
    value: String,
}

/// A project's secrets (names only).
#[utoipa::path(get, path = "/projects/{project}/secrets", tag = "compute", params(("project" = String, Path)),
    responses((status = OK, body = Vec<SecretInfo>)))]
pub async fn list_project_secrets(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
) -> ApiResult<axum::Json<Vec<SecretInfo>>> {
    Ok(axum::Json(services.secrets.list(&context, &SecretScope::Project(project)).await?))
}

/// Set a project secret (owners); every job of the project gets it as an environment variable.
#[utoipa::path(put, path = "/projects/{project}/secrets/{name}", tag = "compute",
    params(("project" = String, Path), ("name" = String, Path)), request_body = SecretBody,
    responses((status = OK, body = SecretInfo), (status = BAD_REQUEST, body = ErrorBody)))]
pub async fn put_project_secret(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<axum::Json<SecretInfo>> {
    services.projects.authorize(&context, &project, Access::Manage).await?;
    let body: SecretBody = parse_json(&body)?;
    Ok(axum::Json(
        services.secrets.put(&context, &SecretScope::Project(project), &name, &body.value).await?,
    ))
}

/// Delete a project secret (owners).
#[utoipa::path(delete, path = "/projects/{project}/secrets/{name}", tag = "compute",
    params(("project" = String, Path), ("name" = String, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete_project_secret(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.secrets.delete(&context, &SecretScope::Project(project), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn own_scope(context: &cairn_domain::audit::RequestContext) -> Result<SecretScope, ApiError> {
    Ok(SecretScope::User(
        context.principal.as_ref().map(|principal| principal.username.clone()).ok_or_else(
            || {
                ApiError::invalid(
                    "user secrets need a signed-in user (the server runs without authentication)",
                )
            },
        )?,
    ))
}

/// My secrets (names only); every job I submit gets them.
#[utoipa::path(get, path = "/me/secrets", tag = "compute", responses((status = OK, body = Vec<SecretInfo>)))]
pub async fn list_my_secrets(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<SecretInfo>>> {
    let scope = own_scope(&context)?;
    Ok(axum::Json(services.secrets.list(&context, &scope).await?))
}

/// Set one of my secrets.
#[utoipa::path(put, path = "/me/secrets/{name}", tag = "compute", params(("name" = String, Path)),
    request_body = SecretBody, responses((status = OK, body = SecretInfo)))]
pub async fn put_my_secret(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<SecretInfo>> {
    let scope = own_scope(&context)?;
    let body: SecretBody = parse_json(&body)?;
    Ok(axum::Json(services.secrets.put(&context, &scope, &name, &body.value).await?))
}

/// Delete one of my secrets.
#[utoipa::path(delete, path = "/me/secrets/{name}", tag = "compute", params(("name" = String, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete_my_secret(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let scope = own_scope(&context)?;
    services.secrets.delete(&context, &scope, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
