//! Sustained mixed load, the short version (issue 10, "Load"; the long one with latencies and
//! memory is `cairn-bench --only load`): a real `cairn serve` with authentication on (SQLite,
//! local artifacts) takes a mix of run creation, metric batches, metric history reads, filtered
//! run searches, 64 KiB artifact uploads and downloads through the artifact proxy, one-row
//! inference on an ONNX deployment and native searches from four closed-loop clients for 20
//! seconds, after a short warm-up. Behaviour, not timing, is asserted:
//!
//! - no request fails, every class is exercised, and every download has the uploaded bytes;
//! - once the clients disconnect, the server's sockets and its descriptors other than SQLite's
//!   are back to their count after the warm-up (a leaked connection or file would stay open).

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::crash_safety::Server;
use crate::serving::fixture;

/// Closed-loop clients, one request in flight each.
const CLIENTS: usize = 4;
/// Untimed load before the baseline of open descriptors is taken.
const WARM_UP: Duration = Duration::from_secs(3);
/// The load whose effect on open descriptors is checked.
const LOAD: Duration = Duration::from_secs(20);
/// The deployment the inference requests go to.
const DEPLOYMENT: &str = "load-forest";
/// What each client does, in turn (a run is created first and after every 10 batches).
const CYCLE: [&str; 10] = [
    "log-batch",
    "infer",
    "upload",
    "history",
    "download",
    "log-batch",
    "infer",
    "search",
    "download",
    "native",
];

/// Open descriptors of the server: sockets, SQLite's files, everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fds {
    sockets: usize,
    database: usize,
    other: usize,
}

fn open_fds(pid: u32) -> (Fds, Vec<String>) {
    let mut fds = Fds { sockets: 0, database: 0, other: 0 };
    let mut targets = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("list the server's fds") {
        let Ok(entry) = entry else { continue };
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        let target = target.to_string_lossy().to_string();
        if target.starts_with("socket:") {
            fds.sockets += 1;
        } else if target.contains("cairn.db") {
            fds.database += 1;
        } else {
            fds.other += 1;
        }
        targets.push(target);
    }
    (fds, targets)
}

