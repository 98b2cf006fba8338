//! Workspaces: JupyterLab servers on project snapshots. A row is created (or restarted) with a
//! lease held by the replica that prepares and runs it; that replica marks it running, records
//! its saves and ends it. Every change but lease and activity bookkeeping is audited.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::ExecutorKind;
use cairn_domain::time::now_millis;
use cairn_domain::workspaces::{Workspace, WorkspaceRequest, WorkspaceState};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::entry;
use crate::compute::unreadable;
use crate::sql::opt_text;
use crate::{Store, StoreError, StoreResult};

/// A workspace with what the service needs beside its public record.
#[derive(Debug, Clone)]
pub struct WorkspaceRecord {
    /// The public record.
    pub workspace: Workspace,
    /// The project's id.
    pub project_id: i64,
    /// The owner's user id (none when authentication is off).
    pub owner_id: Option<i64>,
    /// The executor's id of its JupyterLab process, once running.
    pub exec_id: Option<String>,
    /// The replica that runs it, while active.
    pub claimed_by: Option<String>,
}

/// What a (re)start records.
#[derive(Debug, Clone)]
pub struct WorkspaceLaunch<'a> {
    /// What was asked.
    pub request: &'a WorkspaceRequest,
    /// The environment revision resolved for it.
    pub environment_revision: i64,
    /// The executor it runs on.
    pub executor: ExecutorKind,
    /// The snapshot it starts from.
    pub snapshot: Option<&'a str>,
    /// The replica preparing it.
    pub replica: &'a str,
    /// Until when that replica's lease holds.
    pub lease_until: i64,
}

const WORKSPACE_SELECT: &str = "SELECT w.id, p.name AS project_name, w.project_id, w.owner, w.owner_id, \
     w.state, w.spec, w.environment_revision, w.executor, w.snapshot, w.exec_id, w.claimed_by, \
     w.stop_requested_by, w.reason, w.synced_snapshot, w.synced_at, w.last_activity_at, \
     w.created_at, w.started_at, w.running_at, w.stopped_at \
     FROM workspaces w JOIN projects p ON p.id = w.project_id";

fn record_from_row(row: &AnyRow) -> StoreResult<WorkspaceRecord> {
    let id: i64 = row.try_get("id")?;
    let spec: String = row.try_get("spec")?;
    let workspace = Workspace {
        id,
        project: row.try_get("project_name")?,
        owner: row.try_get("owner")?,
        state: WorkspaceState::parse(&row.try_get::<String, _>("state")?)?,
        reason: opt_text(row, "reason")?,
        request: serde_json::from_str(&spec)
            .map_err(|error| unreadable("stored workspace request is unreadable", error))?,
        environment_revision: row.try_get("environment_revision")?,
        executor: ExecutorKind::parse(&row.try_get::<String, _>("executor")?)?,
        snapshot: opt_text(row, "snapshot")?,
        synced_snapshot: opt_text(row, "synced_snapshot")?,
        synced_at: row.try_get("synced_at")?,
        url: format!("/workspaces/{id}/lab"),
        stop_requested_by: opt_text(row, "stop_requested_by")?,
        last_activity_at: row.try_get("last_activity_at")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        running_at: row.try_get("running_at")?,
        stopped_at: row.try_get("stopped_at")?,
    };
    Ok(WorkspaceRecord {
        workspace,
        project_id: row.try_get("project_id")?,
        owner_id: row.try_get("owner_id")?,
        exec_id: opt_text(row, "exec_id")?,
        claimed_by: opt_text(row, "claimed_by")?,
    })
}

fn not_found(id: i64) -> StoreError {
    DomainError::not_found(format!("no workspace {id}")).into()
}

fn target(id: i64) -> String {
    format!("workspace:{id}")
}

