//! Monitoring: a deployment's monitor spec is resolved when the deployment revision is written
//! (the reference file pinned by digest, features taken from the model's signature), checks run
//! on the spec's cron schedule (a durable row per monitored deployment, claimed by one replica
//! at a time) or on demand, each check compares the captured window with the reference feature
//! by feature ([`cairn_domain::drift`]), joins ground truth for quality, stores per-feature
//! statistics, verdicts and histograms with an HTML and a JSON report, and opens or closes
//! alerts, whose notifications (webhook, email) go through a durable outbox.

mod captures;
mod notify;
mod report;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::drift::{self, ColumnOptions, Values};
use cairn_domain::identity::Access;
use cairn_domain::monitoring::{
    Alert, Check, CheckResult, CheckStatus, FeatureResult, FeatureSpec, MonitorSpec, QualityResult,
    ResolvedReference, ThresholdOutcome,
};
use cairn_domain::quality::{self, Classified};
use cairn_domain::serving::{Deployment, DeploymentSpec};
use cairn_domain::time::now_millis;
use cairn_store::{AlertChanges, AlertScope, GroundTruth, NewCheck, Store};
use serde_json::{Value, json};

pub use notify::{NotifyConfig, SmtpConfig, signature};

use crate::{ArtifactService, DeploymentService, ServiceError, ServiceResult};

/// How the scheduler and the notifier behave.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// How often a replica looks for due checks and notifications.
    pub tick: Duration,
    /// Webhook signing, SMTP relay and retries.
    pub notify: NotifyConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self { tick: Duration::from_secs(10), notify: NotifyConfig::default() }
    }
}

/// How long a claimed check may run before another replica may take it over.
const CHECK_LEASE_MS: i64 = 15 * 60 * 1000;
/// The most ground-truth rows per request.
pub const MAX_GROUND_TRUTH_ROWS: usize = 100_000;
/// The most checks listed per page.
pub const MAX_CHECKS_PAGE: i64 = 200;

/// Parses a schedule: a cron pattern (5 fields, or 6 with seconds first; UTC) or a nickname
/// such as `@hourly`.
pub fn parse_schedule(schedule: &str) -> ServiceResult<croner::Cron> {
    croner::Cron::from_str(schedule).map_err(|error| {
        ServiceError::invalid(format!(
            "invalid schedule '{schedule}': {error} (a cron pattern such as '*/15 * * * *' or '@hourly'; UTC)"
        ))
    })
}

/// The first time strictly after `after` (epoch ms) the schedule fires.
pub fn next_run(schedule: &str, after: i64) -> ServiceResult<i64> {
    let cron = parse_schedule(schedule)?;
    let start = chrono::DateTime::from_timestamp_millis(after)
        .ok_or_else(|| ServiceError::internal(format!("time {after} is out of range")))?;
    let next = cron.find_next_occurrence(&start, false).map_err(|error| {
        ServiceError::invalid(format!("schedule '{schedule}' never fires: {error}"))
    })?;
    Ok(next.timestamp_millis())
}

/// Where a reference URI points in the artifact store.
async fn reference_path(
    store: &Store,
    artifacts: &ArtifactService,
    spec: &DeploymentSpec,
    project_id: i64,
    monitor: &MonitorSpec,
) -> ServiceResult<String> {
    let relative = |uri: &str| -> ServiceResult<String> {
        artifacts.relative_path(uri).ok_or_else(|| {
            ServiceError::precondition(format!(
                "the reference '{uri}' is outside Cairn's artifact store"
            ))
        })
    };
    let run_artifact = |run_uri: &str, path: &str| -> ServiceResult<String> {
        Ok(format!("{}/{}", relative(run_uri)?, path.trim_start_matches('/')))
    };
    if let Some(uri) = &monitor.reference.uri {
        if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').ok_or_else(|| {
                ServiceError::invalid(format!("reference '{uri}': expected runs:/<run_id>/<path>"))
            })?;
            let run = store.get_run(run_id).await?;
            return run_artifact(&run.info.artifact_uri, path);
        }
        if uri.contains("://") || uri.starts_with("mlflow-artifacts:") {
            return relative(uri);
        }
        return Ok(uri.trim_start_matches('/').to_string());
    }
    let path = monitor.reference.run_artifact.as_deref().unwrap_or_default();
    let route = &spec.routes[0];
    let version = store.get_model_version(project_id, &route.model, route.version).await?;
    let run_id = version.run_id.filter(|id| !id.is_empty()).ok_or_else(|| {
        ServiceError::precondition(format!(
            "reference run_artifact: {} version {} records no run; give the reference as a uri",
            route.model, route.version
        ))
    })?;
    let run = store.get_run(&run_id).await?;
    run_artifact(&run.info.artifact_uri, path)
}

