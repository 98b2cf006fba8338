//! Approval policies in force for a project (its own and the site-wide ones): the list, one
//! policy with its revisions, and, for those the governance service lets change it (the
//! project's owners for its policies, site admins for site-wide ones), a form writing a new
//! revision of its rules and a button taking it out of force. Owners create project policies.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::governance::{Policy, PolicyRules};
use cairn_service::{Authorizer, PolicySpec, Services};
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{Layout, encode, optional, render, time};
use crate::session::Visitor;

/// One policy, as listed and shown.
struct PolicyRow {
    id: i64,
    href: String,
    name: String,
    scope: String,
    target: String,
    model: String,
    revision: i64,
    active: bool,
    rules: RulesView,
    updated: String,
}

/// Rules as text.
struct RulesView {
    approvals: u32,
    conditions: Vec<String>,
    require_model_card: bool,
    environments: String,
}

fn rules_view(rules: &PolicyRules) -> RulesView {
    RulesView {
        approvals: rules.approvals,
        conditions: rules.conditions.clone(),
        require_model_card: rules.require_model_card,
        environments: rules.environments.join(", "),
    }
}

fn row(project: &str, policy: Policy) -> PolicyRow {
    PolicyRow {
        href: format!("/projects/{}/policies/{}", encode(project), policy.id),
        id: policy.id,
        scope: policy.project.clone().unwrap_or_else(|| "site-wide".to_string()),
        target: policy.target.to_string(),
        model: policy.model_name.clone().unwrap_or_else(|| "every model".to_string()),
        revision: policy.revision,
        active: policy.active,
        rules: rules_view(&policy.rules),
        updated: format!("{} by {}", time(policy.updated_at), policy.updated_by),
        name: policy.name,
    }
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    rows: Vec<PolicyRow>,
    can_manage: bool,
}

/// `GET /projects/{project}/policies`.
pub async fn list(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
) -> PageResult {
    let found = services.governance.list_policies(&visitor.in_project(&project)).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    render(&PoliciesPage {
        layout: Layout::new(&visitor, "projects", format!("Policies of {project}")),
        tab: "policies",
        rows: found.into_iter().map(|policy| row(&project, policy)).collect(),
        can_manage: access.can_manage,
        project,
    })
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    policy: PolicyRow,
    revisions: Vec<(i64, RulesView, String)>,
    can_edit: bool,
}

/// `GET /projects/{project}/policies/{id}`.
pub async fn show(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
) -> PageResult {
    let (policy, revisions) =
        services.governance.get_policy(&visitor.in_project(&project), id).await?;
    let access = services.projects.access(&visitor.context, &project).await?;
    let can_edit = policy.active
        && match policy.project_id {
            Some(_) => access.can_manage,
            None => Authorizer::is_unrestricted(&visitor.context),
        };
    let mut revisions: Vec<(i64, RulesView, String)> = revisions
        .into_iter()
        .map(|revision| {
            let by = format!("{} by {}", time(revision.created_at), revision.created_by);
            (revision.revision, rules_view(&revision.rules), by)
        })
        .collect();
    revisions.sort_by_key(|(revision, _, _)| std::cmp::Reverse(*revision));
    render(&PolicyPage {
        layout: Layout::new(&visitor, "projects", policy.name.clone()),
        tab: "policies",
        policy: row(&project, policy),
        revisions,
        can_edit,
        project,
    })
}

/// The rules form (create and edit).
#[derive(Deserialize)]
pub struct RulesForm {
    #[serde(default)]
    approvals: String,
    #[serde(default)]
    conditions: String,
    #[serde(default)]
    require_model_card: Option<String>,
    #[serde(default)]
    environments: String,
}

impl RulesForm {
    fn rules(&self) -> PageResult<PolicyRules> {
        let approvals = match optional(&self.approvals) {
            Some(text) => text
                .parse()
                .map_err(|_| PageError::bad_request("approvals is a whole number from 0 to 10"))?,
            None => 0,
        };
        Ok(PolicyRules {
            approvals,
            conditions: self
                .conditions
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_string)
                .collect(),
            require_model_card: self.require_model_card.is_some(),
            environments: self
                .environments
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// `POST /projects/{project}/policies/{id}`: a new revision of the rules.
pub async fn update(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
    PageForm(form): PageForm<RulesForm>,
) -> PageResult {
    let rules = form.rules()?;
    services.governance.update_policy(&visitor.in_project(&project), id, rules).await?;
    Ok(Redirect::to(&format!("/projects/{}/policies/{id}", encode(&project))).into_response())
}

/// `POST /projects/{project}/policies/{id}/delete`: takes it out of force.
pub async fn delete(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath((project, id)): PagePath<(String, i64)>,
) -> PageResult {
    services.governance.delete_policy(&visitor.in_project(&project), id).await?;
    Ok(Redirect::to(&format!("/projects/{}/policies", encode(&project))).into_response())
}

/// The new-policy form.
#[derive(Deserialize)]
pub struct NewPolicyForm {
    name: String,
    target: String,
    #[serde(default)]
    model_name: String,
    #[serde(flatten)]
    rules: RulesForm,
}

/// `POST /projects/{project}/policies`: creates a project policy.
pub async fn create(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<NewPolicyForm>,
) -> PageResult {
    let spec = PolicySpec {
        site_wide: false,
        name: form.name.trim().to_string(),
        target: form.target.trim().to_string(),
        model_name: optional(&form.model_name).map(str::to_string),
        rules: form.rules.rules()?,
    };
    let policy = services.governance.create_policy(&visitor.in_project(&project), spec).await?;
    let target = format!("/projects/{}/policies/{}", encode(&project), policy.id);
    Ok(Redirect::to(&target).into_response())
}
