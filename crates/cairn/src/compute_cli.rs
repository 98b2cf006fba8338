//! Compute from the command line: `cairn push` / `cairn pull` (project snapshots), `cairn env`,
//! `cairn tier`, `cairn quota` (the catalogue), `cairn job`, `cairn schedule`, `cairn secret`
//! and `cairn run reproduce`, through a running server's native API.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::{Login, call_in, load_login, send_raw};

/// The project a command acts in.
#[derive(Debug, Args)]
pub struct ProjectArg {
    /// The project.
    #[arg(long, env = "CAIRN_PROJECT")]
    pub project: String,
}

/// Directories `cairn push` never uploads.
const SKIPPED_DIRS: [&str; 6] =
    [".git", "__pycache__", ".venv", "venv", "node_modules", ".ipynb_checkpoints"];

/// Flags of `cairn push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The directory to upload (default: the current one).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// What changed.
    #[arg(long, short, default_value = "")]
    pub message: String,
    #[command(flatten)]
    pub project: ProjectArg,
}

/// Flags of `cairn pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Where to write the files (created; existing files are overwritten).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// A snapshot digest or prefix (default: the newest).
    #[arg(long)]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub project: ProjectArg,
}

/// `cairn snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// List the project's snapshots, newest first.
    List {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a snapshot's files.
    Show {
        /// Digest or prefix (default: the newest).
        digest: Option<String>,
        #[command(flatten)]
        project: ProjectArg,
    },
}

/// What an environment revision provides (flags).
#[derive(Debug, Args)]
pub struct DefinitionArgs {
    /// Python version (3.11) or interpreter path (default: the server's).
    #[arg(long)]
    pub python: Option<String>,
    /// A pip requirement (repeatable).
    #[arg(long = "requirement", short = 'r')]
    pub requirements: Vec<String>,
    /// A requirements file (one requirement per line; comments and blank lines ignored).
    #[arg(long)]
    pub requirements_file: Option<PathBuf>,
    /// A container image for cluster executors.
    #[arg(long)]
    pub image: Option<String>,
}

impl DefinitionArgs {
    fn to_json(&self) -> anyhow::Result<Value> {
        let mut requirements = self.requirements.clone();
        if let Some(path) = &self.requirements_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            requirements.extend(
                text.lines()
                    .map(|line| line.split('#').next().unwrap_or_default().trim().to_string())
                    .filter(|line| !line.is_empty()),
            );
        }
        Ok(json!({"python": self.python, "requirements": requirements, "image": self.image}))
    }
}

/// `cairn env …`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Create an environment (site admins); its first revision is a draft.
    Create {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        definition: DefinitionArgs,
    },
    /// Add a draft revision (site admins).
    Revise {
        /// The environment.
        name: String,
        #[command(flatten)]
        definition: DefinitionArgs,
    },
    /// Approve a revision so jobs can use it (site admins).
    Approve {
        /// The environment.
        name: String,
        /// The revision.
        revision: i64,
    },
    /// Deprecate a revision: new jobs can no longer use it (site admins).
    Deprecate {
        /// The environment.
        name: String,
        /// The revision.
        revision: i64,
    },
    /// List environments.
    List,
    /// Show an environment's revisions.
    Show {
        /// The environment.
        name: String,
    },
}

/// `cairn tier …`.
#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// Create or replace a hardware tier (site admins).
    Put {
        /// Its name.
        name: String,
        /// CPU cores.
        #[arg(long)]
        cpu: f64,
        /// Memory in MiB.
        #[arg(long)]
        memory_mib: u64,
        /// GPUs.
        #[arg(long, default_value_t = 0)]
        gpus: u32,
        /// The longest a job may run, in seconds.
        #[arg(long)]
        max_runtime_s: u64,
        /// Cost per hour, for reports.
        #[arg(long, default_value_t = 0.0)]
        cost_per_hour: f64,
        /// local or ray (default: the server's default executor).
        #[arg(long)]
        executor: Option<String>,
        /// Retire the tier: new jobs cannot use it.
        #[arg(long)]
        inactive: bool,
    },
    /// List tiers.
    List,
}

