//! Job schedules: a row per schedule with its next firing time, claimed by one replica at a
//! time; a firing inserts its job (unique per schedule and time) and moves the next firing in
//! the same transaction, so a firing runs once however many replicas race for it.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{JobTemplate, MissedPolicy, Schedule};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{append, entry};
use crate::compute::unreadable;
use crate::jobs::{NewJob, insert_job};
use crate::sql::opt_text;
use crate::{Store, StoreError, StoreResult};

/// A schedule's settings, for create and update.
#[derive(Debug, Clone)]
pub struct ScheduleSettings<'a> {
    /// Cron expression.
    pub cron: &'a str,
    /// IANA time zone.
    pub timezone: &'a str,
    /// What each firing runs.
    pub template: &'a JobTemplate,
    /// Missed-firing policy.
    pub missed: MissedPolicy,
    /// Whether it fires.
    pub enabled: bool,
    /// The next firing, epoch ms.
    pub next_run_at: i64,
}

/// A claimed schedule with what firing it needs.
#[derive(Debug, Clone)]
pub struct DueSchedule {
    /// The schedule.
    pub schedule: Schedule,
    /// Its project's id.
    pub project_id: i64,
    /// The owner's user id (none when created anonymously).
    pub owner_id: Option<i64>,
}

const SCHEDULE_SELECT: &str = "SELECT s.id, s.project_id, p.name AS project_name, s.name, s.cron, \
     s.timezone, s.template, s.missed, s.enabled, s.owner_id, u.username AS owner_name, \
     s.next_run_at, s.last_fired_at, s.created_by, s.created_at FROM job_schedules s \
     JOIN projects p ON p.id = s.project_id LEFT JOIN users u ON u.id = s.owner_id";

