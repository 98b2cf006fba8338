//! Starting a workspace, in the background after the start request answered: its snapshot
//! and datasets written to a fresh directory, its environment built (with JupyterLab added when
//! the environment does not name it), its tokens and secrets issued, JupyterLab submitted to the
//! tier's executor with the tier's CPU and memory limits (no maximum run time: idle stops end
//! workspaces), and the wait until it answers. On Ray the directory is shipped as the job's
//! working directory and JupyterLab reports the node address it listens on in its log. A stop
//! asked meanwhile, or the server closing, ends the launch.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{EnvironmentRevision, ExecutorKind};
use cairn_domain::time::now_millis;
use cairn_domain::workspaces::{JUPYTERLAB_REQUIREMENT, WorkspaceState, names_jupyterlab};
use cairn_exec::{EnvironmentSpec, JobExecutor, JobSpec, Limits};
use cairn_store::WorkspaceRecord;

use super::{Live, Resolved, WorkspaceService, jupyter, lock};

/// How a launch that did not reach `running` ends.
enum Ended {
    /// It failed, for this reason.
    Failed(String),
    /// A stop was asked (or the server closed) before it was ready.
    Stopped(String),
}

impl From<cairn_store::StoreError> for Ended {
    fn from(error: cairn_store::StoreError) -> Self {
        Ended::Failed(error.to_string())
    }
}

impl From<crate::ServiceError> for Ended {
    fn from(error: crate::ServiceError) -> Self {
        Ended::Failed(error.message)
    }
}

/// The environment JupyterLab runs in: the revision's, plus JupyterLab when it is not named
/// (a distinct digest, so the cached environment of the revision itself stays as it is).
fn environment_spec(revision: &EnvironmentRevision) -> EnvironmentSpec {
    let definition = &revision.definition;
    let mut requirements = definition.requirements.clone();
    let mut digest = revision.digest.clone();
    if !names_jupyterlab(&requirements) {
        requirements.push(JUPYTERLAB_REQUIREMENT.to_string());
        digest.push_str("-jupyterlab");
    }
    EnvironmentSpec {
        digest,
        python: definition.python.clone(),
        requirements,
        image: definition.image.clone(),
    }
}

impl WorkspaceService {
    /// Launches a workspace recorded as starting, in the background.
    pub(super) fn spawn_launch(&self, record: WorkspaceRecord, resolved: Resolved) {
        let id = record.workspace.id;
        lock(&self.starting).insert(id);
        let service = self.clone();
        tokio::spawn(async move {
            service.launch(record, resolved).await;
            lock(&service.starting).remove(&id);
        });
    }

    async fn launch(&self, record: WorkspaceRecord, resolved: Resolved) {
        let id = record.workspace.id;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let exec_id = format!("cairn-ws-{id}-{}", &nonce[..12]);
        let dir = self.jobs.config.work_dir.join(&exec_id);
        let executor = match self.jobs.executor(resolved.executor) {
            Ok(executor) => executor,
            Err(error) => {
                self.end_launch(id, Ended::Failed(error.message)).await;
                return;
            }
        };
        let run = self.run(&record, &resolved, executor.clone(), &exec_id, &dir);
        match run.await {
            Ok(live) => {
                tracing::info!(workspace.id = id, "workspace running");
                lock(&self.live).insert(id, Arc::new(live));
            }
            Err(ended) => {
                let _ = executor.stop(&exec_id, "the workspace did not start").await;
                if let Err(error) = executor.cleanup(&exec_id).await {
                    tracing::warn!(workspace.id = id, %error, "cleaning up a workspace that did not start failed");
                }
                let _ = tokio::fs::remove_dir_all(&dir).await;
                self.end_launch(id, ended).await;
            }
        }
    }

    async fn end_launch(&self, id: i64, ended: Ended) {
        let (state, reason) = match ended {
            Ended::Failed(reason) => (WorkspaceState::Failed, format!("could not start: {reason}")),
            Ended::Stopped(reason) => (WorkspaceState::Stopped, reason),
        };
        tracing::info!(workspace.id = id, %reason, "workspace launch ended");
        let system = RequestContext::system();
        if let Err(error) = self.store().finish_workspace(&system, id, state, &reason).await {
            tracing::error!(workspace.id = id, %error, "recording a workspace's launch failure failed");
        }
    }

