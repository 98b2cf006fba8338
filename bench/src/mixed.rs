//! The load scenario (issue 10, "Load"): a sustained mixed workload against one `cairn serve`
//! with authentication on — runs created and metric batches logged, metric histories read, runs
//! searched with a filter, 64 KiB artifacts uploaded and downloaded through the MLflow artifact
//! proxy, one-row inference on an ONNX deployment, native searches — from `concurrency`
//! closed-loop clients for a fixed time, while the server's RSS and open file descriptors are
//! sampled every second.
//!
//! It reports requests, errors and p50/p95/p99/max latency per class of request, and whether
//! memory and file descriptors stayed flat after the warm-up (see [`RSS_TOLERANCE_FRACTION`]
//! and [`render`] for the tolerances). Like `load.rs`, the clients run on their own OS thread
//! with a single-threaded runtime and one hyper HTTP/1.1 keep-alive connection each.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use serde_json::{Value, json};

use crate::client::{Api, now_millis};
use crate::procfs::{self, OpenFds};
use crate::report::percentile_ms;
use crate::server::{Server, ServerSpec};
use crate::serving;

/// Failures kept verbatim for the report (all are counted, and each kept one is printed as it
/// happens).
const KEPT_FAILURES: usize = 20;
/// Metric batches logged into a run before the client starts a new one.
const BATCHES_PER_RUN: usize = 20;
/// Metric steps per key in one `log-batch` (two keys, so twice as many points).
const STEPS_PER_BATCH: usize = 5;
/// Size of each uploaded artifact.
const ARTIFACT_BYTES: usize = 64 << 10;
/// Recent runs and uploads a client reads back from.
const REMEMBERED: usize = 32;
/// The deployment (and registered model) the inference requests go to.
const DEPLOYMENT: &str = "load-forest";
/// Features of the fixture model (`make_fixtures.py`: float32 [N, 8]).
const FEATURES: usize = 8;
/// RSS may grow by this share of its idle value after the warm-up before it counts as growth:
/// the allocator keeps freed pages and SQLite's page caches (2 MiB per pooled connection) fill
/// as the database grows, neither of which is a leak.
pub const RSS_TOLERANCE_FRACTION: f64 = 0.05;
/// The tolerance is never below this (a small server's 5 % is within allocator noise).
pub const RSS_TOLERANCE_FLOOR_KIB: u64 = 8 << 10;
/// File descriptors may grow by this many over the fitted line before it counts as growth.
pub const FD_TOLERANCE: f64 = 2.0;
/// Time given to the server after the clients disconnect before its idle state is sampled.
const SETTLE: Duration = Duration::from_secs(3);

/// A class of request, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `runs/create` (when a client has no run, or its run has `BATCHES_PER_RUN` batches).
    CreateRun,
    /// `runs/log-batch` of 10 points (and two parameters on a run's first batch).
    LogBatch,
    /// `metrics/get-history` of one of the client's recent runs.
    History,
    /// `runs/search` with a metric and parameter filter, ordered by a metric.
    Search,
    /// `PUT` of a 64 KiB artifact through the artifact proxy.
    Upload,
    /// `GET` of one of the client's uploads, compared byte for byte.
    Download,
    /// One-row `POST /serve/<deployment>/invocations`.
    Infer,
    /// Native `GET /api/v1/search` by run name prefix.
    Native,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 8] = [
        Class::CreateRun,
        Class::LogBatch,
        Class::History,
        Class::Search,
        Class::Upload,
        Class::Download,
        Class::Infer,
        Class::Native,
    ];

    /// The name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            Class::CreateRun => "runs/create",
            Class::LogBatch => "runs/log-batch (10 points)",
            Class::History => "metrics/get-history",
            Class::Search => "runs/search (filter, order)",
            Class::Upload => "artifact upload (64 KiB)",
            Class::Download => "artifact download (64 KiB)",
            Class::Infer => "inference (1 row)",
            Class::Native => "native search (/api/v1/search)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Relative weights of the classes a client picks from (runs are created as needed, not
/// picked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight per class, indexed like `Class::ALL` (`CreateRun`'s is unused).
    weights: [u32; 8],
}

impl Mix {
    const KEYS: [(&'static str, Class); 7] = [
        ("log", Class::LogBatch),
        ("history", Class::History),
        ("search", Class::Search),
        ("upload", Class::Upload),
        ("download", Class::Download),
        ("infer", Class::Infer),
        ("native", Class::Native),
    ];

    fn pick(&self, roll: u64) -> Class {
        let total: u64 = self.weights.iter().map(|w| u64::from(*w)).sum();
        let mut left = roll % total.max(1);
        for class in Class::ALL {
            let weight = u64::from(self.weights[class.index()]);
            if left < weight {
                return class;
            }
            left -= weight;
        }
        Class::LogBatch
    }
}

impl Default for Mix {
    fn default() -> Self {
        "log=30,history=10,search=5,upload=5,download=10,infer=30,native=5"
            .parse()
            .unwrap_or(Self { weights: [0, 1, 0, 0, 0, 0, 0, 0] })
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = Self::KEYS
            .iter()
            .map(|(key, class)| format!("{key}={}", self.weights[class.index()]))
            .collect();
        write!(formatter, "{}", parts.join(","))
    }
}

impl FromStr for Mix {
    type Err = String;

