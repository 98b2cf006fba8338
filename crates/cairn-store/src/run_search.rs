//! `runs/search`: MLflow's filter grammar compiled to one indexed SQL query, then the page's
//! runs loaded in bulk. Metric conditions use the per-run latest values (`latest_metrics`).

use cairn_domain::DomainError;
use cairn_domain::entities::{Run, ViewType};
use cairn_domain::ids::ExperimentId;
use cairn_domain::page_token::SortValue;
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
    /// Rows to skip (from the page token), when `after` is not given.
    pub offset: u64,
    /// Where the previous page ended (from a keyset page token); the page starts after it.
    pub after: Option<Vec<SortValue>>,
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

/// The SQL type of an ordering term, for reading the last row's value and binding it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermKind {
    Int,
    Float,
    Text,
}

/// One term of the ORDER BY: an expression, its direction and its type.
#[derive(Debug, Clone)]
struct Term {
    expr: String,
    descending: bool,
    kind: TermKind,
}

impl Term {
    fn new(expr: impl Into<String>, descending: bool, kind: TermKind) -> Self {
        Self { expr: expr.into(), descending, kind }
    }
}

fn attribute_kind(attribute: RunAttribute) -> TermKind {
    match attribute {
        RunAttribute::StartTime | RunAttribute::EndTime => TermKind::Int,
        _ => TermKind::Text,
    }
}

fn invalid_position() -> crate::StoreError {
    DomainError::invalid("Invalid page token, it does not belong to this search").into()
}

/// One page of a run search.
#[derive(Debug, Clone)]
pub struct RunPage {
    /// The runs, complete.
    pub runs: Vec<Run>,
    /// Whether more rows follow.
    pub has_more: bool,
    /// The ordering values of the page's last row, for a keyset token to the next page.
    pub last: Option<Vec<SortValue>>,
}

impl Store {
    /// Searches runs; returns one page of complete runs and whether more rows follow.
    pub async fn search_runs(&self, search: &RunSearch) -> StoreResult<(Vec<Run>, bool)> {
        let page = self.search_runs_page(search).await?;
        Ok((page.runs, page.has_more))
    }

    /// Searches runs; with `search.after` the page starts right after that position (keyset
    /// paging: as fast deep in the results as at their start), otherwise at `search.offset`.
    pub async fn search_runs_page(&self, search: &RunSearch) -> StoreResult<RunPage> {
        if search.experiment_ids.is_empty() {
            return Ok(RunPage { runs: Vec::new(), has_more: false, last: None });
        }
        let mut joins = Sql::default();
        let mut terms: Vec<Term> = Vec::new();
        let mut orders_by_start_time = false;
        for (index, order_by) in search.order_by.iter().enumerate() {
            let descending = !order_by.ascending;
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
                    terms.push(Term::new(
                        format!(
                            "(CASE WHEN {alias}.run_uuid IS NULL THEN 2 WHEN {alias}.is_nan = 1 THEN 1 ELSE 0 END)"
                        ),
                        false,
                        TermKind::Int,
                    ));
                    terms.push(Term::new(format!("{alias}.value"), descending, TermKind::Float));
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
                    terms.push(Term::new(
                        format!("(CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END)"),
                        false,
                        TermKind::Int,
                    ));
                    terms.push(Term::new(format!("{alias}.value"), descending, TermKind::Text));
                }
                RunKey::Attribute(attribute) => {
                    let column = attribute_column(*attribute);
                    orders_by_start_time |= *attribute == RunAttribute::StartTime;
                    terms.push(Term::new(
                        format!("(CASE WHEN {column} IS NULL THEN 1 ELSE 0 END)"),
                        false,
                        TermKind::Int,
                    ));
                    terms.push(Term::new(column, descending, attribute_kind(*attribute)));
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
            terms.push(Term::new("r.start_time", true, TermKind::Int));
        }
        terms.push(Term::new("r.run_uuid", false, TermKind::Text));

        let limit = search.max_results + 1;
        let leading = search.order_by.first().map(|order_by| &order_by.key);
        let metric_first = matches!(leading, Some(RunKey::Metric(_)));
        // A metric, param or tag first in the order splits the runs into its null-ordering
        // classes (present, NaN, missing). Read class by class, the present values come
        // straight from an index on the key's values (`latest_metrics (experiment_id, key,
        // value)`, `params`/`tags (key, value)`) in order, instead of sorting every run of the
        // experiment: the first page costs a few index steps, not a sort of 100,000 rows. Offset
        // pages (MLflow's own tokens) keep the one-query form.
        let staged = search.experiment_ids.len() == 1
            && (search.offset == 0 || search.after.is_some())
            && matches!(leading, Some(RunKey::Metric(_) | RunKey::Param(_) | RunKey::Tag(_)));
        let rows = if staged {
            let classes: &[i64] = if metric_first { &[0, 1, 2] } else { &[0, 1] };
            let start = match &search.after {
                None => 0,
                Some(after) if after.len() == terms.len() => match after.first() {
                    Some(SortValue::Int(class)) => *class,
                    _ => return Err(invalid_position()),
                },
                Some(_) => return Err(invalid_position()),
            };
            let mut rows = Vec::new();
            for &class in classes.iter().filter(|class| **class >= start) {
                let wanted = limit - rows.len() as i64;
                if wanted <= 0 {
                    break;
                }
                let stage = Stage {
                    class,
                    metric: metric_first,
                    experiment: search.experiment_ids[0].0,
                    after: search
                        .after
                        .as_deref()
                        .filter(|_| class == start)
                        .map(|after| &after[1..]),
                };
                rows.extend(
                    self.fetch_run_rows(search, &joins, &terms, Some(stage), wanted).await?,
                );
            }
            rows
        } else {
            self.fetch_run_rows(search, &joins, &terms, None, limit).await?
        };
        let has_more = rows.len() as i64 > search.max_results;
        let kept = &rows[..rows.len().min(usize::try_from(search.max_results).unwrap_or(0))];
        let run_ids = kept
            .iter()
            .map(|row| row.try_get::<String, _>("run_uuid"))
            .collect::<sqlx::Result<Vec<_>>>()?;
        let last = match kept.last() {
            Some(row) => Some(
                terms
                    .iter()
                    .enumerate()
                    .map(|(index, term)| read_sort_value(row, index, term.kind))
                    .collect::<StoreResult<Vec<_>>>()?,
            ),
            None => None,
        };
        Ok(RunPage { runs: self.load_runs(&run_ids).await?, has_more, last })
    }
}

