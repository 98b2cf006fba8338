//! The `cairn` binary's library: configuration turned into concrete backends ([`App::build`]),
//! used by `main`, the integration tests and the benchmarks alike.

pub mod admin;
pub mod backup;
pub mod cli;
pub mod client;
pub mod comment_cli;
pub mod compute_cli;
pub mod deploy_cli;
pub mod drift_cli;
pub mod governance_cli;
pub mod identity_cli;
pub mod monitor_cli;
pub mod workspace_cli;

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
    /// How long a request waits for a database connection before failing as unavailable.
    pub db_acquire_timeout: std::time::Duration,
    /// Whether every request must authenticate.
    pub auth_required: bool,
    /// The Python (with mlflow) that runs workers for non-ONNX models.
    pub python: PathBuf,
    /// The monitoring scheduler and alert notifications.
    pub monitoring: cairn_service::MonitorConfig,
    /// Jobs, executors and secrets.
    pub compute: ComputeSettings,
}

/// How jobs run and secrets are sealed (turned into executors by [`App::build`]).
#[derive(Debug, Clone)]
pub struct ComputeSettings {
    /// The executor of tiers that name none.
    pub default_executor: cairn_domain::compute::ExecutorKind,
    /// A Ray cluster's Jobs API address; enables the Ray executor.
    pub ray_address: Option<String>,
    /// Local job files and logs; default `<data_dir>/jobs`.
    pub jobs_dir: Option<PathBuf>,
    /// Built environments; default `<data_dir>/envs`.
    pub env_cache: Option<PathBuf>,
    /// The base interpreter of local environments; default [`Config::python`].
    pub job_python: Option<PathBuf>,
    /// The dispatcher's period.
    pub tick: std::time::Duration,
    /// The URL jobs reach the server at; default the listening address.
    pub public_url: Option<String>,
    /// SIGTERM-to-SIGKILL grace of stopped local jobs.
    pub kill_grace: std::time::Duration,
    /// The secrets key file; default `<data_dir>/secrets.key` (created when missing).
    pub secrets_key_file: Option<PathBuf>,
    /// The secrets key itself (base64), instead of a file.
    pub secrets_key: Option<String>,
}

impl Default for ComputeSettings {
    fn default() -> Self {
        Self {
            default_executor: cairn_domain::compute::ExecutorKind::Local,
            ray_address: None,
            jobs_dir: None,
            env_cache: None,
            job_python: None,
            tick: std::time::Duration::from_millis(500),
            public_url: None,
            kill_grace: std::time::Duration::from_secs(10),
            secrets_key_file: None,
            secrets_key: None,
        }
    }
}

