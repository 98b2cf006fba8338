//! Compute: project file snapshots, IT-approved environments, hardware tiers with quotas, jobs,
//! schedules and secrets — the records and the rules that need no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DomainError;

/// The most files one snapshot may hold.
pub const MAX_SNAPSHOT_FILES: usize = 100_000;

/// One file of a snapshot manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotFile {
    /// The relative path, `/`-separated.
    pub path: String,
    /// The content's SHA-256, lowercase hex.
    pub sha256: String,
    /// The size in bytes.
    pub size: u64,
    /// Whether the file is executable.
    #[serde(default)]
    pub executable: bool,
}

/// A snapshot's manifest: its files sorted by path. Its digest names the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The files, sorted by path, each path once.
    pub files: Vec<SnapshotFile>,
}

impl Manifest {
    /// Checks and sorts the files: relative normalised paths, hex digests, no duplicates.
    pub fn parse(mut files: Vec<SnapshotFile>) -> Result<Manifest, DomainError> {
        if files.len() > MAX_SNAPSHOT_FILES {
            return Err(DomainError::invalid(format!(
                "a snapshot holds at most {MAX_SNAPSHOT_FILES} files, not {}",
                files.len()
            )));
        }
        for file in &files {
            validate_relative_path(&file.path)?;
            if !is_sha256_hex(&file.sha256) {
                return Err(DomainError::invalid(format!(
                    "file '{}' has an invalid sha256 '{}': use 64 lowercase hex digits",
                    file.path, file.sha256
                )));
            }
        }
        files.sort_by(|left, right| left.path.cmp(&right.path));
        if let Some(pair) = files.windows(2).find(|pair| pair[0].path == pair[1].path) {
            return Err(DomainError::invalid(format!("file '{}' is listed twice", pair[0].path)));
        }
        Ok(Manifest { files })
    }

    /// The manifest's canonical JSON (what is stored and hashed).
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The snapshot digest: SHA-256 of the canonical JSON.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    /// The total size of the files.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }
}

/// Whether `raw` is 64 lowercase hex digits.
pub fn is_sha256_hex(raw: &str) -> bool {
    raw.len() == 64
        && raw.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Checks a relative file path: non-empty `/`-separated segments, none `.`, `..` or empty, no
/// NUL or backslash, at most 1,024 bytes.
pub fn validate_relative_path(path: &str) -> Result<(), DomainError> {
    let bad = path.is_empty()
        || path.len() > 1024
        || path.starts_with('/')
        || path.contains('\\')
        || path.contains('\0')
        || path.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad {
        return Err(DomainError::invalid(format!(
            "invalid file path '{path}': use a relative path without '.', '..' or empty segments"
        )));
    }
    Ok(())
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Snapshot {
    /// Id, increasing within the site.
    pub id: i64,
    /// The project's name.
    pub project: String,
    /// The manifest digest.
    pub digest: String,
    /// What changed.
    pub message: String,
    /// Who pushed it.
    pub author: String,
    /// How many files.
    pub file_count: i64,
    /// Their total size.
    pub total_bytes: i64,
    /// Bytes that were not stored before.
    pub new_bytes: i64,
    /// When, epoch ms.
    pub created_at: i64,
}

/// What an environment revision provides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentDefinition {
    /// A Python version (`3.11`) or interpreter path; absent: the server's Python.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<String>,
    /// pip requirement lines.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// A container image reference for cluster executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl EnvironmentDefinition {
    /// Checks the fields: one requirement per line, no pip options that reach other indexes or
    /// files, a plausible Python version or absolute path.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.requirements.len() > 500 {
            return Err(DomainError::invalid("at most 500 requirements"));
        }
        for line in &self.requirements {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.len() > 500 || trimmed.contains(['\n', '\r', '\0']) {
                return Err(DomainError::invalid(format!(
                    "invalid requirement '{line}': one requirement of at most 500 characters per entry"
                )));
            }
            if trimmed.starts_with('-') {
                return Err(DomainError::invalid(format!(
                    "invalid requirement '{line}': pip options are not allowed in an environment"
                )));
            }
        }
        if let Some(python) = &self.python {
            let version = python
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
            if !(version || python.starts_with('/')) || python.len() > 300 {
                return Err(DomainError::invalid(format!(
                    "invalid python '{python}': use a version such as 3.11 or an absolute interpreter path"
                )));
            }
        }
        if let Some(image) = &self.image
            && (image.is_empty() || image.len() > 300 || image.contains(char::is_whitespace))
        {
            return Err(DomainError::invalid(format!("invalid image reference '{image}'")));
        }
        Ok(())
    }

    /// The revision's digest: SHA-256 of its canonical JSON.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(serde_json::to_string(self).unwrap_or_default().as_bytes()))
    }
}

