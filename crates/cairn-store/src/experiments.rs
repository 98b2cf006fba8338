//! Experiments: create, read, rename, tag, soft-delete/restore and search.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{Experiment, LifecycleStage, Tag, ViewType};
use cairn_domain::ids::ExperimentId;
use cairn_domain::search::{
    Comparator, ExperimentComparison, ExperimentKey, ExperimentOrderBy, FilterValue,
};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::{Store, StoreError, StoreResult};

const EXPERIMENT_COLUMNS: &str = "experiment_id, project_id, name, artifact_location, lifecycle_stage, \
     creation_time, last_update_time";

/// A parsed experiment search.
#[derive(Debug, Clone, Default)]
pub struct ExperimentSearch {
    /// The project searched (all projects when absent).
    pub project_id: Option<i64>,
    /// Conditions, all of which must hold.
    pub filter: Vec<ExperimentComparison>,
    /// Ordering keys, before the implicit tie-breakers.
    pub order_by: Vec<ExperimentOrderBy>,
    /// Which lifecycle stages to include.
    pub view_type: ViewType,
    /// Page size.
    pub max_results: i64,
    /// Rows to skip (from the page token).
    pub offset: u64,
}

fn experiment_from_row(row: &AnyRow) -> sqlx::Result<Experiment> {
    Ok(Experiment {
        experiment_id: ExperimentId(row.try_get("experiment_id")?),
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        artifact_location: row.try_get("artifact_location")?,
        lifecycle_stage: LifecycleStage::from_stored(&row.try_get::<String, _>("lifecycle_stage")?),
        creation_time: row.try_get("creation_time")?,
        last_update_time: row.try_get("last_update_time")?,
        tags: Vec::new(),
    })
}

pub(crate) fn experiment_not_found(experiment_id: ExperimentId) -> StoreError {
    DomainError::not_found(format!("No Experiment with id={experiment_id} exists")).into()
}

