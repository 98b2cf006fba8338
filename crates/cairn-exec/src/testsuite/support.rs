//! Helpers of the conformance suite: job specs, waiting for states, reading whole logs, and a
//! tiny HTTP server that records output uploads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;

use crate::{EnvironmentSpec, ExecError, JobExecutor, JobSpec, JobState, Limits};

/// How long a test waits for a job to end (Ray may install a runtime env first).
pub const END_TIMEOUT: Duration = Duration::from_secs(240);

/// Returns a unique job id for a test: `t-<name>-<8 hex>`.
pub fn unique_id(name: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("t-{name}-{}", &suffix[..8])
}

/// The environment most tests run in: no requirements, the executor's default interpreter,
/// built once and shared through the cache.
pub fn base_environment() -> EnvironmentSpec {
    EnvironmentSpec {
        digest: "cairn-testsuite-base-v1".into(),
        python: None,
        requirements: vec![],
        image: None,
    }
}

/// A job running `python -c <code>` in `working_dir` with half a core and no other limits.
pub fn python_job(name: &str, code: &str, working_dir: &Path) -> JobSpec {
    JobSpec {
        job_id: unique_id(name),
        argv: vec!["python".into(), "-c".into(), code.into()],
        working_dir: working_dir.to_path_buf(),
        env: BTreeMap::new(),
        environment: base_environment(),
        limits: Limits { cpu: 0.5, ..Limits::default() },
        outputs: None,
    }
}

/// Waits until the job is terminal and returns its state; panics after `timeout`.
pub async fn wait_for_end(
    executor: &Arc<dyn JobExecutor>,
    job_id: &str,
    timeout: Duration,
) -> JobState {
    let started = Instant::now();
    loop {
        let state = executor.status(job_id).await.expect("read the job's status");
        if state.is_terminal() {
            return state;
        }
        assert!(started.elapsed() < timeout, "job {job_id} still {state:?} after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the job runs; panics if it ends first or after `timeout`.
pub async fn wait_for_running(executor: &Arc<dyn JobExecutor>, job_id: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        let state = executor.status(job_id).await.expect("read the job's status");
        match state {
            JobState::Running => return,
            JobState::Pending => {}
            ended => {
                let log = read_whole_log(executor, job_id).await;
                panic!("job {job_id} ended before running: {ended:?}; log:\n{log}");
            }
        }
        assert!(started.elapsed() < timeout, "job {job_id} not running after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the job's log contains `needle`; panics after `timeout`.
pub async fn wait_for_log(
    executor: &Arc<dyn JobExecutor>,
    job_id: &str,
    needle: &str,
    timeout: Duration,
) {
    let started = Instant::now();
    loop {
        if read_whole_log(executor, job_id).await.contains(needle) {
            return;
        }
        assert!(started.elapsed() < timeout, "job {job_id} never logged {needle:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the job's log from the start, chunk by chunk, as far as it goes now.
pub async fn read_whole_log(executor: &Arc<dyn JobExecutor>, job_id: &str) -> String {
    let mut bytes = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = executor.logs(job_id, offset).await.expect("read the job's log");
        let empty = chunk.bytes.is_empty();
        bytes.extend_from_slice(&chunk.bytes);
        offset = chunk.next_offset;
        if empty || chunk.complete {
            return String::from_utf8_lossy(&bytes).into_owned();
        }
    }
}

/// Asserts that `error` is `NotFound`.
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, ExecError>) {
    match result {
        Err(ExecError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// One upload the receiver accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// The path after the receiver's base URL.
    pub path: String,
    /// The `Authorization` header.
    pub authorization: String,
    /// The body.
    pub body: Vec<u8>,
}

/// An HTTP server on 127.0.0.1 that records `PUT /outputs/{path}` requests, answering 403
/// when the bearer token differs from the one it expects.
pub struct OutputsReceiver {
    /// The base URL to give jobs: `http://127.0.0.1:PORT/outputs`.
    pub url: String,
    uploads: Arc<Mutex<Vec<Upload>>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ReceiverState {
    expected: String,
    uploads: Arc<Mutex<Vec<Upload>>>,
}

impl OutputsReceiver {
    /// Starts a receiver accepting `token`.
    pub async fn start(token: &str) -> Self {
        let uploads = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState { expected: format!("Bearer {token}"), uploads: uploads.clone() };
        let router = axum::Router::new()
            .route("/outputs/{*path}", put(record_upload))
            .with_state(state)
            .layer(axum::extract::DefaultBodyLimit::disable());
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the outputs receiver");
        let address = listener.local_addr().expect("read the receiver's address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url: format!("http://{address}/outputs"), uploads, server }
    }

    /// Returns the uploads received so far, sorted by path.
    pub fn uploads(&self) -> Vec<Upload> {
        let mut uploads = self.uploads.lock().expect("uploads lock").clone();
        uploads.sort_by(|a, b| a.path.cmp(&b.path));
        uploads
    }
}

impl Drop for OutputsReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record_upload(
    State(state): State<ReceiverState>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if authorization != state.expected {
        return StatusCode::FORBIDDEN;
    }
    let upload = Upload { path, authorization, body: body.to_vec() };
    state.uploads.lock().expect("uploads lock").push(upload);
    StatusCode::CREATED
}