/// Where an environment revision is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RevisionState {
    /// Written, not yet approved: cannot run.
    Draft,
    /// Approved by an admin: jobs may use it.
    Approved,
    /// Retired: existing records keep it, new jobs cannot use it.
    Deprecated,
}

impl RevisionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionState::Draft => "draft",
            RevisionState::Approved => "approved",
            RevisionState::Deprecated => "deprecated",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "draft" => Ok(RevisionState::Draft),
            "approved" => Ok(RevisionState::Approved),
            "deprecated" => Ok(RevisionState::Deprecated),
            other => Err(DomainError::invalid(format!(
                "unknown revision state '{other}': use draft, approved or deprecated"
            ))),
        }
    }
}

/// One revision of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentRevision {
    /// The environment's name.
    pub environment: String,
    /// The revision, from 1.
    pub revision: i64,
    /// What it provides.
    pub definition: EnvironmentDefinition,
    /// Its digest (the cache key of materialised copies).
    pub digest: String,
    /// Its state.
    pub state: RevisionState,
    /// Who wrote it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// Who last approved or deprecated it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<i64>,
}

/// An environment with its revisions (newest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    /// The unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Who created it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// Its revisions, oldest first.
    pub revisions: Vec<EnvironmentRevision>,
}

impl Environment {
    /// The newest approved revision.
    pub fn latest_approved(&self) -> Option<&EnvironmentRevision> {
        self.revisions.iter().rev().find(|revision| revision.state == RevisionState::Approved)
    }
}

/// Which executor runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Processes on the Cairn server's machine.
    Local,
    /// A Ray cluster through its Jobs API.
    Ray,
}

impl ExecutorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Local => "local",
            ExecutorKind::Ray => "ray",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "local" => Ok(ExecutorKind::Local),
            "ray" => Ok(ExecutorKind::Ray),
            other => {
                Err(DomainError::invalid(format!("unknown executor '{other}': use local or ray")))
            }
        }
    }
}

/// What a hardware tier grants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// CPU cores.
    pub cpu: f64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPUs.
    #[serde(default)]
    pub gpus: u32,
    /// The longest a job may run, in seconds.
    pub max_runtime_s: u64,
    /// What an hour costs, in the site's currency (for reports).
    #[serde(default)]
    pub cost_per_hour: f64,
    /// The executor; absent: the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorKind>,
}

impl TierSpec {
    /// Checks the numbers.
    pub fn validate(&self) -> Result<(), DomainError> {
        if !(self.cpu.is_finite() && self.cpu > 0.0 && self.cpu <= 1024.0) {
            return Err(DomainError::invalid("cpu must be more than 0 and at most 1024 cores"));
        }
        if self.memory_mib < 16 || self.memory_mib > 64 * 1024 * 1024 {
            return Err(DomainError::invalid("memory_mib must be between 16 and 67108864"));
        }
        if self.gpus > 64 {
            return Err(DomainError::invalid("gpus must be at most 64"));
        }
        if self.max_runtime_s == 0 || self.max_runtime_s > 30 * 24 * 3600 {
            return Err(DomainError::invalid(
                "max_runtime_s must be between 1 and 2592000 (30 days)",
            ));
        }
        if !(self.cost_per_hour.is_finite() && self.cost_per_hour >= 0.0) {
            return Err(DomainError::invalid("cost_per_hour must be zero or more"));
        }
        Ok(())
    }
}

