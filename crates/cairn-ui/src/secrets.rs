//! Secrets: a project's (owners set and delete them; every reader sees their names) and the
//! visitor's own (`/secrets`). Pages show names and dates only: a value is never returned by
//! the service, and the form's value field is a password field that is never filled back in.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use cairn_domain::compute::{SecretInfo, SecretScope};
use cairn_service::Services;
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{Layout, encode, render, time};
use crate::session::Visitor;

struct SecretRow {
    name: String,
    created_by: String,
    created: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    layout: Layout,
    /// The project, or empty for the visitor's own secrets.
    project: String,
    tab: &'static str,
    heading: String,
    action: String,
    rows: Vec<SecretRow>,
    can_manage: bool,
}

fn rows(found: Vec<SecretInfo>) -> Vec<SecretRow> {
    found
        .into_iter()
        .map(|secret| SecretRow {
            name: secret.name,
            created_by: secret.created_by,
            created: time(secret.created_at),
            updated: time(secret.updated_at),
        })
        .collect()
}

/// `GET /projects/{project}/secrets`.
pub async fn project(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
) -> PageResult {
    let access = services.projects.access(&visitor.context, &project).await?;
    let scope = SecretScope::Project(project.clone());
    let found = services.secrets.list(&visitor.context, &scope).await?;
    render(&SecretsPage {
        layout: Layout::new(&visitor, "projects", format!("Secrets of {project}")),
        tab: "secrets",
        heading: format!("Secrets of {project}"),
        action: format!("/projects/{}/secrets", encode(&project)),
        rows: rows(found),
        can_manage: access.can_manage,
        project,
    })
}

/// The visitor's own scope (signed-in users only).
fn my_scope(visitor: &Visitor) -> PageResult<SecretScope> {
    match &visitor.context.principal {
        Some(principal) => Ok(SecretScope::User(principal.username.clone())),
        None => Err(PageError::bad_request("log in to keep secrets of your own")),
    }
}

/// `GET /secrets`.
pub async fn mine(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let scope = my_scope(&visitor)?;
    let found = services.secrets.list(&visitor.context, &scope).await?;
    render(&SecretsPage {
        layout: Layout::new(&visitor, "secrets", "My secrets"),
        tab: "",
        heading: "My secrets".into(),
        action: "/secrets".into(),
        rows: rows(found),
        can_manage: true,
        project: String::new(),
    })
}

/// The set form (its value is never shown again).
#[derive(Deserialize)]
pub struct SetForm {
    name: String,
    value: String,
}

/// The delete form.
#[derive(Deserialize)]
pub struct DeleteForm {
    name: String,
}

fn back(project: Option<&str>) -> Response {
    let target = match project {
        Some(project) => format!("/projects/{}/secrets", encode(project)),
        None => "/secrets".to_string(),
    };
    Redirect::to(&target).into_response()
}

/// `POST /projects/{project}/secrets`.
pub async fn set_project(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<SetForm>,
) -> PageResult {
    let scope = SecretScope::Project(project.clone());
    services.secrets.put(&visitor.context, &scope, form.name.trim(), &form.value).await?;
    Ok(back(Some(&project)))
}

/// `POST /projects/{project}/secrets/delete`.
pub async fn delete_project(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(project): PagePath<String>,
    PageForm(form): PageForm<DeleteForm>,
) -> PageResult {
    let scope = SecretScope::Project(project.clone());
    services.secrets.delete(&visitor.context, &scope, form.name.trim()).await?;
    Ok(back(Some(&project)))
}

/// `POST /secrets`.
pub async fn set_mine(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<SetForm>,
) -> PageResult {
    let scope = my_scope(&visitor)?;
    services.secrets.put(&visitor.context, &scope, form.name.trim(), &form.value).await?;
    Ok(back(None))
}

/// `POST /secrets/delete`.
pub async fn delete_mine(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<DeleteForm>,
) -> PageResult {
    let scope = my_scope(&visitor)?;
    services.secrets.delete(&visitor.context, &scope, form.name.trim()).await?;
    Ok(back(None))
}