/// Checks a monitor spec and pins it: the schedule parses, the reference file exists and has
/// every feature (and the prediction column), and the features default to the model's
/// signature columns. Called whenever a deployment revision with a monitor is written.
pub(crate) async fn resolve_monitor(
    store: &Store,
    artifacts: &ArtifactService,
    project_id: i64,
    spec: &DeploymentSpec,
    mut monitor: MonitorSpec,
) -> ServiceResult<MonitorSpec> {
    monitor.validate()?;
    parse_schedule(&monitor.schedule)?;
    let signature = spec.routes[0].artifact.as_ref().and_then(|artifact| artifact.columns.clone());
    let Some(signature) = signature else {
        return Err(ServiceError::precondition(format!(
            "{} version {} has no column signature, so captured features have no names; log the model with a signature (mlflow's input_example or signature) to monitor it",
            spec.routes[0].model, spec.routes[0].version
        )));
    };
    if monitor.features.is_empty() {
        monitor.features = signature
            .iter()
            .map(|name| FeatureSpec {
                name: name.clone(),
                kind: None,
                method: None,
                threshold: None,
            })
            .collect();
    }
    for feature in &monitor.features {
        if !signature.contains(&feature.name) {
            return Err(ServiceError::invalid(format!(
                "monitor feature '{}' is not an input of the model (its inputs: {})",
                feature.name,
                signature.join(", ")
            )));
        }
    }
    let path = reference_path(store, artifacts, spec, project_id, &monitor).await?;
    let (sha256, size) = artifacts.digest_internal(&path).await.map_err(|error| {
        ServiceError::precondition(format!(
            "the monitor's reference '{path}' cannot be read: {}",
            error.message
        ))
    })?;
    let columns: Vec<String> = artifacts
        .table(&path)?
        .list_columns()
        .await
        .map_err(|error| ServiceError::invalid(format!("the monitor's reference: {error}")))?
        .into_iter()
        .map(|column| column.name)
        .collect();
    let mut wanted: Vec<&str> = monitor.features.iter().map(|f| f.name.as_str()).collect();
    if let Some(prediction) = &monitor.prediction {
        wanted.push(&prediction.column);
    }
    let missing: Vec<&str> =
        wanted.into_iter().filter(|name| !columns.iter().any(|c| c == name)).collect();
    if !missing.is_empty() {
        return Err(ServiceError::invalid(format!(
            "the monitor's reference '{path}' lacks the column(s) {} (it has: {})",
            missing.join(", "),
            columns.join(", ")
        )));
    }
    monitor.reference.resolved = Some(ResolvedReference { path, sha256, size });
    Ok(monitor)
}

/// Keeps a deployment's schedule row in step with its current revision: scheduled from now
/// when it has a monitor, removed (and its open alerts closed) when not.
pub(crate) async fn schedule(
    store: &Store,
    context: &RequestContext,
    deployment: &Deployment,
) -> ServiceResult<()> {
    match &deployment.spec.monitor {
        Some(monitor) => {
            let next = next_run(&monitor.schedule, now_millis())?;
            store.set_monitor_schedule(deployment.id, Some((deployment.revision, next))).await?;
        }
        None => {
            unschedule(store, context, deployment, "the deployment no longer has a monitor").await?
        }
    }
    Ok(())
}

/// Removes a deployment's schedule row and closes its open alerts, saying why.
pub(crate) async fn unschedule(
    store: &Store,
    context: &RequestContext,
    deployment: &Deployment,
    reason: &str,
) -> ServiceResult<()> {
    store.set_monitor_schedule(deployment.id, None).await?;
    store.close_monitor_alerts(context, deployment.id, &deployment.name, reason).await?;
    Ok(())
}

/// Checks, ground truth, alerts and reports.
#[derive(Clone)]
pub struct MonitorService {
    store: Store,
    artifacts: ArtifactService,
    deployments: DeploymentService,
    config: Arc<MonitorConfig>,
    replica: Arc<str>,
    notifier: notify::Notifier,
}

/// One ground-truth value as posted.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruthRow {
    /// The prediction id (`X-Prediction-Id` of the answer).
    pub prediction_id: String,
    /// The row of the request (default 0).
    pub row: i64,
    /// The true value.
    pub value: Value,
}

impl MonitorService {
    /// The monitoring service of one replica.
    pub fn new(
        store: Store,
        artifacts: ArtifactService,
        deployments: DeploymentService,
        config: MonitorConfig,
    ) -> Self {
        let notifier = notify::Notifier::new(config.notify.clone());
        Self {
            store,
            artifacts,
            deployments,
            config: Arc::new(config),
            replica: uuid::Uuid::new_v4().simple().to_string()[..12].into(),
            notifier,
        }
    }

    /// The deployment, authorised for `access`.
    async fn deployment(
        &self,
        context: &RequestContext,
        name: &str,
        access: Access,
    ) -> ServiceResult<Deployment> {
        self.deployments.visible_deployment(context, name, access).await
    }

    /// A deployment's monitor (as resolved) and when it next runs.
    pub async fn monitor(
        &self,
        context: &RequestContext,
        name: &str,
    ) -> ServiceResult<(Deployment, Option<i64>)> {
        let deployment = self.deployment(context, name, Access::Read).await?;
        let next = match &deployment.spec.monitor {
            Some(monitor) => Some(next_run(&monitor.schedule, now_millis())?),
            None => None,
        };
        Ok((deployment, next))
    }

    /// Sets (or with `None` removes) a deployment's monitor: a new revision serving the same
    /// versions.
    pub async fn set_monitor(
        &self,
        context: &RequestContext,
        name: &str,
        monitor: Option<MonitorSpec>,
        expected_revision: Option<i64>,
    ) -> ServiceResult<Deployment> {
        let deployment = self.deployment(context, name, Access::Write).await?;
        let mut spec = deployment.spec.clone();
        let comment = if monitor.is_some() { "monitor set" } else { "monitor removed" };
        spec.monitor = monitor;
        self.deployments
            .update(
                context,
                name,
                spec,
                Some(comment),
                expected_revision.or(Some(deployment.revision)),
            )
            .await
    }

    /// Runs a check now (it does not move the schedule).
    pub async fn check_now(&self, context: &RequestContext, name: &str) -> ServiceResult<Check> {
        let deployment = self.deployment(context, name, Access::Write).await?;
        if deployment.spec.monitor.is_none() {
            return Err(ServiceError::precondition(format!(
                "deployment '{name}' has no monitor; set one with `cairn monitor set {name} …`"
            )));
        }
        self.run_check(context, &deployment, "manual").await
    }