/// `cairn quota …`.
#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set a quota (site admins); without limits, removes it.
    Set {
        /// user:NAME, team:NAME or project:NAME.
        scope: String,
        /// Most concurrent jobs.
        #[arg(long)]
        max_jobs: Option<i64>,
        /// Most GPUs in use.
        #[arg(long)]
        max_gpus: Option<i64>,
    },
    /// List quotas.
    List,
}

/// What a job runs (shared by `job run` and `schedule create`).
#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// The environment, NAME or NAME@REVISION (default revision: the newest approved).
    #[arg(long = "env")]
    pub environment: String,
    /// The hardware tier.
    #[arg(long)]
    pub tier: String,
    /// A snapshot digest or prefix (default: the newest at submission).
    #[arg(long)]
    pub snapshot: Option<String>,
    /// The experiment of the job's run (default: jobs).
    #[arg(long)]
    pub experiment: Option<String>,
    /// The run's name.
    #[arg(long)]
    pub run_name: Option<String>,
    /// An environment variable for the job, NAME=VALUE (repeatable; use secrets for secrets).
    #[arg(long = "var")]
    pub vars: Vec<String>,
    /// A dataset version under datasets/NAME/ (read-only): NAME or NAME@VERSION (repeatable).
    #[arg(long = "dataset")]
    pub datasets: Vec<String>,
    /// The command, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

impl TemplateArgs {
    fn to_json(&self) -> anyhow::Result<Value> {
        let (environment, revision) = match self.environment.split_once('@') {
            Some((name, revision)) => (
                name.to_string(),
                Some(revision.parse::<i64>().context("the revision after '@' must be a number")?),
            ),
            None => (self.environment.clone(), None),
        };
        let mut env = BTreeMap::new();
        for var in &self.vars {
            let (name, value) =
                var.split_once('=').with_context(|| format!("--var {var}: expected NAME=VALUE"))?;
            env.insert(name.to_string(), value.to_string());
        }
        Ok(json!({
            "command": self.command, "environment": environment, "environment_revision": revision,
            "tier": self.tier, "snapshot": self.snapshot, "experiment": self.experiment,
            "run_name": self.run_name, "env": env, "datasets": self.datasets,
        }))
    }
}

