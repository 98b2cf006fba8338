//! `cairn workspace …`: start JupyterLab on a project's newest snapshot, list, show, save,
//! stop and start workspaces again, through a running server.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Login, call_in, load_login};
use crate::compute_cli::ProjectArg;

/// `cairn workspace …`.
#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Start JupyterLab: `cairn workspace start --project P --env E --tier T`; waits until it
    /// answers and prints its URL.
    Start {
        /// The environment (an approved revision; JupyterLab is added when it is not listed).
        #[arg(long = "env")]
        environment: String,
        /// Pin this revision of the environment (default: the newest approved).
        #[arg(long)]
        revision: Option<i64>,
        /// The hardware tier.
        #[arg(long)]
        tier: String,
        /// Let the project's contributors and owners use it too.
        #[arg(long)]
        shared: bool,
        /// Stop it after this many seconds without kernel or HTTP activity (default 3600).
        #[arg(long)]
        idle_timeout_s: Option<u64>,
        /// A dataset version under datasets/NAME/ (read-only, never saved by a sync): NAME (the
        /// newest at each start) or NAME@VERSION (repeatable).
        #[arg(long = "dataset")]
        datasets: Vec<String>,
        /// Return at once instead of waiting until it answers.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// List the project's workspaces, newest first.
    List {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a workspace.
    Show {
        /// The workspace's id.
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Save the workspace's changed files as a new project snapshot.
    Sync {
        /// The workspace's id.
        id: i64,
        /// The snapshot's message.
        #[arg(long, short)]
        message: Option<String>,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Stop the workspace, saving its changes as a new snapshot.
    Stop {
        /// The workspace's id.
        id: i64,
        /// The message of the snapshot saved at stop.
        #[arg(long, short)]
        message: Option<String>,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Start a stopped workspace again on the project's newest snapshot.
    Restart {
        /// The workspace's id.
        id: i64,
        /// Return at once instead of waiting until it answers.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        project: ProjectArg,
    },
}

fn print_workspace(login: &Login, workspace: &Value) {
    let text = |key: &str| workspace[key].as_str().unwrap_or_default().to_string();
    let mut line = format!(
        "workspace {}  {}  owner {}  env {}@{}  tier {}",
        workspace["id"],
        text("state"),
        text("owner"),
        workspace["request"]["environment"].as_str().unwrap_or_default(),
        workspace["environment_revision"],
        workspace["request"]["tier"].as_str().unwrap_or_default(),
    );
    if workspace["state"] == "running" {
        line.push_str(&format!("  {}{}", login.server(), text("url")));
    }
    if let Some(reason) = workspace["reason"].as_str() {
        line.push_str(&format!("  ({reason})"));
    }
    println!("{line}");
}

/// Polls until the workspace leaves `starting`; fails when it did not reach `running`.
async fn wait_running(login: &Login, project: &str, id: i64) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let path = format!("/projects/{project}/workspaces/{id}");
        let workspace = call_in(login, None, Method::GET, &path, None).await?;
        match workspace["state"].as_str() {
            Some("starting") => {}
            Some("running") => return Ok(workspace),
            _ => bail!(
                "workspace {id} did not start: {}",
                workspace["reason"].as_str().unwrap_or("no reason given")
            ),
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("workspace {id} is still starting after 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn started(
    login: &Login,
    project: &str,
    workspace: Value,
    no_wait: bool,
) -> anyhow::Result<()> {
    print_workspace(login, &workspace);
    if no_wait {
        return Ok(());
    }
    let id = workspace["id"].as_i64().unwrap_or_default();
    eprintln!("waiting for JupyterLab (the first start in an environment builds it)…");
    let running = wait_running(login, project, id).await?;
    print_workspace(login, &running);
    eprintln!(
        "open {}{} and sign in with your Cairn user name and token (or password)",
        login.server(),
        running["url"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// Runs `cairn workspace …`.
pub async fn workspace(command: &WorkspaceCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    let call = |method: Method, path: String, body: Option<Value>| {
        let login = &login;
        async move { call_in(login, None, method, &path, body).await }
    };
    match command {
        WorkspaceCommand::Start {
            environment,
            revision,
            tier,
            shared,
            idle_timeout_s,
            datasets,
            no_wait,
            project,
        } => {
            let request = json!({"environment": environment, "environment_revision": revision,
                "tier": tier, "shared": shared, "idle_timeout_s": idle_timeout_s,
                "datasets": datasets});
            let path = format!("/projects/{}/workspaces", project.project);
            let workspace = call(Method::POST, path, Some(request)).await?;
            started(&login, &project.project, workspace, *no_wait).await?;
        }
        WorkspaceCommand::List { project } => {
            let path = format!("/projects/{}/workspaces", project.project);
            for workspace in call(Method::GET, path, None).await?.as_array().into_iter().flatten() {
                print_workspace(&login, workspace);
            }
        }
        WorkspaceCommand::Show { id, project } => {
            let path = format!("/projects/{}/workspaces/{id}", project.project);
            let workspace = call(Method::GET, path, None).await?;
            println!("{}", serde_json::to_string_pretty(&workspace).unwrap_or_default());
        }
        WorkspaceCommand::Sync { id, message, project } => {
            let path = format!("/projects/{}/workspaces/{id}/sync", project.project);
            let outcome = call(Method::POST, path, Some(json!({"message": message}))).await?;
            match outcome["snapshot"]["digest"].as_str() {
                Some(digest) => println!("saved as snapshot {digest}"),
                None => println!("nothing changed since the last save"),
            }
        }
        WorkspaceCommand::Stop { id, message, project } => {
            let path = format!("/projects/{}/workspaces/{id}/stop", project.project);
            let workspace = call(Method::POST, path, Some(json!({"message": message}))).await?;
            print_workspace(&login, &workspace);
            if let Some(digest) = workspace["synced_snapshot"].as_str() {
                println!("its files are in snapshot {digest}");
            }
        }
        WorkspaceCommand::Restart { id, no_wait, project } => {
            let path = format!("/projects/{}/workspaces/{id}/start", project.project);
            let workspace = call(Method::POST, path, None).await?;
            started(&login, &project.project, workspace, *no_wait).await?;
        }
    }
    Ok(())
}