    /// A deployment's checks, newest first.
    pub async fn checks(
        &self,
        context: &RequestContext,
        name: &str,
        limit: i64,
        before: Option<i64>,
    ) -> ServiceResult<Vec<Check>> {
        let deployment = self.deployment(context, name, Access::Read).await?;
        Ok(self
            .store
            .monitor_checks(deployment.id, limit.clamp(1, MAX_CHECKS_PAGE), before)
            .await?)
    }

    /// One check.
    pub async fn check(
        &self,
        context: &RequestContext,
        name: &str,
        id: i64,
    ) -> ServiceResult<Check> {
        let deployment = self.deployment(context, name, Access::Read).await?;
        Ok(self.store.monitor_check(deployment.id, id).await?)
    }

    /// A check's report: HTML, or with `json` the same content as JSON.
    pub async fn report(
        &self,
        context: &RequestContext,
        name: &str,
        id: i64,
        json: bool,
    ) -> ServiceResult<Vec<u8>> {
        let check = self.check(context, name, id).await?;
        let directory = check.report_path.ok_or_else(|| {
            ServiceError::not_found(format!("check {id} has no report (it could not run)"))
        })?;
        let file = if json { "report.json" } else { "report.html" };
        self.artifacts.read_internal(&format!("{directory}/{file}")).await
    }

    /// Alerts: of one deployment, or of every deployment of the request's project.
    pub async fn alerts(
        &self,
        context: &RequestContext,
        name: Option<&str>,
        open_only: bool,
        limit: i64,
    ) -> ServiceResult<Vec<Alert>> {
        let limit = limit.clamp(1, 1000);
        match name {
            Some(name) => {
                let deployment = self.deployment(context, name, Access::Read).await?;
                let scope = AlertScope::Deployment(deployment.id);
                Ok(self.store.monitor_alerts(scope, open_only, limit).await?)
            }
            None => {
                let project = self.deployments.readable_project(context).await?;
                let scope = AlertScope::Project(project);
                Ok(self.store.monitor_alerts(scope, open_only, limit).await?)
            }
        }
    }

    /// Authorises a change to a deployment's monitoring (before the body is read).
    pub async fn authorize_write(&self, context: &RequestContext, name: &str) -> ServiceResult<()> {
        self.deployment(context, name, Access::Write).await.map(|_| ())
    }

    /// Stores ground truth for a deployment's predictions; returns the rows stored.
    pub async fn post_ground_truth(
        &self,
        context: &RequestContext,
        name: &str,
        rows: Vec<GroundTruthRow>,
    ) -> ServiceResult<u64> {
        let deployment = self.deployment(context, name, Access::Write).await?;
        if rows.is_empty() {
            return Err(ServiceError::invalid("no ground-truth rows were given"));
        }
        if rows.len() > MAX_GROUND_TRUTH_ROWS {
            return Err(ServiceError::invalid(format!(
                "at most {MAX_GROUND_TRUTH_ROWS} ground-truth rows per request, not {}",
                rows.len()
            )));
        }
        let mut values = Vec::with_capacity(rows.len());
        for (index, row) in rows.into_iter().enumerate() {
            if row.prediction_id.is_empty() || row.prediction_id.len() > 200 {
                return Err(ServiceError::invalid(format!(
                    "row {}: prediction_id must be 1–200 characters",
                    index + 1
                )));
            }
            if row.row < 0 {
                return Err(ServiceError::invalid(format!("row {}: row must be ≥ 0", index + 1)));
            }
            if row.value.is_null() || row.value.is_array() || row.value.is_object() {
                return Err(ServiceError::invalid(format!(
                    "row {} ({}): the value must be a number, a string or a boolean",
                    index + 1,
                    row.prediction_id
                )));
            }
            values.push(GroundTruth {
                prediction_id: row.prediction_id,
                row: row.row,
                value: row.value.to_string(),
            });
        }
        Ok(self.store.put_ground_truth(context, deployment.id, &deployment.name, &values).await?)
    }

