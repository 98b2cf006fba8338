//! Authorisation, decided here once for every surface. A request acts within a project (the
//! `/p/<project>` prefix of its URL, or the default project); every operation names the project
//! it touches and the access it needs, and the caller's role there must grant it. Site admins
//! may do everything; with authentication disabled the anonymous caller may too.

use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{Access, DEFAULT_PROJECT, Project, SiteRole};
use cairn_store::Store;

use crate::{ServiceError, ServiceResult};

/// Decides whether a caller may act.
#[derive(Clone)]
pub struct Authorizer {
    store: Store,
}

fn denied(message: String) -> ServiceError {
    ServiceError { kind: ErrorKind::PermissionDenied, message }
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::Read => "read",
        Access::Write => "write",
        Access::Manage => "manage",
    }
}

impl Authorizer {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The project a request is scoped to: its `/p/<project>` prefix, else the caller's default
    /// project, else the site's `default` project.
    pub async fn scoped_project(&self, context: &RequestContext) -> ServiceResult<Project> {
        if let Some(name) = &context.project {
            return Ok(self.store.get_project(name).await?);
        }
        if let Some(principal) = &context.principal
            && let Some(name) = self.store.default_project_name(principal.user_id).await?
        {
            return Ok(self.store.get_project(&name).await?);
        }
        Ok(self.store.get_project(DEFAULT_PROJECT).await?)
    }

    /// Whether the caller is unrestricted (a site admin, or anyone while auth is disabled).
    pub fn is_unrestricted(context: &RequestContext) -> bool {
        match &context.principal {
            Some(principal) => {
                principal.site_role == SiteRole::Admin && principal.scope_project.is_none()
            }
            None => true,
        }
    }

    /// Requires site administration.
    pub fn require_admin(&self, context: &RequestContext) -> ServiceResult<()> {
        if Self::is_unrestricted(context) {
            return Ok(());
        }
        Err(denied(format!("'{}' is not a site admin", context.actor)))
    }

    /// Requires `access` to the project `project_id`.
    pub async fn require(
        &self,
        context: &RequestContext,
        project_id: i64,
        access: Access,
    ) -> ServiceResult<()> {
        let Some(principal) = &context.principal else { return Ok(()) };
        if let Some(scope) = principal.scope_project
            && scope != project_id
        {
            return Err(denied(format!(
                "this token of '{}' is confined to another project",
                principal.username
            )));
        }
        if principal.site_role == SiteRole::Admin {
            return Ok(());
        }
        // Governance reviewers read every project: they judge evidence wherever it lives.
        if principal.site_role == SiteRole::GovernanceReviewer && access == Access::Read {
            return Ok(());
        }
        let role = self.store.member_role(project_id, principal.user_id).await?;
        if role.is_some_and(|role| role.allows(access)) {
            return Ok(());
        }
        let project = self
            .store
            .list_projects()
            .await?
            .into_iter()
            .find(|project| project.id == project_id)
            .map_or_else(|| project_id.to_string(), |project| project.name);
        Err(denied(match role {
            None => format!("'{}' is not a member of project '{project}'", principal.username),
            Some(role) => format!(
                "'{}' is a {} of project '{project}' and may not {} there",
                principal.username,
                role.as_str(),
                access_name(access)
            ),
        }))
    }

    /// The projects the caller may read: `None` for every project (site admins, governance
    /// reviewers, and anyone while authentication is off), else their projects (direct or
    /// through a team; only the token's project for a confined token).
    pub async fn readable_projects(
        &self,
        context: &RequestContext,
    ) -> ServiceResult<Option<Vec<i64>>> {
        let Some(principal) = &context.principal else { return Ok(None) };
        let reads_all =
            matches!(principal.site_role, SiteRole::Admin | SiteRole::GovernanceReviewer);
        match principal.scope_project {
            None if reads_all => Ok(None),
            Some(scope) if reads_all => Ok(Some(vec![scope])),
            scope => {
                let projects = self.store.member_projects(principal.user_id).await?;
                Ok(Some(
                    projects
                        .into_iter()
                        .map(|project| project.id)
                        .filter(|id| scope.is_none_or(|scope| scope == *id))
                        .collect(),
                ))
            }
        }
    }

    /// Requires `access` to the project holding `project_id`, which must be the request's scope;
    /// outside the scope the entity is reported missing with `not_found`.
    async fn require_in_scope(
        &self,
        context: &RequestContext,
        project_id: Option<i64>,
        access: Access,
        not_found: impl FnOnce() -> ServiceError,
    ) -> ServiceResult<()> {
        let Some(project_id) = project_id else {
            // Unrestricted callers get the operation's own answer for a missing entity.
            if Self::is_unrestricted(context) && context.project.is_none() {
                return Ok(());
            }
            return Err(not_found());
        };
        if context.project.is_some() && self.scoped_project(context).await?.id != project_id {
            return Err(not_found());
        }
        self.require(context, project_id, access).await
    }

    /// Requires `access` to an experiment's project.
    pub async fn require_experiment(
        &self,
        context: &RequestContext,
        experiment_id: i64,
        access: Access,
    ) -> ServiceResult<()> {
        let project = self.store.experiment_project(experiment_id).await?;
        self.require_in_scope(context, project, access, || ServiceError {
            kind: ErrorKind::NotFound,
            message: format!("No Experiment with id={experiment_id} exists"),
        })
        .await
    }

    /// Requires `access` to a run's project.
    pub async fn require_run(
        &self,
        context: &RequestContext,
        run_id: &str,
        access: Access,
    ) -> ServiceResult<()> {
        let project = self.store.run_project(run_id).await?;
        self.require_in_scope(context, project, access, || ServiceError {
            kind: ErrorKind::NotFound,
            message: format!("Run with id={run_id} not found"),
        })
        .await
    }

    /// Requires `access` to a logged model's project.
    pub async fn require_logged_model(
        &self,
        context: &RequestContext,
        model_id: &str,
        access: Access,
    ) -> ServiceResult<()> {
        let project = self.store.logged_model_project(model_id).await?;
        self.require_in_scope(context, project, access, || ServiceError {
            kind: ErrorKind::NotFound,
            message: format!("Logged model with ID '{model_id}' not found."),
        })
        .await
    }

    /// Keeps the experiments inside the request's scope and requires `access` to each.
    pub async fn readable_experiments(
        &self,
        context: &RequestContext,
        experiment_ids: Vec<i64>,
    ) -> ServiceResult<Vec<i64>> {
        let scope = match &context.project {
            Some(_) => Some(self.scoped_project(context).await?.id),
            None => None,
        };
        let mut kept = Vec::with_capacity(experiment_ids.len());
        for experiment_id in experiment_ids {
            let Some(project_id) = self.store.experiment_project(experiment_id).await? else {
                continue;
            };
            if scope.is_some_and(|scope| scope != project_id) {
                continue;
            }
            self.require(context, project_id, Access::Read).await?;
            kept.push(experiment_id);
        }
        Ok(kept)
    }
}
