//! The dispatcher every replica runs: it claims queued jobs that fit their quotas (one replica
//! at a time), starts them (project files, environment, token, secrets, executor), polls the jobs
//! it owns, stops cancelled ones, saves logs and records how each ended. Jobs whose owner died
//! (lease expired) are taken over. Schedules fire from the same loop (`schedules.rs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{ExecutorKind, Job, JobState};
use cairn_domain::time::now_millis;
use cairn_exec::{EnvironmentSpec, JobSpec, Limits, OutputsUpload};
use cairn_store::JobOutcome;

use super::jobs::{JobService, exec_id};
use crate::{ServiceError, ServiceResult};

/// How long a replica's claim on a job lasts without renewal.
const LEASE_MS: i64 = 60_000;
/// How long past a job's maximum run time its token stays valid (outputs upload, final logging).
const TOKEN_GRACE_MS: i64 = 15 * 60 * 1000;
/// How long the dispatcher waits for a remote executor (the Ray head) to say it is ready.
const READY_PROBE: Duration = Duration::from_secs(2);

/// Makes a dataset's files read-only for the job (files 0444, directories 0555).
pub(crate) async fn make_read_only(root: std::path::PathBuf) -> ServiceResult<()> {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::PermissionsExt;
        fn walk(dir: &std::path::Path) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    walk(&entry.path())?;
                } else {
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o444))?;
                }
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
        }
        walk(&root)
    })
    .await
    .map_err(|error| ServiceError::internal(format!("making datasets read-only failed: {error}")))?
    .map_err(|error| ServiceError::internal(format!("making datasets read-only failed: {error}")))
}

fn system_context() -> RequestContext {
    RequestContext::system()
}