    /// Starts this replica's scheduler: every tick it runs the checks that are due and sends
    /// the notifications that are owed.
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(service.config.tick);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(error) = service.run_due().await {
                    tracing::warn!(error = %error.message, "scheduled monitor checks failed");
                }
                if let Err(error) = service.deliver_due().await {
                    tracing::warn!(error = %error.message, "alert notifications failed");
                }
            }
        })
    }

    /// Runs every check that is due (claiming each so that one replica runs it); returns how
    /// many ran.
    pub async fn run_due(&self) -> ServiceResult<usize> {
        let context = RequestContext { actor: "scheduler".into(), ..RequestContext::system() };
        let mut ran = 0;
        loop {
            let now = now_millis();
            let Some(id) =
                self.store.claim_due_monitor(&self.replica, now, now + CHECK_LEASE_MS).await?
            else {
                return Ok(ran);
            };
            let deployment = self.store.get_deployment_by_id(id).await?;
            let next = match deployment.as_ref().and_then(|d| d.spec.monitor.as_ref()) {
                Some(monitor) => next_run(&monitor.schedule, now_millis()).ok(),
                None => None,
            };
            match (deployment, next) {
                (Some(deployment), Some(next)) => {
                    if let Err(error) = self.run_check(&context, &deployment, "schedule").await {
                        tracing::warn!(deployment = %deployment.name, error = %error.message, "scheduled check failed");
                    }
                    self.store.release_monitor(id, &self.replica, next).await?;
                    ran += 1;
                }
                // Deleted, or no monitor any more: nothing to schedule.
                _ => self.store.set_monitor_schedule(id, None).await?,
            }
        }
    }

    /// Sends the notifications that are due; returns how many were attempted.
    pub async fn deliver_due(&self) -> ServiceResult<usize> {
        let now = now_millis();
        let lease = now + 5 * 60 * 1000;
        let due = self.store.claim_notifications(now, lease, 50).await?;
        let attempted = due.len();
        for notification in due {
            let outcome = self.notifier.deliver(&notification).await;
            let settled = match outcome {
                Ok(()) => Ok(()),
                Err(error) => {
                    let attempts = u32::try_from(notification.attempts).unwrap_or(u32::MAX);
                    let retry = (attempts < self.config.notify.max_attempts)
                        .then(|| now_millis() + self.config.notify.backoff(attempts));
                    tracing::warn!(notification = notification.id, attempts, %error, "alert notification failed");
                    Err((error, retry))
                }
            };
            self.store.settle_notification(notification.id, settled).await?;
        }
        Ok(attempted)
    }

    /// Runs one check of `deployment`'s current monitor and stores it with its alerts.
    async fn run_check(
        &self,
        context: &RequestContext,
        deployment: &Deployment,
        trigger: &str,
    ) -> ServiceResult<Check> {
        let monitor = deployment.spec.monitor.clone().ok_or_else(|| {
            ServiceError::precondition(format!("deployment '{}' has no monitor", deployment.name))
        })?;
        let started = now_millis();
        let window_end = started;
        let window_start = window_end - (monitor.window_seconds() as i64) * 1000;
        let computed = self.compute(deployment, &monitor, window_start, window_end).await;
        let (status, message, result, report_path) = match computed {
            Ok(result) => {
                let (status, message) = verdict(&monitor, &result);
                let report = report::Report {
                    deployment: &deployment.name,
                    project: &deployment.project,
                    revision: deployment.revision,
                    trigger,
                    window_start,
                    window_end,
                    status,
                    message: &message,
                    monitor: &monitor,
                    result: &result,
                };
                let path = self.write_report(&deployment.name, window_end, &report).await?;
                (status, message, Some(result), Some(path))
            }
            Err(error) => (CheckStatus::Error, error.message, None, None),
        };
        let outcomes = result.as_ref().map(|r| r.thresholds.clone()).unwrap_or_default();
        let routes: Vec<String> = monitor
            .alerts
            .iter()
            .map(|route| serde_json::to_string(route).unwrap_or_default())
            .collect();
        let new = NewCheck {
            deployment_id: deployment.id,
            deployment: &deployment.name,
            revision: deployment.revision,
            trigger,
            requested_by: &context.actor,
            window_start,
            window_end,
            started_at: started,
            status,
            message: &message,
            result: result.as_ref(),
            report_path: report_path.as_deref(),
        };
        let project = deployment.project.clone();
        let name = deployment.name.clone();
        let payload = |id: i64, changes: &AlertChanges| {
            Some(notification_payload(&project, &name, id, status, &message, changes))
        };
        // Two checks of one deployment finishing together (a manual one during a scheduled
        // one) may both try to open the same alert; the loser's transaction rolls back whole
        // and is recorded again, now finding the alert open.
        let recorded =
            match self.store.record_check(context, &new, &outcomes, &routes, payload).await {
                Err(error) if error.is_unique_violation() => {
                    self.store.record_check(context, &new, &outcomes, &routes, payload).await
                }
                other => other,
            };
        Ok(recorded?.0)
    }

    async fn write_report(
        &self,
        deployment: &str,
        window_end: i64,
        report: &report::Report<'_>,
    ) -> ServiceResult<String> {
        let directory = format!(
            "monitoring/{deployment}/checks/{window_end}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let html = report::html(report);
        let json = serde_json::to_vec_pretty(&report::json(report))
            .map_err(|error| ServiceError::internal(error.to_string()))?;
        self.artifacts
            .write_internal(&format!("{directory}/report.html"), html.into_bytes())
            .await?;
        self.artifacts.write_internal(&format!("{directory}/report.json"), json).await?;
        Ok(directory)
    }

    /// Reads the window and, one column at a time, the reference, and computes every statistic
    /// of the monitor (memory: the window plus one reference column).
    async fn compute(
        &self,
        deployment: &Deployment,
        monitor: &MonitorSpec,
        window_start: i64,
        window_end: i64,
    ) -> ServiceResult<CheckResult> {
        let resolved =
            monitor.reference.resolved.clone().ok_or_else(|| {
                ServiceError::internal("the monitor's reference was never resolved")
            })?;
        let signature = deployment.spec.routes[0]
            .artifact
            .as_ref()
            .and_then(|artifact| artifact.columns.clone())
            .unwrap_or_default();
        let positions: Vec<usize> = monitor
            .features
            .iter()
            .map(|feature| {
                signature.iter().position(|name| *name == feature.name).unwrap_or(usize::MAX)
            })
            .collect();
        let need_outputs = monitor.prediction.is_some() || !monitor.quality.is_empty();
        let mut window = captures::read_window(
            &self.artifacts,
            &deployment.name,
            window_start,
            window_end,
            &positions,
            need_outputs,
        )
        .await?;
        let (sha256, _) = self.artifacts.digest_internal(&resolved.path).await?;
        if sha256 != resolved.sha256 {
            return Err(ServiceError::precondition(format!(
                "the reference '{}' changed since the monitor was set (its digest differs); set the monitor again to accept the new file",
                resolved.path
            )));
        }
        let table = self.artifacts.table(&resolved.path)?;
        let read = |column: String| {
            let table = table.clone();
            async move {
                table.read_column(&column).await.map_err(|error| {
                    ServiceError::precondition(format!("the monitor's reference: {error}"))
                })
            }
        };
        let quality = if monitor.quality.is_empty() {
            None
        } else {
            Some(self.quality(deployment, monitor, &window).await?)
        };
        let current_rows = window.rows as u64;
        let enough = current_rows >= monitor.min_rows;
        let mut reference_rows = 0;
        let mut features = Vec::with_capacity(monitor.features.len());
        for (feature, current) in monitor.features.iter().zip(std::mem::take(&mut window.features))
        {
            if !enough {
                features.push(insufficient(&feature.name, current_rows, monitor.min_rows));
                continue;
            }
            let reference = read(feature.name.clone()).await?;
            reference_rows = reference_rows.max(reference.len() as u64);
            let options = ColumnOptions {
                kind: feature.kind,
                method: feature.method,
                threshold: feature.threshold,
            };
            let name = feature.name.clone();
            features.push(
                off_thread(move || {
                    let current = like_reference(&reference, current);
                    feature_result(&name, &reference, &current, &options)
                })
                .await?,
            );
        }
        let prediction = match &monitor.prediction {
            Some(spec) if enough => {
                let reference = read(spec.column.clone()).await?;
                let outputs = std::mem::take(&mut window.outputs);
                let output = spec.output.clone();
                let options = ColumnOptions {
                    kind: spec.kind,
                    method: spec.method,
                    threshold: spec.threshold,
                };
                Some(
                    off_thread(move || {
                        let current = output_values(&reference, &outputs, &output);
                        let name = format!("prediction:{output}");
                        feature_result(&name, &reference, &current, &options)
                    })
                    .await?,
                )
            }
            Some(spec) => Some(insufficient(
                &format!("prediction:{}", spec.output),
                current_rows,
                monitor.min_rows,
            )),
            None => None,
        };
        Ok(assemble(monitor, current_rows, reference_rows, features, prediction, quality))
    }

    /// Joins the window's predictions with their ground truth and computes the metrics.
    async fn quality(
        &self,
        deployment: &Deployment,
        monitor: &MonitorSpec,
        window: &captures::Window,
    ) -> ServiceResult<QualityResult> {
        let ids: Vec<&str> = {
            let mut ids: Vec<&str> = window.ids.iter().map(|(id, _)| id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let truth: HashMap<(String, i64), Value> = self
            .store
            .ground_truth(deployment.id, &ids)
            .await?
            .into_iter()
            .filter_map(|row| {
                serde_json::from_str(&row.value).ok().map(|v| ((row.prediction_id, row.row), v))
            })
            .collect();
        let output = monitor.prediction.as_ref().map_or("label", |p| p.output.as_str());
        let metrics: Vec<_> = monitor.quality.iter().map(|q| q.metric).collect();
        let classification = metrics.iter().all(|m| m.is_classification());
        let positive = monitor.positive_label.as_ref().map_or_else(|| "1".to_string(), label_key);
        let mut classified = Vec::new();
        let mut pairs = Vec::new();
        for ((id, row), outputs) in window.ids.iter().zip(&window.outputs) {
            let Some(truth) = truth.get(&(id.clone(), i64::from(*row))) else { continue };
            let Ok(Value::Object(outputs)) = serde_json::from_str::<Value>(outputs) else {
                continue;
            };
            let predicted = outputs
                .get(output)
                .or_else(|| outputs.values().find(|v| v.is_number() || v.is_string()));
            let Some(predicted) = predicted else { continue };
            if classification {
                let truth_key = label_key(truth);
                let predicted_key = label_key(predicted);
                let probabilities = outputs.values().find_map(|v| {
                    v.as_array().filter(|a| a.len() >= 2 && a.iter().all(Value::is_number))
                });
                let probability = |key: &str| -> Option<f64> {
                    let index: usize = key.parse().ok()?;
                    probabilities?.get(index)?.as_f64()
                };
                classified.push(Classified {
                    truth_positive: truth_key == positive,
                    correct: truth_key == predicted_key,
                    predicted_positive: predicted_key == positive,
                    positive_probability: probability(&positive),
                    truth_probability: probability(&truth_key),
                });
            } else if let (Some(y), Some(p)) = (number(truth), number(predicted)) {
                pairs.push((y, p));
            }
        }
        let (rows, (metrics, errors)) = if classification {
            (classified.len(), quality::classification(&classified, &metrics))
        } else {
            (pairs.len(), quality::regression(&pairs, &metrics))
        };
        Ok(QualityResult { rows: rows as u64, metrics, errors })
    }
}

/// Reads posted ground truth: JSON (`{"rows": [...]}` or a bare list of
/// `{"prediction_id", "row"?, "value"}`), CSV with a header (`prediction_id`, `value`, optional
/// `row`), or Parquet with those columns. `media` is the request's content type.
pub fn ground_truth_rows(media: &str, body: &[u8]) -> ServiceResult<Vec<GroundTruthRow>> {
    let media = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" => json_ground_truth(body),
        "text/csv" => csv_ground_truth(body),
        "application/vnd.apache.parquet" | "application/x-parquet" | "application/octet-stream" => {
            parquet_ground_truth(body)
        }
        other => Err(ServiceError::invalid(format!(
            "ground truth comes as application/json, text/csv or application/vnd.apache.parquet, not '{other}'"
        ))),
    }
}

/// Ground truth as Parquet: columns `prediction_id`, `value` and optionally `row` (read through
/// a private temporary file with the table reader).
fn parquet_ground_truth(body: &[u8]) -> ServiceResult<Vec<GroundTruthRow>> {
    use crate::tables::{TableError, TableFormat, read_local_column};
    let path = std::env::temp_dir()
        .join(format!("cairn-ground-truth-{}.parquet", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, body)
        .map_err(|error| ServiceError::internal(format!("staging the Parquet body: {error}")))?;
    let read = |column: &str| read_local_column(&path, TableFormat::Parquet, column);
    let (ids, values, rows) = (read("prediction_id"), read("value"), read("row"));
    let _ = std::fs::remove_file(&path);
    let staged = path.display().to_string();
    let invalid = |error: TableError| {
        ServiceError::invalid(format!(
            "the Parquet body: {}",
            error.to_string().replace(&staged, "the body")
        ))
    };
    let Values::Labels(ids) = ids.map_err(invalid)? else {
        return Err(ServiceError::invalid("the Parquet body: prediction_id must hold text"));
    };
    let values = values.map_err(invalid)?;
    let rows = match rows {
        Ok(Values::Integers(rows)) => Some(rows),
        Ok(_) => return Err(ServiceError::invalid("the Parquet body: row must hold integers")),
        Err(TableError::MissingColumn { .. }) => None,
        Err(error) => return Err(invalid(error)),
    };
    let cell = |index: usize| -> Value {
        match &values {
            Values::Floats(v) => {
                serde_json::Number::from_f64(v[index]).map_or(Value::Null, Value::Number)
            }
            Values::Integers(v) => v[index].map_or(Value::Null, Value::from),
            Values::Labels(v) => v[index].clone().map_or(Value::Null, Value::String),
        }
    };
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            Ok(GroundTruthRow {
                prediction_id: id.clone().ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "the Parquet body, row {}: prediction_id is missing",
                        index + 1
                    ))
                })?,
                row: rows.as_ref().and_then(|rows| rows[index]).unwrap_or(0),
                value: cell(index),
            })
        })
        .collect()
}

