//! `cairn deploy …`: deployments through a running server's native API, scoped to a project
//! with `--project` (or `CAIRN_PROJECT`).

use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{call_in, load_login, send};
use crate::governance_cli::ProjectScope;

/// `cairn deploy …`.
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Deploy a registered model version (or several, with weights) as an HTTP endpoint.
    Create {
        /// The deployment's name (lowercase letters, digits, '-'); part of its URLs.
        name: String,
        /// The registered model.
        #[arg(long)]
        model: String,
        /// The version to serve (repeat with --weight for a canary: --version 3 --weight 90
        /// --version 4 --weight 10).
        #[arg(long = "version", required_unless_present = "alias")]
        versions: Vec<i64>,
        /// Serve the version an alias points at instead.
        #[arg(long, conflicts_with = "versions")]
        alias: Option<String>,
        /// Weights, one per --version (default 100 each).
        #[arg(long = "weight")]
        weights: Vec<u32>,
        /// The environment the deploy gate is asked about.
        #[arg(long, default_value = "production")]
        environment: String,
        /// Only this account may call it (repeatable; default: any reader of the project).
        #[arg(long = "caller")]
        callers: Vec<String>,
        /// A shadow version that receives a copy of the traffic (answers captured, never returned).
        #[arg(long)]
        shadow_version: Option<i64>,
        /// The share of requests captured to Parquet (0–1; 0 turns capture off).
        #[arg(long, default_value_t = 1.0)]
        capture_sample_rate: f64,
        /// A JSON monitor spec to deploy with (see docs/MONITORING.md; `cairn monitor set`
        /// changes it later).
        #[arg(long)]
        monitor_file: Option<String>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// List the project's deployments.
    List {
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Show a deployment and its history.
    Show {
        /// The deployment.
        name: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Change what a deployment serves (a new revision, swapped in atomically).
    Update {
        /// The deployment.
        name: String,
        /// The registered model.
        #[arg(long)]
        model: String,
        /// Versions to serve.
        #[arg(long = "version", required = true)]
        versions: Vec<i64>,
        /// Weights, one per --version.
        #[arg(long = "weight")]
        weights: Vec<u32>,
        /// Why.
        #[arg(long)]
        comment: Option<String>,
        /// Only this account may call it (repeatable; default: any reader of the project).
        #[arg(long = "caller")]
        callers: Vec<String>,
        /// A shadow version that receives a copy of the traffic (answers captured, never returned).
        #[arg(long)]
        shadow_version: Option<i64>,
        /// The share of requests captured to Parquet (0–1; 0 turns capture off).
        #[arg(long, default_value_t = 1.0)]
        capture_sample_rate: f64,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Serve an earlier revision's traffic again (the previous one by default).
    Rollback {
        /// The deployment.
        name: String,
        /// The revision to return to.
        #[arg(long)]
        to_revision: Option<i64>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Delete a deployment (its history stays on record).
    Delete {
        /// The deployment.
        name: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Send rows to a deployment (MLflow scoring protocol) and print the predictions.
    Predict {
        /// The deployment.
        name: String,
        /// A JSON file with an MLflow scoring body (dataframe_split, dataframe_records,
        /// instances or inputs); `-` reads standard input.
        #[arg(long)]
        input: String,
    },
}

fn routes(model: &str, versions: &[i64], weights: &[u32]) -> anyhow::Result<Value> {
    if !weights.is_empty() && weights.len() != versions.len() {
        bail!(
            "give one --weight per --version ({} versions, {} weights)",
            versions.len(),
            weights.len()
        );
    }
    Ok(Value::Array(
        versions
            .iter()
            .enumerate()
            .map(|(i, version)| {
                json!({"model": model, "version": version, "weight": weights.get(i).copied().unwrap_or(100)})
            })
            .collect(),
    ))
}

fn print_deployment(deployment: &Value) {
    println!(
        "{} (project {}, environment {}) at revision {}",
        deployment["name"].as_str().unwrap_or_default(),
        deployment["project"].as_str().unwrap_or_default(),
        deployment["environment"].as_str().unwrap_or_default(),
        deployment["revision"]
    );
    for route in deployment["routes"].as_array().into_iter().flatten() {
        println!(
            "  {} version {} — {}% ({})",
            route["model"].as_str().unwrap_or_default(),
            route["version"],
            route["share"],
            route["sha256"].as_str().map(|s| &s[..12.min(s.len())]).unwrap_or("-")
        );
    }
    println!(
        "  MLflow scoring: POST {}   Open Inference Protocol: POST {}",
        deployment["invocations_url"].as_str().unwrap_or_default(),
        deployment["infer_url"].as_str().unwrap_or_default()
    );
    let monitor = &deployment["monitor"];
    if monitor.is_object() {
        println!(
            "  monitor: {} features against {}, schedule {}, window {} (cairn monitor show {})",
            monitor["features"].as_array().map_or(0, Vec::len),
            monitor["reference"]["resolved"]["path"].as_str().unwrap_or_default(),
            monitor["schedule"].as_str().unwrap_or_default(),
            monitor["window"].as_str().unwrap_or_default(),
            deployment["name"].as_str().unwrap_or_default()
        );
    }
}

/// Runs `cairn deploy …`.
pub async fn deploy(command: &DeployCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        DeployCommand::Create {
            name,
            model,
            versions,
            alias,
            weights,
            environment,
            callers,
            shadow_version,
            capture_sample_rate,
            monitor_file,
            scope,
        } => {
            let project = scope.project.as_deref();
            let monitor: Option<Value> = match monitor_file {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
                    Some(
                        serde_json::from_str(&text)
                            .with_context(|| format!("{path} is not JSON"))?,
                    )
                }
                None => None,
            };
            let versions = match alias {
                Some(alias) => {
                    let path = format!(
                        "/api/2.0/mlflow/registered-models/alias?name={}&alias={}",
                        form(model),
                        form(alias)
                    );
                    let prefix = project.map(|p| format!("/p/{p}")).unwrap_or_default();
                    let (status, bytes) =
                        send(&login, Method::GET, &format!("{prefix}{path}"), None).await?;
                    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if !status.is_success() {
                        bail!(
                            "{status}: {}",
                            value["message"].as_str().unwrap_or("alias lookup failed")
                        );
                    }
                    let version: i64 = value["model_version"]["version"]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .context("the alias answer has no version")?;
                    vec![version]
                }
                None => versions.clone(),
            };
            let body = json!({
                "name": name, "environment": environment, "routes": routes(model, &versions, weights)?,
                "callers": callers, "shadow": shadow_version.map(|v| json!({"model": model, "version": v})),
                "capture": capture_json(*capture_sample_rate),
                "monitor": monitor,
            });
            let deployment =
                call_in(&login, project, Method::POST, "/deployments", Some(body)).await?;
            print_deployment(&deployment);
        }
        DeployCommand::List { scope } => {
            let deployments =
                call_in(&login, scope.project.as_deref(), Method::GET, "/deployments", None)
                    .await?;
            for deployment in deployments.as_array().into_iter().flatten() {
                print_deployment(deployment);
            }
        }
        DeployCommand::Show { name, scope } => {
            let project = scope.project.as_deref();
            print_deployment(
                &call_in(&login, project, Method::GET, &format!("/deployments/{name}"), None)
                    .await?,
            );
            let history = call_in(
                &login,
                project,
                Method::GET,
                &format!("/deployments/{name}/history"),
                None,
            )
            .await?;
            println!("history:");
            for revision in history.as_array().into_iter().flatten() {
                let routes: Vec<String> = revision["routes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        format!(
                            "{} v{} {}%",
                            r["model"].as_str().unwrap_or_default(),
                            r["version"],
                            r["share"]
                        )
                    })
                    .collect();
                println!(
                    "  revision {} at {} by {}: {} {}",
                    revision["revision"],
                    revision["created_at"]
                        .as_i64()
                        .map(cairn_domain::time::format_utc)
                        .unwrap_or_default(),
                    revision["created_by"].as_str().unwrap_or_default(),
                    routes.join(", "),
                    revision["comment"].as_str().map(|c| format!("({c})")).unwrap_or_default()
                );
            }
        }
        DeployCommand::Update {
            name,
            model,
            versions,
            weights,
            comment,
            callers,
            shadow_version,
            capture_sample_rate,
            scope,
        } => {
            let body = json!({
                "routes": routes(model, versions, weights)?, "comment": comment, "callers": callers,
                "shadow": shadow_version.map(|v| json!({"model": model, "version": v})),
                "capture": capture_json(*capture_sample_rate),
            });
            let deployment = call_in(
                &login,
                scope.project.as_deref(),
                Method::PUT,
                &format!("/deployments/{name}"),
                Some(body),
            )
            .await?;
            print_deployment(&deployment);
        }
        DeployCommand::Rollback { name, to_revision, scope } => {
            let body = json!({"to_revision": to_revision});
            let deployment = call_in(
                &login,
                scope.project.as_deref(),
                Method::POST,
                &format!("/deployments/{name}/rollback"),
                Some(body),
            )
            .await?;
            print_deployment(&deployment);
        }
        DeployCommand::Delete { name, scope } => {
            call_in(
                &login,
                scope.project.as_deref(),
                Method::DELETE,
                &format!("/deployments/{name}"),
                None,
            )
            .await?;
            println!("deleted deployment '{name}' (its history stays on record)");
        }
        DeployCommand::Predict { name, input } => {
            let raw = if input == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?
            };
            let body: Value = serde_json::from_str(&raw).context("the input is not JSON")?;
            let (status, bytes) =
                send(&login, Method::POST, &format!("/serve/{name}/invocations"), Some(body))
                    .await?;
            let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if !status.is_success() {
                bail!(
                    "{status}: {}",
                    value["message"].as_str().unwrap_or(&String::from_utf8_lossy(&bytes))
                );
            }
            println!("{}", serde_json::to_string_pretty(&value["predictions"]).unwrap_or_default());
        }
    }
    Ok(())
}

fn capture_json(sample_rate: f64) -> Value {
    json!({"enabled": sample_rate > 0.0, "sample_rate": sample_rate.clamp(0.0, 1.0)})
}

fn form(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
