//! Monitoring: the monitor spec a deployment carries (features, reference data, drift and
//! quality thresholds, schedule, window, alert routes), the results of a check, and alerts.
//!
//! The spec is part of the deployment's spec, so changing it is a new deployment revision and a
//! check records the revision whose spec it used. The statistics live in [`crate::drift`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::drift::{ColumnDrift, ColumnKind, DatasetDrift, Method};

/// What is monitored, against what, how often, and who is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    /// The features checked for drift, with per-feature overrides. Empty: every input column
    /// of the model's signature, with Evidently's default method for its type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureSpec>,
    /// The reference data the current window is compared with.
    pub reference: ReferenceSpec,
    /// Drift of the model's output, when wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionSpec>,
    /// Quality thresholds, computed from ground truth joined by prediction id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<QualityThreshold>,
    /// The label that counts as positive for precision, recall, F1 and ROC AUC (default: `1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<serde_json::Value>,
    /// The share of drifted features that makes dataset drift (Evidently's default 0.5).
    #[serde(default = "default_drift_share")]
    pub drift_share: f64,
    /// When checks run: a cron expression (`min hour day month weekday`, UTC), or `@hourly`,
    /// `@daily`, …
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// How far back a check looks, e.g. `30m`, `24h`, `7d`.
    #[serde(default = "default_window")]
    pub window: String,
    /// Fewer captured rows than this in the window: the check reports insufficient data and
    /// opens no drift alert.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    /// Where alerts go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRoute>,
}

fn default_drift_share() -> f64 {
    0.5
}

fn default_schedule() -> String {
    "@hourly".into()
}

fn default_window() -> String {
    "24h".into()
}

fn default_min_rows() -> u64 {
    30
}

/// One monitored feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The column name (a signature input of the model and a column of the reference).
    pub name: String,
    /// Numerical or categorical (default: inferred from the reference as Evidently does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ColumnKind>,
    /// The drift method (default: Evidently's choice for the kind and size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// The method's threshold (default: the method's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// Where the reference data is: a Parquet or CSV file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// `runs:/<run_id>/<path>` (an artifact of a run), `mlflow-artifacts:/<path>` or a path
    /// relative to the artifact store's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// An artifact of the run that produced the first served model version (its training
    /// data, e.g. `data/train.parquet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_artifact: Option<String>,
    /// The file in the artifact store, resolved when the revision is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedReference>,
}

/// A reference file pinned by digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedReference {
    /// Its path in the artifact store.
    pub path: String,
    /// Its sha256 when the revision was written.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Drift of one model output between the reference's column and the captured answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionSpec {
    /// The model output compared (default `label`).
    #[serde(default = "default_output")]
    pub output: String,
    /// The reference column holding the reference predictions (default `prediction`).
    #[serde(default = "default_prediction_column")]
    pub column: String,
    /// Numerical or categorical (default: inferred from the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ColumnKind>,
    /// The drift method (default: Evidently's choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// The method's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

fn default_output() -> String {
    "label".into()
}

fn default_prediction_column() -> String {
    "prediction".into()
}

/// A quality metric: classification or regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityMetric {
    /// Share of correct labels.
    Accuracy,
    /// TP / (TP + FP) for the positive label.
    Precision,
    /// TP / (TP + FN) for the positive label.
    Recall,
    /// Harmonic mean of precision and recall.
    F1,
    /// Area under the ROC curve of the positive class's probability (binary).
    RocAuc,
    /// Mean negative log-likelihood of the true class's probability.
    LogLoss,
    /// Mean absolute error.
    Mae,
    /// Root mean squared error.
    Rmse,
    /// Coefficient of determination.
    R2,
    /// Mean absolute percentage error (rows with a zero truth are skipped).
    Mape,
}

