//! Compute records: project snapshots, environments with revisions, hardware tiers and quotas.
//! Jobs and schedules live in `jobs.rs`, secrets in `secrets.rs`.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{
    Environment, EnvironmentDefinition, EnvironmentRevision, HardwareTier, Quota, QuotaScope,
    RevisionState, Snapshot, TierSpec,
};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::entry;
use crate::sql::opt_text;
use crate::{Store, StoreError, StoreResult};

/// A snapshot about to be recorded.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    /// The project's id.
    pub project_id: i64,
    /// The manifest digest.
    pub digest: &'a str,
    /// What changed.
    pub message: &'a str,
    /// How many files.
    pub file_count: i64,
    /// Their total size.
    pub total_bytes: i64,
    /// Bytes stored for the first time.
    pub new_bytes: i64,
}

pub(crate) fn unreadable(what: &str, error: impl std::fmt::Display) -> StoreError {
    DomainError { kind: cairn_domain::ErrorKind::Internal, message: format!("{what}: {error}") }
        .into()
}

const SNAPSHOT_SELECT: &str = "SELECT s.id, p.name AS project_name, s.digest, s.message, s.author, \
     s.file_count, s.total_bytes, s.new_bytes, s.created_at FROM project_snapshots s \
     JOIN projects p ON p.id = s.project_id";

fn snapshot_from_row(row: &AnyRow) -> StoreResult<Snapshot> {
    Ok(Snapshot {
        id: row.try_get("id")?,
        project: row.try_get("project_name")?,
        digest: row.try_get("digest")?,
        message: row.try_get("message")?,
        author: row.try_get("author")?,
        file_count: row.try_get("file_count")?,
        total_bytes: row.try_get("total_bytes")?,
        new_bytes: row.try_get("new_bytes")?,
        created_at: row.try_get("created_at")?,
    })
}

fn revision_from_row(environment: &str, row: &AnyRow) -> StoreResult<EnvironmentRevision> {
    let definition: String = row.try_get("definition")?;
    Ok(EnvironmentRevision {
        environment: environment.to_string(),
        revision: row.try_get("revision")?,
        definition: serde_json::from_str::<EnvironmentDefinition>(&definition)
            .map_err(|error| unreadable("stored environment definition is unreadable", error))?,
        digest: row.try_get("digest")?,
        state: RevisionState::parse(&row.try_get::<String, _>("state")?)?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        decided_by: opt_text(row, "decided_by")?,
        decided_at: row.try_get("decided_at")?,
    })
}

