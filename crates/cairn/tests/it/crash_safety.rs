//! Crash safety under SIGKILL (issue 10): three clients create runs, log metric batches with a
//! parameter, and upload artifacts at full speed through the MLflow REST API while the `cairn
//! serve` process is killed with SIGKILL at random moments, 20 times, and restarted on the same
//! data — on SQLite with local artifacts, and on PostgreSQL with the S3 server. The clients never
//! retry: a write is acknowledged when its answer was a success, unknown when the connection
//! died. After each restart the writes acknowledged since the previous check are read back;
//! at the end every acknowledged write is, and:
//!
//! - each acknowledged run, parameter and metric step is present exactly once;
//! - every artifact that is listed holds exactly the bytes that were sent (none is half-written),
//!   and every acknowledged one is listed;
//! - the audit chain verifies;
//! - how long each restart took to answer `/readyz` is printed (the figures go to
//!   `docs/RELIABILITY.md`; speed is not asserted here).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::support::Backend;

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");
/// How many times the server is killed.
const KILLS: usize = 20;
/// Clients writing at once.
const WRITERS: usize = 3;
/// Metric steps per batch.
pub(crate) const STEPS: usize = 10;

/// What the clients saw acknowledged (and, for artifacts, everything they tried to upload).
#[derive(Default)]
pub(crate) struct Ledger {
    /// Run id → its artifact path prefix (`<experiment>/<run>/artifacts`).
    pub(crate) runs: HashMap<String, String>,
    /// (run id, batch number): the batch's steps start at `batch * STEPS`, its parameter is
    /// `p<batch>`.
    pub(crate) batches: Vec<(String, usize)>,
    /// Artifact path → SHA-256 of the bytes sent, for every upload tried.
    tried: HashMap<String, String>,
    /// Acknowledged artifact paths.
    pub(crate) uploaded: Vec<String>,
    /// When each acknowledged write was answered, and by which writer.
    pub(crate) acks: Vec<(usize, Instant)>,
    /// Acknowledged writes not read back yet: runs, batches and artifacts (indices).
    unchecked: (usize, usize, usize),
    /// Artifacts whose bytes were read back whole (they are written once, so they are not
    /// downloaded again; their presence is checked every time).
    pub(crate) verified: HashSet<String>,
}

/// A small xorshift generator (the seed is printed, so a failing sequence can be replayed).
pub(crate) struct Random(pub(crate) u64);

