//! The serving scenario: the same logistic regression and 100-tree random forest served by
//! `mlflow models serve` (the sklearn flavour, one uvicorn worker) and by Cairn (the skl2onnx
//! export, in-process on tract), both driven with single-row `dataframe_split` requests over
//! 8 (and 1) keep-alive connections; Cairn's in-process inference time is compared with
//! onnxruntime's in Python on the same ONNX files, and every server's answers are checked
//! against the others.
//!
//! `serving_models.py` (run with `--python`) trains, exports, logs and registers the models and
//! times onnxruntime; see its docstring.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use cairn_serving::{OnnxModel, Values};
use serde_json::{Value, json};

use crate::client::Api;
use crate::load::{self, LoadOutcome, LoadSpec};
use crate::report::percentile_ms;
use crate::server::{MemoryReport, Server, ServerSpec};

/// Rows sent in the one untimed request whose answer is compared between the servers.
pub const CHECK_ROWS: usize = 32;
/// Largest difference between two servers' probabilities that still counts as the same answer.
pub const PROBABILITY_TOLERANCE: f64 = 1e-5;
/// Untimed one-row predictions before the timed in-process calls (as in `serving_models.py`).
const INPROC_WARM_UP: usize = 200;
/// Rows of the in-process batch, timed per row (as in `serving_models.py`).
const BATCH_ROWS: usize = 1000;
/// Timed calls of the in-process batch; the median is reported.
const BATCH_REPEATS: usize = 20;
/// Time after which the in-process one-row timing stops early (a runtime at milliseconds per
/// row would otherwise take minutes); the number of calls actually timed is reported.
const INPROC_BUDGET: Duration = Duration::from_secs(60);
/// Time after which the in-process batch timing stops early (after at least one call).
const BATCH_BUDGET: Duration = Duration::from_secs(10);

/// Sizes of the serving scenario.
#[derive(Debug, Clone, Copy)]
pub struct ServingSizes {
    /// Measured window of each load run.
    pub duration: Duration,
    /// Untimed sending before each window.
    pub warm_up: Duration,
    /// Concurrent connections of the throughput runs.
    pub connections: usize,
    /// Timed one-row in-process calls, for tract and for onnxruntime.
    pub inproc_calls: usize,
}

/// Executables the scenario runs.
#[derive(Debug, Clone)]
pub struct ServingTools {
    /// Python with mlflow, scikit-learn, skl2onnx and onnxruntime.
    pub python: PathBuf,
    /// The `mlflow` console script, or `None` with `--skip-mlflow`.
    pub mlflow_bin: Option<PathBuf>,
    /// The Cairn release binary.
    pub cairn_bin: PathBuf,
}

/// Per-row inference time of one runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// One-row calls: median, 99th percentile and fastest, in microseconds.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// See `p50_us`.
    pub min_us: f64,
    /// Timed one-row calls.
    pub calls: usize,
    /// A `BATCH_ROWS`-row call (median of `BATCH_REPEATS`), divided by its rows, in microseconds.
    pub batch_per_row_us: f64,
    /// Timed batch calls.
    pub batch_calls: usize,
}

/// Labels and class probabilities of some rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// One label per row.
    pub labels: Vec<i64>,
    /// One list of class probabilities per row.
    pub probabilities: Vec<Vec<f64>>,
}

/// How closely two sets of predictions agree.
#[derive(Debug, Clone, Copy)]
pub struct Agreement {
    /// Rows compared (0 when the row counts differ or an answer is missing).
    pub rows: usize,
    /// Whether every label is equal.
    pub same_labels: bool,
    /// Largest absolute difference between two probabilities.
    pub max_diff: f64,
}

