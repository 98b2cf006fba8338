//! Cairn's operations, above the store, the artifact store and (later) the executors. Each
//! surface (the MLflow adapter, the native API, the UI) calls these and nothing below them.
//! Domain rules that do not depend on the wire (name rules, limits, truncation) live here.

mod artifacts;
mod audit;
mod authz;
mod bundle;
mod capture;
mod comments;
pub mod compute;
mod deployments;
mod error;
mod governance;
mod identity;
pub mod monitoring;
mod projects;

mod registry;
mod search;
mod sessions;
pub mod tables;
mod tracking;
pub mod workspaces;

use cairn_artifacts::ArtifactStore;
use cairn_store::Store;

pub use artifacts::{ArtifactListing, ArtifactService};
pub use audit::{AuditService, MAX_AUDIT_PAGE};
pub use authz::Authorizer;
pub use bundle::{BUNDLE_FORMAT, BundleReport, Manifest, ManifestFile, pack_bundle, verify_bundle};
pub use cairn_serving::{ElementType, Output, TensorSpec, Values};
pub use cairn_store::{
    AuditQuery, CardRevision, ChainStatus, DatasetSummary, LoggedModelField, LoggedModelSearch,
    Member, NewLoggedModel, NewModelVersion, NewRun, PolicyRevision, RecentRun, RunUpdate, Team,
};
pub use capture::{CaptureRecord, encode_parquet};
pub use comments::{CommentService, MAX_COMMENTS_PAGE};
pub use deployments::{DeploymentService, InputTable, PredictOutcome, ServedModel, row_outputs};
pub use error::{ServiceError, ServiceResult};
pub use governance::{GateDecision, GateReason, GovernanceService, PolicySpec, Promotion};
pub use identity::{Credentials, IdentityService, UserSpec};
pub use monitoring::{GroundTruthRow, MonitorConfig, MonitorService, NotifyConfig, SmtpConfig};
pub use projects::{ProjectAccess, ProjectService};
pub use registry::RegistryService;
pub use search::SearchService;
pub use sessions::{SESSION_IDLE, SESSION_MAX, Session, SessionService, random_token};
pub use tracking::TrackingService;

/// Every service, shared by all request handlers: one allocation, so a clone (every request
/// takes one) is a reference count, not a copy of each service.
#[derive(Clone)]
pub struct Services {
    inner: std::sync::Arc<ServiceSet>,
}

impl std::ops::Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.inner
    }
}

/// The services themselves (reached through [`Services`]).
#[derive(Clone)]
pub struct ServiceSet {
    /// Experiments, runs, metrics and logged models.
    pub tracking: TrackingService,
    /// Artifact upload, download and listing.
    pub artifacts: ArtifactService,
    /// Queries over the audit log.
    pub audit: AuditService,
    /// Users, tokens and authentication.
    pub identity: IdentityService,
    /// Browser sessions of the web UI.
    pub sessions: SessionService,
    /// Projects and memberships.
    pub projects: ProjectService,
    /// Comments on projects, runs and model versions.
    pub comments: CommentService,
    /// Global search across what the caller may read.
    pub search: SearchService,
    /// The model registry.
    pub registry: RegistryService,
    /// Model cards, policies, approvals, the deploy gate and compliance bundles.
    pub governance: GovernanceService,
    /// Deployments and inference.
    pub deployments: DeploymentService,
    /// Drift and quality checks, ground truth and alerts.
    pub monitoring: MonitorService,
    /// Project files (snapshots).
    pub files: compute::FilesService,
    /// Versioned datasets.
    pub datasets: compute::DatasetService,
    /// Environments, hardware tiers and quotas.
    pub catalog: compute::CatalogService,
    /// Project and user secrets.
    pub secrets: compute::SecretService,
    /// Jobs and schedules.
    pub jobs: compute::JobService,
    /// JupyterLab workspaces, served through the proxy.
    pub workspaces: workspaces::WorkspaceService,
    /// Whether every request must authenticate.
    pub auth_required: bool,
    store: Store,
}

