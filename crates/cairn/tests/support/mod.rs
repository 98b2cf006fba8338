//! `TestApp`: one builder for whole-app tests, over the production `App::build`, with an
//! isolated database per test (a temp SQLite file or a fresh PostgreSQL database) and a temp
//! artifact directory (or a fresh prefix in a real S3-compatible server).

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn::{App, Config};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Which metadata backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temp SQLite file.
    Sqlite,
    /// A fresh database on `CAIRN_TEST_DATABASE_URL`.
    Postgres,
}

/// A running application with its temp directory.
pub struct TestApp {
    pub app: App,
    /// The metadata database this app uses.
    pub database_url: String,
    /// The data directory (SQLite file, local artifacts).
    pub data_dir: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
    /// The router, built once (building it renders the OpenAPI document).
    router: axum::Router,
    /// The configuration it was built from.
    config: Config,
}

/// A TCP port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Where tests cache built job environments: under the target directory, shared by test runs.
pub fn test_env_cache() -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/../../target", env!("CARGO_MANIFEST_DIR")));
    std::path::PathBuf::from(target).join("cairn-test-envs")
}

/// The S3 settings of the test server, if one is configured.
pub fn s3_artifacts() -> Option<(String, cairn_artifacts::S3Options)> {
    let endpoint = std::env::var("CAIRN_TEST_S3_ENDPOINT").ok()?;
    let bucket = std::env::var("CAIRN_TEST_S3_BUCKET").unwrap_or_else(|_| "cairn-test".into());
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let options = cairn_artifacts::S3Options {
        endpoint: Some(endpoint.clone()),
        region: Some(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())),
        access_key_id: Some(std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "cairn".into())),
        secret_access_key: Some(
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "cairn-secret".into()),
        ),
        allow_http: endpoint.starts_with("http://"),
        virtual_hosted_style: false,
    };
    Some((format!("s3://{bucket}/{prefix}"), options))
}

impl TestApp {
    /// Builds the app on `backend` with local artifacts; `None` when PostgreSQL is not set up.
    pub async fn new(backend: Backend) -> Option<TestApp> {
        Self::with_artifacts(backend, false).await
    }

    /// Builds the app with authentication required.
    pub async fn with_auth(backend: Backend) -> Option<TestApp> {
        Self::build(backend, false, true, None, None).await
    }

    /// Builds the app with authentication required and this monitoring configuration (the
    /// scheduler runs while the app is spawned on a socket).
    pub async fn with_monitoring(
        backend: Backend,
        s3: bool,
        monitoring: cairn_service::MonitorConfig,
    ) -> Option<TestApp> {
        Self::build(backend, s3, true, Some(monitoring), None).await
    }

    /// Builds the app; with `s3`, artifacts go to the test S3 server (skipped when absent).
    pub async fn with_artifacts(backend: Backend, s3: bool) -> Option<TestApp> {
        Self::build(backend, s3, false, None, None).await
    }

    /// Builds the app with authentication required and these compute settings (the dispatcher
    /// runs while the app is spawned on a socket). Environments are cached across test runs
    /// under the target directory.
    pub async fn with_compute(
        backend: Backend,
        s3: bool,
        mut compute: cairn::ComputeSettings,
    ) -> Option<TestApp> {
        if compute.env_cache.is_none() {
            compute.env_cache = Some(test_env_cache());
        }
        Self::build(backend, s3, true, None, Some(compute)).await
    }

    /// Like [`with_compute`](Self::with_compute) with authentication off: the embedded default
    /// a newcomer starts with.
    pub async fn with_compute_anonymous(mut compute: cairn::ComputeSettings) -> Option<TestApp> {
        if compute.env_cache.is_none() {
            compute.env_cache = Some(test_env_cache());
        }
        Self::build(Backend::Sqlite, false, false, None, Some(compute)).await
    }

