//! The `cairn` binary's library: configuration turned into concrete backends ([`App::build`]),
//! used by `main`, the integration tests and the benchmarks alike.

pub mod admin;
pub mod cli;
pub mod client;
pub mod deploy_cli;
pub mod drift_cli;
pub mod governance_cli;
pub mod identity_cli;
pub mod monitor_cli;

use std::path::PathBuf;

use anyhow::Context;
use cairn_artifacts::{ArtifactStore, S3Options};
use cairn_service::Services;
use cairn_store::{Store, StoreOptions, redact_url};
use tokio::net::TcpListener;

/// Everything needed to build the application.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded defaults keep their data (SQLite file, artifact directory).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to `<data_dir>/cairn.db`.
    pub database_url: Option<String>,
    /// `file:///dir`, a directory, or `s3://bucket/prefix`; defaults to `<data_dir>/artifacts`.
    pub artifacts: Option<String>,
    /// S3 connection settings.
    pub s3: S3Options,
    /// Most database connections.
    pub db_max_connections: u32,
    /// Whether every request must authenticate.
    pub auth_required: bool,
    /// The Python (with mlflow) that runs workers for non-ONNX models.
    pub python: PathBuf,
    /// The monitoring scheduler and alert notifications.
    pub monitoring: cairn_service::MonitorConfig,
}

impl Config {
    /// The embedded defaults rooted at `data_dir`.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            artifacts: None,
            s3: S3Options::default(),
            db_max_connections: 8,
            auth_required: false,
            python: PathBuf::from("python3"),
            monitoring: cairn_service::MonitorConfig::default(),
        }
    }

    fn resolved_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("cairn.db").display()))
    }

    fn resolved_artifacts(&self) -> String {
        self.artifacts
            .clone()
            .unwrap_or_else(|| self.data_dir.join("artifacts").display().to_string())
    }
}

/// The assembled application: backends connected, migrations applied.
#[derive(Clone)]
pub struct App {
    /// The service layer every surface calls.
    pub services: Services,
    /// The metadata store (for shutdown and tests).
    pub store: Store,
}

/// Connects the metadata store named by `config` (creating the data directory for SQLite) and
/// applies pending migrations.
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let database_url = config.resolved_database_url();
    if database_url.starts_with("sqlite:") || config.artifacts.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
    }
    let options =
        StoreOptions { max_connections: config.db_max_connections, ..StoreOptions::default() };
    let store = Store::connect(&database_url, &options)
        .await
        .with_context(|| format!("connecting to the database {}", redact_url(&database_url)))?;
    let applied = store.migrate().await.context("applying database migrations")?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database schema migrated");
    }
    Ok(store)
}

impl App {
    /// Connects the backends named by `config`, creating embedded ones on first start, and
    /// applies pending migrations.
    pub async fn build(config: &Config) -> anyhow::Result<App> {
        let database_url = config.resolved_database_url();
        let store = connect_store(config).await?;
        let artifacts_url = config.resolved_artifacts();
        let artifacts = ArtifactStore::open(&artifacts_url, &config.s3)
            .with_context(|| format!("opening the artifact store {artifacts_url}"))?;
        tracing::info!(database = %redact_url(&database_url), artifacts = %artifacts_url, "backends ready");
        let model_cache = Some(config.data_dir.join("model-cache"));
        let mut services = Services::new(
            store.clone(),
            artifacts,
            config.auth_required,
            model_cache,
            config.python.clone(),
        );
        services.configure_monitoring(config.monitoring.clone());
        Ok(App { services, store })
    }

    /// The HTTP application.
    pub fn router(&self) -> axum::Router {
        cairn_api::router(self.services.clone())
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        // Scheduled monitor checks and alert notifications run beside the server.
        let scheduler = self.services.monitoring.start();
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
        scheduler.abort();
        served?;
        // Captured predictions buffered in memory are written before the process ends.
        self.services.deployments.flush_captures().await;
        self.store.close().await;
        Ok(())
    }
}
