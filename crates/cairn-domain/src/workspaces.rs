//! Workspaces: JupyterLab servers a user starts on a project's newest snapshot, in an approved
//! environment on a hardware tier, reached only through Cairn's proxy at `/workspaces/<id>/`.
//! The records and the rules that need no I/O: states, the start request, which requirement
//! lines name JupyterLab, and which files a sync leaves out.

use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::compute::ExecutorKind;

/// How long a workspace may sit without kernel or HTTP activity before it is stopped, unless
/// the start request says otherwise.
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 3600;
/// The shortest idle timeout accepted.
pub const MIN_IDLE_TIMEOUT_S: u64 = 10;
/// The longest idle timeout accepted (30 days).
pub const MAX_IDLE_TIMEOUT_S: u64 = 30 * 24 * 3600;
/// The requirement added to an environment that does not name JupyterLab itself.
pub const JUPYTERLAB_REQUIREMENT: &str = "jupyterlab>=4,<5";
/// Directories a sync never saves (as `cairn push` skips them).
pub const SKIPPED_DIRS: [&str; 6] =
    [".git", "__pycache__", ".venv", "venv", "node_modules", ".ipynb_checkpoints"];

/// Where a workspace is in its life. A stopped or failed workspace can be started again; one
/// being stopped stays `running` with `stop_requested_by` set until its changes are saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceState {
    /// Files, environment and JupyterLab being prepared.
    Starting,
    /// JupyterLab answers through the proxy.
    Running,
    /// Stopped on request, when idle or when its server shut down; its changes were saved.
    Stopped,
    /// It could not start, or JupyterLab ended by itself (a memory limit, say).
    Failed,
}

impl WorkspaceState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceState::Starting => "starting",
            WorkspaceState::Running => "running",
            WorkspaceState::Stopped => "stopped",
            WorkspaceState::Failed => "failed",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Ok(match raw {
            "starting" => WorkspaceState::Starting,
            "running" => WorkspaceState::Running,
            "stopped" => WorkspaceState::Stopped,
            "failed" => WorkspaceState::Failed,
            other => {
                return Err(DomainError::invalid(format!(
                    "unknown workspace state '{other}': use starting, running, stopped or failed"
                )));
            }
        })
    }

    /// Whether the workspace holds resources (a JupyterLab process or its preparation).
    pub fn is_active(self) -> bool {
        matches!(self, WorkspaceState::Starting | WorkspaceState::Running)
    }
}

/// What a user asks for when starting a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRequest {
    /// The environment (it must have an approved revision).
    pub environment: String,
    /// A revision to pin; absent: the newest approved one at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_revision: Option<i64>,
    /// The hardware tier: its CPU and memory limit the workspace.
    pub tier: String,
    /// Whether the project's contributors and owners may use it too (otherwise only its owner).
    #[serde(default)]
    pub shared: bool,
    /// Seconds without kernel or HTTP activity after which it is stopped (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<u64>,
    /// Datasets copied read-only under `datasets/<name>/`: `NAME` (the newest version at each
    /// start) or `NAME@VERSION`. A sync never saves them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
}

impl WorkspaceRequest {
    /// Checks the request's own fields (names are checked against the catalogue later).
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.environment.trim().is_empty() || self.tier.trim().is_empty() {
            return Err(DomainError::invalid("a workspace needs an environment and a tier"));
        }
        if self.environment_revision.is_some_and(|revision| revision < 1) {
            return Err(DomainError::invalid("environment_revision starts at 1"));
        }
        let idle = self.idle_timeout();
        if !(MIN_IDLE_TIMEOUT_S..=MAX_IDLE_TIMEOUT_S).contains(&idle) {
            return Err(DomainError::invalid(format!(
                "idle_timeout_s must be between {MIN_IDLE_TIMEOUT_S} and {MAX_IDLE_TIMEOUT_S}"
            )));
        }
        let mut names = std::collections::HashSet::new();
        for raw in &self.datasets {
            let wanted = crate::datasets::DatasetRef::parse(raw)?;
            if !names.insert(wanted.name.clone()) {
                return Err(DomainError::invalid(format!(
                    "dataset '{}' is named twice",
                    wanted.name
                )));
            }
        }
        Ok(())
    }

    /// The datasets' references, parsed (the request must be valid).
    pub fn dataset_refs(&self) -> Result<Vec<crate::datasets::DatasetRef>, DomainError> {
        self.datasets.iter().map(|raw| crate::datasets::DatasetRef::parse(raw)).collect()
    }

    /// The idle timeout in seconds, the default when absent.
    pub fn idle_timeout(&self) -> u64 {
        self.idle_timeout_s.unwrap_or(DEFAULT_IDLE_TIMEOUT_S)
    }
}