    async fn build(
        backend: Backend,
        s3: bool,
        auth_required: bool,
        monitoring: Option<cairn_service::MonitorConfig>,
        compute: Option<cairn::ComputeSettings>,
    ) -> Option<TestApp> {
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn").try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::embedded(dir.path().join("data"));
        config.auth_required = auth_required;
        if let Some(monitoring) = monitoring {
            config.monitoring = monitoring;
        }
        if let Some(compute) = compute {
            config.compute = compute;
        }
        if let Ok(python) = std::env::var("CAIRN_TEST_PYTHON") {
            config.python = python.into();
        }
        if backend == Backend::Postgres {
            config.database_url = Some(cairn_store::testsuite::postgres_database_url().await?);
        }
        if s3 {
            match s3_artifacts() {
                Some((url, options)) => {
                    config.artifacts = Some(url);
                    config.s3 = options;
                }
                None if cairn_store::testsuite::services_required() => {
                    panic!("CAIRN_TEST_S3_ENDPOINT is not set but CAIRN_TEST_REQUIRE_SERVICES=1")
                }
                None => {
                    eprintln!("SKIPPED: S3 artifact test (set CAIRN_TEST_S3_ENDPOINT to run it)");
                    return None;
                }
            }
        }
        let app = App::build(&config).await.expect("build app");
        let database_url = config
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", config.data_dir.join("cairn.db").display()));
        let router = app.router();
        Some(TestApp {
            app,
            database_url,
            data_dir: config.data_dir.clone(),
            _dir: dir,
            router,
            config,
        })
    }

    /// Another replica of this app: the same database and artifact store, its own process
    /// state (caches, capture writer, scheduler) and data directory.
    pub async fn replica(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = self.config.clone();
        config.data_dir = dir.path().join("data");
        config.database_url = Some(self.database_url.clone());
        if config.artifacts.is_none() {
            config.artifacts = Some(self.data_dir.join("artifacts").display().to_string());
        }
        let app = App::build(&config).await.expect("build replica");
        let router = app.router();
        TestApp {
            app,
            database_url: self.database_url.clone(),
            data_dir: config.data_dir.clone(),
            _dir: dir,
            router,
            config,
        }
    }

    /// Sends one request in-process and returns status and body bytes.
    pub async fn request(&self, request: Request<Body>) -> (StatusCode, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        (status, body)
    }

    /// Sends one request in-process and returns status, headers and body bytes.
    pub async fn request_with_headers(
        &self,
        request: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        (status, headers, body)
    }

    /// Sends a JSON POST in-process; returns status and parsed JSON.
    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        let (status, bytes) = self.request(request).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Sends a GET in-process; returns status and parsed JSON.
    pub async fn get(&self, path_and_query: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(path_and_query).body(Body::empty()).expect("request");
        let (status, bytes) = self.request(request).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Serves on a real socket on 127.0.0.1 (port 0) until the returned handle is dropped.
    pub async fn spawn(&self) -> RunningServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = self.app.clone();
        let task = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        RunningServer { address, stop: Some(stop), task: Some(task) }
    }
}

/// A server on a real socket; stops gracefully on `shutdown`.
pub struct RunningServer {
    pub address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server and waits for it to drain.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A model version of `name` registered from run `run_id`'s `model` artifact.
pub fn version_from_run(name: &str, run_id: &str) -> cairn_service::NewModelVersion {
    cairn_service::NewModelVersion {
        name: name.into(),
        source: format!("runs:/{run_id}/model"),
        run_id: Some(run_id.to_string()),
        run_link: None,
        description: None,
        tags: vec![],
        model_id: None,
        user_id: None,
    }
}

/// A project policy asking one approval before the `champion` alias moves.
pub fn champion_gate() -> cairn_service::PolicySpec {
    cairn_service::PolicySpec {
        site_wide: false,
        name: "champion-gate".into(),
        target: "alias:champion".into(),
        model_name: None,
        rules: cairn_domain::governance::PolicyRules {
            approvals: 1,
            ..cairn_domain::governance::PolicyRules::default()
        },
    }
}
