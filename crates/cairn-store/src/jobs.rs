//! Jobs: submitted with their MLflow run in one transaction, dispatched FIFO within quotas by one
//! replica at a time, then owned (polled, finished) by the replica holding the row's lease.

use std::collections::HashMap;

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{ExecutorKind, Job, JobState, JobTemplate};
use cairn_domain::entities::RunStatus;
use cairn_domain::time::now_millis;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{append, entry};
use crate::compute::unreadable;
use crate::sql::opt_text;
use crate::{Dialect, NewRun, Store, StoreError, StoreResult};

/// The advisory lock that serialises dispatchers on PostgreSQL (SQLite has one writer).
const POSTGRES_DISPATCH_LOCK: i64 = 0x6361_6972_6e6a_6f62;

/// A job about to be submitted.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The project's id.
    pub project_id: i64,
    /// What was asked.
    pub template: &'a JobTemplate,
    /// The snapshot digest it runs on.
    pub snapshot: &'a str,
    /// The environment.
    pub environment: &'a str,
    /// Its revision.
    pub environment_revision: i64,
    /// The tier.
    pub tier: &'a str,
    /// The executor.
    pub executor: ExecutorKind,
    /// GPUs it will hold.
    pub gpus: i64,
    /// The submitting user's id (none when authentication is off).
    pub user_id: Option<i64>,
    /// Their name.
    pub username: &'a str,
    /// The run to create for it (status SCHEDULED).
    pub run: NewRun,
    /// The schedule and the firing time, for scheduled jobs.
    pub schedule: Option<(i64, i64)>,
    /// The run this job reproduces.
    pub reproduced_from: Option<&'a str>,
    /// The dataset versions it uses: (dataset id, version).
    pub datasets: Vec<(i64, i64)>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    /// The terminal state.
    pub state: JobState,
    /// In words.
    pub reason: String,
    /// The exit code, when there was one.
    pub exit_code: Option<i64>,
    /// Where the log was saved in the artifact store.
    pub log_path: Option<String>,
}

const JOB_SELECT: &str = "SELECT j.id, p.name AS project_name, j.state, j.spec, j.snapshot, \
     j.environment, j.environment_revision, j.tier, j.executor, j.gpus, j.submitted_by, \
     j.experiment_id, j.run_id, s.name AS schedule_name, j.scheduled_for, j.reproduced_from, j.queue_reason, \
     j.reason, j.exit_code, j.cancel_requested_by, j.created_at, j.started_at, j.running_at, \
     j.finished_at FROM jobs j JOIN projects p ON p.id = j.project_id \
     LEFT JOIN job_schedules s ON s.id = j.schedule_id";