    /// Parses `key=weight,…` with keys `log`, `history`, `search`, `upload`, `download`,
    /// `infer`, `native`; a key left out weighs 0.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let mut weights = [0_u32; 8];
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (key, weight) =
                part.split_once('=').ok_or_else(|| format!("'{part}' is not key=weight"))?;
            let class = Self::KEYS
                .iter()
                .find(|(name, _)| *name == key.trim())
                .map(|(_, class)| *class)
                .ok_or_else(|| format!("unknown class '{key}'"))?;
            weights[class.index()] =
                weight.trim().parse().map_err(|_| format!("'{weight}' is not a weight"))?;
        }
        if weights.iter().all(|weight| *weight == 0) {
            return Err("every weight is 0".into());
        }
        Ok(Self { weights })
    }
}

/// Where the server keeps its metadata and artifacts (SQLite and local files when empty).
#[derive(Debug, Clone, Default)]
pub struct LoadBackend {
    /// `--database-url` of an empty database, e.g. PostgreSQL.
    pub database_url: Option<String>,
    /// `--artifacts` root, e.g. `s3://bucket/prefix`.
    pub artifacts: Option<String>,
    /// `--s3-endpoint` (keys and region come from `AWS_*` in the environment).
    pub s3_endpoint: Option<String>,
}

impl LoadBackend {
    fn server_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(url) = &self.database_url {
            args.extend(["--database-url".into(), url.clone()]);
        }
        if let Some(root) = &self.artifacts {
            args.extend(["--artifacts".into(), root.clone()]);
        }
        if let Some(endpoint) = &self.s3_endpoint {
            args.extend(["--s3-endpoint".into(), endpoint.clone()]);
            for (flag, variable) in [
                ("--s3-region", "AWS_REGION"),
                ("--s3-access-key-id", "AWS_ACCESS_KEY_ID"),
                ("--s3-secret-access-key", "AWS_SECRET_ACCESS_KEY"),
            ] {
                if let Ok(value) = std::env::var(variable) {
                    args.extend([flag.into(), value]);
                }
            }
        }
        args
    }

    /// Says what the server runs on, without secrets.
    pub fn describe(&self) -> String {
        let database = match &self.database_url {
            Some(url) if url.starts_with("postgres") => "PostgreSQL",
            Some(_) => "the given database",
            None => "SQLite",
        };
        let artifacts = match &self.artifacts {
            Some(root) if root.starts_with("s3://") => "S3",
            Some(_) => "the given artifact root",
            None => "local files",
        };
        format!("{database} + {artifacts}")
    }
}

/// Sizes of the load scenario.
#[derive(Debug, Clone)]
pub struct LoadSizes {
    /// The measured run.
    pub duration: Duration,
    /// The same mix before the measured run, not timed; the baseline is taken after it.
    pub warm_up: Duration,
    /// Closed-loop clients, one connection and one request in flight each.
    pub concurrency: usize,
    /// Relative weights of the classes.
    pub mix: Mix,
    /// Where the server keeps its data.
    pub backend: LoadBackend,
}

/// Requests, errors and latencies of one class.
#[derive(Debug, Clone, Default)]
pub struct ClassTally {
    /// Requests sent.
    pub requests: u64,
    /// Failed requests (non-2xx, transport error, wrong bytes).
    pub errors: u64,
    /// Latencies of the successful ones.
    pub latencies: Vec<Duration>,
}

/// What one phase (warm-up or measured run) of the clients did.
#[derive(Debug, Clone, Default)]
pub struct PhaseOutcome {
    /// Per class, indexed like `Class::ALL`.
    pub classes: Vec<ClassTally>,
    /// The first failures verbatim.
    pub failures: Vec<String>,
    /// Wall time of the phase.
    pub wall: Duration,
}

impl PhaseOutcome {
    /// Requests over every class.
    pub fn requests(&self) -> u64 {
        self.classes.iter().map(|class| class.requests).sum()
    }

    /// Errors over every class.
    pub fn errors(&self) -> u64 {
        self.classes.iter().map(|class| class.errors).sum()
    }
}

/// One sample of the server's resources.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since sampling started (after setup, before the warm-up).
    pub at: f64,
    /// 0 idle, 1 warm-up, 2 measured run, 3 after.
    pub phase: u8,
    /// RSS of the server's process tree.
    pub rss_kib: u64,
    /// Open file descriptors of the server process.
    pub fds: OpenFds,
}

/// The server's resources when it was idle.
#[derive(Debug, Clone, Copy, Default)]
pub struct Idle {
    /// RSS of the server's process tree.
    pub rss_kib: u64,
    /// Open file descriptors of the server process.
    pub fds: OpenFds,
}

