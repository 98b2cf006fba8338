//! Jobs: submission (the job and its MLflow run recorded together), reads, logs, cancel and
//! reproduce. The dispatcher that starts and watches them is in `dispatch.rs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{
    EnvironmentRevision, ExecutorKind, HardwareTier, Job, JobState, JobTemplate, RevisionState,
    Snapshot,
};
use cairn_domain::entities::Tag;
use cairn_domain::identity::{Access, Project};
use cairn_domain::ids::ExperimentId;
use cairn_exec::JobExecutor;
use cairn_store::{NewJob, NewRun, Store};

use super::files::FilesService;
use super::secrets::SecretService;
use crate::{ArtifactService, Authorizer, ServiceError, ServiceResult};

/// The experiment a job's run goes to when the template names none.
pub const DEFAULT_JOB_EXPERIMENT: &str = "jobs";
/// The most jobs listed per page.
pub const MAX_JOBS_PAGE: i64 = 500;
/// The most log bytes returned per request.
pub const MAX_LOG_CHUNK: u64 = 1024 * 1024;

/// How jobs run on this server.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// The executor of tiers that name none.
    pub default_executor: ExecutorKind,
    /// Where snapshots are materialised and build logs kept.
    pub work_dir: PathBuf,
    /// How often the dispatcher looks for work and polls running jobs.
    pub tick: Duration,
    /// The URL jobs reach this server at; absent: the address `serve` listens on.
    pub public_url: Option<String>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            default_executor: ExecutorKind::Local,
            work_dir: std::env::temp_dir().join("cairn-jobs"),
            tick: Duration::from_millis(500),
            public_url: None,
        }
    }
}

/// A job's log bytes from an offset.
#[derive(Debug, Clone)]
pub struct JobLog {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Where the next read starts.
    pub next_offset: u64,
    /// Whether the job has ended and everything was returned.
    pub complete: bool,
    /// The job's state when the bytes were read.
    pub state: JobState,
}

/// A dataset version a job used.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DatasetUse {
    /// The dataset.
    pub name: String,
    /// The version.
    pub version: i64,
    /// Its manifest digest.
    pub digest: String,
}

/// Where a run came from.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RunLineage {
    /// The run.
    pub run_id: String,
    /// The job that produced it (command, snapshot, environment revision, tier, executor).
    pub job: Job,
    /// The dataset versions it read.
    pub datasets: Vec<DatasetUse>,
    /// Runs that reproduce it.
    pub reproductions: Vec<String>,
}

/// What a template resolves to at submission.
pub(crate) struct Resolved {
    pub project: Project,
    pub revision: EnvironmentRevision,
    pub tier: HardwareTier,
    pub executor: ExecutorKind,
    pub snapshot: Snapshot,
    pub experiment_id: ExperimentId,
    /// The dataset versions, with their datasets' ids.
    pub datasets: Vec<(i64, cairn_domain::datasets::DatasetVersion)>,
}

