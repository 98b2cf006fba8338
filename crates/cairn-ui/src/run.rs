//! A run: its attributes, params, latest metrics, tags, lineage (the job, snapshot,
//! environment and tier it ran on, the datasets it read, the model versions registered from
//! it), one level of its artifacts (with previews and downloads), and a server-drawn chart of
//! each metric's history. Contributors may rename it and set tags. A history longer than
//! [`MAX_POINTS`] is sampled evenly by the service (first and last points kept), and the chart
//! says so.

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cairn_domain::ErrorKind;
use cairn_domain::entities::{Run, Tag};
use cairn_service::{RunUpdate, Services};
use futures::TryStreamExt;
use serde::Deserialize;

use crate::artifacts::proxied_root;
use crate::charts::{Chart, MAX_POINTS, Series};
use crate::comments::{CommentsView, load as load_comments};
use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath, PageQuery};
use crate::layout::{Layout, encode, maybe_time, number, render, time};
use crate::session::Visitor;

/// The most metrics charted on a run's page (all are listed in the metrics table).
const MAX_CHARTS: usize = 24;
/// The most registered versions listed as made from one run.
const MAX_VERSIONS: i64 = 50;

struct KeyValue {
    key: String,
    value: String,
}

struct ArtifactRow {
    name: String,
    href: String,
    download_href: String,
    is_dir: bool,
    size: String,
}

/// Where the run came from and what was made from it.
struct LineageView {
    /// The job that produced it, with its page.
    job: Option<(i64, String, String)>,
    /// `cairn.*` tags (snapshot, environment, tier, executor, datasets, reproduces).
    tags: Vec<KeyValue>,
    /// Cairn dataset versions the job read: name, version, page.
    datasets: Vec<(String, i64, String)>,
    /// MLflow dataset inputs: name, digest, source type.
    inputs: Vec<(String, String, String)>,
    /// Runs that reproduce it: id, page.
    reproductions: Vec<(String, String)>,
    /// Registered model versions made from it: label, page.
    versions: Vec<(String, String)>,
}

impl LineageView {
    fn is_empty(&self) -> bool {
        self.job.is_none()
            && self.tags.is_empty()
            && self.inputs.is_empty()
            && self.versions.is_empty()
    }
}

struct ChartView {
    metric: String,
    svg: String,
    points: usize,
    downsampled: bool,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    layout: Layout,
    project: String,
    experiment: String,
    experiment_id: i64,
    run_id: String,
    name: String,
    status: String,
    user: String,
    started: String,
    ended: String,
    params: Vec<KeyValue>,
    metrics: Vec<KeyValue>,
    tags: Vec<KeyValue>,
    system_tags: Vec<KeyValue>,
    artifacts: Vec<ArtifactRow>,
    artifact_path: String,
    artifact_parent: Option<String>,
    artifacts_elsewhere: Option<String>,
    charts: Vec<ChartView>,
    more_metrics: bool,
    lineage: LineageView,
    can_write: bool,
    comments: CommentsView,
}

/// `?path=` of the artifact listing.
#[derive(Deserialize)]
pub struct RunQuery {
    path: Option<String>,
}

fn size(bytes: Option<u64>) -> String {
    match bytes {
        None => String::new(),
        Some(bytes) if bytes < 1024 => format!("{bytes} B"),
        Some(bytes) if bytes < 1024 * 1024 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        Some(bytes) => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
    }
}

/// The history of one metric for a chart: whole when it has at most [`MAX_POINTS`] points,
/// sampled otherwise (second return value).
async fn history(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    run_id: &str,
    key: &str,
) -> PageResult<(Vec<(f64, f64)>, bool)> {
    let context = visitor.in_project(project);
    let limit = MAX_POINTS as i64 + 1;
    let (points, more) =
        services.tracking.get_metric_history(&context, run_id, key, "", limit).await?;
    if more.is_none() && points.len() <= MAX_POINTS {
        return Ok((points.iter().map(|p| (p.step as f64, p.value)).collect(), false));
    }
    let run_ids = [run_id.to_string()];
    let sampled = services
        .tracking
        .sample_metric_histories(&context, &run_ids, key, MAX_POINTS as i64, None)
        .await?;
    Ok((sampled.iter().map(|p| (p.step as f64, p.value)).collect(), true))
}