fn json_ground_truth(body: &[u8]) -> ServiceResult<Vec<GroundTruthRow>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Row {
        prediction_id: String,
        #[serde(default)]
        row: i64,
        value: Value,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Body {
        Wrapped { rows: Vec<Row> },
        Bare(Vec<Row>),
    }
    let body: Body = serde_json::from_slice(body).map_err(|error| {
        ServiceError::invalid(format!(
            "invalid ground truth: {error} (expected {{\"rows\": [{{\"prediction_id\": \"…\", \"row\": 0, \"value\": 1}}]}})"
        ))
    })?;
    let rows = match body {
        Body::Wrapped { rows } | Body::Bare(rows) => rows,
    };
    Ok(rows
        .into_iter()
        .map(|row| GroundTruthRow {
            prediction_id: row.prediction_id,
            row: row.row,
            value: row.value,
        })
        .collect())
}

fn csv_ground_truth(body: &[u8]) -> ServiceResult<Vec<GroundTruthRow>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let headers = reader
        .headers()
        .map_err(|error| ServiceError::invalid(format!("the CSV header: {error}")))?
        .clone();
    let find = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(id_at), Some(value_at)) = (find("prediction_id"), find("value")) else {
        return Err(ServiceError::invalid(
            "the CSV needs a header with prediction_id and value (and optionally row)",
        ));
    };
    let row_at = find("row");
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record
            .map_err(|error| ServiceError::invalid(format!("CSV line {}: {error}", line + 2)))?;
        let cell = |at: usize| record.get(at).unwrap_or("").trim();
        let row = match row_at.map(cell) {
            None | Some("") => 0,
            Some(text) => text.parse().map_err(|_| {
                ServiceError::invalid(format!(
                    "CSV line {}: row '{text}' is not a whole number",
                    line + 2
                ))
            })?,
        };
        let text = cell(value_at);
        // Numbers stay numbers (so 1 and 1.0 compare equal to a numeric label); the rest is text.
        let value = match text.parse::<f64>() {
            Ok(number) if number.is_finite() => serde_json::Number::from_f64(number)
                .map(|n| {
                    if number.fract() == 0.0 && number.abs() < 1e15 {
                        Value::from(number as i64)
                    } else {
                        Value::Number(n)
                    }
                })
                .unwrap_or(Value::Null),
            _ if text.is_empty() => Value::Null,
            _ => Value::String(text.to_string()),
        };
        rows.push(GroundTruthRow { prediction_id: cell(id_at).to_string(), row, value });
    }
    Ok(rows)
}

