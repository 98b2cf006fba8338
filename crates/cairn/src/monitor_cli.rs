//! `cairn monitor …`: a deployment's drift and quality monitor, its checks, reports, ground
//! truth and alerts, through a running server's native API.

use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{call_in, load_login, send_raw};
use crate::governance_cli::ProjectScope;

/// `cairn monitor …`.
// Parsed once per process; boxing `Set`'s many flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// Set a deployment's monitor (a new deployment revision), from a JSON file and/or flags;
    /// flags override the file's fields.
    Set {
        /// The deployment.
        name: String,
        /// A JSON monitor spec (see docs/MONITORING.md); `-` reads standard input.
        #[arg(long)]
        file: Option<String>,
        /// The reference data: `runs:/<run_id>/<path>`, `mlflow-artifacts:/<path>` or a path in
        /// the artifact store (Parquet or CSV).
        #[arg(long, conflicts_with = "run_artifact")]
        reference: Option<String>,
        /// The reference is this artifact of the served version's run (e.g. data/train.parquet).
        #[arg(long)]
        run_artifact: Option<String>,
        /// A monitored feature: NAME, or NAME:KIND[:METHOD[:THRESHOLD]] with KIND numerical,
        /// categorical or '' (inferred), METHOD ks, chisquare, z, wasserstein, jensenshannon,
        /// psi, kl_div or hellinger (repeatable; default every signature input).
        #[arg(long = "feature")]
        features: Vec<String>,
        /// Monitor drift of this model output (e.g. label) against the reference column given
        /// by --prediction-column.
        #[arg(long)]
        prediction_output: Option<String>,
        /// The reference column holding reference predictions (default `prediction`).
        #[arg(long)]
        prediction_column: Option<String>,
        /// A quality threshold: METRIC>=X or METRIC<=X (accuracy, precision, recall, f1,
        /// roc_auc, log_loss, mae, rmse, r2, mape; repeatable).
        #[arg(long = "quality")]
        quality: Vec<String>,
        /// The positive label for precision/recall/F1/ROC AUC (JSON, default 1).
        #[arg(long)]
        positive_label: Option<String>,
        /// Dataset drift when at least this share of features drift (default 0.5).
        #[arg(long)]
        drift_share: Option<f64>,
        /// When checks run: cron (UTC; 5 fields, or 6 with seconds first) or @hourly, @daily…
        #[arg(long)]
        schedule: Option<String>,
        /// How far back a check looks: 30m, 24h, 7d… (default 24h).
        #[arg(long)]
        window: Option<String>,
        /// Fewer captured rows than this: insufficient data (default 30).
        #[arg(long)]
        min_rows: Option<u64>,
        /// Send alerts to this webhook (repeatable).
        #[arg(long = "webhook")]
        webhooks: Vec<String>,
        /// Send alerts to this address (repeatable; the server needs --smtp-host).
        #[arg(long = "email")]
        emails: Vec<String>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Show a deployment's monitor as resolved (features, pinned reference) and its next run.
    Show {
        /// The deployment.
        name: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Remove a deployment's monitor (its open alerts are closed).
    Unset {
        /// The deployment.
        name: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Run a check now and print its verdict (exit 3 when a threshold failed).
    Check {
        /// The deployment.
        name: String,
        /// Print the whole check as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// List a deployment's checks, newest first.
    Checks {
        /// The deployment.
        name: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Save a check's report (HTML, or JSON with --json).
    Report {
        /// The deployment.
        name: String,
        /// The check's id.
        check: i64,
        /// The JSON form instead of HTML.
        #[arg(long)]
        json: bool,
        /// Where to write it (default: standard output).
        #[arg(long, short)]
        output: Option<String>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Post ground truth by prediction id from a file: .csv (prediction_id,row,value),
    /// .json or .parquet.
    GroundTruth {
        /// The deployment.
        name: String,
        /// The file.
        file: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// List alerts (open ones by default), of one deployment or of the project.
    Alerts {
        /// The deployment (default: every deployment of the project).
        name: Option<String>,
        /// Closed alerts too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        scope: ProjectScope,
    },
}

fn feature(text: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 4 || parts[0].is_empty() {
        bail!("--feature {text}: expected NAME or NAME:KIND[:METHOD[:THRESHOLD]]");
    }
    let mut object = Map::new();
    object.insert("name".into(), json!(parts[0]));
    if let Some(kind) = parts.get(1).filter(|k| !k.is_empty()) {
        object.insert("kind".into(), json!(kind));
    }
    if let Some(method) = parts.get(2).filter(|m| !m.is_empty()) {
        object.insert("method".into(), json!(method));
    }
    if let Some(threshold) = parts.get(3) {
        let value: f64 = threshold
            .parse()
            .with_context(|| format!("--feature {text}: the threshold is not a number"))?;
        object.insert("threshold".into(), json!(value));
    }
    Ok(Value::Object(object))
}

fn quality(text: &str) -> anyhow::Result<Value> {
    let (metric, bound, value) = if let Some((metric, value)) = text.split_once(">=") {
        (metric, "min", value)
    } else if let Some((metric, value)) = text.split_once("<=") {
        (metric, "max", value)
    } else {
        bail!("--quality {text}: expected METRIC>=X or METRIC<=X");
    };
    let value: f64 =
        value.trim().parse().with_context(|| format!("--quality {text}: not a number"))?;
    Ok(json!({"metric": metric.trim(), bound: value}))
}

fn read_input(path: &str) -> anyhow::Result<Vec<u8>> {
    if path == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .context("reading standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("reading {path}"))
    }
}

fn print_check(check: &Value) {
    println!(
        "check {} of {} (revision {}, {}): {} — {}",
        check["id"],
        check["deployment"].as_str().unwrap_or_default(),
        check["revision"],
        check["trigger"].as_str().unwrap_or_default(),
        check["status"].as_str().unwrap_or_default(),
        check["message"].as_str().unwrap_or_default()
    );
    let result = &check["result"];
    if result.is_null() {
        return;
    }
    println!(
        "  window {} — {}: {} captured rows, reference {} rows",
        check["window_start"].as_i64().map(cairn_domain::time::format_utc).unwrap_or_default(),
        check["window_end"].as_i64().map(cairn_domain::time::format_utc).unwrap_or_default(),
        result["current_rows"],
        result["reference_rows"]
    );
    let features = result["features"].as_array().into_iter().flatten();
    for feature in features.chain(result["prediction"].as_object().map(|_| &result["prediction"])) {
        let drift = &feature["drift"];
        if drift.is_null() {
            println!(
                "  {:<24} {}",
                feature["name"].as_str().unwrap_or_default(),
                feature["error"].as_str().unwrap_or_default()
            );
        } else {
            println!(
                "  {:<24} {:<12} {:<14} {:>12.6} (threshold {}) {}",
                feature["name"].as_str().unwrap_or_default(),
                drift["kind"].as_str().unwrap_or_default(),
                drift["method"].as_str().unwrap_or_default(),
                drift["statistic"].as_f64().unwrap_or(f64::NAN),
                drift["threshold"],
                if drift["drifted"].as_bool() == Some(true) { "DRIFT" } else { "ok" }
            );
        }
    }
    if let Some(metrics) = result["quality"]["metrics"].as_object() {
        let rows = &result["quality"]["rows"];
        for (name, value) in metrics {
            println!(
                "  {name:<24} {:.6} ({rows} rows with ground truth)",
                value.as_f64().unwrap_or(f64::NAN)
            );
        }
    }
}

/// Runs `cairn monitor …`.
pub async fn monitor(command: &MonitorCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        MonitorCommand::Set {
            name,
            file,
            reference,
            run_artifact,
            features,
            prediction_output,
            prediction_column,
            quality: thresholds,
            positive_label,
            drift_share,
            schedule,
            window,
            min_rows,
            webhooks,
            emails,
            scope,
        } => {
            let mut spec: Map<String, Value> = match file {
                Some(file) => serde_json::from_slice(&read_input(file)?)
                    .with_context(|| format!("{file} is not a JSON object"))?,
                None => Map::new(),
            };
            if let Some(uri) = reference {
                spec.insert("reference".into(), json!({"uri": uri}));
            }
            if let Some(path) = run_artifact {
                spec.insert("reference".into(), json!({"run_artifact": path}));
            }
            if !features.is_empty() {
                let list =
                    features.iter().map(|f| feature(f)).collect::<anyhow::Result<Vec<_>>>()?;
                spec.insert("features".into(), Value::Array(list));
            }
            if prediction_output.is_some() || prediction_column.is_some() {
                let mut prediction = Map::new();
                if let Some(output) = prediction_output {
                    prediction.insert("output".into(), json!(output));
                }
                if let Some(column) = prediction_column {
                    prediction.insert("column".into(), json!(column));
                }
                spec.insert("prediction".into(), Value::Object(prediction));
            }
            if !thresholds.is_empty() {
                let list =
                    thresholds.iter().map(|q| quality(q)).collect::<anyhow::Result<Vec<_>>>()?;
                spec.insert("quality".into(), Value::Array(list));
            }
            if let Some(label) = positive_label {
                let value = serde_json::from_str(label).unwrap_or_else(|_| json!(label));
                spec.insert("positive_label".into(), value);
            }
            for (key, value) in [
                ("drift_share", drift_share.map(|v| json!(v))),
                ("schedule", schedule.as_ref().map(|v| json!(v))),
                ("window", window.as_ref().map(|v| json!(v))),
                ("min_rows", min_rows.map(|v| json!(v))),
            ] {
                if let Some(value) = value {
                    spec.insert(key.into(), value);
                }
            }
            if !webhooks.is_empty() || !emails.is_empty() {
                let mut routes: Vec<Value> =
                    webhooks.iter().map(|url| json!({"type": "webhook", "url": url})).collect();
                if !emails.is_empty() {
                    routes.push(json!({"type": "email", "to": emails}));
                }
                spec.insert("alerts".into(), Value::Array(routes));
            }
            if !spec.contains_key("reference") {
                bail!(
                    "give the reference data: --reference URI, --run-artifact PATH or a --file with \"reference\""
                );
            }
            let deployment = call_in(
                &login,
                scope.project.as_deref(),
                Method::PUT,
                &format!("/deployments/{name}/monitor"),
                Some(json!({"monitor": spec})),
            )
            .await?;
            let monitor = &deployment["monitor"];
            println!(
                "monitor of '{name}' set at revision {}: {} features, reference {} (sha256 {}), schedule {}, window {}",
                deployment["revision"],
                monitor["features"].as_array().map_or(0, Vec::len),
                monitor["reference"]["resolved"]["path"].as_str().unwrap_or_default(),
                monitor["reference"]["resolved"]["sha256"]
                    .as_str()
                    .map_or("", |s| &s[..12.min(s.len())]),
                monitor["schedule"].as_str().unwrap_or_default(),
                monitor["window"].as_str().unwrap_or_default()
            );
        }
        MonitorCommand::Show { name, scope } => {
            let view = call_in(
                &login,
                scope.project.as_deref(),
                Method::GET,
                &format!("/deployments/{name}/monitor"),
                None,
            )
            .await?;
            if view["monitor"].is_null() {
                println!("deployment '{name}' has no monitor");
            } else {
                println!("{}", serde_json::to_string_pretty(&view["monitor"]).unwrap_or_default());
                if let Some(next) = view["next_run_at"].as_i64() {
                    println!("next scheduled check: {}", cairn_domain::time::format_utc(next));
                }
            }
        }
        MonitorCommand::Unset { name, scope } => {
            let deployment = call_in(
                &login,
                scope.project.as_deref(),
                Method::DELETE,
                &format!("/deployments/{name}/monitor"),
                None,
            )
            .await?;
            println!("monitor of '{name}' removed at revision {}", deployment["revision"]);
        }
        MonitorCommand::Check { name, json, scope } => {
            eprintln!("checking '{name}' (reading the captured window and the reference)…");
            let check = call_in(
                &login,
                scope.project.as_deref(),
                Method::POST,
                &format!("/deployments/{name}/checks"),
                None,
            )
            .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&check).unwrap_or_default());
            } else {
                print_check(&check);
            }
            if check["status"] == "failed" {
                std::process::exit(3);
            }
        }
        MonitorCommand::Checks { name, limit, scope } => {
            let checks = call_in(
                &login,
                scope.project.as_deref(),
                Method::GET,
                &format!("/deployments/{name}/checks?limit={limit}"),
                None,
            )
            .await?;
            for check in checks.as_array().into_iter().flatten() {
                println!(
                    "{:>6}  {}  {:<10} {:<18} {}",
                    check["id"],
                    check["finished_at"]
                        .as_i64()
                        .map(cairn_domain::time::format_utc)
                        .unwrap_or_default(),
                    check["trigger"].as_str().unwrap_or_default(),
                    check["status"].as_str().unwrap_or_default(),
                    check["message"].as_str().unwrap_or_default()
                );
            }
        }
        MonitorCommand::Report { name, check, json, output, scope } => {
            let format = if *json { "json" } else { "html" };
            let bytes = send_raw(
                &login,
                scope.project.as_deref(),
                Method::GET,
                &format!("/deployments/{name}/checks/{check}/report?format={format}"),
                None,
                Vec::new(),
            )
            .await?;
            match output {
                Some(path) => {
                    std::fs::write(path, &bytes).with_context(|| format!("writing {path}"))?;
                    eprintln!("wrote {path} ({} bytes)", bytes.len());
                }
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&bytes).context("writing the report")?;
                }
            }
        }
        MonitorCommand::GroundTruth { name, file, scope } => {
            let lower = file.to_ascii_lowercase();
            let content_type = if lower.ends_with(".csv") {
                "text/csv"
            } else if lower.ends_with(".parquet") {
                "application/vnd.apache.parquet"
            } else if lower.ends_with(".json") {
                "application/json"
            } else {
                bail!("{file}: give a .csv, .json or .parquet file");
            };
            let bytes = read_input(file)?;
            let answer = send_raw(
                &login,
                scope.project.as_deref(),
                Method::POST,
                &format!("/deployments/{name}/ground-truth"),
                Some(content_type),
                bytes,
            )
            .await?;
            let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
            println!("stored {} ground-truth rows for '{name}'", answer["rows"]);
        }
        MonitorCommand::Alerts { name, all, scope } => {
            let state = if *all { "all" } else { "open" };
            let path = match name {
                Some(name) => format!("/deployments/{name}/alerts?state={state}"),
                None => format!("/alerts?state={state}"),
            };
            let alerts =
                call_in(&login, scope.project.as_deref(), Method::GET, &path, None).await?;
            let alerts = alerts.as_array().cloned().unwrap_or_default();
            if alerts.is_empty() {
                println!("no {state} alerts");
            }
            for alert in alerts {
                println!(
                    "{:>6}  {:<6} {:<16} {:<28} opened {} by check {}{}  {}",
                    alert["id"],
                    alert["state"].as_str().unwrap_or_default(),
                    alert["deployment"].as_str().unwrap_or_default(),
                    alert["key"].as_str().unwrap_or_default(),
                    alert["opened_at"]
                        .as_i64()
                        .map(cairn_domain::time::format_utc)
                        .unwrap_or_default(),
                    alert["opened_check"],
                    alert["closed_check"]
                        .as_i64()
                        .map(|c| format!(", closed by check {c}"))
                        .unwrap_or_default(),
                    alert["message"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_and_quality_flags_parse() {
        assert_eq!(feature("age").unwrap(), json!({"name": "age"}));
        assert_eq!(
            feature("age:numerical:psi:0.2").unwrap(),
            json!({"name": "age", "kind": "numerical", "method": "psi", "threshold": 0.2})
        );
        assert_eq!(feature("c::chisquare").unwrap(), json!({"name": "c", "method": "chisquare"}));
        assert!(feature("a:b:c:d:e").is_err() && feature("x:numerical:ks:high").is_err());
        assert_eq!(quality("accuracy>=0.8").unwrap(), json!({"metric": "accuracy", "min": 0.8}));
        assert_eq!(quality("rmse <= 2").unwrap(), json!({"metric": "rmse", "max": 2.0}));
        assert!(quality("accuracy=0.8").is_err());
    }
}
