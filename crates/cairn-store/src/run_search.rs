//! `runs/search`: MLflow's filter grammar compiled to one indexed SQL query, then the page's
//! runs loaded in bulk. Metric conditions use the per-run latest values (`latest_metrics`).

use cairn_domain::DomainError;
use cairn_domain::entities::{Run, ViewType};
use cairn_domain::ids::ExperimentId;
use cairn_domain::search::{
    Comparator, DatasetField, FilterValue, RunAttribute, RunComparison, RunKey, RunOrderBy,
};
use sqlx::Row;

use crate::experiments::{
    numeric_operator, push_numeric_comparison, push_string_comparison, push_tag_exists,
    push_view_type, unsupported_comparison,
};
use crate::sql::Sql;
use crate::{Store, StoreResult};

/// A parsed run search.
#[derive(Debug, Clone, Default)]
pub struct RunSearch {
    /// The experiments to search; unknown ids simply match nothing.
    pub experiment_ids: Vec<ExperimentId>,
    /// Conditions, all of which must hold.
    pub filter: Vec<RunComparison>,
    /// Ordering keys, before the implicit tie-breakers.
    pub order_by: Vec<RunOrderBy>,
    /// Which lifecycle stages to include.
    pub view_type: ViewType,
    /// Page size.
    pub max_results: i64,
    /// Rows to skip (from the page token).
    pub offset: u64,
}

fn attribute_column(attribute: RunAttribute) -> &'static str {
    match attribute {
        RunAttribute::RunId => "r.run_uuid",
        RunAttribute::RunName => "r.name",
        RunAttribute::Status => "r.status",
        RunAttribute::UserId => "r.user_id",
        RunAttribute::ArtifactUri => "r.artifact_uri",
        RunAttribute::StartTime => "r.start_time",
        RunAttribute::EndTime => "r.end_time",
    }
}

fn push_condition(sql: &mut Sql, comparison: &RunComparison) -> StoreResult<()> {
    let RunComparison { key, comparator, value } = comparison;
    match key {
        RunKey::Metric(metric_key) => {
            let number = match value {
                FilterValue::Num(number) => *number,
                _ => return Err(unsupported_comparison(*comparator)),
            };
            let operator =
                numeric_operator(*comparator).ok_or_else(|| unsupported_comparison(*comparator))?;
            sql.push("EXISTS (SELECT 1 FROM latest_metrics lm WHERE lm.run_uuid = r.run_uuid AND lm.key = ");
            sql.bind(metric_key.as_str());
            if *comparator == Comparator::Ne {
                // NaN differs from every number.
                sql.push(" AND (lm.is_nan = 1 OR lm.value != ").bind(number).push("))");
            } else {
                sql.push(" AND lm.is_nan = 0 AND lm.value").push(operator).bind(number).push(")");
            }
            Ok(())
        }
        RunKey::Param(param_key) => {
            push_tag_exists(sql, "params", "run_uuid", "r.run_uuid", param_key, *comparator, value)
        }
        RunKey::Tag(tag_key) => {
            push_tag_exists(sql, "tags", "run_uuid", "r.run_uuid", tag_key, *comparator, value)
        }
        RunKey::Attribute(attribute) => {
            let column = attribute_column(*attribute);
            match attribute {
                RunAttribute::StartTime | RunAttribute::EndTime => {
                    push_numeric_comparison(sql, column, *comparator, value)
                }
                _ => push_string_comparison(sql, column, *comparator, value),
            }
        }
        RunKey::Dataset(field) => {
            sql.push(
                "EXISTS (SELECT 1 FROM run_dataset_inputs di JOIN datasets d ON d.dataset_uuid = di.dataset_uuid \
                 WHERE di.run_uuid = r.run_uuid AND ",
            );
            match field {
                DatasetField::Name => push_string_comparison(sql, "d.name", *comparator, value)?,
                DatasetField::Digest => {
                    push_string_comparison(sql, "d.digest", *comparator, value)?
                }
                DatasetField::Context => {
                    sql.push(
                        "EXISTS (SELECT 1 FROM run_dataset_input_tags dt WHERE dt.run_uuid = di.run_uuid \
                         AND dt.dataset_uuid = di.dataset_uuid AND dt.key = 'mlflow.data.context' AND ",
                    );
                    push_string_comparison(sql, "dt.value", *comparator, value)?;
                    sql.push(")");
                }
            }
            sql.push(")");
            Ok(())
        }
    }
}

