//! A run's data: log-batch (params, metrics, tags in one transaction), single-param logging,
//! tag deletion and metric history.

use std::collections::{HashMap, HashSet};

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{Metric, Param, Tag};
use sqlx::{Any, Row, Transaction};

use crate::runs::{metric_from_row, require_active_run, upsert_run_tags};
use crate::sql::Sql;
use crate::{Dialect, Store, StoreResult};

/// One log-batch request, already validated and truncated by the caller.
#[derive(Debug, Clone, Default)]
pub struct LogBatch {
    /// Metric points.
    pub metrics: Vec<Metric>,
    /// Params (immutable once logged).
    pub params: Vec<Param>,
    /// Tags (overwrite).
    pub tags: Vec<Tag>,
}

/// One page of a metric's history.
#[derive(Debug, Clone)]
pub struct MetricHistoryPage {
    /// The points, ordered by timestamp, step, value.
    pub metrics: Vec<Metric>,
    /// Whether more points follow.
    pub has_more: bool,
}

/// Metric rows per multi-row INSERT (9 binds each stays under both engines' limits).
const METRIC_INSERT_CHUNK: usize = 500;

/// The stored form of a metric value: NaN as 0 with a flag, infinities clamped.
fn stored_value(value: f64) -> (f64, i64) {
    if value.is_nan() {
        (0.0, 1)
    } else if value.is_infinite() {
        (if value > 0.0 { f64::MAX } else { f64::MIN }, 0)
    } else {
        (value, 0)
    }
}

impl Store {
    /// Logs params, metrics and tags of one run in a single transaction.
    pub async fn log_batch(
        &self,
        context: &RequestContext,
        run_id: &str,
        batch: &LogBatch,
    ) -> StoreResult<()> {
        let mut seen = Vec::new();
        let mut duplicates = Vec::new();
        for param in &batch.params {
            if seen.contains(&&param.key) {
                duplicates.push(format!("'{}'", param.key));
            } else {
                seen.push(&param.key);
            }
        }
        if !duplicates.is_empty() {
            return Err(DomainError::invalid(format!(
                "Duplicate parameter keys have been submitted: [{}]. Please ensure the request contains only one param value per param key.",
                duplicates.join(", ")
            ))
            .into());
        }
        let mut transaction = self.begin().await?;
        let experiment_id = require_active_run(&mut transaction, run_id).await?;
        log_params(self.dialect, &mut transaction, run_id, &batch.params, false).await?;
        log_metrics(self.dialect, &mut transaction, run_id, experiment_id.0, &batch.metrics)
            .await?;
        upsert_run_tags(self.dialect, &mut transaction, run_id, &batch.tags).await?;
        self.commit_audited(transaction, context, crate::audit::entry("run.log_batch", format!("run:{run_id}"), serde_json::json!({"metrics": batch.metrics.len(), "params": batch.params.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), "tags": batch.tags.iter().map(|t| t.key.as_str()).collect::<Vec<_>>()}))).await?;
        Ok(())
    }

    /// Logs one param, with MLflow's single-param message when it would change a value.
    pub async fn log_param(
        &self,
        context: &RequestContext,
        run_id: &str,
        param: &Param,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_active_run(&mut transaction, run_id).await?;
        log_params(self.dialect, &mut transaction, run_id, std::slice::from_ref(param), true)
            .await?;
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "run.log_param",
                format!("run:{run_id}"),
                serde_json::json!({"key": param.key}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Deletes a run tag; a missing tag is NotFound.
    pub async fn delete_run_tag(
        &self,
        context: &RequestContext,
        run_id: &str,
        key: &str,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_active_run(&mut transaction, run_id).await?;
        let deleted = sqlx::query("DELETE FROM tags WHERE run_uuid = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&mut *transaction)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(DomainError::not_found(format!(
                "No tag with name: {key} in run with id {run_id}"
            ))
            .into());
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "run.tag.delete",
                format!("run:{run_id}"),
                serde_json::json!({"key": key}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Reads one page of a metric's history, ordered by timestamp, step and value. An unknown
    /// run or key yields an empty page, as MLflow answers.
    pub async fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        offset: u64,
        max_results: i64,
    ) -> StoreResult<MetricHistoryPage> {
        let rows = sqlx::query(
            "SELECT key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest \
             FROM metrics WHERE run_uuid = $1 AND key = $2 \
             ORDER BY timestamp, step, value LIMIT $3 OFFSET $4",
        )
        .bind(run_id)
        .bind(key)
        .bind(max_results + 1)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(self.reader())
        .await?;
        let mut metrics = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut metric = metric_from_row(row)?;
            metric.model_id = row.try_get("model_id")?;
            metric.dataset_name = row.try_get("dataset_name")?;
            metric.dataset_digest = row.try_get("dataset_digest")?;
            metrics.push(metric);
        }
        let has_more = metrics.len() as i64 > max_results;
        metrics.truncate(usize::try_from(max_results).unwrap_or(usize::MAX));
        Ok(MetricHistoryPage { metrics, has_more })
    }
}

