//! Deployments over `/api/v1`: create, list, show, update traffic, roll back, history, delete.
//! A deployment belongs to the request's project; its name is unique among live deployments
//! because inference URLs (`/serve/{name}/invocations`, `/v2/models/{name}/infer`) carry no project.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::identity::Access;
use cairn_domain::monitoring::MonitorSpec;
use cairn_domain::serving::{CaptureSpec, Deployment, DeploymentRevision, DeploymentSpec, Route};
use cairn_service::Services;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiResult, ErrorBody};
use super::extract::{Path, parse_json};
use crate::context::Caller;

/// A version and its share of the traffic.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    /// The registered model (in the deployment's project).
    model: String,
    /// The version.
    version: i64,
    /// Its weight (1–10000; share = weight / sum). Default 100.
    #[serde(default = "hundred")]
    weight: u32,
}

fn hundred() -> u32 {
    100
}

/// A route as served, with the file it pins.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    model: String,
    version: i64,
    weight: u32,
    /// Percentage of requests.
    share: f64,
    /// `onnx`.
    runtime: Option<String>,
    /// The model file's sha256.
    sha256: Option<String>,
}

fn routes_view(spec: &DeploymentSpec) -> Vec<RouteView> {
    let total = spec.total_weight().max(1) as f64;
    spec.routes
        .iter()
        .map(|route| RouteView {
            model: route.model.clone(),
            version: route.version,
            weight: route.weight,
            share: (f64::from(route.weight) * 10_000.0 / total).round() / 100.0,
            runtime: route.artifact.as_ref().map(|a| a.runtime.clone()),
            sha256: route.artifact.as_ref().map(|a| a.sha256.clone()),
        })
        .collect()
}

/// What is captured.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    /// Whether requests and responses are captured (default true).
    #[serde(default = "yes")]
    enabled: bool,
    /// The share of requests captured, 0–1 (default 1).
    #[serde(default = "one")]
    sample_rate: f64,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

/// A shadow version: it gets a copy of the traffic; its answers are captured, never returned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowBody {
    model: String,
    version: i64,
}

/// A deployment at its current revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeploymentView {
    name: String,
    project: String,
    environment: String,
    revision: i64,
    routes: Vec<RouteView>,
    shadow: Option<ShadowBody>,
    capture: CaptureBody,
    /// Accounts that alone may call it; empty: any reader of the project.
    callers: Vec<String>,
    /// The monitor at this revision (features and reference pinned), when there is one.
    #[schema(value_type = Option<Object>)]
    monitor: Option<MonitorSpec>,
    /// `POST` MLflow scoring requests here.
    invocations_url: String,
    /// `POST` Open Inference Protocol requests here.
    infer_url: String,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl From<Deployment> for DeploymentView {
    fn from(deployment: Deployment) -> Self {
        Self {
            invocations_url: format!("/serve/{}/invocations", deployment.name),
            infer_url: format!("/v2/models/{}/infer", deployment.name),
            routes: routes_view(&deployment.spec),
            shadow: deployment
                .spec
                .shadow
                .as_ref()
                .map(|s| ShadowBody { model: s.model.clone(), version: s.version }),
            capture: CaptureBody {
                enabled: deployment.spec.capture.enabled,
                sample_rate: deployment.spec.capture.sample_rate,
            },
            callers: deployment.spec.callers.clone(),
            monitor: deployment.spec.monitor.clone(),
            name: deployment.name,
            project: deployment.project,
            environment: deployment.environment,
            revision: deployment.revision,
            created_by: deployment.created_by,
            created_at: deployment.created_at,
            updated_at: deployment.updated_at,
        }
    }
}

fn spec_of(
    routes: Vec<RouteBody>,
    shadow: Option<ShadowBody>,
    capture: Option<CaptureBody>,
    callers: Vec<String>,
    monitor: Option<MonitorSpec>,
) -> DeploymentSpec {
    DeploymentSpec {
        routes: routes
            .into_iter()
            .map(|r| Route { model: r.model, version: r.version, weight: r.weight, artifact: None })
            .collect(),
        shadow: shadow.map(|s| Route {
            model: s.model,
            version: s.version,
            weight: 1,
            artifact: None,
        }),
        capture: capture
            .map(|c| CaptureSpec { enabled: c.enabled, sample_rate: c.sample_rate })
            .unwrap_or_default(),
        callers,
        monitor,
    }
}

/// A deployment to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeploymentBody {
    /// Lowercase letters, digits and '-'.
    name: String,
    /// The environment the deploy gate is asked about (default `production`).
    environment: Option<String>,
    /// The versions served, with weights.
    routes: Vec<RouteBody>,
    /// A shadow version (optional).
    shadow: Option<ShadowBody>,
    /// Capture settings (default: everything).
    capture: Option<CaptureBody>,
    /// Only these accounts may call it (default: any reader of the project).
    #[serde(default)]
    callers: Vec<String>,
    /// Drift and quality monitoring (optional); see docs/MONITORING.md.
    #[schema(value_type = Option<Object>)]
    monitor: Option<MonitorSpec>,
}