impl Agreement {
    /// Compares two answers row by row.
    pub fn of(a: &Predictions, b: &Predictions) -> Self {
        let comparable = !a.labels.is_empty()
            && a.labels.len() == b.labels.len()
            && a.probabilities.len() == b.probabilities.len()
            && a.probabilities.iter().zip(&b.probabilities).all(|(x, y)| x.len() == y.len());
        if !comparable {
            return Self { rows: 0, same_labels: false, max_diff: f64::NAN };
        }
        let max_diff = a
            .probabilities
            .iter()
            .flatten()
            .zip(b.probabilities.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        Self { rows: a.labels.len(), same_labels: a.labels == b.labels, max_diff }
    }

    /// Labels equal and probabilities within `PROBABILITY_TOLERANCE`.
    pub fn same(&self) -> bool {
        self.rows > 0 && self.same_labels && self.max_diff <= PROBABILITY_TOLERANCE
    }
}

/// Everything measured on one server for one model.
#[derive(Debug, Clone, Default)]
pub struct ServerRuns {
    /// `connections` connections, MLflow scoring protocol.
    pub concurrent: LoadOutcome,
    /// One connection, MLflow scoring protocol.
    pub single: LoadOutcome,
    /// `connections` connections, Open Inference Protocol (Cairn only).
    pub oip: Option<LoadOutcome>,
    /// `connections` connections, MLflow scoring protocol, capture switched off, then on again
    /// (Cairn only; with `concurrent` an A-B-A comparison of capture's cost).
    pub capture_ab: Option<(LoadOutcome, LoadOutcome)>,
    /// The answer to the check request (`CHECK_ROWS` rows, MLflow scoring protocol).
    pub answer: Option<Predictions>,
    /// The answer to the same rows over the Open Inference Protocol (Cairn only).
    pub oip_answer: Option<Predictions>,
}

/// One model's results.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// `LogisticRegression` or `RandomForest …`.
    pub title: String,
    /// The registered model (and the Cairn deployment) name.
    pub registered: String,
    /// Size of the ONNX file.
    pub onnx_bytes: u64,
    /// Test accuracy of the scikit-learn model.
    pub accuracy: f64,
    /// Cairn's in-process runtime.
    pub tract: Timing,
    /// onnxruntime in Python, single thread.
    pub onnxruntime: Timing,
    /// tract against onnxruntime over all prepared rows.
    pub tract_vs_onnxruntime: Agreement,
    /// `mlflow models serve`, unless skipped.
    pub mlflow: Option<ServerRuns>,
    /// Start to the first 200 from `/ping` and memory of this model's `mlflow models serve`.
    pub mlflow_server: Option<(Duration, MemoryReport)>,
    /// Cairn.
    pub cairn: ServerRuns,
}

/// Everything the serving scenario measured.
#[derive(Debug, Clone)]
pub struct ServingOutcome {
    /// Sizes used.
    pub sizes: ServingSizes,
    /// Python package versions, as the script reported them.
    pub versions: String,
    /// `RUST_BACKTRACE` and `RUST_LIB_BACKTRACE` as this process (and so Cairn) saw them.
    pub backtrace_env: String,
    /// Rows prepared (the in-process comparison uses all of them).
    pub rows: usize,
    /// One entry per model, LR first.
    pub models: Vec<ModelOutcome>,
    /// Start to the first 200 from `/healthz` and memory of the Cairn instance serving both.
    pub cairn_server: (Duration, MemoryReport),
}

/// One model as `serving_models.py` prepared it.
struct PreparedModel {
    title: String,
    registered: String,
    model_uri: String,
    onnx: PathBuf,
    onnx_bytes: u64,
    accuracy: f64,
    input: String,
    onnxruntime: Timing,
    onnxruntime_predictions: Predictions,
}

/// What `serving_models.py` prepared, in a temporary directory that lives as long as this.
struct Prepared {
    _dir: tempfile::TempDir,
    tracking_uri: String,
    columns: Vec<String>,
    rows: Vec<Vec<f64>>,
    versions: String,
    models: Vec<PreparedModel>,
}

fn progress(message: &str) {
    eprintln!("[bench] {message}");
}

fn field<'a>(value: &'a Value, name: &str) -> Result<&'a Value> {
    value.get(name).with_context(|| format!("serving_models.py output lacks '{name}'"))
}

fn number(value: &Value, name: &str) -> Result<f64> {
    field(value, name)?.as_f64().with_context(|| format!("'{name}' is not a number"))
}