/// `cairn job …`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run a command as a job: `cairn job run --project P --env E --tier T -- python train.py`.
    Run {
        #[command(flatten)]
        template: TemplateArgs,
        /// Follow the log until the job ends; exit with its outcome.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// List the project's jobs, newest first.
    List {
        /// Only jobs in this state (queued, starting, running, succeeded, failed, cancelled, timed_out).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a job.
    Show {
        /// The job's id.
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Print a job's log.
    Logs {
        /// The job's id.
        id: i64,
        /// Keep printing until the job ends.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Cancel a job.
    Cancel {
        /// The job's id.
        id: i64,
        #[command(flatten)]
        project: ProjectArg,
    },
}

/// `cairn run …`.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Where a run came from: job, snapshot, environment revision, tier, dataset versions.
    Lineage {
        /// The run's id.
        run_id: String,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Re-run the job that produced a run (same snapshot, environment revision and tier).
    Reproduce {
        /// The run's id.
        run_id: String,
        /// Follow the new job's log until it ends.
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        project: ProjectArg,
    },
}

/// `cairn schedule …`.
#[expect(clippy::large_enum_variant, reason = "parsed once per process")]
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule: `cairn schedule create nightly --cron '0 2 * * *' --timezone Europe/Paris --env E --tier T -- python train.py`.
    Create {
        /// Its name.
        name: String,
        /// Cron: five fields, six with seconds first, or @hourly, @daily…
        #[arg(long)]
        cron: String,
        /// IANA time zone.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Missed firings: skip or catch_up (once).
        #[arg(long, default_value = "skip")]
        missed: String,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        template: TemplateArgs,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// List the project's schedules.
    List {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a schedule and the jobs it fired.
    Show {
        /// Its name.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Stop a schedule from firing.
    Pause {
        /// Its name.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Let a paused schedule fire again.
    Resume {
        /// Its name.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Delete a schedule (its jobs stay on record).
    Delete {
        /// Its name.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
    },
}

/// Whose secret.
#[derive(Debug, Args)]
pub struct SecretScopeArgs {
    /// A project's secret (owners set it; every job of the project gets it).
    #[arg(long, env = "CAIRN_PROJECT", conflicts_with = "mine")]
    pub project: Option<String>,
    /// My own secret (every job I submit gets it).
    #[arg(long)]
    pub mine: bool,
}

impl SecretScopeArgs {
    fn base(&self) -> anyhow::Result<String> {
        match (&self.project, self.mine) {
            (_, true) => Ok("/me/secrets".into()),
            (Some(project), false) => Ok(format!("/projects/{project}/secrets")),
            (None, false) => bail!("say whose secret: --project P or --mine"),
        }
    }
}

/// `cairn secret …`.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret; the value is read from standard input (or --value-file), never a flag.
    Set {
        /// Its name: the environment variable jobs see.
        name: String,
        /// Read the value from this file instead of standard input.
        #[arg(long)]
        value_file: Option<PathBuf>,
        #[command(flatten)]
        scope: SecretScopeArgs,
    },
    /// List secret names.
    List {
        #[command(flatten)]
        scope: SecretScopeArgs,
    },
    /// Delete a secret.
    Delete {
        /// Its name.
        name: String,
        #[command(flatten)]
        scope: SecretScopeArgs,
    },
}

/// One local file to push.
struct LocalFile {
    relative: String,
    absolute: PathBuf,
    sha256: String,
    size: u64,
    executable: bool,
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<LocalFile>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        let name = entry.file_name().to_string_lossy().to_string();
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                collect_files(root, &path, out)?;
            }
            continue;
        }
        if !kind.is_file() || name.ends_with(".pyc") {
            continue;
        }
        let relative = path
            .strip_prefix(root)?
            .components()
            .map(|component| component.as_os_str().to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join("/");
        let (sha256, size) = hash_file(&path)?;
        use std::os::unix::fs::PermissionsExt;
        let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
        out.push(LocalFile { relative, absolute: path, sha256, size, executable });
    }
    Ok(())
}

fn hash_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 256 * 1024];
    let mut size = 0_u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Hashes every file under `dir`, uploads the contents `project` lacks (with progress on
/// stderr) and returns the manifest entries to record.
async fn upload_tree(login: &Login, project: &str, dir: &Path) -> anyhow::Result<Vec<Value>> {
    let root = dir.canonicalize().with_context(|| format!("reading {}", dir.display()))?;
    let mut files = Vec::new();
    collect_files(&root, &root, &mut files)?;
    if files.is_empty() {
        bail!("{} has no files to push", root.display());
    }
    let total: u64 = files.iter().map(|file| file.size).sum();
    eprintln!("hashed {} files ({} bytes)", files.len(), total);
    let mut digests: Vec<&str> = files.iter().map(|file| file.sha256.as_str()).collect();
    digests.sort_unstable();
    digests.dedup();
    let answer = call_in(
        login,
        None,
        Method::POST,
        &format!("/projects/{project}/files/missing"),
        Some(json!({"digests": digests})),
    )
    .await?;
    let missing: std::collections::HashSet<String> = answer["missing"]
        .as_array()
        .map(|items| items.iter().filter_map(|item| item.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let uploads: Vec<&LocalFile> = {
        let mut seen = std::collections::HashSet::new();
        files
            .iter()
            .filter(|file| missing.contains(&file.sha256) && seen.insert(file.sha256.clone()))
            .collect()
    };
    let upload_bytes: u64 = uploads.iter().map(|file| file.size).sum();
    eprintln!(
        "uploading {} new files ({} bytes); {} already stored",
        uploads.len(),
        upload_bytes,
        files.len() - uploads.len()
    );
    let mut done = 0_usize;
    let mut last_report = std::time::Instant::now();
    use futures::StreamExt;
    let mut pending =
        futures::stream::iter(uploads.iter().map(|file| upload_blob(login, project, file)))
            .buffer_unordered(16);
    while let Some(result) = pending.next().await {
        result?;
        done += 1;
        if last_report.elapsed() > Duration::from_secs(1) || done == uploads.len() {
            eprintln!("  {done}/{} uploaded", uploads.len());
            last_report = std::time::Instant::now();
        }
    }
    Ok(files
        .iter()
        .map(|file| json!({"path": file.relative, "sha256": file.sha256, "size": file.size, "executable": file.executable}))
        .collect())
}

/// Runs `cairn push`: hashes every file, uploads only what the project lacks, records the
/// snapshot.
pub async fn push(args: &PushArgs) -> anyhow::Result<()> {
    let login = load_login()?;
    let project = &args.project.project;
    let started = std::time::Instant::now();
    let manifest = upload_tree(&login, project, &args.dir).await?;
    let snapshot = call_in(
        &login,
        None,
        Method::POST,
        &format!("/projects/{project}/snapshots"),
        Some(json!({"files": manifest, "message": args.message})),
    )
    .await?;
    eprintln!("pushed in {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "snapshot {} ({} files, {} new bytes)",
        snapshot["digest"].as_str().unwrap_or_default(),
        snapshot["file_count"],
        snapshot["new_bytes"]
    );
    Ok(())
}

/// `cairn dataset …`.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Push a directory as the dataset's next version (created on the first push); only
    /// contents the project lacks are uploaded.
    Push {
        /// The dataset's name.
        name: String,
        /// The directory.
        dir: PathBuf,
        /// What changed.
        #[arg(long, short, default_value = "")]
        message: String,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// List the project's datasets.
    List {
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a dataset and its versions.
    Show {
        /// The dataset.
        name: String,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Show a version's files, tables (rows, columns) and the jobs that used it.
    Version {
        /// The dataset.
        name: String,
        /// The version (default: the newest).
        version: Option<i64>,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Set the description and retention (keep the newest N versions).
    Configure {
        /// The dataset.
        name: String,
        /// What it holds.
        #[arg(long, default_value = "")]
        description: String,
        /// Keep only the newest N versions (older ones are deleted, audited).
        #[arg(long)]
        keep_versions: Option<i64>,
        #[command(flatten)]
        project: ProjectArg,
    },
    /// Delete a version, or the whole dataset (records stay; audited).
    Delete {
        /// The dataset.
        name: String,
        /// Only this version.
        #[arg(long)]
        version: Option<i64>,
        #[command(flatten)]
        project: ProjectArg,
    },
}

/// Runs `cairn dataset …`.
pub async fn dataset(command: &DatasetCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        DatasetCommand::Push { name, dir, message, project } => {
            let started = std::time::Instant::now();
            let manifest = upload_tree(&login, &project.project, dir).await?;
            let version = call_in(
                &login,
                None,
                Method::POST,
                &format!("/projects/{}/datasets/{name}/versions", project.project),
                Some(json!({"files": manifest, "message": message})),
            )
            .await?;
            eprintln!("pushed in {:.1} s", started.elapsed().as_secs_f64());
            println!(
                "dataset {name} version {} ({} files, {} bytes, {} new)",
                version["version"],
                version["file_count"],
                version["total_bytes"],
                version["new_bytes"]
            );
        }
        DatasetCommand::List { project } => {
            for dataset in call_in(
                &login,
                None,
                Method::GET,
                &format!("/projects/{}/datasets", project.project),
                None,
            )
            .await?
            .as_array()
            .into_iter()
            .flatten()
            {
                println!(
                    "{}  latest version {}  {}",
                    dataset["name"].as_str().unwrap_or_default(),
                    dataset["latest_version"],
                    dataset["description"].as_str().unwrap_or_default()
                );
            }
        }
        DatasetCommand::Show { name, project } => {
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::GET,
                    &format!("/projects/{}/datasets/{name}", project.project),
                    None,
                )
                .await?,
            );
        }
        DatasetCommand::Version { name, version, project } => {
            let version =
                version.map_or_else(|| "latest".to_string(), |version| version.to_string());
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::GET,
                    &format!("/projects/{}/datasets/{name}/versions/{version}", project.project),
                    None,
                )
                .await?,
            );
        }
        DatasetCommand::Configure { name, description, keep_versions, project } => {
            let body = json!({"description": description, "keep_versions": keep_versions});
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::PUT,
                    &format!("/projects/{}/datasets/{name}", project.project),
                    Some(body),
                )
                .await?,
            );
        }
        DatasetCommand::Delete { name, version, project } => {
            let path = match version {
                Some(version) => {
                    format!("/projects/{}/datasets/{name}/versions/{version}", project.project)
                }
                None => format!("/projects/{}/datasets/{name}", project.project),
            };
            call_in(&login, None, Method::DELETE, &path, None).await?;
            println!("deleted (the record stays on file)");
        }
    }
    Ok(())
}

async fn upload_blob(login: &Login, project: &str, file: &LocalFile) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&file.absolute)
        .await
        .with_context(|| format!("reading {}", file.absolute.display()))?;
    send_raw(
        login,
        None,
        Method::PUT,
        &format!("/projects/{project}/files/blobs/{}", file.sha256),
        Some("application/octet-stream"),
        bytes,
    )
    .await
    .with_context(|| format!("uploading {}", file.relative))?;
    Ok(())
}

