//! Workspaces and jobs of a project: the workspaces on its page (state, an **Open** link to
//! JupyterLab through Cairn's proxy, which the session cookie authenticates, and the start,
//! stop, save and restart forms) and the jobs page (state, command, and the run each logs
//! into). Who may use a workspace is the workspace service's rule: its owner, or, when shared,
//! the project's contributors and owners.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use cairn_domain::compute::JobState;
use cairn_domain::workspaces::{WorkspaceRequest, WorkspaceState};
use cairn_service::Services;
use cairn_service::workspaces::RestartOptions;
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath, PageQuery};
use crate::layout::{Choice, Layout, choices, encode, maybe_time, optional, render, time};
use crate::session::Visitor;

/// Workspaces listed on a project's page.
const WORKSPACES_SHOWN: i64 = 20;
/// Jobs per page of the jobs list.
const JOBS_PER_PAGE: i64 = 50;

/// One workspace as listed.
pub struct WorkspaceRow {
    /// Its id.
    pub id: i64,
    /// Who started it.
    pub owner: String,
    /// Its state.
    pub state: String,
    /// Environment and revision.
    pub environment: String,
    /// The tier.
    pub tier: String,
    /// Whether the project's writers may use it.
    pub shared: bool,
    /// Last (re)started.
    pub started: String,
    /// Why it stopped or failed.
    pub reason: String,
    /// JupyterLab's address through Cairn, while it runs and the visitor may use it.
    pub open_href: Option<String>,
    /// Whether the visitor may stop, save or restart it.
    pub can_use: bool,
    /// Whether it is starting or running (stop and save apply).
    pub active: bool,
}

/// A project's workspaces with what the start form offers.
pub struct WorkspacesView {
    /// The workspaces, newest first.
    pub rows: Vec<WorkspaceRow>,
    /// Environments with an approved revision.
    pub environments: Vec<String>,
    /// Active tiers.
    pub tiers: Vec<String>,
}

/// The workspaces of `project` for `visitor`.
pub async fn load_workspaces(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    can_write: bool,
) -> PageResult<WorkspacesView> {
    let workspaces = services.workspaces.list(&visitor.context, project, WORKSPACES_SHOWN).await?;
    let me = visitor.context.principal.as_ref().map(|principal| principal.username.as_str());
    let anonymous = visitor.context.principal.is_none();
    let rows = workspaces
        .into_iter()
        .map(|workspace| {
            let can_use = can_write
                && (anonymous || me == Some(workspace.owner.as_str()) || workspace.request.shared);
            let running = workspace.state == WorkspaceState::Running;
            WorkspaceRow {
                id: workspace.id,
                open_href: (running && can_use).then(|| workspace.url.clone()),
                active: workspace.state.is_active(),
                state: workspace.state.as_str().to_string(),
                environment: format!(
                    "{}@{}",
                    workspace.request.environment, workspace.environment_revision
                ),
                tier: workspace.request.tier.clone(),
                shared: workspace.request.shared,
                started: time(workspace.started_at),
                reason: workspace.reason.unwrap_or_default(),
                owner: workspace.owner,
                can_use,
            }
        })
        .collect();
    let (mut environments, mut tiers) = (Vec::new(), Vec::new());
    if can_write {
        environments = services
            .catalog
            .environments(&visitor.context)
            .await?
            .into_iter()
            .filter(|environment| environment.latest_approved().is_some())
            .map(|environment| environment.name)
            .collect();
        tiers = services
            .catalog
            .tiers(&visitor.context)
            .await?
            .into_iter()
            .filter(|tier| tier.active)
            .map(|tier| tier.name)
            .collect();
    }
    Ok(WorkspacesView { rows, environments, tiers })
}

fn back_to_project(project: &str) -> Response {
    Redirect::to(&format!("/projects/{}#workspaces", encode(project))).into_response()
}

/// The start form.
#[derive(Deserialize)]
pub struct StartForm {
    environment: String,
    tier: String,
    #[serde(default)]
    shared: Option<String>,
    #[serde(default)]
    idle_minutes: String,
    #[serde(default)]
    datasets: String,
}