/// Everything the load scenario measured.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// Sizes used.
    pub sizes: LoadSizes,
    /// Cores and the load average at the start and the end.
    pub machine: (usize, String, String),
    /// The untimed warm-up phase (its errors count).
    pub warm_up: PhaseOutcome,
    /// The measured phase.
    pub run: PhaseOutcome,
    /// After setup, before any load.
    pub idle_before: Idle,
    /// After the warm-up, its clients disconnected.
    pub idle_after_warm_up: Idle,
    /// After the measured run, its clients disconnected.
    pub idle_after_run: Idle,
    /// Samples every second over the whole scenario.
    pub samples: Vec<Sample>,
    /// Sum of VmHWM over the server's process tree at the end.
    pub hwm_kib: u64,
}

/// A small xorshift generator.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The bytes of upload `index` of client `client` (regenerated to check downloads).
fn artifact_bytes(client: usize, index: usize) -> Bytes {
    let mut random =
        Random((((client as u64) << 32 | index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    let mut bytes = Vec::with_capacity(ARTIFACT_BYTES);
    while bytes.len() < ARTIFACT_BYTES {
        bytes.extend_from_slice(&random.next().to_le_bytes());
    }
    bytes.truncate(ARTIFACT_BYTES);
    Bytes::from(bytes)
}

/// What every client needs to know about the server.
struct Target {
    addr: SocketAddr,
    host: String,
    authorization: String,
    experiment_id: String,
    mix: Mix,
    infer_bodies: Vec<Bytes>,
    search_body: Bytes,
}

/// A request to send.
struct Call {
    class: Class,
    method: hyper::Method,
    path: String,
    body: Option<(&'static str, Bytes)>,
}

/// The run a client is logging into.
struct CurrentRun {
    id: String,
    artifact_prefix: String,
    batches: usize,
}

/// One client's state across its requests.
struct ClientState {
    index: usize,
    random: Random,
    run: Option<CurrentRun>,
    recent_runs: VecDeque<String>,
    uploads: VecDeque<(String, usize)>,
    uploaded: usize,
    runs_created: usize,
}

fn remember<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == REMEMBERED {
        queue.pop_front();
    }
    queue.push_back(item);
}

fn json_call(class: Class, path: &str, body: &Value) -> Call {
    Call {
        class,
        method: hyper::Method::POST,
        path: path.to_owned(),
        body: Some(("application/json", Bytes::from(body.to_string()))),
    }
}

fn get_call(class: Class, path: String) -> Call {
    Call { class, method: hyper::Method::GET, path, body: None }
}

impl ClientState {
    /// The next request: a new run when needed, else one picked by the mix (falling back to a
    /// log-batch or an upload when the picked class needs something not there yet).
    fn next_call(&mut self, target: &Target) -> Call {
        let mut class = target.mix.pick(self.random.next());
        let roll = self.random.next() as usize;
        if class == Class::Download && self.uploads.is_empty() {
            class = Class::Upload;
        }
        if class == Class::History && self.recent_runs.is_empty() {
            class = Class::LogBatch;
        }
        let Some(run) = &self.run else {
            let name = format!("load-c{}-r{}", self.index, self.runs_created);
            let body = json!({
                "experiment_id": target.experiment_id,
                "run_name": name,
                "start_time": now_millis(),
            });
            return json_call(Class::CreateRun, "/api/2.0/mlflow/runs/create", &body);
        };
        match class {
            Class::CreateRun | Class::LogBatch => {
                let first_step = run.batches * STEPS_PER_BATCH;
                let metrics: Vec<Value> = (first_step..first_step + STEPS_PER_BATCH)
                    .flat_map(|step| {
                        let loss = 1.0 / (step as f64 + 1.0 + (roll % 7) as f64);
                        let timestamp = now_millis();
                        [
                            json!({"key": "loss", "value": loss, "timestamp": timestamp, "step": step}),
                            json!({"key": "accuracy", "value": 1.0 - loss, "timestamp": timestamp, "step": step}),
                        ]
                    })
                    .collect();
                let params = if run.batches == 0 {
                    let lr = ["0.1", "0.01", "0.001"][roll % 3];
                    json!([{"key": "lr", "value": lr}, {"key": "batch_size", "value": "32"}])
                } else {
                    json!([])
                };
                let body = json!({"run_id": run.id, "metrics": metrics, "params": params});
                json_call(Class::LogBatch, "/api/2.0/mlflow/runs/log-batch", &body)
            }
            Class::History => {
                let run_id = &self.recent_runs[roll % self.recent_runs.len()];
                get_call(
                    class,
                    format!("/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss"),
                )
            }
            Class::Search => Call {
                class,
                method: hyper::Method::POST,
                path: "/api/2.0/mlflow/runs/search".into(),
                body: Some(("application/json", target.search_body.clone())),
            },
            Class::Upload => Call {
                class,
                method: hyper::Method::PUT,
                path: format!(
                    "/api/2.0/mlflow-artifacts/artifacts/{}/blob-{}.bin",
                    run.artifact_prefix, self.uploaded
                ),
                body: Some(("application/octet-stream", artifact_bytes(self.index, self.uploaded))),
            },
            Class::Download => {
                let (path, _) = &self.uploads[roll % self.uploads.len()];
                get_call(class, format!("/api/2.0/mlflow-artifacts/artifacts/{path}"))
            }
            Class::Infer => Call {
                class,
                method: hyper::Method::POST,
                path: format!("/serve/{DEPLOYMENT}/invocations"),
                body: Some((
                    "application/json",
                    target.infer_bodies[roll % target.infer_bodies.len()].clone(),
                )),
            },
            Class::Native => {
                get_call(class, format!("/api/v1/search?q=load-c{}-r&limit=10", roll % 8))
            }
        }
    }

    /// Takes in a successful answer; returns an error when its content is wrong.
    fn accept(&mut self, call: &Call, body: &[u8]) -> Result<()> {
        match call.class {
            Class::CreateRun => {
                let answer: Value = serde_json::from_slice(body).context("runs/create answer")?;
                let info = &answer["run"]["info"];
                let id = info["run_id"].as_str().context("runs/create without a run id")?;
                let uri =
                    info["artifact_uri"].as_str().context("runs/create without an artifact URI")?;
                let prefix = uri
                    .strip_prefix("mlflow-artifacts:")
                    .with_context(|| format!("unexpected artifact URI {uri}"))?
                    .trim_start_matches('/');
                self.run = Some(CurrentRun {
                    id: id.to_owned(),
                    artifact_prefix: prefix.to_owned(),
                    batches: 0,
                });
                self.runs_created += 1;
            }
            Class::LogBatch => {
                if let Some(run) = &mut self.run {
                    run.batches += 1;
                    if run.batches == 1 {
                        remember(&mut self.recent_runs, run.id.clone());
                    }
                    if run.batches == BATCHES_PER_RUN {
                        self.run = None;
                    }
                }
            }
            Class::Upload => {
                let prefix = self.run.as_ref().map_or("", |run| run.artifact_prefix.as_str());
                let path = format!("{prefix}/blob-{}.bin", self.uploaded);
                remember(&mut self.uploads, (path, self.uploaded));
                self.uploaded += 1;
            }
            Class::Download => {
                let index = call
                    .path
                    .rsplit_once("/blob-")
                    .and_then(|(_, name)| name.strip_suffix(".bin")?.parse().ok())
                    .context("download path without an upload number")?;
                if body != artifact_bytes(self.index, index).as_ref() {
                    bail!("downloaded {} bytes that differ from the upload", body.len());
                }
            }
            Class::History => {
                let answer: Value = serde_json::from_slice(body).context("history answer")?;
                if answer["metrics"].as_array().is_none_or(Vec::is_empty) {
                    bail!("empty metric history");
                }
            }
            Class::Search | Class::Infer | Class::Native => {
                serde_json::from_slice::<Value>(body).context("answer is not JSON")?;
            }
        }
        Ok(())
    }
}

/// Sends one call and reads the whole answer.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    call: &Call,
) -> Result<(hyper::StatusCode, Bytes)> {
    let mut request = hyper::Request::builder()
        .method(call.method.clone())
        .uri(call.path.as_str())
        .header(HOST, target.host.as_str())
        .header(AUTHORIZATION, target.authorization.as_str());
    let body = match &call.body {
        Some((content_type, body)) => {
            request = request.header(CONTENT_TYPE, *content_type);
            body.clone()
        }
        None => Bytes::new(),
    };
    let request = request.body(Full::new(body)).context("building the request")?;
    sender.ready().await.context("waiting for the connection")?;
    let response = sender.send_request(request).await.context("sending")?;
    let status = response.status();
    let body = response.into_body().collect().await.context("reading the answer")?.to_bytes();
    Ok((status, body))
}

/// What one client counted.
struct ClientTally {
    classes: Vec<ClassTally>,
    failures: Vec<String>,
}

impl ClientTally {
    fn fail(&mut self, class: Class, failure: String) {
        self.classes[class.index()].errors += 1;
        let text = format!("{}: {failure}", class.name());
        eprintln!("[bench] load: request failed: {text}");
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(text);
        }
    }
}

/// One closed-loop client until `end`: one connection (reopened after a transport error), one
/// request in flight.
async fn client(target: Arc<Target>, index: usize, seed: u64, end: Instant) -> ClientTally {
    let mut tally = ClientTally {
        classes: vec![ClassTally::default(); Class::ALL.len()],
        failures: Vec::new(),
    };
    let mut state = ClientState {
        index,
        random: Random(seed | 1),
        run: None,
        recent_runs: VecDeque::new(),
        uploads: VecDeque::new(),
        uploaded: 0,
        runs_created: 0,
    };
    'reconnect: while Instant::now() < end {
        let mut sender = match crate::load::connect(target.addr).await {
            Ok(sender) => sender,
            Err(error) => {
                tally.fail(Class::CreateRun, format!("connecting: {error:#}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while Instant::now() < end {
            let call = state.next_call(&target);
            tally.classes[call.class.index()].requests += 1;
            let started = Instant::now();
            let answer = exchange(&mut sender, &target, &call).await;
            let latency = started.elapsed();
            match answer {
                Ok((status, body)) if status.is_success() => match state.accept(&call, &body) {
                    Ok(()) => tally.classes[call.class.index()].latencies.push(latency),
                    Err(error) => tally.fail(call.class, format!("{} {error:#}", call.path)),
                },
                Ok((status, body)) => {
                    let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                    tally.fail(call.class, format!("{} → {status}: {text}", call.path));
                }
                Err(error) => {
                    tally.fail(call.class, format!("{} → transport: {error:#}", call.path));
                    continue 'reconnect;
                }
            }
        }
    }
    tally
}

/// Runs `concurrency` clients for `duration` on a dedicated thread with its own
/// single-threaded runtime; their connections close when it returns.
async fn phase(
    target: Arc<Target>,
    concurrency: usize,
    duration: Duration,
    seed: u64,
) -> Result<PhaseOutcome> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-mixed-load".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the load generator's runtime")
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let started = Instant::now();
                        let end = started + duration;
                        let clients: Vec<_> = (0..concurrency)
                            .map(|index| {
                                let seed =
                                    seed ^ (index as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d);
                                tokio::spawn(client(Arc::clone(&target), index, seed, end))
                            })
                            .collect();
                        let mut outcome = PhaseOutcome {
                            classes: vec![ClassTally::default(); Class::ALL.len()],
                            ..PhaseOutcome::default()
                        };
                        for handle in clients {
                            let tally = handle.await.context("a load client panicked")?;
                            for (total, part) in outcome.classes.iter_mut().zip(tally.classes) {
                                total.requests += part.requests;
                                total.errors += part.errors;
                                total.latencies.extend(part.latencies);
                            }
                            for failure in tally.failures {
                                if outcome.failures.len() < KEPT_FAILURES {
                                    outcome.failures.push(failure);
                                }
                            }
                        }
                        outcome.wall = started.elapsed();
                        Ok(outcome)
                    })
                });
            let _receiver_gone = sender.send(outcome);
        })
        .context("spawning the load generator thread")?;
    receiver.await.context("the load generator thread died")?
}