/// Runs `cairn pull`.
pub async fn pull(args: &PullArgs) -> anyhow::Result<()> {
    let login = load_login()?;
    let project = &args.project.project;
    let digest = args.snapshot.clone().unwrap_or_else(|| "latest".into());
    let view = call_in(
        &login,
        None,
        Method::GET,
        &format!("/projects/{project}/snapshots/{digest}"),
        None,
    )
    .await?;
    let files = view["files"].as_array().cloned().unwrap_or_default();
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    for (index, file) in files.iter().enumerate() {
        let path = file["path"].as_str().unwrap_or_default();
        cairn_domain::compute::validate_relative_path(path)
            .map_err(|error| anyhow::anyhow!(error.message))?;
        let sha256 = file["sha256"].as_str().unwrap_or_default();
        let bytes = send_raw(
            &login,
            None,
            Method::GET,
            &format!("/projects/{project}/files/blobs/{sha256}"),
            None,
            Vec::new(),
        )
        .await?;
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            bail!("{path}: the downloaded content does not match its digest");
        }
        let destination = args.dir.join(path);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&destination, &bytes)
            .with_context(|| format!("writing {}", destination.display()))?;
        if file["executable"].as_bool() == Some(true) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&destination, std::fs::Permissions::from_mode(0o755))?;
        }
        if (index + 1) % 100 == 0 {
            eprintln!("  {}/{} files", index + 1, files.len());
        }
    }
    println!(
        "pulled snapshot {} ({} files) into {}",
        view["snapshot"]["digest"].as_str().unwrap_or_default(),
        files.len(),
        args.dir.display()
    );
    Ok(())
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Runs `cairn snapshot …`.
pub async fn snapshot(command: &SnapshotCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        SnapshotCommand::List { project } => {
            let list = call_in(
                &login,
                None,
                Method::GET,
                &format!("/projects/{}/snapshots", project.project),
                None,
            )
            .await?;
            for snapshot in list.as_array().into_iter().flatten() {
                println!(
                    "{}  {:>6} files  {:>10} bytes  {}  {}",
                    &snapshot["digest"].as_str().unwrap_or_default()[..12],
                    snapshot["file_count"],
                    snapshot["total_bytes"],
                    snapshot["author"].as_str().unwrap_or_default(),
                    snapshot["message"].as_str().unwrap_or_default()
                );
            }
        }
        SnapshotCommand::Show { digest, project } => {
            let digest = digest.clone().unwrap_or_else(|| "latest".into());
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::GET,
                    &format!("/projects/{}/snapshots/{digest}", project.project),
                    None,
                )
                .await?,
            );
        }
    }
    Ok(())
}

