//! What IT offers: environments (revisioned; only approved revisions run), hardware tiers and
//! quotas. Admins write; every signed-in user reads.

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{
    Environment, EnvironmentDefinition, EnvironmentRevision, HardwareTier, Quota, RevisionState,
    TierSpec, validate_resource_name,
};
use cairn_store::Store;

use crate::{Authorizer, ServiceError, ServiceResult};

/// Environments, tiers and quotas.
#[derive(Clone)]
pub struct CatalogService {
    store: Store,
    authz: Authorizer,
}

impl CatalogService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { authz: Authorizer::new(store.clone()), store }
    }

    /// Requires site administration (handlers call it before reading a request body).
    pub fn require_admin(&self, context: &RequestContext) -> ServiceResult<()> {
        self.authz.require_admin(context)
    }

    /// Creates an environment with a draft first revision.
    pub async fn create_environment(
        &self,
        context: &RequestContext,
        name: &str,
        description: &str,
        definition: &EnvironmentDefinition,
    ) -> ServiceResult<Environment> {
        self.authz.require_admin(context)?;
        validate_resource_name("environment", name)?;
        definition.validate()?;
        Ok(self.store.create_environment(context, name, description, definition).await?)
    }

    /// Adds a draft revision.
    pub async fn revise_environment(
        &self,
        context: &RequestContext,
        name: &str,
        definition: &EnvironmentDefinition,
    ) -> ServiceResult<EnvironmentRevision> {
        self.authz.require_admin(context)?;
        definition.validate()?;
        Ok(self.store.add_environment_revision(context, name, definition).await?)
    }

    /// Approves or deprecates a revision (drafts cannot be made again).
    pub async fn set_revision_state(
        &self,
        context: &RequestContext,
        name: &str,
        revision: i64,
        state: RevisionState,
    ) -> ServiceResult<EnvironmentRevision> {
        self.authz.require_admin(context)?;
        if state == RevisionState::Draft {
            return Err(ServiceError::invalid(
                "a revision can be approved or deprecated, not made a draft again",
            ));
        }
        Ok(self.store.set_revision_state(context, name, revision, state).await?)
    }

    /// One environment.
    pub async fn environment(
        &self,
        _context: &RequestContext,
        name: &str,
    ) -> ServiceResult<Environment> {
        Ok(self.store.get_environment(name).await?)
    }

    /// Every environment.
    pub async fn environments(&self, _context: &RequestContext) -> ServiceResult<Vec<Environment>> {
        Ok(self.store.list_environments().await?)
    }

    /// Creates or replaces a tier.
    pub async fn put_tier(
        &self,
        context: &RequestContext,
        name: &str,
        spec: &TierSpec,
        active: bool,
    ) -> ServiceResult<HardwareTier> {
        self.authz.require_admin(context)?;
        validate_resource_name("tier", name)?;
        spec.validate()?;
        Ok(self.store.put_tier(context, name, spec, active).await?)
    }

    /// One tier.
    pub async fn tier(&self, _context: &RequestContext, name: &str) -> ServiceResult<HardwareTier> {
        Ok(self.store.get_tier(name).await?)
    }

    /// Every tier.
    pub async fn tiers(&self, _context: &RequestContext) -> ServiceResult<Vec<HardwareTier>> {
        Ok(self.store.list_tiers().await?)
    }

    /// Sets a quota (both limits absent: removes it).
    pub async fn set_quota(&self, context: &RequestContext, quota: &Quota) -> ServiceResult<()> {
        self.authz.require_admin(context)?;
        if quota.max_jobs.is_some_and(|max| max < 0) || quota.max_gpus.is_some_and(|max| max < 0) {
            return Err(ServiceError::invalid("quota limits are zero or more"));
        }
        Ok(self.store.set_quota(context, quota).await?)
    }

    /// Every quota.
    pub async fn quotas(&self, _context: &RequestContext) -> ServiceResult<Vec<Quota>> {
        Ok(self.store.list_quotas().await?)
    }
}