fn schedule_from_row(row: &AnyRow) -> StoreResult<Schedule> {
    let template: String = row.try_get("template")?;
    Ok(Schedule {
        id: row.try_get("id")?,
        project: row.try_get("project_name")?,
        name: row.try_get("name")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        template: serde_json::from_str(&template)
            .map_err(|error| unreadable("stored schedule template is unreadable", error))?,
        missed: MissedPolicy::parse(&row.try_get::<String, _>("missed")?)?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        owner: opt_text(row, "owner_name")?.unwrap_or_else(|| "anonymous".to_string()),
        next_run_at: row.try_get("next_run_at")?,
        last_fired_at: row.try_get("last_fired_at")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn schedule_not_found(name: &str) -> StoreError {
    DomainError::not_found(format!("no schedule named '{name}' in this project")).into()
}

impl Store {
    /// Creates a schedule owned by `owner_id`.
    pub async fn create_schedule(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        owner_id: Option<i64>,
        settings: &ScheduleSettings<'_>,
    ) -> StoreResult<Schedule> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO job_schedules (project_id, name, cron, timezone, template, missed, enabled, \
             owner_id, next_run_at, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        )
        .bind(project_id)
        .bind(name)
        .bind(settings.cron)
        .bind(settings.timezone)
        .bind(serde_json::to_string(settings.template).unwrap_or_default())
        .bind(settings.missed.as_str())
        .bind(i64::from(settings.enabled))
        .bind(owner_id)
        .bind(settings.next_run_at)
        .bind(&context.actor)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let id: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "a schedule named '{name}' exists already in this project"
                ))
                .into());
            }
            other => other?,
        };
        self.commit_audited(
            transaction,
            context,
            entry(
                "schedule.create",
                format!("schedule:{id}"),
                serde_json::json!({"project_id": project_id, "name": name, "cron": settings.cron,
                    "timezone": settings.timezone, "template": settings.template, "missed": settings.missed.as_str(),
                    "enabled": settings.enabled}),
            ),
        )
        .await?;
        self.get_schedule(project_id, name).await
    }

    /// Replaces a schedule's settings (its claim, if any, is kept).
    pub async fn update_schedule(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        settings: &ScheduleSettings<'_>,
    ) -> StoreResult<Schedule> {
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE job_schedules SET cron = $1, timezone = $2, template = $3, missed = $4, enabled = $5, \
             next_run_at = $6, updated_at = $7 WHERE project_id = $8 AND name = $9",
        )
        .bind(settings.cron)
        .bind(settings.timezone)
        .bind(serde_json::to_string(settings.template).unwrap_or_default())
        .bind(settings.missed.as_str())
        .bind(i64::from(settings.enabled))
        .bind(settings.next_run_at)
        .bind(now_millis())
        .bind(project_id)
        .bind(name)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(schedule_not_found(name));
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "schedule.update",
                format!("schedule:{project_id}/{name}"),
                serde_json::json!({"cron": settings.cron, "timezone": settings.timezone, "template": settings.template,
                    "missed": settings.missed.as_str(), "enabled": settings.enabled}),
            ),
        )
        .await?;
        self.get_schedule(project_id, name).await
    }

    /// Deletes a schedule; its jobs stay on record (unlinked from the name).
    pub async fn delete_schedule(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
    ) -> StoreResult<()> {
        let schedule = self.get_schedule(project_id, name).await?;
        let mut transaction = self.begin().await?;
        sqlx::query("UPDATE jobs SET schedule_id = NULL WHERE schedule_id = $1")
            .bind(schedule.id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM job_schedules WHERE id = $1")
            .bind(schedule.id)
            .execute(&mut *transaction)
            .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "schedule.delete",
                format!("schedule:{}", schedule.id),
                serde_json::json!({"name": name}),
            ),
        )
        .await
    }

    /// A schedule by project and name.
    pub async fn get_schedule(&self, project_id: i64, name: &str) -> StoreResult<Schedule> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SCHEDULE_SELECT} WHERE s.project_id = $1 AND s.name = $2"
        )))
        .bind(project_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| schedule_not_found(name))?;
        schedule_from_row(&row)
    }

    /// A project's schedules, by name.
    pub async fn list_schedules(&self, project_id: i64) -> StoreResult<Vec<Schedule>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SCHEDULE_SELECT} WHERE s.project_id = $1 ORDER BY s.name"
        )))
        .bind(project_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Claims one enabled schedule whose firing is due and which no live lease holds.
    pub async fn claim_due_schedule(
        &self,
        replica: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<DueSchedule>> {
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM job_schedules WHERE enabled = 1 AND next_run_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_run_at LIMIT 8",
        )
        .bind(now)
        .fetch_all(self.reader())
        .await?;
        for id in candidates {
            let mut transaction = self.begin().await?;
            let claimed = sqlx::query(
                "UPDATE job_schedules SET claimed_by = $1, claimed_until = $2 WHERE id = $3 \
                 AND enabled = 1 AND next_run_at <= $4 AND (claimed_until IS NULL OR claimed_until < $4)",
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
                let row =
                    sqlx::query(sqlx::AssertSqlSafe(format!("{SCHEDULE_SELECT} WHERE s.id = $1")))
                        .bind(id)
                        .fetch_one(self.reader())
                        .await?;
                return Ok(Some(DueSchedule {
                    schedule: schedule_from_row(&row)?,
                    project_id: row.try_get("project_id")?,
                    owner_id: row.try_get("owner_id")?,
                }));
            }
        }
        Ok(None)
    }

    /// Records a firing of a claimed schedule: the job (if any; none when the firing was
    /// skipped or failed, with `note` saying why), the next firing time, and the claim released
    /// — all only if `replica` still holds the claim. Returns the job's id when one was made.
    pub async fn fire_schedule(
        &self,
        context: &RequestContext,
        schedule_id: i64,
        replica: &str,
        job: Option<&NewJob<'_>>,
        note: Option<&str>,
        next_run_at: i64,
    ) -> StoreResult<Option<i64>> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let released = sqlx::query(
            "UPDATE job_schedules SET next_run_at = $1, last_fired_at = $2, claimed_by = NULL, claimed_until = NULL \
             WHERE id = $3 AND claimed_by = $4",
        )
        .bind(next_run_at)
        .bind(now)
        .bind(schedule_id)
        .bind(replica)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if released == 0 {
            transaction.rollback().await?;
            return Ok(None);
        }
        let mut job_id = None;
        if let Some(job) = job
            && let Some((id, run_id)) = insert_job(self, &mut transaction, job).await?
        {
            job_id = Some(id);
            append(
                &mut transaction,
                self.dialect,
                context,
                entry(
                    "job.submit",
                    format!("job:{id}"),
                    serde_json::json!({"project_id": job.project_id, "run_id": run_id, "schedule_id": schedule_id,
                        "scheduled_for": job.schedule.map(|(_, at)| at), "command": job.template.command}),
                ),
            )
            .await?;
        }
        append(
            &mut transaction,
            self.dialect,
            context,
            entry(
                "schedule.fire",
                format!("schedule:{schedule_id}"),
                serde_json::json!({"job_id": job_id, "note": note, "next_run_at": next_run_at}),
            ),
        )
        .await?;
        transaction.commit().await?;
        Ok(job_id)
    }

    /// Counts enabled schedules (for the scheduler's metrics).
    pub async fn count_schedules(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM job_schedules WHERE enabled = 1")
            .fetch_one(self.reader())
            .await?)
    }
}