/// Runs `cairn env …`.
pub async fn env(command: &EnvCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    let value = match command {
        EnvCommand::Create { name, description, definition } => {
            let body = json!({"name": name, "description": description, "definition": definition.to_json()?});
            call_in(&login, None, Method::POST, "/environments", Some(body)).await?
        }
        EnvCommand::Revise { name, definition } => {
            call_in(
                &login,
                None,
                Method::POST,
                &format!("/environments/{name}/revisions"),
                Some(definition.to_json()?),
            )
            .await?
        }
        EnvCommand::Approve { name, revision } => {
            call_in(
                &login,
                None,
                Method::POST,
                &format!("/environments/{name}/state"),
                Some(json!({"revision": revision, "state": "approved"})),
            )
            .await?
        }
        EnvCommand::Deprecate { name, revision } => {
            call_in(
                &login,
                None,
                Method::POST,
                &format!("/environments/{name}/state"),
                Some(json!({"revision": revision, "state": "deprecated"})),
            )
            .await?
        }
        EnvCommand::List => {
            let list = call_in(&login, None, Method::GET, "/environments", None).await?;
            for environment in list.as_array().into_iter().flatten() {
                let revisions: Vec<String> = environment["revisions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|revision| {
                        format!(
                            "{}:{}",
                            revision["revision"],
                            revision["state"].as_str().unwrap_or_default()
                        )
                    })
                    .collect();
                println!(
                    "{}  [{}]  {}",
                    environment["name"].as_str().unwrap_or_default(),
                    revisions.join(", "),
                    environment["description"].as_str().unwrap_or_default()
                );
            }
            return Ok(());
        }
        EnvCommand::Show { name } => {
            call_in(&login, None, Method::GET, &format!("/environments/{name}"), None).await?
        }
    };
    print_json(&value);
    Ok(())
}