/// A hardware tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HardwareTier {
    /// The unique name.
    pub name: String,
    /// What it grants.
    pub spec: TierSpec,
    /// Whether new jobs may use it.
    pub active: bool,
    /// Who created it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
}

/// Whom a quota limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum QuotaScope {
    /// One user's jobs.
    User(String),
    /// The jobs of a team's members.
    Team(String),
    /// The jobs of a project.
    Project(String),
}

impl QuotaScope {
    /// The stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            QuotaScope::User(_) => "user",
            QuotaScope::Team(_) => "team",
            QuotaScope::Project(_) => "project",
        }
    }

    /// The name of the user, team or project.
    pub fn name(&self) -> &str {
        match self {
            QuotaScope::User(name) | QuotaScope::Team(name) | QuotaScope::Project(name) => name,
        }
    }

    /// Parses `user:NAME`, `team:NAME` or `project:NAME`.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw.split_once(':') {
            Some(("user", name)) if !name.is_empty() => Ok(QuotaScope::User(name.to_string())),
            Some(("team", name)) if !name.is_empty() => Ok(QuotaScope::Team(name.to_string())),
            Some(("project", name)) if !name.is_empty() => {
                Ok(QuotaScope::Project(name.to_string()))
            }
            _ => Err(DomainError::invalid(format!(
                "invalid quota scope '{raw}': use user:NAME, team:NAME or project:NAME"
            ))),
        }
    }
}

/// A quota: the most concurrent (starting or running) jobs and GPUs in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Quota {
    /// Whom it limits.
    pub scope: QuotaScope,
    /// The most concurrent jobs; absent: unlimited.
    pub max_jobs: Option<i64>,
    /// The most GPUs in use; absent: unlimited.
    pub max_gpus: Option<i64>,
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a quota or the dispatcher.
    Queued,
    /// Claimed: environment and files being prepared, submitted to the executor.
    Starting,
    /// The command is running.
    Running,
    /// Exit code 0.
    Succeeded,
    /// A non-zero exit, a memory limit, an environment that failed to build.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Stopped at the tier's maximum run time.
    TimedOut,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::TimedOut => "timed_out",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Ok(match raw {
            "queued" => JobState::Queued,
            "starting" => JobState::Starting,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            "timed_out" => JobState::TimedOut,
            other => {
                return Err(DomainError::invalid(format!(
                    "unknown job state '{other}': use queued, starting, running, succeeded, failed, cancelled or timed_out"
                )));
            }
        })
    }

    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled | JobState::TimedOut
        )
    }

    /// The MLflow run status a job in this terminal state leaves its run in.
    pub fn run_status(self) -> &'static str {
        match self {
            JobState::Succeeded => "FINISHED",
            JobState::Cancelled => "KILLED",
            JobState::Queued | JobState::Starting => "SCHEDULED",
            JobState::Running => "RUNNING",
            JobState::Failed | JobState::TimedOut => "FAILED",
        }
    }
}

/// What to run: everything a job or a schedule's template names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobTemplate {
    /// The command and its arguments; `python` means the environment's interpreter.
    pub command: Vec<String>,
    /// The environment's name.
    pub environment: String,
    /// A pinned revision; absent: the newest approved one at submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_revision: Option<i64>,
    /// The hardware tier's name.
    pub tier: String,
    /// A snapshot digest (or a unique prefix of at least 8 digits); absent: the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The experiment the job's run goes to; absent: `jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The run's name; absent: `job-<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// Extra environment variables (not secrets).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Dataset versions to put under `datasets/<name>/` (read-only), `NAME` or `NAME@VERSION`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
}

