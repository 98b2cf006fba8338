//! The job executor abstraction the service layer drives, as `Arc<dyn JobExecutor>`.

use std::path::Path;

use async_trait::async_trait;

use crate::{EnvironmentSpec, ExecError, ExecutorKind, JobSpec, JobState, LogChunk, PreparedEnv};

/// Runs jobs somewhere: [`LocalExecutor`](crate::LocalExecutor) on this machine,
/// [`RayExecutor`](crate::RayExecutor) on a Ray cluster. Every method is keyed on Cairn's job
/// id and safe to retry.
#[async_trait]
pub trait JobExecutor: Send + Sync {
    /// Returns which executor this is.
    fn kind(&self) -> ExecutorKind;

    /// Makes sure the environment exists (locally: builds a venv once per digest and caches it;
    /// on Ray: nothing, the cluster installs requirements per job). Progress lines are appended
    /// to `build_log` so users can follow a long build.
    async fn prepare(
        &self,
        env: &EnvironmentSpec,
        build_log: &Path,
    ) -> Result<PreparedEnv, ExecError>;

    /// Starts the job; idempotent on `spec.job_id` (submitting an existing id again is `Ok`).
    async fn submit(&self, spec: &JobSpec) -> Result<(), ExecError>;

    /// Returns the job's state.
    async fn status(&self, job_id: &str) -> Result<JobState, ExecError>;

    /// Returns log bytes from `offset` (stdout and stderr interleaved as written) and the next
    /// offset; works while the job runs and after it ended, until `cleanup`.
    async fn logs(&self, job_id: &str, offset: u64) -> Result<LogChunk, ExecError>;

    /// Stops the job (SIGTERM to its processes, SIGKILL after a grace period); its state becomes
    /// `Stopped` with `reason`. Idempotent; stopping a finished job is `Ok`.
    async fn stop(&self, job_id: &str, reason: &str) -> Result<(), ExecError>;

    /// Forgets the job: its logs and whatever the executor made for it (stopping it first if it
    /// still runs). `Ok` for an unknown job.
    async fn cleanup(&self, job_id: &str) -> Result<(), ExecError>;

    /// Checks cheaply that the executor can take jobs.
    async fn ready(&self) -> Result<(), ExecError>;
}