fn tier_from_row(row: &AnyRow) -> StoreResult<HardwareTier> {
    let spec: String = row.try_get("spec")?;
    Ok(HardwareTier {
        name: row.try_get("name")?,
        spec: serde_json::from_str::<TierSpec>(&spec)
            .map_err(|error| unreadable("stored tier spec is unreadable", error))?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Records a snapshot whose files and manifest are already in the artifact store.
    pub async fn create_snapshot(
        &self,
        context: &RequestContext,
        snapshot: &NewSnapshot<'_>,
    ) -> StoreResult<Snapshot> {
        let mut transaction = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO project_snapshots (project_id, digest, message, author, file_count, \
             total_bytes, new_bytes, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(snapshot.project_id)
        .bind(snapshot.digest)
        .bind(snapshot.message)
        .bind(&context.actor)
        .bind(snapshot.file_count)
        .bind(snapshot.total_bytes)
        .bind(snapshot.new_bytes)
        .bind(now_millis())
        .fetch_one(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "snapshot.create",
                format!("snapshot:{id}"),
                serde_json::json!({"project_id": snapshot.project_id, "digest": snapshot.digest,
                    "files": snapshot.file_count, "bytes": snapshot.total_bytes, "new_bytes": snapshot.new_bytes}),
            ),
        )
        .await?;
        self.snapshot_by_id(id).await
    }

    async fn snapshot_by_id(&self, id: i64) -> StoreResult<Snapshot> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SNAPSHOT_SELECT} WHERE s.id = $1")))
            .bind(id)
            .fetch_one(self.reader())
            .await?;
        snapshot_from_row(&row)
    }

    /// A project's snapshots, newest first.
    pub async fn list_snapshots(&self, project_id: i64, limit: i64) -> StoreResult<Vec<Snapshot>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SNAPSHOT_SELECT} WHERE s.project_id = $1 ORDER BY s.id DESC LIMIT $2"
        )))
        .bind(project_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(snapshot_from_row).collect()
    }

    /// The snapshot named by a digest or a unique digest prefix, else the newest.
    pub async fn find_snapshot(
        &self,
        project_id: i64,
        digest_or_prefix: Option<&str>,
    ) -> StoreResult<Snapshot> {
        let Some(prefix) = digest_or_prefix else {
            return self.list_snapshots(project_id, 1).await?.pop().ok_or_else(|| {
                DomainError::precondition(
                    "the project has no files yet: push some with 'cairn push'",
                )
                .into()
            });
        };
        let prefix = prefix.to_ascii_lowercase();
        // Digests are hex, so a prefix has no LIKE wildcards in it.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SNAPSHOT_SELECT} WHERE s.project_id = $1 AND s.digest LIKE $2 ORDER BY s.id DESC"
        )))
        .bind(project_id)
        .bind(format!("{prefix}%"))
        .fetch_all(self.reader())
        .await?;
        let mut snapshots: Vec<Snapshot> =
            rows.iter().map(snapshot_from_row).collect::<StoreResult<_>>()?;
        snapshots.dedup_by(|left, right| left.digest == right.digest);
        match snapshots.len() {
            0 => {
                Err(DomainError::not_found(format!("no snapshot '{prefix}' in this project"))
                    .into())
            }
            1 => Ok(snapshots.remove(0)),
            _ => Err(DomainError::invalid(format!(
                "snapshot prefix '{prefix}' is ambiguous: give more digits"
            ))
            .into()),
        }
    }

    /// Creates an environment with a first, draft revision.
    pub async fn create_environment(
        &self,
        context: &RequestContext,
        name: &str,
        description: &str,
        definition: &EnvironmentDefinition,
    ) -> StoreResult<Environment> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO environments (name, description, created_by, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(description)
        .bind(&context.actor)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let id: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "an environment named '{name}' exists already"
                ))
                .into());
            }
            other => other?,
        };
        insert_revision(&mut transaction, id, 1, definition, &context.actor, now).await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "environment.create",
                format!("environment:{name}"),
                serde_json::json!({"revision": 1, "definition": definition, "digest": definition.digest()}),
            ),
        )
        .await?;
        self.get_environment(name).await
    }

    /// Adds a draft revision.
    pub async fn add_environment_revision(
        &self,
        context: &RequestContext,
        name: &str,
        definition: &EnvironmentDefinition,
    ) -> StoreResult<EnvironmentRevision> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM environments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *transaction)
            .await?;
        let id = id.ok_or_else(|| environment_not_found(name))?;
        let revision: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(revision), 0) + 1 FROM environment_revisions WHERE environment = $1",
        )
        .bind(id)
        .fetch_one(&mut *transaction)
        .await?;
        insert_revision(&mut transaction, id, revision, definition, &context.actor, now).await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "environment.revise",
                format!("environment:{name}"),
                serde_json::json!({"revision": revision, "definition": definition, "digest": definition.digest()}),
            ),
        )
        .await?;
        self.environment_revision(name, Some(revision)).await
    }

    /// Approves or deprecates a revision. Approving a deprecated revision is refused.
    pub async fn set_revision_state(
        &self,
        context: &RequestContext,
        name: &str,
        revision: i64,
        state: RevisionState,
    ) -> StoreResult<EnvironmentRevision> {
        let current = self.environment_revision(name, Some(revision)).await?;
        if current.state == RevisionState::Deprecated && state != RevisionState::Deprecated {
            return Err(DomainError::precondition(format!(
                "revision {revision} of '{name}' is deprecated and stays so: add a new revision"
            ))
            .into());
        }
        let mut transaction = self.begin().await?;
        sqlx::query(
            "UPDATE environment_revisions SET state = $1, decided_by = $2, decided_at = $3 \
             WHERE environment = (SELECT id FROM environments WHERE name = $4) AND revision = $5",
        )
        .bind(state.as_str())
        .bind(&context.actor)
        .bind(now_millis())
        .bind(name)
        .bind(revision)
        .execute(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                &format!("environment.{}", if state == RevisionState::Approved { "approve" } else { "state" }),
                format!("environment:{name}"),
                serde_json::json!({"revision": revision, "state": state.as_str(), "digest": current.digest}),
            ),
        )
        .await?;
        self.environment_revision(name, Some(revision)).await
    }

    /// An environment with every revision.
    pub async fn get_environment(&self, name: &str) -> StoreResult<Environment> {
        let row = sqlx::query(
            "SELECT id, name, description, created_by, created_at FROM environments WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| environment_not_found(name))?;
        let id: i64 = row.try_get("id")?;
        let revisions = sqlx::query(
            "SELECT revision, definition, digest, state, created_by, created_at, decided_by, decided_at \
             FROM environment_revisions WHERE environment = $1 ORDER BY revision",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await?;
        Ok(Environment {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            revisions: revisions
                .iter()
                .map(|revision| revision_from_row(name, revision))
                .collect::<StoreResult<_>>()?,
        })
    }

    /// Every environment, by name.
    pub async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM environments ORDER BY name")
            .fetch_all(self.reader())
            .await?;
        let mut environments = Vec::with_capacity(names.len());
        for name in names {
            environments.push(self.get_environment(&name).await?);
        }
        Ok(environments)
    }

    /// One revision, or the newest approved one when `revision` is absent.
    pub async fn environment_revision(
        &self,
        name: &str,
        revision: Option<i64>,
    ) -> StoreResult<EnvironmentRevision> {
        let environment = self.get_environment(name).await?;
        match revision {
            Some(number) => {
                environment.revisions.into_iter().find(|r| r.revision == number).ok_or_else(|| {
                    DomainError::not_found(format!("environment '{name}' has no revision {number}"))
                        .into()
                })
            }
            None => environment.latest_approved().cloned().ok_or_else(|| {
                DomainError::precondition(format!(
                    "environment '{name}' has no approved revision: an admin must approve one"
                ))
                .into()
            }),
        }
    }

    /// Creates or replaces a hardware tier.
    pub async fn put_tier(
        &self,
        context: &RequestContext,
        name: &str,
        spec: &TierSpec,
        active: bool,
    ) -> StoreResult<HardwareTier> {
        let now = now_millis();
        let spec_json = serde_json::to_string(spec).unwrap_or_default();
        let mut transaction = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE hardware_tiers SET spec = $1, active = $2, updated_at = $3 WHERE name = $4",
        )
        .bind(&spec_json)
        .bind(i64::from(active))
        .bind(now)
        .bind(name)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if updated == 0 {
            sqlx::query(
                "INSERT INTO hardware_tiers (name, spec, active, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(name)
            .bind(&spec_json)
            .bind(i64::from(active))
            .bind(&context.actor)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "tier.put",
                format!("tier:{name}"),
                serde_json::json!({"spec": spec, "active": active, "created": updated == 0}),
            ),
        )
        .await?;
        self.get_tier(name).await
    }

    /// A tier by name.
    pub async fn get_tier(&self, name: &str) -> StoreResult<HardwareTier> {
        let row = sqlx::query(
            "SELECT name, spec, active, created_by, created_at, updated_at FROM hardware_tiers WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| StoreError::from(DomainError::not_found(format!("no hardware tier named '{name}'"))))?;
        tier_from_row(&row)
    }

    /// Every tier, by name.
    pub async fn list_tiers(&self) -> StoreResult<Vec<HardwareTier>> {
        let rows = sqlx::query(
            "SELECT name, spec, active, created_by, created_at, updated_at FROM hardware_tiers ORDER BY name",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(tier_from_row).collect()
    }

    /// The id of a quota scope's user, team or project.
    async fn quota_scope_id(&self, scope: &QuotaScope) -> StoreResult<i64> {
        let sql = match scope {
            QuotaScope::User(_) => "SELECT id FROM users WHERE username = $1",
            QuotaScope::Team(_) => "SELECT id FROM teams WHERE name = $1",
            QuotaScope::Project(_) => "SELECT id FROM projects WHERE name = $1",
        };
        let id: Option<i64> =
            sqlx::query_scalar(sql).bind(scope.name()).fetch_optional(self.reader()).await?;
        id.ok_or_else(|| {
            DomainError::not_found(format!("no {} named '{}'", scope.kind(), scope.name())).into()
        })
    }

    /// Sets (or, with both limits absent, removes) a quota.
    pub async fn set_quota(&self, context: &RequestContext, quota: &Quota) -> StoreResult<()> {
        let scope_id = self.quota_scope_id(&quota.scope).await?;
        let mut transaction = self.begin().await?;
        sqlx::query("DELETE FROM compute_quotas WHERE scope_kind = $1 AND scope_id = $2")
            .bind(quota.scope.kind())
            .bind(scope_id)
            .execute(&mut *transaction)
            .await?;
        if quota.max_jobs.is_some() || quota.max_gpus.is_some() {
            sqlx::query(
                "INSERT INTO compute_quotas (scope_kind, scope_id, max_jobs, max_gpus, updated_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(quota.scope.kind())
            .bind(scope_id)
            .bind(quota.max_jobs)
            .bind(quota.max_gpus)
            .bind(&context.actor)
            .bind(now_millis())
            .execute(&mut *transaction)
            .await?;
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "quota.set",
                format!("{}:{}", quota.scope.kind(), quota.scope.name()),
                serde_json::json!({"max_jobs": quota.max_jobs, "max_gpus": quota.max_gpus}),
            ),
        )
        .await
    }

    /// Every quota.
    pub async fn list_quotas(&self) -> StoreResult<Vec<Quota>> {
        let rows = sqlx::query(
            "SELECT q.scope_kind, q.max_jobs, q.max_gpus, \
             COALESCE(u.username, t.name, p.name) AS scope_name FROM compute_quotas q \
             LEFT JOIN users u ON q.scope_kind = 'user' AND u.id = q.scope_id \
             LEFT JOIN teams t ON q.scope_kind = 'team' AND t.id = q.scope_id \
             LEFT JOIN projects p ON q.scope_kind = 'project' AND p.id = q.scope_id \
             ORDER BY q.scope_kind, scope_name",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("scope_kind")?;
                let name: String = row.try_get("scope_name")?;
                Ok(Quota {
                    scope: QuotaScope::parse(&format!("{kind}:{name}"))?,
                    max_jobs: row.try_get("max_jobs")?,
                    max_gpus: row.try_get("max_gpus")?,
                })
            })
            .collect()
    }
}

fn environment_not_found(name: &str) -> StoreError {
    DomainError::not_found(format!("no environment named '{name}'")).into()
}

async fn insert_revision(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    environment: i64,
    revision: i64,
    definition: &EnvironmentDefinition,
    actor: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO environment_revisions (environment, revision, definition, digest, state, \
         created_by, created_at) VALUES ($1, $2, $3, $4, 'draft', $5, $6)",
    )
    .bind(environment)
    .bind(revision)
    .bind(serde_json::to_string(definition).unwrap_or_default())
    .bind(definition.digest())
    .bind(actor)
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
