//! Users, tokens, projects and members over `/api/v1`: what the `cairn` CLI and integrations
//! use. Authorisation is the service layer's; these handlers only translate.

use axum::extract::State;
use axum::http::StatusCode;
use cairn_domain::identity::{Project, ProjectRole, SiteRole, TokenInfo, User};
use cairn_service::{Member, Services, Team, UserSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path};
use crate::context::Caller;

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    username: String,
    site_role: String,
    service_account: bool,
    active: bool,
    display_name: Option<String>,
    email: Option<String>,
    created_at: i64,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            username: user.username,
            site_role: user.site_role.as_str().to_string(),
            service_account: user.service_account,
            active: user.active,
            display_name: user.display_name,
            email: user.email,
            created_at: user.created_at,
        }
    }
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The acting user name (`anonymous` while authentication is disabled).
    actor: String,
    /// The site role, when authenticated.
    site_role: Option<String>,
}

/// Who am I.
#[utoipa::path(get, path = "/me", tag = "identity", responses((status = OK, body = Me)))]
pub async fn me(Caller(context): Caller) -> axum::Json<Me> {
    let site_role =
        context.principal.as_ref().map(|principal| principal.site_role.as_str().to_string());
    axum::Json(Me { actor: context.actor, site_role })
}

/// List users (site admins).
#[utoipa::path(get, path = "/users", tag = "identity", responses((status = OK, body = Vec<UserView>), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn list_users(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<UserView>>> {
    let users = services.identity.list_users(&context).await?;
    Ok(axum::Json(users.into_iter().map(UserView::from).collect()))
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserBody {
    username: String,
    /// `admin`, `governance-reviewer` or `member` (default).
    site_role: Option<String>,
    #[serde(default)]
    service_account: bool,
    password: Option<String>,
    display_name: Option<String>,
    email: Option<String>,
}

/// Create a user (site admins).
#[utoipa::path(post, path = "/users", tag = "identity", request_body = NewUserBody, responses((status = CREATED, body = UserView), (status = CONFLICT, body = ErrorBody)))]
pub async fn create_user(
    State(services): State<Services>,
    Caller(context): Caller,
    Json(body): Json<NewUserBody>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let site_role = SiteRole::parse(body.site_role.as_deref().unwrap_or("member"))
        .map_err(|error| ApiError::invalid(error.message))?;
    let spec = UserSpec {
        username: body.username,
        site_role,
        service_account: body.service_account,
        password: body.password,
        display_name: body.display_name,
        email: body.email,
    };
    let user = services.identity.create_user(&context, &spec).await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

/// Where a deactivated user's projects go.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeactivateBody {
    /// Who takes over the projects the user owns.
    transfer_to: Option<String>,
}

/// Deactivate a user (site admins): their tokens and password stop working, their work stays;
/// projects they own pass to `transfer_to`.
#[utoipa::path(post, path = "/users/{username}/deactivate", tag = "identity", params(("username" = String, Path)), request_body = DeactivateBody, responses((status = OK, body = UserView), (status = CONFLICT, body = ErrorBody)))]
pub async fn deactivate_user(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(username): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<UserView>> {
    // The body is optional: none means "no transfer".
    let body: DeactivateBody = if body.iter().all(u8::is_ascii_whitespace) {
        DeactivateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::invalid(format!("invalid body: {error}")))?
    };
    let transfer_to = body.transfer_to;
    Ok(axum::Json(
        services
            .identity
            .deactivate_user(&context, &username, transfer_to.as_deref())
            .await?
            .into(),
    ))
}

/// A site role to give.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteRoleBody {
    /// `admin`, `governance-reviewer` or `member`.
    site_role: String,
}

/// Change a user's site role (site admins; not their own).
#[utoipa::path(put, path = "/users/{username}/site-role", tag = "identity", params(("username" = String, Path)), request_body = SiteRoleBody, responses((status = OK, body = UserView), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn set_site_role(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(username): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<UserView>> {
    services.identity.authorize_admin(&context)?;
    let body: SiteRoleBody = super::extract::parse_json(&body)?;
    let role =
        SiteRole::parse(&body.site_role).map_err(|error| ApiError::invalid(error.message))?;
    Ok(axum::Json(services.identity.set_site_role(&context, &username, role).await?.into()))
}

