//! Site administration for site admins: users (list, create, change a site role, deactivate
//! with a hand-over of owned projects, reactivate) and teams (list with members and project
//! roles, create, add and remove members). The identity and project services refuse everyone
//! else, so these pages answer 403 to other visitors.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect};
use cairn_domain::identity::SiteRole;
use cairn_service::{Services, UserSpec};
use serde::Deserialize;

use crate::error::{PageError, PageResult};
use crate::extract::{PageForm, PagePath};
use crate::layout::{Choice, Layout, choices, encode, optional, render, time};
use crate::session::Visitor;

/// The site roles, in the order forms offer them.
const ROLES: [&str; 3] = ["member", "governance-reviewer", "admin"];

struct UserRow {
    username: String,
    display_name: String,
    role: String,
    roles: Vec<Choice>,
    kind: &'static str,
    active: bool,
    created: String,
    is_me: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserRow>,
    roles: Vec<&'static str>,
}

fn parse_role(text: &str) -> PageResult<SiteRole> {
    SiteRole::parse(text.trim()).map_err(|error| PageError::bad_request(error.message))
}

fn to_users() -> axum::response::Response {
    Redirect::to("/admin/users").into_response()
}

/// `GET /admin`: the users page.
pub async fn index() -> PageResult {
    Ok(to_users())
}

/// `GET /admin/users`.
pub async fn users(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let users = services.identity.list_users(&visitor.context).await?;
    let me = visitor.context.principal.as_ref().map(|principal| principal.username.clone());
    render(&UsersPage {
        layout: Layout::new(&visitor, "admin", "Users"),
        users: users
            .into_iter()
            .map(|user| UserRow {
                is_me: me.as_deref() == Some(user.username.as_str()),
                display_name: user.display_name.unwrap_or_default(),
                role: user.site_role.as_str().to_string(),
                roles: choices(&ROLES, user.site_role.as_str()),
                kind: if user.service_account { "service account" } else { "person" },
                active: user.active,
                created: time(user.created_at),
                username: user.username,
            })
            .collect(),
        roles: ROLES.to_vec(),
    })
}

/// The new-user form.
#[derive(Deserialize)]
pub struct NewUserForm {
    username: String,
    role: String,
    #[serde(default)]
    service_account: Option<String>,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
}

/// `POST /admin/users`.
pub async fn create_user(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<NewUserForm>,
) -> PageResult {
    let spec = UserSpec {
        username: form.username.trim().to_string(),
        site_role: parse_role(&form.role)?,
        service_account: form.service_account.is_some(),
        password: Some(form.password).filter(|password| !password.is_empty()),
        display_name: optional(&form.display_name).map(str::to_string),
        email: optional(&form.email).map(str::to_string),
    };
    services.identity.create_user(&visitor.context, &spec).await?;
    Ok(to_users())
}

/// The role form.
#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

/// `POST /admin/users/{username}/role`.
pub async fn set_role(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(username): PagePath<String>,
    PageForm(form): PageForm<RoleForm>,
) -> PageResult {
    let role = parse_role(&form.role)?;
    services.identity.set_site_role(&visitor.context, &username, role).await?;
    Ok(to_users())
}

/// The deactivation form.
#[derive(Deserialize)]
pub struct DeactivateForm {
    #[serde(default)]
    transfer_to: String,
}

/// `POST /admin/users/{username}/deactivate`.
pub async fn deactivate(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(username): PagePath<String>,
    PageForm(form): PageForm<DeactivateForm>,
) -> PageResult {
    let heir = optional(&form.transfer_to);
    services.identity.deactivate_user(&visitor.context, &username, heir).await?;
    Ok(to_users())
}

/// `POST /admin/users/{username}/activate`.
pub async fn activate(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(username): PagePath<String>,
) -> PageResult {
    services.identity.set_user_active(&visitor.context, &username, true).await?;
    Ok(to_users())
}

struct TeamRow {
    name: String,
    members: Vec<String>,
    projects: Vec<(String, String)>,
    created: String,
}

#[derive(Template)]
#[template(path = "admin_teams.html")]
struct TeamsPage {
    layout: Layout,
    teams: Vec<TeamRow>,
}

/// `GET /admin/teams`.
pub async fn teams(State(services): State<Services>, visitor: Visitor) -> PageResult {
    let teams = services.projects.teams(&visitor.context).await?;
    render(&TeamsPage {
        layout: Layout::new(&visitor, "admin", "Teams"),
        teams: teams
            .into_iter()
            .map(|team| TeamRow {
                name: team.name,
                members: team.members,
                projects: team
                    .projects
                    .into_iter()
                    .map(|(project, role)| (project, role.as_str().to_string()))
                    .collect(),
                created: time(team.created_at),
            })
            .collect(),
    })
}

fn to_teams(team: Option<&str>) -> axum::response::Response {
    let anchor = team.map(|name| format!("#team-{}", encode(name))).unwrap_or_default();
    Redirect::to(&format!("/admin/teams{anchor}")).into_response()
}

/// The new-team form.
#[derive(Deserialize)]
pub struct NewTeamForm {
    name: String,
}

/// `POST /admin/teams`.
pub async fn create_team(
    State(services): State<Services>,
    visitor: Visitor,
    PageForm(form): PageForm<NewTeamForm>,
) -> PageResult {
    let name = form.name.trim();
    services.projects.create_team(&visitor.context, name).await?;
    Ok(to_teams(Some(name)))
}

/// A team-member form.
#[derive(Deserialize)]
pub struct TeamMemberForm {
    username: String,
}

/// `POST /admin/teams/{team}/members`.
pub async fn add_member(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(team): PagePath<String>,
    PageForm(form): PageForm<TeamMemberForm>,
) -> PageResult {
    services.projects.set_team_user(&visitor.context, &team, form.username.trim(), true).await?;
    Ok(to_teams(Some(&team)))
}

/// `POST /admin/teams/{team}/members/remove`.
pub async fn remove_member(
    State(services): State<Services>,
    visitor: Visitor,
    PagePath(team): PagePath<String>,
    PageForm(form): PageForm<TeamMemberForm>,
) -> PageResult {
    services.projects.set_team_user(&visitor.context, &team, form.username.trim(), false).await?;
    Ok(to_teams(Some(&team)))
}