impl JobTemplate {
    /// Checks the command and variables.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return Err(DomainError::invalid("a job needs a command"));
        }
        if self.command.len() > 1000 || self.command.iter().any(|arg| arg.contains('\0')) {
            return Err(DomainError::invalid(
                "a command has at most 1000 arguments and no NUL bytes",
            ));
        }
        for (name, value) in &self.env {
            validate_env_name(name)?;
            if value.contains('\0') {
                return Err(DomainError::invalid(format!("variable '{name}' contains a NUL byte")));
            }
        }
        if self.datasets.len() > 20 {
            return Err(DomainError::invalid("a job uses at most 20 datasets"));
        }
        for dataset in &self.datasets {
            crate::datasets::DatasetRef::parse(dataset)?;
        }
        if let Some(snapshot) = &self.snapshot
            && (snapshot.len() < 8
                || snapshot.len() > 64
                || !snapshot.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(DomainError::invalid(format!(
                "invalid snapshot '{snapshot}': use a digest or a prefix of at least 8 hex digits"
            )));
        }
        Ok(())
    }
}

/// Checks the name of an environment, tier or schedule: 1–64 lowercase letters, digits, `.`,
/// `_` or `-`, starting with a letter or digit.
pub fn validate_resource_name(what: &str, name: &str) -> Result<(), DomainError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !valid {
        return Err(DomainError::invalid(format!(
            "invalid {what} name '{name}': use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )));
    }
    Ok(())
}

/// Environment variables Cairn sets itself; a job template or secret may not use them.
pub const RESERVED_ENV_PREFIXES: [&str; 2] = ["CAIRN_", "MLFLOW_"];

/// Checks an environment variable (and secret) name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128
/// characters, not starting with `CAIRN_` or `MLFLOW_`.
pub fn validate_env_name(name: &str) -> Result<(), DomainError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name.bytes().enumerate().all(|(index, byte)| {
            byte == b'_' || byte.is_ascii_alphabetic() || (index > 0 && byte.is_ascii_digit())
        });
    if !valid {
        return Err(DomainError::invalid(format!(
            "invalid variable name '{name}': use letters, digits and '_', not starting with a digit"
        )));
    }
    if RESERVED_ENV_PREFIXES.iter().any(|prefix| name.to_ascii_uppercase().starts_with(prefix)) {
        return Err(DomainError::invalid(format!(
            "variable name '{name}' is reserved: names starting with CAIRN_ or MLFLOW_ are set by Cairn"
        )));
    }
    Ok(())
}

/// A job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    /// Id.
    pub id: i64,
    /// The project's name.
    pub project: String,
    /// The state.
    pub state: JobState,
    /// What was asked.
    pub template: JobTemplate,
    /// The snapshot it runs on.
    pub snapshot: String,
    /// The environment's name.
    pub environment: String,
    /// The environment revision.
    pub environment_revision: i64,
    /// The tier's name.
    pub tier: String,
    /// The executor.
    pub executor: ExecutorKind,
    /// GPUs it holds while running.
    pub gpus: i64,
    /// Who submitted it (a schedule's owner for scheduled jobs).
    pub submitted_by: String,
    /// The experiment of its run.
    pub experiment_id: String,
    /// The MLflow run it logs into.
    pub run_id: String,
    /// The schedule that fired it.
    pub schedule: Option<String>,
    /// The firing time it was for, epoch ms (scheduled jobs).
    pub scheduled_for: Option<i64>,
    /// The run it reproduces.
    pub reproduced_from: Option<String>,
    /// Why it is still queued.
    pub queue_reason: Option<String>,
    /// How it ended, in words.
    pub reason: Option<String>,
    /// The exit code.
    pub exit_code: Option<i64>,
    /// Who cancelled it.
    pub cancel_requested_by: Option<String>,
    /// Submitted, epoch ms.
    pub created_at: i64,
    /// Claimed by the dispatcher.
    pub started_at: Option<i64>,
    /// The command started.
    pub running_at: Option<i64>,
    /// Ended.
    pub finished_at: Option<i64>,
}

/// What to do with firings missed while no replica ran (or a schedule was claimed too late).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Skip them; fire at the next time in the future.
    Skip,
    /// Fire once for all of them, then continue.
    CatchUp,
}

impl MissedPolicy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MissedPolicy::Skip => "skip",
            MissedPolicy::CatchUp => "catch_up",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "skip" => Ok(MissedPolicy::Skip),
            "catch_up" | "catch-up" => Ok(MissedPolicy::CatchUp),
            other => Err(DomainError::invalid(format!(
                "unknown missed-run policy '{other}': use skip or catch_up"
            ))),
        }
    }
}

