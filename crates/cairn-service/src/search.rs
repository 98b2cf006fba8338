//! Global search over everything the caller may read (see `cairn_domain::global_search`):
//! the projects they belong to (every project for site admins and governance reviewers), one
//! bounded, indexed query per kind.

use cairn_domain::audit::RequestContext;
use cairn_domain::global_search::{MAX_HITS_PER_KIND, SearchHit, SearchTerm};
use cairn_store::Store;

use crate::{Authorizer, ServiceResult};

/// Global search.
#[derive(Clone)]
pub struct SearchService {
    store: Store,
    authz: Authorizer,
}

impl SearchService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { authz: Authorizer::new(store.clone()), store }
    }

    /// Searches for `term`, at most `per_kind` hits of each kind (1–50); an empty term finds
    /// nothing.
    pub async fn search(
        &self,
        context: &RequestContext,
        term: &str,
        per_kind: i64,
    ) -> ServiceResult<Vec<SearchHit>> {
        let Some(term) = SearchTerm::parse(term) else { return Ok(Vec::new()) };
        let projects = self.authz.readable_projects(context).await?;
        let per_kind = per_kind.clamp(1, MAX_HITS_PER_KIND);
        Ok(self.store.global_search(&term, projects.as_deref(), per_kind).await?)
    }
}
