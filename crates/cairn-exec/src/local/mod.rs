//! The local executor: jobs as process groups on the server's machine, in cached venvs, with
//! memory and CPU limits from cgroups (or `ulimit -v`), a time limit from a timer, and logs in
//! a file per job.
//!
//! Layout under [`LocalConfig::root`]: `jobs/<job id>/output.log` (stdout and stderr),
//! `jobs/<job id>/state.json` (the last state, so a finished job's state and logs survive a
//! restart), `jobs/<job id>/outputs/` (`$CAIRN_OUTPUTS_DIR`). Venvs live in
//! [`LocalConfig::env_cache`] (see `venv.rs`).

mod cgroups;
mod job;
mod process;
mod venv;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use cgroups::CgroupSupport;
pub use cgroups::MemoryEnforcement;
use job::JobHandle;
use venv::EnvCache;

use crate::spec::validate_id;
use crate::{
    EnvironmentSpec, ExecError, ExecutorKind, JobExecutor, JobSpec, JobState, LogChunk, PreparedEnv,
};

/// The most log bytes one `logs` call returns.
pub const MAX_LOG_CHUNK: u64 = 1 << 20;
/// How long `stop` waits beyond the kill grace period for the job to end.
const STOP_SLACK: Duration = Duration::from_secs(10);

/// Settings of a [`LocalExecutor`].
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where job directories (logs, state, outputs) live.
    pub root: PathBuf,
    /// Where venvs are cached; may be shared by several executors and processes.
    pub env_cache: PathBuf,
    /// The base interpreter for venvs whose environment names none (may itself be a venv's
    /// python: the new venv is built from its base interpreter, isolated from its packages).
    pub python: PathBuf,
    /// How long a stopped or timed-out job gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// The name of the cgroup holding job cgroups, under each hierarchy's root.
    pub cgroup_parent: String,
    /// Whether to use cgroups when available (`false` forces the `ulimit -v` fallback).
    pub use_cgroups: bool,
}

impl LocalConfig {
    /// Settings with venvs in `<root>/envs`, a 10 s kill grace period and cgroups under
    /// `cairn`.
    pub fn new(root: impl Into<PathBuf>, python: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            env_cache: root.join("envs"),
            root,
            python: python.into(),
            kill_grace: Duration::from_secs(10),
            cgroup_parent: "cairn".to_string(),
            use_cgroups: true,
        }
    }
}

/// Runs jobs as local processes. Cheap to share: clone the `Arc` it is used through.
#[derive(Debug)]
pub struct LocalExecutor {
    inner: Arc<Inner>,
}

/// The executor's state, shared with each job's supervisor task.
#[derive(Debug)]
pub(crate) struct Inner {
    config: LocalConfig,
    envs: EnvCache,
    cgroups: CgroupSupport,
    jobs: Mutex<HashMap<String, Arc<JobHandle>>>,
    http: reqwest::Client,
}

impl LocalExecutor {
    /// Creates the executor, detecting how limits can be enforced on this machine.
    pub fn new(config: LocalConfig) -> Result<Self, ExecError> {
        std::fs::create_dir_all(config.root.join("jobs"))
            .map_err(|error| ExecError::io("creating the executor's job directory", error))?;
        let cgroups = CgroupSupport::detect(&config.cgroup_parent, config.use_cgroups);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| ExecError::Internal(format!("building an http client: {error}")))?;
        tracing::info!(
            memory = cgroups.memory.as_str(),
            cpu = cgroups.limits_cpu(),
            "local executor limits"
        );
        let envs = EnvCache::new(config.env_cache.clone(), config.python.clone());
        let inner = Inner { config, envs, cgroups, jobs: Mutex::new(HashMap::new()), http };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Returns how memory limits are enforced here: `cgroup-v2`, `cgroup-v1` or `rlimit-as`.
    pub fn memory_enforcement(&self) -> &'static str {
        self.inner.cgroups.memory.as_str()
    }

    /// Returns whether CPU limits are enforced (only with cgroups; otherwise jobs share the
    /// machine's CPUs).
    pub fn limits_cpu(&self) -> bool {
        self.inner.cgroups.limits_cpu()
    }

    fn job_dir(&self, job_id: &str) -> PathBuf {
        self.inner.config.root.join("jobs").join(job_id)
    }

    fn handle(&self, job_id: &str) -> Option<Arc<JobHandle>> {
        self.inner.jobs_lock().get(job_id).cloned()
    }

    /// The state of a job this process does not run: a finished job recorded on disk.
    fn state_on_disk(&self, job_id: &str) -> Result<JobState, ExecError> {
        validate_id("job id", job_id).map_err(|_| not_found(job_id))?;
        match job::read_state(&self.job_dir(job_id)) {
            Some(state) if state.is_terminal() => Ok(state),
            _ => Err(not_found(job_id)),
        }
    }
}