impl QualityMetric {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::Precision => "precision",
            Self::Recall => "recall",
            Self::F1 => "f1",
            Self::RocAuc => "roc_auc",
            Self::LogLoss => "log_loss",
            Self::Mae => "mae",
            Self::Rmse => "rmse",
            Self::R2 => "r2",
            Self::Mape => "mape",
        }
    }

    /// Whether it is a classification metric.
    pub fn is_classification(self) -> bool {
        matches!(
            self,
            Self::Accuracy
                | Self::Precision
                | Self::Recall
                | Self::F1
                | Self::RocAuc
                | Self::LogLoss
        )
    }
}

/// A bound on a quality metric: it fails below `min` or above `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityThreshold {
    /// The metric.
    pub metric: QualityMetric,
    /// Fails when the metric is below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Fails when the metric is above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Where an alert is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertRoute {
    /// A JSON POST, signed with HMAC-SHA256 of the body under the server's alert signing key
    /// (`X-Cairn-Signature: sha256=<hex>`), retried with backoff.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
    },
    /// An email through the server's SMTP relay.
    Email {
        /// Recipients.
        to: Vec<String>,
    },
}

/// The longest window a check may look back over.
pub const MAX_WINDOW_SECONDS: u64 = 90 * 24 * 3600;
/// The most features a monitor may list.
pub const MAX_FEATURES: usize = 1000;
/// The most alert routes.
pub const MAX_ROUTES: usize = 20;

/// Parses a window such as `90s`, `30m`, `24h` or `7d` into seconds.
pub fn parse_window(window: &str) -> Result<u64, DomainError> {
    let invalid = || {
        DomainError::invalid(format!(
            "invalid window '{window}': a whole number followed by s, m, h or d (e.g. 30m, 24h, 7d)"
        ))
    };
    let trimmed = window.trim();
    let unit = trimmed.chars().last().ok_or_else(invalid)?;
    let number: u64 = trimmed[..trimmed.len() - unit.len_utf8()].parse().map_err(|_| invalid())?;
    let seconds = match unit {
        's' => number,
        'm' => number.checked_mul(60).ok_or_else(invalid)?,
        'h' => number.checked_mul(3600).ok_or_else(invalid)?,
        'd' => number.checked_mul(86_400).ok_or_else(invalid)?,
        _ => return Err(invalid()),
    };
    if seconds == 0 || seconds > MAX_WINDOW_SECONDS {
        return Err(DomainError::invalid(format!(
            "window '{window}' must be between 1 second and 90 days"
        )));
    }
    Ok(seconds)
}

