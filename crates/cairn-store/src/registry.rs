//! The model registry: registered models (unique per project), their versions, tags, stages and
//! aliases. Version numbers come from a per-model counter, so a deleted version's number is
//! never reused.

use std::collections::HashMap;

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{ModelVersion, RegisteredModel, Stage, Tag};
use cairn_domain::search::{Comparator, FilterValue};
use cairn_domain::time::now_millis;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::entry;
use crate::experiments::{push_numeric_comparison, push_string_comparison};
use crate::governance::{move_alias, move_stage};
use crate::sql::Sql;
use crate::{Store, StoreError, StoreResult};

/// What registering a version needs.
#[derive(Debug, Clone, Default)]
pub struct NewModelVersion {
    /// The registered model.
    pub name: String,
    /// Where the files are.
    pub source: String,
    /// The producing run.
    pub run_id: Option<String>,
    /// A link to the run.
    pub run_link: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// Initial tags.
    pub tags: Vec<Tag>,
    /// The MLflow 3 logged model.
    pub model_id: Option<String>,
    /// Who registers it.
    pub user_id: Option<String>,
}

/// A registry search: `key op value` conditions on `name`, `run_id`, `source_path`,
/// `version_number` or `tags.<key>`, and order keys with direction.
#[derive(Debug, Clone, Default)]
pub struct RegistrySearch {
    /// The project searched.
    pub project_id: i64,
    /// Conditions.
    pub filter: Vec<(String, Comparator, FilterValue)>,
    /// Order keys (`name`, `version_number`, `creation_timestamp`, `last_updated_timestamp`).
    pub order_by: Vec<(String, bool)>,
    /// Page size.
    pub max_results: i64,
    /// Rows to skip.
    pub offset: u64,
}

/// The special tag that marks prompts; `!= 'true'` also matches models without it.
const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

fn model_not_found(name: &str) -> StoreError {
    DomainError::not_found(format!("Registered Model with name={name} not found")).into()
}

fn version_not_found(name: &str, version: i64) -> StoreError {
    DomainError::not_found(format!("Model Version (name={name}, version={version}) not found"))
        .into()
}

pub(crate) async fn model_id(
    transaction: &mut Transaction<'static, Any>,
    project_id: i64,
    name: &str,
) -> StoreResult<i64> {
    let id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM registered_models WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(name)
            .fetch_optional(&mut **transaction)
            .await?;
    id.ok_or_else(|| model_not_found(name))
}

pub(crate) async fn require_version(
    transaction: &mut Transaction<'static, Any>,
    model: i64,
    name: &str,
    version: i64,
) -> StoreResult<()> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT version FROM model_versions WHERE model = $1 AND version = $2")
            .bind(model)
            .bind(version)
            .fetch_optional(&mut **transaction)
            .await?;
    found.map(|_| ()).ok_or_else(|| version_not_found(name, version))
}