/// Runs `cairn tier …`.
pub async fn tier(command: &TierCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        TierCommand::Put {
            name,
            cpu,
            memory_mib,
            gpus,
            max_runtime_s,
            cost_per_hour,
            executor,
            inactive,
        } => {
            let spec = json!({"cpu": cpu, "memory_mib": memory_mib, "gpus": gpus, "max_runtime_s": max_runtime_s,
                "cost_per_hour": cost_per_hour, "executor": executor});
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::PUT,
                    &format!("/tiers/{name}"),
                    Some(json!({"spec": spec, "active": !inactive})),
                )
                .await?,
            );
        }
        TierCommand::List => {
            let list = call_in(&login, None, Method::GET, "/tiers", None).await?;
            for tier in list.as_array().into_iter().flatten() {
                let spec = &tier["spec"];
                println!(
                    "{}  cpu {}  memory {} MiB  gpus {}  max {} s  executor {}{}",
                    tier["name"].as_str().unwrap_or_default(),
                    spec["cpu"],
                    spec["memory_mib"],
                    spec["gpus"],
                    spec["max_runtime_s"],
                    spec["executor"].as_str().unwrap_or("default"),
                    if tier["active"].as_bool() == Some(false) { "  (retired)" } else { "" }
                );
            }
        }
    }
    Ok(())
}

/// Runs `cairn quota …`.
pub async fn quota(command: &QuotaCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        QuotaCommand::Set { scope, max_jobs, max_gpus } => {
            call_in(
                &login,
                None,
                Method::PUT,
                "/quotas",
                Some(json!({"scope": scope, "max_jobs": max_jobs, "max_gpus": max_gpus})),
            )
            .await?;
            println!("quota of {scope} set");
        }
        QuotaCommand::List => {
            print_json(&call_in(&login, None, Method::GET, "/quotas", None).await?)
        }
    }
    Ok(())
}

