//! Project datasets and their immutable versions (manifests and blobs live in the artifact
//! store), retention, soft deletes, and which jobs used which version.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::Job;
use cairn_domain::datasets::{Dataset, DatasetVersion, TableMetadata};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{append, entry};
use crate::compute::unreadable;
use crate::sql::opt_text;
use crate::{Store, StoreError, StoreResult};

/// A version about to be recorded (its files are stored already).
#[derive(Debug, Clone)]
pub struct NewDatasetVersion<'a> {
    /// The project's id.
    pub project_id: i64,
    /// The dataset's name (created on its first version).
    pub name: &'a str,
    /// The manifest digest.
    pub digest: &'a str,
    /// What changed.
    pub message: &'a str,
    /// How many files.
    pub file_count: i64,
    /// Their total size.
    pub total_bytes: i64,
    /// Bytes new to this dataset.
    pub new_bytes: i64,
    /// Rows and schemas of its tables.
    pub tables: &'a [TableMetadata],
}

const DATASET_SELECT: &str = "SELECT d.id, d.name, p.name AS project_name, d.description, d.keep_versions, \
     d.created_by, d.created_at, (SELECT MAX(v.version) FROM project_dataset_versions v \
     WHERE v.dataset = d.id AND v.deleted_at IS NULL) AS latest_version \
     FROM project_datasets d JOIN projects p ON p.id = d.project_id";

const VERSION_SELECT: &str = "SELECT d.name AS dataset_name, v.version, v.digest, v.message, v.file_count, \
     v.total_bytes, v.new_bytes, v.metadata, v.created_by, v.created_at, v.deleted_at, v.deleted_by \
     FROM project_dataset_versions v JOIN project_datasets d ON d.id = v.dataset";