impl Random {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// A `cairn serve` process, started with `args`, killed with SIGKILL (also on drop).
pub(crate) struct Server {
    pub(crate) args: Vec<String>,
    pub(crate) child: Option<Child>,
    pub(crate) base: String,
    /// Where its stderr goes (appended across restarts).
    pub(crate) log: std::path::PathBuf,
}

impl Server {
    /// The process id of the running server.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Starts the server and returns how long it took to answer `/readyz`.
    pub(crate) async fn start(&mut self, http: &reqwest::Client) -> Duration {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the server log");
        let started = Instant::now();
        let child = Command::new(CAIRN)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn cairn serve");
        self.child = Some(child);
        let deadline = started + Duration::from_secs(60);
        loop {
            let ready = http.get(format!("{}/readyz", self.base)).send().await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "cairn was not ready within 60 s; see {:?}",
                self.log
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Kills the server with SIGKILL and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn payload(writer: usize, index: usize, random: &mut Random) -> Vec<u8> {
    let size = random.between(1 << 10, 128 << 10) as usize;
    let mut bytes = format!("writer {writer} upload {index}\n").into_bytes();
    while bytes.len() < size {
        bytes.extend_from_slice(&random.next().to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

/// One client: creates a run, then logs batches and uploads artifacts to it; a new run every
/// ten batches. Never retries a write that got no answer; goes on with the next one. Stops when
/// `stop` is set and returns how many writes got no answer.
pub(crate) async fn writer(
    writer: usize,
    http: reqwest::Client,
    base: String,
    experiment: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> usize {
    let api = format!("{base}/api/2.0/mlflow");
    let mut random = Random(seed);
    let mut run: Option<(String, String)> = None;
    let (mut batch, mut upload, mut failures) = (0_usize, 0_usize, 0_usize);
    while !stop.load(Ordering::Relaxed) {
        let Some((run_id, prefix)) = run.clone() else {
            let answer = http
                .post(format!("{api}/runs/create"))
                .json(&json!({"experiment_id": experiment, "run_name": format!("w{writer}")}))
                .send()
                .await;
            match answer {
                Ok(answer) if answer.status().is_success() => {
                    // An answer cut before its body is not an acknowledgement either.
                    let Ok(body) = answer.json::<Value>().await else {
                        failures += 1;
                        continue;
                    };
                    let info = &body["run"]["info"];
                    let run_id = info["run_id"].as_str().expect("a run id").to_string();
                    let uri = info["artifact_uri"].as_str().expect("an artifact uri");
                    let prefix =
                        uri.trim_start_matches("mlflow-artifacts:").trim_start_matches('/');
                    let mut ledger = ledger.lock().await;
                    ledger.runs.insert(run_id.clone(), prefix.to_string());
                    ledger.acks.push((writer, Instant::now()));
                    run = Some((run_id, prefix.to_string()));
                }
                _ => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            continue;
        };
        // A batch: STEPS steps of metric `loss` and one parameter.
        let metrics: Vec<Value> = (0..STEPS)
            .map(|offset| {
                let step = batch * STEPS + offset;
                json!({"key": "loss", "value": 1.0 / (step as f64 + 1.0), "timestamp": 1_700_000_000_000_i64 + step as i64, "step": step})
            })
            .collect();
        let body = json!({"run_id": run_id, "metrics": metrics,
                          "params": [{"key": format!("p{batch}"), "value": format!("{batch}")}]});
        match http.post(format!("{api}/runs/log-batch")).json(&body).send().await {
            Ok(answer) if answer.status().is_success() => {
                let mut ledger = ledger.lock().await;
                ledger.batches.push((run_id.clone(), batch));
                ledger.acks.push((writer, Instant::now()));
            }
            Ok(answer) => {
                panic!("log-batch answered {}: {:?}", answer.status(), answer.text().await)
            }
            Err(_) => failures += 1,
        }
        batch += 1;
        // An artifact.
        let bytes = payload(writer, upload, &mut random);
        let path = format!("{prefix}/w{writer}-{upload}.bin");
        upload += 1;
        ledger.lock().await.tried.insert(path.clone(), hex::encode(Sha256::digest(&bytes)));
        let url = format!("{base}/api/2.0/mlflow-artifacts/artifacts/{path}");
        match http.put(url).body(bytes).send().await {
            Ok(answer) if answer.status().is_success() => {
                let mut ledger = ledger.lock().await;
                ledger.uploaded.push(path);
                ledger.acks.push((writer, Instant::now()));
            }
            Ok(answer) => panic!("upload answered {}: {:?}", answer.status(), answer.text().await),
            Err(_) => failures += 1,
        }
        if batch % 10 == 0 {
            run = None;
            batch = 0;
        }
        if failures > 0 && failures % 5 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    failures
}

/// Reads back the acknowledged writes from `from` on (runs, batches, uploads), and every
/// listed artifact of the runs involved not `verified` before; panics on a missing, duplicated
/// or torn write. Returns the artifacts it read back whole.
pub(crate) async fn check(
    http: &reqwest::Client,
    base: &str,
    ledger: &Ledger,
    from: (usize, usize, usize),
    verified: &HashSet<String>,
) -> Vec<String> {
    let mut whole = Vec::new();
    let api = format!("{base}/api/2.0/mlflow");
    let runs: Vec<&String> = ledger.runs.keys().collect();
    let mut runs_to_read: HashSet<String> = HashSet::new();
    if from.0 == 0 {
        runs_to_read.extend(runs.iter().map(|run| (*run).clone()));
    }
    // Batches: each acknowledged step and parameter present exactly once.
    let mut by_run: HashMap<&str, Vec<usize>> = HashMap::new();
    for (run_id, batch) in &ledger.batches[from.1..] {
        by_run.entry(run_id).or_default().push(*batch);
    }
    for (run_id, batches) in &by_run {
        runs_to_read.insert((*run_id).to_string());
        let history: Value = http
            .get(format!(
                "{api}/metrics/get-history?run_id={run_id}&metric_key=loss&max_results=25000"
            ))
            .send()
            .await
            .expect("get-history")
            .json()
            .await
            .expect("history json");
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for metric in history["metrics"].as_array().into_iter().flatten() {
            *seen.entry(metric["step"].as_i64().unwrap_or(-1)).or_default() += 1;
        }
        for (step, count) in &seen {
            assert_eq!(*count, 1, "run {run_id}: step {step} logged {count} times");
        }
        let run: Value = http
            .get(format!("{api}/runs/get?run_id={run_id}"))
            .send()
            .await
            .expect("runs/get")
            .json()
            .await
            .expect("run json");
        let params: HashSet<&str> = run["run"]["data"]["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|param| param["key"].as_str())
            .collect();
        for batch in batches {
            for offset in 0..STEPS {
                let step = (batch * STEPS + offset) as i64;
                assert!(
                    seen.contains_key(&step),
                    "run {run_id}: acknowledged step {step} is missing"
                );
            }
            assert!(
                params.contains(format!("p{batch}").as_str()),
                "run {run_id}: parameter p{batch} is missing"
            );
        }
    }
    for path in &ledger.uploaded[from.2..] {
        let run_prefix = path.rsplit_once('/').map_or("", |(prefix, _)| prefix);
        if let Some((run_id, _)) = ledger.runs.iter().find(|(_, prefix)| *prefix == run_prefix) {
            runs_to_read.insert(run_id.clone());
        }
    }
    // Runs: present, once; their artifacts: every listed one whole, every acknowledged listed.
    let acknowledged: HashSet<&String> = ledger.uploaded.iter().collect();
    for run_id in &runs_to_read {
        let answer =
            http.get(format!("{api}/runs/get?run_id={run_id}")).send().await.expect("runs/get");
        assert!(
            answer.status().is_success(),
            "acknowledged run {run_id} is missing: {}",
            answer.status()
        );
        let prefix = &ledger.runs[run_id];
        let listing: Value = http
            .get(format!("{base}/api/2.0/mlflow-artifacts/artifacts?path={prefix}"))
            .send()
            .await
            .expect("list artifacts")
            .json()
            .await
            .expect("listing json");
        let listed: HashSet<String> = listing["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|file| file["path"].as_str())
            .map(|name| format!("{prefix}/{name}"))
            .collect();
        for path in listed.iter().filter(|path| !verified.contains(*path)) {
            let expected =
                ledger.tried.get(path).unwrap_or_else(|| panic!("unexpected artifact {path}"));
            let bytes = http
                .get(format!("{base}/api/2.0/mlflow-artifacts/artifacts/{path}"))
                .send()
                .await
                .expect("download")
                .bytes()
                .await
                .expect("artifact bytes");
            assert_eq!(
                &hex::encode(Sha256::digest(&bytes)),
                expected,
                "artifact {path} is torn ({} bytes)",
                bytes.len()
            );
            whole.push(path.clone());
        }
        for path in acknowledged.iter().filter(|path| path.starts_with(&format!("{prefix}/"))) {
            assert!(listed.contains(*path), "acknowledged artifact {path} is missing");
        }
    }
    let experiment_runs: Value = http
        .post(format!("{api}/runs/search"))
        .json(&json!({"experiment_ids": [ledger_experiment(ledger)], "max_results": 50000}))
        .send()
        .await
        .expect("runs/search")
        .json()
        .await
        .expect("search json");
    let mut ids: HashMap<String, usize> = HashMap::new();
    for run in experiment_runs["runs"].as_array().into_iter().flatten() {
        *ids.entry(run["info"]["run_id"].as_str().unwrap_or_default().to_string()).or_default() +=
            1;
    }
    for run_id in ledger.runs.keys() {
        assert_eq!(
            ids.get(run_id),
            Some(&1),
            "acknowledged run {run_id} is not listed exactly once"
        );
    }
    whole
}

/// The experiment every run is in (its artifact prefix starts with the experiment id).
fn ledger_experiment(ledger: &Ledger) -> String {
    ledger
        .runs
        .values()
        .next()
        .and_then(|prefix| prefix.split('/').next())
        .unwrap_or("0")
        .to_string()
}

async fn crash_safety(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let mut args: Vec<String> = vec!["serve".into(), "--host".into(), "127.0.0.1".into()];
    let port = crate::support::free_port();
    args.extend(["--port".into(), port.to_string(), "--data-dir".into()]);
    args.push(data_dir.display().to_string());
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", data_dir.join("cairn.db").display()),
        Backend::Postgres => {
            let Some(url) = cairn_store::testsuite::postgres_database_url().await else { return };
            args.extend(["--database-url".into(), url.clone()]);
            if let Some((root, options)) = crate::support::s3_artifacts() {
                args.extend(["--artifacts".into(), root]);
                args.extend(["--s3-endpoint".into(), options.endpoint.clone().unwrap_or_default()]);
                args.extend(["--s3-region".into(), options.region.clone().unwrap_or_default()]);
                args.extend([
                    "--s3-access-key-id".into(),
                    options.access_key_id.clone().unwrap_or_default(),
                ]);
                args.extend([
                    "--s3-secret-access-key".into(),
                    options.secret_access_key.clone().unwrap_or_default(),
                ]);
            }
            url
        }
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut server =
        Server { args, child: None, base: base.clone(), log: dir.path().join("server.log") };
    server.start(&http).await;
    let created: Value = http
        .post(format!("{base}/api/2.0/mlflow/experiments/create"))
        .json(&json!({"name": "crash-safety"}))
        .send()
        .await
        .expect("create experiment")
        .json()
        .await
        .expect("experiment json");
    let experiment = created["experiment_id"].as_str().expect("experiment id").to_string();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(88_172_645_463_325_252, |since| since.as_nanos() as u64 | 1);
    eprintln!("crash safety on {backend:?}: seed {seed}");
    let mut random = Random(seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|index| {
            tokio::spawn(writer(
                index,
                reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(),
                base.clone(),
                experiment.clone(),
                ledger.clone(),
                stop.clone(),
                random.next() | 1,
            ))
        })
        .collect();
    let mut ready_ms = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(random.between(200, 1200))).await;
        server.kill();
        ready_ms.push(server.start(&http).await.as_secs_f64() * 1000.0);
        let mut ledger = ledger.lock().await;
        let from = ledger.unchecked;
        let whole = check(&http, &base, &ledger, from, &ledger.verified).await;
        ledger.verified.extend(whole);
        ledger.unchecked = (ledger.runs.len(), ledger.batches.len(), ledger.uploaded.len());
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = 0;
    for writer in writers {
        failures += writer.await.expect("writer");
    }
    let ledger = ledger.lock().await;
    let started = Instant::now();
    check(&http, &base, &ledger, (0, 0, 0), &ledger.verified).await;
    eprintln!("crash safety on {backend:?}: final check {:.1} s", started.elapsed().as_secs_f64());
    server.kill();
    ready_ms.sort_by(f64::total_cmp);
    eprintln!(
        "crash safety on {backend:?}: {KILLS} kills survived; acknowledged {} runs, {} batches ({} metric steps), {} artifacts; {failures} writes cut by kills; ready after restart p50 {:.0} ms, max {:.0} ms",
        ledger.runs.len(),
        ledger.batches.len(),
        ledger.batches.len() * STEPS,
        ledger.uploaded.len(),
        ready_ms[ready_ms.len() / 2],
        ready_ms[ready_ms.len() - 1],
    );
    assert!(
        ledger.batches.len() > KILLS * 5,
        "the clients wrote ({} batches)",
        ledger.batches.len()
    );
    assert!(failures > 0, "kills cut writes in flight (else the kills missed the load)");
    let output = Command::new(CAIRN)
        .args(["admin", "audit", "verify", "--database-url", &database_url, "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("run cairn admin audit verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the audit chain verifies after {KILLS} kills: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_write_on_sqlite() {
    crash_safety(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_write_on_postgres() {
    crash_safety(Backend::Postgres).await;
}
