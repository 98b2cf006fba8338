//! Monitoring over `/api/v1`: a deployment's monitor (set, show, remove), checks (run now,
//! list, show, report), ground truth, and alerts.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_domain::monitoring::{Alert, Check, MonitorSpec};
use cairn_service::Services;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::deployments::DeploymentView;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Path, Query, parse_json};
use crate::context::Caller;

/// A deployment's monitor as resolved at its current revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonitorView {
    deployment: String,
    revision: i64,
    /// The spec, with the features and the pinned reference filled in; null without a monitor.
    #[schema(value_type = Option<Object>)]
    monitor: Option<MonitorSpec>,
    /// When the next scheduled check is due (epoch ms).
    next_run_at: Option<i64>,
}

/// A deployment's monitor.
#[utoipa::path(get, path = "/deployments/{deployment}/monitor", tag = "monitoring", params(("deployment" = String, Path)),
    responses((status = OK, body = MonitorView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_monitor(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<MonitorView>> {
    let (deployment, next_run_at) = services.monitoring.monitor(&context, &name).await?;
    Ok(axum::Json(MonitorView {
        deployment: deployment.name,
        revision: deployment.revision,
        monitor: deployment.spec.monitor,
        next_run_at,
    }))
}

/// A monitor to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetMonitorBody {
    /// The monitor spec (features, reference, prediction, quality, drift_share, schedule,
    /// window, min_rows, alerts); see docs/MONITORING.md.
    #[schema(value_type = Object)]
    monitor: MonitorSpec,
    /// Fail if the deployment is no longer at this revision.
    expected_revision: Option<i64>,
}

/// Set a deployment's monitor: a new revision serving the same versions. The reference file
/// must exist and hold every feature; its digest is pinned.
#[utoipa::path(put, path = "/deployments/{deployment}/monitor", tag = "monitoring", params(("deployment" = String, Path)),
    request_body = SetMonitorBody,
    responses((status = OK, body = DeploymentView), (status = BAD_REQUEST, body = ErrorBody), (status = CONFLICT, body = ErrorBody)))]
pub async fn set_monitor(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<DeploymentView>> {
    services.monitoring.authorize_write(&context, &name).await?;
    let body: SetMonitorBody = parse_json(&body)?;
    let deployment = services
        .monitoring
        .set_monitor(&context, &name, Some(body.monitor), body.expected_revision)
        .await?;
    Ok(axum::Json(deployment.into()))
}

/// Remove a deployment's monitor (a new revision); its open alerts are closed.
#[utoipa::path(delete, path = "/deployments/{deployment}/monitor", tag = "monitoring", params(("deployment" = String, Path)),
    responses((status = OK, body = DeploymentView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete_monitor(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DeploymentView>> {
    Ok(axum::Json(services.monitoring.set_monitor(&context, &name, None, None).await?.into()))
}

/// Run a check now over the monitor's window (the schedule is not moved).
#[utoipa::path(post, path = "/deployments/{deployment}/checks", tag = "monitoring", params(("deployment" = String, Path)),
    responses((status = CREATED, body = Object), (status = CONFLICT, body = ErrorBody)))]
pub async fn run_check(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<Check>)> {
    Ok((StatusCode::CREATED, axum::Json(services.monitoring.check_now(&context, &name).await?)))
}

/// Paging of checks.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ChecksQuery {
    /// At most this many (default 20, at most 200).
    limit: Option<i64>,
    /// Only checks with a smaller id (the next page).
    before: Option<i64>,
}

/// A deployment's checks, newest first.
#[utoipa::path(get, path = "/deployments/{deployment}/checks", tag = "monitoring", params(("deployment" = String, Path), ChecksQuery),
    responses((status = OK, body = Vec<Object>)))]
pub async fn list_checks(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    Query(query): Query<ChecksQuery>,
) -> ApiResult<axum::Json<Vec<Check>>> {
    let limit = query.limit.unwrap_or(20);
    Ok(axum::Json(services.monitoring.checks(&context, &name, limit, query.before).await?))
}