/// A token as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    id: i64,
    name: String,
    hint: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenInfo> for TokenView {
    fn from(token: TokenInfo) -> Self {
        Self {
            id: token.id,
            name: token.name,
            hint: token.hint,
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}

fn own_username(context: &cairn_domain::audit::RequestContext) -> ApiResult<String> {
    context
        .principal
        .as_ref()
        .map(|principal| principal.username.clone())
        .ok_or_else(|| ApiError::invalid("tokens belong to users: authenticate first"))
}

/// List my tokens.
#[utoipa::path(get, path = "/tokens", tag = "identity", responses((status = OK, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    let username = own_username(&context)?;
    let tokens = services.identity.list_tokens(&context, &username).await?;
    Ok(axum::Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTokenBody {
    name: String,
    expires_in_days: Option<u32>,
}

/// A new token: its secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    token: TokenView,
    secret: String,
}

/// Create a token for myself.
#[utoipa::path(post, path = "/tokens", tag = "identity", request_body = NewTokenBody, responses((status = CREATED, body = CreatedToken)))]
pub async fn create_token(
    State(services): State<Services>,
    Caller(context): Caller,
    Json(body): Json<NewTokenBody>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let username = own_username(&context)?;
    let (info, secret) = services
        .identity
        .create_token(&context, &username, &body.name, body.expires_in_days)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { token: info.into(), secret })))
}

/// Revoke one of my tokens.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "identity", params(("id" = i64, Path)), responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn revoke_token(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let username = own_username(&context)?;
    services.identity.revoke_token(&context, id, Some(&username)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    name: String,
    description: Option<String>,
    created_at: i64,
}

impl From<Project> for ProjectView {
    fn from(project: Project) -> Self {
        Self {
            name: project.name,
            description: project.description,
            created_at: project.created_at,
        }
    }
}

/// List the projects I belong to (all of them for site admins).
#[utoipa::path(get, path = "/projects", tag = "projects", responses((status = OK, body = Vec<ProjectView>)))]
pub async fn list_projects(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<ProjectView>>> {
    let projects = services.projects.list(&context).await?;
    Ok(axum::Json(projects.into_iter().map(ProjectView::from).collect()))
}

/// A project to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewProjectBody {
    name: String,
    description: Option<String>,
    /// A user who becomes its first owner.
    owner: Option<String>,
}

/// Create a project (site admins).
#[utoipa::path(post, path = "/projects", tag = "projects", request_body = NewProjectBody, responses((status = CREATED, body = ProjectView), (status = CONFLICT, body = ErrorBody), (status = NOT_FOUND, description = "The owner named does not exist", body = ErrorBody)))]
pub async fn create_project(
    State(services): State<Services>,
    Caller(context): Caller,
    Json(body): Json<NewProjectBody>,
) -> ApiResult<(StatusCode, axum::Json<ProjectView>)> {
    let project = services
        .projects
        .create(&context, &body.name, body.description.as_deref(), body.owner.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(project.into())))
}

/// A member as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    username: String,
    role: String,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> Self {
        Self { username: member.username, role: member.role.as_str().to_string() }
    }
}

/// List a project's members (its viewers and up).
#[utoipa::path(get, path = "/projects/{project}/members", tag = "projects", params(("project" = String, Path)), responses((status = OK, body = Vec<MemberView>)))]
pub async fn list_members(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(project): Path<String>,
) -> ApiResult<axum::Json<Vec<MemberView>>> {
    let members = services.projects.members(&context, &project).await?;
    Ok(axum::Json(members.into_iter().map(MemberView::from).collect()))
}

/// A role to give.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// `owner`, `contributor` or `viewer`.
    role: String,
}

