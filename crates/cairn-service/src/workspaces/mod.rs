//! Workspaces: JupyterLab on a project's newest snapshot (with datasets copied read-only under
//! `datasets/<name>/`), in an approved environment (JupyterLab added when it does not name it),
//! on a tier's limits, run by the tier's executor — local, or a Ray cluster — and reached only
//! through Cairn's proxy at `/workspaces/<id>/`.
//!
//! The replica that starts a workspace runs it: it holds the row's lease, keeps the JupyterLab
//! token in memory only (never stored, logged or returned; the proxy sends it upstream), saves
//! the files as a new project snapshot on `sync` and before every stop, and stops it when idle.
//! Who may use one: its owner, or, when shared, anyone who may write to the project — both need
//! write access, since code run in it acts with the owner's project token.
//!
//! `launch.rs` prepares and starts JupyterLab, `jupyter.rs` speaks to it, `sync.rs` saves files,
//! `reaper.rs` is the background loop (leases, idle stops, crashes, shutdown), `access.rs`
//! decides who reaches a workspace and hands the proxy its target.

mod access;
mod jupyter;
mod launch;
mod reaper;
mod sync;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{EnvironmentRevision, ExecutorKind, HardwareTier};
use cairn_domain::identity::{Access, Project};
use cairn_domain::time::now_millis;
use cairn_domain::workspaces::{Workspace, WorkspaceRequest, WorkspaceState};
use cairn_exec::JobExecutor;
use cairn_store::{Store, WorkspaceLaunch, WorkspaceRecord};

pub use access::ProxyTarget;
pub use sync::SyncOutcome;

use crate::compute::JobService;
use crate::{ServiceError, ServiceResult};

/// The most workspaces listed per page.
pub const MAX_WORKSPACES_PAGE: i64 = 500;
/// How long a replica's claim on a workspace lasts without renewal.
const LEASE_MS: i64 = 60_000;

/// How workspaces run on this server.
#[derive(Debug, Clone)]
pub struct WorkspaceConfig {
    /// How often the background loop renews leases and checks for idle or ended workspaces.
    pub tick: Duration,
    /// How long JupyterLab may take to answer after its environment is ready.
    pub start_timeout: Duration,
    /// How long a workspace's API token (for MLflow logging) lives; it is revoked at stop.
    pub token_lifetime: Duration,
}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(2),
            start_timeout: Duration::from_secs(300),
            token_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Options of starting a stopped workspace again.
#[derive(Debug, Clone, Default)]
pub struct RestartOptions {
    /// Share it with the project's writers (or stop sharing); absent: as before.
    pub shared: Option<bool>,
    /// A new idle timeout in seconds; absent: as before.
    pub idle_timeout_s: Option<u64>,
}

/// A workspace running on this replica.
pub(crate) struct Live {
    /// The workspace as it was when JupyterLab answered.
    pub record: WorkspaceRecord,
    /// The executor running JupyterLab.
    pub executor: Arc<dyn JobExecutor>,
    /// JupyterLab's id on that executor.
    pub exec_id: String,
    /// Where JupyterLab listens: loopback for the local executor, a Ray node's address on Ray.
    pub address: SocketAddr,
    /// Whether JupyterLab runs elsewhere (Ray): its files are read through its contents API
    /// into `files/`, which then mirrors them.
    pub remote: bool,
    /// The datasets copied under `datasets/<name>/`, which saves leave out.
    pub datasets: Vec<String>,
    /// For a remote workspace: each file's size and modification time when last read, so a
    /// save downloads only what changed.
    pub seen: Mutex<HashMap<String, (u64, String)>>,
    /// The JupyterLab token: sent upstream by the proxy, never shown.
    pub token: Arc<str>,
    /// The workspace's directory (`files/` is JupyterLab's root, or its mirror when remote).
    pub dir: PathBuf,
    /// The snapshot the files matched when last read or saved.
    pub base: Mutex<Option<String>>,
    /// The last request through the proxy, epoch ms.
    pub proxy_activity: Arc<AtomicI64>,
    /// The last activity written to the database, epoch ms.
    pub recorded_activity: AtomicI64,
    /// No background attempt before this time, epoch ms (after a failed save or stop).
    pub retry_after: AtomicI64,
    /// How it ends, once JupyterLab was stopped (or ended by itself) and its files are being
    /// saved: a save that failed is retried with this.
    pub ending: Mutex<Option<(WorkspaceState, String)>>,
    /// Set once it ended and was recorded.
    pub ended: AtomicBool,
    /// Serialises saves and the stop.
    pub busy: tokio::sync::Mutex<()>,
}

impl Live {
    fn files_dir(&self) -> PathBuf {
        self.dir.join("files")
    }
}