async fn log_params(
    dialect: Dialect,
    transaction: &mut Transaction<'static, Any>,
    run_id: &str,
    params: &[Param],
    single: bool,
) -> StoreResult<()> {
    if params.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("SELECT key, value FROM params WHERE run_uuid = ");
    sql.bind(run_id).push(" AND key IN ").bind_list(params.iter().map(|p| p.key.clone()));
    let existing: HashMap<String, String> = sql
        .query(dialect)
        .fetch_all(&mut **transaction)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("key")?, row.try_get("value")?)))
        .collect::<sqlx::Result<_>>()?;
    let conflicts: Vec<(&Param, &String)> = params
        .iter()
        .filter_map(|param| {
            existing.get(&param.key).filter(|old| **old != param.value).map(|old| (param, old))
        })
        .collect();
    if let Some((param, old)) = conflicts.first().filter(|_| single) {
        return Err(DomainError::invalid(format!(
            "Changing param values is not allowed. Param with key='{}' was already logged with value='{}' for run ID='{run_id}'. Attempted logging new value '{}'.",
            param.key, old, param.value
        ))
        .into());
    }
    if !conflicts.is_empty() {
        let listed: Vec<String> = conflicts
            .iter()
            .map(|(param, old)| {
                format!(
                    "{{'key': '{}', 'old_value': '{}', 'new_value': '{}'}}",
                    param.key, old, param.value
                )
            })
            .collect();
        return Err(DomainError::invalid(format!(
            "Changing param values is not allowed. Params were already logged='[{}]' for run ID='{run_id}'.",
            listed.join(", ")
        ))
        .into());
    }
    let fresh: Vec<&Param> = params.iter().filter(|p| !existing.contains_key(&p.key)).collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let mut insert = Sql::new("INSERT INTO params (run_uuid, key, value) VALUES ");
    for (index, param) in fresh.iter().enumerate() {
        if index > 0 {
            insert.push(", ");
        }
        insert
            .push("(")
            .bind(run_id)
            .push(", ")
            .bind(&param.key)
            .push(", ")
            .bind(&param.value)
            .push(")");
    }
    insert.push(" ON CONFLICT (run_uuid, key) DO NOTHING");
    insert.query(dialect).execute(&mut **transaction).await?;
    Ok(())
}

