//! The Ray executor: jobs on a Ray cluster through its Jobs REST API, keyed on Cairn's job id
//! as Ray's `submission_id`.
//!
//! The working directory is zipped (with Cairn's job wrapper added) and uploaded to the head's
//! package store; the entrypoint runs the wrapper, which runs the command, enforces the memory
//! limit and uploads outputs (see `wrapper.py`). The time limit is enforced from here, by a
//! watchdog task that polls the job and stops it. Why Cairn stopped a job is remembered in
//! memory (Ray has no stop reason); after a restart a stop is classified from the job's
//! metadata and run time.

mod client;
mod mapping;
mod package;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use client::{JobInfo, RayClient};
use mapping::StopCause;
pub use package::MAX_PACKAGE_SOURCE_BYTES;

/// The files the executor adds at the root of a job's working directory on the cluster (the
/// job's own files are beside them).
pub const ADDED_FILES: [&str; 2] = [mapping::WRAPPER_NAME, mapping::JOB_ID_NAME];

use crate::spec::{validate_id, validate_requirements};
use crate::{
    EnvironmentSpec, ExecError, ExecutorKind, JobExecutor, JobSpec, JobState, LogChunk, PreparedEnv,
};

/// Settings of a [`RayExecutor`].
#[derive(Debug, Clone)]
pub struct RayConfig {
    /// The head's dashboard address, where the Jobs API lives (`http://host:8265`).
    pub address: url::Url,
    /// How often the time-limit watchdog and `stop` poll a job.
    pub poll_interval: Duration,
    /// How long a submission is retried while the head has no job agent yet.
    pub submit_retry_timeout: Duration,
    /// The timeout of one HTTP request (package uploads included).
    pub request_timeout: Duration,
    /// How long `stop` waits for Ray to report the job stopped.
    pub stop_timeout: Duration,
}

impl RayConfig {
    /// Settings for the head at `address` with a 1 s poll, 60 s of submit retries, 120 s
    /// requests and a 30 s stop wait.
    pub fn new(address: url::Url) -> Self {
        Self {
            address,
            poll_interval: Duration::from_secs(1),
            submit_retry_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            stop_timeout: Duration::from_secs(30),
        }
    }
}

/// Runs jobs on a Ray cluster.
#[derive(Debug)]
pub struct RayExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RayConfig,
    client: RayClient,
    /// Why Cairn stopped each job it stopped.
    causes: Mutex<HashMap<String, StopCause>>,
    /// Jobs whose time limit a watchdog task enforces.
    watched: Mutex<HashSet<String>>,
}

impl Inner {
    fn cause(&self, job_id: &str) -> Option<StopCause> {
        lock(&self.causes).get(job_id).cloned()
    }

    /// Records why a job is being stopped, unless a cause is recorded already.
    fn record_cause(&self, job_id: &str, cause: StopCause) {
        lock(&self.causes).entry(job_id.to_string()).or_insert(cause);
    }

    async fn job(&self, job_id: &str) -> Result<JobInfo, ExecError> {
        validate_id("job id", job_id).map_err(|_| not_found(job_id))?;
        match self.client.job(job_id).await {
            Ok(Some(info)) => Ok(info),
            Ok(None) => Err(not_found(job_id)),
            Err(failure) => Err(failure.into_error("read the job")),
        }
    }

    /// Starts a watchdog for the job's time limit unless one runs. `running_since` is when the
    /// job started running, if known (otherwise the watchdog notes when it first sees it run).
    fn watch(self: &Arc<Self>, job_id: &str, limit: Duration, running_since: Option<Instant>) {
        if !lock(&self.watched).insert(job_id.to_string()) {
            return;
        }
        let inner = self.clone();
        let job_id = job_id.to_string();
        tokio::spawn(async move {
            inner.enforce_time_limit(&job_id, limit, running_since).await;
            lock(&inner.watched).remove(&job_id);
        });
    }