impl Store {
    /// Creates an experiment; without an artifact location it gets `mlflow-artifacts:/<id>`.
    pub async fn create_experiment(
        &self,
        context: &RequestContext,
        project_id: i64,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> StoreResult<ExperimentId> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO experiments (project_id, name, artifact_location, lifecycle_stage, creation_time, \
             last_update_time) VALUES ($1, $2, $3, 'active', $4, $4) RETURNING experiment_id",
        )
        .bind(project_id)
        .bind(name)
        .bind(artifact_location.unwrap_or(""))
        .bind(now)
        .fetch_one(&mut *transaction)
        .await
        .map_err(StoreError::from);
        let row = match inserted {
            Ok(row) => row,
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "Experiment(name={name}) already exists."
                ))
                .into());
            }
            Err(error) => return Err(error),
        };
        let experiment_id = ExperimentId(row.try_get("experiment_id")?);
        if artifact_location.is_none_or(str::is_empty) {
            sqlx::query("UPDATE experiments SET artifact_location = $1 WHERE experiment_id = $2")
                .bind(format!("mlflow-artifacts:/{experiment_id}"))
                .bind(experiment_id.0)
                .execute(&mut *transaction)
                .await?;
        }
        for tag in tags {
            upsert_experiment_tag(&mut transaction, experiment_id, tag).await?;
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "experiment.create",
                format!("experiment:{experiment_id}"),
                serde_json::json!({"name": name, "artifact_location": artifact_location}),
            ),
        )
        .await?;
        Ok(experiment_id)
    }

    /// Loads an experiment with its tags.
    pub async fn get_experiment(&self, experiment_id: ExperimentId) -> StoreResult<Experiment> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = $1"
        )))
        .bind(experiment_id.0)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| experiment_not_found(experiment_id))?;
        let mut experiments = vec![experiment_from_row(&row)?];
        self.attach_experiment_tags(&mut experiments).await?;
        Ok(experiments.remove(0))
    }

    /// Loads an experiment by its unique name (active or deleted).
    pub async fn get_experiment_by_name(
        &self,
        project_id: i64,
        name: &str,
    ) -> StoreResult<Experiment> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE project_id = $1 AND name = $2"
        )))
        .bind(project_id)
        .bind(name)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| {
            DomainError::not_found(format!("Could not find experiment with name '{name}'"))
        })?;
        let mut experiments = vec![experiment_from_row(&row)?];
        self.attach_experiment_tags(&mut experiments).await?;
        Ok(experiments.remove(0))
    }

    /// Soft-deletes an experiment and its runs.
    pub async fn delete_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
    ) -> StoreResult<()> {
        self.set_experiment_stage(context, experiment_id, LifecycleStage::Deleted).await
    }

    /// Restores a deleted experiment and the runs deleted with it.
    pub async fn restore_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
    ) -> StoreResult<()> {
        self.set_experiment_stage(context, experiment_id, LifecycleStage::Active).await
    }

    async fn set_experiment_stage(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        target: LifecycleStage,
    ) -> StoreResult<()> {
        let now = now_millis();
        let mut transaction = self.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1")
                .bind(experiment_id.0)
                .fetch_optional(&mut *transaction)
                .await?;
        let current = current.ok_or_else(|| experiment_not_found(experiment_id))?;
        if target == LifecycleStage::Active && current != "deleted" {
            return Err(DomainError::invalid(format!(
                "Cannot restore an active experiment. Experiment ID: {experiment_id}"
            ))
            .into());
        }
        if target == LifecycleStage::Deleted && experiment_id == ExperimentId::DEFAULT {
            return Err(DomainError::invalid("Cannot delete the default experiment '0'. This is an internally reserved experiment.").into());
        }
        sqlx::query(
            "UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3",
        )
        .bind(target.as_str())
        .bind(now)
        .bind(experiment_id.0)
        .execute(&mut *transaction)
        .await?;
        let (from, deleted_time) = match target {
            LifecycleStage::Deleted => ("active", Some(now)),
            LifecycleStage::Active => ("deleted", None),
        };
        sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 \
             WHERE experiment_id = $3 AND lifecycle_stage = $4",
        )
        .bind(target.as_str())
        .bind(deleted_time)
        .bind(experiment_id.0)
        .bind(from)
        .execute(&mut *transaction)
        .await?;
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                if target == LifecycleStage::Deleted {
                    "experiment.delete"
                } else {
                    "experiment.restore"
                },
                format!("experiment:{experiment_id}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Renames an active experiment.
    pub async fn rename_experiment(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        new_name: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT lifecycle_stage FROM experiments WHERE experiment_id = $1")
                .bind(experiment_id.0)
                .fetch_optional(&mut *transaction)
                .await?;
        if current.ok_or_else(|| experiment_not_found(experiment_id))? != "active" {
            return Err(DomainError::invalid("Cannot rename a non-active experiment.").into());
        }
        let updated = sqlx::query(
            "UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3",
        )
        .bind(new_name)
        .bind(now_millis())
        .bind(experiment_id.0)
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::from);
        match updated {
            Err(error) if error.is_unique_violation() => {
                return Err(DomainError::already_exists(format!(
                    "Experiment(name={new_name}) already exists."
                ))
                .into());
            }
            other => other?,
        };
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "experiment.rename",
                format!("experiment:{experiment_id}"),
                serde_json::json!({"new_name": new_name}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Sets (or overwrites) a tag on an active experiment.
    pub async fn set_experiment_tag(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        tag: &Tag,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_active_experiment(&mut transaction, experiment_id).await?;
        upsert_experiment_tag(&mut transaction, experiment_id, tag).await?;
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "experiment.tag.set",
                format!("experiment:{experiment_id}"),
                serde_json::json!({"key": tag.key, "value": tag.value}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Deletes a tag of an active experiment.
    pub async fn delete_experiment_tag(
        &self,
        context: &RequestContext,
        experiment_id: ExperimentId,
        key: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_active_experiment(&mut transaction, experiment_id).await?;
        let deleted =
            sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
                .bind(experiment_id.0)
                .bind(key)
                .execute(&mut *transaction)
                .await?;
        if deleted.rows_affected() == 0 {
            return Err(DomainError::not_found(format!(
                "No tag with name: {key} in experiment with id {experiment_id}"
            ))
            .into());
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "experiment.tag.delete",
                format!("experiment:{experiment_id}"),
                serde_json::json!({"key": key}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Searches experiments; returns one page and whether more rows follow.
    pub async fn search_experiments(
        &self,
        search: &ExperimentSearch,
    ) -> StoreResult<(Vec<Experiment>, bool)> {
        let mut sql = Sql::new("SELECT ");
        sql.push(EXPERIMENT_COLUMNS).push(" FROM experiments e WHERE ");
        push_view_type(&mut sql, search.view_type, "e.lifecycle_stage");
        if let Some(project_id) = search.project_id {
            sql.push(" AND e.project_id = ").bind(project_id);
        }
        for comparison in &search.filter {
            sql.push(" AND ");
            push_experiment_condition(&mut sql, comparison)?;
        }
        sql.push(" ORDER BY ");
        let mut has_id = false;
        for order in &search.order_by {
            let column = match order.key {
                ExperimentKey::Name => "e.name",
                ExperimentKey::ExperimentId => {
                    has_id = true;
                    "e.experiment_id"
                }
                ExperimentKey::CreationTime => "e.creation_time",
                ExperimentKey::LastUpdateTime => "e.last_update_time",
                ExperimentKey::Tag(_) => {
                    return Err(DomainError::invalid("Invalid order_by entity: tag").into());
                }
            };
            sql.push(column).push(if order.ascending { " ASC, " } else { " DESC, " });
        }
        if search.order_by.is_empty() {
            sql.push("e.creation_time DESC, e.experiment_id ASC");
        } else if has_id {
            sql.text.truncate(sql.text.len() - 2);
        } else {
            sql.push("e.experiment_id DESC");
        }
        sql.push(" LIMIT ").bind(search.max_results + 1);
        sql.push(" OFFSET ").bind(i64::try_from(search.offset).unwrap_or(i64::MAX));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut experiments =
            rows.iter().map(experiment_from_row).collect::<sqlx::Result<Vec<_>>>()?;
        let has_more = experiments.len() as i64 > search.max_results;
        experiments.truncate(usize::try_from(search.max_results).unwrap_or(usize::MAX));
        self.attach_experiment_tags(&mut experiments).await?;
        Ok((experiments, has_more))
    }

    async fn attach_experiment_tags(&self, experiments: &mut [Experiment]) -> StoreResult<()> {
        if experiments.is_empty() {
            return Ok(());
        }
        let mut sql = Sql::new(
            "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ",
        );
        sql.bind_list(experiments.iter().map(|e| e.experiment_id.0));
        sql.push(" ORDER BY key");
        for row in sql.query(self.dialect).fetch_all(self.reader()).await? {
            let id: i64 = row.try_get("experiment_id")?;
            if let Some(experiment) = experiments.iter_mut().find(|e| e.experiment_id.0 == id) {
                experiment
                    .tags
                    .push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
            }
        }
        Ok(())
    }
}

pub(crate) fn push_view_type(sql: &mut Sql, view_type: ViewType, column: &str) {
    match view_type {
        ViewType::ActiveOnly => sql.push(column).push(" = 'active'"),
        ViewType::DeletedOnly => sql.push(column).push(" = 'deleted'"),
        ViewType::All => sql.push("1 = 1"),
    };
}

/// Appends `column <op> value` for a string comparison (=, !=, LIKE, ILIKE, IN, NOT IN).
pub(crate) fn push_string_comparison(
    sql: &mut Sql,
    column: &str,
    comparator: Comparator,
    value: &FilterValue,
) -> StoreResult<()> {
    match (comparator, value) {
        (Comparator::Eq, FilterValue::Str(text)) => sql.push(column).push(" = ").bind(text),
        (Comparator::Ne, FilterValue::Str(text)) => sql.push(column).push(" != ").bind(text),
        (Comparator::Like, FilterValue::Str(text)) => sql.push(column).push(" LIKE ").bind(text),
        (Comparator::ILike, FilterValue::Str(text)) => {
            sql.push("LOWER(").push(column).push(") LIKE LOWER(").bind(text).push(")")
        }
        (Comparator::In, FilterValue::List(items)) => {
            sql.push(column).push(" IN ").bind_list(items.iter().cloned())
        }
        (Comparator::NotIn, FilterValue::List(items)) => {
            sql.push(column).push(" NOT IN ").bind_list(items.iter().cloned())
        }
        _ => return Err(unsupported_comparison(comparator)),
    };
    Ok(())
}

/// Appends `column <op> number` for a numeric comparison.
pub(crate) fn push_numeric_comparison(
    sql: &mut Sql,
    column: &str,
    comparator: Comparator,
    value: &FilterValue,
) -> StoreResult<()> {
    let number = match value {
        FilterValue::Num(number) => *number,
        FilterValue::Str(text) => text.trim().parse::<f64>().map_err(|_| {
            StoreError::from(DomainError::invalid(format!("Expected numeric value, got '{text}'")))
        })?,
        _ => return Err(unsupported_comparison(comparator)),
    };
    let operator =
        numeric_operator(comparator).ok_or_else(|| unsupported_comparison(comparator))?;
    sql.push(column).push(operator).bind(number);
    Ok(())
}

pub(crate) fn numeric_operator(comparator: Comparator) -> Option<&'static str> {
    Some(match comparator {
        Comparator::Eq => " = ",
        Comparator::Ne => " != ",
        Comparator::Gt => " > ",
        Comparator::Ge => " >= ",
        Comparator::Lt => " < ",
        Comparator::Le => " <= ",
        _ => return None,
    })
}

pub(crate) fn unsupported_comparison(comparator: Comparator) -> StoreError {
    DomainError::invalid(format!("Invalid comparator {comparator:?} for this key")).into()
}

fn push_experiment_condition(sql: &mut Sql, comparison: &ExperimentComparison) -> StoreResult<()> {
    let ExperimentComparison { key, comparator, value } = comparison;
    match key {
        ExperimentKey::Name => push_string_comparison(sql, "e.name", *comparator, value),
        ExperimentKey::ExperimentId => {
            let ids = match value {
                FilterValue::Str(text) => vec![text.clone()],
                FilterValue::List(items) => items.clone(),
                FilterValue::Num(number) => vec![number.to_string()],
                FilterValue::Null => Vec::new(),
            };
            let parsed = ids
                .iter()
                .map(|raw| ExperimentId::parse(raw).map(|id| id.0))
                .collect::<Result<Vec<_>, _>>()?;
            let negate = matches!(comparator, Comparator::Ne | Comparator::NotIn);
            sql.push(if negate { "e.experiment_id NOT IN " } else { "e.experiment_id IN " });
            if parsed.is_empty() {
                sql.push("(NULL)");
            } else {
                sql.bind_list(parsed);
            }
            Ok(())
        }
        ExperimentKey::CreationTime => {
            push_numeric_comparison(sql, "e.creation_time", *comparator, value)
        }
        ExperimentKey::LastUpdateTime => {
            push_numeric_comparison(sql, "e.last_update_time", *comparator, value)
        }
        ExperimentKey::Tag(tag_key) => push_tag_exists(
            sql,
            "experiment_tags",
            "experiment_id",
            "e.experiment_id",
            tag_key,
            *comparator,
            value,
        ),
    }
}

/// Appends an EXISTS / NOT EXISTS condition over a key/value table (tags, params).
pub(crate) fn push_tag_exists(
    sql: &mut Sql,
    table: &str,
    owner_column: &str,
    owner_ref: &str,
    key: &str,
    comparator: Comparator,
    value: &FilterValue,
) -> StoreResult<()> {
    let negated = comparator == Comparator::IsNull;
    sql.push(if negated { "NOT EXISTS (SELECT 1 FROM " } else { "EXISTS (SELECT 1 FROM " });
    sql.push(table).push(" kv WHERE kv.").push(owner_column).push(" = ").push(owner_ref);
    sql.push(" AND kv.key = ").bind(key);
    if !matches!(comparator, Comparator::IsNull | Comparator::IsNotNull) {
        sql.push(" AND ");
        push_string_comparison(sql, "kv.value", comparator, value)?;
    }
    sql.push(")");
    Ok(())
}

/// Fails unless the experiment exists and is active; returns its artifact location.
pub(crate) async fn active_experiment_location(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    experiment_id: ExperimentId,
) -> StoreResult<String> {
    let row = sqlx::query(
        "SELECT lifecycle_stage, artifact_location FROM experiments WHERE experiment_id = $1",
    )
    .bind(experiment_id.0)
    .fetch_optional(&mut **transaction)
    .await?
    .ok_or_else(|| experiment_not_found(experiment_id))?;
    let stage: String = row.try_get("lifecycle_stage")?;
    if stage != "active" {
        return Err(DomainError::invalid(format!(
            "The experiment {experiment_id} must be in the 'active' state. Current state is {stage}."
        ))
        .into());
    }
    Ok(row.try_get("artifact_location")?)
}

/// Fails unless the experiment exists and is active.
pub(crate) async fn require_active_experiment(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    experiment_id: ExperimentId,
) -> StoreResult<()> {
    active_experiment_location(transaction, experiment_id).await.map(|_| ())
}

async fn upsert_experiment_tag(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    experiment_id: ExperimentId,
    tag: &Tag,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(experiment_id.0)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