/// A workspace as every surface shows it. Its JupyterLab token is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    /// Id, increasing within the site.
    pub id: i64,
    /// The project's name.
    pub project: String,
    /// Who started it.
    pub owner: String,
    /// The state.
    pub state: WorkspaceState,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    /// What was asked at its last start.
    pub request: WorkspaceRequest,
    /// The environment revision it runs in.
    pub environment_revision: i64,
    /// The executor it runs on.
    pub executor: ExecutorKind,
    /// The snapshot it started from (absent for a project without files).
    pub snapshot: Option<String>,
    /// The snapshot its changes were last saved as.
    pub synced_snapshot: Option<String>,
    /// When its changes were last saved, epoch ms.
    pub synced_at: Option<i64>,
    /// Where JupyterLab is served, relative to the server: `/workspaces/<id>/lab`.
    pub url: String,
    /// Who asked it to stop, while its changes are being saved and it is stopping.
    pub stop_requested_by: Option<String>,
    /// The last kernel or HTTP activity seen, epoch ms.
    pub last_activity_at: Option<i64>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Last (re)started, epoch ms.
    pub started_at: i64,
    /// JupyterLab answered, epoch ms.
    pub running_at: Option<i64>,
    /// Stopped or failed, epoch ms.
    pub stopped_at: Option<i64>,
}

/// The path JupyterLab of workspace `id` is served under (its `base_url`).
pub fn base_path(id: i64) -> String {
    format!("/workspaces/{id}/")
}

/// The normalised project name of a pip requirement line (`JupyterLab_Server[x]>=2` →
/// `jupyterlab-server`), or `None` for a line that names no package (a URL, an option).
pub fn requirement_name(line: &str) -> Option<String> {
    let trimmed = line.trim();
    let end = trimmed
        .find(|character: char| !(character.is_ascii_alphanumeric() || "-_.".contains(character)))
        .unwrap_or(trimmed.len());
    let name = &trimmed[..end];
    if name.is_empty() || !name.starts_with(|character: char| character.is_ascii_alphanumeric()) {
        return None;
    }
    Some(name.to_ascii_lowercase().replace(['_', '.'], "-"))
}

/// Whether the requirement lines install JupyterLab.
pub fn names_jupyterlab(requirements: &[String]) -> bool {
    requirements.iter().any(|line| requirement_name(line).as_deref() == Some("jupyterlab"))
}

/// Whether a sync leaves out the file or directory called `name`.
pub fn sync_skips(name: &str, is_dir: bool) -> bool {
    if is_dir { SKIPPED_DIRS.contains(&name) } else { name.ends_with(".pyc") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_are_normalised() {
        assert_eq!(requirement_name("JupyterLab==4.6.6").as_deref(), Some("jupyterlab"));
        assert_eq!(requirement_name(" jupyterlab >=4").as_deref(), Some("jupyterlab"));
        assert_eq!(requirement_name("jupyterlab[dev]").as_deref(), Some("jupyterlab"));
        assert_eq!(requirement_name("jupyterlab_server").as_deref(), Some("jupyterlab-server"));
        assert_eq!(requirement_name("-e ."), None);
        assert!(names_jupyterlab(&["numpy".into(), "jupyterlab==4.6.6".into()]));
        assert!(!names_jupyterlab(&["jupyterlab-server".into(), "jupyter".into()]));
    }

    #[test]
    fn requests_are_checked() {
        let request = WorkspaceRequest {
            environment: "py".into(),
            environment_revision: None,
            tier: "small".into(),
            shared: false,
            idle_timeout_s: None,
            datasets: vec!["iris@2".into(), "census".into()],
        };
        assert_eq!(request.validate(), Ok(()));
        let twice =
            WorkspaceRequest { datasets: vec!["iris".into(), "iris@1".into()], ..request.clone() };
        assert!(twice.validate().unwrap_err().to_string().contains("named twice"));
        let bad = WorkspaceRequest { datasets: vec!["iris@0".into()], ..request.clone() };
        assert!(bad.validate().is_err());
        assert_eq!(request.idle_timeout(), DEFAULT_IDLE_TIMEOUT_S);
        let too_short = WorkspaceRequest { idle_timeout_s: Some(1), ..request.clone() };
        assert!(too_short.validate().is_err());
        let no_tier = WorkspaceRequest { tier: " ".into(), ..request.clone() };
        assert!(no_tier.validate().is_err());
        let bad_revision = WorkspaceRequest { environment_revision: Some(0), ..request };
        assert!(bad_revision.validate().is_err());
    }

    #[test]
    fn states_round_trip_and_skips_match_push() {
        for state in ["starting", "running", "stopped", "failed"] {
            assert_eq!(WorkspaceState::parse(state).unwrap().as_str(), state);
        }
        assert!(WorkspaceState::parse("paused").is_err());
        assert!(WorkspaceState::Starting.is_active() && !WorkspaceState::Failed.is_active());
        assert!(sync_skips(".ipynb_checkpoints", true) && sync_skips("a.pyc", false));
        assert!(!sync_skips(".ipynb_checkpoints", false) && !sync_skips("notes.ipynb", false));
        assert_eq!(base_path(7), "/workspaces/7/");
    }
}