    async fn run(
        &self,
        record: &WorkspaceRecord,
        resolved: &Resolved,
        executor: Arc<dyn JobExecutor>,
        exec_id: &str,
        dir: &Path,
    ) -> Result<Live, Ended> {
        let (revision, tier) = (&resolved.revision, &resolved.tier);
        let remote = resolved.executor != ExecutorKind::Local;
        let workspace = &record.workspace;
        let id = workspace.id;
        let files = dir.join("files");
        tokio::fs::create_dir_all(&files).await.map_err(|error| {
            Ended::Failed(format!("could not create the workspace directory: {error}"))
        })?;
        if let Some(snapshot) = &workspace.snapshot {
            self.jobs.files.materialize(record.project_id, snapshot, &files).await?;
        }
        for (name, _, digest) in &resolved.datasets {
            let target = files.join("datasets").join(name);
            if tokio::fs::try_exists(&target).await.unwrap_or(false) {
                // A project file or folder of that name is hidden by the dataset while it runs.
                let _ = tokio::fs::remove_dir_all(&target).await;
                let _ = tokio::fs::remove_file(&target).await;
            }
            self.jobs.files.materialize(record.project_id, digest, &target).await?;
            crate::compute::make_read_only(target).await?;
        }
        let environment = environment_spec(revision);
        let build_log = dir.join("environment.log");
        if let Err(error) = executor.prepare(&environment, &build_log).await {
            let name = format!("{}@{}", workspace.request.environment, revision.revision);
            return Err(Ended::Failed(match error {
                cairn_exec::ExecError::EnvironmentBuild { message, log_tail } => {
                    format!("environment '{name}' failed to build: {message}\n{log_tail}")
                }
                other => format!("environment '{name}' could not be prepared: {other}"),
            }));
        }
        self.check_stop(id).await?;
        let token: Arc<str> = Arc::from(jupyter::new_token());
        let mut env = self.variables(record).await?;
        // Where JupyterLab listens: chosen here when local, reported by the launcher on Ray.
        let (argv, known) = if remote {
            // The launcher moves the token from the environment into a private file on the node.
            env.insert(jupyter::REMOTE_TOKEN_VAR.into(), token.to_string());
            (jupyter::remote_command(id), None)
        } else {
            env.extend(jupyter::environment(dir));
            jupyter::write_token(dir, &token).await.map_err(|error| {
                Ended::Failed(format!("could not write the token file: {error}"))
            })?;
            let port = jupyter::free_port()
                .map_err(|error| Ended::Failed(format!("no free port for JupyterLab: {error}")))?;
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            (jupyter::command(id, port, &files), Some(address))
        };
        let spec = JobSpec {
            job_id: exec_id.to_string(),
            argv,
            working_dir: files,
            env,
            environment,
            limits: Limits {
                cpu: tier.spec.cpu,
                memory_bytes: Some(tier.spec.memory_mib.saturating_mul(1024 * 1024)),
                gpus: tier.spec.gpus,
                max_runtime: None,
            },
            outputs: None,
        };
        executor.submit(&spec).await.map_err(|error| Ended::Failed(error.to_string()))?;
        let address = self.wait_until_ready(id, &executor, exec_id, known, &token).await?;
        if !remote {
            jupyter::forget_token_files(dir).await;
        }
        let system = RequestContext::system();
        let replica = &self.jobs.replica;
        let port = address.port();
        if !self.store().set_workspace_running(&system, id, replica, exec_id, port).await? {
            let by = self.store().get_workspace(id).await?.workspace.stop_requested_by;
            return Err(Ended::Stopped(stopped_before_ready(by)));
        }
        Ok(Live {
            record: self.store().get_workspace(id).await?,
            executor,
            exec_id: exec_id.to_string(),
            address,
            remote,
            datasets: resolved.datasets.iter().map(|(name, _, _)| name.clone()).collect(),
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
            token,
            dir: dir.to_path_buf(),
            base: std::sync::Mutex::new(workspace.snapshot.clone()),
            proxy_activity: Arc::new(AtomicI64::new(now_millis())),
            recorded_activity: AtomicI64::new(now_millis()),
            retry_after: AtomicI64::new(0),
            ending: std::sync::Mutex::new(None),
            ended: AtomicBool::new(false),
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// JupyterLab's variables: the project's and the owner's secrets, where MLflow and Cairn
    /// are (with a token of the owner confined to the project, as jobs get).
    async fn variables(&self, record: &WorkspaceRecord) -> Result<BTreeMap<String, String>, Ended> {
        let workspace = &record.workspace;
        let public_url =
            self.jobs.public_url.get().cloned().ok_or_else(|| {
                Ended::Failed("the server's public URL is not known yet".to_string())
            })?;
        let system = RequestContext::system();
        let mut env = self
            .jobs
            .secrets
            .open_for(&system, ("workspace_id", workspace.id), record.project_id, record.owner_id)
            .await?;
        env.insert("MLFLOW_TRACKING_URI".into(), format!("{public_url}/p/{}", workspace.project));
        env.insert("CAIRN_URL".into(), public_url);
        env.insert("CAIRN_PROJECT".into(), workspace.project.clone());
        env.insert("CAIRN_WORKSPACE_ID".into(), workspace.id.to_string());
        if let Some(snapshot) = &workspace.snapshot {
            env.insert("CAIRN_SNAPSHOT".into(), snapshot.clone());
        }
        if record.owner_id.is_some() {
            let (secret, digest, hint) = crate::identity::new_token_secret();
            let lifetime =
                i64::try_from(self.config.token_lifetime.as_millis()).unwrap_or(i64::MAX / 2);
            let expires_at = now_millis().saturating_add(lifetime);
            self.store()
                .attach_workspace_token(&system, workspace.id, &digest, &hint, expires_at)
                .await?;
            env.insert("MLFLOW_TRACKING_TOKEN".into(), secret.clone());
            env.insert("CAIRN_TOKEN".into(), secret);
        }
        Ok(env)
    }

    /// Waits until JupyterLab answers, failing when it ends first or takes too long, and
    /// ending the launch when a stop is asked or the server closes. Returns where it listens:
    /// `known` when local, from the launcher's line in its log on Ray.
    async fn wait_until_ready(
        &self,
        id: i64,
        executor: &Arc<dyn JobExecutor>,
        exec_id: &str,
        known: Option<SocketAddr>,
        token: &str,
    ) -> Result<SocketAddr, Ended> {
        let started = Instant::now();
        let mut address = known;
        loop {
            if address.is_none() {
                address = match executor.logs(exec_id, 0).await {
                    Ok(chunk) => jupyter::reported_address(&chunk.bytes),
                    Err(_) => None,
                };
            }
            if let Some(address) = address
                && jupyter::answers(&self.http, address, id, token).await
            {
                return Ok(address);
            }
            match executor.status(exec_id).await {
                Ok(state) if state.is_terminal() => {
                    let tail = log_tail(executor, exec_id, token).await;
                    return Err(Ended::Failed(format!(
                        "JupyterLab ended: {}\n{tail}",
                        state.reason()
                    )));
                }
                Ok(_) => {}
                Err(error) => return Err(Ended::Failed(error.to_string())),
            }
            if started.elapsed() > self.config.start_timeout {
                let tail = log_tail(executor, exec_id, token).await;
                let limit = cairn_exec::format_duration(self.config.start_timeout);
                return Err(Ended::Failed(format!(
                    "JupyterLab did not answer within {limit}\n{tail}"
                )));
            }
            self.check_stop(id).await?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Ends the launch when a stop was asked or the server is closing.
    async fn check_stop(&self, id: i64) -> Result<(), Ended> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(Ended::Stopped(
                "the server shut down before the workspace was ready".into(),
            ));
        }
        let record = self.store().get_workspace(id).await?;
        match record.workspace.stop_requested_by {
            Some(by) => Err(Ended::Stopped(stopped_before_ready(Some(by)))),
            None => Ok(()),
        }
    }
}

fn stopped_before_ready(by: Option<String>) -> String {
    match by {
        Some(by) => format!("stopped by {by} before it was ready"),
        None => "stopped before it was ready".to_string(),
    }
}

/// The last lines of JupyterLab's log, with the token blanked out should it appear.
async fn log_tail(executor: &Arc<dyn JobExecutor>, exec_id: &str, token: &str) -> String {
    let Ok(chunk) = executor.logs(exec_id, 0).await else { return String::new() };
    let text = String::from_utf8_lossy(&chunk.bytes).replace(token, "[token]");
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