fn print_job(job: &Value) {
    let mut line = format!(
        "job {}  {}  {}  env {}@{}  tier {}  run {}",
        job["id"],
        job["state"].as_str().unwrap_or_default(),
        job["template"]["command"]
            .as_array()
            .map(|args| args.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
        job["environment"].as_str().unwrap_or_default(),
        job["environment_revision"],
        job["tier"].as_str().unwrap_or_default(),
        job["run_id"].as_str().unwrap_or_default(),
    );
    if let (Some(started), Some(finished)) =
        (job["running_at"].as_i64(), job["finished_at"].as_i64())
    {
        line.push_str(&format!("  ran {:.1} s", (finished - started) as f64 / 1000.0));
    }
    if let Some(reason) = job["queue_reason"].as_str() {
        line.push_str(&format!("\n  queued: {reason}"));
    }
    if let Some(reason) = job["reason"].as_str() {
        line.push_str(&format!("\n  {reason}"));
    }
    println!("{line}");
}

/// Prints a job's log from the start until it ends (or once, without `follow`); returns the
/// job's final JSON.
async fn follow_log(login: &Login, project: &str, id: i64, follow: bool) -> anyhow::Result<Value> {
    use std::io::Write;
    let mut offset = 0_u64;
    loop {
        let chunk = call_in(
            login,
            None,
            Method::GET,
            &format!("/projects/{project}/jobs/{id}/logs?offset={offset}"),
            None,
        )
        .await?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chunk["data"].as_str().unwrap_or_default())
            .context("the server sent a log chunk that is not base64")?;
        std::io::stdout().write_all(&bytes)?;
        std::io::stdout().flush()?;
        offset = chunk["next_offset"].as_u64().unwrap_or(offset);
        if chunk["complete"].as_bool() == Some(true) || !follow {
            break;
        }
        if bytes.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    call_in(login, None, Method::GET, &format!("/projects/{project}/jobs/{id}"), None).await
}

/// Prints a job just submitted; with `follow`, streams its log and exits with its outcome.
async fn started(login: &Login, project: &str, job: &Value, follow: bool) -> anyhow::Result<()> {
    print_job(job);
    if !follow {
        return Ok(());
    }
    let id = job["id"].as_i64().context("the server answered without a job id")?;
    let finished = follow_log(login, project, id, true).await?;
    exit_with(&finished)
}

/// Exits with the job's outcome: 0 when it succeeded, its exit code when it has one, else 1.
fn exit_with(job: &Value) -> anyhow::Result<()> {
    eprintln!(
        "job {} {}{}",
        job["id"],
        job["state"].as_str().unwrap_or_default(),
        job["reason"].as_str().map(|reason| format!(": {reason}")).unwrap_or_default()
    );
    match job["state"].as_str() {
        Some("succeeded") => Ok(()),
        _ => std::process::exit(
            job["exit_code"]
                .as_i64()
                .filter(|code| *code > 0 && *code < 256)
                .map_or(1, |code| code as i32),
        ),
    }
}

/// Runs `cairn job …`.
pub async fn job(command: &JobCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        JobCommand::Run { template, follow, project } => {
            let job = call_in(
                &login,
                None,
                Method::POST,
                &format!("/projects/{}/jobs", project.project),
                Some(template.to_json()?),
            )
            .await?;
            return started(&login, &project.project, &job, *follow).await;
        }
        JobCommand::List { state, limit, project } => {
            let mut path = format!("/projects/{}/jobs?limit={limit}", project.project);
            if let Some(state) = state {
                path.push_str(&format!("&state={state}"));
            }
            for job in call_in(&login, None, Method::GET, &path, None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                print_job(job);
            }
        }
        JobCommand::Show { id, project } => {
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::GET,
                    &format!("/projects/{}/jobs/{id}", project.project),
                    None,
                )
                .await?,
            );
        }
        JobCommand::Logs { id, follow, project } => {
            follow_log(&login, &project.project, *id, *follow).await?;
        }
        JobCommand::Cancel { id, project } => {
            let job = call_in(
                &login,
                None,
                Method::POST,
                &format!("/projects/{}/jobs/{id}/cancel", project.project),
                None,
            )
            .await?;
            print_job(&job);
        }
    }
    Ok(())
}

