//! Monitoring records: schedules (one row per monitored deployment, claimed by one replica at a
//! time), checks, alerts with their notifications (a durable outbox), and ground truth.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::monitoring::{
    Alert, AlertState, Check, CheckResult, CheckStatus, ThresholdOutcome,
};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{append, entry};
use crate::{Store, StoreError, StoreResult};

/// Whose alerts to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertScope {
    /// One deployment (by id).
    Deployment(i64),
    /// Every deployment of a project (by id), deleted ones included.
    Project(i64),
}

/// A check about to be stored.
#[derive(Debug, Clone)]
pub struct NewCheck<'a> {
    /// The deployment's id.
    pub deployment_id: i64,
    /// Its name.
    pub deployment: &'a str,
    /// The revision whose monitor spec was used.
    pub revision: i64,
    /// `schedule` or `manual`.
    pub trigger: &'a str,
    /// Who asked.
    pub requested_by: &'a str,
    /// The window, epoch ms.
    pub window_start: i64,
    /// End of the window.
    pub window_end: i64,
    /// When the check started.
    pub started_at: i64,
    /// How it ended.
    pub status: CheckStatus,
    /// A one-line summary.
    pub message: &'a str,
    /// The results.
    pub result: Option<&'a CheckResult>,
    /// The HTML report's path.
    pub report_path: Option<&'a str>,
}

/// What storing a check did to the alerts, and the notifications it queued.
#[derive(Debug, Clone, Default)]
pub struct AlertChanges {
    /// Alerts opened by this check.
    pub opened: Vec<Alert>,
    /// Alerts this check found still failing.
    pub ongoing: Vec<Alert>,
    /// Alerts closed by this check.
    pub closed: Vec<Alert>,
}

/// A notification owed to an alert route.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Id.
    pub id: i64,
    /// The deployment's id.
    pub deployment_id: i64,
    /// The check that caused it.
    pub check_id: i64,
    /// The route (JSON of an `AlertRoute`).
    pub route: String,
    /// The JSON body.
    pub payload: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
}

/// One ground-truth value.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// The prediction id.
    pub prediction_id: String,
    /// The row of the request.
    pub row: i64,
    /// The true value as JSON text.
    pub value: String,
}

const CHECK_COLUMNS: &str = "id, deployment_name, revision, cause, requested_by, window_start, \
     window_end, finished_at, status, message, result, report_path";

const ALERT_COLUMNS: &str = "id, deployment_name, key, state, message, opened_check, opened_at, \
     last_check, closed_check, closed_at";

fn unreadable(what: &str, error: impl std::fmt::Display) -> StoreError {
    DomainError { kind: cairn_domain::ErrorKind::Internal, message: format!("{what}: {error}") }
        .into()
}

fn check_from_row(row: &AnyRow) -> StoreResult<Check> {
    let status: String = row.try_get("status")?;
    let result: Option<String> = row.try_get("result")?;
    Ok(Check {
        id: row.try_get("id")?,
        deployment: row.try_get("deployment_name")?,
        revision: row.try_get("revision")?,
        trigger: row.try_get("cause")?,
        requested_by: row.try_get("requested_by")?,
        window_start: row.try_get("window_start")?,
        window_end: row.try_get("window_end")?,
        finished_at: row.try_get("finished_at")?,
        status: CheckStatus::parse(&status)
            .ok_or_else(|| unreadable("stored check status", &status))?,
        message: row.try_get("message")?,
        result: result
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|error| unreadable("stored check result is unreadable", error))?,
        report_path: row.try_get("report_path")?,
    })
}

fn alert_from_row(row: &AnyRow) -> StoreResult<Alert> {
    let state: String = row.try_get("state")?;
    Ok(Alert {
        id: row.try_get("id")?,
        deployment: row.try_get("deployment_name")?,
        key: row.try_get("key")?,
        state: if state == "open" { AlertState::Open } else { AlertState::Closed },
        message: row.try_get("message")?,
        opened_check: row.try_get("opened_check")?,
        opened_at: row.try_get("opened_at")?,
        last_check: row.try_get("last_check")?,
        closed_check: row.try_get("closed_check")?,
        closed_at: row.try_get("closed_at")?,
    })
}

fn notification_from_row(row: &AnyRow) -> StoreResult<Notification> {
    Ok(Notification {
        id: row.try_get("id")?,
        deployment_id: row.try_get("deployment")?,
        check_id: row.try_get("check_id")?,
        route: row.try_get("route")?,
        payload: row.try_get("payload")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
    })
}