impl Store {
    /// Searches runs; returns one page of complete runs and whether more rows follow.
    pub async fn search_runs(&self, search: &RunSearch) -> StoreResult<(Vec<Run>, bool)> {
        if search.experiment_ids.is_empty() {
            return Ok((Vec::new(), false));
        }
        let mut joins = Sql::default();
        let mut order = String::new();
        let mut orders_by_start_time = false;
        for (index, order_by) in search.order_by.iter().enumerate() {
            let direction = if order_by.ascending { "ASC" } else { "DESC" };
            let alias = format!("o{index}");
            match &order_by.key {
                RunKey::Metric(metric_key) => {
                    joins.push(" LEFT JOIN latest_metrics ").push(&alias).push(" ON ");
                    joins
                        .push(&alias)
                        .push(".run_uuid = r.run_uuid AND ")
                        .push(&alias)
                        .push(".key = ");
                    joins.bind(metric_key.as_str());
                    order.push_str(&format!(
                        "CASE WHEN {alias}.run_uuid IS NULL THEN 2 WHEN {alias}.is_nan = 1 THEN 1 ELSE 0 END, {alias}.value {direction}, "
                    ));
                }
                RunKey::Param(key) | RunKey::Tag(key) => {
                    let table =
                        if matches!(order_by.key, RunKey::Param(_)) { "params" } else { "tags" };
                    joins.push(" LEFT JOIN ").push(table).push(" ").push(&alias).push(" ON ");
                    joins
                        .push(&alias)
                        .push(".run_uuid = r.run_uuid AND ")
                        .push(&alias)
                        .push(".key = ");
                    joins.bind(key.as_str());
                    order.push_str(&format!(
                        "CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END, {alias}.value {direction}, "
                    ));
                }
                RunKey::Attribute(attribute) => {
                    let column = attribute_column(*attribute);
                    orders_by_start_time |= *attribute == RunAttribute::StartTime;
                    order.push_str(&format!(
                        "CASE WHEN {column} IS NULL THEN 1 ELSE 0 END, {column} {direction}, "
                    ));
                }
                RunKey::Dataset(_) => {
                    return Err(DomainError::invalid(format!(
                        "Invalid order_by entity for runs: {:?}",
                        order_by.key
                    ))
                    .into());
                }
            }
        }
        if !orders_by_start_time {
            order.push_str("r.start_time DESC, ");
        }
        order.push_str("r.run_uuid ASC");

        // Join arguments come first in the text, so they are bound first.
        let mut sql = Sql::new("SELECT r.run_uuid FROM runs r");
        sql.push(&joins.text);
        sql.args.extend(joins.args);
        sql.push(" WHERE r.experiment_id IN ")
            .bind_list(search.experiment_ids.iter().map(|id| id.0));
        sql.push(" AND ");
        push_view_type(&mut sql, search.view_type, "r.lifecycle_stage");
        for comparison in &search.filter {
            sql.push(" AND ");
            push_condition(&mut sql, comparison)?;
        }
        sql.push(" ORDER BY ").push(&order);
        sql.push(" LIMIT ").bind(search.max_results + 1);
        sql.push(" OFFSET ").bind(i64::try_from(search.offset).unwrap_or(i64::MAX));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        let mut run_ids = rows
            .iter()
            .map(|row| row.try_get::<String, _>("run_uuid"))
            .collect::<sqlx::Result<Vec<_>>>()?;
        let has_more = run_ids.len() as i64 > search.max_results;
        run_ids.truncate(usize::try_from(search.max_results).unwrap_or(usize::MAX));
        Ok((self.load_runs(&run_ids).await?, has_more))
    }
}

/// A recent run with the names of the project and experiment holding it (for overviews).
#[derive(Debug, Clone)]
pub struct RecentRun {
    /// The project's name.
    pub project: String,
    /// The experiment's name.
    pub experiment: String,
    /// The run.
    pub info: cairn_domain::entities::RunInfo,
}

impl Store {
    /// The most recently started active runs of active experiments in these projects, newest
    /// first: one query, whatever the number of projects and experiments.
    pub async fn recent_runs(
        &self,
        project_ids: &[i64],
        limit: i64,
    ) -> StoreResult<Vec<RecentRun>> {
        if project_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("SELECT ");
        sql.push(crate::runs::RUN_COLUMNS)
            .push(
                ", p.name AS project_name, e.name AS experiment_name FROM runs r \
                 JOIN experiments e ON e.experiment_id = r.experiment_id \
                 JOIN projects p ON p.id = e.project_id WHERE e.project_id IN ",
            )
            .bind_list(project_ids.iter().copied())
            .push(
                " AND r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' \
                 ORDER BY r.start_time DESC, r.run_uuid LIMIT ",
            )
            .bind(limit.max(1));
        let rows = sql.query(self.dialect).fetch_all(self.reader()).await?;
        rows.iter()
            .map(|row| -> StoreResult<RecentRun> {
                Ok(RecentRun {
                    project: row.try_get("project_name")?,
                    experiment: row.try_get("experiment_name")?,
                    info: crate::runs::info_from_row(row)?,
                })
            })
            .collect()
    }
}