fn key_values<'a>(pairs: impl Iterator<Item = (&'a str, String)>) -> Vec<KeyValue> {
    let mut rows: Vec<KeyValue> =
        pairs.map(|(key, value)| KeyValue { key: key.to_string(), value }).collect();
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// `GET /projects/{project}/runs/{run_id}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, run_id)): PagePath<(String, String)>,
    PageQuery(query): PageQuery<RunQuery>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let run: Run = services.tracking.get_run(&context, &run_id).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let experiment = services.tracking.get_experiment(&context, run.info.experiment_id).await?;
    let artifact_path = query.path.unwrap_or_default().trim_matches('/').to_string();
    let (artifacts, artifacts_elsewhere) =
        list_artifacts(&services, &visitor, &project, &run, &artifact_path).await?;
    let mut metric_keys: Vec<&str> = run.metrics.iter().map(|metric| metric.key.as_str()).collect();
    metric_keys.sort_unstable();
    metric_keys.dedup();
    let mut charts = Vec::new();
    for (index, key) in metric_keys.iter().take(MAX_CHARTS).enumerate() {
        let (points, downsampled) = history(&services, &visitor, &project, &run_id, key).await?;
        let chart = Chart {
            id: format!("chart-{index}"),
            metric: key.to_string(),
            series: vec![Series { label: run.info.run_name.clone(), points }],
        };
        let points = chart.series[0].points.len();
        charts.push(ChartView { metric: key.to_string(), svg: chart.svg(), points, downsampled });
    }
    let (system_tags, other_tags): (Vec<&Tag>, Vec<&Tag>) =
        run.tags.iter().partition(|tag| tag.key.starts_with("mlflow."));
    let (cairn_tags, tags): (Vec<&Tag>, Vec<&Tag>) =
        other_tags.into_iter().partition(|tag| tag.key.starts_with("cairn."));
    let cairn_tags = key_values(cairn_tags.iter().map(|t| (t.key.as_str(), t.value.clone())));
    let lineage = lineage(&services, &visitor, &project, &run, cairn_tags).await?;
    let target = cairn_domain::comments::CommentTarget::Run(run.info.run_id.clone());
    let comments =
        load_comments(&services, &visitor, &project, &target, access.can_write, access.can_manage)
            .await?;
    let artifact_parent = (!artifact_path.is_empty())
        .then(|| artifact_path.rsplit_once('/').map_or(String::new(), |(parent, _)| parent.into()));
    let page = RunPage {
        layout: Layout::new(&visitor, "projects", run.info.run_name.clone()),
        experiment: experiment.name,
        experiment_id: experiment.experiment_id.0,
        run_id: run.info.run_id.clone(),
        name: run.info.run_name.clone(),
        status: run.info.status.as_str().to_string(),
        user: run.info.user_id.clone(),
        started: time(run.info.start_time),
        ended: maybe_time(run.info.end_time),
        params: key_values(run.params.iter().map(|p| (p.key.as_str(), p.value.clone()))),
        metrics: key_values(run.metrics.iter().map(|m| (m.key.as_str(), number(m.value)))),
        tags: key_values(tags.iter().map(|t| (t.key.as_str(), t.value.clone()))),
        system_tags: key_values(system_tags.iter().map(|t| (t.key.as_str(), t.value.clone()))),
        artifacts,
        artifact_path,
        artifact_parent,
        artifacts_elsewhere,
        more_metrics: metric_keys.len() > MAX_CHARTS,
        charts,
        lineage,
        can_write: access.can_write,
        comments,
        project,
    };
    render(&page)
}