/// Starts, lists, saves and stops workspaces; runs them on this replica.
#[derive(Clone)]
pub struct WorkspaceService {
    /// Executors, files, the work directory, the replica's id and the public URL.
    jobs: JobService,
    config: WorkspaceConfig,
    /// The workspaces JupyterLab runs for on this replica.
    live: Arc<Mutex<HashMap<i64, Arc<Live>>>>,
    /// The workspaces being launched by this replica.
    starting: Arc<Mutex<HashSet<i64>>>,
    /// Set when the server shuts down: launches in progress give up.
    closing: Arc<AtomicBool>,
    /// For JupyterLab's status calls (no proxy: it is on loopback).
    http: reqwest::Client,
}

/// What a start resolves to now: the revision to run, the tier and its executor, the snapshot
/// and the dataset versions.
pub(crate) struct Resolved {
    revision: EnvironmentRevision,
    tier: HardwareTier,
    executor: ExecutorKind,
    snapshot: Option<String>,
    /// Each dataset's name, version and content digest.
    datasets: Vec<(String, i64, String)>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WorkspaceService {
    /// Builds the service over the job service (its executors, files, work directory and
    /// public URL).
    pub fn new(jobs: JobService, config: WorkspaceConfig) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            jobs,
            config,
            live: Arc::default(),
            starting: Arc::default(),
            closing: Arc::default(),
            http,
        }
    }

    fn store(&self) -> &Store {
        &self.jobs.store
    }

    fn live(&self, id: i64) -> Option<Arc<Live>> {
        lock(&self.live).get(&id).cloned()
    }

    /// Starts a workspace in `project` for the caller. It answers at once with the workspace
    /// `starting`; the launch goes on in the background, and the state moves to `running` once
    /// JupyterLab answers (or to `failed` with the reason).
    pub async fn start(
        &self,
        context: &RequestContext,
        project: &str,
        request: &WorkspaceRequest,
    ) -> ServiceResult<Workspace> {
        let project = self.store().get_project(project).await?;
        self.jobs.authz.require(context, project.id, Access::Write).await?;
        request.validate()?;
        let resolved = self.resolve(&project, request).await?;
        let owner_id = context.principal.as_ref().map(|principal| principal.user_id);
        let launch = WorkspaceLaunch {
            request,
            environment_revision: resolved.revision.revision,
            executor: resolved.executor,
            snapshot: resolved.snapshot.as_deref(),
            replica: &self.jobs.replica,
            lease_until: now_millis() + LEASE_MS,
        };
        let record = self.store().create_workspace(context, project.id, owner_id, &launch).await?;
        self.spawn_launch(record.clone(), resolved);
        Ok(record.workspace)
    }

    /// Starts a stopped or failed workspace again, on the project's newest snapshot (which
    /// holds what it saved when it stopped).
    pub async fn restart(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
        options: &RestartOptions,
    ) -> ServiceResult<Workspace> {
        let (project, record) = self.usable(context, project, id).await?;
        let mut request = record.workspace.request.clone();
        if let Some(shared) = options.shared {
            request.shared = shared;
        }
        if let Some(idle) = options.idle_timeout_s {
            request.idle_timeout_s = Some(idle);
        }
        request.validate()?;
        let resolved = self.resolve(&project, &request).await?;
        let launch = WorkspaceLaunch {
            request: &request,
            environment_revision: resolved.revision.revision,
            executor: resolved.executor,
            snapshot: resolved.snapshot.as_deref(),
            replica: &self.jobs.replica,
            lease_until: now_millis() + LEASE_MS,
        };
        let record = self.store().restart_workspace(context, id, &launch).await?;
        self.spawn_launch(record.clone(), resolved);
        Ok(record.workspace)
    }

    /// One workspace of `project`.
    pub async fn get(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
    ) -> ServiceResult<Workspace> {
        let (_, record) = self.in_project(context, project, id, Access::Read).await?;
        Ok(record.workspace)
    }

    /// A project's workspaces, newest first.
    pub async fn list(
        &self,
        context: &RequestContext,
        project: &str,
        limit: i64,
    ) -> ServiceResult<Vec<Workspace>> {
        let project = self.store().get_project(project).await?;
        self.jobs.authz.require(context, project.id, Access::Read).await?;
        let records =
            self.store().list_workspaces(project.id, limit.clamp(1, MAX_WORKSPACES_PAGE)).await?;
        Ok(records.into_iter().map(|record| record.workspace).collect())
    }

    /// Saves the workspace's changed files as a new project snapshot (`None` when nothing
    /// changed since it started or was last saved).
    pub async fn sync(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
        message: Option<&str>,
    ) -> ServiceResult<SyncOutcome> {
        let (_, record) = self.usable(context, project, id).await?;
        let live = self.running_here(&record)?;
        let message = message.map_or_else(|| format!("workspace {id}: saved"), str::to_string);
        let _guard = live.busy.lock().await;
        if live.ended.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ServiceError::precondition(format!("workspace {id} has stopped")));
        }
        let snapshot = self.save(&live, context, context, &message, "sync", true).await?;
        let workspace = self.store().get_workspace(id).await?.workspace;
        Ok(SyncOutcome { snapshot, workspace })
    }

    /// Stops a workspace: JupyterLab stops, then its changed files are saved as a new snapshot
    /// and it is recorded stopped. If the save fails the error is returned, the files stay in
    /// place and the background loop retries the save until it succeeds. A workspace starting,
    /// or running on another replica, is stopped by its launcher or that replica.
    pub async fn stop(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
        message: Option<&str>,
    ) -> ServiceResult<Workspace> {
        let (_, record) = self.usable(context, project, id).await?;
        if !record.workspace.state.is_active() {
            return Err(ServiceError::precondition(format!(
                "workspace {id} is {} already",
                record.workspace.state.as_str()
            )));
        }
        self.store().request_workspace_stop(context, id).await?;
        if let Some(live) = self.live(id) {
            let message =
                message.map_or_else(|| format!("workspace {id}: saved at stop"), str::to_string);
            let reason = format!("stopped by {}", context.actor);
            self.stop_live(&live, context, context, &message, &reason, "stop").await?;
        }
        // Starting here, or running elsewhere: its launcher or its replica stops it.
        Ok(self.store().get_workspace(id).await?.workspace)
    }

    /// Resolves the environment revision (pinned, else the newest approved; it must be
    /// approved), the active tier (on an executor this server has), the newest snapshot and
    /// the dataset versions (pinned, else the newest).
    async fn resolve(
        &self,
        project: &Project,
        request: &WorkspaceRequest,
    ) -> ServiceResult<Resolved> {
        let (revision, tier, executor) = self
            .jobs
            .runnable(&request.environment, request.environment_revision, &request.tier)
            .await?;
        self.jobs.executor(executor).map_err(|_| {
            ServiceError::precondition(format!(
                "tier '{}' runs on the {} executor, which this server is not configured with",
                tier.name,
                executor.as_str()
            ))
        })?;
        let snapshot =
            self.store().list_snapshots(project.id, 1).await?.pop().map(|snapshot| snapshot.digest);
        let mut datasets = Vec::new();
        for wanted in request.dataset_refs()? {
            let version =
                self.store().dataset_version(project.id, &wanted.name, wanted.version).await?;
            datasets.push((wanted.name, version.version, version.digest));
        }
        Ok(Resolved { revision, tier, executor, snapshot, datasets })
    }

    /// Requires `access` to `project` and finds the workspace there (another project's is
    /// reported missing).
    async fn in_project(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
        access: Access,
    ) -> ServiceResult<(Project, WorkspaceRecord)> {
        let project = self.store().get_project(project).await?;
        self.jobs.authz.require(context, project.id, access).await?;
        match self.store().get_workspace(id).await {
            Ok(record) if record.project_id == project.id => Ok((project, record)),
            Ok(_) => Err(missing(id, &project.name)),
            Err(error) if error.kind() == cairn_domain::ErrorKind::NotFound => {
                Err(missing(id, &project.name))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Finds a workspace the caller may use: write access to its project, and being its owner
    /// unless it is shared.
    async fn usable(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
    ) -> ServiceResult<(Project, WorkspaceRecord)> {
        let (project, record) = self.in_project(context, project, id, Access::Write).await?;
        access::require_user(context, &record)?;
        Ok((project, record))
    }

    fn running_here(&self, record: &WorkspaceRecord) -> ServiceResult<Arc<Live>> {
        let id = record.workspace.id;
        if let Some(live) = self.live(id) {
            return Ok(live);
        }
        Err(match record.workspace.state {
            WorkspaceState::Running
                if record.claimed_by.as_deref() != Some(&*self.jobs.replica) =>
            {
                ServiceError::precondition(format!(
                    "workspace {id} runs on another Cairn server: send this request there"
                ))
            }
            state => ServiceError::precondition(format!(
                "workspace {id} is {}, not running",
                state.as_str()
            )),
        })
    }

    /// The author of saves made by Cairn itself (idle stops, shutdown): the workspace's owner.
    fn owner_context(record: &WorkspaceRecord) -> RequestContext {
        RequestContext {
            actor: record.workspace.owner.clone(),
            request_id: None,
            principal: None,
            project: None,
        }
    }
}

fn missing(id: i64, project: &str) -> ServiceError {
    ServiceError::not_found(format!("no workspace {id} in project '{project}'"))
}
