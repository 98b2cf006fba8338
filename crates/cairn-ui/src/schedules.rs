//! Schedules of a project: the list (cron, time zone, next and last firing, paused or not) and
//! one schedule with the job it runs and the jobs it fired. Contributors may pause, resume and
//! delete one; schedules are created with `cairn schedule create` or the API.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::compute::Schedule;
use cairn_service::Services;
use cairn_service::compute::ScheduleRequest;

use crate::error::PageResult;
use crate::extract::PagePath;
use crate::layout::{Layout, encode, maybe_time, render, time};
use crate::session::Visitor;

/// Jobs listed on a schedule's page.
const HISTORY: i64 = 50;

struct ScheduleRow {
    name: String,
    href: String,
    cron: String,
    timezone: String,
    enabled: bool,
    command: String,
    next: String,
    last: String,
    owner: String,
}

fn row(project: &str, schedule: Schedule) -> ScheduleRow {
    ScheduleRow {
        href: format!("/projects/{}/schedules/{}", encode(project), encode(&schedule.name)),
        cron: schedule.cron,
        timezone: schedule.timezone,
        enabled: schedule.enabled,
        command: schedule.template.command.join(" "),
        next: if schedule.enabled { time(schedule.next_run_at) } else { String::new() },
        last: maybe_time(schedule.last_fired_at),
        owner: schedule.owner,
        name: schedule.name,
    }
}

#[derive(Template)]
#[template(path = "schedules.html")]
struct SchedulesPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    rows: Vec<ScheduleRow>,
    can_write: bool,
}

/// `GET /projects/{project}/schedules`.
pub async fn list(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
) -> PageResult {
    let found = services.jobs.schedules(&visitor.context, &project).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    render(&SchedulesPage {
        layout: Layout::new(&visitor, "projects", format!("Schedules of {project}")),
        tab: "schedules",
        rows: found.into_iter().map(|schedule| row(&project, schedule)).collect(),
        can_write: access.can_write,
        project,
    })
}

struct FiredRow {
    id: i64,
    href: String,
    state: String,
    scheduled_for: String,
    run_id: String,
    run_href: String,
}

#[derive(Template)]
#[template(path = "schedule.html")]
struct SchedulePage {
    layout: Layout,
    project: String,
    tab: &'static str,
    schedule: ScheduleRow,
    environment: String,
    tier: String,
    missed: String,
    created: String,
    fired: Vec<FiredRow>,
    can_write: bool,
}

/// `GET /projects/{project}/schedules/{name}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    let (schedule, jobs) =
        services.jobs.schedule(&visitor.context, &project, &name, HISTORY).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let base = format!("/projects/{}", encode(&project));
    let fired = jobs
        .into_iter()
        .map(|job| FiredRow {
            href: format!("{base}/jobs/{}", job.id),
            id: job.id,
            state: job.state.as_str().to_string(),
            scheduled_for: maybe_time(job.scheduled_for),
            run_href: format!("{base}/runs/{}", encode(&job.run_id)),
            run_id: job.run_id,
        })
        .collect();
    let environment = match schedule.template.environment_revision {
        Some(revision) => format!("{}@{revision}", schedule.template.environment),
        None => format!("{} (newest approved)", schedule.template.environment),
    };
    render(&SchedulePage {
        layout: Layout::new(&visitor, "projects", schedule.name.clone()),
        tab: "schedules",
        environment,
        tier: schedule.template.tier.clone(),
        missed: schedule.missed.as_str().to_string(),
        created: format!("{} by {}", time(schedule.created_at), schedule.created_by),
        schedule: row(&project, schedule),
        fired,
        can_write: access.can_write,
        project,
    })
}

fn back(project: &str, name: &str) -> axum::response::Response {
    let target = format!("/projects/{}/schedules/{}", encode(project), encode(name));
    Redirect::to(&target).into_response()
}

async fn set_enabled(
    services: &Services,
    visitor: &Visitor,
    project: &str,
    name: &str,
    enabled: bool,
) -> PageResult {
    let (schedule, _) = services.jobs.schedule(&visitor.context, project, name, 1).await?;
    let request = ScheduleRequest {
        cron: schedule.cron,
        timezone: schedule.timezone,
        template: schedule.template,
        missed: schedule.missed,
        enabled,
    };
    services.jobs.update_schedule(&visitor.context, project, name, &request).await?;
    Ok(back(project, name))
}

/// `POST /projects/{project}/schedules/{name}/pause`.
pub async fn pause(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    set_enabled(&services, &visitor, &project, &name, false).await
}

/// `POST /projects/{project}/schedules/{name}/resume`.
pub async fn resume(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    set_enabled(&services, &visitor, &project, &name, true).await
}

/// `POST /projects/{project}/schedules/{name}/delete`.
pub async fn delete(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, name)): PagePath<(String, String)>,
) -> PageResult {
    services.jobs.delete_schedule(&visitor.context, &project, &name).await?;
    Ok(Redirect::to(&format!("/projects/{}/schedules", encode(&project))).into_response())
}
