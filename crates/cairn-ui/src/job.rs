//! One job: what it runs on (command, snapshot, environment revision, tier, executor, the
//! datasets it read), its state and timings, the run it logs into, and its log. The log is
//! part of the page (readable without JavaScript; a long log is paged by byte offset); while
//! the job runs, `cairn.js` polls `…/log?offset=N` for new bytes and appends them. Contributors
//! may cancel a job that has not ended.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use cairn_domain::ErrorKind;
use cairn_service::Services;
use serde::Deserialize;

use crate::error::PageResult;
use crate::extract::{PagePath, PageQuery};
use crate::layout::{Layout, encode, maybe_time, render, time};
use crate::session::Visitor;

/// The most log bytes a page shows (the rest is on later pages, by offset).
const LOG_PAGE_BYTES: usize = 512 * 1024;

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    id: i64,
    state: String,
    terminal: bool,
    command: String,
    facts: Vec<(&'static str, String)>,
    run_href: String,
    run_id: String,
    schedule_href: Option<(String, String)>,
    datasets: Vec<(String, i64, String)>,
    reason: String,
    log: String,
    offset: u64,
    next_offset: u64,
    complete: bool,
    earlier_href: Option<String>,
    can_cancel: bool,
}

/// `?offset=` of the job page and of its log.
#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    offset: u64,
}

/// Log bytes from `offset`, up to `limit`: whole UTF-8 characters only (a character cut at the
/// end is left for the next read), the next offset and whether the log is complete.
async fn read_log(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    id: i64,
    offset: u64,
    limit: usize,
) -> PageResult<(String, u64, bool)> {
    let mut bytes = Vec::new();
    let mut next = offset;
    let mut complete = false;
    while bytes.len() < limit {
        let chunk = services.jobs.logs(&visitor.context, project, id, next).await?;
        complete = chunk.complete;
        if chunk.bytes.is_empty() {
            break;
        }
        bytes.extend_from_slice(&chunk.bytes);
        next = chunk.next_offset;
        if complete {
            break;
        }
    }
    let valid = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(error) if error.error_len().is_none() => error.valid_up_to(),
        Err(_) => bytes.len(),
    };
    if valid < bytes.len() {
        next -= (bytes.len() - valid) as u64;
        bytes.truncate(valid);
        complete = false;
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), next, complete))
}

/// `GET /projects/{project}/jobs/{id}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
    PageQuery(query): PageQuery<LogQuery>,
) -> PageResult {
    let job = services.jobs.get(&visitor.context, &project, id).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let datasets = match services.jobs.lineage(&visitor.context, &project, &job.run_id).await {
        Ok(lineage) => lineage.datasets,
        Err(error) if error.kind == ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    let (log, next_offset, complete) =
        read_log(&services, &visitor, &project, id, query.offset, LOG_PAGE_BYTES).await?;
    let base = format!("/projects/{}", encode(&project));
    let mut facts = vec![
        ("Environment", format!("{}@{}", job.environment, job.environment_revision)),
        ("Tier", job.tier.clone()),
        ("Executor", job.executor.as_str().to_string()),
        ("GPUs", job.gpus.to_string()),
        ("Snapshot", job.snapshot.clone()),
        ("Submitted by", job.submitted_by.clone()),
        ("Submitted", time(job.created_at)),
        ("Started", maybe_time(job.started_at)),
        ("Running since", maybe_time(job.running_at)),
        ("Ended", maybe_time(job.finished_at)),
    ];
    if let Some(code) = job.exit_code {
        facts.push(("Exit code", code.to_string()));
    }
    if let Some(who) = &job.cancel_requested_by {
        facts.push(("Cancel asked by", who.clone()));
    }
    if let Some(run) = &job.reproduced_from {
        facts.push(("Reproduces run", run.clone()));
    }
    facts.retain(|(_, value)| !value.is_empty());
    let page = JobPage {
        layout: Layout::new(&visitor, "projects", format!("Job {id} of {project}")),
        tab: "jobs",
        id,
        state: job.state.as_str().to_string(),
        terminal: job.state.is_terminal(),
        command: job.template.command.join(" "),
        facts,
        run_href: format!("{base}/runs/{}", encode(&job.run_id)),
        run_id: job.run_id.clone(),
        schedule_href: job
            .schedule
            .as_ref()
            .map(|name| (name.clone(), format!("{base}/schedules/{}", encode(name)))),
        datasets: datasets
            .into_iter()
            .map(|used| {
                let href =
                    format!("{base}/datasets/{}/versions/{}", encode(&used.name), used.version);
                (used.name, used.version, href)
            })
            .collect(),
        reason: job.reason.clone().or(job.queue_reason.clone()).unwrap_or_default(),
        log,
        offset: query.offset,
        next_offset,
        complete,
        earlier_href: (query.offset > 0).then(|| format!("{base}/jobs/{id}#log")),
        can_cancel: access.can_write && !job.state.is_terminal(),
        project,
    };
    render(&page)
}

/// `GET /projects/{project}/jobs/{id}/log?offset=N`: new log bytes as plain text, with
/// `X-Next-Offset`, `X-Log-Complete` and `X-Job-State` (for the page's script).
pub async fn log(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
    PageQuery(query): PageQuery<LogQuery>,
) -> PageResult {
    let (text, next, complete) =
        read_log(&services, &visitor, &project, id, query.offset, LOG_PAGE_BYTES).await?;
    let state = services.jobs.get(&visitor.context, &project, id).await?.state;
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&next.to_string()) {
        headers.insert("x-next-offset", value);
    }
    let complete = if complete { "true" } else { "false" };
    headers.insert("x-log-complete", HeaderValue::from_static(complete));
    headers.insert("x-job-state", HeaderValue::from_static(state.as_str()));
    Ok(response)
}

/// `POST /projects/{project}/jobs/{id}/cancel`.
pub async fn cancel(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
) -> PageResult {
    services.jobs.cancel(&visitor.context, &project, id).await?;
    Ok(Redirect::to(&format!("/projects/{}/jobs/{id}", encode(&project))).into_response())
}