/// Submits, reads, cancels and reproduces jobs; owns the executors.
#[derive(Clone)]
pub struct JobService {
    pub(crate) store: Store,
    pub(crate) artifacts: ArtifactService,
    pub(crate) files: FilesService,
    pub(crate) secrets: SecretService,
    pub(crate) authz: Authorizer,
    pub(crate) executors: HashMap<ExecutorKind, Arc<dyn JobExecutor>>,
    pub(crate) config: JobsConfig,
    pub(crate) replica: Arc<str>,
    pub(crate) public_url: Arc<OnceLock<String>>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

impl JobService {
    /// Builds the service over its executors.
    pub fn new(
        store: Store,
        artifacts: ArtifactService,
        files: FilesService,
        secrets: SecretService,
        executors: HashMap<ExecutorKind, Arc<dyn JobExecutor>>,
        config: JobsConfig,
    ) -> Self {
        let public_url = Arc::new(OnceLock::new());
        if let Some(url) = &config.public_url {
            let _ = public_url.set(url.trim_end_matches('/').to_string());
        }
        Self {
            authz: Authorizer::new(store.clone()),
            store,
            artifacts,
            files,
            secrets,
            executors,
            config,
            replica: Arc::from(format!("replica-{}", uuid::Uuid::new_v4().simple())),
            public_url,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Sets the URL jobs reach this server at, unless configured (the first call wins).
    pub fn set_public_url(&self, url: &str) {
        let _ = self.public_url.set(url.trim_end_matches('/').to_string());
    }

    /// The URL the server is reached at (configured, or the listening address), once known.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.get().map(String::as_str)
    }

    /// The executors configured, for readiness.
    pub fn executor_kinds(&self) -> Vec<ExecutorKind> {
        let mut kinds: Vec<ExecutorKind> = self.executors.keys().copied().collect();
        kinds.sort_by_key(|kind| kind.as_str());
        kinds
    }

    /// Checks that every configured executor answers.
    pub async fn readiness(&self) -> ServiceResult<()> {
        for (kind, executor) in &self.executors {
            executor.ready().await.map_err(|error| ServiceError {
                kind: cairn_domain::ErrorKind::Unavailable,
                message: format!("the {} executor is not ready: {error}", kind.as_str()),
            })?;
        }
        Ok(())
    }

    /// The environment revision (pinned, else the newest approved; it must be approved), the
    /// active tier and the executor it runs on: what jobs and workspaces both check before
    /// anything starts.
    pub(crate) async fn runnable(
        &self,
        environment: &str,
        revision: Option<i64>,
        tier: &str,
    ) -> ServiceResult<(EnvironmentRevision, HardwareTier, ExecutorKind)> {
        let revision = self.store.environment_revision(environment, revision).await?;
        if revision.state != RevisionState::Approved {
            return Err(ServiceError::precondition(format!(
                "revision {} of environment '{environment}' is {}: only approved revisions run",
                revision.revision,
                revision.state.as_str()
            )));
        }
        let tier = self.store.get_tier(tier).await?;
        if !tier.active {
            return Err(ServiceError::precondition(format!(
                "hardware tier '{}' is retired: choose another",
                tier.name
            )));
        }
        let executor = tier.spec.executor.unwrap_or(self.config.default_executor);
        Ok((revision, tier, executor))
    }

    /// Resolves what a template names, as of now: the environment revision (pinned, else the
    /// newest approved; it must be approved), the active tier and its executor, the snapshot
    /// (given, else the newest) and the experiment (created when missing).
    pub(crate) async fn resolve(
        &self,
        context: &RequestContext,
        project: Project,
        template: &JobTemplate,
    ) -> ServiceResult<Resolved> {
        template.validate()?;
        let (revision, tier, executor) = self
            .runnable(&template.environment, template.environment_revision, &template.tier)
            .await?;
        self.executor(executor).map_err(|_| {
            ServiceError::precondition(format!(
                "tier '{}' runs on the {} executor, which this server is not configured with",
                tier.name,
                executor.as_str()
            ))
        })?;
        let snapshot = self.store.find_snapshot(project.id, template.snapshot.as_deref()).await?;
        let mut datasets = Vec::with_capacity(template.datasets.len());
        for raw in &template.datasets {
            let wanted = cairn_domain::datasets::DatasetRef::parse(raw)?;
            let id = self.store.live_dataset_id(project.id, &wanted.name).await?;
            let version =
                self.store.dataset_version(project.id, &wanted.name, wanted.version).await?;
            if datasets.iter().any(|(other, _)| *other == id) {
                return Err(ServiceError::invalid(format!(
                    "dataset '{}' is named twice",
                    wanted.name
                )));
            }
            datasets.push((id, version));
        }
        let experiment_name = template.experiment.as_deref().unwrap_or(DEFAULT_JOB_EXPERIMENT);
        let experiment_id =
            match self.store.get_experiment_by_name(project.id, experiment_name).await {
                Ok(experiment) => experiment.experiment_id,
                Err(error) if error.kind() == cairn_domain::ErrorKind::NotFound => {
                    match self
                        .store
                        .create_experiment(context, project.id, experiment_name, None, &[])
                        .await
                    {
                        Ok(id) => id,
                        // Another submission created it first.
                        Err(error) if error.kind() == cairn_domain::ErrorKind::AlreadyExists => {
                            self.store
                                .get_experiment_by_name(project.id, experiment_name)
                                .await?
                                .experiment_id
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Err(error) => return Err(error.into()),
            };
        Ok(Resolved { project, revision, tier, executor, snapshot, experiment_id, datasets })
    }

    /// The job record for a resolved template, with its run's lineage tags.
    pub(crate) fn new_job<'a>(
        resolved: &'a Resolved,
        template: &'a JobTemplate,
        user_id: Option<i64>,
        username: &'a str,
        schedule: Option<(i64, i64)>,
        reproduced_from: Option<&'a str>,
    ) -> NewJob<'a> {
        let mut tags = vec![
            Tag { key: "mlflow.user".into(), value: username.to_string() },
            Tag { key: "mlflow.source.type".into(), value: "JOB".into() },
            Tag { key: "mlflow.source.name".into(), value: template.command.join(" ") },
            Tag { key: "cairn.snapshot".into(), value: resolved.snapshot.digest.clone() },
            Tag {
                key: "cairn.environment".into(),
                value: format!("{}@{}", resolved.revision.environment, resolved.revision.revision),
            },
            Tag { key: "cairn.environment.digest".into(), value: resolved.revision.digest.clone() },
            Tag { key: "cairn.tier".into(), value: resolved.tier.name.clone() },
            Tag { key: "cairn.executor".into(), value: resolved.executor.as_str().into() },
        ];
        if let Some(run_id) = reproduced_from {
            tags.push(Tag { key: "cairn.reproduces".into(), value: run_id.to_string() });
        }
        if !resolved.datasets.is_empty() {
            let used: Vec<String> = resolved
                .datasets
                .iter()
                .map(|(_, version)| format!("{}@{}", version.dataset, version.version))
                .collect();
            tags.push(Tag { key: "cairn.datasets".into(), value: used.join(",") });
        }
        NewJob {
            project_id: resolved.project.id,
            template,
            snapshot: &resolved.snapshot.digest,
            environment: &resolved.revision.environment,
            environment_revision: resolved.revision.revision,
            tier: &resolved.tier.name,
            executor: resolved.executor,
            gpus: i64::from(resolved.tier.spec.gpus),
            user_id,
            username,
            run: NewRun {
                experiment_id: resolved.experiment_id,
                user_id: username.to_string(),
                run_name: template.run_name.clone(),
                start_time: None,
                tags,
            },
            schedule,
            reproduced_from,
            datasets: resolved
                .datasets
                .iter()
                .map(|(id, version)| (*id, version.version))
                .collect(),
        }
    }

    /// Records the dataset versions a job uses as MLflow dataset inputs of its run (source type
    /// `cairn`, source the version's URI), so MLflow clients and Cairn's lineage both see them.
    pub(crate) async fn link_dataset_inputs(
        &self,
        context: &RequestContext,
        run_id: &str,
        project: &str,
        datasets: &[(i64, cairn_domain::datasets::DatasetVersion)],
    ) -> ServiceResult<()> {
        if datasets.is_empty() {
            return Ok(());
        }
        let inputs: Vec<cairn_domain::entities::DatasetInput> = datasets
            .iter()
            .map(|(_, version)| {
                let rows: u64 = version.tables.iter().filter_map(|table| table.rows).sum();
                cairn_domain::entities::DatasetInput {
                    tags: vec![Tag { key: "mlflow.data.context".into(), value: "training".into() }],
                    dataset: cairn_domain::entities::Dataset {
                        name: version.dataset.clone(),
                        digest: version.digest[..32].to_string(),
                        source_type: "cairn".into(),
                        source: serde_json::json!({"uri": version.source_uri(project)}).to_string(),
                        schema: None,
                        profile: Some(serde_json::json!({"version": version.version, "files": version.file_count, "rows": rows}).to_string()),
                    },
                }
            })
            .collect();
        Ok(self.store.log_inputs(context, run_id, &inputs, &[]).await?)
    }

    /// Where a run came from: the job that produced it, the snapshot, environment revision,
    /// tier and dataset versions it ran on, and the run it reproduces.
    pub async fn lineage(
        &self,
        context: &RequestContext,
        project: &str,
        run_id: &str,
    ) -> ServiceResult<RunLineage> {
        let scope = self.store.get_project(project).await?;
        self.authz.require(context, scope.id, Access::Read).await?;
        let job = self
            .store
            .job_for_run(run_id)
            .await?
            .filter(|job| job.project == scope.name)
            .ok_or_else(|| {
                ServiceError::not_found(format!(
                    "run {run_id} was not produced by a job of project '{project}'"
                ))
            })?;
        let datasets = self
            .store
            .job_dataset_versions(job.id)
            .await?
            .into_iter()
            .map(|(name, version, digest)| DatasetUse { name, version, digest })
            .collect();
        let reproductions = self.store.reproductions_of(run_id).await?;
        Ok(RunLineage { run_id: run_id.to_string(), job, datasets, reproductions })
    }

    /// Submits a job in `project`.
    pub async fn submit(
        &self,
        context: &RequestContext,
        project: &str,
        template: &JobTemplate,
    ) -> ServiceResult<Job> {
        self.submit_inner(context, project, template, None).await
    }

    async fn submit_inner(
        &self,
        context: &RequestContext,
        project: &str,
        template: &JobTemplate,
        reproduced_from: Option<&str>,
    ) -> ServiceResult<Job> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Write).await?;
        let resolved = self.resolve(context, project, template).await?;
        let user_id = context.principal.as_ref().map(|principal| principal.user_id);
        let new_job =
            Self::new_job(&resolved, template, user_id, &context.actor, None, reproduced_from);
        let job = self.store.submit_job(context, &new_job).await?;
        self.link_dataset_inputs(context, &job.run_id, &resolved.project.name, &resolved.datasets)
            .await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Re-runs the job that produced `run_id` on the same snapshot, environment revision and
    /// tier; the new run is tagged `cairn.reproduces`.
    pub async fn reproduce(
        &self,
        context: &RequestContext,
        project: &str,
        run_id: &str,
    ) -> ServiceResult<Job> {
        let scope = self.store.get_project(project).await?;
        self.authz.require(context, scope.id, Access::Write).await?;
        let original = self.store.job_for_run(run_id).await?.filter(|job| job.project == scope.name).ok_or_else(|| {
            ServiceError::precondition(format!(
                "run {run_id} was not produced by a Cairn job of project '{project}', so there is nothing to re-run"
            ))
        })?;
        let mut template = original.template.clone();
        template.snapshot = Some(original.snapshot.clone());
        template.environment = original.environment.clone();
        template.environment_revision = Some(original.environment_revision);
        template.tier = original.tier.clone();
        template.run_name = None;
        template.datasets = self
            .store
            .job_dataset_versions(original.id)
            .await?
            .into_iter()
            .map(|(name, version, _)| format!("{name}@{version}"))
            .collect();
        self.submit_inner(context, &original.project, &template, Some(run_id)).await
    }

    /// Requires `access` to `project`, then finds the job there (another project's job is
    /// reported missing).
    async fn project_job(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
        access: Access,
    ) -> ServiceResult<Job> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, access).await?;
        match self.store.job_project(id).await? {
            Some(project_id) if project_id == project.id => Ok(self.store.get_job(id).await?),
            _ => Err(ServiceError::not_found(format!("no job {id} in project '{}'", project.name))),
        }
    }

