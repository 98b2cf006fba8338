//! Datasets of a project: the list, one dataset with its versions (deleted ones marked), and
//! one version with its tables (rows and column types of its CSV and Parquet files), its files
//! and the jobs that read it. Datasets are pushed with `cairn dataset push`; these pages read.

use askama::Template;
use axum::extract::State;
use cairn_service::Services;

use crate::error::PageResult;
use crate::extract::PagePath;
use crate::layout::{Layout, encode, maybe_time, render, time};
use crate::session::Visitor;

/// The most files a version's page lists.
const MAX_FILES: usize = 1000;

/// Bytes as `12.3 MiB`.
pub fn bytes(size: i64) -> String {
    let size = size.max(0) as f64;
    if size < 1024.0 {
        format!("{size} B")
    } else if size < 1024.0 * 1024.0 {
        format!("{:.1} KiB", size / 1024.0)
    } else if size < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", size / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", size / (1024.0 * 1024.0 * 1024.0))
    }
}

fn short(digest: &str) -> String {
    digest.get(..12).unwrap_or(digest).to_string()
}

struct DatasetRow {
    name: String,
    href: String,
    latest: String,
    description: String,
    created: String,
}

#[derive(Template)]
#[template(path = "datasets.html")]
struct DatasetsPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    rows: Vec<DatasetRow>,
}

/// `GET /projects/{project}/datasets`.
pub async fn list(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
) -> PageResult {
    let found = services.datasets.list(&visitor.context, &project).await?;
    let base = format!("/projects/{}/datasets", encode(&project));
    let rows = found
        .into_iter()
        .map(|dataset| DatasetRow {
            href: format!("{base}/{}", encode(&dataset.name)),
            latest: dataset.latest_version.map(|v| format!("v{v}")).unwrap_or_default(),
            created: time(dataset.created_at),
            name: dataset.name,
            description: dataset.description,
        })
        .collect();
    render(&DatasetsPage {
        layout: Layout::new(&visitor, "projects", format!("Datasets of {project}")),
        tab: "datasets",
        rows,
        project,
    })
}

struct VersionRow {
    version: i64,
    href: Option<String>,
    digest: String,
    message: String,
    files: i64,
    size: String,
    new_bytes: String,
    created_by: String,
    created: String,
    deleted: String,
}

#[derive(Template)]
#[template(path = "dataset.html")]
struct DatasetPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    name: String,
    description: String,
    keep_versions: String,
    created_by: String,
    created: String,
    versions: Vec<VersionRow>,
}

/// `GET /projects/{project}/datasets/{name}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    let (dataset, versions) = services.datasets.get(&visitor.context, &project, &name).await?;
    let base = format!("/projects/{}/datasets/{}", encode(&project), encode(&dataset.name));
    let versions = versions
        .into_iter()
        .map(|version| VersionRow {
            href: version
                .deleted_at
                .is_none()
                .then(|| format!("{base}/versions/{}", version.version)),
            version: version.version,
            digest: short(&version.digest),
            message: version.message,
            files: version.file_count,
            size: bytes(version.total_bytes),
            new_bytes: bytes(version.new_bytes),
            created_by: version.created_by,
            created: time(version.created_at),
            deleted: match (version.deleted_at, version.deleted_by) {
                (Some(at), Some(by)) => format!("deleted by {by}, {}", time(at)),
                (Some(at), None) => format!("deleted {}", time(at)),
                _ => String::new(),
            },
        })
        .collect();
    render(&DatasetPage {
        layout: Layout::new(&visitor, "projects", dataset.name.clone()),
        tab: "datasets",
        description: dataset.description,
        keep_versions: dataset.keep_versions.map(|keep| keep.to_string()).unwrap_or_default(),
        created_by: dataset.created_by,
        created: time(dataset.created_at),
        name: dataset.name,
        versions,
        project,
    })
}

struct TableRow {
    path: String,
    format: String,
    rows: String,
    columns: Vec<(String, String)>,
    error: String,
}

struct JobRow {
    id: i64,
    href: String,
    state: String,
    run_id: String,
    run_href: String,
    by: String,
    ended: String,
}

#[derive(Template)]
#[template(path = "dataset_version.html")]
struct VersionPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    name: String,
    version: i64,
    digest: String,
    message: String,
    source_uri: String,
    file_count: i64,
    size: String,
    created_by: String,
    created: String,
    tables: Vec<TableRow>,
    files: Vec<(String, String)>,
    more_files: usize,
    jobs: Vec<JobRow>,
}

/// `GET /projects/{project}/datasets/{name}/versions/{version}`.
pub async fn version(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name, number)): PagePath<(String, String, i64)>,
) -> PageResult {
    let (lineage, manifest) =
        services.datasets.version(&visitor.context, &project, &name, Some(number)).await?;
    let found = lineage.version;
    let base = format!("/projects/{}", encode(&project));
    let total_files = manifest.files.len();
    let files = manifest
        .files
        .into_iter()
        .take(MAX_FILES)
        .map(|file| (file.path, bytes(i64::try_from(file.size).unwrap_or(i64::MAX))))
        .collect();
    let tables = found
        .tables
        .iter()
        .map(|table| TableRow {
            path: table.path.clone(),
            format: table.format.clone(),
            rows: table.rows.map(|rows| rows.to_string()).unwrap_or_default(),
            columns: table
                .columns
                .iter()
                .map(|column| (column.name.clone(), column.r#type.clone()))
                .collect(),
            error: table.error.clone().unwrap_or_default(),
        })
        .collect();
    let jobs = lineage
        .jobs
        .into_iter()
        .map(|job| JobRow {
            href: format!("{base}/jobs/{}", job.id),
            id: job.id,
            state: job.state.as_str().to_string(),
            run_href: format!("{base}/runs/{}", encode(&job.run_id)),
            run_id: job.run_id,
            by: job.submitted_by,
            ended: maybe_time(job.finished_at),
        })
        .collect();
    render(&VersionPage {
        layout: Layout::new(&visitor, "projects", format!("{} v{}", found.dataset, found.version)),
        tab: "datasets",
        source_uri: found.source_uri(&project),
        name: found.dataset,
        version: found.version,
        digest: found.digest,
        message: found.message,
        file_count: found.file_count,
        size: bytes(found.total_bytes),
        created_by: found.created_by,
        created: time(found.created_at),
        tables,
        files,
        more_files: total_files.saturating_sub(MAX_FILES),
        jobs,
        project,
    })
}