/// A schedule: a job template fired by a cron expression in a time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Id.
    pub id: i64,
    /// The project's name.
    pub project: String,
    /// The name, unique in the project.
    pub name: String,
    /// Five or six fields (optional seconds first).
    pub cron: String,
    /// An IANA time zone such as `Europe/Paris`.
    pub timezone: String,
    /// What each firing runs.
    pub template: JobTemplate,
    /// What to do with missed firings.
    pub missed: MissedPolicy,
    /// Whether it fires.
    pub enabled: bool,
    /// Whose jobs the firings are.
    pub owner: String,
    /// The next firing, epoch ms.
    pub next_run_at: i64,
    /// The last firing, epoch ms.
    pub last_fired_at: Option<i64>,
    /// Who created it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
}

/// Whom a secret belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum SecretScope {
    /// Every job of a project.
    Project(String),
    /// Every job a user submits.
    User(String),
}

impl SecretScope {
    /// The stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            SecretScope::Project(_) => "project",
            SecretScope::User(_) => "user",
        }
    }

    /// The project's or user's name.
    pub fn name(&self) -> &str {
        match self {
            SecretScope::Project(name) | SecretScope::User(name) => name,
        }
    }
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecretInfo {
    /// Whom it belongs to.
    pub scope: SecretScope,
    /// Its name (the environment variable jobs see).
    pub name: String,
    /// Who set it.
    pub created_by: String,
    /// When it was created, epoch ms.
    pub created_at: i64,
    /// When its value last changed, epoch ms.
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> SnapshotFile {
        SnapshotFile { path: path.into(), sha256: "a".repeat(64), size: 3, executable: false }
    }

    #[test]
    fn manifests_are_sorted_and_their_digest_ignores_input_order() {
        let one = Manifest::parse(vec![file("b.py"), file("a/x.py")]).unwrap();
        let two = Manifest::parse(vec![file("a/x.py"), file("b.py")]).unwrap();
        assert_eq!(one.files[0].path, "a/x.py");
        assert_eq!(one.digest(), two.digest());
        assert_ne!(one.digest(), Manifest::parse(vec![file("b.py")]).unwrap().digest());
    }

    #[test]
    fn manifests_refuse_escaping_and_duplicate_paths() {
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", ""] {
            assert!(Manifest::parse(vec![file(bad)]).is_err(), "{bad}");
        }
        assert!(Manifest::parse(vec![file("a"), file("a")]).is_err());
        let mut bad_digest = file("a");
        bad_digest.sha256 = "A".repeat(64);
        assert!(Manifest::parse(vec![bad_digest]).is_err());
    }

    #[test]
    fn environment_definitions_refuse_pip_options() {
        let mut definition = EnvironmentDefinition {
            python: Some("3.11".into()),
            requirements: vec!["mlflow==3.17.2".into()],
            image: None,
        };
        assert!(definition.validate().is_ok());
        definition.requirements.push("--index-url http://evil".into());
        assert!(definition.validate().is_err());
        definition.requirements.pop();
        definition.python = Some("python; rm -rf /".into());
        assert!(definition.validate().is_err());
    }

    #[test]
    fn variable_names_are_checked_and_reserved_prefixes_refused() {
        assert!(validate_env_name("API_KEY").is_ok());
        assert!(validate_env_name("_x1").is_ok());
        for bad in ["1X", "A-B", "", "MLFLOW_TRACKING_URI", "cairn_job_id"] {
            assert!(validate_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn states_round_trip_and_map_to_run_statuses() {
        for state in [
            JobState::Queued,
            JobState::Starting,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::TimedOut,
        ] {
            assert_eq!(JobState::parse(state.as_str()).unwrap(), state);
        }
        assert_eq!(JobState::Cancelled.run_status(), "KILLED");
        assert!(JobState::TimedOut.is_terminal() && !JobState::Running.is_terminal());
    }
}