/// `POST /projects/{project}/workspaces`.
pub async fn start(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<StartForm>,
) -> PageResult {
    let idle_timeout_s = match optional(&form.idle_minutes) {
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| PageError::bad_request("the idle time is a whole number of minutes"))?
                .saturating_mul(60),
        ),
        None => None,
    };
    let request = WorkspaceRequest {
        environment: form.environment.trim().to_string(),
        environment_revision: None,
        tier: form.tier.trim().to_string(),
        shared: form.shared.is_some(),
        idle_timeout_s,
        datasets: form
            .datasets
            .split([',', ' '])
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect(),
    };
    services.workspaces.start(&visitor.context, &project, &request).await?;
    Ok(back_to_project(&project))
}

/// `POST /projects/{project}/workspaces/{id}/stop`.
pub async fn stop(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
) -> PageResult {
    services.workspaces.stop(&visitor.context, &project, id, None).await?;
    Ok(back_to_project(&project))
}

/// `POST /projects/{project}/workspaces/{id}/sync`.
pub async fn sync(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
) -> PageResult {
    services.workspaces.sync(&visitor.context, &project, id, None).await?;
    Ok(back_to_project(&project))
}

/// `POST /projects/{project}/workspaces/{id}/start`: starts a stopped workspace again.
pub async fn restart(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
) -> PageResult {
    let options = RestartOptions::default();
    services.workspaces.restart(&visitor.context, &project, id, &options).await?;
    Ok(back_to_project(&project))
}

struct JobRow {
    id: i64,
    state: String,
    command: String,
    environment: String,
    tier: String,
    submitted_by: String,
    created: String,
    finished: String,
    reason: String,
    run_href: String,
    run_id: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    state: String,
    states: Vec<Choice>,
    rows: Vec<JobRow>,
    next_href: Option<String>,
}

/// `?state=&before=` of the jobs list.
#[derive(Deserialize)]
pub struct JobsQuery {
    #[serde(default)]
    state: String,
    before: Option<i64>,
}

const JOB_STATES: [&str; 7] =
    ["queued", "starting", "running", "succeeded", "failed", "cancelled", "timed_out"];

fn job_state(text: &str) -> PageResult<Option<JobState>> {
    let state = match optional(text) {
        None => return Ok(None),
        Some("queued") => JobState::Queued,
        Some("starting") => JobState::Starting,
        Some("running") => JobState::Running,
        Some("succeeded") => JobState::Succeeded,
        Some("failed") => JobState::Failed,
        Some("cancelled") => JobState::Cancelled,
        Some("timed_out") => JobState::TimedOut,
        Some(other) => {
            return Err(PageError::bad_request(format!(
                "unknown job state '{other}': use one of {}",
                JOB_STATES.join(", ")
            )));
        }
    };
    Ok(Some(state))
}

/// `GET /projects/{project}/jobs`.
pub async fn jobs(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageQuery(query): PageQuery<JobsQuery>,
) -> PageResult {
    let state = job_state(&query.state)?;
    let found = services
        .jobs
        .list(&visitor.context, &project, state, query.before, JOBS_PER_PAGE + 1)
        .await?;
    let more = found.len() as i64 > JOBS_PER_PAGE;
    let rows: Vec<JobRow> = found
        .into_iter()
        .take(JOBS_PER_PAGE as usize)
        .map(|job| JobRow {
            id: job.id,
            state: job.state.as_str().to_string(),
            command: job.template.command.join(" "),
            environment: format!("{}@{}", job.environment, job.environment_revision),
            tier: job.tier,
            submitted_by: job.submitted_by,
            created: time(job.created_at),
            finished: maybe_time(job.finished_at),
            reason: job.reason.or(job.queue_reason).unwrap_or_default(),
            run_href: format!("/projects/{}/runs/{}", encode(&project), encode(&job.run_id)),
            run_id: job.run_id,
        })
        .collect();
    let next_href = match (more, rows.last()) {
        (true, Some(last)) => Some(format!(
            "/projects/{}/jobs?state={}&before={}",
            encode(&project),
            encode(query.state.trim()),
            last.id
        )),
        _ => None,
    };
    render(&JobsPage {
        layout: Layout::new(&visitor, "projects", format!("Jobs of {project}")),
        tab: "jobs",
        state: query.state.trim().to_string(),
        states: choices(&JOB_STATES, query.state.trim()),
        rows,
        next_href,
        project,
    })
}