/// One null-ordering class of the leading key, read on its own (see `search_runs_page`).
struct Stage<'a> {
    /// The class: 0 present, then NaN (metrics), then missing.
    class: i64,
    /// Whether the leading key is a metric (its rows carry the experiment id and a NaN flag).
    metric: bool,
    /// The one experiment searched.
    experiment: i64,
    /// Where the previous page ended within this class (the position without its class).
    after: Option<&'a [SortValue]>,
}

impl Store {
    /// One query of a run search: the whole search (`stage` absent) or one class of its
    /// leading key; returns up to `limit` rows carrying `run_uuid` and the terms as `k0…`.
    async fn fetch_run_rows(
        &self,
        search: &RunSearch,
        joins: &Sql,
        terms: &[Term],
        stage: Option<Stage<'_>>,
        limit: i64,
    ) -> StoreResult<Vec<sqlx::any::AnyRow>> {
        // Join arguments come first in the text, so they are bound first.
        let mut sql = Sql::new("SELECT r.run_uuid");
        for (index, term) in terms.iter().enumerate() {
            sql.push(", ").push(&term.expr).push(&format!(" AS k{index}"));
        }
        sql.push(" FROM runs r");
        sql.push(&joins.text);
        sql.args.extend(joins.args.iter().cloned());
        sql.push(" WHERE r.experiment_id IN ")
            .bind_list(search.experiment_ids.iter().map(|id| id.0));
        sql.push(" AND ");
        push_view_type(&mut sql, search.view_type, "r.lifecycle_stage");
        for comparison in &search.filter {
            sql.push(" AND ");
            push_condition(&mut sql, comparison)?;
        }
        let ordering = match &stage {
            Some(stage) => {
                match (stage.class, stage.metric) {
                    // Present values: conditions that make the outer join an inner one and
                    // name the index's leading columns.
                    (0, true) => {
                        sql.push(" AND o0.run_uuid IS NOT NULL AND o0.is_nan = 0 AND o0.experiment_id = ")
                            .bind(stage.experiment);
                    }
                    (0, false) => {
                        sql.push(" AND o0.value IS NOT NULL");
                    }
                    (class, _) => {
                        sql.push(" AND ").push(&terms[0].expr).push(" = ").bind(class);
                    }
                }
                if let Some(after) = stage.after {
                    push_after(&mut sql, &terms[1..], after)?;
                }
                &terms[1..]
            }
            None => {
                if let Some(after) = &search.after {
                    push_after(&mut sql, terms, after)?;
                }
                terms
            }
        };
        sql.push(" ORDER BY ");
        for (index, term) in ordering.iter().enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.push(&term.expr).push(if term.descending { " DESC" } else { " ASC" });
        }
        sql.push(" LIMIT ").bind(limit);
        if stage.is_none() && search.after.is_none() {
            sql.push(" OFFSET ").bind(i64::try_from(search.offset).unwrap_or(i64::MAX));
        }
        Ok(sql.query(self.dialect).fetch_all(self.reader()).await?)
    }
}

