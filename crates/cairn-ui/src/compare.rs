//! Two to ten runs side by side: their params (differing rows marked, or only those with
//! `?diff=1`), latest metrics, and one chart per metric with a line per run (each history
//! sampled evenly to at most [`MAX_POINTS`] points by the service).

use askama::Template;
use axum::extract::{RawQuery, State};
use cairn_domain::entities::Run;
use cairn_service::Services;

use crate::charts::{Chart, MAX_POINTS, Series};
use crate::error::{PageError, PageResult};
use crate::extract::PagePath;
use crate::layout::{Layout, number, render};
use crate::session::Visitor;

/// The fewest and most runs compared.
const MIN_RUNS: usize = 2;
const MAX_RUNS: usize = 10;
/// The most metrics charted.
const MAX_CHARTS: usize = 12;

struct RunColumn {
    run_id: String,
    name: String,
    experiment_id: i64,
    swatch: usize,
}

struct DiffRow {
    key: String,
    values: Vec<String>,
    differs: bool,
}

struct ChartView {
    metric: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    layout: Layout,
    project: String,
    runs: Vec<RunColumn>,
    params: Vec<DiffRow>,
    metrics: Vec<DiffRow>,
    charts: Vec<ChartView>,
    only_differences: bool,
    all_href: String,
    diff_href: String,
    more_metrics: bool,
}

/// Rows of `key → value per run`, over the union of keys, sorted by key.
fn diff_rows(runs: &[Run], values: impl Fn(&Run) -> Vec<(String, String)>) -> Vec<DiffRow> {
    let per_run: Vec<std::collections::HashMap<String, String>> =
        runs.iter().map(|run| values(run).into_iter().collect()).collect();
    let keys: std::collections::BTreeSet<&String> =
        per_run.iter().flat_map(|values| values.keys()).collect();
    keys.into_iter()
        .map(|key| {
            let values: Vec<String> =
                per_run.iter().map(|values| values.get(key).cloned().unwrap_or_default()).collect();
            let differs = values.iter().any(|value| value != &values[0]);
            DiffRow { key: key.clone(), values, differs }
        })
        .collect()
}

/// `GET /projects/{project}/compare?runs=…&runs=…[&diff=1]`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let query = query.unwrap_or_default();
    let mut run_ids: Vec<String> = Vec::new();
    let mut only_differences = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "runs" => {
                for id in value.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                    if !run_ids.iter().any(|known| known == id) {
                        run_ids.push(id.to_string());
                    }
                }
            }
            "diff" => only_differences = value == "1",
            _ => {}
        }
    }
    if !(MIN_RUNS..=MAX_RUNS).contains(&run_ids.len()) {
        return Err(PageError::bad_request(format!(
            "select between {MIN_RUNS} and {MAX_RUNS} runs to compare ({} selected)",
            run_ids.len()
        )));
    }
    let context = visitor.in_project(&project);
    let mut runs = Vec::with_capacity(run_ids.len());
    for run_id in &run_ids {
        runs.push(services.tracking.get_run(&context, run_id).await?);
    }
    let mut params = diff_rows(&runs, |run| {
        run.params.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
    });
    let metrics = diff_rows(&runs, |run| {
        run.metrics.iter().map(|m| (m.key.clone(), number(m.value))).collect()
    });
    if only_differences {
        params.retain(|row| row.differs);
    }
    let mut charts = Vec::new();
    for (index, row) in metrics.iter().take(MAX_CHARTS).enumerate() {
        let points = services
            .tracking
            .sample_metric_histories(&context, &run_ids, &row.key, MAX_POINTS as i64, None)
            .await?;
        let series = runs
            .iter()
            .map(|run| Series {
                label: run.info.run_name.clone(),
                points: points
                    .iter()
                    .filter(|point| point.run_id.as_deref() == Some(run.info.run_id.as_str()))
                    .map(|point| (point.step as f64, point.value))
                    .collect(),
            })
            .collect();
        let chart = Chart { id: format!("compare-{index}"), metric: row.key.clone(), series };
        charts.push(ChartView { metric: row.key.clone(), svg: chart.svg() });
    }
    let base = {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for run_id in &run_ids {
            serializer.append_pair("runs", run_id);
        }
        format!("/projects/{}/compare?{}", crate::layout::encode(&project), serializer.finish())
    };
    let page = ComparePage {
        layout: Layout::new(&visitor, "projects", format!("Compare {} runs", runs.len())),
        runs: runs
            .iter()
            .enumerate()
            .map(|(index, run)| RunColumn {
                run_id: run.info.run_id.clone(),
                name: run.info.run_name.clone(),
                experiment_id: run.info.experiment_id.0,
                swatch: index % 10,
            })
            .collect(),
        more_metrics: metrics.len() > MAX_CHARTS,
        params,
        metrics,
        charts,
        only_differences,
        diff_href: format!("{base}&diff=1"),
        all_href: base,
        project,
    };
    render(&page)
}
