//! `cairn model …`, `cairn approvals …` and `cairn policy …`: registry governance through a
//! running server's native API, scoped to a project with `--project` (or `CAIRN_PROJECT`; the
//! caller's default project otherwise). `cairn model bundle verify` works offline.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Login, call_in, failure, load_login, send};

/// The project a command acts in.
#[derive(Debug, Clone, Args)]
pub struct ProjectScope {
    /// The project (default: your default project).
    #[arg(long, env = "CAIRN_PROJECT")]
    pub project: Option<String>,
}

/// `cairn model …`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Promote a version to an alias or stage; governed targets open an approval request.
    Promote {
        /// The registered model.
        name: String,
        /// The version.
        version: i64,
        /// The alias, e.g. champion.
        #[arg(long, conflicts_with = "stage", required_unless_present = "stage")]
        alias: Option<String>,
        /// The stage: Staging, Production or Archived.
        #[arg(long)]
        stage: Option<String>,
        /// For stages: archive the other versions in that stage when the move happens.
        #[arg(long)]
        archive_existing: bool,
        /// Why; shown to reviewers.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// A version's model card.
    #[command(subcommand)]
    Card(CardCommand),
    /// Which version held which alias or stage when, who moved it, under which approval.
    History {
        /// The registered model.
        name: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Ask the deploy gate whether a version may be deployed to an environment (exit status 3
    /// when refused).
    Gate {
        /// The registered model.
        name: String,
        /// The version.
        version: i64,
        /// The environment, e.g. production.
        #[arg(long)]
        environment: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Export a version's compliance bundle (`cairn model bundle NAME VERSION`), or check one
    /// offline (`cairn model bundle verify FILE`).
    Bundle(BundleArgs),
}

/// `cairn model bundle`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BundleArgs {
    /// Verify instead of export.
    #[command(subcommand)]
    pub verify: Option<BundleCommand>,
    /// The registered model.
    pub name: Option<String>,
    /// The version.
    pub version: Option<i64>,
    /// Where to write the archive (default: NAME-vVERSION-bundle.tar.gz).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub scope: ProjectScope,
}

/// `cairn model bundle verify`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Check a bundle's manifest digests and audit-record hashes (exit status 1 when broken).
    Verify {
        /// The `.tar.gz` file.
        file: PathBuf,
    },
}

/// `cairn model card …`.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Print the card (the latest revision, or `--revision`).
    Show {
        /// The registered model.
        name: String,
        /// The version.
        version: i64,
        /// A revision number.
        #[arg(long)]
        revision: Option<i64>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Save a new revision: from a JSON file, and/or field by field.
    Set {
        /// The registered model.
        name: String,
        /// The version.
        version: i64,
        /// A JSON card (intended_use, training_data, metrics, limitations, owner, notes); the
        /// flags below override its fields.
        #[arg(long)]
        file: Option<PathBuf>,
        /// What the model is for.
        #[arg(long)]
        intended_use: Option<String>,
        /// Known limitations.
        #[arg(long)]
        limitations: Option<String>,
        /// Who is accountable.
        #[arg(long)]
        owner: Option<String>,
        /// Training data, `name` or `name@version` (repeatable).
        #[arg(long = "dataset")]
        datasets: Vec<String>,
        /// A headline metric, `key=value` (repeatable).
        #[arg(long = "metric")]
        metrics: Vec<String>,
        /// Free notes.
        #[arg(long)]
        notes: Option<String>,
        #[command(flatten)]
        scope: ProjectScope,
    },
}

/// `cairn approvals …`.
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List requests, newest first.
    List {
        /// pending, approved, rejected or withdrawn.
        #[arg(long)]
        state: Option<String>,
        /// Only this model's.
        #[arg(long)]
        model: Option<String>,
        /// Every project's (governance reviewers and admins).
        #[arg(long)]
        all_projects: bool,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Print one request with its evidence and decisions.
    Show {
        /// The request id.
        id: i64,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Approve (governance reviewers).
    Approve {
        /// The request id.
        id: i64,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Reject, saying why (governance reviewers); final.
    Reject {
        /// The request id.
        id: i64,
        /// Why (required).
        #[arg(long)]
        comment: String,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Withdraw (the requester or a project owner).
    Withdraw {
        /// The request id.
        id: i64,
        #[command(flatten)]
        scope: ProjectScope,
    },
}

/// Rules of a policy, as flags.
#[derive(Debug, Clone, Args)]
pub struct RuleArgs {
    /// Approvals needed from governance reviewers (0–10).
    #[arg(long, default_value_t = 0)]
    pub approvals: u32,
    /// A condition on the source run, e.g. "metrics.auc >= 0.8" (repeatable).
    #[arg(long = "condition")]
    pub conditions: Vec<String>,
    /// Require a filled model card.
    #[arg(long)]
    pub require_model_card: bool,
    /// A deployment environment only approved versions may reach (repeatable).
    #[arg(long = "environment")]
    pub environments: Vec<String>,
}

impl RuleArgs {
    fn json(&self) -> Value {
        json!({
            "approvals": self.approvals, "conditions": self.conditions,
            "require_model_card": self.require_model_card, "environments": self.environments,
        })
    }
}

/// `cairn policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the policies in force (the project's and the site-wide ones).
    List {
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Print a policy with every revision.
    Show {
        /// The policy id.
        id: i64,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Create a policy (project owners; `--site-wide` needs a site admin).
    Create {
        /// A name, unique in its scope.
        name: String,
        /// alias:<name> or stage:<Staging|Production|Archived>.
        #[arg(long)]
        target: String,
        /// Only this model (default: every model).
        #[arg(long)]
        model: Option<String>,
        /// Site-wide instead of the project's.
        #[arg(long)]
        site_wide: bool,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Replace a policy's rules (a new revision; past approvals keep theirs).
    Update {
        /// The policy id.
        id: i64,
        #[command(flatten)]
        rules: RuleArgs,
        #[command(flatten)]
        scope: ProjectScope,
    },
    /// Take a policy out of force.
    Delete {
        /// The policy id.
        id: i64,
        #[command(flatten)]
        scope: ProjectScope,
    },
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn print_request(request: &Value) {
    println!(
        "request {} · {} v{} → {} · {} · {}/{} approvals · requested by {}",
        request["id"],
        text(&request["model"]),
        request["version"],
        text(&request["target"]),
        text(&request["state"]),
        request["approvals"],
        request["evidence"]["approvals_required"],
        text(&request["requested_by"])
    );
    for check in request["evidence"]["checks"].as_array().into_iter().flatten() {
        let mark = if check["passed"] == true { "pass" } else { "FAIL" };
        println!(
            "  [{mark}] {} — {} (policy '{}' rev {})",
            text(&check["requirement"]),
            text(&check["detail"]),
            text(&check["policy"]["name"]),
            check["policy"]["revision"]
        );
    }
    for decision in request["decisions"].as_array().into_iter().flatten() {
        println!(
            "  {} by {}: {}",
            text(&decision["decision"]),
            text(&decision["reviewer"]),
            text(&decision["comment"])
        );
    }
}

fn card_body(
    file: Option<&PathBuf>,
    fields: [(&str, Option<&String>); 4],
    datasets: &[String],
    metrics: &[String],
) -> anyhow::Result<Value> {
    let mut card = match file {
        Some(path) => {
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&raw).with_context(|| format!("{} is not JSON", path.display()))?
        }
        None => json!({}),
    };
    for (key, value) in fields {
        if let Some(value) = value {
            card[key] = json!(value);
        }
    }
    if !datasets.is_empty() {
        let refs: Vec<Value> = datasets
            .iter()
            .map(|dataset| match dataset.split_once('@') {
                Some((name, version)) => json!({"name": name, "version": version}),
                None => json!({"name": dataset}),
            })
            .collect();
        card["training_data"] = Value::Array(refs);
    }
    for metric in metrics {
        let (key, value) = metric
            .split_once('=')
            .with_context(|| format!("--metric '{metric}' is not key=value"))?;
        let value: f64 =
            value.parse().with_context(|| format!("--metric '{metric}': not a number"))?;
        card["metrics"][key] = json!(value);
    }
    Ok(card)
}

/// Runs `cairn model …`.
pub async fn model(command: &ModelCommand) -> anyhow::Result<()> {
    if let ModelCommand::Bundle(BundleArgs {
        verify: Some(BundleCommand::Verify { file }), ..
    }) = command
    {
        return verify(file);
    }
    let login = load_login()?;
    match command {
        ModelCommand::Promote { name, version, alias, stage, archive_existing, comment, scope } => {
            let body = json!({
                "alias": alias, "stage": stage,
                "archive_existing_versions": archive_existing, "comment": comment,
            });
            let path = format!("/models/{}/versions/{version}/promote", encode(name));
            let outcome =
                call_in(&login, scope.project.as_deref(), Method::POST, &path, Some(body)).await?;
            let target = alias.as_ref().map_or_else(
                || format!("stage {}", stage.as_deref().unwrap_or_default()),
                |alias| format!("alias {alias}"),
            );
            if outcome["applied"] == true {
                println!("{name} version {version} now holds {target}");
            } else {
                println!("{target} is governed: promotion awaits approval");
            }
            if outcome["request"].is_object() {
                print_request(&outcome["request"]);
            }
        }
        ModelCommand::Card(CardCommand::Show { name, version, revision, scope }) => {
            let mut path = format!("/models/{}/versions/{version}/card", encode(name));
            if let Some(revision) = revision {
                path.push_str(&format!("?revision={revision}"));
            }
            print_json(&call_in(&login, scope.project.as_deref(), Method::GET, &path, None).await?);
        }
        ModelCommand::Card(CardCommand::Set {
            name,
            version,
            file,
            intended_use,
            limitations,
            owner,
            datasets,
            metrics,
            notes,
            scope,
        }) => {
            let body = card_body(
                file.as_ref(),
                [
                    ("intended_use", intended_use.as_ref()),
                    ("limitations", limitations.as_ref()),
                    ("owner", owner.as_ref()),
                    ("notes", notes.as_ref()),
                ],
                datasets,
                metrics,
            )?;
            let path = format!("/models/{}/versions/{version}/card", encode(name));
            let saved =
                call_in(&login, scope.project.as_deref(), Method::PUT, &path, Some(body)).await?;
            let missing: Vec<String> =
                saved["missing"].as_array().into_iter().flatten().map(text).collect();
            println!(
                "saved model card revision {} of {name} version {version}{}",
                saved["revision"],
                if missing.is_empty() {
                    " (filled)".to_string()
                } else {
                    format!(" (not filled: missing {})", missing.join(", "))
                }
            );
        }
        ModelCommand::History { name, scope } => {
            let path = format!("/models/{}/history", encode(name));
            let entries =
                call_in(&login, scope.project.as_deref(), Method::GET, &path, None).await?;
            println!(
                "{:<24} {:<6} {:<14} {:<8} {:<10} {:<14} REQUEST",
                "WHEN (UTC)", "KIND", "TARGET", "VERSION", "FROM", "BY"
            );
            for entry in entries.as_array().into_iter().flatten() {
                let at =
                    entry["at"].as_i64().map(cairn_domain::time::format_utc).unwrap_or_default();
                let from = if entry["kind"] == "alias" {
                    text(&entry["previous_version"])
                } else {
                    text(&entry["previous_stage"])
                };
                println!(
                    "{at:<24} {:<6} {:<14} {:<8} {from:<10} {:<14} {}",
                    text(&entry["kind"]),
                    text(&entry["target"]),
                    text(&entry["version"]),
                    text(&entry["actor"]),
                    text(&entry["request_id"])
                );
            }
        }
        ModelCommand::Gate { name, version, environment, scope } => {
            let path = format!(
                "/models/{}/versions/{version}/deploy-gate?environment={}",
                encode(name),
                encode(environment)
            );
            let decision =
                call_in(&login, scope.project.as_deref(), Method::GET, &path, None).await?;
            for reason in decision["reasons"].as_array().into_iter().flatten() {
                println!("{}", text(&reason["message"]));
            }
            if decision["allowed"] == true {
                println!("allowed: {name} version {version} may be deployed to '{environment}'");
            } else {
                println!(
                    "refused: {name} version {version} may not be deployed to '{environment}'"
                );
                std::process::exit(3);
            }
        }
        ModelCommand::Bundle(BundleArgs { name, version, output, scope, .. }) => {
            let (Some(name), Some(version)) = (name, version) else {
                bail!("give NAME and VERSION to export, or `verify FILE` to check a bundle");
            };
            export(&login, scope.project.as_deref(), name, *version, output.as_ref()).await?;
        }
    }
    Ok(())
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn export(
    login: &Login,
    project: Option<&str>,
    name: &str,
    version: i64,
    output: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let prefix = project.map(|project| format!("/p/{project}")).unwrap_or_default();
    let path = format!("{prefix}/api/v1/models/{}/versions/{version}/bundle", encode(name));
    let (status, bytes) = send(login, Method::GET, &path, None).await?;
    if !status.is_success() {
        return Err(failure(status, &bytes));
    }
    let output = output.cloned().unwrap_or_else(|| {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        PathBuf::from(format!("{safe}-v{version}-bundle.tar.gz"))
    });
    let report = cairn_service::verify_bundle(&bytes);
    if !report.intact() {
        bail!("the server sent a bundle that does not verify: {}", report.problems.join("; "));
    }
    std::fs::write(&output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    println!(
        "wrote {} ({} bytes, {} files, {} audit records); check it later with `cairn model bundle verify {}`",
        output.display(),
        bytes.len(),
        report.verified_files,
        report.verified_audit_records,
        output.display()
    );
    Ok(())
}

fn verify(file: &PathBuf) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let report = cairn_service::verify_bundle(&bytes);
    if let Some(manifest) = &report.manifest {
        println!(
            "bundle of {} version {} (project {}), exported by {} at {}",
            manifest.model,
            manifest.version,
            manifest.project,
            manifest.created_by,
            cairn_domain::time::format_utc(manifest.created_at)
        );
    }
    if report.intact() {
        println!(
            "intact: {} files match the manifest; {} audit records hash correctly",
            report.verified_files, report.verified_audit_records
        );
        return Ok(());
    }
    for problem in &report.problems {
        eprintln!("BROKEN: {problem}");
    }
    std::process::exit(1);
}

/// Runs `cairn approvals …`.
pub async fn approvals(command: &ApprovalsCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        ApprovalsCommand::List { state, model, all_projects, scope } => {
            let mut query = form_query(&[
                ("state", state.as_deref()),
                ("model", model.as_deref()),
                ("all_projects", all_projects.then_some("true")),
            ]);
            if !query.is_empty() {
                query.insert(0, '?');
            }
            let requests = call_in(
                &login,
                scope.project.as_deref(),
                Method::GET,
                &format!("/approvals{query}"),
                None,
            )
            .await?;
            println!(
                "{:<6} {:<12} {:<20} {:<8} {:<18} {:<10} {:<9} BY",
                "ID", "PROJECT", "MODEL", "VERSION", "TARGET", "STATE", "APPROVALS"
            );
            for request in requests.as_array().into_iter().flatten() {
                println!(
                    "{:<6} {:<12} {:<20} {:<8} {:<18} {:<10} {:<9} {}",
                    request["id"],
                    text(&request["project"]),
                    text(&request["model"]),
                    request["version"],
                    text(&request["target"]),
                    text(&request["state"]),
                    format!(
                        "{}/{}",
                        request["approvals"], request["evidence"]["approvals_required"]
                    ),
                    text(&request["requested_by"])
                );
            }
        }
        ApprovalsCommand::Show { id, scope } => {
            let request = call_in(
                &login,
                scope.project.as_deref(),
                Method::GET,
                &format!("/approvals/{id}"),
                None,
            )
            .await?;
            print_request(&request);
        }
        ApprovalsCommand::Approve { id, comment, scope } => {
            let body = json!({"comment": comment});
            print_request(&decide(&login, scope, *id, "approve", Some(body)).await?);
        }
        ApprovalsCommand::Reject { id, comment, scope } => {
            let body = json!({"comment": comment});
            print_request(&decide(&login, scope, *id, "reject", Some(body)).await?);
        }
        ApprovalsCommand::Withdraw { id, scope } => {
            print_request(&decide(&login, scope, *id, "withdraw", None).await?);
        }
    }
    Ok(())
}

/// `POST /approvals/{id}/{action}` in the command's project.
async fn decide(
    login: &Login,
    scope: &ProjectScope,
    id: i64,
    action: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let path = format!("/approvals/{id}/{action}");
    call_in(login, scope.project.as_deref(), Method::POST, &path, body).await
}

fn form_query(pairs: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    query.finish()
}

/// Runs `cairn policy …`.
pub async fn policy(command: &PolicyCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        PolicyCommand::List { scope } => {
            let policies =
                call_in(&login, scope.project.as_deref(), Method::GET, "/policies", None).await?;
            println!(
                "{:<5} {:<20} {:<12} {:<20} {:<14} {:<4} RULES",
                "ID", "NAME", "SCOPE", "TARGET", "MODEL", "REV"
            );
            for policy in policies.as_array().into_iter().flatten() {
                println!(
                    "{:<5} {:<20} {:<12} {:<20} {:<14} {:<4} {}",
                    policy["id"],
                    text(&policy["name"]),
                    policy["project"].as_str().unwrap_or("(site)"),
                    text(&policy["target"]),
                    policy["model_name"].as_str().unwrap_or("(all)"),
                    policy["revision"],
                    policy["rules"]
                );
            }
        }
        PolicyCommand::Show { id, scope } => {
            print_json(
                &call_in(
                    &login,
                    scope.project.as_deref(),
                    Method::GET,
                    &format!("/policies/{id}"),
                    None,
                )
                .await?,
            );
        }
        PolicyCommand::Create { name, target, model, site_wide, rules, scope } => {
            let body = json!({
                "name": name, "target": target, "model_name": model,
                "site_wide": site_wide, "rules": rules.json(),
            });
            let policy =
                call_in(&login, scope.project.as_deref(), Method::POST, "/policies", Some(body))
                    .await?;
            println!("created policy {} '{name}' governing {target}", policy["id"]);
        }
        PolicyCommand::Update { id, rules, scope } => {
            let policy = call_in(
                &login,
                scope.project.as_deref(),
                Method::PUT,
                &format!("/policies/{id}"),
                Some(rules.json()),
            )
            .await?;
            println!("policy {id} is now at revision {}", policy["revision"]);
        }
        PolicyCommand::Delete { id, scope } => {
            call_in(
                &login,
                scope.project.as_deref(),
                Method::DELETE,
                &format!("/policies/{id}"),
                None,
            )
            .await?;
            println!("policy {id} is no longer in force (kept on record)");
        }
    }
    Ok(())
}
