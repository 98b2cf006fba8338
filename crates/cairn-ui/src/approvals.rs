//! Approval requests of governed promotions: the list (every project's for governance reviewers
//! and admins, the visitor's projects' otherwise), one request with its evidence and decisions,
//! and the decisions themselves: approve and reject (governance reviewers who neither
//! registered the version nor asked for the promotion; rejecting needs a comment) and withdraw
//! (the requester or a project owner). The governance service decides who may; the forms only
//! appear for those it would allow.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::governance::{ApprovalRequest, ApprovalState};
use cairn_domain::identity::SiteRole;
use cairn_service::{Authorizer, Services};
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath, PageQuery};
use crate::layout::{Choice, Layout, choices, encode, optional, render, time};
use crate::session::Visitor;

/// Requests listed at most.
const ROWS: i64 = 200;
/// Projects read for a member's list.
const MAX_PROJECTS: usize = 20;

/// Whether the visitor is a governance reviewer (the only role that decides requests).
fn is_reviewer(visitor: &Visitor) -> bool {
    visitor.context.principal.as_ref().is_some_and(|principal| {
        principal.site_role == SiteRole::GovernanceReviewer && principal.scope_project.is_none()
    })
}

/// Whether the visitor may list every project's requests.
fn site_wide(visitor: &Visitor) -> bool {
    Authorizer::is_unrestricted(&visitor.context) || is_reviewer(visitor)
}

struct RequestRow {
    id: i64,
    project: String,
    model: String,
    version: i64,
    version_href: String,
    target: String,
    state: String,
    requested_by: String,
    created: String,
    approvals: String,
    checks_pass: bool,
    decidable: bool,
}

fn version_href(request: &ApprovalRequest) -> String {
    format!(
        "/projects/{}/models/{}/versions/{}",
        encode(&request.project),
        encode(&request.model_name),
        request.version
    )
}