/// The run's lineage: its job (when a Cairn job produced it), `cairn.*` tags, the datasets it
/// read and the model versions registered from it.
async fn lineage(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    run: &Run,
    tags: Vec<KeyValue>,
) -> PageResult<LineageView> {
    let context = visitor.in_project(project);
    let run_id = &run.info.run_id;
    let base = format!("/projects/{}", encode(project));
    let mut view = LineageView {
        job: None,
        tags,
        datasets: Vec::new(),
        inputs: run
            .dataset_inputs
            .iter()
            .map(|input| {
                let dataset = &input.dataset;
                (dataset.name.clone(), dataset.digest.clone(), dataset.source_type.clone())
            })
            .collect(),
        reproductions: Vec::new(),
        versions: Vec::new(),
    };
    match services.jobs.lineage(&visitor.context, project, run_id).await {
        Ok(found) => {
            let job = &found.job;
            let command = job.template.command.join(" ");
            view.job = Some((job.id, format!("{base}/jobs/{}", job.id), command));
            view.datasets = found
                .datasets
                .into_iter()
                .map(|used| {
                    let href =
                        format!("{base}/datasets/{}/versions/{}", encode(&used.name), used.version);
                    (used.name, used.version, href)
                })
                .collect();
            view.reproductions = found
                .reproductions
                .into_iter()
                .map(|id| {
                    let href = format!("{base}/runs/{}", encode(&id));
                    (id, href)
                })
                .collect();
        }
        Err(error) if error.kind == ErrorKind::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    let filter = format!("run_id = {}", crate::layout::literal(run_id));
    let (versions, _) =
        services.registry.search_versions(&context, &filter, &[], MAX_VERSIONS, "").await?;
    view.versions = versions
        .into_iter()
        .map(|version| {
            let href =
                format!("{base}/models/{}/versions/{}", encode(&version.name), version.version);
            (format!("{} v{}", version.name, version.version), href)
        })
        .collect();
    Ok(view)
}

/// One level of the run's artifacts at `path`, or where they live when not proxied here.
async fn list_artifacts(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    run: &Run,
    path: &str,
) -> PageResult<(Vec<ArtifactRow>, Option<String>)> {
    let Some(root) = proxied_root(&run.info.artifact_uri) else {
        return Ok((Vec::new(), Some(run.info.artifact_uri.clone())));
    };
    let directory = if path.is_empty() { root.to_string() } else { format!("{root}/{path}") };
    let context = visitor.in_project(project);
    let entries = match services.artifacts.list(&context, Some(directory.as_str())).await {
        Ok(entries) => entries,
        Err(error) if error.kind == ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    let prefix = format!("{root}/");
    let base = format!("/projects/{}/runs/{}", encode(project), encode(&run.info.run_id));
    let rows = entries
        .into_iter()
        .map(|entry| {
            let relative = entry.path.strip_prefix(&prefix).unwrap_or(&entry.path).to_string();
            let name = relative.rsplit('/').next().unwrap_or(&relative).to_string();
            let encoded = relative.split('/').map(encode).collect::<Vec<String>>().join("/");
            let (href, download_href) = if entry.is_dir {
                (format!("{base}?path={}", encode(&relative)), String::new())
            } else {
                (format!("{base}/preview/{encoded}"), format!("{base}/artifacts/{encoded}"))
            };
            ArtifactRow { name, href, download_href, is_dir: entry.is_dir, size: size(entry.size) }
        })
        .collect();
    Ok((rows, None))
}

/// `GET /projects/{project}/runs/{run_id}/artifacts/{*path}`: always a download (never shown
/// inline, so an HTML artifact cannot run on this origin).
pub async fn artifact(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, run_id, path)): PagePath<(String, String, String)>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let run = services.tracking.get_run(&context, &run_id).await?;
    let root = proxied_root(&run.info.artifact_uri).ok_or_else(|| {
        PageError::not_found("this run's artifacts are not stored on this server")
    })?;
    let outcome = services.artifacts.download(&context, &format!("{root}/{path}")).await?;
    let file_name: String = path
        .rsplit('/')
        .next()
        .unwrap_or("artifact")
        .chars()
        .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    let stream = outcome.stream.map_err(std::io::Error::other);
    let mut response: Response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    if let Ok(length) = HeaderValue::from_str(&outcome.size.to_string()) {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    Ok(response)
}

/// The rename form.
#[derive(Deserialize)]
pub struct RenameForm {
    name: String,
}

/// `POST /projects/{project}/runs/{run_id}/rename`.
pub async fn rename(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, run_id)): PagePath<(String, String)>,
    PageForm(form): PageForm<RenameForm>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let name = form.name.trim();
    if name.is_empty() {
        return Err(PageError::bad_request("a run name cannot be empty"));
    }
    let update = RunUpdate { run_name: Some(name.to_string()), ..RunUpdate::default() };
    services.tracking.update_run(&context, &run_id, &update).await?;
    Ok(back_to_run(&project, &run_id))
}

/// The set-tag form.
#[derive(Deserialize)]
pub struct TagForm {
    key: String,
    #[serde(default)]
    value: String,
}

/// `POST /projects/{project}/runs/{run_id}/tags`.
pub async fn set_tag(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, run_id)): PagePath<(String, String)>,
    PageForm(form): PageForm<TagForm>,
) -> PageResult {
    let context = visitor.in_project(&project);
    let tag = Tag { key: form.key.trim().to_string(), value: form.value };
    services.tracking.set_tag(&context, &run_id, &tag).await?;
    Ok(back_to_run(&project, &run_id))
}

fn back_to_run(project: &str, run_id: &str) -> Response {
    Redirect::to(&format!("/projects/{}/runs/{}", encode(project), encode(run_id))).into_response()
}