async fn log_metrics(
    dialect: Dialect,
    transaction: &mut Transaction<'static, Any>,
    run_id: &str,
    experiment_id: i64,
    metrics: &[Metric],
) -> StoreResult<()> {
    if metrics.is_empty() {
        return Ok(());
    }
    let mut unique: HashSet<(&str, i64, i64, u64, i64)> = HashSet::with_capacity(metrics.len());
    let mut rows = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let (value, is_nan) = stored_value(metric.value);
        if unique.insert((
            metric.key.as_str(),
            metric.step,
            metric.timestamp,
            value.to_bits(),
            is_nan,
        )) {
            rows.push((metric, value, is_nan));
        }
    }
    for chunk in rows.chunks(METRIC_INSERT_CHUNK) {
        let mut insert = Sql::new(
            "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step, model_id, dataset_name, dataset_digest) VALUES ",
        );
        for (index, (metric, value, is_nan)) in chunk.iter().enumerate() {
            if index > 0 {
                insert.push(", ");
            }
            insert.push("(").bind(run_id).push(", ").bind(&metric.key).push(", ").bind(*value);
            insert
                .push(", ")
                .bind(*is_nan)
                .push(", ")
                .bind(metric.timestamp)
                .push(", ")
                .bind(metric.step);
            insert
                .push(", ")
                .bind(metric.model_id.clone())
                .push(", ")
                .bind(metric.dataset_name.clone());
            insert.push(", ").bind(metric.dataset_digest.clone()).push(")");
        }
        insert.push(" ON CONFLICT DO NOTHING");
        insert.query(dialect).execute(&mut **transaction).await?;
    }
    // The latest point per key is the one with the greatest (step, timestamp, value).
    let mut latest: HashMap<&str, (i64, i64, f64, i64)> = HashMap::new();
    for (metric, value, is_nan) in &rows {
        let candidate = (metric.step, metric.timestamp, *value, *is_nan);
        latest
            .entry(metric.key.as_str())
            .and_modify(|current| {
                if (candidate.0, candidate.1, candidate.2) > (current.0, current.1, current.2) {
                    *current = candidate;
                }
            })
            .or_insert(candidate);
    }
    let mut upsert = Sql::new(
        "INSERT INTO latest_metrics (run_uuid, experiment_id, key, value, is_nan, timestamp, step) VALUES ",
    );
    for (index, (key, (step, timestamp, value, is_nan))) in latest.iter().enumerate() {
        if index > 0 {
            upsert.push(", ");
        }
        upsert.push("(").bind(run_id).push(", ").bind(experiment_id).push(", ").bind(*key);
        upsert.push(", ").bind(*value).push(", ").bind(*is_nan).push(", ").bind(*timestamp);
        upsert.push(", ").bind(*step).push(")");
    }
    upsert.push(
        " ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, \
         timestamp = excluded.timestamp, step = excluded.step \
         WHERE (excluded.step > latest_metrics.step) \
            OR (excluded.step = latest_metrics.step AND excluded.timestamp > latest_metrics.timestamp) \
            OR (excluded.step = latest_metrics.step AND excluded.timestamp = latest_metrics.timestamp \
                AND excluded.value > latest_metrics.value)",
    );
    upsert.query(dialect).execute(&mut **transaction).await?;
    log_model_metrics(dialect, transaction, run_id, &rows).await
}

async fn log_model_metrics(
    dialect: Dialect,
    transaction: &mut Transaction<'static, Any>,
    run_id: &str,
    rows: &[(&Metric, f64, i64)],
) -> StoreResult<()> {
    let with_model: Vec<&(&Metric, f64, i64)> =
        rows.iter().filter(|(metric, _, _)| metric.model_id.is_some()).collect();
    for chunk in with_model.chunks(METRIC_INSERT_CHUNK) {
        let mut insert = Sql::new(
            "INSERT INTO logged_model_metrics (model_id, run_uuid, key, value, is_nan, timestamp, step, dataset_name, dataset_digest) VALUES ",
        );
        for (index, (metric, value, is_nan)) in chunk.iter().enumerate() {
            if index > 0 {
                insert.push(", ");
            }
            insert
                .push("(")
                .bind(metric.model_id.clone())
                .push(", ")
                .bind(run_id)
                .push(", ")
                .bind(&metric.key);
            insert
                .push(", ")
                .bind(*value)
                .push(", ")
                .bind(*is_nan)
                .push(", ")
                .bind(metric.timestamp);
            insert
                .push(", ")
                .bind(metric.step)
                .push(", ")
                .bind(metric.dataset_name.clone().unwrap_or_default());
            insert.push(", ").bind(metric.dataset_digest.clone().unwrap_or_default()).push(")");
        }
        insert.push(" ON CONFLICT DO NOTHING");
        insert.query(dialect).execute(&mut **transaction).await?;
    }
    Ok(())
}