fn progress(message: &str) {
    eprintln!("[bench] {message}");
}

fn rss_kib(pid: u32) -> u64 {
    procfs::process_tree(pid).iter().filter_map(|p| procfs::status_kib(*p, "VmRSS:")).sum()
}

fn idle(pid: u32) -> Idle {
    Idle { rss_kib: rss_kib(pid), fds: procfs::open_fds(pid).unwrap_or_default() }
}

/// The fixture model deployed for the inference requests: a 20-tree random forest exported by
/// skl2onnx (`crates/cairn-serving/tests/fixtures/make_fixtures.py`).
fn model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/cairn-serving/tests/fixtures/forest.onnx")
}

/// One-row scoring bodies with deterministic features.
fn infer_bodies() -> Vec<Bytes> {
    let columns: Vec<String> = (0..FEATURES).map(|index| format!("f{index}")).collect();
    let mut random = Random(0x5eed_cafe);
    (0..64)
        .map(|_| {
            let row: Vec<f64> =
                (0..FEATURES).map(|_| (random.next() % 4000) as f64 / 1000.0 - 2.0).collect();
            Bytes::from(json!({"dataframe_split": {"columns": columns, "data": [row]}}).to_string())
        })
        .collect()
}

/// Starts the server, prepares the data, runs the warm-up and the measured run while sampling
/// the server every second, and stops it.
pub async fn run(cairn_bin: &Path, sizes: LoadSizes) -> Result<LoadOutcome> {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load_at_start = procfs::load_average().unwrap_or_default();
    let spec = ServerSpec::Cairn {
        bin: cairn_bin.to_path_buf(),
        auth: true,
        extra_args: sizes.backend.server_args(),
    };
    let health = reqwest::Client::builder().build().context("building the health client")?;
    let (server, started) = Server::start(&spec, &health).await?;
    progress(&format!(
        "load: cairn healthy in {} ms at {} on {} (load {load_at_start})",
        started.as_millis(),
        server.base_url,
        sizes.backend.describe()
    ));
    let token = server.bootstrap_token().context("the server wrote no bootstrap admin token")?;
    let outcome = drive(&server, &token, sizes).await;
    let hwm_kib = procfs::process_tree(server.pid())
        .iter()
        .filter_map(|p| procfs::status_kib(*p, "VmHWM:"))
        .sum();
    server.stop().await?;
    let mut outcome = outcome?;
    outcome.hwm_kib = hwm_kib;
    outcome.machine = (cores, load_at_start, procfs::load_average().unwrap_or_default());
    Ok(outcome)
}

