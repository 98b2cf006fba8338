//! MLflow 3 logged models: create, read, finalize, tag, log params, delete and search.

use std::collections::HashMap;

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{LoggedModel, LoggedModelStatus, Metric, Param, Tag};
use cairn_domain::ids::{ExperimentId, logged_model_id};
use cairn_domain::search::{Comparator, FilterValue};
use cairn_domain::time::now_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::experiments::{
    push_numeric_comparison, push_string_comparison, push_tag_exists, require_active_experiment,
};
use crate::sql::{Sql, float, opt_text};
use crate::{Store, StoreResult};

const MODEL_COLUMNS: &str = "m.model_id, m.experiment_id, m.name, m.artifact_uri, m.creation_timestamp_ms, \
     m.last_updated_timestamp_ms, m.status, m.creator_id, m.model_type, m.source_run_id, m.status_message";

/// What `logged-models` create asks for.
#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    /// The experiment it belongs to.
    pub experiment_id: ExperimentId,
    /// Its name (generated when absent).
    pub name: Option<String>,
    /// Free-form model type.
    pub model_type: Option<String>,
    /// The run that produced it.
    pub source_run_id: Option<String>,
    /// Initial params.
    pub params: Vec<Param>,
    /// Initial tags.
    pub tags: Vec<Tag>,
    /// The creator.
    pub creator_id: Option<String>,
}

/// A field a logged-model search can filter or order on.
#[derive(Debug, Clone, PartialEq)]
pub enum LoggedModelField {
    /// The name.
    Name,
    /// The id.
    ModelId,
    /// The model type.
    ModelType,
    /// The status number.
    Status,
    /// The source run.
    SourceRunId,
    /// Creation time.
    CreationTimestamp,
    /// Last update time.
    LastUpdatedTimestamp,
    /// A metric logged against the model.
    Metric(String),
    /// A param.
    Param(String),
    /// A tag.
    Tag(String),
}

/// A parsed logged-model search.
#[derive(Debug, Clone, Default)]
pub struct LoggedModelSearch {
    /// The experiments to search.
    pub experiment_ids: Vec<ExperimentId>,
    /// Conditions, all of which must hold.
    pub filter: Vec<(LoggedModelField, Comparator, FilterValue)>,
    /// Ordering (field, ascending); default creation time descending.
    pub order_by: Vec<(LoggedModelField, bool)>,
    /// Page size.
    pub max_results: i64,
    /// Rows to skip.
    pub offset: u64,
}

fn model_not_found(model_id: &str) -> crate::StoreError {
    DomainError::not_found(format!("Logged model with ID '{model_id}' not found.")).into()
}

fn model_from_row(row: &AnyRow) -> sqlx::Result<LoggedModel> {
    Ok(LoggedModel {
        model_id: row.try_get("model_id")?,
        experiment_id: ExperimentId(row.try_get("experiment_id")?),
        name: row.try_get("name")?,
        artifact_uri: row.try_get("artifact_uri")?,
        creation_timestamp_ms: row.try_get("creation_timestamp_ms")?,
        last_updated_timestamp_ms: row.try_get("last_updated_timestamp_ms")?,
        status: LoggedModelStatus::from_number(row.try_get("status")?),
        creator_id: opt_text(row, "creator_id")?,
        model_type: opt_text(row, "model_type")?,
        source_run_id: opt_text(row, "source_run_id")?,
        status_message: opt_text(row, "status_message")?,
        tags: Vec::new(),
        params: Vec::new(),
        metrics: Vec::new(),
    })
}

fn simple_column(field: &LoggedModelField) -> Option<&'static str> {
    Some(match field {
        LoggedModelField::Name => "m.name",
        LoggedModelField::ModelId => "m.model_id",
        LoggedModelField::ModelType => "m.model_type",
        LoggedModelField::Status => "m.status",
        LoggedModelField::SourceRunId => "m.source_run_id",
        LoggedModelField::CreationTimestamp => "m.creation_timestamp_ms",
        LoggedModelField::LastUpdatedTimestamp => "m.last_updated_timestamp_ms",
        _ => return None,
    })
}