impl Store {
    /// Records a new workspace, starting, leased to the launching replica.
    pub async fn create_workspace(
        &self,
        context: &RequestContext,
        project_id: i64,
        owner_id: Option<i64>,
        launch: &WorkspaceLaunch<'_>,
    ) -> StoreResult<WorkspaceRecord> {
        let spec = serde_json::to_string(launch.request)
            .map_err(|error| unreadable("workspace request", error))?;
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO workspaces (project_id, owner, owner_id, state, spec, environment_revision, \
             executor, snapshot, claimed_by, claimed_until, created_at, started_at) \
             VALUES ($1, $2, $3, 'starting', $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
        )
        .bind(project_id)
        .bind(&context.actor)
        .bind(owner_id)
        .bind(spec)
        .bind(launch.environment_revision)
        .bind(launch.executor.as_str())
        .bind(launch.snapshot)
        .bind(launch.replica)
        .bind(launch.lease_until)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        let details = serde_json::json!({"project_id": project_id, "request": launch.request,
            "environment_revision": launch.environment_revision, "snapshot": launch.snapshot});
        self.commit_audited(transaction, context, entry("workspace.start", target(id), details))
            .await?;
        self.get_workspace(id).await
    }

    /// Starts a stopped or failed workspace again with a new launch.
    pub async fn restart_workspace(
        &self,
        context: &RequestContext,
        id: i64,
        launch: &WorkspaceLaunch<'_>,
    ) -> StoreResult<WorkspaceRecord> {
        let spec = serde_json::to_string(launch.request)
            .map_err(|error| unreadable("workspace request", error))?;
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE workspaces SET state = 'starting', spec = $1, environment_revision = $2, \
             executor = $3, snapshot = $4, claimed_by = $5, claimed_until = $6, started_at = $7, \
             exec_id = NULL, port = NULL, token_id = NULL, stop_requested_by = NULL, reason = NULL, \
             running_at = NULL, stopped_at = NULL WHERE id = $8 AND state IN ('stopped', 'failed')",
        )
        .bind(spec)
        .bind(launch.environment_revision)
        .bind(launch.executor.as_str())
        .bind(launch.snapshot)
        .bind(launch.replica)
        .bind(launch.lease_until)
        .bind(now_millis())
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            transaction.rollback().await?;
            let current = self.get_workspace(id).await?;
            return Err(DomainError::precondition(format!(
                "workspace {id} is {} already",
                current.workspace.state.as_str()
            ))
            .into());
        }
        let details = serde_json::json!({"restart": true, "request": launch.request,
            "environment_revision": launch.environment_revision, "snapshot": launch.snapshot});
        self.commit_audited(transaction, context, entry("workspace.start", target(id), details))
            .await?;
        self.get_workspace(id).await
    }

    /// Stores the workspace's API token (confined to its project, for its owner) and links it,
    /// so it is revoked when the workspace ends.
    pub async fn attach_workspace_token(
        &self,
        context: &RequestContext,
        id: i64,
        digest: &str,
        hint: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let (owner_id, project_id): (Option<i64>, i64) =
            sqlx::query_as("SELECT owner_id, project_id FROM workspaces WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *transaction)
                .await?
                .ok_or_else(|| not_found(id))?;
        let Some(owner_id) = owner_id else {
            return Err(DomainError::precondition(
                "a workspace started anonymously has no user to hold a token",
            )
            .into());
        };
        let token_id = crate::identity::insert_confined_token(
            &mut transaction,
            owner_id,
            &format!("workspace-{id}"),
            digest,
            hint,
            expires_at,
            project_id,
        )
        .await?;
        sqlx::query("UPDATE workspaces SET token_id = $1 WHERE id = $2")
            .bind(token_id)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        let details = serde_json::json!({"token_id": token_id, "expires_at": expires_at});
        self.commit_audited(transaction, context, entry("workspace.token", target(id), details))
            .await
    }

    /// Marks a starting workspace running on `replica` (unless a stop was asked meanwhile);
    /// returns whether it did.
    pub async fn set_workspace_running(
        &self,
        context: &RequestContext,
        id: i64,
        replica: &str,
        exec_id: &str,
        port: u16,
    ) -> StoreResult<bool> {
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE workspaces SET state = 'running', exec_id = $1, port = $2, running_at = $3, \
             last_activity_at = $3 WHERE id = $4 AND state = 'starting' AND claimed_by = $5 \
             AND stop_requested_by IS NULL",
        )
        .bind(exec_id)
        .bind(i64::from(port))
        .bind(now_millis())
        .bind(id)
        .bind(replica)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        let details = serde_json::json!({"exec_id": exec_id});
        self.commit_audited(transaction, context, entry("workspace.running", target(id), details))
            .await?;
        Ok(true)
    }

    /// Asks an active workspace to stop (its replica saves and stops it); returns whether this
    /// call asked (`false`: it was asked already or is not active).
    pub async fn request_workspace_stop(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> StoreResult<bool> {
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE workspaces SET stop_requested_by = $1 WHERE id = $2 \
             AND state IN ('starting', 'running') AND stop_requested_by IS NULL",
        )
        .bind(&context.actor)
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        let details = serde_json::json!({});
        self.commit_audited(
            transaction,
            context,
            entry("workspace.stop.request", target(id), details),
        )
        .await?;
        Ok(true)
    }

    /// Records that the workspace's files were saved as snapshot `digest`.
    pub async fn record_workspace_sync(
        &self,
        context: &RequestContext,
        id: i64,
        digest: &str,
        trigger: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query("UPDATE workspaces SET synced_snapshot = $1, synced_at = $2 WHERE id = $3")
            .bind(digest)
            .bind(now_millis())
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        let details = serde_json::json!({"snapshot": digest, "trigger": trigger});
        self.commit_audited(transaction, context, entry("workspace.sync", target(id), details))
            .await
    }

    /// Ends an active workspace (once) as `stopped` or `failed` with `reason`, revoking its
    /// token; returns whether this call ended it.
    pub async fn finish_workspace(
        &self,
        context: &RequestContext,
        id: i64,
        state: WorkspaceState,
        reason: &str,
    ) -> StoreResult<bool> {
        debug_assert!(!state.is_active());
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE workspaces SET state = $1, reason = $2, stopped_at = $3, claimed_by = NULL, \
             claimed_until = NULL, port = NULL WHERE id = $4 AND state IN ('starting', 'running')",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = (SELECT token_id FROM workspaces WHERE id = $2) \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        let action =
            if state == WorkspaceState::Failed { "workspace.fail" } else { "workspace.stop" };
        let details = serde_json::json!({"reason": reason});
        self.commit_audited(transaction, context, entry(action, target(id), details)).await?;
        Ok(true)
    }

    /// Extends the leases of the active workspaces `replica` runs.
    pub async fn renew_workspace_leases(&self, replica: &str, until: i64) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query(
            "UPDATE workspaces SET claimed_until = $1 WHERE claimed_by = $2 \
             AND state IN ('starting', 'running')",
        )
        .bind(until)
        .bind(replica)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records the last activity seen in a workspace (bookkeeping, not audited).
    pub async fn touch_workspace_activity(&self, id: i64, at: i64) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        sqlx::query("UPDATE workspaces SET last_activity_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The active workspaces `replica` runs.
    pub async fn owned_workspaces(&self, replica: &str) -> StoreResult<Vec<WorkspaceRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{WORKSPACE_SELECT} WHERE w.claimed_by = $1 AND w.state IN ('starting', 'running') ORDER BY w.id"
        )))
        .bind(replica)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Active workspaces whose replica stopped renewing its lease before `now`.
    pub async fn orphaned_workspaces(&self, now: i64) -> StoreResult<Vec<WorkspaceRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{WORKSPACE_SELECT} WHERE w.state IN ('starting', 'running') AND w.claimed_until < $1 \
             ORDER BY w.id LIMIT 50"
        )))
        .bind(now)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// One workspace.
    pub async fn get_workspace(&self, id: i64) -> StoreResult<WorkspaceRecord> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{WORKSPACE_SELECT} WHERE w.id = $1")))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| not_found(id))?;
        record_from_row(&row)
    }

    /// A project's workspaces, newest first.
    pub async fn list_workspaces(
        &self,
        project_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<WorkspaceRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{WORKSPACE_SELECT} WHERE w.project_id = $1 ORDER BY w.id DESC LIMIT $2"
        )))
        .bind(project_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(record_from_row).collect()
    }
}
