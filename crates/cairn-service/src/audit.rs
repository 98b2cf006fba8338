//! Reading the audit log (the writes happen inside every mutation, in the store).

use cairn_domain::audit::{AuditRecord, RequestContext};
use cairn_domain::page_token::{decode_offset, encode_offset};
use cairn_store::{AuditQuery, ChainStatus, Store};

use crate::{Authorizer, ServiceError, ServiceResult};

/// Most records one page may hold.
pub const MAX_AUDIT_PAGE: i64 = 1000;

/// Queries over the audit log.
#[derive(Clone)]
pub struct AuditService {
    store: Store,
}

impl AuditService {
    /// Wraps the store.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Searches records in sequence order. The page token carries the last sequence number seen,
    /// so pages stay stable while new records are appended.
    pub async fn search(
        &self,
        context: &RequestContext,
        mut query: AuditQuery,
        page_token: &str,
    ) -> ServiceResult<(Vec<AuditRecord>, Option<String>)> {
        Authorizer::new(self.store.clone()).require_admin(context)?;
        if !(1..=MAX_AUDIT_PAGE).contains(&query.limit) {
            return Err(ServiceError::invalid(format!(
                "page_size must be between 1 and {MAX_AUDIT_PAGE}"
            )));
        }
        query.after_seq = i64::try_from(decode_offset(page_token)?).unwrap_or(i64::MAX);
        let (records, has_more) = self.store.search_audit(&query).await?;
        let token = match (has_more, records.last()) {
            (true, Some(last)) => Some(encode_offset(u64::try_from(last.seq).unwrap_or(0))),
            _ => None,
        };
        Ok((records, token))
    }

    /// Searches records newest first. The page token carries the last (oldest) sequence
    /// number seen, so later pages never repeat or skip records while new ones are appended.
    pub async fn recent(
        &self,
        context: &RequestContext,
        mut query: AuditQuery,
        page_token: &str,
    ) -> ServiceResult<(Vec<AuditRecord>, Option<String>)> {
        Authorizer::new(self.store.clone()).require_admin(context)?;
        if !(1..=MAX_AUDIT_PAGE).contains(&query.limit) {
            return Err(ServiceError::invalid(format!(
                "page_size must be between 1 and {MAX_AUDIT_PAGE}"
            )));
        }
        query.newest_first = true;
        query.after_seq = 0;
        query.before_seq = match page_token {
            "" => None,
            token => Some(i64::try_from(decode_offset(token)?).unwrap_or(i64::MAX)),
        };
        let (records, has_more) = self.store.search_audit(&query).await?;
        let token = match (has_more, records.last()) {
            (true, Some(last)) => Some(encode_offset(u64::try_from(last.seq).unwrap_or(0))),
            _ => None,
        };
        Ok((records, token))
    }

    /// Recomputes the whole hash chain (site admins): intact with the number of records, or
    /// the first record that does not fit.
    pub async fn verify(&self, context: &RequestContext) -> ServiceResult<ChainStatus> {
        Authorizer::new(self.store.clone()).require_admin(context)?;
        Ok(self.store.verify_audit_chain().await?)
    }
}