    async fn enforce_time_limit(
        &self,
        job_id: &str,
        limit: Duration,
        mut running_since: Option<Instant>,
    ) {
        loop {
            tokio::time::sleep(self.config.poll_interval).await;
            let info = match self.client.job(job_id).await {
                Ok(Some(info)) => info,
                // Deleted: nothing to enforce.
                Ok(None) => return,
                Err(failure) => {
                    let error = failure.into_error("read the job");
                    tracing::warn!(job.id = %job_id, %error, "ray watchdog could not poll a job");
                    continue;
                }
            };
            match info.status.as_str() {
                "PENDING" => continue,
                "RUNNING" => {}
                _ => return,
            }
            let since = *running_since.get_or_insert_with(Instant::now);
            if since.elapsed() < limit {
                continue;
            }
            let limit_s = limit.as_secs_f64();
            tracing::info!(job.id = %job_id, limit_s, "ray job exceeded its run time");
            self.record_cause(job_id, StopCause::TimedOut(limit));
            if let Err(failure) = self.client.stop(job_id).await {
                let error = failure.into_error("stop the job");
                tracing::warn!(job.id = %job_id, %error, "ray watchdog could not stop a job");
                continue;
            }
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn not_found(job_id: &str) -> ExecError {
    ExecError::NotFound(format!("no ray job {job_id:?}"))
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED" | "STOPPED")
}

/// Replaces the job's secret values (env values, the outputs token) in an error's text.
fn redact(error: ExecError, spec: &JobSpec) -> ExecError {
    let secrets: Vec<&str> = spec
        .env
        .values()
        .map(String::as_str)
        .chain(spec.outputs.iter().map(|outputs| outputs.token.as_str()))
        .filter(|value| value.len() >= 4)
        .collect();
    let clean =
        |text: String| secrets.iter().fold(text, |text, secret| text.replace(secret, "[redacted]"));
    match error {
        ExecError::NotFound(text) => ExecError::NotFound(clean(text)),
        ExecError::InvalidSpec(text) => ExecError::InvalidSpec(clean(text)),
        ExecError::EnvironmentBuild { message, log_tail } => {
            ExecError::EnvironmentBuild { message: clean(message), log_tail: clean(log_tail) }
        }
        ExecError::Unavailable(text) => ExecError::Unavailable(clean(text)),
        ExecError::Internal(text) => ExecError::Internal(clean(text)),
    }
}

impl RayExecutor {
    /// Creates the executor; no request is made until it is used.
    pub fn new(config: RayConfig) -> Result<Self, ExecError> {
        let client = RayClient::new(&config.address, config.request_timeout)?;
        let inner = Inner {
            config,
            client,
            causes: Mutex::new(HashMap::new()),
            watched: Mutex::new(HashSet::new()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    async fn submit_checked(&self, spec: &JobSpec) -> Result<(), ExecError> {
        let client = &self.inner.client;
        match client.job(&spec.job_id).await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(failure) => return Err(failure.into_error("read the job")),
        }
        let working_dir = spec.working_dir.clone();
        let job_id = spec.job_id.clone();
        let package = tokio::task::spawn_blocking(move || {
            let wrapper = mapping::WRAPPER_SOURCE.as_bytes();
            // Ray unpacks a package once per node and runs every job of it in that directory:
            // the job's id makes the package, and so the directory, this job's alone.
            let extra =
                [(mapping::WRAPPER_NAME, wrapper), (mapping::JOB_ID_NAME, job_id.as_bytes())];
            package::build(&working_dir, &extra)
        })
        .await
        .map_err(|error| {
            ExecError::Internal(format!("zipping the working directory: {error}"))
        })??;
        let exists = client
            .package_exists(&package.name)
            .await
            .map_err(|failure| failure.into_error("check the working_dir package"))?;
        if !exists {
            client
                .upload_package(&package.name, package.bytes.clone())
                .await
                .map_err(|failure| failure.into_error("upload the working_dir package"))?;
        }
        let body = mapping::submission(spec, &package.uri());
        let deadline = Instant::now() + self.inner.config.submit_retry_timeout;
        loop {
            match client.submit(&body).await {
                Ok(()) => break,
                Err(failure) if failure.is_duplicate() => break,
                Err(failure) if failure.is_retryable() && Instant::now() < deadline => {
                    tracing::debug!(job.id = %spec.job_id, "ray has no job agent yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(failure) => return Err(failure.into_error("submit the job")),
            }
        }
        tracing::info!(job.id = %spec.job_id, package = %package.name, "ray job submitted");
        if let Some(limit) = spec.limits.max_runtime {
            self.inner.watch(&spec.job_id, limit, None);
        }
        Ok(())
    }
}

#[async_trait]
impl JobExecutor for RayExecutor {
    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Ray
    }

    async fn prepare(
        &self,
        env: &EnvironmentSpec,
        build_log: &Path,
    ) -> Result<PreparedEnv, ExecError> {
        validate_id("environment digest", &env.digest)?;
        validate_requirements(&env.requirements)?;
        let mut notes = vec![format!(
            "environment {}: ray installs {} requirement(s) on the cluster when each job starts",
            env.digest,
            env.requirements.len()
        )];
        if let Some(python) = &env.python {
            notes.push(format!(
                "note: jobs run with the cluster's python; the requested python {python} applies \
                 only through a container image"
            ));
        }
        if let Some(parent) = build_log.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|error| ExecError::io("creating the build log directory", error))?;
        }
        let mut log = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(build_log)
            .await
            .map_err(|error| ExecError::io("opening the build log", error))?;
        log.write_all((notes.join("\n") + "\n").as_bytes())
            .await
            .map_err(|error| ExecError::io("writing the build log", error))?;
        // tokio writes files in the background: flush so readers see the lines now.
        log.flush().await.map_err(|error| ExecError::io("writing the build log", error))?;
        Ok(PreparedEnv { python: "python".into(), reused: true })
    }

    async fn submit(&self, spec: &JobSpec) -> Result<(), ExecError> {
        spec.validate()?;
        self.submit_checked(spec).await.map_err(|error| redact(error, spec))
    }

    async fn status(&self, job_id: &str) -> Result<JobState, ExecError> {
        let info = self.inner.job(job_id).await?;
        let state = mapping::job_state(&info, self.inner.cause(job_id).as_ref());
        // A running job with a limit and no watchdog was submitted before a restart: watch it,
        // counting from Ray's start time.
        if state == JobState::Running
            && let Some(limit) = mapping::max_runtime(&info)
        {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
            let ran =
                Duration::from_millis(now_ms.saturating_sub(info.start_time.unwrap_or(now_ms)));
            let since = Instant::now().checked_sub(ran).unwrap_or_else(Instant::now);
            self.inner.watch(job_id, limit, Some(since));
        }
        Ok(state)
    }

    async fn logs(&self, job_id: &str, offset: u64) -> Result<LogChunk, ExecError> {
        let info = self.inner.job(job_id).await?;
        let terminal = is_terminal(&info.status);
        let text = self
            .inner
            .client
            .logs(job_id)
            .await
            .map_err(|failure| failure.into_error("read the job's logs"))?;
        let all = text.into_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
        let mut end = all.len();
        if !terminal {
            // Ray decodes the log as text: stop at the last complete line so a character cut in
            // half now is not returned twice, differently, later.
            end = all[start..]
                .iter()
                .rposition(|byte| *byte == b'\n')
                .map_or(start, |at| start + at + 1);
        }
        let bytes = all[start..end].to_vec();
        let next_offset = offset.max(start as u64) + bytes.len() as u64;
        Ok(LogChunk { bytes, next_offset, complete: terminal && end == all.len() })
    }

    async fn stop(&self, job_id: &str, reason: &str) -> Result<(), ExecError> {
        let info = self.inner.job(job_id).await?;
        if is_terminal(&info.status) {
            return Ok(());
        }
        tracing::info!(job.id = %job_id, %reason, "stopping ray job");
        self.inner.record_cause(job_id, StopCause::Requested(reason.to_string()));
        self.inner
            .client
            .stop(job_id)
            .await
            .map_err(|failure| failure.into_error("stop the job"))?;
        let deadline = Instant::now() + self.inner.config.stop_timeout;
        let poll = self.inner.config.poll_interval.min(Duration::from_millis(250));
        while Instant::now() < deadline {
            if is_terminal(&self.inner.job(job_id).await?.status) {
                return Ok(());
            }
            tokio::time::sleep(poll).await;
        }
        Err(ExecError::Internal(format!("ray job {job_id:?} did not stop in time")))
    }

    async fn cleanup(&self, job_id: &str) -> Result<(), ExecError> {
        let info = match self.inner.job(job_id).await {
            Ok(info) => info,
            Err(ExecError::NotFound(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        if !is_terminal(&info.status) {
            self.stop(job_id, "cleaned up").await?;
        }
        match self.inner.client.delete(job_id).await {
            Ok(()) => {}
            Err(failure) => match failure.into_error("delete the job") {
                ExecError::NotFound(_) => {}
                error => return Err(error),
            },
        }
        lock(&self.inner.causes).remove(job_id);
        Ok(())
    }

    async fn ready(&self) -> Result<(), ExecError> {
        match self.inner.client.version().await {
            Ok(_) => Ok(()),
            Err(failure) => match failure.into_error("answer /api/version") {
                ExecError::Unavailable(text) | ExecError::Internal(text) => {
                    Err(ExecError::Unavailable(text))
                }
                other => Err(ExecError::Unavailable(other.to_string())),
            },
        }
    }
}