/// Runs `cairn run …`.
pub async fn run(command: &RunCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        RunCommand::Lineage { run_id, project } => {
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::GET,
                    &format!("/projects/{}/runs/{run_id}/lineage", project.project),
                    None,
                )
                .await?,
            );
        }
        RunCommand::Reproduce { run_id, follow, project } => {
            let job = call_in(
                &login,
                None,
                Method::POST,
                &format!("/projects/{}/runs/{run_id}/reproduce", project.project),
                None,
            )
            .await?;
            return started(&login, &project.project, &job, *follow).await;
        }
    }
    Ok(())
}

/// Runs `cairn schedule …`.
pub async fn schedule(command: &ScheduleCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        ScheduleCommand::Create { name, cron, timezone, missed, paused, template, project } => {
            let body = json!({"name": name, "cron": cron, "timezone": timezone, "missed": missed,
                "enabled": !paused, "template": template.to_json()?});
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::POST,
                    &format!("/projects/{}/schedules", project.project),
                    Some(body),
                )
                .await?,
            );
        }
        ScheduleCommand::List { project } => {
            for schedule in call_in(
                &login,
                None,
                Method::GET,
                &format!("/projects/{}/schedules", project.project),
                None,
            )
            .await?
            .as_array()
            .into_iter()
            .flatten()
            {
                println!(
                    "{}  {} ({})  next {}  {}",
                    schedule["name"].as_str().unwrap_or_default(),
                    schedule["cron"].as_str().unwrap_or_default(),
                    schedule["timezone"].as_str().unwrap_or_default(),
                    schedule["next_run_at"],
                    if schedule["enabled"].as_bool() == Some(true) { "enabled" } else { "paused" }
                );
            }
        }
        ScheduleCommand::Show { name, project } => {
            print_json(
                &call_in(
                    &login,
                    None,
                    Method::GET,
                    &format!("/projects/{}/schedules/{name}", project.project),
                    None,
                )
                .await?,
            );
        }
        ScheduleCommand::Pause { name, project } | ScheduleCommand::Resume { name, project } => {
            let path = format!("/projects/{}/schedules/{name}", project.project);
            let current = call_in(&login, None, Method::GET, &path, None).await?;
            let schedule = &current["schedule"];
            let body = json!({"cron": schedule["cron"], "timezone": schedule["timezone"], "missed": schedule["missed"],
                "template": schedule["template"], "enabled": matches!(command, ScheduleCommand::Resume { .. })});
            print_json(&call_in(&login, None, Method::PUT, &path, Some(body)).await?);
        }
        ScheduleCommand::Delete { name, project } => {
            call_in(
                &login,
                None,
                Method::DELETE,
                &format!("/projects/{}/schedules/{name}", project.project),
                None,
            )
            .await?;
            println!("deleted schedule '{name}' (its jobs stay on record)");
        }
    }
    Ok(())
}

/// Runs `cairn secret …`.
pub async fn secret(command: &SecretCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        SecretCommand::Set { name, value_file, scope } => {
            let value = match value_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                None => {
                    let mut text = String::new();
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .context("reading the value from standard input")?;
                    text
                }
            };
            let value = value.strip_suffix('\n').unwrap_or(&value).to_string();
            call_in(
                &login,
                None,
                Method::PUT,
                &format!("{}/{name}", scope.base()?),
                Some(json!({"value": value})),
            )
            .await?;
            println!("secret '{name}' set");
        }
        SecretCommand::List { scope } => {
            for secret in call_in(&login, None, Method::GET, &scope.base()?, None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{}  set by {}  updated {}",
                    secret["name"].as_str().unwrap_or_default(),
                    secret["created_by"].as_str().unwrap_or_default(),
                    secret["updated_at"]
                );
            }
        }
        SecretCommand::Delete { name, scope } => {
            call_in(&login, None, Method::DELETE, &format!("{}/{name}", scope.base()?), None)
                .await?;
            println!("secret '{name}' deleted");
        }
    }
    Ok(())
}