fn row(visitor: &Visitor, request: &ApprovalRequest) -> RequestRow {
    let me = visitor.context.actor.as_str();
    RequestRow {
        id: request.id,
        project: request.project.clone(),
        model: request.model_name.clone(),
        version: request.version,
        version_href: version_href(request),
        target: request.target.to_string(),
        state: request.state.as_str().to_string(),
        requested_by: request.requested_by.clone(),
        created: time(request.created_at),
        approvals: format!("{} of {}", request.approvals(), request.evidence.approvals_required),
        checks_pass: request.evidence.checks_pass(),
        decidable: request.state == ApprovalState::Pending
            && is_reviewer(visitor)
            && request.requested_by != me,
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    layout: Layout,
    rows: Vec<RequestRow>,
    state: String,
    states: Vec<Choice>,
    project: String,
    model: String,
    reviewer: bool,
    site_wide: bool,
}

/// `?state=&project=&model=` of the list (`state` defaults to `pending`; empty means all).
#[derive(Deserialize)]
pub struct ApprovalsQuery {
    state: Option<String>,
    #[serde(default)]
    project: String,
    #[serde(default)]
    model: String,
}

/// `GET /approvals`.
pub async fn list(
    State(services): State<Services>,
    visitor: Visitor,
    PageQuery(query): PageQuery<ApprovalsQuery>,
) -> PageResult {
    let state_text = query.state.unwrap_or_else(|| "pending".to_string());
    let state = match optional(&state_text) {
        Some(text) => Some(
            ApprovalState::parse(text).map_err(|error| PageError::bad_request(error.message))?,
        ),
        None => None,
    };
    let model = optional(&query.model).map(str::to_string);
    let mut requests = Vec::new();
    match optional(&query.project) {
        Some(project) => {
            let context = visitor.in_project(project);
            requests =
                services.governance.list_requests(&context, state, model, false, ROWS).await?;
        }
        None if site_wide(&visitor) => {
            requests = services
                .governance
                .list_requests(&visitor.context, state, model, true, ROWS)
                .await?;
        }
        None => {
            for project in services.projects.list(&visitor.context).await?.iter().take(MAX_PROJECTS)
            {
                let context = visitor.in_project(&project.name);
                let found = services
                    .governance
                    .list_requests(&context, state, model.clone(), false, ROWS)
                    .await?;
                requests.extend(found);
            }
            requests.sort_by_key(|request| std::cmp::Reverse(request.created_at));
            requests.truncate(ROWS as usize);
        }
    }
    render(&ApprovalsPage {
        layout: Layout::new(&visitor, "approvals", "Approval requests"),
        rows: requests.iter().map(|request| row(&visitor, request)).collect(),
        state: state_text.trim().to_string(),
        states: choices(&["pending", "approved", "rejected", "withdrawn"], state_text.trim()),
        project: query.project.trim().to_string(),
        model: query.model.trim().to_string(),
        reviewer: is_reviewer(&visitor),
        site_wide: site_wide(&visitor),
    })
}

struct CheckRow {
    policy: String,
    requirement: String,
    passed: bool,
    detail: String,
}

struct DecisionRow {
    reviewer: String,
    decision: String,
    comment: String,
    at: String,
}

#[derive(Template)]
#[template(path = "approval.html")]
struct ApprovalPage {
    layout: Layout,
    request: RequestRow,
    comment: String,
    policies: Vec<String>,
    checks: Vec<CheckRow>,
    decisions: Vec<DecisionRow>,
    evaluated: String,
    shortfall: String,
    decided: Option<String>,
    can_withdraw: bool,
}

/// `GET /approvals/{id}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    let request = services.governance.get_request(&visitor.context, id).await?;
    let access = services.projects.access(&visitor.context, &request.project).await?;
    let pending = request.state == ApprovalState::Pending;
    let page = ApprovalPage {
        layout: Layout::new(&visitor, "approvals", format!("Approval request #{id}")),
        request: row(&visitor, &request),
        comment: request.comment.clone().unwrap_or_default(),
        policies: request
            .evidence
            .policies
            .iter()
            .map(|policy| format!("{} (revision {})", policy.name, policy.revision))
            .collect(),
        checks: request
            .evidence
            .checks
            .iter()
            .map(|check| CheckRow {
                policy: check.policy.name.clone(),
                requirement: check.requirement.clone(),
                passed: check.passed,
                detail: check.detail.clone(),
            })
            .collect(),
        decisions: request
            .decisions
            .iter()
            .map(|decision| DecisionRow {
                reviewer: decision.reviewer.clone(),
                decision: decision.decision.clone(),
                comment: decision.comment.clone().unwrap_or_default(),
                at: time(decision.at),
            })
            .collect(),
        evaluated: time(request.evidence.evaluated_at),
        shortfall: request.evidence.shortfall(request.approvals()),
        decided: request.decided_by.as_ref().map(|by| {
            format!(
                "{} by {by} on {}",
                request.state.as_str(),
                crate::layout::maybe_time(request.decided_at)
            )
        }),
        can_withdraw: pending
            && access.can_write
            && (access.can_manage || request.requested_by == visitor.context.actor),
    };
    render(&page)
}

/// A decision's form.
#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    comment: String,
}

fn back(id: i64) -> axum::response::Response {
    Redirect::to(&format!("/approvals/{id}")).into_response()
}

/// `POST /approvals/{id}/approve`.
pub async fn approve(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(id): PagePath<i64>,
    PageForm(form): PageForm<DecisionForm>,
) -> PageResult {
    services.governance.approve(&visitor.context, id, optional(&form.comment)).await?;
    Ok(back(id))
}

/// `POST /approvals/{id}/reject`.
pub async fn reject(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(id): PagePath<i64>,
    PageForm(form): PageForm<DecisionForm>,
) -> PageResult {
    services.governance.reject(&visitor.context, id, optional(&form.comment)).await?;
    Ok(back(id))
}

/// `POST /approvals/{id}/withdraw`.
pub async fn withdraw(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    services.governance.withdraw(&visitor.context, id).await?;
    Ok(back(id))
}