impl MonitorSpec {
    /// Checks everything that does not need the store: shares, window, thresholds, routes.
    /// The schedule (cron) and the reference file are checked by the service.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(self.drift_share > 0.0 && self.drift_share <= 1.0) {
            return Err(DomainError::invalid(format!(
                "drift_share must be in (0, 1], not {}",
                self.drift_share
            )));
        }
        parse_window(&self.window)?;
        match (&self.reference.uri, &self.reference.run_artifact) {
            (Some(uri), None) if !uri.trim().is_empty() => {}
            (None, Some(path)) if !path.trim().is_empty() => {}
            _ => {
                return Err(DomainError::invalid(
                    "monitor reference: give exactly one of uri (runs:/<run_id>/<path>, mlflow-artifacts:/<path> or a store path) or run_artifact (a file of the served model's run)",
                ));
            }
        }
        if self.features.len() > MAX_FEATURES {
            return Err(DomainError::invalid(format!(
                "a monitor lists at most {MAX_FEATURES} features"
            )));
        }
        for (index, feature) in self.features.iter().enumerate() {
            if feature.name.is_empty() {
                return Err(DomainError::invalid(format!("feature {} has no name", index + 1)));
            }
            if self.features[..index].iter().any(|other| other.name == feature.name) {
                return Err(DomainError::invalid(format!(
                    "feature '{}' is listed twice",
                    feature.name
                )));
            }
            check_threshold(&feature.name, feature.method, feature.threshold)?;
        }
        if let Some(prediction) = &self.prediction {
            check_threshold("prediction", prediction.method, prediction.threshold)?;
        }
        let classification = self.quality.iter().filter(|q| q.metric.is_classification()).count();
        if classification != 0 && classification != self.quality.len() {
            return Err(DomainError::invalid(
                "quality thresholds mix classification and regression metrics",
            ));
        }
        for (index, threshold) in self.quality.iter().enumerate() {
            let name = threshold.metric.name();
            if threshold.min.is_none() && threshold.max.is_none() {
                return Err(DomainError::invalid(format!(
                    "quality threshold on {name}: give min, max or both"
                )));
            }
            if [threshold.min, threshold.max].iter().flatten().any(|bound| !bound.is_finite()) {
                return Err(DomainError::invalid(format!(
                    "quality threshold on {name}: bounds must be finite numbers"
                )));
            }
            if self.quality[..index].iter().any(|other| other.metric == threshold.metric) {
                return Err(DomainError::invalid(format!("quality metric {name} is listed twice")));
            }
        }
        if self.alerts.len() > MAX_ROUTES {
            return Err(DomainError::invalid(format!(
                "a monitor has at most {MAX_ROUTES} alert routes"
            )));
        }
        for route in &self.alerts {
            match route {
                AlertRoute::Webhook { url } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(DomainError::invalid(format!(
                            "webhook URL '{url}' must start with http:// or https://"
                        )));
                    }
                }
                AlertRoute::Email { to } => {
                    if to.is_empty() || to.iter().any(|address| !plausible_address(address)) {
                        return Err(DomainError::invalid(format!(
                            "email route: every recipient must be an address like name@example.com, got {to:?}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The window in seconds (valid specs only; 24 hours otherwise).
    pub fn window_seconds(&self) -> u64 {
        parse_window(&self.window).unwrap_or(86_400)
    }
}

fn check_threshold(
    name: &str,
    method: Option<Method>,
    threshold: Option<f64>,
) -> Result<(), DomainError> {
    let Some(threshold) = threshold else { return Ok(()) };
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(DomainError::invalid(format!(
            "{name}: threshold must be a non-negative number, not {threshold}"
        )));
    }
    if method.is_some_and(|method| method.is_p_value()) && threshold > 1.0 {
        return Err(DomainError::invalid(format!(
            "{name}: a p-value threshold must be at most 1, not {threshold}"
        )));
    }
    Ok(())
}

fn plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !address.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Every threshold held.
    Passed,
    /// At least one threshold failed.
    Failed,
    /// Too little data in the window to decide (nothing failed).
    InsufficientData,
    /// The check could not run (reference unreadable, …); see the message.
    Error,
}

impl CheckStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::InsufficientData => "insufficient_data",
            Self::Error => "error",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "passed" => Self::Passed,
            "failed" => Self::Failed,
            "insufficient_data" => Self::InsufficientData,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// One feature's drift in a check: the statistics, or why there were none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureResult {
    /// The feature (or `prediction:<output>`).
    pub name: String,
    /// The statistics and verdict, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<ColumnDrift>,
    /// Why not computed (insufficient data, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Quality in a check's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityResult {
    /// Captured rows in the window with ground truth.
    pub rows: u64,
    /// The metrics computed (by name).
    pub metrics: BTreeMap<String, f64>,
    /// Why a metric could not be computed (by name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
}

/// One threshold's outcome in a check: the key of the alert it opens or closes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdOutcome {
    /// `dataset_drift`, `feature_drift:<name>`, `prediction_drift`, `quality:<metric>`.
    pub key: String,
    /// Whether it failed.
    pub failed: bool,
    /// A sentence for people.
    pub message: String,
}

/// Everything a check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Captured rows (primary answers) in the window.
    pub current_rows: u64,
    /// Rows of the reference.
    pub reference_rows: u64,
    /// Per feature.
    pub features: Vec<FeatureResult>,
    /// The dataset verdict, when enough features were tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetDrift>,
    /// Prediction drift, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<FeatureResult>,
    /// Quality, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityResult>,
    /// Every threshold evaluated.
    pub thresholds: Vec<ThresholdOutcome>,
}