/// Add a member or change their role (the project's owners).
#[utoipa::path(put, path = "/projects/{project}/members/{username}", tag = "projects", params(("project" = String, Path), ("username" = String, Path)), request_body = RoleBody, responses((status = NO_CONTENT), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn set_member(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, username)): Path<(String, String)>,
    Json(body): Json<RoleBody>,
) -> ApiResult<StatusCode> {
    let role = ProjectRole::parse(&body.role).map_err(|error| ApiError::invalid(error.message))?;
    services.projects.set_member(&context, &project, &username, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (the project's owners).
#[utoipa::path(delete, path = "/projects/{project}/members/{username}", tag = "projects", params(("project" = String, Path), ("username" = String, Path)), responses((status = NO_CONTENT), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn remove_member(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.projects.remove_member(&context, &project, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A team to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTeamBody {
    name: String,
}

/// Create a team (site admins).
#[utoipa::path(post, path = "/teams", tag = "projects", request_body = NewTeamBody, responses((status = CREATED), (status = CONFLICT, body = ErrorBody)))]
pub async fn create_team(
    State(services): State<Services>,
    Caller(context): Caller,
    Json(body): Json<NewTeamBody>,
) -> ApiResult<StatusCode> {
    services.projects.create_team(&context, &body.name).await?;
    Ok(StatusCode::CREATED)
}

/// A team as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    name: String,
    created_at: i64,
    /// Its members' user names.
    members: Vec<String>,
    /// The projects it has a role in.
    projects: Vec<MemberOfProject>,
}

/// A team's role in a project.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOfProject {
    project: String,
    role: String,
}

impl From<Team> for TeamView {
    fn from(team: Team) -> Self {
        Self {
            name: team.name,
            created_at: team.created_at,
            members: team.members,
            projects: team
                .projects
                .into_iter()
                .map(|(project, role)| MemberOfProject { project, role: role.as_str().to_string() })
                .collect(),
        }
    }
}

/// List teams with their members and project roles (site admins).
#[utoipa::path(get, path = "/teams", tag = "projects", responses((status = OK, body = Vec<TeamView>), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn list_teams(
    State(services): State<Services>,
    Caller(context): Caller,
) -> ApiResult<axum::Json<Vec<TeamView>>> {
    let teams = services.projects.teams(&context).await?;
    Ok(axum::Json(teams.into_iter().map(TeamView::from).collect()))
}

/// Add a user to a team (site admins).
#[utoipa::path(put, path = "/teams/{team}/members/{username}", tag = "projects", params(("team" = String, Path), ("username" = String, Path)), responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn add_team_member(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((team, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.projects.set_team_user(&context, &team, &username, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user from a team (site admins).
#[utoipa::path(delete, path = "/teams/{team}/members/{username}", tag = "projects", params(("team" = String, Path), ("username" = String, Path)), responses((status = NO_CONTENT), (status = NOT_FOUND, body = ErrorBody)))]
pub async fn remove_team_member(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((team, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.projects.set_team_user(&context, &team, &username, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a team a role in a project (the project's owners).
#[utoipa::path(put, path = "/projects/{project}/teams/{team}", tag = "projects", params(("project" = String, Path), ("team" = String, Path)), request_body = RoleBody, responses((status = NO_CONTENT), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn set_project_team(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, team)): Path<(String, String)>,
    Json(body): Json<RoleBody>,
) -> ApiResult<StatusCode> {
    let role = ProjectRole::parse(&body.role).map_err(|error| ApiError::invalid(error.message))?;
    services.projects.set_project_team(&context, &project, &team, Some(role)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a team's role in a project away (the project's owners).
#[utoipa::path(delete, path = "/projects/{project}/teams/{team}", tag = "projects", params(("project" = String, Path), ("team" = String, Path)), responses((status = NO_CONTENT), (status = FORBIDDEN, body = ErrorBody)))]
pub async fn remove_project_team(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((project, team)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    services.projects.set_project_team(&context, &project, &team, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