impl Inner {
    fn jobs_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<JobHandle>>> {
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn not_found(job_id: &str) -> ExecError {
    ExecError::NotFound(format!("no local job {job_id:?}"))
}

#[async_trait]
impl JobExecutor for LocalExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Local
    }

    async fn prepare(
        &self,
        env: &EnvironmentSpec,
        build_log: &Path,
    ) -> Result<PreparedEnv, ExecError> {
        let prepared = self.inner.envs.ensure(env, build_log).await?;
        if prepared.reused {
            let line = format!("environment {} is ready (cached)", env.digest);
            venv::append_line(build_log, &line).await?;
        }
        Ok(prepared)
    }

    async fn submit(&self, spec: &JobSpec) -> Result<(), ExecError> {
        spec.validate()?;
        let dir = self.job_dir(&spec.job_id);
        let handle = {
            let mut jobs = self.inner.jobs_lock();
            if jobs.contains_key(&spec.job_id) {
                return Ok(());
            }
            if job::read_state(&dir).is_some_and(|state| state.is_terminal()) {
                return Ok(());
            }
            let handle = Arc::new(JobHandle::new(dir.clone()));
            jobs.insert(spec.job_id.clone(), handle.clone());
            handle
        };
        // A directory without a finished state belongs to a job whose server died: start over.
        let prepared = async {
            match tokio::fs::remove_dir_all(&dir).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            }?;
            tokio::fs::create_dir_all(&dir).await?;
            job::write_state(&dir, &JobState::Pending, None).await
        };
        if let Err(error) = prepared.await {
            self.inner.jobs_lock().remove(&spec.job_id);
            return Err(ExecError::io("creating the job directory", error));
        }
        tracing::info!(job.id = %spec.job_id, "local job submitted");
        tokio::spawn(job::supervise(self.inner.clone(), handle, spec.clone()));
        Ok(())
    }

    async fn status(&self, job_id: &str) -> Result<JobState, ExecError> {
        match self.handle(job_id) {
            Some(handle) => Ok(handle.state.borrow().clone()),
            None => self.state_on_disk(job_id),
        }
    }

    async fn logs(&self, job_id: &str, offset: u64) -> Result<LogChunk, ExecError> {
        // The state is read before the log, so a terminal state means the log is complete.
        let state = self.status(job_id).await?;
        let path = self.job_dir(job_id).join(job::LOG_FILE);
        let bytes = job::read_log(&path, offset, MAX_LOG_CHUNK).await?;
        let next_offset = offset + bytes.len() as u64;
        let length = tokio::fs::metadata(&path).await.map(|meta| meta.len()).unwrap_or(0);
        let complete = state.is_terminal() && next_offset >= length;
        Ok(LogChunk { bytes, next_offset, complete })
    }

    async fn stop(&self, job_id: &str, reason: &str) -> Result<(), ExecError> {
        let Some(handle) = self.handle(job_id) else {
            return self.state_on_disk(job_id).map(|_| ());
        };
        if handle.state.borrow().is_terminal() {
            return Ok(());
        }
        tracing::info!(job.id = %job_id, %reason, "stopping local job");
        handle.request_stop(reason);
        let mut states = handle.state.subscribe();
        let wait = tokio::time::timeout(
            self.inner.config.kill_grace + STOP_SLACK,
            states.wait_for(JobState::is_terminal),
        );
        match wait.await {
            Ok(_) => Ok(()),
            Err(_) => Err(ExecError::Internal(format!("job {job_id:?} did not stop in time"))),
        }
    }

    async fn cleanup(&self, job_id: &str) -> Result<(), ExecError> {
        if validate_id("job id", job_id).is_err() {
            return Ok(());
        }
        if let Some(handle) = self.handle(job_id)
            && !handle.state.borrow().is_terminal()
        {
            self.stop(job_id, "cleaned up").await?;
        }
        self.inner.jobs_lock().remove(job_id);
        match tokio::fs::remove_dir_all(self.job_dir(job_id)).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(ExecError::io("removing the job directory", error))
            }
            _ => Ok(()),
        }
    }

    async fn ready(&self) -> Result<(), ExecError> {
        Ok(())
    }
}
