//! Comments on projects, runs and model versions. A project's readers read them; its
//! contributors write them; a comment's author (while still a contributor) or a project owner
//! deletes it. `@names` in the text are recorded as mentions of those users.

use cairn_domain::audit::RequestContext;
use cairn_domain::comments::{Comment, CommentTarget, mentions, validate_body};
use cairn_domain::identity::{Access, Project};
use cairn_store::Store;

use crate::{Authorizer, ServiceError, ServiceResult};

/// The most comments one page lists.
pub const MAX_COMMENTS_PAGE: i64 = 500;

/// Comments and their mentions.
#[derive(Clone)]
pub struct CommentService {
    store: Store,
    authz: Authorizer,
}

impl CommentService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { authz: Authorizer::new(store.clone()), store }
    }

    async fn project(
        &self,
        context: &RequestContext,
        project: &str,
        access: Access,
    ) -> ServiceResult<Project> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project)
    }

    /// Fails unless `target` exists in `project`.
    async fn check_target(&self, project: &Project, target: &CommentTarget) -> ServiceResult<()> {
        match target {
            CommentTarget::Project => Ok(()),
            CommentTarget::Run(run_id) => match self.store.run_project(run_id).await? {
                Some(owner) if owner == project.id => Ok(()),
                _ => Err(ServiceError::not_found(format!(
                    "no run '{run_id}' in project '{}'",
                    project.name
                ))),
            },
            CommentTarget::ModelVersion { name, version } => {
                self.store.get_model_version(project.id, name, *version).await?;
                Ok(())
            }
        }
    }

    /// Writes a comment (project contributors).
    pub async fn add(
        &self,
        context: &RequestContext,
        project: &str,
        target: &CommentTarget,
        body: &str,
    ) -> ServiceResult<Comment> {
        let project = self.project(context, project, Access::Write).await?;
        let body = validate_body(body)?;
        self.check_target(&project, target).await?;
        let mentioned = mentions(body);
        Ok(self.store.create_comment(context, &project, target, body, &mentioned).await?)
    }

    /// A project's comments, oldest first: on `target`, or all when `None`; those with an id
    /// above `after_id`; at most `limit` (1–500).
    pub async fn list(
        &self,
        context: &RequestContext,
        project: &str,
        target: Option<&CommentTarget>,
        after_id: i64,
        limit: i64,
    ) -> ServiceResult<Vec<Comment>> {
        let project = self.project(context, project, Access::Read).await?;
        let limit = limit.clamp(1, MAX_COMMENTS_PAGE);
        Ok(self.store.list_comments(project.id, target, after_id, limit).await?)
    }

    /// Deletes a comment: its author, or a project owner; both need write access.
    pub async fn delete(
        &self,
        context: &RequestContext,
        project: &str,
        id: i64,
    ) -> ServiceResult<()> {
        let project = self.project(context, project, Access::Write).await?;
        let record = self.store.get_comment(id).await?;
        if record.project_id != project.id {
            return Err(ServiceError::not_found(format!(
                "no comment with id {id} in project '{}'",
                project.name
            )));
        }
        let own = match &context.principal {
            Some(principal) => record.author_id == Some(principal.user_id),
            None => true,
        };
        if !own {
            self.authz.require(context, project.id, Access::Manage).await.map_err(|_| {
                ServiceError {
                    kind: cairn_domain::ErrorKind::PermissionDenied,
                    message: format!(
                        "'{}' may delete only their own comments; comment {id} is {}'s (project owners may delete any)",
                        context.actor, record.comment.author
                    ),
                }
            })?;
        }
        Ok(self.store.delete_comment(context, id).await?)
    }

    /// The newest comments mentioning the caller, in projects they may read.
    pub async fn mentioning_me(
        &self,
        context: &RequestContext,
        limit: i64,
    ) -> ServiceResult<Vec<Comment>> {
        let Some(principal) = &context.principal else { return Ok(Vec::new()) };
        let projects = self.authz.readable_projects(context).await?;
        let limit = limit.clamp(1, MAX_COMMENTS_PAGE);
        Ok(self.store.comments_mentioning(principal.user_id, projects.as_deref(), limit).await?)
    }
}