fn read_sort_value(
    row: &sqlx::any::AnyRow,
    index: usize,
    kind: TermKind,
) -> StoreResult<SortValue> {
    let column = format!("k{index}");
    let column = column.as_str();
    // Drivers hand back the narrowest type they have (PostgreSQL's CASE is an int4, SQLite
    // keeps whole floats as integers), so each kind tolerates its narrower relatives.
    let value = match kind {
        TermKind::Int => match row.try_get::<Option<i64>, _>(column) {
            Ok(value) => value.map(SortValue::Int),
            Err(error) => row
                .try_get::<Option<i32>, _>(column)
                .map_err(|_| error)?
                .map(|value| SortValue::Int(i64::from(value))),
        },
        TermKind::Float => match row.try_get::<Option<f64>, _>(column) {
            Ok(value) => value.map(SortValue::Float),
            Err(error) => row
                .try_get::<Option<i64>, _>(column)
                .map_err(|_| error)?
                .map(|value| SortValue::Float(value as f64)),
        },
        TermKind::Text => row.try_get::<Option<String>, _>(column)?.map(SortValue::Text),
    };
    Ok(value.unwrap_or(SortValue::Null))
}

/// `AND (row after position)` in the order of `terms`: for some term, every earlier term equal
/// (NULL equal to NULL) and this one strictly after. A NULL term has nothing after it within its
/// null-ordering class, which an earlier term always separates. The first term's bound is
/// repeated on its own so an index on it can be used to seek.
fn push_after(sql: &mut Sql, terms: &[Term], after: &[SortValue]) -> StoreResult<()> {
    if after.len() != terms.len() {
        return Err(invalid_position());
    }
    let bind = |sql: &mut Sql, kind: TermKind, value: &SortValue| -> StoreResult<()> {
        match (kind, value) {
            (TermKind::Int, SortValue::Int(value)) => sql.bind(*value),
            (TermKind::Float, SortValue::Float(value)) => sql.bind(*value),
            // A float column compared with an integer-looking value (SQLite may hand either).
            (TermKind::Float, SortValue::Int(value)) => sql.bind(*value as f64),
            (TermKind::Text, SortValue::Text(value)) => sql.bind(value.as_str()),
            _ => return Err(invalid_position()),
        };
        Ok(())
    };
    sql.push(" AND (");
    let mut first_disjunct = true;
    for (index, (term, value)) in terms.iter().zip(after).enumerate() {
        if matches!(value, SortValue::Null) {
            continue;
        }
        if !first_disjunct {
            sql.push(" OR ");
        }
        first_disjunct = false;
        sql.push("(");
        for (earlier, earlier_value) in terms[..index].iter().zip(after) {
            if matches!(earlier_value, SortValue::Null) {
                sql.push(&earlier.expr).push(" IS NULL AND ");
            } else {
                sql.push(&earlier.expr).push(" = ");
                bind(sql, earlier.kind, earlier_value)?;
                sql.push(" AND ");
            }
        }
        sql.push(&term.expr).push(if term.descending { " < " } else { " > " });
        bind(sql, term.kind, value)?;
        sql.push(")");
    }
    if first_disjunct {
        sql.push("1 = 0");
    }
    sql.push(")");
    if let (Some(term), Some(value)) = (terms.first(), after.first())
        && !matches!(value, SortValue::Null)
    {
        sql.push(" AND ").push(&term.expr).push(if term.descending { " <= " } else { " >= " });
        bind(sql, term.kind, value)?;
    }
    Ok(())
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
