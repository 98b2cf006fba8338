//! Deployments and their revisions. A live deployment's name is unique (it is part of the
//! inference URLs); a deleted one keeps its revisions on record and frees the name.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::serving::{Deployment, DeploymentRevision, DeploymentSpec};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::entry;
use crate::{Store, StoreError, StoreResult};

const DEPLOYMENT_SELECT: &str = "SELECT d.id, d.project_id, p.name AS project_name, d.name, d.environment, \
     d.revision, d.created_by, d.created_at, d.updated_at, r.spec FROM deployments d \
     JOIN projects p ON p.id = d.project_id \
     JOIN deployment_revisions r ON r.deployment = d.id AND r.revision = d.revision";

fn parse_spec(raw: &str) -> StoreResult<DeploymentSpec> {
    serde_json::from_str(raw).map_err(|error| {
        StoreError::from(DomainError {
            kind: cairn_domain::ErrorKind::Internal,
            message: format!("stored deployment spec is unreadable: {error}"),
        })
    })
}

fn deployment_from_row(row: &AnyRow) -> StoreResult<Deployment> {
    Ok(Deployment {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        project: row.try_get("project_name")?,
        name: row.try_get("name")?,
        environment: row.try_get("environment")?,
        revision: row.try_get("revision")?,
        spec: parse_spec(&row.try_get::<String, _>("spec")?)?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn not_found(name: &str) -> StoreError {
    DomainError::not_found(format!("no deployment named '{name}'")).into()
}

impl Store {
    /// Creates a deployment at revision 1.
    pub async fn create_deployment(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        environment: &str,
        spec: &DeploymentSpec,
    ) -> StoreResult<Deployment> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO deployments (project_id, name, environment, revision, state, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, 'active', $4, $5, $5) RETURNING id",
        )
        .bind(project_id)
        .bind(name)
        .bind(environment)
        .bind(&context.actor)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let id: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "a deployment named '{name}' exists already"
                ))
                .into());
            }
            other => other?,
        };
        sqlx::query(
            "INSERT INTO deployment_revisions (deployment, revision, spec, created_by, created_at, comment) \
             VALUES ($1, 1, $2, $3, $4, 'created')",
        )
        .bind(id)
        .bind(serde_json::to_string(spec).unwrap_or_default())
        .bind(&context.actor)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "deployment.create",
                format!("deployment:{name}"),
                serde_json::json!({"project_id": project_id, "environment": environment, "revision": 1, "spec": spec}),
            ),
        )
        .await?;
        self.get_deployment(name).await
    }

    /// Writes a new revision of what a deployment serves. With `expected_revision`, fails when
    /// another change came first (so two operators never overwrite each other unseen).
    pub async fn revise_deployment(
        &self,
        context: &RequestContext,
        name: &str,
        spec: &DeploymentSpec,
        comment: Option<&str>,
        expected_revision: Option<i64>,
    ) -> StoreResult<Deployment> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE deployments SET revision = revision + 1, updated_at = $1 \
             WHERE name = $2 AND state = 'active' RETURNING id, revision",
        )
        .bind(now)
        .bind(name)
        .fetch_optional(&mut *transaction)
        .await?;
        let (id, revision) = row.ok_or_else(|| not_found(name))?;
        if let Some(expected) = expected_revision
            && expected + 1 != revision
        {
            return Err(DomainError::precondition(format!(
                "deployment '{name}' is at revision {} now, not {expected}; reload it and retry",
                revision - 1
            ))
            .into());
        }
        sqlx::query(
            "INSERT INTO deployment_revisions (deployment, revision, spec, created_by, created_at, comment) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(revision)
        .bind(serde_json::to_string(spec).unwrap_or_default())
        .bind(&context.actor)
        .bind(now)
        .bind(comment)
        .execute(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "deployment.revise",
                format!("deployment:{name}"),
                serde_json::json!({"revision": revision, "spec": spec, "comment": comment}),
            ),
        )
        .await?;
        self.get_deployment(name).await
    }

    /// Deletes a live deployment; its revisions stay on record.
    pub async fn delete_deployment(&self, context: &RequestContext, name: &str) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE deployments SET state = 'deleted', updated_at = $1 WHERE name = $2 AND state = 'active'",
        )
        .bind(now_millis())
        .bind(name)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(not_found(name));
        }
        self.commit_audited(
            transaction,
            context,
            entry("deployment.delete", format!("deployment:{name}"), serde_json::json!({})),
        )
        .await
    }

    /// A live deployment at its current revision.
    pub async fn get_deployment(&self, name: &str) -> StoreResult<Deployment> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DEPLOYMENT_SELECT} WHERE d.name = $1 AND d.state = 'active'"
        )))
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| not_found(name))?;
        deployment_from_row(&row)
    }

    /// A live deployment by id (`None` when deleted or unknown).
    pub async fn get_deployment_by_id(&self, id: i64) -> StoreResult<Option<Deployment>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DEPLOYMENT_SELECT} WHERE d.id = $1 AND d.state = 'active'"
        )))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    /// The current revision number of a live deployment (cheap; for cache freshness).
    pub async fn deployment_revision(&self, name: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT revision FROM deployments WHERE name = $1 AND state = 'active'",
        )
        .bind(name)
        .fetch_optional(self.reader())
        .await?)
    }

    /// A project's live deployments by name.
    pub async fn list_deployments(&self, project_id: i64) -> StoreResult<Vec<Deployment>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DEPLOYMENT_SELECT} WHERE d.project_id = $1 AND d.state = 'active' ORDER BY d.name"
        )))
        .bind(project_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// Every revision of a live deployment, oldest first.
    pub async fn deployment_revisions(&self, name: &str) -> StoreResult<Vec<DeploymentRevision>> {
        let deployment = self.get_deployment(name).await?;
        let rows = sqlx::query(
            "SELECT revision, spec, created_by, created_at, comment FROM deployment_revisions \
             WHERE deployment = $1 ORDER BY revision",
        )
        .bind(deployment.id)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeploymentRevision {
                    revision: row.try_get("revision")?,
                    spec: parse_spec(&row.try_get::<String, _>("spec")?)?,
                    created_by: row.try_get("created_by")?,
                    created_at: row.try_get("created_at")?,
                    comment: row.try_get("comment")?,
                })
            })
            .collect()
    }
}
