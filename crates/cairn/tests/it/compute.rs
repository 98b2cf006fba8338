//! Central compute end to end, over a real socket: an admin publishes an environment and tiers;
//! a contributor pushes project files with `cairn push` and runs a training script that uses
//! the real `mlflow` client as a job; the run appears with params, metrics, artifacts, outputs,
//! its log and lineage tags; a secret reaches the job but never a log or an answer; a long job
//! is cancelled; jobs over the tier's memory or time are stopped with the reason; a quota
//! queues a job with its reason; the run is reproduced. Ray and schedules have their own tests.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::rbac::fixture;
use crate::support::{Backend, TestApp};

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// The training script the jobs run: it resumes the run Cairn created, logs a param, a metric
/// history and an artifact with the `mlflow` client, prints a digest of the secret it was given,
/// and leaves a file in its outputs directory.
const TRAIN_PY: &str = r#"
import hashlib, os, sys
import mlflow

print("training starts", flush=True)
secret = os.environ.get("API_KEY", "")
print("secret sha256", hashlib.sha256(secret.encode()).hexdigest(), flush=True)
lr = sys.argv[sys.argv.index("--lr") + 1] if "--lr" in sys.argv else "0.1"
given_run = os.environ["MLFLOW_RUN_ID"]
with mlflow.start_run() as run:
    assert run.info.run_id == given_run
    mlflow.log_param("lr", lr)
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    with open("data/input.txt") as handle:
        mlflow.log_text(handle.read(), "echo/input.txt")
with open(os.path.join(os.environ["CAIRN_OUTPUTS_DIR"], "model.txt"), "w") as handle:
    handle.write("weights")
print("training done", flush=True)
"#;

pub(crate) struct Api {
    pub(crate) url: String,
    client: reqwest::Client,
}

impl Api {
    pub(crate) fn new(url: String) -> Self {
        Self { url, client: reqwest::Client::new() }
    }

    pub(crate) async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("server reachable");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub(crate) async fn ok(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = self.call(token, method, path, body).await;
        assert!((200..300).contains(&status), "{method} {path} -> {status} {answer}");
        answer
    }