fn dataset_from_row(row: &AnyRow) -> StoreResult<Dataset> {
    Ok(Dataset {
        name: row.try_get("name")?,
        project: row.try_get("project_name")?,
        description: row.try_get("description")?,
        keep_versions: row.try_get("keep_versions")?,
        latest_version: row.try_get("latest_version")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn version_from_row(row: &AnyRow) -> StoreResult<DatasetVersion> {
    let metadata: String = row.try_get("metadata")?;
    Ok(DatasetVersion {
        dataset: row.try_get("dataset_name")?,
        version: row.try_get("version")?,
        digest: row.try_get("digest")?,
        message: row.try_get("message")?,
        file_count: row.try_get("file_count")?,
        total_bytes: row.try_get("total_bytes")?,
        new_bytes: row.try_get("new_bytes")?,
        tables: serde_json::from_str(&metadata)
            .map_err(|error| unreadable("stored dataset metadata is unreadable", error))?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
        deleted_by: opt_text(row, "deleted_by")?,
    })
}

fn dataset_not_found(name: &str) -> StoreError {
    DomainError::not_found(format!("no dataset named '{name}' in this project")).into()
}

impl Store {
    /// The live dataset's id.
    async fn dataset_id(&self, project_id: i64, name: &str) -> StoreResult<i64> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM project_datasets WHERE project_id = $1 AND name = $2 AND deleted_at IS NULL",
        )
        .bind(project_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await?;
        id.ok_or_else(|| dataset_not_found(name))
    }

    /// Records a new version (creating the dataset on its first), then applies the dataset's
    /// retention: live versions beyond the newest `keep_versions` are deleted, each audited.
    pub async fn create_dataset_version(
        &self,
        context: &RequestContext,
        new: &NewDatasetVersion<'_>,
    ) -> StoreResult<DatasetVersion> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let existing: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT id, keep_versions FROM project_datasets WHERE project_id = $1 AND name = $2 AND deleted_at IS NULL",
        )
        .bind(new.project_id)
        .bind(new.name)
        .fetch_optional(&mut *transaction)
        .await?;
        let (dataset, keep) = match existing {
            Some(found) => found,
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO project_datasets (project_id, name, description, created_by, created_at) \
                     VALUES ($1, $2, '', $3, $4) RETURNING id",
                )
                .bind(new.project_id)
                .bind(new.name)
                .bind(&context.actor)
                .bind(now)
                .fetch_one(&mut *transaction)
                .await?;
                (id, None)
            }
        };
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM project_dataset_versions WHERE dataset = $1",
        )
        .bind(dataset)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO project_dataset_versions (dataset, version, digest, message, file_count, total_bytes, \
             new_bytes, metadata, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(dataset)
        .bind(version)
        .bind(new.digest)
        .bind(new.message)
        .bind(new.file_count)
        .bind(new.total_bytes)
        .bind(new.new_bytes)
        .bind(serde_json::to_string(new.tables).unwrap_or_else(|_| "[]".into()))
        .bind(&context.actor)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        append(
            &mut transaction,
            self.dialect,
            context,
            entry(
                "dataset.push",
                format!("dataset:{}/{}@{version}", new.project_id, new.name),
                serde_json::json!({"digest": new.digest, "files": new.file_count, "bytes": new.total_bytes, "new_bytes": new.new_bytes}),
            ),
        )
        .await?;
        if let Some(keep) = keep {
            self.apply_retention(&mut transaction, context, dataset, new.name, keep, now).await?;
        }
        transaction.commit().await?;
        self.dataset_version(new.project_id, new.name, Some(version)).await
    }

    async fn apply_retention(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        context: &RequestContext,
        dataset: i64,
        name: &str,
        keep: i64,
        now: i64,
    ) -> StoreResult<()> {
        let expired: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM project_dataset_versions WHERE dataset = $1 AND deleted_at IS NULL \
             ORDER BY version DESC LIMIT 100000 OFFSET $2",
        )
        .bind(dataset)
        .bind(keep.max(1))
        .fetch_all(&mut **transaction)
        .await?;
        for version in expired {
            sqlx::query(
                "UPDATE project_dataset_versions SET deleted_at = $1, deleted_by = $2 WHERE dataset = $3 AND version = $4",
            )
            .bind(now)
            .bind(&context.actor)
            .bind(dataset)
            .bind(version)
            .execute(&mut **transaction)
            .await?;
            append(
                transaction,
                self.dialect,
                context,
                entry(
                    "dataset.retention",
                    format!("dataset:{dataset}/{name}@{version}"),
                    serde_json::json!({"keep_versions": keep}),
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// Sets a dataset's description and retention (applied at once).
    pub async fn set_dataset_settings(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        description: &str,
        keep_versions: Option<i64>,
    ) -> StoreResult<Dataset> {
        let dataset = self.dataset_id(project_id, name).await?;
        let mut transaction = self.begin().await?;
        sqlx::query(
            "UPDATE project_datasets SET description = $1, keep_versions = $2 WHERE id = $3",
        )
        .bind(description)
        .bind(keep_versions)
        .bind(dataset)
        .execute(&mut *transaction)
        .await?;
        append(
            &mut transaction,
            self.dialect,
            context,
            entry(
                "dataset.settings",
                format!("dataset:{dataset}/{name}"),
                serde_json::json!({"description": description, "keep_versions": keep_versions}),
            ),
        )
        .await?;
        if let Some(keep) = keep_versions {
            self.apply_retention(&mut transaction, context, dataset, name, keep, now_millis())
                .await?;
        }
        transaction.commit().await?;
        self.get_dataset(project_id, name).await
    }

    /// A live dataset.
    pub async fn get_dataset(&self, project_id: i64, name: &str) -> StoreResult<Dataset> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DATASET_SELECT} WHERE d.project_id = $1 AND d.name = $2 AND d.deleted_at IS NULL"
        )))
        .bind(project_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| dataset_not_found(name))?;
        dataset_from_row(&row)
    }

    /// A project's live datasets, by name.
    pub async fn list_datasets(&self, project_id: i64) -> StoreResult<Vec<Dataset>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{DATASET_SELECT} WHERE d.project_id = $1 AND d.deleted_at IS NULL ORDER BY d.name"
        )))
        .bind(project_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(dataset_from_row).collect()
    }

    /// Every version of a live dataset, deleted ones included, newest first.
    pub async fn dataset_versions(
        &self,
        project_id: i64,
        name: &str,
    ) -> StoreResult<Vec<DatasetVersion>> {
        let dataset = self.dataset_id(project_id, name).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{VERSION_SELECT} WHERE v.dataset = $1 ORDER BY v.version DESC"
        )))
        .bind(dataset)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// A live version, or the newest live one.
    pub async fn dataset_version(
        &self,
        project_id: i64,
        name: &str,
        version: Option<i64>,
    ) -> StoreResult<DatasetVersion> {
        let dataset = self.dataset_id(project_id, name).await?;
        let mut sql = crate::sql::Sql::new(VERSION_SELECT);
        sql.push(" WHERE v.dataset = ").bind(dataset).push(" AND v.deleted_at IS NULL");
        if let Some(version) = version {
            sql.push(" AND v.version = ").bind(version);
        }
        sql.push(" ORDER BY v.version DESC LIMIT 1");
        let row =
            sql.query(self.dialect).fetch_optional(self.reader()).await?.ok_or_else(|| {
                StoreError::from(DomainError::not_found(match version {
                    Some(version) => {
                        format!("dataset '{name}' has no version {version} (or it was deleted)")
                    }
                    None => format!("dataset '{name}' has no live version"),
                }))
            })?;
        version_from_row(&row)
    }

    /// The id of a live dataset (for job records).
    pub async fn live_dataset_id(&self, project_id: i64, name: &str) -> StoreResult<i64> {
        self.dataset_id(project_id, name).await
    }

    /// Deletes one version (soft: the record stays, the version can no longer be used).
    pub async fn delete_dataset_version(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
    ) -> StoreResult<()> {
        let dataset = self.dataset_id(project_id, name).await?;
        let mut transaction = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE project_dataset_versions SET deleted_at = $1, deleted_by = $2 \
             WHERE dataset = $3 AND version = $4 AND deleted_at IS NULL",
        )
        .bind(now_millis())
        .bind(&context.actor)
        .bind(dataset)
        .bind(version)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(DomainError::not_found(format!(
                "dataset '{name}' has no live version {version}"
            ))
            .into());
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "dataset.delete_version",
                format!("dataset:{dataset}/{name}@{version}"),
                serde_json::json!({}),
            ),
        )
        .await
    }

    /// Deletes a dataset and its versions (soft); its name is free again.
    pub async fn delete_dataset(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
    ) -> StoreResult<()> {
        let dataset = self.dataset_id(project_id, name).await?;
        let now = now_millis();
        let mut transaction = self.begin().await?;
        sqlx::query("UPDATE project_datasets SET deleted_at = $1 WHERE id = $2")
            .bind(now)
            .bind(dataset)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "UPDATE project_dataset_versions SET deleted_at = $1, deleted_by = $2 WHERE dataset = $3 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(&context.actor)
        .bind(dataset)
        .execute(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            entry("dataset.delete", format!("dataset:{dataset}/{name}"), serde_json::json!({})),
        )
        .await
    }

    /// The jobs that used a dataset version, newest first.
    pub async fn dataset_version_jobs(
        &self,
        project_id: i64,
        name: &str,
        version: i64,
    ) -> StoreResult<Vec<Job>> {
        let dataset = self.dataset_id(project_id, name).await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT job_id FROM job_datasets WHERE dataset = $1 AND version = $2 ORDER BY job_id DESC LIMIT 500",
        )
        .bind(dataset)
        .bind(version)
        .fetch_all(self.reader())
        .await?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            jobs.push(self.get_job(id).await?);
        }
        Ok(jobs)
    }

    /// The dataset versions a job used: (name, version, digest).
    pub async fn job_dataset_versions(
        &self,
        job_id: i64,
    ) -> StoreResult<Vec<(String, i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT d.name, v.version, v.digest FROM job_datasets j \
             JOIN project_datasets d ON d.id = j.dataset \
             JOIN project_dataset_versions v ON v.dataset = j.dataset AND v.version = j.version \
             WHERE j.job_id = $1 ORDER BY d.name",
        )
        .bind(job_id)
        .fetch_all(self.reader())
        .await?)
    }
}