/// A stored check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Id.
    pub id: i64,
    /// The deployment's name.
    pub deployment: String,
    /// The deployment revision whose monitor spec was used.
    pub revision: i64,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// Who asked (`scheduler` for scheduled checks).
    pub requested_by: String,
    /// The window checked, epoch ms: [start, end).
    pub window_start: i64,
    /// End of the window.
    pub window_end: i64,
    /// When it finished (epoch ms).
    pub finished_at: i64,
    /// How it ended.
    pub status: CheckStatus,
    /// A one-line summary.
    pub message: String,
    /// The results (absent when the check could not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CheckResult>,
    /// The HTML report's path in the artifact store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_path: Option<String>,
}

/// Alert states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The threshold is failing.
    Open,
    /// It recovered (or the monitor was removed).
    Closed,
}

/// An alert: one failing threshold of one deployment, from the check that opened it to the
/// check that closed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Id.
    pub id: i64,
    /// The deployment's name.
    pub deployment: String,
    /// The threshold's key (see [`ThresholdOutcome::key`]).
    pub key: String,
    /// Open or closed.
    pub state: AlertState,
    /// The latest message.
    pub message: String,
    /// The check that opened it.
    pub opened_check: i64,
    /// When (epoch ms).
    pub opened_at: i64,
    /// The latest check that saw it failing.
    pub last_check: i64,
    /// The check that closed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_check: Option<i64>,
    /// When (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<MonitorSpec, String> {
        let spec: MonitorSpec = serde_json::from_value(json).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.message)?;
        Ok(spec)
    }

    #[test]
    fn windows_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_window("90s").unwrap(), 90);
        assert_eq!(parse_window("30m").unwrap(), 1800);
        assert_eq!(parse_window("24h").unwrap(), 86_400);
        assert_eq!(parse_window("7d").unwrap(), 604_800);
        for bad in ["", "h", "0h", "-1h", "1w", "1.5h", "91d", "99999999999999999999d"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_minimal_spec_takes_the_defaults() {
        let spec =
            spec(serde_json::json!({ "reference": { "uri": "runs:/abc/ref.parquet" } })).unwrap();
        assert_eq!(spec.drift_share, 0.5);
        assert_eq!(spec.schedule, "@hourly");
        assert_eq!(spec.window_seconds(), 86_400);
        assert!(spec.features.is_empty() && spec.alerts.is_empty());
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let cases = [
            (serde_json::json!({ "reference": {} }), "exactly one of uri"),
            (
                serde_json::json!({ "reference": { "uri": "a", "run_artifact": "b" } }),
                "exactly one of uri",
            ),
            (serde_json::json!({ "reference": { "uri": "a" }, "drift_share": 0 }), "drift_share"),
            (
                serde_json::json!({ "reference": { "uri": "a" }, "features": [{ "name": "x" }, { "name": "x" }] }),
                "listed twice",
            ),
            (
                serde_json::json!({ "reference": { "uri": "a" }, "features": [{ "name": "x", "method": "ks", "threshold": 2 }] }),
                "p-value threshold",
            ),
            (
                serde_json::json!({ "reference": { "uri": "a" }, "quality": [{ "metric": "accuracy" }] }),
                "give min, max",
            ),
            (
                serde_json::json!({ "reference": { "uri": "a" }, "quality": [{ "metric": "accuracy", "min": 0.8 }, { "metric": "rmse", "max": 2 }] }),
                "mix classification",
            ),
            (
                serde_json::json!({ "reference": { "uri": "a" }, "alerts": [{ "type": "webhook", "url": "ftp://x" }] }),
                "http://",
            ),
            (
                serde_json::json!({ "reference": { "uri": "a" }, "alerts": [{ "type": "email", "to": ["nobody"] }] }),
                "recipient",
            ),
            (serde_json::json!({ "reference": { "uri": "a" }, "window": "1w" }), "invalid window"),
            (serde_json::json!({ "reference": { "uri": "a" }, "colour": "red" }), "unknown field"),
        ];
        for (json, expected) in cases {
            let error = spec(json.clone()).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