pub(crate) async fn touch(
    transaction: &mut Transaction<'static, Any>,
    model: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE registered_models SET last_updated_timestamp = $1 WHERE id = $2")
        .bind(now_millis())
        .bind(model)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

fn version_from_row(row: &AnyRow) -> StoreResult<ModelVersion> {
    Ok(ModelVersion {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        creation_timestamp: row.try_get("creation_timestamp")?,
        last_updated_timestamp: row.try_get("last_updated_timestamp")?,
        user_id: row.try_get("user_id")?,
        current_stage: Stage::parse(&row.try_get::<String, _>("current_stage")?)?,
        description: row.try_get("description")?,
        source: row.try_get("source")?,
        run_id: row.try_get("run_id")?,
        run_link: row.try_get("run_link")?,
        model_id: row.try_get("logged_model_id")?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

const VERSION_SELECT: &str = "SELECT v.model, m.name, v.version, v.creation_timestamp, v.last_updated_timestamp, v.user_id, \
     v.current_stage, v.description, v.source, v.run_id, v.run_link, v.logged_model_id \
     FROM model_versions v JOIN registered_models m ON m.id = v.model";

impl Store {
    /// Creates a registered model in a project.
    pub async fn create_registered_model(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        description: Option<&str>,
        tags: &[Tag],
    ) -> StoreResult<RegisteredModel> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query_scalar(
            "INSERT INTO registered_models (project_id, name, description, user_id, creation_timestamp, last_updated_timestamp) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(project_id)
        .bind(name)
        .bind(description)
        .bind(context.principal.as_ref().map(|p| p.username.clone()))
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let model: i64 = match inserted {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "Registered Model (name={name}) already exists."
                ))
                .into());
            }
            other => other?,
        };
        for tag in tags {
            upsert_tag(&mut transaction, "registered_model_tags", model, None, tag).await?;
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "registered_model.create",
                format!("registered_model:{name}"),
                serde_json::json!({"project_id": project_id}),
            ),
        )
        .await?;
        self.get_registered_model(project_id, name).await
    }

    /// Loads a registered model with its latest version per stage, tags and aliases.
    pub async fn get_registered_model(
        &self,
        project_id: i64,
        name: &str,
    ) -> StoreResult<RegisteredModel> {
        let row = sqlx::query(
            "SELECT id, name, description, user_id, creation_timestamp, last_updated_timestamp FROM registered_models \
             WHERE project_id = $1 AND name = $2",
        )
        .bind(project_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| model_not_found(name))?;
        let mut models = self.assemble_models(vec![row]).await?;
        models.pop().ok_or_else(|| model_not_found(name))
    }

    async fn assemble_models(&self, rows: Vec<AnyRow>) -> StoreResult<Vec<RegisteredModel>> {
        let mut ids = Vec::with_capacity(rows.len());
        let mut models = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.try_get::<i64, _>("id")?);
            models.push(RegisteredModel {
                name: row.try_get("name")?,
                creation_timestamp: row.try_get("creation_timestamp")?,
                last_updated_timestamp: row.try_get("last_updated_timestamp")?,
                user_id: row.try_get("user_id")?,
                description: row.try_get("description")?,
                latest_versions: Vec::new(),
                tags: Vec::new(),
                aliases: Vec::new(),
            });
        }
        if ids.is_empty() {
            return Ok(models);
        }
        let position: HashMap<i64, usize> =
            ids.iter().enumerate().map(|(index, id)| (*id, index)).collect();
        let mut tags =
            Sql::new("SELECT model, key, value FROM registered_model_tags WHERE model IN ");
        tags.bind_list(ids.iter().copied()).push(" ORDER BY key");
        for row in tags.query(self.dialect).fetch_all(self.reader()).await? {
            if let Some(index) = position.get(&row.try_get::<i64, _>("model")?) {
                models[*index]
                    .tags
                    .push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
            }
        }
        let mut aliases =
            Sql::new("SELECT model, alias, version FROM registered_model_aliases WHERE model IN ");
        aliases.bind_list(ids.iter().copied()).push(" ORDER BY alias");
        for row in aliases.query(self.dialect).fetch_all(self.reader()).await? {
            if let Some(index) = position.get(&row.try_get::<i64, _>("model")?) {
                models[*index].aliases.push((row.try_get("alias")?, row.try_get("version")?));
            }
        }
        // The latest version of each stage: the highest version number in that stage.
        let mut latest = Sql::new(VERSION_SELECT);
        latest
            .push(
                " JOIN (SELECT model AS latest_model, MAX(version) AS latest_version FROM model_versions \
                 WHERE model IN ",
            )
            .bind_list(ids.iter().copied())
            .push(
                " GROUP BY model, current_stage) l ON l.latest_model = v.model \
                 AND l.latest_version = v.version ORDER BY v.version",
            );
        let mut versions = self.fetch_versions(latest).await?;
        self.attach_version_details(&mut versions).await?;
        for (model, version) in versions {
            if let Some(index) = position.get(&model) {
                models[*index].latest_versions.push(version);
            }
        }
        Ok(models)
    }

    /// Renames a registered model.
    pub async fn rename_registered_model(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        new_name: &str,
    ) -> StoreResult<RegisteredModel> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        let renamed = sqlx::query(
            "UPDATE registered_models SET name = $1, last_updated_timestamp = $2 WHERE id = $3",
        )
        .bind(new_name)
        .bind(now_millis())
        .bind(model)
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::from);
        match renamed {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "Registered Model (name={new_name}) already exists."
                ))
                .into());
            }
            other => other?,
        };
        self.commit_audited(
            transaction,
            context,
            entry(
                "registered_model.rename",
                format!("registered_model:{name}"),
                serde_json::json!({"new_name": new_name}),
            ),
        )
        .await?;
        self.get_registered_model(project_id, new_name).await
    }

    /// Updates a registered model's description.
    pub async fn update_registered_model(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        description: &str,
    ) -> StoreResult<RegisteredModel> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        sqlx::query("UPDATE registered_models SET description = $1, last_updated_timestamp = $2 WHERE id = $3")
            .bind(description)
            .bind(now_millis())
            .bind(model)
            .execute(&mut *transaction)
            .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "registered_model.update",
                format!("registered_model:{name}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        self.get_registered_model(project_id, name).await
    }

    /// Deletes a registered model with its versions, tags and aliases.
    pub async fn delete_registered_model(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        for table in [
            "model_version_tags",
            "model_versions",
            "registered_model_tags",
            "registered_model_aliases",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE model = $1")))
                .bind(model)
                .execute(&mut *transaction)
                .await?;
        }
        sqlx::query("DELETE FROM registered_models WHERE id = $1")
            .bind(model)
            .execute(&mut *transaction)
            .await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "registered_model.delete",
                format!("registered_model:{name}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Sets or deletes (`value: None`) a registered-model tag.
    pub async fn set_registered_model_tag(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        key: &str,
        value: Option<&str>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        match value {
            Some(value) => {
                upsert_tag(
                    &mut transaction,
                    "registered_model_tags",
                    model,
                    None,
                    &Tag { key: key.into(), value: value.into() },
                )
                .await?
            }
            None => {
                sqlx::query("DELETE FROM registered_model_tags WHERE model = $1 AND key = $2")
                    .bind(model)
                    .bind(key)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        touch(&mut transaction, model).await?;
        let action = if value.is_some() {
            "registered_model.tag.set"
        } else {
            "registered_model.tag.delete"
        };
        self.commit_audited(
            transaction,
            context,
            entry(action, format!("registered_model:{name}"), serde_json::json!({"key": key})),
        )
        .await?;
        Ok(())
    }

    /// Registers a new version (status READY), numbered after every version ever created.
    pub async fn create_model_version(
        &self,
        context: &RequestContext,
        project_id: i64,
        new_version: &NewModelVersion,
    ) -> StoreResult<ModelVersion> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, &new_version.name).await?;
        let version: i64 = sqlx::query_scalar(
            "UPDATE registered_models SET last_version = last_version + 1, last_updated_timestamp = $1 WHERE id = $2 RETURNING last_version",
        )
        .bind(now)
        .bind(model)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO model_versions (model, version, creation_timestamp, last_updated_timestamp, user_id, current_stage, \
             description, source, run_id, run_link, logged_model_id) VALUES ($1, $2, $3, $3, $4, 'None', $5, $6, $7, $8, $9)",
        )
        .bind(model)
        .bind(version)
        .bind(now)
        .bind(new_version.user_id.clone())
        .bind(new_version.description.clone())
        .bind(&new_version.source)
        .bind(new_version.run_id.clone())
        .bind(new_version.run_link.clone())
        .bind(new_version.model_id.clone())
        .execute(&mut *transaction)
        .await?;
        for tag in &new_version.tags {
            upsert_tag(&mut transaction, "model_version_tags", model, Some(version), tag).await?;
        }
        let details = serde_json::json!({"version": version, "source": new_version.source, "run_id": new_version.run_id});
        self.commit_audited(
            transaction,
            context,
            entry(
                "model_version.create",
                format!("registered_model:{}", new_version.name),
                details,
            ),
        )
        .await?;
        self.get_model_version(project_id, &new_version.name, version).await
    }

    /// Loads one version.
    pub async fn get_model_version(
        &self,
        project_id: i64,
        name: &str,
        version: i64,
    ) -> StoreResult<ModelVersion> {
        let mut sql = Sql::new(VERSION_SELECT);
        sql.push(" WHERE m.project_id = ")
            .bind(project_id)
            .push(" AND m.name = ")
            .bind(name)
            .push(" AND v.version = ")
            .bind(version);
        let mut versions = self.fetch_versions(sql).await?;
        self.attach_version_details(&mut versions).await?;
        versions.pop().map(|(_, version)| version).ok_or_else(|| version_not_found(name, version))
    }

    async fn attach_version_details(
        &self,
        versions: &mut [(i64, ModelVersion)],
    ) -> StoreResult<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let models: Vec<i64> = versions.iter().map(|(model, _)| *model).collect();
        let index: HashMap<(i64, i64), usize> =
            versions.iter().enumerate().map(|(i, (model, v))| ((*model, v.version), i)).collect();
        let mut numbers: Vec<i64> = versions.iter().map(|(_, v)| v.version).collect();
        numbers.sort_unstable();
        numbers.dedup();
        // Only the listed versions' tags (a superset when models share version numbers).
        let mut tags =
            Sql::new("SELECT model, version, key, value FROM model_version_tags WHERE model IN ");
        tags.bind_list(models.iter().copied())
            .push(" AND version IN ")
            .bind_list(numbers.iter().copied())
            .push(" ORDER BY key");
        for row in tags.query(self.dialect).fetch_all(self.reader()).await? {
            let key = (row.try_get::<i64, _>("model")?, row.try_get::<i64, _>("version")?);
            if let Some(i) = index.get(&key) {
                versions[*i]
                    .1
                    .tags
                    .push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
            }
        }
        let mut aliases =
            Sql::new("SELECT model, version, alias FROM registered_model_aliases WHERE model IN ");
        aliases.bind_list(models.iter().copied()).push(" ORDER BY alias");
        for row in aliases.query(self.dialect).fetch_all(self.reader()).await? {
            let key = (row.try_get::<i64, _>("model")?, row.try_get::<i64, _>("version")?);
            if let Some(i) = index.get(&key) {
                versions[*i].1.aliases.push(row.try_get("alias")?);
            }
        }
        Ok(())
    }

    async fn fetch_versions(&self, sql: Sql) -> StoreResult<Vec<(i64, ModelVersion)>> {
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<i64, _>("model")?, version_from_row(row)?)))
            .collect()
    }

    /// Changes a version's description.
    pub async fn update_model_version(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
        description: Option<&str>,
    ) -> StoreResult<ModelVersion> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        require_version(&mut transaction, model, name, version).await?;
        if let Some(description) = description {
            sqlx::query("UPDATE model_versions SET description = $1, last_updated_timestamp = $2 WHERE model = $3 AND version = $4")
                .bind(description)
                .bind(now_millis())
                .bind(model)
                .bind(version)
                .execute(&mut *transaction)
                .await?;
        }
        self.commit_audited(
            transaction,
            context,
            entry(
                "model_version.update",
                format!("registered_model:{name}"),
                serde_json::json!({"version": version}),
            ),
        )
        .await?;
        self.get_model_version(project_id, name, version).await
    }

    /// Deletes a version (its number is never reused) and the aliases pointing at it.
    pub async fn delete_model_version(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        require_version(&mut transaction, model, name, version).await?;
        for table in ["model_version_tags", "registered_model_aliases", "model_versions"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE model = $1 AND version = $2"
            )))
            .bind(model)
            .bind(version)
            .execute(&mut *transaction)
            .await?;
        }
        touch(&mut transaction, model).await?;
        self.commit_audited(
            transaction,
            context,
            entry(
                "model_version.delete",
                format!("registered_model:{name}"),
                serde_json::json!({"version": version}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Moves a version to a stage, optionally archiving the other versions in that stage.
    pub async fn transition_stage(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> StoreResult<ModelVersion> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        move_stage(
            &mut transaction,
            model,
            name,
            version,
            stage,
            archive_existing,
            &context.actor,
            None,
        )
        .await?;
        let details = serde_json::json!({"version": version, "stage": stage.as_str(), "archive_existing_versions": archive_existing});
        self.commit_audited(
            transaction,
            context,
            entry("model_version.stage", format!("registered_model:{name}"), details),
        )
        .await?;
        self.get_model_version(project_id, name, version).await
    }

    /// Sets or deletes (`value: None`) a version tag.
    pub async fn set_model_version_tag(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        version: i64,
        key: &str,
        value: Option<&str>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        require_version(&mut transaction, model, name, version).await?;
        match value {
            Some(value) => {
                upsert_tag(
                    &mut transaction,
                    "model_version_tags",
                    model,
                    Some(version),
                    &Tag { key: key.into(), value: value.into() },
                )
                .await?
            }
            None => {
                sqlx::query(
                    "DELETE FROM model_version_tags WHERE model = $1 AND version = $2 AND key = $3",
                )
                .bind(model)
                .bind(version)
                .bind(key)
                .execute(&mut *transaction)
                .await?;
            }
        }
        let action =
            if value.is_some() { "model_version.tag.set" } else { "model_version.tag.delete" };
        self.commit_audited(
            transaction,
            context,
            entry(
                action,
                format!("registered_model:{name}"),
                serde_json::json!({"version": version, "key": key}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Points `alias` at `version` (or removes it with `None`).
    pub async fn set_alias(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        alias: &str,
        version: Option<i64>,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let model = model_id(&mut transaction, project_id, name).await?;
        move_alias(&mut transaction, model, name, alias, version, &context.actor, None).await?;
        let action = if version.is_some() {
            "registered_model.alias.set"
        } else {
            "registered_model.alias.delete"
        };
        self.commit_audited(
            transaction,
            context,
            entry(
                action,
                format!("registered_model:{name}"),
                serde_json::json!({"alias": alias, "version": version}),
            ),
        )
        .await?;
        Ok(())
    }

    /// The version an alias points at.
    pub async fn version_by_alias(
        &self,
        project_id: i64,
        name: &str,
        alias: &str,
    ) -> StoreResult<ModelVersion> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT a.version FROM registered_model_aliases a JOIN registered_models m ON m.id = a.model \
             WHERE m.project_id = $1 AND m.name = $2 AND a.alias = $3",
        )
        .bind(project_id)
        .bind(name)
        .bind(alias)
        .fetch_optional(self.reader())
        .await?;
        match version {
            Some(version) => self.get_model_version(project_id, name, version).await,
            None => {
                self.get_registered_model(project_id, name).await?;
                Err(DomainError::invalid(format!("Registered model alias {alias} not found."))
                    .into())
            }
        }
    }

    /// The latest version of each requested stage (all stages when `stages` is empty).
    pub async fn latest_versions(
        &self,
        project_id: i64,
        name: &str,
        stages: &[Stage],
    ) -> StoreResult<Vec<ModelVersion>> {
        let model = self.get_registered_model(project_id, name).await?;
        Ok(model
            .latest_versions
            .into_iter()
            .filter(|version| stages.is_empty() || stages.contains(&version.current_stage))
            .collect())
    }

    /// Searches registered models of a project.
    pub async fn search_registered_models(
        &self,
        search: &RegistrySearch,
    ) -> StoreResult<(Vec<RegisteredModel>, bool)> {
        let mut sql = Sql::new(
            "SELECT m.id, m.name, m.description, m.user_id, m.creation_timestamp, m.last_updated_timestamp \
             FROM registered_models m WHERE m.project_id = ",
        );
        sql.bind(search.project_id);
        for (key, comparator, value) in &search.filter {
            sql.push(" AND ");
            push_registry_condition(&mut sql, key, *comparator, value, false)?;
        }
        sql.push(" ORDER BY ");
        for (key, ascending) in &search.order_by {
            let column = match key.as_str() {
                "name" => "m.name",
                "timestamp" | "last_updated_timestamp" => "m.last_updated_timestamp",
                "creation_timestamp" => "m.creation_timestamp",
                other => {
                    return Err(DomainError::invalid(format!(
                        "Invalid order by key '{other}' specified."
                    ))
                    .into());
                }
            };
            sql.push(column).push(if *ascending { " ASC, " } else { " DESC, " });
        }
        sql.push("m.name ASC LIMIT ")
            .bind(search.max_results + 1)
            .push(" OFFSET ")
            .bind(i64::try_from(search.offset).unwrap_or(i64::MAX));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let has_more = rows.len() as i64 > search.max_results;
        let rows: Vec<AnyRow> = rows
            .into_iter()
            .take(usize::try_from(search.max_results).unwrap_or(usize::MAX))
            .collect();
        Ok((self.assemble_models(rows).await?, has_more))
    }

    /// Searches model versions of a project.
    pub async fn search_model_versions(
        &self,
        search: &RegistrySearch,
    ) -> StoreResult<(Vec<ModelVersion>, bool)> {
        let mut sql = Sql::new(VERSION_SELECT);
        sql.push(" WHERE m.project_id = ").bind(search.project_id);
        for (key, comparator, value) in &search.filter {
            sql.push(" AND ");
            push_registry_condition(&mut sql, key, *comparator, value, true)?;
        }
        sql.push(" ORDER BY ");
        for (key, ascending) in &search.order_by {
            let column = match key.as_str() {
                "name" => "m.name",
                "version_number" => "v.version",
                "creation_timestamp" => "v.creation_timestamp",
                "last_updated_timestamp" | "timestamp" => "v.last_updated_timestamp",
                other => {
                    return Err(DomainError::invalid(format!(
                        "Invalid order by key '{other}' specified."
                    ))
                    .into());
                }
            };
            sql.push(column).push(if *ascending { " ASC, " } else { " DESC, " });
        }
        sql.push("m.name ASC, v.version DESC LIMIT ")
            .bind(search.max_results + 1)
            .push(" OFFSET ")
            .bind(i64::try_from(search.offset).unwrap_or(i64::MAX));
        let mut versions = self.fetch_versions(sql).await?;
        let has_more = versions.len() as i64 > search.max_results;
        versions.truncate(usize::try_from(search.max_results).unwrap_or(usize::MAX));
        self.attach_version_details(&mut versions).await?;
        Ok((versions.into_iter().map(|(_, version)| version).collect(), has_more))
    }
}

fn push_registry_condition(
    sql: &mut Sql,
    key: &str,
    comparator: Comparator,
    value: &FilterValue,
    versions: bool,
) -> StoreResult<()> {
    if let Some(tag) = key.strip_prefix("tags.").or_else(|| key.strip_prefix("tag.")) {
        let table = if versions {
            "model_version_tags t WHERE t.model = v.model AND t.version = v.version"
        } else {
            "registered_model_tags t WHERE t.model = m.id"
        };
        // "Not a prompt" also matches models that carry no prompt tag at all.
        let prompt_negation = tag == PROMPT_TAG
            && ((comparator == Comparator::Ne && value == &FilterValue::Str("true".into()))
                || (comparator == Comparator::Eq && value == &FilterValue::Str("false".into())));
        if prompt_negation {
            sql.push("NOT EXISTS (SELECT 1 FROM ")
                .push(table)
                .push(" AND t.key = ")
                .bind(tag)
                .push(" AND t.value = 'true')");
            return Ok(());
        }
        // An IN over the tag table lets the planner start from the (key, value) index when the
        // tag is selective instead of probing every version.
        let (column, subquery) = if versions {
            ("(v.model, v.version)", "SELECT t.model, t.version FROM model_version_tags t")
        } else {
            ("m.id", "SELECT t.model FROM registered_model_tags t")
        };
        sql.push(column)
            .push(" IN (")
            .push(subquery)
            .push(" WHERE t.key = ")
            .bind(tag)
            .push(" AND ");
        push_string_comparison(sql, "t.value", comparator, value)?;
        sql.push(")");
        return Ok(());
    }
    match (key, versions) {
        ("name", _) => push_string_comparison(sql, "m.name", comparator, value),
        ("run_id", true) => push_string_comparison(sql, "v.run_id", comparator, value),
        ("source_path", true) => push_string_comparison(sql, "v.source", comparator, value),
        ("version_number", true) => push_numeric_comparison(sql, "v.version", comparator, value),
        (other, false) => Err(DomainError::invalid(format!("Invalid attribute key '{other}' specified. Valid keys are '{{'name'}}'")).into()),
        (other, true) => Err(DomainError::invalid(format!(
            "Invalid attribute key '{other}' specified. Valid keys are '{{'name', 'run_id', 'source_path', 'version_number'}}'"
        ))
        .into()),
    }
}

async fn upsert_tag(
    transaction: &mut Transaction<'static, Any>,
    table: &str,
    model: i64,
    version: Option<i64>,
    tag: &Tag,
) -> StoreResult<()> {
    match version {
        Some(version) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (model, version, key, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (model, version, key) DO UPDATE SET value = excluded.value"
            )))
            .bind(model)
            .bind(version)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut **transaction)
            .await?;
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (model, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model, key) DO UPDATE SET value = excluded.value"
            )))
            .bind(model)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut **transaction)
            .await?;
        }
    }
    Ok(())
}