async fn drive(server: &Server, token: &str, sizes: LoadSizes) -> Result<LoadOutcome> {
    let authorization = format!("Bearer {token}");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        authorization.parse().context("the token is not a header value")?,
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the HTTP client")?;
    let api = Api::new(&server.base_url, 1, Some(token))?;
    let experiment_id = api.create_experiment("load").await?;
    serving::deploy_on_cairn(
        &api,
        &http,
        &server.base_url,
        &experiment_id,
        DEPLOYMENT,
        &model_path(),
    )
    .await?;
    let infer_bodies = infer_bodies();
    let check = http
        .post(format!("{}/serve/{DEPLOYMENT}/invocations", server.base_url))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(infer_bodies[0].clone())
        .send()
        .await
        .context("the check inference request")?;
    if !check.status().is_success() {
        bail!("the check inference request answered {}: {}", check.status(), check.text().await?);
    }
    let search_body = json!({
        "experiment_ids": [experiment_id],
        "filter": "metrics.loss < 0.05 and params.lr = '0.01'",
        "order_by": ["metrics.loss ASC"],
        "max_results": 50,
    });
    let addr = serving::address(server)?;
    let target = Arc::new(Target {
        addr,
        host: addr.to_string(),
        authorization,
        experiment_id,
        mix: sizes.mix,
        infer_bodies,
        search_body: Bytes::from(search_body.to_string()),
    });

    let pid = server.pid();
    tokio::time::sleep(SETTLE).await;
    let idle_before = idle(pid);
    let phase_flag = Arc::new(AtomicU8::new(1));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampling_started = Instant::now();
    let sampler = {
        let (phase_flag, samples) = (Arc::clone(&phase_flag), Arc::clone(&samples));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let sample = Sample {
                    at: sampling_started.elapsed().as_secs_f64(),
                    phase: phase_flag.load(Ordering::Relaxed),
                    rss_kib: rss_kib(pid),
                    fds: procfs::open_fds(pid).unwrap_or_default(),
                };
                if let Ok(mut kept) = samples.lock() {
                    kept.push(sample);
                }
            }
        })
    };
    progress(&format!(
        "load: warm-up {} s with {} clients, mix {}",
        sizes.warm_up.as_secs(),
        sizes.concurrency,
        sizes.mix
    ));
    let warm_up = phase(Arc::clone(&target), sizes.concurrency, sizes.warm_up, 7).await?;
    phase_flag.store(0, Ordering::Relaxed);
    tokio::time::sleep(SETTLE).await;
    let idle_after_warm_up = idle(pid);
    progress(&format!(
        "load: warm-up done: {} requests, {} errors; idle RSS {} MiB, {} FDs (load {})",
        warm_up.requests(),
        warm_up.errors(),
        idle_after_warm_up.rss_kib / 1024,
        idle_after_warm_up.fds.total,
        procfs::load_average().unwrap_or_default()
    ));
    phase_flag.store(2, Ordering::Relaxed);
    progress(&format!("load: measured run {} s", sizes.duration.as_secs()));
    let reporter = tokio::spawn({
        let samples = Arc::clone(&samples);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let last = samples.lock().ok().and_then(|kept| kept.last().copied());
                if let Some(sample) = last {
                    progress(&format!(
                        "load: at {:.0} s RSS {} MiB, {} FDs (load {})",
                        sample.at,
                        sample.rss_kib / 1024,
                        sample.fds.total,
                        procfs::load_average().unwrap_or_default()
                    ));
                }
            }
        }
    });
    let run = phase(Arc::clone(&target), sizes.concurrency, sizes.duration, 11).await?;
    reporter.abort();
    phase_flag.store(3, Ordering::Relaxed);
    tokio::time::sleep(SETTLE).await;
    let idle_after_run = idle(pid);
    sampler.abort();
    let samples = samples.lock().map_err(|_| anyhow!("the sampler panicked"))?.clone();
    progress(&format!(
        "load: run done: {} requests, {} errors; idle RSS {} MiB, {} FDs",
        run.requests(),
        run.errors(),
        idle_after_run.rss_kib / 1024,
        idle_after_run.fds.total
    ));
    Ok(LoadOutcome {
        sizes,
        machine: (0, String::new(), String::new()),
        warm_up,
        run,
        idle_before,
        idle_after_warm_up,
        idle_after_run,
        samples,
        hwm_kib: 0,
    })
}