/// Waits until the server's descriptor counts stop changing (the clients just disconnected).
async fn settled_fds(pid: u32) -> Fds {
    let mut last = open_fds(pid).0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = open_fds(pid).0;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// The bytes of upload `index` of client `client`.
fn payload(client: usize, index: usize) -> Vec<u8> {
    let mut state = ((client as u64) << 32 | index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(64 << 10);
    while bytes.len() < 64 << 10 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes
}

/// Requests and failures per class, shared by the clients.
#[derive(Default)]
struct Tally {
    requests: HashMap<&'static str, usize>,
    failures: Vec<String>,
}

/// A client with its own connection; returns when `stop` is set.
async fn client(
    index: usize,
    base: String,
    token: String,
    experiment: String,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let api = format!("{base}/api/2.0/mlflow");
    let auth = format!("Bearer {token}");
    let columns: Vec<String> = (0..8).map(|i| format!("f{i}")).collect();
    let (mut run, mut prefix, mut batch) = (String::new(), String::new(), 10_usize);
    let (mut uploads, mut turn) = (Vec::new(), index);
    while !stop.load(Ordering::Relaxed) {
        let class = if batch == 10 { "create" } else { CYCLE[turn % CYCLE.len()] };
        let request = match class {
            "create" => http.post(format!("{api}/runs/create")).json(
                &json!({"experiment_id": experiment, "run_name": format!("load-c{index}")}),
            ),
            "log-batch" => {
                let metrics: Vec<Value> = (0..5)
                    .map(|step| json!({"key": "loss", "value": 1.0 / (batch * 5 + step + 1) as f64, "timestamp": 1, "step": batch * 5 + step}))
                    .collect();
                let params = if batch == 0 { json!([{"key": "lr", "value": "0.01"}]) } else { json!([]) };
                http.post(format!("{api}/runs/log-batch"))
                    .json(&json!({"run_id": run, "metrics": metrics, "params": params}))
            }
            "history" => {
                http.get(format!("{api}/metrics/get-history?run_id={run}&metric_key=loss"))
            }
            "search" => http.post(format!("{api}/runs/search")).json(&json!({
                "experiment_ids": [experiment],
                "filter": "metrics.loss < 0.05 and params.lr = '0.01'",
                "order_by": ["metrics.loss ASC"],
                "max_results": 50,
            })),
            "upload" => http
                .put(format!(
                    "{base}/api/2.0/mlflow-artifacts/artifacts/{prefix}/blob-{}.bin",
                    uploads.len()
                ))
                .body(payload(index, uploads.len())),
            "download" => match uploads.last() {
                Some((path, _)) => {
                    http.get(format!("{base}/api/2.0/mlflow-artifacts/artifacts/{path}"))
                }
                None => {
                    turn += 1;
                    continue;
                }
            },
            "infer" => http.post(format!("{base}/serve/{DEPLOYMENT}/invocations")).json(
                &json!({"dataframe_split": {"columns": columns, "data": [[turn % 5, 0.5, -1, 2, 0, 1, -0.5, 0.25]]}}),
            ),
            _ => http.get(format!("{base}/api/v1/search?q=load-c{index}&limit=5")),
        };
        let answer = request.header("authorization", &auth).send().await;
        let outcome = match answer {
            Ok(answer) if answer.status().is_success() => match answer.bytes().await {
                Ok(body) => Ok(body),
                Err(error) => Err(format!("reading the answer: {error}")),
            },
            Ok(answer) => {
                Err(format!("{}: {}", answer.status(), answer.text().await.unwrap_or_default()))
            }
            Err(error) => Err(format!("transport: {error}")),
        };
        let mut tally = tally.lock().await;
        *tally.requests.entry(class).or_default() += 1;
        let body = match outcome {
            Ok(body) => body,
            Err(failure) => {
                tally.failures.push(format!("client {index} {class}: {failure}"));
                turn += 1;
                continue;
            }
        };
        drop(tally);
        match class {
            "create" => {
                let answer: Value = serde_json::from_slice(&body).expect("runs/create json");
                run = answer["run"]["info"]["run_id"].as_str().expect("a run id").to_string();
                let uri = answer["run"]["info"]["artifact_uri"].as_str().expect("a uri");
                prefix = uri.trim_start_matches("mlflow-artifacts:").trim_start_matches('/').into();
                batch = 0;
                continue;
            }
            "log-batch" => batch += 1,
            "upload" => {
                let path = format!("{prefix}/blob-{}.bin", uploads.len());
                uploads.push((path, uploads.len()));
            }
            "download" => {
                let (path, number) = uploads.last().expect("an upload");
                assert!(body == payload(index, *number), "{path}: downloaded bytes differ");
            }
            _ => {}
        }
        turn += 1;
    }
}

/// Runs `CLIENTS` clients for `length`; their connections close when it returns.
async fn load(
    base: &str,
    token: &str,
    experiment: &str,
    tally: &Arc<Mutex<Tally>>,
    length: Duration,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|index| {
            tokio::spawn(client(
                index,
                base.to_string(),
                token.to_string(),
                experiment.to_string(),
                tally.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("a load client panicked");
    }
}

/// Logs the forest fixture as a logged model, registers it and deploys it as `DEPLOYMENT`.
async fn deploy(http: &reqwest::Client, base: &str, auth: &str, experiment: &str) {
    let api = format!("{base}/api/2.0/mlflow");
    let post = |url: String, body: Value| {
        let request = http.post(url).header("authorization", auth).json(&body);
        async move {
            let answer = request.send().await.expect("send");
            let status = answer.status();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{status}: {body}");
            body
        }
    };
    let logged = post(
        format!("{api}/logged-models"),
        json!({"experiment_id": experiment, "name": "forest"}),
    )
    .await;
    let model_id = logged["model"]["info"]["model_id"].as_str().unwrap().to_string();
    let uri = logged["model"]["info"]["artifact_uri"].as_str().unwrap();
    let relative = uri.trim_start_matches("mlflow-artifacts:").trim_start_matches('/');
    let uploaded = http
        .put(format!("{base}/api/2.0/mlflow-artifacts/artifacts/{relative}/model.onnx"))
        .header("authorization", auth)
        .body(fixture("forest.onnx"))
        .send()
        .await
        .expect("upload the model");
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    post(format!("{api}/registered-models/create"), json!({"name": DEPLOYMENT})).await;
    let version = post(
        format!("{api}/model-versions/create"),
        json!({"name": DEPLOYMENT, "source": format!("models:/{model_id}"), "model_id": model_id}),
    )
    .await;
    let version: i64 = version["model_version"]["version"].as_str().unwrap().parse().unwrap();
    post(
        format!("{base}/api/v1/deployments"),
        json!({"name": DEPLOYMENT, "routes": [{"model": DEPLOYMENT, "version": version}]}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sustained_mixed_load_fails_nothing_and_leaks_no_descriptor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let port = crate::support::free_port();
    let args: Vec<String> = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--auth",
        "enabled",
        "--data-dir",
        &data_dir.display().to_string(),
    ]
    .iter()
    .map(|arg| (*arg).to_string())
    .collect();
    let base = format!("http://127.0.0.1:{port}");
    let mut server =
        Server { args, child: None, base: base.clone(), log: dir.path().join("server.log") };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    server.start(&http).await;
    let pid = server.pid();
    let token = std::fs::read_to_string(data_dir.join("bootstrap-admin-token"))
        .expect("the bootstrap token")
        .trim()
        .to_string();
    let auth = format!("Bearer {token}");
    let created: Value = http
        .post(format!("{base}/api/2.0/mlflow/experiments/create"))
        .header("authorization", &auth)
        .json(&json!({"name": "load"}))
        .send()
        .await
        .expect("create the experiment")
        .json()
        .await
        .expect("experiment json");
    let experiment = created["experiment_id"].as_str().expect("an experiment id").to_string();
    deploy(&http, &base, &auth, &experiment).await;
    drop(http);

    let tally = Arc::new(Mutex::new(Tally::default()));
    load(&base, &token, &experiment, &tally, WARM_UP).await;
    let before = settled_fds(pid).await;
    let started = Instant::now();
    load(&base, &token, &experiment, &tally, LOAD).await;
    let loaded_for = started.elapsed();
    let mut after = settled_fds(pid).await;
    // Pooled keep-alive connections and buffered capture writes close on their own schedule;
    // give them a bounded while before calling a descriptor leaked.
    let deadline = Instant::now() + Duration::from_secs(15);
    while (after.sockets > before.sockets || after.other > before.other)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = open_fds(pid).0;
    }
    let tally = tally.lock().await;
    let total: usize = tally.requests.values().sum();
    eprintln!(
        "load: {total} requests in {:.1} s (+{} s warm-up) by {CLIENTS} clients: {:?}; {} failed; fds after warm-up {before:?}, after the load {after:?}",
        loaded_for.as_secs_f64(),
        WARM_UP.as_secs(),
        tally.requests,
        tally.failures.len()
    );
    assert!(tally.failures.is_empty(), "failed requests: {:#?}", tally.failures);
    for class in
        ["create", "log-batch", "history", "search", "upload", "download", "infer", "native"]
    {
        assert!(tally.requests.get(class).copied().unwrap_or(0) > 0, "no {class} request was sent");
    }
    let (_, targets) = open_fds(pid);
    assert!(
        after.sockets <= before.sockets && after.other <= before.other,
        "descriptors left open after the load: {before:?} before, {after:?} after: {targets:#?}"
    );
    server.kill();
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["admin", "audit", "verify", "--database-url"])
        .arg(format!("sqlite://{}", data_dir.join("cairn.db").display()))
        .arg("--data-dir")
        .arg(&data_dir)
        .output()
        .expect("run cairn admin audit verify");
    assert!(
        output.status.success(),
        "the audit chain verifies: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}