/// List the request's project's deployments.
#[utoipa::path(get, path = "/deployments", tag = "serving", responses((status = OK, body = Vec<DeploymentView>)))]
pub async fn list(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<DeploymentView>>> {
    let deployments = services.deployments.list(&context).await?;
    Ok(axum::Json(deployments.into_iter().map(Into::into).collect()))
}

/// Deploy registered model versions as an HTTP endpoint. The deploy gate is consulted for each
/// version; each must be an ONNX model the in-process runtime can compile.
#[utoipa::path(post, path = "/deployments", tag = "serving", request_body = NewDeploymentBody,
    responses((status = CREATED, body = DeploymentView), (status = CONFLICT, body = ErrorBody), (status = BAD_REQUEST, body = ErrorBody),
        (status = NOT_FOUND, description = "A route or the shadow names a model version that does not exist", body = ErrorBody)))]
pub async fn create(
    State(services): State<Services>,
    Caller(context): Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, axum::Json<DeploymentView>)> {
    services.deployments.authorize(&context, None, Access::Write).await?;
    let body: NewDeploymentBody = parse_json(&body)?;
    let environment = body.environment.unwrap_or_else(|| "production".to_string());
    let deployment = services
        .deployments
        .create(
            &context,
            &body.name,
            &environment,
            spec_of(body.routes, body.shadow, body.capture, body.callers, body.monitor),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(deployment.into())))
}

/// One deployment.
#[utoipa::path(get, path = "/deployments/{deployment}", tag = "serving", params(("deployment" = String, Path)),
    responses((status = OK, body = DeploymentView), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DeploymentView>> {
    Ok(axum::Json(services.deployments.get(&context, &name).await?.into()))
}

/// New traffic for a deployment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// The versions served from now on, with weights.
    routes: Vec<RouteBody>,
    /// A shadow version (optional; absent removes it).
    shadow: Option<ShadowBody>,
    /// Capture settings (default: everything).
    capture: Option<CaptureBody>,
    /// Only these accounts may call it (default: any reader of the project).
    #[serde(default)]
    callers: Vec<String>,
    /// Drift and quality monitoring (default: the current monitor stays).
    #[schema(value_type = Option<Object>)]
    monitor: Option<MonitorSpec>,
    /// Why.
    comment: Option<String>,
    /// Fail if the deployment is no longer at this revision.
    expected_revision: Option<i64>,
}

/// Replace what a deployment serves (canary weights, a new version): a new revision, swapped in
/// atomically; requests in flight finish on the old one.
#[utoipa::path(put, path = "/deployments/{deployment}", tag = "serving", params(("deployment" = String, Path)),
    request_body = UpdateBody,
    responses((status = OK, body = DeploymentView), (status = CONFLICT, body = ErrorBody), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn update(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<DeploymentView>> {
    services.deployments.authorize(&context, Some(&name), Access::Write).await?;
    let body: UpdateBody = parse_json(&body)?;
    // Without a monitor in the body, the current one stays (remove it with DELETE …/monitor).
    let monitor = match body.monitor {
        Some(monitor) => Some(monitor),
        None => services.deployments.get(&context, &name).await?.spec.monitor,
    };
    let deployment = services
        .deployments
        .update(
            &context,
            &name,
            spec_of(body.routes, body.shadow, body.capture, body.callers, monitor),
            body.comment.as_deref(),
            body.expected_revision,
        )
        .await?;
    Ok(axum::Json(deployment.into()))
}

/// Which revision to return to.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The revision whose traffic to serve again (default: the previous one).
    to_revision: Option<i64>,
}

/// Serve an earlier revision's traffic again (as a new revision).
#[utoipa::path(post, path = "/deployments/{deployment}/rollback", tag = "serving", params(("deployment" = String, Path)),
    request_body = RollbackBody,
    responses((status = OK, body = DeploymentView), (status = CONFLICT, body = ErrorBody)))]
pub async fn rollback(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<DeploymentView>> {
    services.deployments.authorize(&context, Some(&name), Access::Write).await?;
    let body: RollbackBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackBody::default()
    } else {
        parse_json(&body)?
    };
    Ok(axum::Json(services.deployments.rollback(&context, &name, body.to_revision).await?.into()))
}

/// One revision: what was served from when, by whose change.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionView {
    revision: i64,
    routes: Vec<RouteView>,
    created_by: String,
    created_at: i64,
    comment: Option<String>,
}

impl From<DeploymentRevision> for RevisionView {
    fn from(revision: DeploymentRevision) -> Self {
        Self {
            revision: revision.revision,
            routes: routes_view(&revision.spec),
            created_by: revision.created_by,
            created_at: revision.created_at,
            comment: revision.comment,
        }
    }
}

/// Every revision, oldest first: which versions served which shares when.
#[utoipa::path(get, path = "/deployments/{deployment}/history", tag = "serving", params(("deployment" = String, Path)),
    responses((status = OK, body = Vec<RevisionView>)))]
pub async fn history(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Vec<RevisionView>>> {
    let revisions = services.deployments.history(&context, &name).await?;
    Ok(axum::Json(revisions.into_iter().map(Into::into).collect()))
}

/// Delete a deployment (its history stays on record).
#[utoipa::path(delete, path = "/deployments/{deployment}", tag = "serving", params(("deployment" = String, Path)),
    responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    services.deployments.delete(&context, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
