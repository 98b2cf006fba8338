//! A deployment's monitor: its settings (features and their drift thresholds, the prediction,
//! quality thresholds, schedule, window, where alerts go), its checks newest first with how
//! many features drifted, its alerts (open and closed), and one check's results per feature
//! and per threshold. Contributors may run a check now. Alerts open and close with the checks'
//! thresholds (the service offers no manual acknowledgement).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::monitoring::{AlertRoute, AlertState, Check, FeatureResult};
use cairn_service::Services;
use serde::Deserialize;

use crate::error::PageResult;
use crate::extract::{PagePath, PageQuery};
use crate::layout::{Layout, encode, maybe_time, number, render, time};
use crate::session::Visitor;

/// Checks per page.
const CHECKS_PER_PAGE: i64 = 50;
/// Alerts listed.
const ALERTS_SHOWN: i64 = 50;

struct FeatureSetting {
    name: String,
    kind: String,
    method: String,
    threshold: String,
}

struct CheckRow {
    id: i64,
    href: String,
    status: String,
    trigger: String,
    window: String,
    finished: String,
    drift: String,
    message: String,
}

struct AlertRow {
    id: i64,
    key: String,
    open: bool,
    message: String,
    opened: String,
    closed: String,
    check_href: String,
}

#[derive(Template)]
#[template(path = "monitor.html")]
struct MonitorPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    deployment: String,
    configured: bool,
    settings: Vec<(&'static str, String)>,
    features: Vec<FeatureSetting>,
    quality: Vec<(String, String)>,
    routes: Vec<String>,
    checks: Vec<CheckRow>,
    older_href: Option<String>,
    alerts: Vec<AlertRow>,
    can_write: bool,
}

/// `?before=` of the checks.
#[derive(Deserialize)]
pub struct ChecksQuery {
    before: Option<i64>,
}

fn optional_number(value: Option<f64>) -> String {
    value.map(number).unwrap_or_else(|| "default".to_string())
}

/// Where an alert goes, without secrets a webhook URL may carry (only its host is shown).
fn route_label(route: &AlertRoute) -> String {
    match route {
        AlertRoute::Webhook { url } => {
            let host = url
                .split_once("://")
                .map_or(url.as_str(), |(_, rest)| rest)
                .split(['/', '?', '#'])
                .next()
                .unwrap_or_default();
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("webhook to {host}")
        }
        AlertRoute::Email { to } => format!("email to {}", to.join(", ")),
    }
}

fn drift_summary(check: &Check) -> String {
    let Some(result) = &check.result else { return String::new() };
    match &result.dataset {
        Some(dataset) => format!("{} of {} features drifted", dataset.drifted, dataset.tested),
        None => String::new(),
    }
}

fn checks_base(project: &str, deployment: &str) -> String {
    format!("/projects/{}/deployments/{}/monitor", encode(project), encode(deployment))
}

/// `GET /projects/{project}/deployments/{name}/monitor`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
    PageQuery(query): PageQuery<ChecksQuery>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let (deployment, next_run) = services.monitoring.monitor(&context, &name).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let found =
        services.monitoring.checks(&context, &name, CHECKS_PER_PAGE + 1, query.before).await?;
    let base = checks_base(&project, &deployment.name);
    let more = found.len() as i64 > CHECKS_PER_PAGE;
    let checks: Vec<CheckRow> = found
        .iter()
        .take(CHECKS_PER_PAGE as usize)
        .map(|check| CheckRow {
            id: check.id,
            href: format!("{base}/checks/{}", check.id),
            status: check.status.as_str().to_string(),
            trigger: check.trigger.clone(),
            window: format!("{} – {}", time(check.window_start), time(check.window_end)),
            finished: time(check.finished_at),
            drift: drift_summary(check),
            message: check.message.clone(),
        })
        .collect();
    let older_href = match (more, checks.last()) {
        (true, Some(last)) => Some(format!("{base}?before={}", last.id)),
        _ => None,
    };
    let alerts = services
        .monitoring
        .alerts(&context, Some(&name), false, ALERTS_SHOWN)
        .await?
        .into_iter()
        .map(|alert| AlertRow {
            id: alert.id,
            key: alert.key,
            open: alert.state == AlertState::Open,
            message: alert.message,
            opened: time(alert.opened_at),
            closed: maybe_time(alert.closed_at),
            check_href: format!("{base}/checks/{}", alert.opened_check),
        })
        .collect();
    let mut page = MonitorPage {
        layout: Layout::new(&visitor, "projects", format!("Monitor of {}", deployment.name)),
        tab: "deployments",
        configured: false,
        settings: Vec::new(),
        features: Vec::new(),
        quality: Vec::new(),
        routes: Vec::new(),
        checks,
        older_href,
        alerts,
        can_write: access.can_write,
        deployment: deployment.name.clone(),
        project,
    };
    if let Some(monitor) = &deployment.spec.monitor {
        page.configured = true;
        let reference = match (&monitor.reference.run_artifact, &monitor.reference.uri) {
            (Some(artifact), _) => format!("run artifact {artifact}"),
            (None, Some(uri)) => uri.clone(),
            (None, None) => String::new(),
        };
        page.settings = vec![
            ("Schedule", monitor.schedule.clone()),
            ("Next check", maybe_time(next_run)),
            ("Window", monitor.window.clone()),
            ("Fewest rows", monitor.min_rows.to_string()),
            ("Dataset drift at", format!("{} of features drifted", number(monitor.drift_share))),
            ("Reference", reference),
        ];
        if let Some(prediction) = &monitor.prediction {
            let label = format!(
                "output {} as {} (threshold {})",
                prediction.output,
                prediction.column,
                optional_number(prediction.threshold)
            );
            page.settings.push(("Prediction", label));
        }
        page.features = monitor
            .features
            .iter()
            .map(|feature| FeatureSetting {
                name: feature.name.clone(),
                kind: feature
                    .kind
                    .map(|kind| kind.name().to_string())
                    .unwrap_or_else(|| "auto".into()),
                method: feature
                    .method
                    .map(|method| method.name().to_string())
                    .unwrap_or_else(|| "auto".into()),
                threshold: optional_number(feature.threshold),
            })
            .collect();
        page.quality = monitor
            .quality
            .iter()
            .map(|threshold| {
                let mut bounds = Vec::new();
                if let Some(min) = threshold.min {
                    bounds.push(format!("≥ {}", number(min)));
                }
                if let Some(max) = threshold.max {
                    bounds.push(format!("≤ {}", number(max)));
                }
                (threshold.metric.name().to_string(), bounds.join(" and "))
            })
            .collect();
        page.routes = monitor.alerts.iter().map(route_label).collect();
    }
    render(&page)
}

