//! Projects and memberships: the unit of permission. Creating a project takes a site admin;
//! managing its members takes its owner (or a site admin).

use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{Access, Project, ProjectRole, validate_project_name};
use cairn_store::{Member, Store, Team};

use crate::{Authorizer, ServiceResult};

/// A project with what the caller may do there.
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    /// The project.
    pub project: Project,
    /// Whether the caller may change its experiments, runs and models.
    pub can_write: bool,
    /// Whether the caller may manage its members.
    pub can_manage: bool,
}

/// Projects and their members.
#[derive(Clone)]
pub struct ProjectService {
    store: Store,
    authz: Authorizer,
}

impl ProjectService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { authz: Authorizer::new(store.clone()), store }
    }

    /// Requires `access` to the project named `project` and returns it (handlers call this
    /// before reading a request body, so an unauthorised caller learns nothing from parsing).
    pub async fn authorize(
        &self,
        context: &RequestContext,
        project: &str,
        access: cairn_domain::identity::Access,
    ) -> ServiceResult<Project> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project)
    }

    /// Creates a project; `owner`, if given, becomes its first owner.
    pub async fn create(
        &self,
        context: &RequestContext,
        name: &str,
        description: Option<&str>,
        owner: Option<&str>,
    ) -> ServiceResult<Project> {
        self.authz.require_admin(context)?;
        validate_project_name(name)?;
        let owner = match owner {
            Some(username) => Some(self.store.get_user(username).await?),
            None => None,
        };
        let project = self.store.create_project(context, name, description).await?;
        if let Some(owner) = owner {
            self.store
                .set_member(context, &project, owner.id, &owner.username, ProjectRole::Owner)
                .await?;
        }
        Ok(project)
    }

    /// Lists the projects the caller belongs to (every project for site admins).
    pub async fn list(&self, context: &RequestContext) -> ServiceResult<Vec<Project>> {
        let Some(principal) =
            context.principal.as_ref().filter(|_| !Authorizer::is_unrestricted(context))
        else {
            return Ok(self.store.list_projects().await?);
        };
        let projects = self.store.member_projects(principal.user_id).await?;
        // A confined token sees only its own project.
        Ok(match principal.scope_project {
            Some(scope) => projects.into_iter().filter(|project| project.id == scope).collect(),
            None => projects,
        })
    }

    /// What the caller may do in a project they may read (the UI shows edit controls from
    /// this; every operation still checks for itself).
    pub async fn access(
        &self,
        context: &RequestContext,
        project: &str,
    ) -> ServiceResult<ProjectAccess> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        let can_write = self.authz.require(context, project.id, Access::Write).await.is_ok();
        let can_manage =
            can_write && self.authz.require(context, project.id, Access::Manage).await.is_ok();
        Ok(ProjectAccess { project, can_write, can_manage })
    }

    /// Adds a member or changes their role.
    pub async fn set_member(
        &self,
        context: &RequestContext,
        project: &str,
        username: &str,
        role: ProjectRole,
    ) -> ServiceResult<()> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Manage).await?;
        let user = self.store.get_user(username).await?;
        Ok(self.store.set_member(context, &project, user.id, &user.username, role).await?)
    }

    /// Removes a member.
    pub async fn remove_member(
        &self,
        context: &RequestContext,
        project: &str,
        username: &str,
    ) -> ServiceResult<()> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Manage).await?;
        let user = self.store.get_user(username).await?;
        Ok(self.store.remove_member(context, &project, user.id, &user.username).await?)
    }

    /// Lists a project's members.
    pub async fn members(
        &self,
        context: &RequestContext,
        project: &str,
    ) -> ServiceResult<Vec<Member>> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Read).await?;
        Ok(self.store.list_members(project.id).await?)
    }

    /// Creates a team (site admins).
    pub async fn create_team(&self, context: &RequestContext, name: &str) -> ServiceResult<()> {
        self.authz.require_admin(context)?;
        validate_project_name(name)
            .map_err(|_| crate::ServiceError::invalid(format!("invalid team name '{name}'")))?;
        self.store.create_team(context, name).await?;
        Ok(())
    }

    /// Every team with its members and project roles (site admins).
    pub async fn teams(&self, context: &RequestContext) -> ServiceResult<Vec<Team>> {
        self.authz.require_admin(context)?;
        Ok(self.store.list_teams().await?)
    }

    /// Adds a user to a team or removes them (site admins).
    pub async fn set_team_user(
        &self,
        context: &RequestContext,
        team: &str,
        username: &str,
        member: bool,
    ) -> ServiceResult<()> {
        self.authz.require_admin(context)?;
        let user = self.store.get_user(username).await?;
        Ok(self.store.set_team_membership(context, team, user.id, &user.username, member).await?)
    }

    /// Gives a team a role in a project, or removes it (the project's owners).
    pub async fn set_project_team(
        &self,
        context: &RequestContext,
        project: &str,
        team: &str,
        role: Option<ProjectRole>,
    ) -> ServiceResult<()> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, Access::Manage).await?;
        Ok(self.store.set_project_team(context, &project, team, role).await?)
    }
}
