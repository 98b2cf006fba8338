//! Deployments of a project: the list, and one deployment with its endpoint, traffic split,
//! shadow, capture and callers, its open alerts, its revision history (which versions served
//! which shares when), and a link to its monitor. Contributors may roll back to an earlier
//! revision (a new revision repeating it); deployments are created and changed with
//! `cairn deploy` or the API.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::serving::{DeploymentSpec, Route};
use cairn_service::Services;
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{Layout, encode, render, time};
use crate::session::Visitor;

/// Open alerts shown on a deployment's page.
const ALERTS_SHOWN: i64 = 20;

/// One route of a spec, as shown.
pub struct RouteRow {
    /// `model v3`.
    pub label: String,
    /// The version's page.
    pub href: String,
    /// Its share of the traffic, `75%`.
    pub share: String,
    /// Its weight.
    pub weight: u32,
    /// Runtime and file, when resolved.
    pub artifact: String,
}

fn route_row(project: &str, route: &Route, total: u64) -> RouteRow {
    let share = if total == 0 { 0.0 } else { f64::from(route.weight) * 100.0 / total as f64 };
    RouteRow {
        label: format!("{} v{}", route.model, route.version),
        href: format!(
            "/projects/{}/models/{}/versions/{}",
            encode(project),
            encode(&route.model),
            route.version
        ),
        share: format!("{}%", crate::layout::number((share * 10.0).round() / 10.0)),
        weight: route.weight,
        artifact: route
            .artifact
            .as_ref()
            .map(|artifact| format!("{} · {}", artifact.runtime, artifact.path))
            .unwrap_or_default(),
    }
}

/// A spec's routes, with shares of the total weight.
pub fn routes(project: &str, spec: &DeploymentSpec) -> Vec<RouteRow> {
    let total: u64 = spec.routes.iter().map(|route| u64::from(route.weight)).sum();
    spec.routes.iter().map(|route| route_row(project, route, total)).collect()
}

/// A spec's routes in one line: `churn v2 (90%), churn v3 (10%)`.
fn summary(project: &str, spec: &DeploymentSpec) -> String {
    routes(project, spec)
        .into_iter()
        .map(|row| format!("{} ({})", row.label, row.share))
        .collect::<Vec<_>>()
        .join(", ")
}

struct DeploymentRow {
    name: String,
    href: String,
    environment: String,
    revision: i64,
    serves: String,
    monitored: bool,
    updated: String,
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    rows: Vec<DeploymentRow>,
}

/// `GET /projects/{project}/deployments`.
pub async fn list(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
) -> PageResult {
    let found = services.deployments.list(&visitor.in_project(&project)).await?;
    let rows = found
        .into_iter()
        .map(|deployment| DeploymentRow {
            href: format!(
                "/projects/{}/deployments/{}",
                encode(&project),
                encode(&deployment.name)
            ),
            environment: deployment.environment,
            revision: deployment.revision,
            serves: summary(&project, &deployment.spec),
            monitored: deployment.spec.monitor.is_some(),
            updated: time(deployment.updated_at),
            name: deployment.name,
        })
        .collect();
    render(&DeploymentsPage {
        layout: Layout::new(&visitor, "projects", format!("Deployments of {project}")),
        tab: "deployments",
        rows,
        project,
    })
}

struct RevisionRow {
    revision: i64,
    serves: String,
    by: String,
    at: String,
    comment: String,
}

struct AlertRow {
    id: i64,
    key: String,
    message: String,
    opened: String,
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    name: String,
    environment: String,
    revision: i64,
    created_by: String,
    updated: String,
    endpoint: String,
    v2_endpoint: String,
    routes: Vec<RouteRow>,
    shadow: Option<RouteRow>,
    capture: String,
    callers: Vec<String>,
    monitored: bool,
    alerts: Vec<AlertRow>,
    revisions: Vec<RevisionRow>,
    can_write: bool,
}

/// `GET /projects/{project}/deployments/{name}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let deployment = services.deployments.get(&context, &name).await?;
    let history = services.deployments.history(&context, &name).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let alerts = services
        .monitoring
        .alerts(&context, Some(&name), true, ALERTS_SHOWN)
        .await?
        .into_iter()
        .map(|alert| AlertRow {
            id: alert.id,
            key: alert.key,
            message: alert.message,
            opened: time(alert.opened_at),
        })
        .collect();
    let origin = services.jobs.public_url().unwrap_or_default().trim_end_matches('/').to_string();
    let spec = &deployment.spec;
    let capture = if spec.capture.enabled {
        format!("on, {}% of requests", crate::layout::number(spec.capture.sample_rate * 100.0))
    } else {
        "off".to_string()
    };
    let mut revisions: Vec<RevisionRow> = history
        .into_iter()
        .map(|revision| RevisionRow {
            revision: revision.revision,
            serves: summary(&project, &revision.spec),
            by: revision.created_by,
            at: time(revision.created_at),
            comment: revision.comment.unwrap_or_default(),
        })
        .collect();
    revisions.sort_by_key(|row| std::cmp::Reverse(row.revision));
    let page = DeploymentPage {
        layout: Layout::new(&visitor, "projects", deployment.name.clone()),
        tab: "deployments",
        endpoint: format!("{origin}/serve/{}/invocations", encode(&deployment.name)),
        v2_endpoint: format!("{origin}/v2/models/{}/infer", encode(&deployment.name)),
        routes: routes(&project, spec),
        shadow: spec.shadow.as_ref().map(|route| route_row(&project, route, 0)),
        capture,
        callers: spec.callers.clone(),
        monitored: spec.monitor.is_some(),
        alerts,
        revisions,
        environment: deployment.environment,
        revision: deployment.revision,
        created_by: deployment.created_by,
        updated: time(deployment.updated_at),
        name: deployment.name,
        can_write: access.can_write,
        project,
    };
    render(&page)
}

/// The rollback form.
#[derive(Deserialize)]
pub struct RollbackForm {
    revision: String,
}

/// `POST /projects/{project}/deployments/{name}/rollback`.
pub async fn rollback(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
    PageForm(form): PageForm<RollbackForm>,
) -> PageResult {
    let revision = match crate::layout::optional(&form.revision) {
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| PageError::bad_request("the revision is a whole number"))?,
        ),
        None => None,
    };
    let context = visitor.in_project(&project);
    services.deployments.rollback(&context, &name, revision).await?;
    let target = format!("/projects/{}/deployments/{}", encode(&project), encode(&name));
    Ok(Redirect::to(&target).into_response())
}