struct FeatureRow {
    name: String,
    method: String,
    statistic: String,
    threshold: String,
    drifted: bool,
    rows: String,
    error: String,
}

fn feature_row(feature: &FeatureResult) -> FeatureRow {
    match &feature.drift {
        Some(drift) => FeatureRow {
            name: feature.name.clone(),
            method: format!("{} ({})", drift.method.name(), drift.kind.name()),
            statistic: number(drift.statistic),
            threshold: number(drift.threshold),
            drifted: drift.drifted,
            rows: format!("{} / {}", drift.reference_rows, drift.current_rows),
            error: String::new(),
        },
        None => FeatureRow {
            name: feature.name.clone(),
            method: String::new(),
            statistic: String::new(),
            threshold: String::new(),
            drifted: false,
            rows: String::new(),
            error: feature.error.clone().unwrap_or_default(),
        },
    }
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    deployment: String,
    id: i64,
    status: String,
    message: String,
    facts: Vec<(&'static str, String)>,
    features: Vec<FeatureRow>,
    thresholds: Vec<(String, bool, String)>,
    quality: Vec<(String, String)>,
}

/// `GET /projects/{project}/deployments/{name}/monitor/checks/{id}`.
pub async fn check(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name, id)): PagePath<(String, String, i64)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let check = services.monitoring.check(&context, &name, id).await?;
    let mut facts = vec![
        ("Trigger", format!("{} by {}", check.trigger, check.requested_by)),
        ("Revision", check.revision.to_string()),
        ("Window", format!("{} – {}", time(check.window_start), time(check.window_end))),
        ("Finished", time(check.finished_at)),
    ];
    let (mut features, mut thresholds, mut quality) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(result) = &check.result {
        facts.push((
            "Rows",
            format!("{} current, {} reference", result.current_rows, result.reference_rows),
        ));
        if let Some(dataset) = &result.dataset {
            let verdict = if dataset.dataset_drift { "dataset drift" } else { "no dataset drift" };
            let label =
                format!("{} of {} features drifted: {verdict}", dataset.drifted, dataset.tested);
            facts.push(("Drift", label));
        }
        features =
            result.features.iter().chain(result.prediction.iter()).map(feature_row).collect();
        thresholds = result
            .thresholds
            .iter()
            .map(|outcome| (outcome.key.clone(), outcome.failed, outcome.message.clone()))
            .collect();
        if let Some(found) = &result.quality {
            facts.push(("Labelled rows", found.rows.to_string()));
            quality =
                found.metrics.iter().map(|(key, value)| (key.clone(), number(*value))).collect();
            quality.extend(found.errors.iter().map(|(key, error)| (key.clone(), error.clone())));
        }
    }
    render(&CheckPage {
        layout: Layout::new(&visitor, "projects", format!("Check {id} of {name}")),
        tab: "deployments",
        deployment: check.deployment.clone(),
        id,
        status: check.status.as_str().to_string(),
        message: check.message,
        facts,
        features,
        thresholds,
        quality,
        project,
    })
}

/// `POST /projects/{project}/deployments/{name}/monitor/check`: runs a check now.
pub async fn run_now(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let check = services.monitoring.check_now(&context, &name).await?;
    let target = format!("{}/checks/{}", checks_base(&project, &name), check.id);
    Ok(Redirect::to(&target).into_response())
}