    /// One job.
    pub async fn get(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
    ) -> ServiceResult<Job> {
        self.project_job(context, project, id, Access::Read).await
    }

    /// A project's jobs, newest first.
    pub async fn list(
        &self,
        context: &RequestContext,
        project: &str,
        state: Option<JobState>,
        before: Option<i64>,
        limit: i64,
    ) -> ServiceResult<Vec<Job>> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        Ok(self
            .store
            .list_jobs(Some(project.id), state, None, before, limit.clamp(1, MAX_JOBS_PAGE))
            .await?)
    }

    /// Asks a job to stop.
    pub async fn cancel(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
    ) -> ServiceResult<Job> {
        self.project_job(context, project, id, Access::Write).await?;
        let job = self.store.request_job_cancel(context, id).await?;
        self.wake.notify_one();
        Ok(job)
    }

    /// Log bytes from `offset`: live from the executor while the job runs, from the saved log
    /// once it ended.
    pub async fn logs(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
        offset: u64,
    ) -> ServiceResult<JobLog> {
        let job = self.project_job(context, project, id, Access::Read).await?;
        let empty =
            |state| JobLog { bytes: Vec::new(), next_offset: offset, complete: false, state };
        if job.state.is_terminal() {
            return self.saved_log(&job, offset).await;
        }
        if job.state == JobState::Queued {
            return Ok(empty(job.state));
        }
        let executor = self.executor(job.executor)?;
        match executor.logs(&exec_id(&job), offset).await {
            Ok(chunk) => {
                let mut bytes = chunk.bytes;
                let mut next = chunk.next_offset;
                if bytes.len() as u64 > MAX_LOG_CHUNK {
                    bytes.truncate(MAX_LOG_CHUNK as usize);
                    next = offset + MAX_LOG_CHUNK;
                }
                Ok(JobLog { bytes, next_offset: next, complete: false, state: job.state })
            }
            // Not started yet, or finished and saved in between: the saved log answers.
            Err(cairn_exec::ExecError::NotFound(_)) => {
                let job = self.store.get_job(id).await?;
                if job.state.is_terminal() {
                    return self.saved_log(&job, offset).await;
                }
                Ok(empty(job.state))
            }
            Err(error) => Err(exec_error(error)),
        }
    }

    /// A finished job's saved log from `offset` (`complete` at its end).
    async fn saved_log(&self, job: &Job, offset: u64) -> ServiceResult<JobLog> {
        let Some(path) = self.store.job_log_path(job.id).await? else {
            return Ok(JobLog {
                bytes: Vec::new(),
                next_offset: offset,
                complete: true,
                state: job.state,
            });
        };
        let bytes = self.artifacts.read_range_internal(&path, offset, MAX_LOG_CHUNK).await?;
        let next_offset = offset + bytes.len() as u64;
        let complete = (bytes.len() as u64) < MAX_LOG_CHUNK;
        Ok(JobLog { bytes, next_offset, complete, state: job.state })
    }

    pub(crate) fn executor(&self, kind: ExecutorKind) -> ServiceResult<Arc<dyn JobExecutor>> {
        self.executors.get(&kind).cloned().ok_or_else(|| {
            ServiceError::precondition(format!(
                "this server has no {} executor configured",
                kind.as_str()
            ))
        })
    }
}

/// The executor-side id of a job: its id and the start of its run's random id, so jobs of
/// different Cairn sites (or test databases) sharing one machine or Ray cluster never collide
/// in process groups, cgroups or Ray submission ids.
pub(crate) fn exec_id(job: &cairn_domain::compute::Job) -> String {
    let run = job.run_id.get(..12).unwrap_or(&job.run_id);
    format!("cairn-job-{}-{run}", job.id)
}

/// Maps an executor failure onto a service error.
pub(crate) fn exec_error(error: cairn_exec::ExecError) -> ServiceError {
    ServiceError { kind: error.kind(), message: error.to_string() }
}