/// A label as comparable text: integral numbers without a fraction (`1`, not `1.0`), strings
/// as they are, booleans as `true`/`false`.
fn label_key(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if float.fract() == 0.0 && float.abs() < 1e15 => {
                format!("{}", float as i64)
            }
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        Value::Bool(flag) => Some(f64::from(u8::from(*flag))),
        _ => None,
    }
}

/// Converts captured numbers to the reference column's representation, so both sides of a
/// comparison have the same type (and so the same default method).
fn like_reference(reference: &Values, current: Vec<f64>) -> Values {
    match reference {
        Values::Floats(_) => Values::Floats(current),
        Values::Integers(_) => Values::Integers(
            current
                .into_iter()
                .map(|v| (v.is_finite() && v.fract() == 0.0).then_some(v as i64))
                .collect(),
        ),
        Values::Labels(_) => Values::Labels(
            current
                .into_iter()
                .map(|v| {
                    v.is_finite().then(|| {
                        if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v}") }
                    })
                })
                .collect(),
        ),
    }
}

/// The captured values of one output, in the reference column's representation.
fn output_values(reference: &Values, outputs: &[String], output: &str) -> Values {
    let cells: Vec<Option<Value>> = outputs
        .iter()
        .map(|text| serde_json::from_str::<Value>(text).ok().and_then(|v| v.get(output).cloned()))
        .collect();
    match reference {
        Values::Labels(_) => Values::Labels(
            cells
                .into_iter()
                .map(|cell| cell.filter(|v| !v.is_null()).map(|v| label_key(&v)))
                .collect(),
        ),
        _ => like_reference(
            reference,
            cells
                .into_iter()
                .map(|cell| cell.as_ref().and_then(number).unwrap_or(f64::NAN))
                .collect(),
        ),
    }
}