/// The audit record of an alert opening or closing at check `check`.
fn alert_entry(action: &str, alert: &Alert, check: i64) -> cairn_domain::audit::AuditEntry {
    entry(
        action,
        format!("deployment:{}", alert.deployment),
        serde_json::json!({"alert": alert.id, "key": alert.key, "check": check, "message": alert.message}),
    )
}

/// Ground-truth rows written per statement.
const GROUND_TRUTH_CHUNK: usize = 200;
/// Prediction ids looked up per statement.
const LOOKUP_CHUNK: usize = 500;

impl Store {
    /// Schedules (or reschedules) the monitor of a deployment: its next check at `next_run_at`.
    /// `None` removes the schedule (the deployment has no monitor any more).
    pub async fn set_monitor_schedule(
        &self,
        deployment_id: i64,
        schedule: Option<(i64, i64)>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        match schedule {
            Some((revision, next_run_at)) => {
                sqlx::query(
                    "INSERT INTO monitor_schedules (deployment, revision, next_run_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (deployment) DO UPDATE SET revision = excluded.revision, \
                     next_run_at = excluded.next_run_at",
                )
                .bind(deployment_id)
                .bind(revision)
                .bind(next_run_at)
                .execute(&mut *transaction)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM monitor_schedules WHERE deployment = $1")
                    .bind(deployment_id)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The deployments with a schedule row (id, revision scheduled).
    pub async fn monitor_schedules(&self) -> StoreResult<Vec<(i64, i64)>> {
        Ok(sqlx::query_as("SELECT deployment, revision FROM monitor_schedules")
            .fetch_all(self.reader())
            .await?)
    }

    /// Claims one due schedule for `replica` until `lease_until`: the deployment's id, or
    /// `None` when nothing is due. A claim is a single conditional UPDATE, so two replicas
    /// never claim the same row; a replica that dies leaves a claim that expires.
    pub async fn claim_due_monitor(
        &self,
        replica: &str,
        now: i64,
        lease_until: i64,
    ) -> StoreResult<Option<i64>> {
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT deployment FROM monitor_schedules WHERE next_run_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_run_at LIMIT 8",
        )
        .bind(now)
        .fetch_all(self.reader())
        .await?;
        for deployment in candidates {
            let mut transaction = self.begin().await?;
            let claimed = sqlx::query(
                "UPDATE monitor_schedules SET claimed_by = $1, claimed_until = $2 \
                 WHERE deployment = $3 AND next_run_at <= $4 \
                 AND (claimed_until IS NULL OR claimed_until < $4)",
            )
            .bind(replica)
            .bind(lease_until)
            .bind(deployment)
            .bind(now)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
            transaction.commit().await?;
            if claimed == 1 {
                return Ok(Some(deployment));
            }
        }
        Ok(None)
    }

    /// Releases a claim and sets the next run (only if `replica` still holds it).
    pub async fn release_monitor(
        &self,
        deployment_id: i64,
        replica: &str,
        next_run_at: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query(
            "UPDATE monitor_schedules SET next_run_at = $1, claimed_by = NULL, claimed_until = NULL \
             WHERE deployment = $2 AND claimed_by = $3",
        )
        .bind(next_run_at)
        .bind(deployment_id)
        .bind(replica)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Stores a check and, in the same transaction, opens, updates and closes the alerts its
    /// thresholds decide (one open alert per deployment and key), queues one notification per
    /// route when an alert opened or closed, and records each opening and closing in the
    /// audit log. `outcomes` lists only thresholds evaluated by this check: an alert whose key
    /// is absent (insufficient data, say) is left as it is.
    pub async fn record_check(
        &self,
        context: &RequestContext,
        check: &NewCheck<'_>,
        outcomes: &[ThresholdOutcome],
        routes: &[String],
        notification: impl FnOnce(i64, &AlertChanges) -> Option<String>,
    ) -> StoreResult<(Check, AlertChanges)> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let result = check
            .result
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| unreadable("encoding the check result", error))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO monitor_checks (deployment, deployment_name, revision, cause, requested_by, \
             window_start, window_end, started_at, finished_at, status, message, result, report_path) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(check.deployment_id)
        .bind(check.deployment)
        .bind(check.revision)
        .bind(check.trigger)
        .bind(check.requested_by)
        .bind(check.window_start)
        .bind(check.window_end)
        .bind(check.started_at)
        .bind(now)
        .bind(check.status.as_str())
        .bind(check.message)
        .bind(result)
        .bind(check.report_path)
        .fetch_one(&mut *transaction)
        .await?;
        let mut changes = AlertChanges::default();
        for outcome in outcomes {
            if outcome.failed {
                let ongoing = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE monitor_alerts SET last_check = $1, message = $2 \
                     WHERE deployment = $3 AND key = $4 AND state = 'open' RETURNING {ALERT_COLUMNS}"
                )))
                .bind(id)
                .bind(&outcome.message)
                .bind(check.deployment_id)
                .bind(&outcome.key)
                .fetch_optional(&mut *transaction)
                .await?;
                if let Some(row) = ongoing {
                    changes.ongoing.push(alert_from_row(&row)?);
                    continue;
                }
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO monitor_alerts (deployment, deployment_name, key, state, message, \
                     opened_check, opened_at, last_check) VALUES ($1, $2, $3, 'open', $4, $5, $6, $5) \
                     RETURNING {ALERT_COLUMNS}"
                )))
                .bind(check.deployment_id)
                .bind(check.deployment)
                .bind(&outcome.key)
                .bind(&outcome.message)
                .bind(id)
                .bind(now)
                .fetch_one(&mut *transaction)
                .await?;
                let alert = alert_from_row(&row)?;
                append(
                    &mut transaction,
                    self.dialect,
                    context,
                    alert_entry("alert.open", &alert, id),
                )
                .await?;
                changes.opened.push(alert);
            } else {
                let closed = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE monitor_alerts SET state = 'closed', closed_check = $1, closed_at = $2, \
                     last_check = $1, message = $3 \
                     WHERE deployment = $4 AND key = $5 AND state = 'open' RETURNING {ALERT_COLUMNS}"
                )))
                .bind(id)
                .bind(now)
                .bind(&outcome.message)
                .bind(check.deployment_id)
                .bind(&outcome.key)
                .fetch_optional(&mut *transaction)
                .await?;
                if let Some(row) = closed {
                    let alert = alert_from_row(&row)?;
                    let record = alert_entry("alert.close", &alert, id);
                    append(&mut transaction, self.dialect, context, record).await?;
                    changes.closed.push(alert);
                }
            }
        }
        if !(changes.opened.is_empty() && changes.closed.is_empty())
            && let Some(payload) = notification(id, &changes)
        {
            for route in routes {
                sqlx::query(
                    "INSERT INTO alert_notifications (deployment, check_id, route, payload, state, \
                     attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
                )
                .bind(check.deployment_id)
                .bind(id)
                .bind(route)
                .bind(&payload)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            }
        }
        append(
            &mut transaction,
            self.dialect,
            context,
            entry(
                "monitor.check",
                format!("deployment:{}", check.deployment),
                serde_json::json!({"check": id, "revision": check.revision, "status": check.status.as_str(), "trigger": check.trigger}),
            ),
        )
        .await?;
        transaction.commit().await?;
        let stored = self.monitor_check(check.deployment_id, id).await?;
        Ok((stored, changes))
    }

    /// One check of a deployment.
    pub async fn monitor_check(&self, deployment_id: i64, id: i64) -> StoreResult<Check> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECK_COLUMNS} FROM monitor_checks WHERE deployment = $1 AND id = $2"
        )))
        .bind(deployment_id)
        .bind(id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| StoreError::from(DomainError::not_found(format!("no check {id}"))))?;
        check_from_row(&row)
    }

    /// A deployment's checks, newest first, at most `limit`, older than `before` when given.
    pub async fn monitor_checks(
        &self,
        deployment_id: i64,
        limit: i64,
        before: Option<i64>,
    ) -> StoreResult<Vec<Check>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECK_COLUMNS} FROM monitor_checks WHERE deployment = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        )))
        .bind(deployment_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(check_from_row).collect()
    }

    /// Alerts, newest first, open only or all: of one deployment, or of every deployment of a
    /// project.
    pub async fn monitor_alerts(
        &self,
        scope: AlertScope,
        open_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<Alert>> {
        let (deployment, project) = match scope {
            AlertScope::Deployment(id) => (id, 0),
            AlertScope::Project(id) => (0, id),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM monitor_alerts \
             WHERE ($1 = 0 OR deployment = $1) \
             AND ($2 = 0 OR deployment IN (SELECT id FROM deployments WHERE project_id = $2)) \
             AND ($3 = 0 OR state = 'open') ORDER BY id DESC LIMIT $4"
        )))
        .bind(deployment)
        .bind(project)
        .bind(i64::from(open_only))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(alert_from_row).collect()
    }

    /// Closes every open alert of a deployment (its monitor was removed or it was deleted).
    pub async fn close_monitor_alerts(
        &self,
        context: &RequestContext,
        deployment_id: i64,
        deployment: &str,
        reason: &str,
    ) -> StoreResult<u64> {
        let mut transaction = self.begin().await?;
        let closed = sqlx::query(
            "UPDATE monitor_alerts SET state = 'closed', closed_at = $1, message = $2 \
             WHERE deployment = $3 AND state = 'open'",
        )
        .bind(now_millis())
        .bind(reason)
        .bind(deployment_id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if closed > 0 {
            append(
                &mut transaction,
                self.dialect,
                context,
                entry(
                    "alert.close",
                    format!("deployment:{deployment}"),
                    serde_json::json!({"closed": closed, "reason": reason}),
                ),
            )
            .await?;
        }
        transaction.commit().await?;
        Ok(closed)
    }

    /// Claims up to `limit` notifications due at `now` (pushing their next attempt to
    /// `lease_until`, so a replica that dies mid-delivery leaves them to be retried).
    pub async fn claim_notifications(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM alert_notifications WHERE state = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        let mut claimed = Vec::new();
        for id in ids {
            let mut transaction = self.begin().await?;
            let row = sqlx::query(
                "UPDATE alert_notifications SET next_attempt_at = $1, attempts = attempts + 1 \
                 WHERE id = $2 AND state = 'pending' AND next_attempt_at <= $3 \
                 RETURNING id, deployment, check_id, route, payload, state, attempts, last_error",
            )
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *transaction)
            .await?;
            transaction.commit().await?;
            if let Some(row) = row {
                claimed.push(notification_from_row(&row)?);
            }
        }
        Ok(claimed)
    }

    /// Records a delivery attempt's outcome: delivered, to retry at `retry_at`, or failed for
    /// good.
    pub async fn settle_notification(
        &self,
        id: i64,
        outcome: Result<(), (String, Option<i64>)>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE alert_notifications SET state = 'delivered', delivered_at = $1, \
                     last_error = NULL WHERE id = $2",
                )
                .bind(now_millis())
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            }
            Err((error, Some(retry_at))) => {
                sqlx::query(
                    "UPDATE alert_notifications SET next_attempt_at = $1, last_error = $2 WHERE id = $3",
                )
                .bind(retry_at)
                .bind(error)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            }
            Err((error, None)) => {
                sqlx::query(
                    "UPDATE alert_notifications SET state = 'failed', last_error = $1 WHERE id = $2",
                )
                .bind(error)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The notifications caused by a check (for the API and tests).
    pub async fn check_notifications(&self, check_id: i64) -> StoreResult<Vec<Notification>> {
        let rows = sqlx::query(
            "SELECT id, deployment, check_id, route, payload, state, attempts, last_error \
             FROM alert_notifications WHERE check_id = $1 ORDER BY id",
        )
        .bind(check_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    /// Stores ground truth (a later value for the same prediction and row replaces the
    /// earlier one). Returns the rows written.
    pub async fn put_ground_truth(
        &self,
        context: &RequestContext,
        deployment_id: i64,
        deployment: &str,
        values: &[GroundTruth],
    ) -> StoreResult<u64> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        for chunk in values.chunks(GROUND_TRUTH_CHUNK) {
            let mut sql = String::from(
                "INSERT INTO ground_truth (deployment, prediction_id, row_index, value, received_at) VALUES ",
            );
            for index in 0..chunk.len() {
                let base = index * 3;
                if index > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("($1, ${}, ${}, ${}, $2)", base + 3, base + 4, base + 5));
            }
            sql.push_str(
                " ON CONFLICT (deployment, prediction_id, row_index) DO UPDATE SET \
                 value = excluded.value, received_at = excluded.received_at",
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(deployment_id).bind(now);
            for value in chunk {
                query = query.bind(&value.prediction_id).bind(value.row).bind(&value.value);
            }
            query.execute(&mut *transaction).await?;
        }
        append(
            &mut transaction,
            self.dialect,
            context,
            entry(
                "monitor.ground_truth",
                format!("deployment:{deployment}"),
                serde_json::json!({"rows": values.len()}),
            ),
        )
        .await?;
        transaction.commit().await?;
        Ok(values.len() as u64)
    }

    /// The ground truth stored for these prediction ids.
    pub async fn ground_truth(
        &self,
        deployment_id: i64,
        prediction_ids: &[&str],
    ) -> StoreResult<Vec<GroundTruth>> {
        let mut found = Vec::new();
        for chunk in prediction_ids.chunks(LOOKUP_CHUNK) {
            let placeholders =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT prediction_id, row_index, value FROM ground_truth \
                 WHERE deployment = $1 AND prediction_id IN ({placeholders})"
            )))
            .bind(deployment_id);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.reader()).await? {
                found.push(GroundTruth {
                    prediction_id: row.try_get("prediction_id")?,
                    row: row.try_get("row_index")?,
                    value: row.try_get("value")?,
                });
            }
        }
        Ok(found)
    }
}