impl Store {
    /// Creates a logged model (status PENDING) in an active experiment.
    pub async fn create_logged_model(
        &self,
        context: &RequestContext,
        new_model: &NewLoggedModel,
    ) -> StoreResult<LoggedModel> {
        let model_id = logged_model_id(*uuid::Uuid::new_v4().as_bytes());
        let now = now_millis();
        let name = new_model
            .name
            .clone()
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| crate::runs::random_run_name(*uuid::Uuid::new_v4().as_bytes()));
        let mut transaction = self.begin().await?;
        require_active_experiment(&mut transaction, new_model.experiment_id).await?;
        let location: String = sqlx::query_scalar(
            "SELECT artifact_location FROM experiments WHERE experiment_id = $1",
        )
        .bind(new_model.experiment_id.0)
        .fetch_one(&mut *transaction)
        .await?;
        let artifact_uri =
            format!("{}/models/{model_id}/artifacts", location.trim_end_matches('/'));
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, creation_timestamp_ms, \
             last_updated_timestamp_ms, status, creator_id, model_type, source_run_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)",
        )
        .bind(&model_id)
        .bind(new_model.experiment_id.0)
        .bind(&name)
        .bind(&artifact_uri)
        .bind(now)
        .bind(LoggedModelStatus::Pending as i64)
        .bind(new_model.creator_id.clone())
        .bind(new_model.model_type.clone())
        .bind(new_model.source_run_id.clone())
        .execute(&mut *transaction)
        .await?;
        for param in &new_model.params {
            sqlx::query(
                "INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(&model_id)
            .bind(&param.key)
            .bind(&param.value)
            .execute(&mut *transaction)
            .await?;
        }
        for tag in &new_model.tags {
            upsert_model_tag(&mut transaction, &model_id, tag).await?;
        }
        self.commit_audited(transaction, context, crate::audit::entry("logged_model.create", format!("logged_model:{model_id}"), serde_json::json!({"experiment_id": new_model.experiment_id.0, "name": name, "source_run_id": new_model.source_run_id}))).await?;
        self.get_logged_model(&model_id).await
    }

    /// Loads a live logged model with its tags, params and metrics.
    pub async fn get_logged_model(&self, model_id: &str) -> StoreResult<LoggedModel> {
        let mut models = self.load_logged_models(&[model_id.to_string()]).await?;
        models.pop().ok_or_else(|| model_not_found(model_id))
    }

    /// Sets a logged model's status (e.g. READY once its files are uploaded).
    pub async fn finalize_logged_model(
        &self,
        context: &RequestContext,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> StoreResult<LoggedModel> {
        let mut transaction = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE logged_models SET status = $1, last_updated_timestamp_ms = $2 \
             WHERE model_id = $3 AND lifecycle_stage = 'active'",
        )
        .bind(status as i64)
        .bind(now_millis())
        .bind(model_id)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(model_not_found(model_id));
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "logged_model.finalize",
                format!("logged_model:{model_id}"),
                serde_json::json!({"status": status.as_str()}),
            ),
        )
        .await?;
        self.get_logged_model(model_id).await
    }

    /// Sets tags on a logged model.
    pub async fn set_logged_model_tags(
        &self,
        context: &RequestContext,
        model_id: &str,
        tags: &[Tag],
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_live_model(&mut transaction, model_id).await?;
        for tag in tags {
            upsert_model_tag(&mut transaction, model_id, tag).await?;
        }
        sqlx::query("UPDATE logged_models SET last_updated_timestamp_ms = $1 WHERE model_id = $2")
            .bind(now_millis())
            .bind(model_id)
            .execute(&mut *transaction)
            .await?;
        self.commit_audited(transaction, context, crate::audit::entry("logged_model.tags.set", format!("logged_model:{model_id}"), serde_json::json!({"keys": tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>()}))).await?;
        Ok(())
    }

    /// Deletes one tag of a logged model.
    pub async fn delete_logged_model_tag(
        &self,
        context: &RequestContext,
        model_id: &str,
        key: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_live_model(&mut transaction, model_id).await?;
        let deleted = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
            .bind(model_id)
            .bind(key)
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DomainError::not_found(format!(
                "No tag with key {key:?} found for model with ID {model_id:?}."
            ))
            .into());
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "logged_model.tag.delete",
                format!("logged_model:{model_id}"),
                serde_json::json!({"key": key}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Logs params on a logged model (overwriting same keys).
    pub async fn log_logged_model_params(
        &self,
        context: &RequestContext,
        model_id: &str,
        params: &[Param],
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_live_model(&mut transaction, model_id).await?;
        for param in params {
            sqlx::query(
                "INSERT INTO logged_model_params (model_id, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(model_id)
            .bind(&param.key)
            .bind(&param.value)
            .execute(&mut *transaction)
            .await?;
        }
        self.commit_audited(transaction, context, crate::audit::entry("logged_model.params.log", format!("logged_model:{model_id}"), serde_json::json!({"keys": params.iter().map(|p| p.key.as_str()).collect::<Vec<_>>()}))).await?;
        Ok(())
    }

    /// Soft-deletes a logged model.
    pub async fn delete_logged_model(
        &self,
        context: &RequestContext,
        model_id: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_updated_timestamp_ms = $1 \
             WHERE model_id = $2 AND lifecycle_stage = 'active'",
        )
        .bind(now_millis())
        .bind(model_id)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(model_not_found(model_id));
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "logged_model.delete",
                format!("logged_model:{model_id}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Searches live logged models; returns a page and whether more rows follow.
    pub async fn search_logged_models(
        &self,
        search: &LoggedModelSearch,
    ) -> StoreResult<(Vec<LoggedModel>, bool)> {
        if search.experiment_ids.is_empty() {
            return Ok((Vec::new(), false));
        }
        let mut joins = Sql::default();
        let mut order = String::new();
        for (index, (field, ascending)) in search.order_by.iter().enumerate() {
            let direction = if *ascending { "ASC" } else { "DESC" };
            if let LoggedModelField::Metric(key) = field {
                let alias = format!("o{index}");
                joins.push(" LEFT JOIN (SELECT model_id, MAX(value) AS value FROM logged_model_metrics WHERE key = ");
                joins.bind(key.as_str()).push(" GROUP BY model_id) ").push(&alias);
                joins.push(" ON ").push(&alias).push(".model_id = m.model_id");
                order.push_str(&format!(
                    "CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END, {alias}.value {direction}, "
                ));
            } else if let Some(column) = simple_column(field) {
                order.push_str(&format!("{column} {direction}, "));
            } else {
                return Err(
                    DomainError::invalid(format!("Invalid order by field: {field:?}")).into()
                );
            }
        }
        order.push_str("m.creation_timestamp_ms DESC, m.model_id ASC");
        let mut sql = Sql::new("SELECT m.model_id FROM logged_models m");
        sql.push(&joins.text);
        sql.args.extend(joins.args);
        sql.push(" WHERE m.lifecycle_stage = 'active' AND m.experiment_id IN ");
        sql.bind_list(search.experiment_ids.iter().map(|id| id.0));
        for (field, comparator, value) in &search.filter {
            sql.push(" AND ");
            match field {
                LoggedModelField::Status => {
                    let number = match value {
                        FilterValue::Str(text) => {
                            LoggedModelStatus::parse(text).map(|s| s as i64).unwrap_or(-1)
                        }
                        FilterValue::Num(number) => *number as i64,
                        _ => -1,
                    };
                    let negate = *comparator == Comparator::Ne;
                    sql.push(if negate { "m.status != " } else { "m.status = " }).bind(number);
                }
                LoggedModelField::CreationTimestamp | LoggedModelField::LastUpdatedTimestamp => {
                    let column = simple_column(field).unwrap_or("m.creation_timestamp_ms");
                    push_numeric_comparison(&mut sql, column, *comparator, value)?;
                }
                LoggedModelField::Metric(key) => {
                    sql.push("EXISTS (SELECT 1 FROM logged_model_metrics mm WHERE mm.model_id = m.model_id AND mm.key = ");
                    sql.bind(key.as_str()).push(" AND ");
                    push_numeric_comparison(&mut sql, "mm.value", *comparator, value)?;
                    sql.push(")");
                }
                LoggedModelField::Param(key) => push_tag_exists(
                    &mut sql,
                    "logged_model_params",
                    "model_id",
                    "m.model_id",
                    key,
                    *comparator,
                    value,
                )?,
                LoggedModelField::Tag(key) => push_tag_exists(
                    &mut sql,
                    "logged_model_tags",
                    "model_id",
                    "m.model_id",
                    key,
                    *comparator,
                    value,
                )?,
                other => {
                    let column = simple_column(other).unwrap_or("m.name");
                    push_string_comparison(&mut sql, column, *comparator, value)?;
                }
            }
        }
        sql.push(" ORDER BY ").push(&order);
        sql.push(" LIMIT ").bind(search.max_results + 1);
        sql.push(" OFFSET ").bind(i64::try_from(search.offset).unwrap_or(i64::MAX));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut ids = rows
            .iter()
            .map(|row| row.try_get::<String, _>("model_id"))
            .collect::<sqlx::Result<Vec<_>>>()?;
        let has_more = ids.len() as i64 > search.max_results;
        ids.truncate(usize::try_from(search.max_results).unwrap_or(usize::MAX));
        Ok((self.load_logged_models(&ids).await?, has_more))
    }

    async fn load_logged_models(&self, ids: &[String]) -> StoreResult<Vec<LoggedModel>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pool = self.reader();
        let mut sql = Sql::new("SELECT ");
        sql.push(MODEL_COLUMNS)
            .push(" FROM logged_models m WHERE m.lifecycle_stage = 'active' AND m.model_id IN ");
        sql.bind_list(ids.iter().cloned());
        let mut by_id: HashMap<String, LoggedModel> = HashMap::new();
        for row in sql.query(self.dialect).fetch_all(pool).await? {
            let model = model_from_row(&row)?;
            by_id.insert(model.model_id.clone(), model);
        }
        let present: Vec<String> = by_id.keys().cloned().collect();
        if present.is_empty() {
            return Ok(Vec::new());
        }
        for (table, is_tag) in [("logged_model_tags", true), ("logged_model_params", false)] {
            let mut kv =
                Sql::new(&format!("SELECT model_id, key, value FROM {table} WHERE model_id IN "));
            kv.bind_list(present.iter().cloned()).push(" ORDER BY key");
            for row in kv.query(self.dialect).fetch_all(pool).await? {
                if let Some(model) = by_id.get_mut(&row.try_get::<String, _>("model_id")?) {
                    let (key, value): (String, String) =
                        (row.try_get("key")?, row.try_get("value")?);
                    if is_tag {
                        model.tags.push(Tag { key, value });
                    } else {
                        model.params.push(Param { key, value });
                    }
                }
            }
        }
        let mut metrics = Sql::new(
            "SELECT model_id, run_uuid, key, value, is_nan, timestamp, step, dataset_name, dataset_digest \
             FROM logged_model_metrics WHERE model_id IN ",
        );
        metrics.bind_list(present.iter().cloned()).push(" ORDER BY key, step, timestamp");
        for row in metrics.query(self.dialect).fetch_all(pool).await? {
            if let Some(model) = by_id.get_mut(&row.try_get::<String, _>("model_id")?) {
                let is_nan: i64 = row.try_get("is_nan")?;
                let dataset_name: String = row.try_get("dataset_name")?;
                let dataset_digest: String = row.try_get("dataset_digest")?;
                model.metrics.push(Metric {
                    key: row.try_get("key")?,
                    value: if is_nan != 0 { f64::NAN } else { float(&row, "value")? },
                    timestamp: row.try_get("timestamp")?,
                    step: row.try_get("step")?,
                    model_id: Some(model.model_id.clone()),
                    dataset_name: Some(dataset_name).filter(|name| !name.is_empty()),
                    dataset_digest: Some(dataset_digest).filter(|digest| !digest.is_empty()),
                    run_id: Some(row.try_get("run_uuid")?),
                });
            }
        }
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}

async fn require_live_model(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    model_id: &str,
) -> StoreResult<()> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT model_id FROM logged_models WHERE model_id = $1 AND lifecycle_stage = 'active'",
    )
    .bind(model_id)
    .fetch_optional(&mut **transaction)
    .await?;
    found.map(|_| ()).ok_or_else(|| model_not_found(model_id))
}

async fn upsert_model_tag(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    model_id: &str,
    tag: &Tag,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(model_id)
    .bind(&tag.key)
    .bind(&tag.value)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
