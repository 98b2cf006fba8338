//! Who reaches a workspace, and what the proxy gets for one: JupyterLab's address, the
//! `Authorization` value it sends upstream (never shown), a scrubber that blanks the token out
//! of pages JupyterLab renders with it, and an activity clock for the idle check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use cairn_domain::ErrorKind;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::Access;
use cairn_domain::time::now_millis;
use cairn_domain::workspaces::WorkspaceState;
use cairn_store::WorkspaceRecord;

use super::{WorkspaceService, lock};
use crate::{Authorizer, ServiceError, ServiceResult};

/// Where the proxy sends a workspace's traffic. Its `Debug` hides the token.
#[derive(Clone)]
pub struct ProxyTarget {
    /// JupyterLab's address (loopback, or the Ray node it runs on).
    pub address: SocketAddr,
    token: Arc<str>,
    authorization: String,
    activity: Arc<AtomicI64>,
}

impl std::fmt::Debug for ProxyTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProxyTarget")
            .field("address", &self.address)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl ProxyTarget {
    /// The `Authorization` header value JupyterLab expects (`token …`); send it upstream only.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }

    /// `body` with every occurrence of the token blanked out, or `None` when it holds none
    /// (JupyterLab writes its token into the pages it renders).
    pub fn scrub(&self, body: &[u8]) -> Option<Vec<u8>> {
        let needle = self.token.as_bytes();
        let first = body.windows(needle.len()).position(|window| window == needle)?;
        let mut out = Vec::with_capacity(body.len());
        out.extend_from_slice(&body[..first]);
        let mut rest = &body[first + needle.len()..];
        while let Some(next) = rest.windows(needle.len()).position(|window| window == needle) {
            out.extend_from_slice(&rest[..next]);
            rest = &rest[next + needle.len()..];
        }
        out.extend_from_slice(rest);
        Some(out)
    }

    /// Records traffic through the proxy as activity (idle stops count from the last one).
    pub fn touch(&self) {
        self.activity.fetch_max(now_millis(), Ordering::Relaxed);
    }
}

/// Requires that the caller may use the workspace: its owner, or anyone when it is shared
/// (write access to its project is checked by the caller).
pub(super) fn require_user(
    context: &RequestContext,
    record: &WorkspaceRecord,
) -> ServiceResult<()> {
    if record.workspace.request.shared || Authorizer::is_unrestricted(context) {
        return Ok(());
    }
    let caller = context.principal.as_ref().map(|principal| principal.user_id);
    if caller.is_some() && caller == record.owner_id {
        return Ok(());
    }
    Err(ServiceError {
        kind: ErrorKind::PermissionDenied,
        message: format!(
            "workspace {} belongs to '{}' and is not shared",
            record.workspace.id, record.workspace.owner
        ),
    })
}

impl WorkspaceService {
    /// Authorises a request through the proxy and returns where it goes: the caller needs write
    /// access to the workspace's project (within the request's `/p/<project>` scope, if any) and
    /// to be its owner unless it is shared; the workspace must be running on this replica.
    pub async fn proxy_target(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> ServiceResult<ProxyTarget> {
        if let Some(scope) = &context.project {
            // Decide on the scope first, so a caller outside it learns nothing about ids.
            let project = self.store().get_project(scope).await?;
            self.jobs.authz.require(context, project.id, Access::Write).await?;
        }
        let record = match self.live(id) {
            Some(live) => live.record.clone(),
            None => self.store().get_workspace(id).await?,
        };
        if context.project.as_ref().is_some_and(|scope| *scope != record.workspace.project) {
            return Err(ServiceError::not_found(format!("no workspace {id} in this project")));
        }
        self.jobs.authz.require(context, record.project_id, Access::Write).await?;
        require_user(context, &record)?;
        if let Some(live) = self.live(id)
            && lock(&live.ending).is_some()
        {
            return Err(ServiceError::precondition(format!(
                "workspace {id} is stopping: its files are being saved"
            )));
        }
        let Some(live) = self.live(id) else {
            return Err(match record.workspace.state {
                WorkspaceState::Starting => ServiceError::precondition(format!(
                    "workspace {id} is starting: try again in a moment"
                )),
                _ => self.running_here(&record).err().unwrap_or_else(|| {
                    ServiceError::precondition(format!("workspace {id} is not running"))
                }),
            });
        };
        Ok(ProxyTarget {
            address: live.address,
            token: live.token.clone(),
            authorization: format!("token {}", live.token),
            activity: live.proxy_activity.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(token: &str) -> ProxyTarget {
        ProxyTarget {
            address: SocketAddr::from(([127, 0, 0, 1], 1)),
            token: Arc::from(token),
            authorization: format!("token {token}"),
            activity: Arc::default(),
        }
    }

    #[test]
    fn scrubbing_blanks_every_occurrence_and_debug_hides_the_token() {
        let proxy = target("s3cr3t-token");
        let page = br#"{"token": "s3cr3t-token", "again": "s3cr3t-tokens3cr3t-token"}"#;
        let scrubbed = proxy.scrub(page).unwrap();
        assert_eq!(scrubbed, br#"{"token": "", "again": ""}"#.to_vec());
        assert_eq!(proxy.scrub(b"nothing here"), None);
        assert!(!format!("{proxy:?}").contains("s3cr3t"));
        assert_eq!(proxy.authorization(), "token s3cr3t-token");
    }
}
