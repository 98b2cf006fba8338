//! The runs table of an experiment: one page of runs per request from the tracking service's
//! search (MLflow's filter grammar and `order_by`, offset page tokens), so it stays as fast with
//! 100,000 runs as with ten. `cols` picks the param, metric and tag columns
//! (`params.lr,metrics.auc,tags.team`); without it the page's first params and metrics are
//! shown. A filter or order the grammar refuses is shown as a message with a 400, never a 500.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::ErrorKind;
use cairn_domain::entities::{Run, ViewType};
use cairn_domain::ids::ExperimentId;
use cairn_domain::page_token::{decode_offset, encode_offset};
use cairn_service::Services;
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PagePath, PageQuery};
use crate::layout::{Layout, encode, number, render_with, time};
use crate::session::Visitor;

/// Runs per page unless `per` says otherwise.
const DEFAULT_PER_PAGE: i64 = 50;
/// The largest page.
const MAX_PER_PAGE: i64 = 500;
/// Default columns of each kind taken from the page's runs.
const DEFAULT_COLUMNS: usize = 6;
/// The most columns `cols` may ask for.
const MAX_COLUMNS: usize = 40;

/// The table's query.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    filter: Option<String>,
    order: Option<String>,
    cols: Option<String>,
    page: Option<String>,
    per: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Param,
    Metric,
    Tag,
}

/// A chosen column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    kind: Kind,
    key: String,
}

impl Column {
    fn parse(spec: &str) -> Option<Column> {
        let (prefix, key) = spec.trim().split_once('.')?;
        let kind = match prefix {
            "params" | "param" => Kind::Param,
            "metrics" | "metric" => Kind::Metric,
            "tags" | "tag" => Kind::Tag,
            _ => return None,
        };
        let key = key.trim_matches('`');
        (!key.is_empty()).then(|| Column { kind, key: key.to_string() })
    }

    fn prefix(&self) -> &'static str {
        match self.kind {
            Kind::Param => "params",
            Kind::Metric => "metrics",
            Kind::Tag => "tags",
        }
    }

    /// The column as `cols` names it.
    fn spec(&self) -> String {
        format!("{}.{}", self.prefix(), self.key)
    }

    /// The identifier of an `order_by` clause (backticks keep any key whole).
    fn order_key(&self) -> String {
        format!("{}.`{}`", self.prefix(), self.key)
    }

    fn value(&self, run: &Run) -> String {
        match self.kind {
            Kind::Param => run.params.iter().find(|p| p.key == self.key).map(|p| p.value.clone()),
            Kind::Metric => run.metrics.iter().find(|m| m.key == self.key).map(|m| number(m.value)),
            Kind::Tag => run.tags.iter().find(|t| t.key == self.key).map(|t| t.value.clone()),
        }
        .unwrap_or_default()
    }
}

/// A sortable column header.
struct Header {
    label: String,
    kind: &'static str,
    href: String,
    /// `ascending`, `descending` or `none` (for `aria-sort`).
    sort: &'static str,
}

struct Row {
    run_id: String,
    name: String,
    status: String,
    started: String,
    user: String,
    cells: Vec<String>,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    layout: Layout,
    project: String,
    experiment: String,
    experiment_id: i64,
    filter: String,
    order: String,
    cols: String,
    per: i64,
    available: String,
    headers: Vec<Header>,
    rows: Vec<Row>,
    error: Option<String>,
    first: u64,
    last: u64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

/// Builds a link to this table with the given state.
struct Links<'a> {
    base: String,
    filter: &'a str,
    cols: &'a str,
    per: i64,
}

impl Links<'_> {
    fn href(&self, order: &str, page: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if !self.filter.is_empty() {
            query.append_pair("filter", self.filter);
        }
        if !order.is_empty() {
            query.append_pair("order", order);
        }
        if !self.cols.is_empty() {
            query.append_pair("cols", self.cols);
        }
        if self.per != DEFAULT_PER_PAGE {
            query.append_pair("per", &self.per.to_string());
        }
        if let Some(page) = page {
            query.append_pair("page", page);
        }
        let query = query.finish();
        if query.is_empty() { self.base.clone() } else { format!("{}?{query}", self.base) }
    }

    /// A header that sorts by `key`: descending first, then ascending.
    fn header(&self, label: String, kind: &'static str, key: &str, current: &str) -> Header {
        let (descending, ascending) = (format!("{key} DESC"), format!("{key} ASC"));
        let (sort, next) = if current == descending {
            ("descending", ascending)
        } else if current == ascending {
            ("ascending", descending)
        } else {
            ("none", descending)
        };
        Header { label, kind, href: self.href(&next, None), sort }
    }
}

/// The page's first params and metrics, when `cols` names none.
fn default_columns(runs: &[Run]) -> Vec<Column> {
    let mut params = std::collections::BTreeSet::new();
    let mut metrics = std::collections::BTreeSet::new();
    for run in runs {
        params.extend(run.params.iter().map(|param| param.key.as_str()));
        metrics.extend(run.metrics.iter().map(|metric| metric.key.as_str()));
    }
    let params = params
        .into_iter()
        .take(DEFAULT_COLUMNS)
        .map(|key| Column { kind: Kind::Param, key: key.to_string() });
    let metrics = metrics
        .into_iter()
        .take(DEFAULT_COLUMNS)
        .map(|key| Column { kind: Kind::Metric, key: key.to_string() });
    params.chain(metrics).collect()
}

