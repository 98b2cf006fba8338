//! Schedules: a job template fired by a cron expression in an IANA time zone. Firing is durable
//! and happens once across replicas (the schedule row is claimed, and a firing's job is unique
//! per schedule and time); a firing more than [`MISSED_AFTER_MS`] late was missed, and the
//! schedule's policy skips it or catches up once.

use std::str::FromStr;

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{JobTemplate, MissedPolicy, Schedule, validate_resource_name};
use cairn_domain::identity::Access;
use cairn_domain::time::now_millis;
use cairn_store::ScheduleSettings;

use super::jobs::JobService;
use crate::{ServiceError, ServiceResult};

/// How late a firing may be before it counts as missed.
pub const MISSED_AFTER_MS: i64 = 60_000;
/// How long a replica's claim on a schedule lasts.
const SCHEDULE_LEASE_MS: i64 = 60_000;

/// A schedule as asked for.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// Cron: 5 fields, or 6 with seconds first, or a nickname such as `@hourly`.
    pub cron: String,
    /// IANA time zone; `UTC` by default.
    pub timezone: String,
    /// What to run.
    pub template: JobTemplate,
    /// Missed firings.
    pub missed: MissedPolicy,
    /// Whether it fires.
    pub enabled: bool,
}

/// Parses a time zone name.
pub fn parse_timezone(name: &str) -> ServiceResult<chrono_tz::Tz> {
    chrono_tz::Tz::from_str(name).map_err(|_| {
        ServiceError::invalid(format!(
            "unknown time zone '{name}': use an IANA name such as UTC or Europe/Paris"
        ))
    })
}

/// The first firing strictly after `after` (epoch ms) of `cron` read in `timezone`.
pub fn next_firing(cron: &str, timezone: &str, after: i64) -> ServiceResult<i64> {
    let pattern = croner::Cron::from_str(cron).map_err(|error| {
        ServiceError::invalid(format!(
            "invalid cron '{cron}': {error} (five fields such as '*/5 * * * *', six with seconds first, or '@daily')"
        ))
    })?;
    let zone = parse_timezone(timezone)?;
    let start = chrono::DateTime::from_timestamp_millis(after)
        .ok_or_else(|| ServiceError::internal(format!("time {after} is out of range")))?
        .with_timezone(&zone);
    let next = pattern
        .find_next_occurrence(&start, false)
        .map_err(|error| ServiceError::invalid(format!("cron '{cron}' never fires: {error}")))?;
    Ok(next.timestamp_millis())
}

impl JobService {
    fn settings<'a>(request: &'a ScheduleRequest) -> ServiceResult<ScheduleSettings<'a>> {
        request.template.validate()?;
        let next_run_at = next_firing(&request.cron, &request.timezone, now_millis())?;
        Ok(ScheduleSettings {
            cron: &request.cron,
            timezone: &request.timezone,
            template: &request.template,
            missed: request.missed,
            enabled: request.enabled,
            next_run_at,
        })
    }

    /// Creates a schedule; its firings run as the caller.
    pub async fn create_schedule(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        request: &ScheduleRequest,
    ) -> ServiceResult<Schedule> {
        validate_resource_name("schedule", name)?;
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Write).await?;
        // Refuse now what would fail at every firing.
        self.resolve(context, project.clone(), &request.template).await?;
        let settings = Self::settings(request)?;
        let owner = context.principal.as_ref().map(|principal| principal.user_id);
        let schedule =
            self.store.create_schedule(context, project.id, name, owner, &settings).await?;
        self.wake.notify_one();
        Ok(schedule)
    }

    /// Replaces a schedule's settings.
    pub async fn update_schedule(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        request: &ScheduleRequest,
    ) -> ServiceResult<Schedule> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Write).await?;
        self.resolve(context, project.clone(), &request.template).await?;
        let settings = Self::settings(request)?;
        Ok(self.store.update_schedule(context, project.id, name, &settings).await?)
    }

    /// Deletes a schedule (its jobs stay on record).
    pub async fn delete_schedule(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
    ) -> ServiceResult<()> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Write).await?;
        Ok(self.store.delete_schedule(context, project.id, name).await?)
    }

    /// A project's schedules.
    pub async fn schedules(
        &self,
        context: &RequestContext,
        project: &str,
    ) -> ServiceResult<Vec<Schedule>> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        Ok(self.store.list_schedules(project.id).await?)
    }

    /// One schedule with the jobs it fired, newest first.
    pub async fn schedule(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        limit: i64,
    ) -> ServiceResult<(Schedule, Vec<cairn_domain::compute::Job>)> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        let schedule = self.store.get_schedule(project.id, name).await?;
        let history = self
            .store
            .list_jobs(
                Some(project.id),
                None,
                Some(schedule.id),
                None,
                limit.clamp(1, super::jobs::MAX_JOBS_PAGE),
            )
            .await?;
        Ok((schedule, history))
    }

    /// Fires every due schedule this replica can claim.
    pub(crate) async fn fire_due_schedules(&self) -> ServiceResult<()> {
        loop {
            let now = now_millis();
            let Some(due) =
                self.store.claim_due_schedule(&self.replica, now, now + SCHEDULE_LEASE_MS).await?
            else {
                return Ok(());
            };
            let schedule = &due.schedule;
            let context = RequestContext::system();
            let late = now - schedule.next_run_at;
            let missed = late > MISSED_AFTER_MS;
            let next =
                next_firing(&schedule.cron, &schedule.timezone, now.max(schedule.next_run_at))?;
            if missed && schedule.missed == MissedPolicy::Skip {
                let note = format!(
                    "skipped the firing due at {} ({} s late)",
                    schedule.next_run_at,
                    late / 1000
                );
                self.store
                    .fire_schedule(&context, schedule.id, &self.replica, None, Some(&note), next)
                    .await?;
                continue;
            }
            let project = self.store.get_project(&schedule.project).await?;
            let owner = schedule.owner.clone();
            let resolved = match self.resolve(&context, project, &schedule.template).await {
                Ok(resolved) => resolved,
                Err(error) => {
                    let note = format!("could not fire: {}", error.message);
                    tracing::warn!(schedule.id = schedule.id, reason = %note, "schedule firing refused");
                    self.store
                        .fire_schedule(
                            &context,
                            schedule.id,
                            &self.replica,
                            None,
                            Some(&note),
                            next,
                        )
                        .await?;
                    continue;
                }
            };
            let job = Self::new_job(
                &resolved,
                &schedule.template,
                due.owner_id,
                &owner,
                Some((schedule.id, schedule.next_run_at)),
                None,
            );
            let note = missed.then(|| format!("caught up a firing {} s late", late / 1000));
            let job_id = self
                .store
                .fire_schedule(
                    &context,
                    schedule.id,
                    &self.replica,
                    Some(&job),
                    note.as_deref(),
                    next,
                )
                .await?;
            if let Some(job_id) = job_id {
                let run_id = self.store.get_job(job_id).await?.run_id;
                self.link_dataset_inputs(
                    &context,
                    &run_id,
                    &resolved.project.name,
                    &resolved.datasets,
                )
                .await?;
                tracing::info!(schedule.id = schedule.id, job.id = job_id, "schedule fired");
                self.wake.notify_one();
            }
        }
    }
}
