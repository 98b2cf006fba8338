//! The home page: the visitor's projects, the most recent runs across them, pending approval
//! requests and open monitoring alerts. Approvals and alerts are read per project for members
//! (at most [`MAX_PROJECTS`] projects), site-wide in one call for admins and reviewers.

use askama::Template;
use axum::extract::State;
use cairn_domain::governance::ApprovalState;
use cairn_domain::identity::SiteRole;
use cairn_service::{Authorizer, Services};

use crate::error::PageResult;
use crate::layout::{Layout, render, time};
use crate::session::Visitor;

/// Projects whose approvals and alerts the home page reads.
const MAX_PROJECTS: usize = 20;
/// Rows per list.
const ROWS: usize = 10;

struct ProjectRow {
    name: String,
    description: String,
}

struct RunRow {
    project: String,
    experiment: String,
    experiment_id: i64,
    run_id: String,
    name: String,
    status: String,
    started: String,
}

struct ApprovalRow {
    id: i64,
    project: String,
    model: String,
    version: i64,
    target: String,
    requested_by: String,
    created: String,
    created_at: i64,
}

struct AlertRow {
    project: String,
    deployment: String,
    key: String,
    message: String,
    opened: String,
    opened_at: i64,
}

struct MentionRow {
    href: String,
    author: String,
    project: String,
    excerpt: String,
    created: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    mentions: Vec<MentionRow>,
    projects: Vec<ProjectRow>,
    more_projects: bool,
    runs: Vec<RunRow>,
    approvals: Vec<ApprovalRow>,
    alerts: Vec<AlertRow>,
}

/// `GET /`.
pub async fn show(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let context = &visitor.context;
    let projects = services.projects.list(context).await?;
    let runs = services.tracking.recent_runs(context, ROWS as i64).await?;
    let site_wide = Authorizer::is_unrestricted(context)
        || context.principal.as_ref().is_some_and(|principal| {
            principal.site_role == SiteRole::GovernanceReviewer && principal.scope_project.is_none()
        });
    let mut requests = Vec::new();
    if site_wide {
        let pending = Some(ApprovalState::Pending);
        requests =
            services.governance.list_requests(context, pending, None, true, ROWS as i64).await?;
    }
    let mut alerts = Vec::new();
    for project in projects.iter().take(MAX_PROJECTS) {
        let scoped = visitor.in_project(&project.name);
        if !site_wide {
            let pending = Some(ApprovalState::Pending);
            match services
                .governance
                .list_requests(&scoped, pending, None, false, ROWS as i64)
                .await
            {
                Ok(found) => requests.extend(found),
                Err(error) => {
                    tracing::debug!(project = %project.name, error = %error.message, "approvals skipped on the home page")
                }
            }
        }
        match services.monitoring.alerts(&scoped, None, true, ROWS as i64).await {
            Ok(found) => alerts.extend(found.into_iter().map(|alert| AlertRow {
                project: project.name.clone(),
                deployment: alert.deployment,
                key: alert.key,
                message: alert.message,
                opened: time(alert.opened_at),
                opened_at: alert.opened_at,
            })),
            Err(error) => {
                tracing::debug!(project = %project.name, error = %error.message, "alerts skipped on the home page")
            }
        }
    }
    let mut approvals: Vec<ApprovalRow> = requests
        .into_iter()
        .map(|request| ApprovalRow {
            id: request.id,
            project: request.project,
            model: request.model_name,
            version: request.version,
            target: request.target.to_string(),
            requested_by: request.requested_by,
            created: time(request.created_at),
            created_at: request.created_at,
        })
        .collect();
    approvals.sort_by_key(|row| std::cmp::Reverse(row.created_at));
    approvals.truncate(ROWS);
    alerts.sort_by_key(|row| std::cmp::Reverse(row.opened_at));
    alerts.truncate(ROWS);
    let mentions = services
        .comments
        .mentioning_me(context, ROWS as i64)
        .await?
        .into_iter()
        .map(|comment| {
            let target = cairn_domain::comments::CommentTarget::parse(&comment.target)
                .unwrap_or(cairn_domain::comments::CommentTarget::Project);
            let page = crate::comments::page_of(&comment.project, &target);
            let excerpt: String = comment.body.chars().take(140).collect();
            MentionRow {
                href: page.replace("#comments", &format!("#comment-{}", comment.id)),
                author: comment.author,
                project: comment.project,
                excerpt,
                created: time(comment.created_at),
            }
        })
        .collect();
    let page = HomePage {
        layout: Layout::new(&visitor, "home", "Home"),
        mentions,
        more_projects: projects.len() > MAX_PROJECTS,
        projects: projects
            .into_iter()
            .map(|project| ProjectRow {
                name: project.name,
                description: project.description.unwrap_or_default(),
            })
            .collect(),
        runs: runs
            .into_iter()
            .map(|run| RunRow {
                project: run.project,
                experiment: run.experiment,
                experiment_id: run.info.experiment_id.0,
                run_id: run.info.run_id,
                name: run.info.run_name,
                status: run.info.status.as_str().to_string(),
                started: time(run.info.start_time),
            })
            .collect(),
        approvals,
        alerts,
    };
    render(&page)
}