/// `GET /projects/{project}/experiments/{experiment_id}`.
pub async fn table(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, experiment_id)): PagePath<(String, String)>,
    PageQuery(query): PageQuery<RunsQuery>,
) -> PageResult {
    let experiment_id: i64 = experiment_id
        .parse()
        .map_err(|_| PageError::not_found(format!("no experiment '{experiment_id}'")))?;
    let context = visitor.in_project(&project);
    let experiment =
        services.tracking.get_experiment(&context, ExperimentId(experiment_id)).await?;
    let filter = query.filter.unwrap_or_default().trim().to_string();
    let order = query.order.unwrap_or_default().trim().to_string();
    let cols = query.cols.unwrap_or_default().trim().to_string();
    let per = query.per.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
    let page = query.page.unwrap_or_default();
    let offset = decode_offset(&page).map_err(|error| PageError::bad_request(error.message))?;
    let order_by: Vec<String> = if order.is_empty() { Vec::new() } else { vec![order.clone()] };
    let searched = services
        .tracking
        .search_runs(
            &context,
            vec![ExperimentId(experiment_id)],
            &filter,
            &order_by,
            ViewType::ActiveOnly,
            per,
            &page,
        )
        .await;
    let (runs, next_token, error) = match searched {
        Ok((runs, next)) => (runs, next, None),
        Err(error) if error.kind == ErrorKind::InvalidArgument => {
            (Vec::new(), None, Some(error.message))
        }
        Err(error) => return Err(error.into()),
    };
    let mut columns: Vec<Column> = cols.split(',').filter_map(Column::parse).collect();
    columns.dedup();
    columns.truncate(MAX_COLUMNS);
    if columns.is_empty() {
        columns = default_columns(&runs);
    }
    let links = Links {
        base: format!("/projects/{}/experiments/{experiment_id}", encode(&project)),
        filter: &filter,
        cols: &cols,
        per,
    };
    let mut headers = vec![
        links.header("Run".into(), "attribute", "attributes.run_name", &order),
        links.header("Started".into(), "attribute", "attributes.start_time", &order),
        links.header("Status".into(), "attribute", "attributes.status", &order),
    ];
    for column in &columns {
        let kind = match column.kind {
            Kind::Param => "param",
            Kind::Metric => "metric",
            Kind::Tag => "tag",
        };
        headers.push(links.header(column.key.clone(), kind, &column.order_key(), &order));
    }
    let available = available_keys(&runs);
    let rows: Vec<Row> = runs
        .iter()
        .map(|run| Row {
            run_id: run.info.run_id.clone(),
            name: run.info.run_name.clone(),
            status: run.info.status.as_str().to_string(),
            started: time(run.info.start_time),
            user: run.info.user_id.clone(),
            cells: columns.iter().map(|column| column.value(run)).collect(),
        })
        .collect();
    let prev_href = (offset > 0).then(|| {
        let previous = offset.saturating_sub(per as u64);
        let token = (previous > 0).then(|| encode_offset(previous));
        links.href(&order, token.as_deref())
    });
    let next_href = next_token.as_deref().map(|token| links.href(&order, Some(token)));
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = RunsPage {
        layout: Layout::new(&visitor, "projects", format!("{} · runs", experiment.name)),
        project,
        experiment: experiment.name,
        experiment_id,
        filter,
        order,
        cols: if cols.is_empty() {
            columns.iter().map(Column::spec).collect::<Vec<_>>().join(",")
        } else {
            cols.clone()
        },
        per,
        available,
        headers,
        first: offset + 1,
        last: offset + rows.len() as u64,
        rows,
        error,
        prev_href,
        next_href,
    };
    render_with(status, &page)
}

/// The param, metric and tag keys of the page's runs, as `cols` would name them (a hint).
fn available_keys(runs: &[Run]) -> String {
    let mut keys = std::collections::BTreeSet::new();
    for run in runs {
        keys.extend(run.params.iter().map(|param| format!("params.{}", param.key)));
        keys.extend(run.metrics.iter().map(|metric| format!("metrics.{}", metric.key)));
        keys.extend(
            run.tags
                .iter()
                .filter(|tag| !tag.key.starts_with("mlflow."))
                .map(|tag| format!("tags.{}", tag.key)),
        );
    }
    keys.into_iter().take(60).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_parse_and_quote() {
        let column = Column::parse(" metrics.val loss ").unwrap();
        assert_eq!(column.kind, Kind::Metric);
        assert_eq!(column.order_key(), "metrics.`val loss`");
        assert_eq!(Column::parse("params.lr").unwrap().spec(), "params.lr");
        assert!(Column::parse("attributes.status").is_none());
        assert!(Column::parse("tags.").is_none());
    }

    #[test]
    fn headers_toggle_descending_then_ascending() {
        let links = Links { base: "/t".into(), filter: "", cols: "", per: DEFAULT_PER_PAGE };
        let fresh = links.header("auc".into(), "metric", "metrics.`auc`", "");
        assert_eq!(fresh.sort, "none");
        assert!(fresh.href.contains("DESC"));
        let down = links.header("auc".into(), "metric", "metrics.`auc`", "metrics.`auc` DESC");
        assert_eq!(down.sort, "descending");
        assert!(down.href.contains("ASC"));
    }
}