/// One check with its per-feature statistics, verdicts and histograms.
#[utoipa::path(get, path = "/deployments/{deployment}/checks/{id}", tag = "monitoring", params(("deployment" = String, Path), ("id" = i64, Path)),
    responses((status = OK, body = Object), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get_check(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, id)): Path<(String, i64)>,
) -> ApiResult<axum::Json<Check>> {
    Ok(axum::Json(services.monitoring.check(&context, &name, id).await?))
}

/// The report's format.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportQuery {
    /// `html` (default) or `json`.
    format: Option<String>,
}

/// A check's report: a self-contained HTML page (histograms as SVG), or the same as JSON.
#[utoipa::path(get, path = "/deployments/{deployment}/checks/{id}/report", tag = "monitoring", params(("deployment" = String, Path), ("id" = i64, Path), ReportQuery),
    responses((status = OK, content_type = "text/html"), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn report(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((name, id)): Path<(String, i64)>,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Response> {
    let json = match query.format.as_deref() {
        None | Some("html") => false,
        Some("json") => true,
        Some(other) => {
            return Err(super::ApiError::invalid(format!(
                "format must be html or json, not '{other}'"
            )));
        }
    };
    let bytes = services.monitoring.report(&context, &name, id, json).await?;
    let content_type = if json { "application/json" } else { "text/html; charset=utf-8" };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            // The report is inert: no scripts, nothing loaded from elsewhere.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
        ],
        bytes,
    )
        .into_response())
}

/// How many ground-truth rows were stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroundTruthAnswer {
    rows: u64,
}

/// Post ground truth for earlier predictions, by prediction id: JSON (`{"rows": [{"prediction_id",
/// "row"?, "value"}]}` or that list alone), CSV (`prediction_id,row,value`; `row` optional) or a
/// Parquet file with those columns. A later value for the same prediction and row replaces the
/// earlier one.
#[utoipa::path(post, path = "/deployments/{deployment}/ground-truth", tag = "monitoring", params(("deployment" = String, Path)),
    request_body(content = Object, content_type = "application/json"),
    responses((status = OK, body = GroundTruthAnswer), (status = BAD_REQUEST, body = ErrorBody)))]
pub async fn ground_truth(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<GroundTruthAnswer>> {
    services.monitoring.authorize_write(&context, &name).await?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/json");
    let rows = cairn_service::monitoring::ground_truth_rows(media, &body)?;
    let rows = services.monitoring.post_ground_truth(&context, &name, rows).await?;
    Ok(axum::Json(GroundTruthAnswer { rows }))
}

/// Which alerts.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertsQuery {
    /// `open` (default) or `all`.
    state: Option<String>,
    /// At most this many (default 100).
    limit: Option<i64>,
}

fn open_only(query: &AlertsQuery) -> ApiResult<bool> {
    match query.state.as_deref() {
        None | Some("open") => Ok(true),
        Some("all") => Ok(false),
        Some(other) => {
            Err(super::ApiError::invalid(format!("state must be open or all, not '{other}'")))
        }
    }
}

/// A deployment's alerts, newest first.
#[utoipa::path(get, path = "/deployments/{deployment}/alerts", tag = "monitoring", params(("deployment" = String, Path), AlertsQuery),
    responses((status = OK, body = Vec<Object>)))]
pub async fn deployment_alerts(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    Query(query): Query<AlertsQuery>,
) -> ApiResult<axum::Json<Vec<Alert>>> {
    let open = open_only(&query)?;
    let limit = query.limit.unwrap_or(100);
    Ok(axum::Json(services.monitoring.alerts(&context, Some(&name), open, limit).await?))
}

/// The alerts of every deployment of the request's project, newest first.
#[utoipa::path(get, path = "/alerts", tag = "monitoring", params(AlertsQuery),
    responses((status = OK, body = Vec<Object>)))]
pub async fn alerts(
    State(services): State<Services>,
    Caller(context): Caller,
    Query(query): Query<AlertsQuery>,
) -> ApiResult<axum::Json<Vec<Alert>>> {
    let open = open_only(&query)?;
    let limit = query.limit.unwrap_or(100);
    Ok(axum::Json(services.monitoring.alerts(&context, None, open, limit).await?))
}