/// Least-squares slope of `points` (x, y), or 0 with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let count = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / count;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / count;
    let covariance: f64 = points.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 { 0.0 } else { covariance / variance }
}

/// The growth verdicts over the measured run.
#[derive(Debug, Clone, Copy)]
pub struct Verdicts {
    /// RSS slope over the measured run, KiB per minute.
    pub rss_kib_per_minute: f64,
    /// That slope times the run's length, KiB.
    pub rss_fitted_growth_kib: f64,
    /// The RSS tolerance, KiB.
    pub rss_tolerance_kib: f64,
    /// RSS flat: fitted growth and idle-to-idle growth within the tolerance.
    pub rss_flat: bool,
    /// FD slope over the measured run, per minute.
    pub fds_per_minute: f64,
    /// That slope times the run's length.
    pub fds_fitted_growth: f64,
    /// FDs flat: fitted growth within `FD_TOLERANCE`, and no more sockets or other (non-SQLite)
    /// descriptors idle after the run than idle after the warm-up.
    pub fds_flat: bool,
}

/// Works out the verdicts from the samples of the measured run.
pub fn verdicts(outcome: &LoadOutcome) -> Verdicts {
    let run: Vec<&Sample> = outcome.samples.iter().filter(|sample| sample.phase == 2).collect();
    let minutes = outcome.sizes.duration.as_secs_f64() / 60.0;
    let rss: Vec<(f64, f64)> =
        run.iter().map(|sample| (sample.at / 60.0, sample.rss_kib as f64)).collect();
    let fds: Vec<(f64, f64)> =
        run.iter().map(|sample| (sample.at / 60.0, sample.fds.total as f64)).collect();
    let rss_kib_per_minute = slope(&rss);
    let fds_per_minute = slope(&fds);
    let base = outcome.idle_after_warm_up;
    let rss_tolerance_kib =
        (base.rss_kib as f64 * RSS_TOLERANCE_FRACTION).max(RSS_TOLERANCE_FLOOR_KIB as f64);
    let idle_growth = outcome.idle_after_run.rss_kib as f64 - base.rss_kib as f64;
    let after = outcome.idle_after_run.fds;
    Verdicts {
        rss_kib_per_minute,
        rss_fitted_growth_kib: rss_kib_per_minute * minutes,
        rss_tolerance_kib,
        rss_flat: rss_kib_per_minute * minutes <= rss_tolerance_kib
            && idle_growth <= rss_tolerance_kib,
        fds_per_minute,
        fds_fitted_growth: fds_per_minute * minutes,
        fds_flat: fds_per_minute * minutes <= FD_TOLERANCE
            && after.sockets <= base.fds.sockets
            && after.other <= base.fds.other,
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn fds_text(fds: OpenFds) -> String {
    format!("{} ({} sockets, {} SQLite, {} other)", fds.total, fds.sockets, fds.database, fds.other)
}

/// Renders the scenario's report as markdown.
pub fn render(outcome: &LoadOutcome) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let sizes = &outcome.sizes;
    let (cores, load_start, load_end) = &outcome.machine;
    let _ = writeln!(out, "## Load: sustained mixed workload\n");
    let _ = writeln!(
        out,
        "`cairn serve` (authentication on, a Bearer token on every request) on {}; {} closed-loop clients (one keep-alive connection each), mix `{}`; warm-up {} s, measured {} s. Machine: {cores} cores; load average {load_start} at start, {load_end} at end.\n",
        sizes.backend.describe(),
        sizes.concurrency,
        sizes.mix,
        sizes.warm_up.as_secs(),
        sizes.duration.as_secs(),
    );
    let _ =
        writeln!(out, "| class | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let seconds = outcome.run.wall.as_secs_f64().max(1e-9);
    let mut all = Vec::new();
    for class in Class::ALL {
        let tally = &outcome.run.classes[class.index()];
        all.extend_from_slice(&tally.latencies);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |",
            class.name(),
            tally.requests,
            tally.errors,
            tally.requests as f64 / seconds,
            percentile_ms(&tally.latencies, 50.0),
            percentile_ms(&tally.latencies, 95.0),
            percentile_ms(&tally.latencies, 99.0),
            percentile_ms(&tally.latencies, 100.0),
        );
    }
    let _ = writeln!(
        out,
        "| **all** | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |\n",
        outcome.run.requests(),
        outcome.run.errors(),
        outcome.run.requests() as f64 / seconds,
        percentile_ms(&all, 50.0),
        percentile_ms(&all, 95.0),
        percentile_ms(&all, 99.0),
        percentile_ms(&all, 100.0),
    );
    let errors = outcome.warm_up.errors() + outcome.run.errors();
    let _ = writeln!(
        out,
        "Errors: **{errors}** (warm-up {} of {} requests, run {} of {}); zero required.\n",
        outcome.warm_up.errors(),
        outcome.warm_up.requests(),
        outcome.run.errors(),
        outcome.run.requests()
    );
    for failure in outcome.warm_up.failures.iter().chain(&outcome.run.failures) {
        let _ = writeln!(out, "- failed: {failure}");
    }
    let verdicts = verdicts(outcome);
    let peak_rss = outcome.samples.iter().filter(|s| s.phase == 2).map(|s| s.rss_kib).max();
    let peak_fds = outcome.samples.iter().filter(|s| s.phase == 2).map(|s| s.fds.total).max();
    let flat = |yes: bool| if yes { "flat" } else { "**GROWING**" };
    let _ = writeln!(
        out,
        "| server | idle after setup | idle after warm-up | peak during run | idle after run | fitted slope over the run | fitted growth | tolerance | verdict |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let _ = writeln!(
        out,
        "| RSS (MiB) | {:.1} | {:.1} | {:.1} | {:.1} | {:+.1} KiB/min | {:+.2} MiB | {:.1} MiB | {} |",
        mib(outcome.idle_before.rss_kib),
        mib(outcome.idle_after_warm_up.rss_kib),
        mib(peak_rss.unwrap_or(0)),
        mib(outcome.idle_after_run.rss_kib),
        verdicts.rss_kib_per_minute,
        verdicts.rss_fitted_growth_kib / 1024.0,
        verdicts.rss_tolerance_kib / 1024.0,
        flat(verdicts.rss_flat),
    );
    let _ = writeln!(
        out,
        "| open FDs | {} | {} | {} | {} | {:+.2} /min | {:+.1} | {FD_TOLERANCE:.0} | {} |\n",
        outcome.idle_before.fds.total,
        outcome.idle_after_warm_up.fds.total,
        peak_fds.unwrap_or(0),
        outcome.idle_after_run.fds.total,
        verdicts.fds_per_minute,
        verdicts.fds_fitted_growth,
        flat(verdicts.fds_flat),
    );
    let _ = writeln!(
        out,
        "Idle FDs: after setup {}; after warm-up {}; after run {}. VmHWM at the end {:.1} MiB; {} samples (one a second).\n",
        fds_text(outcome.idle_before.fds),
        fds_text(outcome.idle_after_warm_up.fds),
        fds_text(outcome.idle_after_run.fds),
        mib(outcome.hwm_kib),
        outcome.samples.len(),
    );
    let run: Vec<&Sample> = outcome.samples.iter().filter(|sample| sample.phase == 2).collect();
    if let Some(first) = run.first() {
        let mut minutes = Vec::new();
        let mut next = first.at;
        for sample in &run {
            if sample.at >= next {
                minutes.push((sample.rss_kib, sample.fds.total));
                next += 60.0;
            }
        }
        let half: Vec<(f64, f64)> = run[run.len() / 2..]
            .iter()
            .map(|sample| (sample.at / 60.0, sample.rss_kib as f64))
            .collect();
        let rss: Vec<String> = minutes.iter().map(|(rss, _)| format!("{:.1}", mib(*rss))).collect();
        let fds: Vec<String> = minutes.iter().map(|(_, fds)| fds.to_string()).collect();
        let _ = writeln!(
            out,
            "Each minute of the run: RSS (MiB) {}; open FDs {}. Fitted RSS slope over the second half of the run: {:+.1} KiB/min.\n",
            rss.join(", "),
            fds.join(", "),
            slope(&half),
        );
    }
    let _ = writeln!(
        out,
        "Tolerances: RSS is flat when the linear fit over the run's samples grows by at most {:.0} % of the idle RSS after the warm-up or {} MiB, whichever is larger, and so does idle RSS from after the warm-up to after the run (freed pages the allocator keeps and SQLite page caches that fill as the database grows are not leaks; a leak of 100 bytes per request would exceed it within the run). FDs are flat when the fit grows by at most {FD_TOLERANCE:.0} and no more sockets or non-SQLite descriptors are open idle after the run than idle after the warm-up (SQLite's pooled connections may open or close; each holds the database, its WAL and shared memory).",
        RSS_TOLERANCE_FRACTION * 100.0,
        RSS_TOLERANCE_FLOOR_KIB / 1024,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_pick_by_weight() {
        let mix: Mix = "log=1,infer=3".parse().unwrap();
        let picks: Vec<Class> = (0..4).map(|roll| mix.pick(roll)).collect();
        assert_eq!(picks, [Class::LogBatch, Class::Infer, Class::Infer, Class::Infer]);
        assert_eq!(
            mix.to_string(),
            "log=1,history=0,search=0,upload=0,download=0,infer=3,native=0"
        );
        assert!("log=0".parse::<Mix>().is_err());
        assert!("walk=1".parse::<Mix>().is_err());
        assert_eq!(Mix::default().to_string().parse::<Mix>().unwrap(), Mix::default());
    }

    #[test]
    fn slope_fits_a_line() {
        let points: Vec<(f64, f64)> =
            (0..10).map(|x| (f64::from(x), 3.0 * f64::from(x) + 1.0)).collect();
        assert!((slope(&points) - 3.0).abs() < 1e-9);
        assert!(slope(&[(1.0, 5.0)]).abs() < f64::EPSILON);
    }

    #[test]
    fn uploads_are_reproducible() {
        assert_eq!(artifact_bytes(2, 5), artifact_bytes(2, 5));
        assert_ne!(artifact_bytes(2, 5), artifact_bytes(2, 6));
        assert_eq!(artifact_bytes(0, 0).len(), ARTIFACT_BYTES);
    }
}