fn feature_result(
    name: &str,
    reference: &Values,
    current: &Values,
    options: &ColumnOptions,
) -> FeatureResult {
    match drift::column_drift(reference, current, options) {
        Ok(drift) => FeatureResult { name: name.to_string(), drift: Some(drift), error: None },
        Err(error) => {
            FeatureResult { name: name.to_string(), drift: None, error: Some(error.to_string()) }
        }
    }
}

/// Runs CPU work off the async threads.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> ServiceResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ServiceError::internal(format!("the drift computation stopped: {error}")))
}

fn insufficient(name: &str, rows: u64, min_rows: u64) -> FeatureResult {
    FeatureResult {
        name: name.to_string(),
        drift: None,
        error: Some(format!(
            "insufficient data: {rows} captured rows in the window, the monitor needs {min_rows}"
        )),
    }
}

/// The check's result: the dataset verdict and every threshold's outcome.
fn assemble(
    monitor: &MonitorSpec,
    current_rows: u64,
    reference_rows: u64,
    features: Vec<FeatureResult>,
    prediction: Option<FeatureResult>,
    quality: Option<QualityResult>,
) -> CheckResult {
    let mut thresholds = Vec::new();
    for feature in &features {
        if let Some(drift) = &feature.drift {
            thresholds.push(ThresholdOutcome {
                key: format!("feature_drift:{}", feature.name),
                failed: drift.drifted,
                message: format!(
                    "feature '{}': {} {} {:.4} (threshold {}){}",
                    feature.name,
                    drift.method.name(),
                    if drift.method.is_p_value() { "p-value" } else { "distance" },
                    drift.statistic,
                    drift.threshold,
                    if drift.drifted { ": drift" } else { "" }
                ),
            });
        }
    }
    let computed: Vec<_> = features.iter().filter_map(|f| f.drift.clone()).collect();
    let dataset =
        (!computed.is_empty()).then(|| drift::dataset_drift(&computed, monitor.drift_share));
    if let Some(dataset) = &dataset {
        let drifted: Vec<&str> = features
            .iter()
            .filter(|f| f.drift.as_ref().is_some_and(|d| d.drifted))
            .map(|f| f.name.as_str())
            .collect();
        thresholds.push(ThresholdOutcome {
            key: "dataset_drift".into(),
            failed: dataset.dataset_drift,
            message: format!(
                "{} of {} features drifted ({:.0} %; dataset drift at ≥ {:.0} %){}",
                dataset.drifted,
                dataset.tested,
                dataset.share * 100.0,
                monitor.drift_share * 100.0,
                if drifted.is_empty() {
                    String::new()
                } else {
                    format!(": {}", drifted.join(", "))
                }
            ),
        });
    }
    if let (Some(spec), Some(drift)) =
        (&monitor.prediction, prediction.as_ref().and_then(|p| p.drift.as_ref()))
    {
        thresholds.push(ThresholdOutcome {
            key: "prediction_drift".into(),
            failed: drift.drifted,
            message: format!(
                "prediction '{}': {} {:.4} (threshold {}){}",
                spec.output,
                drift.method.name(),
                drift.statistic,
                drift.threshold,
                if drift.drifted { ": drift" } else { "" }
            ),
        });
    }
    if let Some(quality) = &quality {
        for threshold in &monitor.quality {
            let name = threshold.metric.name();
            let Some(&value) = quality.metrics.get(name) else { continue };
            let low = threshold.min.is_some_and(|min| value < min);
            let high = threshold.max.is_some_and(|max| value > max);
            let bound = match (threshold.min, threshold.max) {
                (Some(min), Some(max)) => format!("[{min}, {max}]"),
                (Some(min), None) => format!("≥ {min}"),
                (None, Some(max)) => format!("≤ {max}"),
                (None, None) => String::new(),
            };
            thresholds.push(ThresholdOutcome {
                key: format!("quality:{name}"),
                failed: low || high,
                message: format!(
                    "{name} {value:.4} over {} rows with ground truth (wanted {bound})",
                    quality.rows
                ),
            });
        }
    }
    CheckResult { current_rows, reference_rows, features, dataset, prediction, quality, thresholds }
}

/// The check's status and one-line summary.
fn verdict(monitor: &MonitorSpec, result: &CheckResult) -> (CheckStatus, String) {
    let failed: Vec<&ThresholdOutcome> = result.thresholds.iter().filter(|t| t.failed).collect();
    if !failed.is_empty() {
        let mut parts: Vec<String> = Vec::new();
        if let Some(dataset) = result.dataset.as_ref().filter(|d| d.dataset_drift) {
            parts.push(format!(
                "dataset drift ({} of {} features)",
                dataset.drifted, dataset.tested
            ));
        } else {
            let features = failed.iter().filter(|t| t.key.starts_with("feature_drift:")).count();
            if features > 0 {
                parts.push(format!("{features} feature(s) drifted"));
            }
        }
        if failed.iter().any(|t| t.key == "prediction_drift") {
            parts.push("prediction drift".into());
        }
        for outcome in failed.iter().filter(|t| t.key.starts_with("quality:")) {
            parts.push(outcome.message.clone());
        }
        return (CheckStatus::Failed, parts.join("; "));
    }
    if result.current_rows < monitor.min_rows {
        return (
            CheckStatus::InsufficientData,
            format!(
                "insufficient data: {} captured rows in the window, the monitor needs {}",
                result.current_rows, monitor.min_rows
            ),
        );
    }
    let tested = result.dataset.as_ref().map_or(0, |d| d.tested);
    (CheckStatus::Passed, format!("no drift in {tested} features; every threshold held"))
}