fn text(value: &Value, name: &str) -> Result<String> {
    Ok(field(value, name)?.as_str().with_context(|| format!("'{name}' is not text"))?.to_owned())
}

fn floats(value: &Value) -> Option<Vec<f64>> {
    value.as_array()?.iter().map(Value::as_f64).collect()
}

fn prepared_model(key: &str, title: &str, value: &Value) -> Result<PreparedModel> {
    read_model(title, value)
        .with_context(|| format!("reading model '{key}' from serving_models.py"))
}

fn read_model(title: &str, value: &Value) -> Result<PreparedModel> {
    let ort = field(value, "onnxruntime")?;
    let labels = field(ort, "labels")?
        .as_array()
        .and_then(|labels| labels.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
        .context("onnxruntime labels are not integers")?;
    let probabilities = field(ort, "probabilities")?
        .as_array()
        .and_then(|rows| rows.iter().map(floats).collect::<Option<Vec<_>>>())
        .context("onnxruntime probabilities are not lists of numbers")?;
    Ok(PreparedModel {
        title: title.to_owned(),
        registered: text(value, "registered_model")?,
        model_uri: text(value, "model_uri")?,
        onnx: PathBuf::from(text(value, "onnx")?),
        onnx_bytes: number(value, "onnx_bytes")? as u64,
        accuracy: number(value, "test_accuracy")?,
        input: text(value, "input")?,
        onnxruntime: Timing {
            p50_us: number(ort, "row_p50_us")?,
            p99_us: number(ort, "row_p99_us")?,
            min_us: number(ort, "row_min_us")?,
            calls: number(ort, "calls")? as usize,
            batch_per_row_us: number(ort, "batch_per_row_us")?,
            batch_calls: number(ort, "batch_calls")? as usize,
        },
        onnxruntime_predictions: Predictions { labels, probabilities },
    })
}

/// Runs `serving_models.py` into a fresh temporary directory and reads what it printed.
async fn prepare(python: &Path, calls: usize) -> Result<Prepared> {
    let dir = tempfile::Builder::new()
        .prefix("cairn-bench-serving-")
        .tempdir()
        .context("creating the models directory")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("serving_models.py");
    progress(&format!(
        "serving: {} {} (train, export, log, register, time onnxruntime)",
        python.display(),
        script.display()
    ));
    let output = tokio::process::Command::new(python)
        .arg(&script)
        .arg(dir.path())
        .arg("--calls")
        .arg(calls.to_string())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .with_context(|| format!("running {} (--python)", python.display()))?;
    if !output.status.success() {
        bail!("serving_models.py failed with {} (its stderr is above)", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last =
        stdout.lines().rev().find(|line| line.starts_with('{')).with_context(|| {
            format!("serving_models.py printed no JSON line: {}", stdout.trim())
        })?;
    let value: Value = serde_json::from_str(last).context("parsing serving_models.py output")?;
    let columns = field(&value, "columns")?
        .as_array()
        .and_then(|columns| {
            columns.iter().map(|c| c.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()
        })
        .context("'columns' is not a list of names")?;
    let rows = field(&value, "rows")?
        .as_array()
        .and_then(|rows| rows.iter().map(floats).collect::<Option<Vec<_>>>())
        .context("'rows' is not a list of number lists")?;
    if rows.len() < CHECK_ROWS || rows.iter().any(|row| row.len() != columns.len()) {
        bail!("serving_models.py prepared {} rows of the wrong width or too few", rows.len());
    }
    let versions = field(&value, "versions")?
        .as_object()
        .map(|versions| {
            versions
                .iter()
                .map(|(name, version)| format!("{name} {}", version.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let models_value = field(&value, "models")?;
    let models = [("lr", "LogisticRegression"), ("rf", "RandomForest (100 trees, depth ≤ 12)")]
        .iter()
        .map(|(key, title)| prepared_model(key, title, field(models_value, key)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Prepared {
        tracking_uri: text(&value, "tracking_uri")?,
        columns,
        rows,
        versions,
        models,
        _dir: dir,
    })
}

/// The labels and probabilities of a prediction by Cairn's runtime.
fn runtime_predictions(outputs: &[cairn_serving::Output]) -> Result<Predictions> {
    let labels = outputs
        .iter()
        .find_map(|output| match (&output.values, output.shape.len()) {
            (Values::I64(labels), 1) => Some(labels.clone()),
            _ => None,
        })
        .context("the model has no 1-D integer output (labels)")?;
    let probabilities = outputs
        .iter()
        .find_map(|output| match (&output.values, output.shape.as_slice()) {
            (Values::F64(values), [_, width]) if *width > 0 => {
                Some(values.chunks(*width).map(<[f64]>::to_vec).collect())
            }
            _ => None,
        })
        .context("the model has no 2-D float output (probabilities)")?;
    Ok(Predictions { labels, probabilities })
}

/// Times Cairn's in-process runtime the way `serving_models.py` times onnxruntime (but stops
/// early after `INPROC_BUDGET` and `BATCH_BUDGET`), and predicts every row once for the
/// comparison. Blocking; run it off the async runtime.
fn time_tract(bytes: &[u8], rows: &[Vec<f32>], calls: usize) -> Result<(Timing, Predictions)> {
    let model = OnnxModel::load(bytes).map_err(|error| anyhow!("loading the model: {error}"))?;
    let predict = |count: usize, data: Vec<f32>| {
        model.predict(count, data).map_err(|error| anyhow!("predicting: {error}"))
    };
    for index in 0..INPROC_WARM_UP {
        predict(1, rows[index % rows.len()].clone())?;
    }
    let mut times = Vec::with_capacity(calls);
    let timing_started = Instant::now();
    for index in 0..calls {
        if timing_started.elapsed() > INPROC_BUDGET {
            break;
        }
        let data = rows[index % rows.len()].clone();
        let started = Instant::now();
        let outputs = predict(1, data)?;
        times.push(started.elapsed());
        drop(std::hint::black_box(outputs));
    }
    let batch: Vec<f32> =
        (0..BATCH_ROWS).flat_map(|index| rows[index % rows.len()].iter().copied()).collect();
    let mut batch_times = Vec::with_capacity(BATCH_REPEATS);
    let batch_started = Instant::now();
    for _ in 0..BATCH_REPEATS {
        if !batch_times.is_empty() && batch_started.elapsed() > BATCH_BUDGET {
            break;
        }
        let data = batch.clone();
        let started = Instant::now();
        let outputs = predict(BATCH_ROWS, data)?;
        batch_times.push(started.elapsed());
        drop(std::hint::black_box(outputs));
    }
    let us = |latencies: &[Duration], p: f64| percentile_ms(latencies, p) * 1000.0;
    let timing = Timing {
        p50_us: us(&times, 50.0),
        p99_us: us(&times, 99.0),
        min_us: us(&times, 0.0),
        calls: times.len(),
        batch_per_row_us: us(&batch_times, 50.0) / BATCH_ROWS as f64,
        batch_calls: batch_times.len(),
    };
    let all: Vec<f32> = rows.iter().flatten().copied().collect();
    let predictions = runtime_predictions(&predict(rows.len(), all)?)?;
    Ok((timing, predictions))
}

/// The MLflow scoring body of some rows.
fn split_body(columns: &[String], rows: &[Vec<f64>]) -> Value {
    json!({ "dataframe_split": { "columns": columns, "data": rows } })
}

/// The Open Inference Protocol body of some rows.
fn oip_body(input: &str, rows: &[Vec<f64>]) -> Value {
    let width = rows.first().map_or(0, Vec::len);
    json!({ "inputs": [{ "name": input, "shape": [rows.len(), width], "datatype": "FP32", "data": rows }] })
}

fn bodies(rows: &[Vec<f64>], body: impl Fn(&[Vec<f64>]) -> Value) -> Arc<Vec<Bytes>> {
    Arc::new(
        rows.iter().map(|row| Bytes::from(body(std::slice::from_ref(row)).to_string())).collect(),
    )
}

/// The class of the highest probability, the first on ties (as scikit-learn's `predict`).
fn argmax(row: &[f64]) -> i64 {
    let best = row.iter().enumerate().fold(
        0,
        |best, (index, value)| {
            if *value > row[best] { index } else { best }
        },
    );
    best as i64
}

/// `mlflow models serve` with `predict_fn: predict_proba`: `{"predictions": [[p0, p1], …]}`.
fn mlflow_predictions(answer: &Value) -> Option<Predictions> {
    let probabilities: Vec<Vec<f64>> =
        answer["predictions"].as_array()?.iter().map(floats).collect::<Option<_>>()?;
    let labels = probabilities.iter().map(|row| argmax(row)).collect();
    Some(Predictions { labels, probabilities })
}

/// Cairn's scoring answer for two outputs: `{"predictions": [{"label", "probabilities"}, …]}`.
fn cairn_predictions(answer: &Value) -> Option<Predictions> {
    let rows = answer["predictions"].as_array()?;
    let labels = rows.iter().map(|row| row["label"].as_i64()).collect::<Option<_>>()?;
    let probabilities =
        rows.iter().map(|row| floats(&row["probabilities"])).collect::<Option<_>>()?;
    Some(Predictions { labels, probabilities })
}

/// An OIP answer: outputs `label` `[n]` and `probabilities` `[n, k]`, flat.
fn oip_predictions(answer: &Value) -> Option<Predictions> {
    let outputs = answer["outputs"].as_array()?;
    let output = |name: &str| outputs.iter().find(|output| output["name"] == name);
    let labels = output("label")?["data"]
        .as_array()?
        .iter()
        .map(Value::as_i64)
        .collect::<Option<Vec<_>>>()?;
    let probabilities = output("probabilities")?;
    let width = probabilities["shape"].get(1)?.as_u64()? as usize;
    let flat = floats(&probabilities["data"])?;
    if width == 0 {
        return None;
    }
    Some(Predictions { labels, probabilities: flat.chunks(width).map(<[f64]>::to_vec).collect() })
}

/// Posts one untimed JSON request and returns the JSON answer.
async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let response = http.post(url).json(body).send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response.text().await.with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url} answered non-JSON: {text}"))
}

/// The socket address of a server started on 127.0.0.1.
pub fn address(server: &Server) -> Result<SocketAddr> {
    let authority = server.base_url.trim_start_matches("http://");
    authority.parse().with_context(|| format!("parsing the address {authority}"))
}

/// One load run against `server`, with progress.
async fn load_run(
    label: &str,
    server: &Server,
    path: &str,
    bodies: &Arc<Vec<Bytes>>,
    connections: usize,
    sizes: ServingSizes,
) -> Result<LoadOutcome> {
    progress(&format!(
        "{label}: {connections} connection(s) → {path} for {:.0} s (+{:.0} s warm-up)",
        sizes.duration.as_secs_f64(),
        sizes.warm_up.as_secs_f64()
    ));
    let outcome = load::run(LoadSpec {
        addr: address(server)?,
        path: path.to_owned(),
        bodies: Arc::clone(bodies),
        connections,
        warm_up: sizes.warm_up,
        duration: sizes.duration,
        server_pid: Some(server.pid()),
    })
    .await?;
    progress(&format!(
        "  {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors of {} requests, server CPU {} µs/req",
        outcome.requests_per_second(),
        percentile_ms(&outcome.latencies, 50.0),
        percentile_ms(&outcome.latencies, 99.0),
        outcome.errors,
        outcome.requests,
        outcome.server_cpu_per_request_us().map_or("?".into(), |us| format!("{us:.0}")),
    ));
    for failure in &outcome.failures {
        progress(&format!("  failed: {failure}"));
    }
    Ok(outcome)
}

/// `mlflow models serve` for one model: check request, then `connections` and 1 connection.
async fn bench_mlflow(
    bin: &Path,
    prepared: &Prepared,
    model: &PreparedModel,
    sizes: ServingSizes,
    http: &reqwest::Client,
) -> Result<(ServerRuns, Duration, MemoryReport)> {
    let spec = ServerSpec::MlflowServe {
        bin: bin.to_path_buf(),
        model_uri: model.model_uri.clone(),
        tracking_uri: prepared.tracking_uri.clone(),
    };
    let (server, started) = Server::start(&spec, http).await?;
    let label = format!("mlflow-serve {}", model.registered);
    progress(&format!(
        "{label} answered /ping in {} ms at {} (load {})",
        started.as_millis(),
        server.base_url,
        crate::procfs::load_average().unwrap_or_default()
    ));
    let check = split_body(&prepared.columns, &prepared.rows[..CHECK_ROWS]);
    let answer = post_json(http, &format!("{}/invocations", server.base_url), &check)
        .await
        .map_err(|error| progress(&format!("{label} check request failed: {error:#}")))
        .ok()
        .and_then(|answer| mlflow_predictions(&answer));
    let split = bodies(&prepared.rows, |rows| split_body(&prepared.columns, rows));
    let concurrent =
        load_run(&label, &server, "/invocations", &split, sizes.connections, sizes).await?;
    let single = load_run(&label, &server, "/invocations", &split, 1, sizes).await?;
    let memory = server.memory();
    server.stop().await?;
    Ok((
        ServerRuns { concurrent, single, oip: None, capture_ab: None, answer, oip_answer: None },
        started,
        memory,
    ))
}

/// Logs `onnx` as a logged model's `model.onnx` in Cairn, registers it as version 1 of `name`
/// and deploys it as the deployment `name` (environment `test`).
pub async fn deploy_on_cairn(
    api: &Api,
    http: &reqwest::Client,
    base_url: &str,
    experiment_id: &str,
    name: &str,
    onnx: &Path,
) -> Result<()> {
    let (answer, _) =
        api.post("logged-models", &json!({ "experiment_id": experiment_id, "name": name })).await?;
    let info = &answer["model"]["info"];
    let model_id = info["model_id"].as_str().context("logged-models answered without an id")?;
    let uri = info["artifact_uri"].as_str().context("logged-models answered without a URI")?;
    let relative = uri
        .strip_prefix("mlflow-artifacts:/")
        .with_context(|| format!("unexpected artifact URI {uri}"))?
        .trim_start_matches('/');
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    let url = format!("{base_url}/api/2.0/mlflow-artifacts/artifacts/{relative}/model.onnx");
    let response = http.put(&url).body(bytes).send().await.with_context(|| format!("PUT {url}"))?;
    if !response.status().is_success() {
        bail!("PUT {url} answered {}: {}", response.status(), response.text().await?);
    }
    api.post("registered-models/create", &json!({ "name": name })).await?;
    let body =
        json!({ "name": name, "source": format!("models:/{model_id}"), "model_id": model_id });
    let (answer, _) = api.post("model-versions/create", &body).await?;
    let version: i64 = answer["model_version"]["version"]
        .as_str()
        .and_then(|version| version.parse().ok())
        .context("model-versions/create answered without a version")?;
    let body = json!({
        "name": name,
        "environment": "test",
        "routes": [{ "model": name, "version": version }],
    });
    post_json(http, &format!("{base_url}/api/v1/deployments"), &body)
        .await
        .with_context(|| format!("deploying {name}"))?;
    Ok(())
}

/// Switches capture of every request on or off for the deployment `name` (version 1 of the
/// model of the same name, as `deploy_on_cairn` made it): a new revision.
async fn set_capture(http: &reqwest::Client, base_url: &str, name: &str, on: bool) -> Result<()> {
    let body = json!({
        "routes": [{ "model": name, "version": 1 }],
        "capture": { "enabled": on, "sample_rate": 1.0 },
        "comment": format!("bench: capture {}", if on { "on" } else { "off" }),
    });
    let url = format!("{base_url}/api/v1/deployments/{name}");
    let response = http.put(&url).json(&body).send().await.with_context(|| format!("PUT {url}"))?;
    if !response.status().is_success() {
        bail!("PUT {url} answered {}: {}", response.status(), response.text().await?);
    }
    Ok(())
}

/// Cairn serving both models: deploy, check, then per model `connections` and 1 connection on
/// the MLflow scoring protocol and `connections` on the Open Inference Protocol.
async fn bench_cairn(
    bin: &Path,
    prepared: &Prepared,
    sizes: ServingSizes,
    http: &reqwest::Client,
) -> Result<(Vec<ServerRuns>, Duration, MemoryReport)> {
    let spec = ServerSpec::Cairn { bin: bin.to_path_buf(), auth: false, extra_args: Vec::new() };
    let (server, started) = Server::start(&spec, http).await?;
    progress(&format!(
        "cairn healthy in {} ms at {} (load {})",
        started.as_millis(),
        server.base_url,
        crate::procfs::load_average().unwrap_or_default()
    ));
    let api = Api::new(&server.base_url, 1, None)?;
    let experiment_id = api.create_experiment("bench-serving").await?;
    for model in &prepared.models {
        deploy_on_cairn(
            &api,
            http,
            &server.base_url,
            &experiment_id,
            &model.registered,
            &model.onnx,
        )
        .await?;
        progress(&format!("cairn: deployed {} ({})", model.registered, model.onnx.display()));
    }
    let mut runs = Vec::with_capacity(prepared.models.len());
    for model in &prepared.models {
        let label = format!("cairn {}", model.registered);
        let invocations = format!("/serve/{}/invocations", model.registered);
        let infer = format!("/v2/models/{}/infer", model.registered);
        let check = &prepared.rows[..CHECK_ROWS];
        let base = &server.base_url;
        let answer =
            post_json(http, &format!("{base}{invocations}"), &split_body(&prepared.columns, check))
                .await
                .map_err(|error| progress(&format!("{label} check request failed: {error:#}")))
                .ok()
                .and_then(|answer| cairn_predictions(&answer));
        let oip_answer = post_json(http, &format!("{base}{infer}"), &oip_body(&model.input, check))
            .await
            .map_err(|error| progress(&format!("{label} OIP check request failed: {error:#}")))
            .ok()
            .and_then(|answer| oip_predictions(&answer));
        let split = bodies(&prepared.rows, |rows| split_body(&prepared.columns, rows));
        let oip = bodies(&prepared.rows, |rows| oip_body(&model.input, rows));
        let concurrent =
            load_run(&label, &server, &invocations, &split, sizes.connections, sizes).await?;
        let single = load_run(&label, &server, &invocations, &split, 1, sizes).await?;
        let oip = load_run(&label, &server, &infer, &oip, sizes.connections, sizes).await?;
        set_capture(http, base, &model.registered, false).await?;
        let off = load_run(
            &format!("{label} capture off"),
            &server,
            &invocations,
            &split,
            sizes.connections,
            sizes,
        )
        .await?;
        set_capture(http, base, &model.registered, true).await?;
        let on_again = load_run(
            &format!("{label} capture on again"),
            &server,
            &invocations,
            &split,
            sizes.connections,
            sizes,
        )
        .await?;
        runs.push(ServerRuns {
            concurrent,
            single,
            oip: Some(oip),
            capture_ab: Some((off, on_again)),
            answer,
            oip_answer,
        });
    }
    let memory = server.memory();
    server.stop().await?;
    Ok((runs, started, memory))
}

/// `RUST_BACKTRACE` and `RUST_LIB_BACKTRACE` as set (inherited by Cairn), and whether either
/// enables backtraces. tract 0.23.9 builds an `anyhow` error for every tree leaf it reaches
/// (`Cmp::try_from` on the leaf's comparator byte in `TreeEnsembleData::get_unchecked`); with
/// backtraces enabled each one captures a backtrace, microseconds apiece.
fn backtrace_env() -> (String, bool) {
    let mut enabled = false;
    let text = ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"]
        .iter()
        .map(|name| match std::env::var(name) {
            Ok(value) => {
                enabled |= value != "0";
                format!("{name}={value}")
            }
            Err(_) => format!("{name} unset"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    (text, enabled)
}

/// Runs the whole serving scenario: prepare, in-process, `mlflow models serve`, Cairn.
pub async fn run(tools: &ServingTools, sizes: ServingSizes) -> Result<ServingOutcome> {
    let (backtrace_env, backtraces) = backtrace_env();
    if backtraces {
        progress(&format!(
            "warning: {backtrace_env}: tract then captures a backtrace for every tree leaf it reaches, which slows tree ensembles (in process and in Cairn); run with `env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE`"
        ));
    }
    let prepared = prepare(&tools.python, sizes.inproc_calls).await?;
    let rows32: Arc<Vec<Vec<f32>>> =
        Arc::new(prepared.rows.iter().map(|row| row.iter().map(|v| *v as f32).collect()).collect());
    let mut inproc = Vec::with_capacity(prepared.models.len());
    for model in &prepared.models {
        progress(&format!("serving: timing tract on {}", model.onnx.display()));
        let bytes = std::fs::read(&model.onnx)
            .with_context(|| format!("reading {}", model.onnx.display()))?;
        let rows = Arc::clone(&rows32);
        let calls = sizes.inproc_calls;
        let (timing, predictions) =
            tokio::task::spawn_blocking(move || time_tract(&bytes, &rows, calls))
                .await
                .context("the in-process timing panicked")?
                .with_context(|| format!("timing tract on {}", model.onnx.display()))?;
        progress(&format!(
            "  tract 1 row p50 {:.1} µs (onnxruntime {:.1} µs), batch {:.3} µs/row (onnxruntime {:.3})",
            timing.p50_us,
            model.onnxruntime.p50_us,
            timing.batch_per_row_us,
            model.onnxruntime.batch_per_row_us
        ));
        inproc.push((timing, Agreement::of(&predictions, &model.onnxruntime_predictions)));
    }

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")?;
    let mut mlflow = Vec::with_capacity(prepared.models.len());
    for model in &prepared.models {
        mlflow.push(match &tools.mlflow_bin {
            Some(bin) => Some(bench_mlflow(bin, &prepared, model, sizes, &http).await?),
            None => None,
        });
    }
    let (cairn, cairn_started, cairn_memory) =
        bench_cairn(&tools.cairn_bin, &prepared, sizes, &http).await?;

    let models = prepared
        .models
        .iter()
        .zip(inproc)
        .zip(mlflow)
        .zip(cairn)
        .map(|(((model, (tract, agreement)), mlflow), cairn)| ModelOutcome {
            title: model.title.clone(),
            registered: model.registered.clone(),
            onnx_bytes: model.onnx_bytes,
            accuracy: model.accuracy,
            tract,
            onnxruntime: model.onnxruntime,
            tract_vs_onnxruntime: agreement,
            mlflow_server: mlflow.as_ref().map(|(_, started, memory)| (*started, *memory)),
            mlflow: mlflow.map(|(runs, _, _)| runs),
            cairn,
        })
        .collect();
    Ok(ServingOutcome {
        sizes,
        versions: prepared.versions.clone(),
        backtrace_env,
        rows: prepared.rows.len(),
        models,
        cairn_server: (cairn_started, cairn_memory),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_each_protocol_become_predictions() {
        let mlflow = json!({"predictions": [[0.25, 0.75], [0.5, 0.5]]});
        let want = Predictions {
            labels: vec![1, 0],
            probabilities: vec![vec![0.25, 0.75], vec![0.5, 0.5]],
        };
        assert_eq!(mlflow_predictions(&mlflow), Some(want.clone()));
        let cairn = json!({"predictions": [
            {"label": 1, "probabilities": [0.25, 0.75]},
            {"label": 0, "probabilities": [0.5, 0.5]},
        ]});
        assert_eq!(cairn_predictions(&cairn), Some(want.clone()));
        let oip = json!({"outputs": [
            {"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]},
            {"name": "probabilities", "shape": [2, 2], "datatype": "FP32", "data": [0.25, 0.75, 0.5, 0.5]},
        ]});
        assert_eq!(oip_predictions(&oip), Some(want.clone()));
        let agreement = Agreement::of(&want, &want);
        assert!(agreement.same() && agreement.rows == 2);
        let mut off = want.clone();
        off.probabilities[0][0] += 1e-4;
        assert!(!Agreement::of(&want, &off).same());
        assert!(!Agreement::of(&want, &Predictions::default()).same());
    }
}
