//! The background loop every replica runs for its workspaces: it renews their leases, ends
//! workspaces whose replica died (their lease lapsed), and for each workspace it runs: saves and
//! records it when JupyterLab ended by itself, carries out stops asked on another replica, and
//! stops and saves it after its idle timeout. Every end saves the files after JupyterLab
//! stopped; a save that fails leaves them in place and is retried every 30 s, and the workspace
//! is recorded stopped only once they are saved, so no change is dropped silently.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::time::now_millis;
use cairn_domain::workspaces::WorkspaceState;
use cairn_exec::format_duration;

use super::{LEASE_MS, Live, WorkspaceService, jupyter, lock};
use crate::ServiceResult;

/// How long a failed save or stop waits before the loop tries again.
const RETRY_MS: i64 = 30_000;
/// Activity is written to the database when it moved by more than this.
const ACTIVITY_WRITE_MS: i64 = 10_000;

impl WorkspaceService {
    /// Starts the background loop.
    pub fn start_reaper(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = service.reap_once().await {
                    tracing::warn!(error = %error.message, "workspace pass failed; retrying");
                }
                tokio::time::sleep(service.config.tick).await;
            }
        })
    }

    /// One pass of the loop (what it does each tick), for tests and tools.
    pub async fn reap_once(&self) -> ServiceResult<()> {
        let now = now_millis();
        let replica = &self.jobs.replica;
        self.store().renew_workspace_leases(replica, now + LEASE_MS).await?;
        for orphan in self.store().orphaned_workspaces(now).await? {
            if orphan.claimed_by.as_deref() == Some(&**replica) {
                continue;
            }
            let reason = "the server running it stopped without stopping it; changes since its last save stayed on that server";
            let system = RequestContext::system();
            self.store()
                .finish_workspace(&system, orphan.workspace.id, WorkspaceState::Failed, reason)
                .await?;
        }
        let starting = lock(&self.starting).clone();
        for record in self.store().owned_workspaces(replica).await? {
            let id = record.workspace.id;
            match self.live(id) {
                Some(live) => self.check(&live, record.workspace.stop_requested_by).await,
                // Just recorded by a start request, its launch not registered yet.
                None if starting.contains(&id) || record.workspace.started_at > now - LEASE_MS => {}
                None => {
                    let reason = "this server lost track of it (its launch ended unexpectedly)";
                    let system = RequestContext::system();
                    self.store()
                        .finish_workspace(&system, id, WorkspaceState::Failed, reason)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Checks one live workspace: ended by itself, asked to stop, or idle.
    async fn check(&self, live: &Arc<Live>, stop_requested_by: Option<String>) {
        let now = now_millis();
        if live.retry_after.load(Ordering::Relaxed) > now || live.ended.load(Ordering::Relaxed) {
            return;
        }
        let id = live.record.workspace.id;
        let owner = Self::owner_context(&live.record);
        let system = RequestContext::system();
        let outcome = if lock(&live.ending).is_some() {
            // Stopped already, its files not saved yet: save again and record the end.
            let message = format!("workspace {id}: saved at stop");
            self.stop_live(live, &owner, &system, &message, "stopped", "retry").await
        } else {
            match live.executor.status(&live.exec_id).await {
                Ok(state) if state.is_terminal() => {
                    let reason = format!("JupyterLab ended: {}", state.reason());
                    let message = format!("workspace {id}: saved after JupyterLab ended");
                    let failed = WorkspaceState::Failed;
                    self.end_live(live, &owner, &system, &message, &reason, "ended", failed).await
                }
                _ => match stop_requested_by {
                    Some(by) => {
                        let message = format!("workspace {id}: saved at stop");
                        let reason = format!("stopped by {by}");
                        self.stop_live(live, &owner, &system, &message, &reason, "stop").await
                    }
                    None => self.stop_if_idle(live, &owner, &system, now).await,
                },
            }
        };
        if let Err(error) = outcome {
            live.retry_after.store(now + RETRY_MS, Ordering::Relaxed);
            tracing::warn!(workspace.id = id, error = %error.message, "saving or stopping a workspace failed; retrying later");
        }
    }

    async fn stop_if_idle(
        &self,
        live: &Arc<Live>,
        owner: &RequestContext,
        system: &RequestContext,
        now: i64,
    ) -> ServiceResult<()> {
        let id = live.record.workspace.id;
        let reported = jupyter::activity(&self.http, live.address, id, &live.token).await;
        let mut last = live.proxy_activity.load(Ordering::Relaxed);
        match reported {
            Ok(activity) if activity.busy => last = now,
            Ok(activity) => last = last.max(activity.last_ms),
            // Not answering is no sign of use; JupyterLab ending is caught by the status check.
            Err(error) => {
                tracing::debug!(workspace.id = id, %error, "asking JupyterLab for its activity failed")
            }
        }
        if last - live.recorded_activity.load(Ordering::Relaxed) > ACTIVITY_WRITE_MS {
            live.recorded_activity.store(last, Ordering::Relaxed);
            self.store().touch_workspace_activity(id, last).await?;
        }
        let timeout_s = live.record.workspace.request.idle_timeout();
        let timeout_ms = i64::try_from(timeout_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now - last <= timeout_ms {
            return Ok(());
        }
        let idle = format_duration(Duration::from_secs(timeout_s));
        let message = format!("workspace {id}: saved at idle stop");
        let reason = format!("stopped after {idle} without activity");
        self.stop_live(live, owner, system, &message, &reason, "idle").await
    }

    /// Stops and saves a live workspace, recording it stopped with `reason`.
    pub(super) async fn stop_live(
        &self,
        live: &Arc<Live>,
        author: &RequestContext,
        audit: &RequestContext,
        message: &str,
        reason: &str,
        trigger: &str,
    ) -> ServiceResult<()> {
        self.end_live(live, author, audit, message, reason, trigger, WorkspaceState::Stopped).await
    }

    /// Stops JupyterLab, saves the workspace's files, records the end and removes them. The
    /// files are read after JupyterLab stopped, so nothing written before the stop is missed;
    /// when the save fails they stay in place, the end is remembered and a later call (the
    /// background loop's, every 30 s) saves and records it. A remote workspace's files are read
    /// just before JupyterLab stops (they are on its node); when JupyterLab no longer answers
    /// and has ended, what the last save read is kept and the reason says so.
    #[expect(clippy::too_many_arguments, reason = "each names a different part of the record")]
    async fn end_live(
        &self,
        live: &Arc<Live>,
        author: &RequestContext,
        audit: &RequestContext,
        message: &str,
        reason: &str,
        trigger: &str,
        state: WorkspaceState,
    ) -> ServiceResult<()> {
        let _guard = live.busy.lock().await;
        if live.ended.load(Ordering::Relaxed) {
            return Ok(());
        }
        let id = live.record.workspace.id;
        let pending = lock(&live.ending).clone();
        let (state, reason) = match pending {
            Some(ending) => ending,
            None => {
                let mut reason = reason.to_string();
                if live.remote
                    && let Err(error) = self.pull_remote(live).await
                {
                    match live.executor.status(&live.exec_id).await {
                        Ok(ended) if ended.is_terminal() => {
                            tracing::warn!(workspace.id = id, error = %error.message, "a remote workspace ended before its files could be read");
                            reason.push_str("; changes since its last save could not be read");
                        }
                        _ => return Err(error),
                    }
                }
                live.executor.stop(&live.exec_id, &reason).await.map_err(|error| {
                    crate::ServiceError::internal(format!("stopping JupyterLab failed: {error}"))
                })?;
                let ending = (state, reason);
                *lock(&live.ending) = Some(ending.clone());
                ending
            }
        };
        self.save(live, author, audit, message, trigger, false).await.map_err(|error| {
            crate::ServiceError {
                message: format!(
                    "JupyterLab stopped but its files could not be saved yet ({}); they stay in place and saving is retried every 30 s",
                    error.message
                ),
                ..error
            }
        })?;
        live.ended.store(true, Ordering::Relaxed);
        lock(&self.live).remove(&id);
        self.store().finish_workspace(audit, id, state, &reason).await?;
        tracing::info!(workspace.id = id, %reason, "workspace stopped");
        if let Err(error) = live.executor.cleanup(&live.exec_id).await {
            tracing::warn!(workspace.id = id, %error, "cleaning up a stopped workspace failed");
        }
        let _ = tokio::fs::remove_dir_all(&live.dir).await;
        Ok(())
    }

    /// Stops and saves the workspaces this replica runs (the server is shutting down) and ends
    /// launches in progress. A workspace whose save fails is stopped anyway and recorded as
    /// failed; its files are left in its directory for an operator.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::Relaxed);
        let running: Vec<Arc<Live>> = lock(&self.live).values().cloned().collect();
        let system = RequestContext::system();
        let reason = "the server running it shut down";
        for live in running {
            let id = live.record.workspace.id;
            let owner = Self::owner_context(&live.record);
            let message = format!("workspace {id}: saved at server shutdown");
            if let Err(error) =
                self.stop_live(&live, &owner, &system, &message, reason, "shutdown").await
            {
                tracing::error!(workspace.id = id, error = %error.message, dir = %live.dir.display(), "saving a workspace at shutdown failed; its files stay in its directory");
                let _ = live.executor.stop(&live.exec_id, reason).await;
                let failed = format!(
                    "{reason}; saving its files failed, they stay on that server in {}",
                    live.dir.display()
                );
                let _ = self
                    .store()
                    .finish_workspace(&system, id, WorkspaceState::Failed, &failed)
                    .await;
                lock(&self.live).remove(&id);
            }
        }
        for _ in 0..300 {
            if lock(&self.starting).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