/// The JSON body sent to alert routes when a check opens or closes alerts.
fn notification_payload(
    project: &str,
    deployment: &str,
    check: i64,
    status: CheckStatus,
    message: &str,
    changes: &AlertChanges,
) -> String {
    let alert = |alert: &Alert| json!({"id": alert.id, "key": alert.key, "message": alert.message});
    json!({
        "event": "cairn.monitor.alerts",
        "project": project,
        "deployment": deployment,
        "check": {
            "id": check,
            "status": status.as_str(),
            "message": message,
            "url": format!("/api/v1/deployments/{deployment}/checks/{check}"),
            "report": format!("/api/v1/deployments/{deployment}/checks/{check}/report"),
        },
        "opened": changes.opened.iter().map(alert).collect::<Vec<_>>(),
        "closed": changes.closed.iter().map(alert).collect::<Vec<_>>(),
        "still_open": changes.ongoing.iter().map(alert).collect::<Vec<_>>(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_fire_after_the_given_time() {
        // 2026-01-01T00:00:00Z
        let base = 1_767_225_600_000;
        assert_eq!(next_run("*/15 * * * *", base).unwrap(), base + 15 * 60 * 1000);
        assert_eq!(next_run("@hourly", base + 1).unwrap(), base + 3_600_000);
        assert_eq!(next_run("*/2 * * * * *", base).unwrap(), base + 2000, "seconds first");
        let error = parse_schedule("every minute").unwrap_err();
        assert!(error.message.contains("invalid schedule"), "{}", error.message);
    }

    #[test]
    fn ground_truth_comes_as_json_csv_or_parquet() {
        let json_rows = ground_truth_rows(
            "application/json",
            br#"{"rows": [{"prediction_id": "a", "value": 1}, {"prediction_id": "a", "row": 2, "value": "cat"}]}"#,
        )
        .unwrap();
        assert_eq!(
            json_rows[1],
            GroundTruthRow { prediction_id: "a".into(), row: 2, value: json!("cat") }
        );
        let bare =
            ground_truth_rows("application/json", br#"[{"prediction_id": "b", "value": 0.5}]"#);
        assert_eq!(bare.unwrap()[0].value, json!(0.5));
        let csv = ground_truth_rows(
            "text/csv; charset=utf-8",
            b"prediction_id,value\nx,1\ny,2.5\nz,yes\n",
        )
        .unwrap();
        let values: Vec<Value> = csv.iter().map(|r| r.value.clone()).collect();
        assert_eq!(values, [json!(1), json!(2.5), json!("yes")]);
        assert!(csv.iter().all(|r| r.row == 0));
        let error = ground_truth_rows("text/csv", b"id,label\nx,1\n").unwrap_err();
        assert!(error.message.contains("prediction_id and value"), "{}", error.message);
        let error = ground_truth_rows("application/xml", b"<x/>").unwrap_err();
        assert!(error.message.contains("application/json, text/csv"), "{}", error.message);

        let batch = arrow_array::RecordBatch::try_from_iter([
            (
                "prediction_id",
                std::sync::Arc::new(arrow_array::StringArray::from(vec!["p1", "p2"]))
                    as arrow_array::ArrayRef,
            ),
            ("row", std::sync::Arc::new(arrow_array::Int64Array::from(vec![0, 3])) as _),
            ("value", std::sync::Arc::new(arrow_array::Int64Array::from(vec![1, 0])) as _),
        ])
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let rows = ground_truth_rows("application/vnd.apache.parquet", &bytes).unwrap();
        assert_eq!(rows[1], GroundTruthRow { prediction_id: "p2".into(), row: 3, value: json!(0) });
        let error =
            ground_truth_rows("application/vnd.apache.parquet", b"not parquet").unwrap_err();
        assert!(error.message.contains("the Parquet body"), "{}", error.message);
    }

    #[test]
    fn labels_compare_as_text() {
        assert_eq!(label_key(&json!(1)), "1");
        assert_eq!(label_key(&json!(1.0)), "1");
        assert_eq!(label_key(&json!("yes")), "yes");
        assert_eq!(label_key(&json!(0.5)), "0.5");
        assert_eq!(label_key(&json!(true)), "true");
    }

    #[test]
    fn captured_numbers_take_the_reference_type() {
        let ints = like_reference(&Values::Integers(vec![]), vec![1.0, 2.5, f64::NAN]);
        assert_eq!(ints, Values::Integers(vec![Some(1), None, None]));
        let labels = like_reference(&Values::Labels(vec![]), vec![3.0, 0.25]);
        assert_eq!(labels, Values::Labels(vec![Some("3".into()), Some("0.25".into())]));
        let outputs =
            vec![r#"{"label":1}"#.to_string(), r#"{"label":"b"}"#.to_string(), "{}".into()];
        assert_eq!(
            output_values(&Values::Labels(vec![]), &outputs, "label"),
            Values::Labels(vec![Some("1".into()), Some("b".into()), None])
        );
    }
}