impl JobService {
    /// Starts the dispatcher (and the schedule firing) in the background.
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move { service.run_dispatcher().await })
    }

    async fn run_dispatcher(self) {
        let starting: Arc<Mutex<HashSet<i64>>> = Arc::default();
        loop {
            if let Err(error) = self.dispatch_once(&starting).await {
                tracing::warn!(error = %error.message, "job dispatcher pass failed; retrying");
            }
            if let Err(error) = self.fire_due_schedules().await {
                tracing::warn!(error = %error.message, "schedule pass failed; retrying");
            }
            let _ = tokio::time::timeout(self.config.tick, self.wake.notified()).await;
        }
    }

    /// Runs one dispatcher pass and one schedule pass now (what the background loop does each
    /// tick), for benchmarks and tools. Jobs it starts are started in the background.
    pub async fn run_once(&self) -> ServiceResult<()> {
        self.dispatch_once(&Arc::default()).await?;
        self.fire_due_schedules().await
    }

    /// One pass: renew leases, adopt orphans, start what fits, poll what runs.
    pub(crate) async fn dispatch_once(
        &self,
        starting: &Arc<Mutex<HashSet<i64>>>,
    ) -> ServiceResult<()> {
        let now = now_millis();
        self.store.renew_job_leases(&self.replica, now + LEASE_MS).await?;
        for job in self.store.claim_orphaned_jobs(&self.replica, now, now + LEASE_MS).await? {
            tracing::info!(
                job.id = job.id,
                "adopted a job whose replica stopped renewing its lease"
            );
        }
        let unavailable = self.unavailable_executors().await;
        while let Some(job) = self
            .store
            .claim_next_job_except(
                &self.replica,
                now_millis(),
                now_millis() + LEASE_MS,
                &unavailable,
            )
            .await?
        {
            starting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(job.id);
            let service = self.clone();
            let starting = starting.clone();
            tokio::spawn(async move {
                let id = job.id;
                if let Err(error) = service.start_job(&job).await {
                    service.fail(id, format!("could not start: {}", error.message), None).await;
                }
                starting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
                service.wake.notify_one();
            });
        }
        let in_start: HashSet<i64> =
            starting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        for job in self.store.owned_jobs(&self.replica).await? {
            if in_start.contains(&job.id) {
                continue;
            }
            if let Err(error) = self.poll(&job).await {
                tracing::warn!(job.id = job.id, error = %error.message, "polling a job failed");
            }
        }
        Ok(())
    }

    /// The remote executors (Ray) that do not answer now, with why: their queued jobs stay
    /// queued, saying they wait for it, instead of failing to start. (A local executor is this
    /// process.) A head lost between this probe and a submission fails that job's start.
    async fn unavailable_executors(&self) -> Vec<(String, String)> {
        let mut unavailable = Vec::new();
        for (kind, executor) in &self.executors {
            if *kind == ExecutorKind::Local {
                continue;
            }
            let why = match tokio::time::timeout(READY_PROBE, executor.ready()).await {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {} s", READY_PROBE.as_secs()),
            };
            tracing::debug!(executor = kind.as_str(), %why, "executor unavailable; its jobs wait");
            unavailable.push((kind.as_str().to_string(), why));
        }
        unavailable
    }

    /// Prepares and submits a claimed job.
    async fn start_job(&self, job: &Job) -> ServiceResult<()> {
        let executor = self.executor(job.executor)?;
        let tier = self.store.get_tier(&job.tier).await?;
        let revision = self
            .store
            .environment_revision(&job.environment, Some(job.environment_revision))
            .await?;
        let project = self.store.get_project(&job.project).await?;
        let job_dir = self.config.work_dir.join(exec_id(job));
        let files_dir = job_dir.join("files");
        if tokio::fs::try_exists(&files_dir).await.unwrap_or(false) {
            let _ = tokio::fs::remove_dir_all(&files_dir).await;
        }
        self.files.materialize(project.id, &job.snapshot, &files_dir).await?;
        for (name, _, digest) in self.store.job_dataset_versions(job.id).await? {
            let target = files_dir.join("datasets").join(&name);
            if tokio::fs::try_exists(&target).await.unwrap_or(false) {
                let _ = tokio::fs::remove_dir_all(&target).await;
            }
            self.files.materialize(project.id, &digest, &target).await?;
            make_read_only(target).await?;
        }
        let environment = EnvironmentSpec {
            digest: revision.digest.clone(),
            python: revision.definition.python.clone(),
            requirements: revision.definition.requirements.clone(),
            image: revision.definition.image.clone(),
        };
        let build_log = job_dir.join("environment.log");
        if let Err(error) = executor.prepare(&environment, &build_log).await {
            let reason = match &error {
                cairn_exec::ExecError::EnvironmentBuild { message, log_tail } => {
                    format!(
                        "environment '{}@{}' failed to build: {message}\n{log_tail}",
                        job.environment, job.environment_revision
                    )
                }
                other => format!(
                    "environment '{}@{}' could not be prepared: {other}",
                    job.environment, job.environment_revision
                ),
            };
            let log = tokio::fs::read(&build_log).await.ok();
            self.fail(job.id, reason, log).await;
            return Ok(());
        }
        let max_runtime_ms =
            i64::try_from(tier.spec.max_runtime_s).unwrap_or(i64::MAX / 4).saturating_mul(1000);
        let public_url = self.public_url.get().cloned().ok_or_else(|| {
            ServiceError::precondition("the server's public URL is not known yet")
        })?;
        let user_id = self.store.job_user(job.id).await?;
        let token = match user_id {
            Some(_) => {
                let (secret, digest, hint) = crate::identity::new_token_secret();
                self.store
                    .create_job_token(
                        job.id,
                        &digest,
                        &hint,
                        now_millis() + max_runtime_ms + TOKEN_GRACE_MS,
                    )
                    .await?;
                Some(secret)
            }
            None => None,
        };
        let mut env: BTreeMap<String, String> = self
            .secrets
            .open_for(&system_context(), ("job_id", job.id), project.id, user_id)
            .await?;
        env.extend(job.template.env.clone());
        let tracking_uri = format!("{public_url}/p/{}", project.name);
        env.insert("MLFLOW_TRACKING_URI".into(), tracking_uri);
        env.insert("MLFLOW_RUN_ID".into(), job.run_id.clone());
        env.insert("MLFLOW_EXPERIMENT_ID".into(), job.experiment_id.clone());
        env.insert("CAIRN_URL".into(), public_url.clone());
        env.insert("CAIRN_PROJECT".into(), project.name.clone());
        env.insert("CAIRN_SNAPSHOT".into(), job.snapshot.clone());
        env.insert("PYTHONUNBUFFERED".into(), "1".into());
        if let Some(token) = &token {
            env.insert("MLFLOW_TRACKING_TOKEN".into(), token.clone());
            env.insert("CAIRN_TOKEN".into(), token.clone());
        }
        let run = self.store.get_run_info(&job.run_id).await?;
        let outputs =
            self.artifacts.relative_path(&run.artifact_uri).map(|relative| OutputsUpload {
                url: format!("{public_url}/api/2.0/mlflow-artifacts/artifacts/{relative}/outputs"),
                token: token.clone().unwrap_or_default(),
            });
        let spec = JobSpec {
            job_id: exec_id(job),
            argv: job.template.command.clone(),
            working_dir: files_dir,
            env,
            environment,
            limits: Limits {
                cpu: tier.spec.cpu,
                memory_bytes: Some(tier.spec.memory_mib.saturating_mul(1024 * 1024)),
                gpus: tier.spec.gpus,
                max_runtime: Some(Duration::from_secs(tier.spec.max_runtime_s)),
            },
            outputs,
        };
        executor.submit(&spec).await.map_err(super::jobs::exec_error)?;
        if job.executor == ExecutorKind::Local {
            self.store.set_job_running(job.id, &self.replica).await?;
        }
        tracing::info!(job.id = job.id, executor = job.executor.as_str(), "job started");
        Ok(())
    }

    /// Checks one owned job: stops it when cancelled, records it when it ended.
    async fn poll(&self, job: &Job) -> ServiceResult<()> {
        let executor = self.executor(job.executor)?;
        let id = exec_id(job);
        if let Some(by) = &job.cancel_requested_by {
            executor
                .stop(&id, &format!("cancelled by {by}"))
                .await
                .map_err(super::jobs::exec_error)?;
        }
        let state = match executor.status(&id).await {
            Ok(state) => state,
            Err(cairn_exec::ExecError::NotFound(_)) => {
                let reason = if job.state == JobState::Starting {
                    "the server starting the job stopped before it ran".to_string()
                } else {
                    "the executor no longer knows the job (the server running it restarted)"
                        .to_string()
                };
                self.fail(job.id, reason, None).await;
                return Ok(());
            }
            Err(error) => return Err(super::jobs::exec_error(error)),
        };
        match state {
            cairn_exec::JobState::Pending => Ok(()),
            cairn_exec::JobState::Running => {
                if job.state == JobState::Starting {
                    self.store.set_job_running(job.id, &self.replica).await?;
                }
                Ok(())
            }
            ended => self.record_end(job, &ended).await,
        }
    }

    /// Saves the log, records the outcome, forgets the job on the executor.
    async fn record_end(&self, job: &Job, ended: &cairn_exec::JobState) -> ServiceResult<()> {
        let executor = self.executor(job.executor)?;
        let id = exec_id(job);
        let (state, exit_code) = match ended {
            cairn_exec::JobState::Succeeded => (JobState::Succeeded, Some(0)),
            cairn_exec::JobState::Failed { exit_code, .. } => {
                (JobState::Failed, exit_code.map(i64::from))
            }
            cairn_exec::JobState::Stopped { .. } if job.cancel_requested_by.is_some() => {
                (JobState::Cancelled, None)
            }
            cairn_exec::JobState::Stopped { .. } | cairn_exec::JobState::MemoryExceeded { .. } => {
                (JobState::Failed, None)
            }
            cairn_exec::JobState::TimedOut { .. } => (JobState::TimedOut, None),
            cairn_exec::JobState::Pending | cairn_exec::JobState::Running => return Ok(()),
        };
        let mut log = Vec::new();
        let mut offset = 0;
        loop {
            match executor.logs(&id, offset).await {
                Ok(chunk) => {
                    let done = chunk.bytes.is_empty() || chunk.complete;
                    log.extend_from_slice(&chunk.bytes);
                    offset = chunk.next_offset;
                    if done {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(job.id = job.id, error = %error, "reading a finished job's log failed");
                    break;
                }
            }
        }
        let log_path = self.save_log(job, log).await;
        let outcome = JobOutcome { state, reason: ended.reason(), exit_code, log_path };
        self.store.finish_job(&system_context(), job.id, &outcome).await?;
        tracing::info!(job.id = job.id, state = state.as_str(), reason = %outcome.reason, "job ended");
        if let Err(error) = executor.cleanup(&id).await {
            tracing::warn!(job.id = job.id, error = %error, "cleaning up a finished job failed");
        }
        let _ = tokio::fs::remove_dir_all(self.config.work_dir.join(&id)).await;
        Ok(())
    }

    /// Writes a job's log next to its run's artifacts (`cairn/job.log`); `None` if that failed.
    async fn save_log(&self, job: &Job, log: Vec<u8>) -> Option<String> {
        let run = self.store.get_run_info(&job.run_id).await.ok()?;
        let relative = self.artifacts.relative_path(&run.artifact_uri)?;
        let path = format!("{relative}/cairn/job.log");
        match self.artifacts.write_internal(&path, log).await {
            Ok(()) => Some(path),
            Err(error) => {
                tracing::warn!(job.id = job.id, error = %error.message, "saving a job's log failed");
                None
            }
        }
    }

    /// Ends a job as failed with `reason`, saving `log` (a build log, say) when given.
    pub(crate) async fn fail(&self, job_id: i64, reason: String, log: Option<Vec<u8>>) {
        let job = self.store.get_job(job_id).await.ok();
        let log_path = match (log, &job) {
            (Some(log), Some(job)) => self.save_log(job, log).await,
            _ => None,
        };
        let outcome = JobOutcome { state: JobState::Failed, reason, exit_code: None, log_path };
        if let Err(error) = self.store.finish_job(&system_context(), job_id, &outcome).await {
            tracing::error!(job.id = job_id, error = %error, "recording a job's failure failed");
        }
        if let Some(job) = job {
            if let Ok(executor) = self.executor(job.executor) {
                let _ = executor.cleanup(&exec_id(&job)).await;
            }
            let _ = tokio::fs::remove_dir_all(self.config.work_dir.join(exec_id(&job))).await;
        }
    }

    /// Stops the local jobs this replica runs (the server is shutting down): each is recorded
    /// as failed with that reason and its log saved, so nothing is left running unrecorded.
    pub async fn shutdown(&self) {
        let Ok(jobs) = self.store.owned_jobs(&self.replica).await else { return };
        for job in jobs.into_iter().filter(|job| job.executor == ExecutorKind::Local) {
            let Ok(executor) = self.executor(job.executor) else { continue };
            let reason = "the server running the job shut down";
            match executor.stop(&exec_id(&job), reason).await {
                Ok(()) => {
                    if let Err(error) = self.poll(&job).await {
                        tracing::warn!(job.id = job.id, error = %error.message, "recording a stopped job failed");
                        self.fail(job.id, reason.into(), None).await;
                    }
                }
                Err(_) => self.fail(job.id, reason.into(), None).await,
            }
        }
    }
}