impl Services {
    /// Builds the services over a migrated store and an artifact store.
    pub fn new(
        store: Store,
        artifacts: ArtifactStore,
        auth_required: bool,
        model_cache: Option<std::path::PathBuf>,
        python: std::path::PathBuf,
    ) -> Self {
        let artifact_service = ArtifactService::new(artifacts, store.clone());
        let identity = IdentityService::new(store.clone());
        let deployments =
            DeploymentService::new(store.clone(), artifact_service.clone(), model_cache, python);
        let files = compute::FilesService::new(store.clone(), artifact_service.clone());
        let secrets = compute::SecretService::new(store.clone(), None);
        let jobs = compute::JobService::new(
            store.clone(),
            artifact_service.clone(),
            files.clone(),
            secrets.clone(),
            std::collections::HashMap::new(),
            compute::JobsConfig::default(),
        );
        let set = ServiceSet {
            catalog: compute::CatalogService::new(store.clone()),
            datasets: compute::DatasetService::new(
                store.clone(),
                artifact_service.clone(),
                files.clone(),
            ),
            files,
            secrets,
            workspaces: workspaces::WorkspaceService::new(jobs.clone(), Default::default()),
            jobs,
            tracking: TrackingService::new(store.clone()),
            monitoring: MonitorService::new(
                store.clone(),
                artifact_service.clone(),
                deployments.clone(),
                MonitorConfig::default(),
            ),
            deployments,
            artifacts: artifact_service,
            audit: AuditService::new(store.clone()),
            sessions: SessionService::new(store.clone(), identity.clone()),
            identity,
            projects: ProjectService::new(store.clone()),
            comments: CommentService::new(store.clone()),
            search: SearchService::new(store.clone()),
            registry: RegistryService::new(store.clone()),
            governance: GovernanceService::new(store.clone()),
            auth_required,
            store,
        };
        Self { inner: std::sync::Arc::new(set) }
    }

    /// Replaces the monitoring configuration (scheduler tick, webhook signing, SMTP, retries).
    pub fn configure_monitoring(&mut self, config: MonitorConfig) {
        let set = std::sync::Arc::make_mut(&mut self.inner);
        set.monitoring = MonitorService::new(
            set.store.clone(),
            set.artifacts.clone(),
            set.deployments.clone(),
            config,
        );
    }

    /// Replaces the compute configuration (executors, dispatcher, secrets key).
    pub fn configure_compute(&mut self, config: compute::ComputeConfig) {
        let set = std::sync::Arc::make_mut(&mut self.inner);
        set.secrets = compute::SecretService::new(set.store.clone(), config.secrets_key);
        set.jobs = compute::JobService::new(
            set.store.clone(),
            set.artifacts.clone(),
            set.files.clone(),
            set.secrets.clone(),
            config.executors,
            config.jobs,
        );
        set.workspaces = workspaces::WorkspaceService::new(set.jobs.clone(), Default::default());
    }

    /// Each dependency's state, for `/readyz`: the database and the artifact store (required:
    /// nothing works without them), then each job executor (Ray's head, say: without it jobs
    /// wait, everything else works). Each check gives up after [`READINESS_TIMEOUT`].
    pub async fn dependencies(&self) -> Vec<Dependency> {
        async fn bounded<F>(check: F) -> Result<(), String>
        where
            F: std::future::Future<Output = Result<(), String>>,
        {
            match tokio::time::timeout(READINESS_TIMEOUT, check).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} s", READINESS_TIMEOUT.as_secs())),
            }
        }
        let database =
            bounded(async { self.store.ping().await.map_err(|error| error.to_string()) });
        let artifacts =
            bounded(async { self.artifacts.check().await.map_err(|error| error.message) });
        let (database, artifacts) = tokio::join!(database, artifacts);
        let mut states = vec![
            Dependency { name: "database".into(), required: true, state: database },
            Dependency { name: "artifacts".into(), required: true, state: artifacts },
        ];
        for kind in self.jobs.executor_kinds() {
            let state = match self.jobs.executor(kind) {
                Ok(executor) => {
                    bounded(async { executor.ready().await.map_err(|error| error.to_string()) })
                        .await
                }
                Err(error) => Err(error.message),
            };
            states.push(Dependency {
                name: format!("{} executor", kind.as_str()),
                required: false,
                state,
            });
        }
        states
    }
}

/// How long `/readyz` waits for one dependency.
pub const READINESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A dependency's state, as `/readyz` reports it.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// `database`, `artifacts`, `ray executor`…
    pub name: String,
    /// Whether the server is not ready without it.
    pub required: bool,
    /// Whether it answered, or why not.
    pub state: Result<(), String>,
}