    /// Waits until the job reaches a terminal state (or `state`), failing after `limit`.
    pub(crate) async fn wait_job(
        &self,
        token: &str,
        project: &str,
        id: i64,
        until: &[&str],
        limit: Duration,
    ) -> Value {
        let started = Instant::now();
        loop {
            let job =
                self.ok(token, "GET", &format!("/api/v1/projects/{project}/jobs/{id}"), None).await;
            let state = job["state"].as_str().unwrap_or_default().to_string();
            if until.contains(&state.as_str()) {
                return job;
            }
            assert!(started.elapsed() < limit, "job {id} still {state} after {limit:?}: {job}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The whole log of a job.
    pub(crate) async fn log(&self, token: &str, project: &str, id: i64) -> String {
        use base64::Engine;
        let mut offset = 0;
        let mut text = Vec::new();
        loop {
            let chunk = self
                .ok(
                    token,
                    "GET",
                    &format!("/api/v1/projects/{project}/jobs/{id}/logs?offset={offset}"),
                    None,
                )
                .await;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(chunk["data"].as_str().unwrap())
                .unwrap();
            text.extend_from_slice(&bytes);
            offset = chunk["next_offset"].as_u64().unwrap();
            if bytes.is_empty() || chunk["complete"] == json!(true) {
                return String::from_utf8_lossy(&text).to_string();
            }
        }
    }
}

pub(crate) fn token<'a>(tokens: &'a [(&'static str, String)], who: &str) -> &'a str {
    &tokens.iter().find(|(name, _)| *name == who).unwrap().1
}

pub(crate) fn cairn(url: &str, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(CAIRN)
        .args(args)
        .env("CAIRN_SERVER", url)
        .env("CAIRN_TOKEN", token)
        .env_remove("CAIRN_PROJECT")
        .output()
        .expect("run cairn")
}

/// Publishes the `py` environment (mlflow-skinny) and approves it.
pub(crate) async fn publish_environment(api: &Api, admin: &str) {
    let definition = json!({"requirements": ["mlflow-skinny==3.17.2"]});
    api.ok(
        admin,
        "POST",
        "/api/v1/environments",
        Some(json!({"name": "py", "description": "training", "definition": definition})),
    )
    .await;
}

pub(crate) async fn approve_environment(api: &Api, admin: &str) {
    let revision = api
        .ok(
            admin,
            "POST",
            "/api/v1/environments/py/state",
            Some(json!({"revision": 1, "state": "approved"})),
        )
        .await;
    assert_eq!(revision["state"], "approved");
}

pub(crate) fn write_project(dir: &std::path::Path, input: &str) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("train.py"), TRAIN_PY).unwrap();
    std::fs::write(dir.join("data/input.txt"), input).unwrap();
    std::fs::write(dir.join("data/big.bin"), vec![7_u8; 200_000]).unwrap();
    std::fs::create_dir_all(dir.join("__pycache__")).unwrap();
    std::fs::write(dir.join("__pycache__/skip.pyc"), b"never uploaded").unwrap();
}

/// One secrets key for every replica of a test (as an operator gives every replica one key).
pub(crate) fn test_secrets_key() -> String {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(cairn_service::compute::SecretKey::generate_base64).clone()
}

fn settings() -> cairn::ComputeSettings {
    cairn::ComputeSettings {
        tick: Duration::from_millis(100),
        kill_grace: Duration::from_secs(2),
        secrets_key: Some(test_secrets_key()),
        ..cairn::ComputeSettings::default()
    }
}

async fn compute_end_to_end(backend: Backend, s3: bool) {
    let Some(app) = TestApp::with_compute(backend, s3, settings()).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, owner, contributor, viewer, outsider) = (
        token(&f.tokens, "admin"),
        token(&f.tokens, "owner"),
        token(&f.tokens, "contributor"),
        token(&f.tokens, "viewer"),
        token(&f.tokens, "outsider"),
    );

    // The catalogue: only admins write it; a draft environment cannot run.
    let (status, _) = api
        .call(owner, "POST", "/api/v1/environments", Some(json!({"name": "x", "definition": {}})))
        .await;
    assert_eq!(status, 403);
    publish_environment(&api, admin).await;
    for (name, memory_mib, max_runtime_s) in
        [("small", 1024, 300), ("tiny-memory", 96, 300), ("short", 1024, 2)]
    {
        let spec = json!({"cpu": 1.0, "memory_mib": memory_mib, "max_runtime_s": max_runtime_s, "cost_per_hour": 0.5});
        api.ok(admin, "PUT", &format!("/api/v1/tiers/{name}"), Some(json!({"spec": spec}))).await;
    }

    // Project files: `cairn push` uploads only what is new; pycache is skipped.
    let project_dir = tempfile::tempdir().unwrap();
    write_project(project_dir.path(), "first input");
    let dir = project_dir.path().to_str().unwrap();
    let pushed = cairn(&api.url, contributor, &["push", dir, "--project", "churn", "-m", "first"]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let first = api.ok(viewer, "GET", "/api/v1/projects/churn/snapshots/latest", None).await;
    let paths: Vec<&str> =
        first["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["data/big.bin", "data/input.txt", "train.py"]);
    std::fs::write(project_dir.path().join("data/input.txt"), "second input!").unwrap();
    let pushed = cairn(&api.url, contributor, &["push", dir, "--project", "churn", "-m", "second"]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let second = api.ok(viewer, "GET", "/api/v1/projects/churn/snapshots/latest", None).await;
    assert_ne!(first["snapshot"]["digest"], second["snapshot"]["digest"]);
    assert_eq!(second["snapshot"]["new_bytes"], 13, "only the changed file is new: {second}");
    let pulled = tempfile::tempdir().unwrap();
    let first_digest = first["snapshot"]["digest"].as_str().unwrap().to_string();
    let pull = cairn(
        &api.url,
        viewer,
        &[
            "pull",
            pulled.path().to_str().unwrap(),
            "--project",
            "churn",
            "--snapshot",
            &first_digest[..12],
        ],
    );
    assert!(pull.status.success(), "{}", String::from_utf8_lossy(&pull.stderr));
    assert_eq!(
        std::fs::read_to_string(pulled.path().join("data/input.txt")).unwrap(),
        "first input"
    );
    let (status, _) = api.call(outsider, "GET", "/api/v1/projects/churn/snapshots", None).await;
    assert_eq!(status, 403);

    // A secret for the project's jobs: set by the owner, listed by name only.
    let secret = "s3cr3t-value-for-the-job";
    let (status, _) = api
        .call(
            contributor,
            "PUT",
            "/api/v1/projects/churn/secrets/API_KEY",
            Some(json!({"value": secret})),
        )
        .await;
    assert_eq!(status, 403, "contributors do not set project secrets");
    let set = api
        .ok(owner, "PUT", "/api/v1/projects/churn/secrets/API_KEY", Some(json!({"value": secret})))
        .await;
    assert!(!set.to_string().contains(secret));
    let listed = api.ok(viewer, "GET", "/api/v1/projects/churn/secrets", None).await;
    assert_eq!(listed[0]["name"], "API_KEY");
    assert!(!listed.to_string().contains(secret));

    // A draft environment is refused; viewers cannot submit.
    let template = json!({"command": ["python", "train.py", "--lr", "0.05"], "environment": "py", "tier": "small"});
    let (status, answer) =
        api.call(contributor, "POST", "/api/v1/projects/churn/jobs", Some(template.clone())).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer.to_string().contains("approved"), "{answer}");
    approve_environment(&api, admin).await;
    let (status, _) =
        api.call(viewer, "POST", "/api/v1/projects/churn/jobs", Some(template.clone())).await;
    assert_eq!(status, 403);

    // The training job, run and followed from the CLI: exit 0, the log streamed.
    let run = cairn(
        &api.url,
        contributor,
        &[
            "job",
            "run",
            "--project",
            "churn",
            "--env",
            "py",
            "--tier",
            "small",
            "--follow",
            "--",
            "python",
            "train.py",
            "--lr",
            "0.05",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("training done"), "{stdout}");
    assert!(!stdout.contains(secret), "the secret never reaches a log");
    let expected_digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()));
    assert!(stdout.contains(&expected_digest), "the job saw the secret: {stdout}");
    let jobs = api.ok(viewer, "GET", "/api/v1/projects/churn/jobs", None).await;
    let job = jobs[0].clone();
    let job_id = job["id"].as_i64().unwrap();
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["exit_code"], 0);
    assert!(!job.to_string().contains(secret));
    let saved_log = api.log(viewer, "churn", job_id).await;
    assert!(
        saved_log.contains("training starts") && saved_log.contains("training done"),
        "{saved_log}"
    );
    assert!(!saved_log.contains(secret));

    // The run: params, metrics, the artifact the script logged, the outputs, the log, lineage.
    let run_id = job["run_id"].as_str().unwrap().to_string();
    let got = api
        .ok(viewer, "GET", &format!("/p/churn/api/2.0/mlflow/runs/get?run_id={run_id}"), None)
        .await;
    let info = &got["run"]["info"];
    assert_eq!(info["status"], "FINISHED", "{got}");
    let data = &got["run"]["data"];
    assert_eq!(data["params"], json!([{"key": "lr", "value": "0.05"}]));
    assert_eq!(data["metrics"][0]["key"], "loss");
    let tags: std::collections::HashMap<String, String> = data["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| {
            (tag["key"].as_str().unwrap().to_string(), tag["value"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(tags["cairn.job"], job_id.to_string());
    assert_eq!(tags["cairn.snapshot"], second["snapshot"]["digest"].as_str().unwrap());
    assert_eq!(tags["cairn.environment"], "py@1");
    assert_eq!(tags["cairn.tier"], "small");
    assert_eq!(tags["cairn.executor"], "local");
    let history = api
        .ok(
            viewer,
            "GET",
            &format!("/p/churn/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss"),
            None,
        )
        .await;
    assert_eq!(history["metrics"].as_array().unwrap().len(), 3);
    let artifacts =
        |path: &str| format!("/p/churn/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={path}");
    let listed = api.ok(viewer, "GET", &artifacts(""), None).await;
    let names: Vec<&str> =
        listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    for expected in ["cairn", "echo", "outputs"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let experiment = info["experiment_id"].as_str().unwrap();
    let output = reqwest::Client::new()
        .get(format!("{}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/outputs/model.txt", api.url))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(output.text().await.unwrap(), "weights");

    // The job's token was confined to the project and is revoked now that the job ended.
    let audit = app.app.store.audit_records(0, i64::MIN, 10_000).await.unwrap();
    assert!(audit.iter().any(|record| record.action == "secret.read"
        && record.details.contains(&format!("\"job_id\":{job_id}"))));
    assert!(!audit.iter().any(|record| record.details.contains(secret)));

    // Cancel a long job while it runs.
    let sleeper = json!({"command": ["python", "-c", "import time; print('sleeping', flush=True); time.sleep(300)"], "environment": "py", "tier": "small"});
    let long =
        api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(sleeper.clone())).await;
    let long_id = long["id"].as_i64().unwrap();
    api.wait_job(viewer, "churn", long_id, &["running"], Duration::from_secs(120)).await;
    let (status, _) = api
        .call(viewer, "POST", &format!("/api/v1/projects/churn/jobs/{long_id}/cancel"), None)
        .await;
    assert_eq!(status, 403);
    api.ok(contributor, "POST", &format!("/api/v1/projects/churn/jobs/{long_id}/cancel"), None)
        .await;
    let started = Instant::now();
    let cancelled = api
        .wait_job(
            viewer,
            "churn",
            long_id,
            &["cancelled", "failed", "succeeded"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert!(cancelled["reason"].as_str().unwrap().contains("contributor"), "{cancelled}");
    assert!(started.elapsed() < Duration::from_secs(15));

    // Over the tier's memory, over its time: stopped with the reason.
    let hog = json!({"command": ["python", "-c", "x = b'x' * (1024 ** 3); print(len(x))"], "environment": "py", "tier": "tiny-memory"});
    let hog = api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(hog)).await;
    let hog = api
        .wait_job(
            viewer,
            "churn",
            hog["id"].as_i64().unwrap(),
            &["failed", "succeeded", "timed_out", "cancelled"],
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(hog["state"], "failed", "{hog}");
    assert!(hog["reason"].as_str().unwrap().contains("memory limit of 96 MiB"), "{hog}");
    let slow = json!({"command": ["python", "-c", "import time; time.sleep(60)"], "environment": "py", "tier": "short"});
    let slow = api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(slow)).await;
    let slow = api
        .wait_job(
            viewer,
            "churn",
            slow["id"].as_i64().unwrap(),
            &["failed", "succeeded", "timed_out", "cancelled"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(slow["state"], "timed_out", "{slow}");
    assert!(slow["reason"].as_str().unwrap().contains("maximum run time"), "{slow}");
    let slow_run = api
        .ok(
            viewer,
            "GET",
            &format!(
                "/p/churn/api/2.0/mlflow/runs/get?run_id={}",
                slow["run_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(slow_run["run"]["info"]["status"], "FAILED");

    // A quota of one concurrent job for the contributor: the second waits with its reason.
    api.ok(
        admin,
        "PUT",
        "/api/v1/quotas",
        Some(json!({"scope": "user:contributor", "max_jobs": 1})),
    )
    .await;
    let one =
        api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(sleeper.clone())).await;
    let one_id = one["id"].as_i64().unwrap();
    api.wait_job(viewer, "churn", one_id, &["running"], Duration::from_secs(60)).await;
    let two =
        api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(sleeper.clone())).await;
    let two_id = two["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let waiting =
        api.ok(viewer, "GET", &format!("/api/v1/projects/churn/jobs/{two_id}"), None).await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert!(
        waiting["queue_reason"]
            .as_str()
            .unwrap()
            .contains("waiting for quota: user 'contributor' runs 1 of at most 1"),
        "{waiting}"
    );
    api.ok(contributor, "POST", &format!("/api/v1/projects/churn/jobs/{one_id}/cancel"), None)
        .await;
    api.wait_job(viewer, "churn", two_id, &["running"], Duration::from_secs(60)).await;
    api.ok(contributor, "POST", &format!("/api/v1/projects/churn/jobs/{two_id}/cancel"), None)
        .await;
    api.wait_job(viewer, "churn", two_id, &["cancelled"], Duration::from_secs(30)).await;
    api.ok(admin, "PUT", "/api/v1/quotas", Some(json!({"scope": "user:contributor"}))).await;

    // Reproduce: the same snapshot, environment revision and tier, even after a new push.
    std::fs::write(project_dir.path().join("data/input.txt"), "third input").unwrap();
    assert!(cairn(&api.url, contributor, &["push", dir, "--project", "churn"]).status.success());
    let again = api
        .ok(contributor, "POST", &format!("/api/v1/projects/churn/runs/{run_id}/reproduce"), None)
        .await;
    assert_eq!(again["snapshot"], second["snapshot"]["digest"]);
    assert_eq!(again["environment_revision"], 1);
    assert_eq!(again["reproduced_from"], run_id.as_str());
    let again = api
        .wait_job(
            viewer,
            "churn",
            again["id"].as_i64().unwrap(),
            &["succeeded", "failed"],
            Duration::from_secs(180),
        )
        .await;
    assert_eq!(again["state"], "succeeded", "{again}");
    let new_run = api
        .ok(
            viewer,
            "GET",
            &format!(
                "/p/churn/api/2.0/mlflow/runs/get?run_id={}",
                again["run_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let reproduces = new_run["run"]["data"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tag| tag["key"] == "cairn.reproduces")
        .cloned();
    assert_eq!(reproduces.unwrap()["value"], run_id.as_str());
    let (status, _) =
        api.call(outsider, "GET", &format!("/api/v1/projects/churn/jobs/{job_id}"), None).await;
    assert_eq!(status, 403);

    let chain = app.app.store.verify_audit_chain().await.unwrap();
    assert!(matches!(chain, cairn_store::ChainStatus::Intact(_)), "{chain:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compute_end_to_end_on_sqlite() {
    compute_end_to_end(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compute_end_to_end_on_postgres_and_s3() {
    compute_end_to_end(Backend::Postgres, true).await;
}

/// The same training job on a real Ray head (started by the test script): submitted through the
/// Jobs API with the environment's requirements as its runtime environment, its run logged
/// from the cluster, its outputs uploaded back, its log saved; a long job cancelled on Ray.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_run_on_ray() {
    let Some(address) = std::env::var("CAIRN_TEST_RAY_ADDRESS").ok() else {
        assert!(
            !cairn_store::testsuite::services_required(),
            "CAIRN_TEST_RAY_ADDRESS is not set but CAIRN_TEST_REQUIRE_SERVICES=1"
        );
        eprintln!("SKIPPED: Ray job test (set CAIRN_TEST_RAY_ADDRESS to run it)");
        return;
    };
    let compute = cairn::ComputeSettings { ray_address: Some(address), ..settings() };
    let Some(app) = TestApp::with_compute(Backend::Sqlite, false, compute).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, contributor, viewer) =
        (token(&f.tokens, "admin"), token(&f.tokens, "contributor"), token(&f.tokens, "viewer"));
    publish_environment(&api, admin).await;
    approve_environment(&api, admin).await;
    let spec = json!({"cpu": 1.0, "memory_mib": 1024, "max_runtime_s": 600, "executor": "ray"});
    api.ok(admin, "PUT", "/api/v1/tiers/ray-small", Some(json!({"spec": spec}))).await;
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), "ray input");
    let pushed = cairn(
        &api.url,
        contributor,
        &["push", project.path().to_str().unwrap(), "--project", "churn"],
    );
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    api.ok(
        admin,
        "PUT",
        "/api/v1/projects/churn/secrets/API_KEY",
        Some(json!({"value": "ray-secret"})),
    )
    .await;

    let template = json!({"command": ["python", "train.py", "--lr", "0.2"], "environment": "py", "tier": "ray-small"});
    let job = api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(template)).await;
    assert_eq!(job["executor"], "ray");
    let id = job["id"].as_i64().unwrap();
    let job = api
        .wait_job(
            viewer,
            "churn",
            id,
            &["succeeded", "failed", "cancelled", "timed_out"],
            Duration::from_secs(420),
        )
        .await;
    let log = api.log(viewer, "churn", id).await;
    assert_eq!(job["state"], "succeeded", "{job}\n{log}");
    assert!(log.contains("training done"), "{log}");
    assert!(!log.contains("ray-secret"));
    let run_id = job["run_id"].as_str().unwrap();
    let got = api
        .ok(viewer, "GET", &format!("/p/churn/api/2.0/mlflow/runs/get?run_id={run_id}"), None)
        .await;
    assert_eq!(got["run"]["info"]["status"], "FINISHED");
    assert_eq!(got["run"]["data"]["params"], json!([{"key": "lr", "value": "0.2"}]));
    let tags = got["run"]["data"]["tags"].to_string();
    assert!(
        tags.contains("\"cairn.executor\",\"value\":\"ray\"") || tags.contains("ray"),
        "{tags}"
    );
    let experiment = got["run"]["info"]["experiment_id"].as_str().unwrap();
    let output = reqwest::Client::new()
        .get(format!("{}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/outputs/model.txt", api.url))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(output.text().await.unwrap(), "weights");

    let sleeper = json!({"command": ["python", "-c", "import time; print('sleeping', flush=True); time.sleep(300)"], "environment": "py", "tier": "ray-small"});
    let long = api.ok(contributor, "POST", "/api/v1/projects/churn/jobs", Some(sleeper)).await;
    let long_id = long["id"].as_i64().unwrap();
    api.wait_job(viewer, "churn", long_id, &["running"], Duration::from_secs(300)).await;
    api.ok(contributor, "POST", &format!("/api/v1/projects/churn/jobs/{long_id}/cancel"), None)
        .await;
    let cancelled = api
        .wait_job(
            viewer,
            "churn",
            long_id,
            &["cancelled", "failed", "succeeded"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    server.shutdown().await;
}

/// Quotas decided by the dispatcher's claim, on both databases: a team's GPU quota holds a
/// member's job back while another member's job holds the GPUs (with the reason recorded), a
/// project quota counts every member's jobs, and a job that fits overtakes a blocked one.
async fn quotas_by_team_gpus_and_project(backend: Backend) {
    use cairn_domain::compute::{
        EnvironmentDefinition, JobTemplate, Quota, QuotaScope, RevisionState, SnapshotFile,
        TierSpec,
    };
    let Some(app) = TestApp::with_compute(backend, false, settings()).await else { return };
    fixture(&app).await;
    let services = &app.app.services;
    let system = cairn_domain::audit::RequestContext::system();
    let definition = EnvironmentDefinition { python: None, requirements: Vec::new(), image: None };
    services.catalog.create_environment(&system, "bare", "", &definition).await.unwrap();
    services.catalog.set_revision_state(&system, "bare", 1, RevisionState::Approved).await.unwrap();
    for (name, gpus) in [("gpu", 2), ("cpu", 0)] {
        let tier = TierSpec {
            cpu: 1.0,
            memory_mib: 256,
            gpus,
            max_runtime_s: 60,
            cost_per_hour: 0.0,
            executor: None,
        };
        services.catalog.put_tier(&system, name, &tier, true).await.unwrap();
    }
    let content = bytes::Bytes::from_static(b"print(1)\n");
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
    let body = futures::stream::iter([Ok::<_, std::io::Error>(content.clone())]);
    services.files.put_blob(&system, "churn", &sha256, body).await.unwrap();
    let file =
        SnapshotFile { path: "a.py".into(), sha256, size: content.len() as u64, executable: false };
    services.files.create_snapshot(&system, "churn", vec![file], "").await.unwrap();
    services.projects.create_team(&system, "vision").await.unwrap();
    for member in ["owner", "contributor"] {
        services.projects.set_team_user(&system, "vision", member, true).await.unwrap();
    }
    services
        .catalog
        .set_quota(
            &system,
            &Quota { scope: QuotaScope::Team("vision".into()), max_jobs: None, max_gpus: Some(2) },
        )
        .await
        .unwrap();
    let mut contexts = Vec::new();
    for name in ["contributor", "owner"] {
        let principal = services.identity.get_user(name).await.unwrap().principal();
        contexts.push(cairn_domain::audit::RequestContext::user(principal, None));
    }
    let template = |tier: &str| JobTemplate {
        command: vec!["python".into(), "a.py".into()],
        environment: "bare".into(),
        environment_revision: None,
        tier: tier.into(),
        snapshot: None,
        experiment: None,
        run_name: None,
        env: Default::default(),
        datasets: Vec::new(),
    };
    let first = services.jobs.submit(&contexts[0], "churn", &template("gpu")).await.unwrap();
    let second = services.jobs.submit(&contexts[1], "churn", &template("gpu")).await.unwrap();
    let third = services.jobs.submit(&contexts[1], "churn", &template("cpu")).await.unwrap();
    let store = &app.app.store;
    let now = cairn_domain::time::now_millis();
    let claimed = store.claim_next_job("r1", now, now + 60_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, first.id);
    let claimed = store.claim_next_job("r1", now, now + 60_000).await.unwrap().unwrap();
    assert_eq!(claimed.id, third.id, "the CPU job fits and overtakes the blocked GPU job");
    assert!(store.claim_next_job("r1", now, now + 60_000).await.unwrap().is_none());
    let waiting = store.get_job(second.id).await.unwrap();
    assert_eq!(
        waiting.queue_reason.as_deref(),
        Some("waiting for quota: team 'vision' uses 2 of at most 2 GPUs and this job needs 2")
    );
    services
        .catalog
        .set_quota(
            &system,
            &Quota { scope: QuotaScope::Team("vision".into()), max_jobs: None, max_gpus: None },
        )
        .await
        .unwrap();
    services
        .catalog
        .set_quota(
            &system,
            &Quota {
                scope: QuotaScope::Project("churn".into()),
                max_jobs: Some(2),
                max_gpus: None,
            },
        )
        .await
        .unwrap();
    assert!(store.claim_next_job("r1", now, now + 60_000).await.unwrap().is_none());
    let waiting = store.get_job(second.id).await.unwrap();
    assert!(waiting.queue_reason.unwrap().contains("project 'churn' runs 2 of at most 2"));
    let listed = services.catalog.quotas(&system).await.unwrap();
    assert_eq!(
        listed,
        vec![Quota {
            scope: QuotaScope::Project("churn".into()),
            max_jobs: Some(2),
            max_gpus: None
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_by_team_gpus_and_project_on_sqlite() {
    quotas_by_team_gpus_and_project(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_by_team_gpus_and_project_on_postgres() {
    quotas_by_team_gpus_and_project(Backend::Postgres).await;
}

/// The newcomer's path: the embedded defaults without authentication, everything from the CLI
/// with no token — publish an environment and a tier, push files, set a secret from standard
/// input, run the training job and follow it, list what is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_from_the_cli_without_authentication() {
    let Some(app) = TestApp::with_compute_anonymous(settings()).await else { return };
    let server = app.spawn().await;
    let url = server.url();
    let run = |args: &[&str]| {
        let output = cairn(&url, "", args);
        assert!(
            output.status.success(),
            "cairn {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    run(&["env", "create", "py", "-r", "mlflow-skinny==3.17.2", "--description", "training"]);
    run(&["env", "approve", "py", "1"]);
    assert!(run(&["env", "list"]).contains("py  [1:approved]"));
    run(&["tier", "put", "small", "--cpu", "1", "--memory-mib", "1024", "--max-runtime-s", "300"]);
    assert!(run(&["tier", "list"]).contains("small  cpu 1.0  memory 1024 MiB"));
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), "anonymous input");
    run(&["push", project.path().to_str().unwrap(), "--project", "default", "-m", "first"]);
    assert!(run(&["snapshot", "list", "--project", "default"]).contains("first"));
    let mut secret = Command::new(CAIRN)
        .args(["secret", "set", "API_KEY", "--project", "default"])
        .env("CAIRN_SERVER", &url)
        .env_remove("CAIRN_TOKEN")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    secret.stdin.take().unwrap().write_all(b"from-stdin\n").unwrap();
    assert!(secret.wait().unwrap().success());
    assert!(run(&["secret", "list", "--project", "default"]).contains("API_KEY"));
    let followed = run(&[
        "job",
        "run",
        "--project",
        "default",
        "--env",
        "py",
        "--tier",
        "small",
        "--follow",
        "--",
        "python",
        "train.py",
    ]);
    assert!(followed.contains("training done"), "{followed}");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"from-stdin"));
    assert!(
        followed.contains(&digest),
        "the secret from standard input reached the job: {followed}"
    );
    let listed = run(&["job", "list", "--project", "default"]);
    assert!(listed.contains("succeeded"), "{listed}");
    let api = Api::new(url.clone());
    let job = &api.ok("", "GET", "/api/v1/projects/default/jobs", None).await[0];
    let run_id = job["run_id"].as_str().unwrap();
    let got = api.ok("", "GET", &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"), None).await;
    let experiment = got["run"]["info"]["experiment_id"].as_str().unwrap();
    let output = reqwest::get(format!(
        "{url}/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run_id}/artifacts/outputs/model.txt"
    ))
    .await
    .unwrap();
    assert_eq!(output.text().await.unwrap(), "weights", "outputs upload without a token");

    // A graceful shutdown stops the server's local jobs and records them, log included.
    let sleeper = json!({"command": ["python", "-c", "import time; print('sleeping', flush=True); time.sleep(300)"], "environment": "py", "tier": "small"});
    let long = api.ok("", "POST", "/api/v1/projects/default/jobs", Some(sleeper)).await;
    let long_id = long["id"].as_i64().unwrap();
    api.wait_job("", "default", long_id, &["running"], Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.shutdown().await;
    let reopened = app.replica().await;
    let system = cairn_domain::audit::RequestContext::system();
    let stopped = reopened.app.services.jobs.get(&system, "default", long_id).await.unwrap();
    assert_eq!(stopped.state, cairn_domain::compute::JobState::Failed, "{stopped:?}");
    assert_eq!(stopped.reason.as_deref(), Some("the server running the job shut down"));
    let log = reopened.app.services.jobs.logs(&system, "default", long_id, 0).await.unwrap();
    assert!(String::from_utf8_lossy(&log.bytes).contains("sleeping"));
}

/// Key rotation with the admin command: every secret re-sealed under the new key in one
/// transaction; a server still holding the old key then refuses to open them with a reason that
/// says what to do, and a job needing them fails with it instead of running without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_key_rotation() {
    use cairn_domain::compute::SecretScope;
    let compute = cairn::ComputeSettings { secrets_key: None, ..settings() };
    let Some(app) = TestApp::with_compute_anonymous(compute).await else { return };
    let key_file = app.data_dir.join("secrets.key");
    assert!(key_file.is_file(), "the embedded default creates its key file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let system = cairn_domain::audit::RequestContext::system();
    let services = &app.app.services;
    for name in ["API_KEY", "DB_PASSWORD"] {
        services
            .secrets
            .put(&system, &SecretScope::Project("default".into()), name, "value")
            .await
            .unwrap();
    }
    let old_ids: Vec<String> =
        app.app.store.all_sealed_secrets().await.unwrap().into_iter().map(|s| s.key_id).collect();
    let new_key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(new_key.path(), cairn_service::compute::SecretKey::generate_base64()).unwrap();
    let rotate = |expected: &str| {
        let output = Command::new(CAIRN)
            .args([
                "admin",
                "secrets",
                "rotate",
                "--new-key-file",
                new_key.path().to_str().unwrap(),
            ])
            .args(["--data-dir", app.data_dir.to_str().unwrap()])
            .env_remove("CAIRN_SECRETS_KEY")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains(expected), "{stdout}");
    };
    rotate("re-sealed 2 secrets");
    rotate("re-sealed 0 secrets");
    let sealed = app.app.store.all_sealed_secrets().await.unwrap();
    assert!(
        sealed.iter().all(|secret| !old_ids.contains(&secret.key_id)),
        "every secret re-sealed"
    );
    let audit = app.app.store.audit_records(0, i64::MIN, 10_000).await.unwrap();
    assert!(audit.iter().any(|record| record.action == "secret.rotate"));
    // A job of this server (still on the old key) cannot receive them, and says why.
    let (status, _) = app
        .post("/api/v1/environments", serde_json::json!({"name": "bare", "definition": {}}))
        .await;
    assert_eq!(status, 201);
    app.post(
        "/api/v1/environments/bare/state",
        serde_json::json!({"revision": 1, "state": "approved"}),
    )
    .await;
    let tier = serde_json::json!({"spec": {"cpu": 1.0, "memory_mib": 256, "max_runtime_s": 60}});
    let request = axum::http::Request::put("/api/v1/tiers/t")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(tier.to_string()))
        .unwrap();
    assert_eq!(app.request(request).await.0, 200);
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), "x");
    let server = app.spawn().await;
    assert!(
        cairn(
            &server.url(),
            "",
            &["push", project.path().to_str().unwrap(), "--project", "default"]
        )
        .status
        .success()
    );
    let api = Api::new(server.url());
    let job = api
        .ok("", "POST", "/api/v1/projects/default/jobs", Some(json!({"command": ["python", "-c", "print(1)"], "environment": "bare", "tier": "t"})))
        .await;
    let job = api
        .wait_job(
            "",
            "default",
            job["id"].as_i64().unwrap(),
            &["failed", "succeeded"],
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["reason"].as_str().unwrap().contains("rotate the secrets or start with that key"),
        "{job}"
    );
    server.shutdown().await;
}