fn job_from_row(row: &AnyRow) -> StoreResult<Job> {
    let spec: String = row.try_get("spec")?;
    let experiment_id: i64 = row.try_get("experiment_id")?;
    Ok(Job {
        id: row.try_get("id")?,
        project: row.try_get("project_name")?,
        state: JobState::parse(&row.try_get::<String, _>("state")?)?,
        template: serde_json::from_str::<JobTemplate>(&spec)
            .map_err(|error| unreadable("stored job spec is unreadable", error))?,
        snapshot: row.try_get("snapshot")?,
        environment: row.try_get("environment")?,
        environment_revision: row.try_get("environment_revision")?,
        tier: row.try_get("tier")?,
        executor: ExecutorKind::parse(&row.try_get::<String, _>("executor")?)?,
        gpus: row.try_get("gpus")?,
        submitted_by: row.try_get("submitted_by")?,
        experiment_id: experiment_id.to_string(),
        run_id: row.try_get("run_id")?,
        schedule: opt_text(row, "schedule_name")?,
        scheduled_for: row.try_get("scheduled_for")?,
        reproduced_from: opt_text(row, "reproduced_from")?,
        queue_reason: opt_text(row, "queue_reason")?,
        reason: opt_text(row, "reason")?,
        exit_code: row.try_get("exit_code")?,
        cancel_requested_by: opt_text(row, "cancel_requested_by")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        running_at: row.try_get("running_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn job_not_found(id: i64) -> StoreError {
    DomainError::not_found(format!("no job {id}")).into()
}

/// Inserts a job and its run inside a caller's transaction; `None` when the schedule already
/// fired for that time (the unique firing index).
pub(crate) async fn insert_job(
    store: &Store,
    transaction: &mut Transaction<'static, Any>,
    job: &NewJob<'_>,
) -> StoreResult<Option<(i64, String)>> {
    let run = store.insert_run(transaction, &job.run, RunStatus::Scheduled).await?;
    let inserted = sqlx::query_scalar(
        "INSERT INTO jobs (project_id, state, spec, snapshot, environment, environment_revision, tier, \
         executor, gpus, submitted_by, user_id, experiment_id, run_id, schedule_id, scheduled_for, \
         reproduced_from, queue_reason, created_at) \
         VALUES ($1, 'queued', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'waiting for the dispatcher', $16) RETURNING id",
    )
    .bind(job.project_id)
    .bind(serde_json::to_string(job.template).unwrap_or_default())
    .bind(job.snapshot)
    .bind(job.environment)
    .bind(job.environment_revision)
    .bind(job.tier)
    .bind(job.executor.as_str())
    .bind(job.gpus)
    .bind(job.username)
    .bind(job.user_id)
    .bind(job.run.experiment_id.0)
    .bind(&run.info.run_id)
    .bind(job.schedule.map(|(id, _)| id))
    .bind(job.schedule.map(|(_, at)| at))
    .bind(job.reproduced_from)
    .bind(now_millis())
    .fetch_one(&mut **transaction)
    .await
    .map_err(StoreError::from);
    let id: i64 = match inserted {
        Err(error) if error.is_unique_violation() && job.schedule.is_some() => return Ok(None),
        other => other?,
    };
    for (dataset, version) in &job.datasets {
        sqlx::query("INSERT INTO job_datasets (job_id, dataset, version) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(dataset)
            .bind(version)
            .execute(&mut **transaction)
            .await?;
    }
    // The run carries its job's id, so the MLflow client sees where it came from.
    let tag = cairn_domain::entities::Tag { key: "cairn.job".into(), value: id.to_string() };
    crate::runs::upsert_run_tags(store.dialect, transaction, &run.info.run_id, &[tag]).await?;
    Ok(Some((id, run.info.run_id)))
}

impl Store {
    /// Submits a job: its run (SCHEDULED) and the queued job in one transaction.
    pub async fn submit_job(&self, context: &RequestContext, job: &NewJob<'_>) -> StoreResult<Job> {
        let mut transaction = self.begin().await?;
        let (id, run_id) = insert_job(self, &mut transaction, job).await?.ok_or_else(|| {
            StoreError::from(DomainError::already_exists("this firing has a job already"))
        })?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "job.submit",
                format!("job:{id}"),
                serde_json::json!({"project_id": job.project_id, "run_id": run_id, "command": job.template.command,
                    "snapshot": job.snapshot, "environment": job.environment, "environment_revision": job.environment_revision,
                    "tier": job.tier, "executor": job.executor.as_str(), "reproduced_from": job.reproduced_from}),
            ),
        )
        .await?;
        self.get_job(id).await
    }

    /// A job by id.
    pub async fn get_job(&self, id: i64) -> StoreResult<Job> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{JOB_SELECT} WHERE j.id = $1")))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| job_not_found(id))?;
        job_from_row(&row)
    }

    /// The user a job runs as (none when submitted anonymously).
    pub async fn job_user(&self, id: i64) -> StoreResult<Option<i64>> {
        let user: Option<Option<i64>> =
            sqlx::query_scalar("SELECT user_id FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
        user.ok_or_else(|| job_not_found(id))
    }

    /// The runs of jobs that reproduce `run_id`, oldest first.
    pub async fn reproductions_of(&self, run_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT run_id FROM jobs WHERE reproduced_from = $1 ORDER BY id")
            .bind(run_id)
            .fetch_all(self.reader())
            .await?)
    }

    /// Where a finished job's log was saved, if it was.
    pub async fn job_log_path(&self, id: i64) -> StoreResult<Option<String>> {
        let path: Option<Option<String>> =
            sqlx::query_scalar("SELECT log_path FROM jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
        Ok(path.flatten())
    }

    /// The project of a job, if it exists.
    pub async fn job_project(&self, id: i64) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT project_id FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?)
    }

    /// The job that produced a run, if one did.
    pub async fn job_for_run(&self, run_id: &str) -> StoreResult<Option<Job>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{JOB_SELECT} WHERE j.run_id = $1")))
            .bind(run_id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Jobs, newest first: of one project or all, optionally of one state or schedule, with
    /// ids below `before`.
    pub async fn list_jobs(
        &self,
        project_id: Option<i64>,
        state: Option<JobState>,
        schedule_id: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Job>> {
        let mut sql = crate::sql::Sql::new(JOB_SELECT);
        sql.push(" WHERE 1 = 1");
        if let Some(project_id) = project_id {
            sql.push(" AND j.project_id = ").bind(project_id);
        }
        if let Some(state) = state {
            sql.push(" AND j.state = ").bind(state.as_str());
        }
        if let Some(schedule_id) = schedule_id {
            sql.push(" AND j.schedule_id = ").bind(schedule_id);
        }
        if let Some(before) = before {
            sql.push(" AND j.id < ").bind(before);
        }
        sql.push(" ORDER BY j.id DESC LIMIT ").bind(limit);
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Claims the oldest queued job that fits every quota (user, each of the user's teams,
    /// project: concurrent jobs and GPUs), marking it `starting` under `replica`'s lease. Jobs
    /// that do not fit get their reason recorded and stay queued.
    pub async fn claim_next_job(
        &self,
        replica: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<Job>> {
        self.claim_next_job_except(replica, now, lease_until, &[]).await
    }

    /// [`Store::claim_next_job`], leaving queued the jobs of the executors in `unavailable`
    /// (executor name, why): their queue reason says they wait for it.
    pub async fn claim_next_job_except(
        &self,
        replica: &str,
        now: i64,
        lease_until: i64,
        unavailable: &[(String, String)],
    ) -> StoreResult<Option<Job>> {
        let mut transaction = self.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(POSTGRES_DISPATCH_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        let queued: Vec<QueuedRow> = sqlx::query_as(
            "SELECT id, user_id, project_id, gpus, queue_reason, executor FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 200",
        )
        .fetch_all(&mut *transaction)
        .await?;
        if queued.is_empty() {
            transaction.commit().await?;
            return Ok(None);
        }
        let active: Vec<(Option<i64>, i64, i64)> = sqlx::query_as(
            "SELECT user_id, project_id, gpus FROM jobs WHERE state IN ('starting', 'running')",
        )
        .fetch_all(&mut *transaction)
        .await?;
        let quotas: Vec<QuotaRow> = sqlx::query_as(
            "SELECT q.scope_kind, q.scope_id, q.max_jobs, q.max_gpus, \
             COALESCE(u.username, t.name, p.name) FROM compute_quotas q \
             LEFT JOIN users u ON q.scope_kind = 'user' AND u.id = q.scope_id \
             LEFT JOIN teams t ON q.scope_kind = 'team' AND t.id = q.scope_id \
             LEFT JOIN projects p ON q.scope_kind = 'project' AND p.id = q.scope_id",
        )
        .fetch_all(&mut *transaction)
        .await?;
        let team_rows: Vec<(i64, i64)> = if quotas.iter().any(|quota| quota.0 == "team") {
            sqlx::query_as("SELECT team_id, user_id FROM team_members")
                .fetch_all(&mut *transaction)
                .await?
        } else {
            Vec::new()
        };
        let mut teams_of: HashMap<i64, Vec<i64>> = HashMap::new();
        for (team, user) in &team_rows {
            teams_of.entry(*user).or_default().push(*team);
        }
        let mut usage = Usage::default();
        for (user, project, gpus) in &active {
            usage.add(*user, *project, *gpus, &teams_of);
        }
        let limits: Limits<'_> = quotas
            .iter()
            .map(|(kind, id, jobs, gpus, name)| {
                ((kind.as_str(), *id), (*jobs, *gpus, name.clone().unwrap_or_default()))
            })
            .collect();
        let mut chosen = None;
        let mut blocked: Vec<(i64, String)> = Vec::new();
        for (id, user, project, gpus, reason, executor) in &queued {
            if let Some((name, why)) = unavailable.iter().find(|(name, _)| name == executor) {
                let waiting = format!("waiting for the {name} executor: {why}");
                if reason.as_deref() != Some(waiting.as_str()) {
                    blocked.push((*id, waiting));
                }
                continue;
            }
            let mut scopes = vec![("project", *project)];
            if let Some(user) = user {
                scopes.push(("user", *user));
                scopes.extend(teams_of.get(user).into_iter().flatten().map(|team| ("team", *team)));
            }
            let refusal = scopes.iter().find_map(|scope| {
                let (max_jobs, max_gpus, name) = limits.get(scope)?;
                let (jobs_in_use, gpus_in_use) = usage.of(*scope);
                if max_jobs.is_some_and(|max| jobs_in_use + 1 > max) {
                    return Some(format!(
                        "waiting for quota: {} '{name}' runs {jobs_in_use} of at most {} concurrent jobs",
                        scope.0,
                        max_jobs.unwrap_or_default()
                    ));
                }
                if max_gpus.is_some_and(|max| gpus_in_use + gpus > max) {
                    return Some(format!(
                        "waiting for quota: {} '{name}' uses {gpus_in_use} of at most {} GPUs and this job needs {gpus}",
                        scope.0,
                        max_gpus.unwrap_or_default()
                    ));
                }
                None
            });
            // Oldest first; a later job overtakes a blocked one only when it fits every quota.
            match refusal {
                None => {
                    chosen = Some(*id);
                    break;
                }
                Some(refusal) => {
                    if reason.as_deref() != Some(refusal.as_str()) {
                        blocked.push((*id, refusal));
                    }
                }
            }
        }
        for (id, reason) in blocked {
            sqlx::query("UPDATE jobs SET queue_reason = $1 WHERE id = $2 AND state = 'queued'")
                .bind(reason)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
        }
        if let Some(id) = chosen {
            sqlx::query(
                "UPDATE jobs SET state = 'starting', queue_reason = NULL, claimed_by = $1, \
                 claimed_until = $2, started_at = $3 WHERE id = $4 AND state = 'queued'",
            )
            .bind(replica)
            .bind(lease_until)
            .bind(now)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        match chosen {
            Some(id) => Ok(Some(self.get_job(id).await?)),
            None => Ok(None),
        }
    }

    /// Stores a short-lived token confined to the job's project for the job's user, and links
    /// it to the job (revoked when the job finishes).
    pub async fn create_job_token(
        &self,
        job_id: i64,
        digest: &str,
        hint: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let (user_id, project_id): (Option<i64>, i64) =
            sqlx::query_as("SELECT user_id, project_id FROM jobs WHERE id = $1")
                .bind(job_id)
                .fetch_optional(&mut *transaction)
                .await?
                .ok_or_else(|| job_not_found(job_id))?;
        let Some(user_id) = user_id else {
            return Err(DomainError::precondition(
                "a job submitted anonymously has no user to hold a token",
            )
            .into());
        };
        let token_id = crate::identity::insert_confined_token(
            &mut transaction,
            user_id,
            &format!("job-{job_id}"),
            digest,
            hint,
            expires_at,
            project_id,
        )
        .await?;
        sqlx::query("UPDATE jobs SET token_id = $1 WHERE id = $2")
            .bind(token_id)
            .bind(job_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Marks a starting job running (its command started).
    pub async fn set_job_running(&self, job_id: i64, replica: &str) -> StoreResult<bool> {
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE jobs SET state = 'running', running_at = $1 WHERE id = $2 AND state = 'starting' AND claimed_by = $3",
        )
        .bind(now_millis())
        .bind(job_id)
        .bind(replica)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        sqlx::query("UPDATE runs SET status = 'RUNNING' WHERE run_uuid = (SELECT run_id FROM jobs WHERE id = $1) AND status = 'SCHEDULED'")
            .bind(job_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(changed == 1)
    }

    /// Extends the leases of every unfinished job `replica` owns.
    pub async fn renew_job_leases(&self, replica: &str, until: i64) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query(
            "UPDATE jobs SET claimed_until = $1 WHERE claimed_by = $2 AND state IN ('starting', 'running')",
        )
        .bind(until)
        .bind(replica)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Takes over unfinished jobs whose owner's lease ran out (the replica died).
    pub async fn claim_orphaned_jobs(
        &self,
        replica: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Vec<Job>> {
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state IN ('starting', 'running') AND claimed_until < $1 ORDER BY id LIMIT 50",
        )
        .bind(now)
        .fetch_all(self.reader())
        .await?;
        let mut taken = Vec::new();
        for id in candidates {
            let mut transaction = self.begin().await?;
            let claimed = sqlx::query(
                "UPDATE jobs SET claimed_by = $1, claimed_until = $2 \
                 WHERE id = $3 AND state IN ('starting', 'running') AND claimed_until < $4",
            )
            .bind(replica)
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            transaction.commit().await?;
            if claimed == 1 {
                taken.push(self.get_job(id).await?);
            }
        }
        Ok(taken)
    }

    /// The unfinished jobs `replica` owns.
    pub async fn owned_jobs(&self, replica: &str) -> StoreResult<Vec<Job>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{JOB_SELECT} WHERE j.claimed_by = $1 AND j.state IN ('starting', 'running') ORDER BY j.id"
        )))
        .bind(replica)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Ends a job (once: a finished job is left alone): its state, reason, exit code and log,
    /// its run's status and end time, its token revoked, an audit record. Returns whether this
    /// call ended it.
    pub async fn finish_job(
        &self,
        context: &RequestContext,
        job_id: i64,
        outcome: &JobOutcome,
    ) -> StoreResult<bool> {
        debug_assert!(outcome.state.is_terminal());
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE jobs SET state = $1, reason = $2, exit_code = $3, log_path = $4, finished_at = $5, \
             claimed_by = NULL, claimed_until = NULL, queue_reason = NULL \
             WHERE id = $6 AND state IN ('queued', 'starting', 'running')",
        )
        .bind(outcome.state.as_str())
        .bind(&outcome.reason)
        .bind(outcome.exit_code)
        .bind(outcome.log_path.as_deref())
        .bind(now)
        .bind(job_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE runs SET status = $1, end_time = COALESCE(end_time, $2) \
             WHERE run_uuid = (SELECT run_id FROM jobs WHERE id = $3)",
        )
        .bind(outcome.state.run_status())
        .bind(now)
        .bind(job_id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = (SELECT token_id FROM jobs WHERE id = $2) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(job_id)
        .execute(&mut *transaction)
        .await?;
        append(
            &mut transaction,
            self.dialect,
            context,
            entry(
                "job.finish",
                format!("job:{job_id}"),
                serde_json::json!({"state": outcome.state.as_str(), "reason": outcome.reason, "exit_code": outcome.exit_code}),
            ),
        )
        .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Asks for a job to stop: a queued job is cancelled at once, a started one is marked for
    /// its owner to stop. Returns the job as it now is.
    pub async fn request_job_cancel(
        &self,
        context: &RequestContext,
        job_id: i64,
    ) -> StoreResult<Job> {
        let job = self.get_job(job_id).await?;
        if job.state.is_terminal() {
            return Err(DomainError::precondition(format!(
                "job {job_id} has already ended ({})",
                job.state.as_str()
            ))
            .into());
        }
        if job.state == JobState::Queued {
            let outcome = JobOutcome {
                state: JobState::Cancelled,
                reason: format!("cancelled by {} while queued", context.actor),
                exit_code: None,
                log_path: None,
            };
            if self.finish_job(context, job_id, &outcome).await? {
                return self.get_job(job_id).await;
            }
        }
        let mut transaction = self.begin().await?;
        sqlx::query("UPDATE jobs SET cancel_requested_by = $1 WHERE id = $2 AND cancel_requested_by IS NULL")
            .bind(&context.actor)
            .bind(job_id)
            .execute(&mut *transaction)
            .await?;
        self.commit_audited(
            transaction,
            context,
            entry("job.cancel", format!("job:{job_id}"), serde_json::json!({})),
        )
        .await?;
        self.get_job(job_id).await
    }
}

/// A queued job as the dispatcher sees it: id, user, project, GPUs, recorded queue reason,
/// executor.
type QueuedRow = (i64, Option<i64>, i64, i64, Option<String>, String);
/// A quota row: scope kind, scope id, max jobs, max GPUs, the scope's name.
type QuotaRow = (String, i64, Option<i64>, Option<i64>, Option<String>);
/// Limits by (scope kind, scope id): max jobs, max GPUs, the scope's name.
type Limits<'a> = HashMap<(&'a str, i64), (Option<i64>, Option<i64>, String)>;

/// Jobs and GPUs in use per quota scope.
#[derive(Default)]
struct Usage {
    by_scope: HashMap<(&'static str, i64), (i64, i64)>,
}

impl Usage {
    fn add(
        &mut self,
        user: Option<i64>,
        project: i64,
        gpus: i64,
        teams_of: &HashMap<i64, Vec<i64>>,
    ) {
        let mut scopes = vec![("project", project)];
        if let Some(user) = user {
            scopes.push(("user", user));
            scopes.extend(teams_of.get(&user).into_iter().flatten().map(|team| ("team", *team)));
        }
        for scope in scopes {
            let entry = self.by_scope.entry(scope).or_default();
            entry.0 += 1;
            entry.1 += gpus;
        }
    }

    fn of(&self, scope: (&str, i64)) -> (i64, i64) {
        self.by_scope
            .iter()
            .find(|(key, _)| key.0 == scope.0 && key.1 == scope.1)
            .map(|(_, value)| *value)
            .unwrap_or_default()
    }
}