/// Loads the secrets key: given inline, else from its file; the default file under the data
/// directory is created (owner-only) with a fresh key on first use.
pub fn load_secrets_key(
    data_dir: &std::path::Path,
    settings: &ComputeSettings,
) -> anyhow::Result<cairn_service::compute::SecretKey> {
    use cairn_service::compute::SecretKey;
    if let Some(text) = &settings.secrets_key {
        return SecretKey::from_base64(text).map_err(|error| anyhow::anyhow!(error.message));
    }
    let (path, default) = match &settings.secrets_key_file {
        Some(path) => (path.clone(), false),
        None => (data_dir.join("secrets.key"), true),
    };
    if default && !path.exists() {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(data_dir)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating the secrets key file {}", path.display()))?;
        file.write_all(SecretKey::generate_base64().as_bytes())?;
        file.sync_all()?;
        tracing::info!(key_file = %path.display(), "created a secrets key; back it up with the database, or secrets cannot be opened");
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the secrets key file {}", path.display()))?;
    SecretKey::from_base64(&text)
        .map_err(|error| anyhow::anyhow!("{}: {}", path.display(), error.message))
}

fn compute_config(config: &Config) -> anyhow::Result<cairn_service::compute::ComputeConfig> {
    use cairn_domain::compute::ExecutorKind;
    let settings = &config.compute;
    let mut executors: std::collections::HashMap<
        ExecutorKind,
        std::sync::Arc<dyn cairn_exec::JobExecutor>,
    > = std::collections::HashMap::new();
    let jobs_dir = settings.jobs_dir.clone().unwrap_or_else(|| config.data_dir.join("jobs"));
    let mut local = cairn_exec::LocalConfig::new(
        jobs_dir.join("local"),
        settings.job_python.clone().unwrap_or_else(|| config.python.clone()),
    );
    local.env_cache = settings.env_cache.clone().unwrap_or_else(|| config.data_dir.join("envs"));
    local.kill_grace = settings.kill_grace;
    let local = cairn_exec::LocalExecutor::new(local)
        .map_err(|error| anyhow::anyhow!("setting up the local executor: {error}"))?;
    tracing::info!(memory_limits = local.memory_enforcement(), "local executor ready");
    executors.insert(ExecutorKind::Local, std::sync::Arc::new(local));
    if let Some(address) = &settings.ray_address {
        let url =
            url::Url::parse(address).with_context(|| format!("parsing --ray-address {address}"))?;
        let ray = cairn_exec::RayExecutor::new(cairn_exec::RayConfig::new(url))
            .map_err(|error| anyhow::anyhow!("setting up the Ray executor: {error}"))?;
        executors.insert(ExecutorKind::Ray, std::sync::Arc::new(ray));
    } else if settings.default_executor == ExecutorKind::Ray {
        anyhow::bail!("--executor ray needs --ray-address (the Ray cluster's Jobs API)");
    }
    Ok(cairn_service::compute::ComputeConfig {
        executors,
        jobs: cairn_service::compute::JobsConfig {
            default_executor: settings.default_executor,
            work_dir: jobs_dir.join("work"),
            tick: settings.tick,
            public_url: settings.public_url.clone(),
        },
        secrets_key: secrets_key(config)?,
    })
}

/// The secrets key of a server: the configured one, else on SQLite (one server) a key file in
/// the data directory created on first use. Replicas sharing PostgreSQL must share one key, so
/// there a key must be configured; without one, secrets are refused with that reason.
fn secrets_key(config: &Config) -> anyhow::Result<Option<cairn_service::compute::SecretKey>> {
    let settings = &config.compute;
    let configured = settings.secrets_key.is_some() || settings.secrets_key_file.is_some();
    if configured || config.resolved_database_url().starts_with("sqlite:") {
        return Ok(Some(load_secrets_key(&config.data_dir, settings)?));
    }
    tracing::warn!(
        "no secrets key configured (--secrets-key-file or CAIRN_SECRETS_KEY): secrets are disabled; give every replica the same key to enable them"
    );
    Ok(None)
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
            db_acquire_timeout: std::time::Duration::from_secs(5),
            auth_required: false,
            python: PathBuf::from("python3"),
            monitoring: cairn_service::MonitorConfig::default(),
            compute: ComputeSettings::default(),
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
    let store = connect_store_unmigrated(config).await?;
    let applied = store.migrate().await.context("applying database migrations")?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database schema migrated");
    }
    Ok(store)
}

/// Opens the artifact store named by `config` (nothing is contacted yet).
pub fn open_artifacts(config: &Config) -> anyhow::Result<ArtifactStore> {
    let artifacts_url = config.resolved_artifacts();
    ArtifactStore::open(&artifacts_url, &config.s3)
        .with_context(|| format!("opening the artifact store {artifacts_url}"))
}

/// Connects the metadata store named by `config` (creating the data directory for SQLite)
/// without migrating it: backups leave the source's schema as it is, and restores migrate to
/// the backup's schema version first.
pub async fn connect_store_unmigrated(config: &Config) -> anyhow::Result<Store> {
    let database_url = config.resolved_database_url();
    if database_url.starts_with("sqlite:") || config.artifacts.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
    }
    let options = StoreOptions {
        max_connections: config.db_max_connections,
        acquire_timeout: config.db_acquire_timeout,
    };
    let store = Store::connect(&database_url, &options)
        .await
        .with_context(|| format!("connecting to the database {}", redact_url(&database_url)))?;
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
        services.configure_compute(compute_config(config)?);
        Ok(App { services, store })
    }

    /// The HTTP application: the APIs with the web UI's pages beside them.
    pub fn router(&self) -> axum::Router {
        let pages = cairn_ui::pages(self.services.clone());
        cairn_api::router_with_pages(self.services.clone(), Some(pages))
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self.router();
        if let Ok(address) = listener.local_addr() {
            let host = if address.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                address.ip().to_string()
            };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            self.services.jobs.set_public_url(&format!("http://{host}:{}", address.port()));
        }
        // Scheduled monitor checks, alert notifications, jobs and schedules run beside the server.
        let scheduler = self.services.monitoring.start();
        let dispatcher = self.services.jobs.start();
        let workspaces = self.services.workspaces.start_reaper();
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
        scheduler.abort();
        dispatcher.abort();
        workspaces.abort();
        // Workspaces save their files as snapshots before they stop.
        self.services.workspaces.shutdown().await;
        self.services.jobs.shutdown().await;
        served?;
        // Captured predictions buffered in memory are written before the process ends.
        self.services.deployments.flush_captures().await;
        self.store.close().await;
        Ok(())
    }
}
