//! Metric reads for charts: evenly sampled history per run (`get-history-bulk-interval`), the
//! raw bulk history of several runs, the dataset summaries of experiments, and the legacy
//! `log-model` history tag.

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{Metric, Tag};
use sqlx::Row;

use crate::runs::{metric_from_row, require_active_run, upsert_run_tags};
use crate::sql::Sql;
use crate::{Store, StoreResult};

/// One dataset summary of `experiments/search-datasets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSummary {
    /// The experiment holding the dataset.
    pub experiment_id: i64,
    /// The dataset's name.
    pub name: String,
    /// Its digest.
    pub digest: String,
    /// Its `mlflow.data.context` input tag, if any.
    pub context: Option<String>,
}

/// The tag where the legacy `runs/log-model` call records model metadata.
const LOG_MODEL_HISTORY_TAG: &str = "mlflow.log-model.history";

impl Store {
    /// Samples up to `max_results` points of `key` for one run, evenly across its rows ordered
    /// by step, always keeping the first and last points (MLflow's NTILE sampling).
    pub async fn sample_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: i64,
        steps: Option<(i64, i64)>,
    ) -> StoreResult<Vec<Metric>> {
        self.get_run_info(run_id).await?;
        let max_results = max_results.max(1);
        let mut sampled = Sql::new(
            "SELECT key, value, is_nan, timestamp, step FROM (\
             SELECT key, value, is_nan, timestamp, step, ROW_NUMBER() OVER (PARTITION BY bucket \
             ORDER BY step, timestamp, value, is_nan) AS rn FROM (\
             SELECT key, value, is_nan, timestamp, step, NTILE(CAST(",
        );
        sampled.bind(max_results).push(
            " AS INTEGER)) OVER (ORDER BY step, timestamp, value, is_nan) AS bucket FROM metrics",
        );
        push_range(&mut sampled, run_id, key, steps);
        sampled.push(") bucketed) ranked WHERE rn = 1 ORDER BY step, timestamp, value, is_nan");
        let mut points = sampled
            .query(self.dialect)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(metric_from_row)
            .collect::<sqlx::Result<Vec<_>>>()?;
        let mut last = Sql::new("SELECT key, value, is_nan, timestamp, step FROM metrics");
        push_range(&mut last, run_id, key, steps);
        last.push(" ORDER BY step DESC, timestamp DESC, value DESC, is_nan DESC LIMIT 1");
        if let Some(row) = last.query(self.dialect).fetch_optional(self.reader()).await? {
            let last_point = metric_from_row(&row)?;
            let same = |a: &Metric, b: &Metric| {
                a.step == b.step
                    && a.timestamp == b.timestamp
                    && a.value.to_bits() == b.value.to_bits()
            };
            if points.last().is_none_or(|point| !same(point, &last_point)) {
                if points.len() as i64 >= max_results {
                    points.pop();
                }
                points.push(last_point);
            }
        }
        for point in &mut points {
            point.run_id = Some(run_id.to_string());
        }
        Ok(points)
    }

    /// All points of `key` for several runs, ordered by run id, timestamp, step and value.
    pub async fn metric_history_bulk(
        &self,
        run_ids: &[String],
        key: &str,
        max_results: i64,
    ) -> StoreResult<Vec<Metric>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT run_uuid, key, value, is_nan, timestamp, step FROM metrics WHERE key = ",
        );
        sql.bind(key).push(" AND run_uuid IN ").bind_list(run_ids.iter().cloned());
        sql.push(" ORDER BY run_uuid, timestamp, step, value LIMIT ").bind(max_results);
        let mut points = Vec::new();
        for row in sql.query(self.dialect).fetch_all(self.reader()).await? {
            let mut point = metric_from_row(&row)?;
            point.run_id = Some(row.try_get("run_uuid")?);
            points.push(point);
        }
        Ok(points)
    }

    /// The distinct (experiment, dataset, context) triples of the given experiments (at most 1000).
    pub async fn search_datasets(
        &self,
        experiment_ids: &[i64],
    ) -> StoreResult<Vec<DatasetSummary>> {
        if experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT DISTINCT d.experiment_id, d.name, d.digest, t.value AS context FROM datasets d \
             JOIN run_dataset_inputs i ON i.dataset_uuid = d.dataset_uuid \
             LEFT JOIN run_dataset_input_tags t ON t.run_uuid = i.run_uuid AND t.dataset_uuid = i.dataset_uuid \
             AND t.key = 'mlflow.data.context' WHERE d.experiment_id IN ",
        );
        sql.bind_list(experiment_ids.iter().copied())
            .push(" ORDER BY d.experiment_id, d.name, d.digest LIMIT 1000");
        let mut summaries = Vec::new();
        for row in sql.query(self.dialect).fetch_all(self.reader()).await? {
            summaries.push(DatasetSummary {
                experiment_id: row.try_get("experiment_id")?,
                name: row.try_get("name")?,
                digest: row.try_get("digest")?,
                context: row.try_get("context")?,
            });
        }
        Ok(summaries)
    }

    /// Appends a model's metadata to the run's `mlflow.log-model.history` tag (legacy 2.x call).
    pub async fn record_logged_model(
        &self,
        context: &RequestContext,
        run_id: &str,
        model: serde_json::Value,
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_active_run(&mut transaction, run_id).await?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT value FROM tags WHERE run_uuid = $1 AND key = $2")
                .bind(run_id)
                .bind(LOG_MODEL_HISTORY_TAG)
                .fetch_optional(&mut *transaction)
                .await?;
        let mut history =
            match previous.as_deref().map(serde_json::from_str::<Vec<serde_json::Value>>) {
                Some(Ok(history)) => history,
                _ => Vec::new(),
            };
        history.push(model);
        let value = serde_json::Value::Array(history).to_string();
        if value.chars().count() > cairn_domain::validation::MAX_TAG_VAL_LENGTH {
            return Err(DomainError::invalid(format!(
                "'{LOG_MODEL_HISTORY_TAG}' exceeds the maximum length of {} characters",
                cairn_domain::validation::MAX_TAG_VAL_LENGTH
            ))
            .into());
        }
        let tag = Tag { key: LOG_MODEL_HISTORY_TAG.into(), value };
        upsert_run_tags(self.dialect, &mut transaction, run_id, &[tag]).await?;
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry("run.log_model", format!("run:{run_id}"), serde_json::json!({})),
        )
        .await?;
        Ok(())
    }
}

/// Appends the `WHERE` clause selecting one run's points of `key`, optionally in a step range.
fn push_range(sql: &mut Sql, run_id: &str, key: &str, steps: Option<(i64, i64)>) {
    sql.push(" WHERE run_uuid = ").bind(run_id).push(" AND key = ").bind(key);
    if let Some((start, end)) = steps {
        sql.push(" AND step >= ").bind(start).push(" AND step <= ").bind(end);
    }
}
