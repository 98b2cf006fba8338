//! Backups (issue 10): `cairn admin backup` / `restore` round-trip a populated instance.
//!
//! A real `cairn serve` (SQLite + local artifacts, authentication on) is populated through its
//! APIs: the Python `mlflow` client logs runs with parameters, metrics (NaN and infinities
//! among them), tags and artifacts, and registers a model with versions, tags and an alias;
//! the native API adds users, a team, projects, tokens, a policy with an approved request, a
//! comment, a secret and a dataset pushed with the CLI; every change leaves an audit record.
//! A backup is taken while a client writes metrics at full speed, another when it stopped;
//! they are restored into fresh instances — SQLite + local, PostgreSQL + S3, and from there
//! back to SQLite + local — and on each:
//!
//! - every table is dumped from both sides (by this file's own reader, with the engines' own
//!   drivers) and compared row for row, and every artifact's SHA-256 is compared;
//! - the backup names every table of the source's catalog;
//! - a server started on it verifies its audit chain, accepts an old API token, and the
//!   `mlflow` client reads the runs, metrics and artifacts and goes on writing without an id
//!   collision;
//! - the backup taken under load holds every write acknowledged before it started.
//!
//! `refusals` checks what must be refused, with nothing half-restored: a non-empty target, a
//! tampered table file, a tampered artifact, a newer schema, an existing output directory; and
//! that a backup of an older schema is restored and migrated forward.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cairn_artifacts::ArtifactPath;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::compute::Api;

mod dump;
mod instance;

use dump::{Val, artifact_digests, assert_same_dump, dump};
use instance::{Instance, python, verify};

/// Runs a Python script with the mlflow client pointed at `tracking_uri`; returns its last
/// stdout line as JSON.
async fn mlflow_script(
    python: &str,
    tracking_uri: &str,
    token: &str,
    script: &str,
    args: &[String],
) -> Value {
    let python = python.to_string();
    let (uri, token, script) = (tracking_uri.to_string(), token.to_string(), script.to_string());
    let args = args.to_vec();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .env("MLFLOW_TRACKING_URI", uri)
            .env("MLFLOW_TRACKING_TOKEN", token)
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mlflow script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).expect("script prints JSON")
}

const POPULATE_PY: &str = r#"
import json, os, sys, tempfile
import mlflow
from mlflow import MlflowClient

mlflow.set_experiment("backup-exp")
client = MlflowClient()
runs = []
for i in range(3):
    with mlflow.start_run(run_name=f"run-{i}") as run:
        mlflow.log_params({"alpha": str(0.1 * i), "layers": str(i + 1)})
        for step in range(25):
            mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
        mlflow.log_metric("odd", float("nan"))
        mlflow.log_metric("big", float("inf"))
        mlflow.log_metric("small", float("-inf"))
        mlflow.log_metric("precise", 0.1 + 0.2)
        mlflow.set_tags({"team": "churn", "index": str(i), "note": "ünïcode \"quoted\"\nline"})
        mlflow.log_text("hello " * (i + 1), "notes/hello.txt")
        mlflow.log_dict({"i": i}, "config.json")
        model = tempfile.mkdtemp()
        with open(os.path.join(model, "MLmodel"), "w") as handle:
            handle.write("artifact_path: model\n")
        with open(os.path.join(model, "weights.bin"), "wb") as handle:
            handle.write(os.urandom(200_000 + i))
        mlflow.log_artifacts(model, "model")
        runs.append(run.info.run_id)
client.create_registered_model("churn-model", tags={"owner": "alice"}, description="churn")
for run_id in runs[:2]:
    client.create_model_version("churn-model", f"runs:/{run_id}/model", run_id=run_id)
client.set_registered_model_alias("churn-model", "candidate", "2")
client.set_model_version_tag("churn-model", "1", "validated", "yes")
print(json.dumps({"runs": runs}))
"#;

const CHECK_PY: &str = r#"
import json, math, sys
import mlflow
from mlflow import MlflowClient

client = MlflowClient()
runs = sys.argv[1:]
for index, run_id in enumerate(runs):
    run = client.get_run(run_id)
    assert run.data.params["layers"] == str(index + 1), run.data.params
    assert run.data.tags["note"] == "ünïcode \"quoted\"\nline", run.data.tags
    assert math.isnan(run.data.metrics["odd"]), run.data.metrics
    # Like MLflow's own stores, Cairn keeps infinities as the largest finite floats.
    assert run.data.metrics["big"] == sys.float_info.max, run.data.metrics
    assert run.data.metrics["small"] == -sys.float_info.max, run.data.metrics
    assert run.data.metrics["precise"] == 0.1 + 0.2, run.data.metrics
    history = client.get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(25)), history
    assert history[3].value == 1.0 / (4 + index)
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt")
    assert text == "hello " * (index + 1), text
    listed = [f.path for f in client.list_artifacts(run_id, "model")]
    assert listed == ["model/MLmodel", "model/weights.bin"], listed
version = client.get_model_version_by_alias("churn-model", "candidate")
assert version.version == "2", version
assert client.get_model_version("churn-model", "1").tags["validated"] == "yes"
experiment = mlflow.set_experiment("after-restore")
with mlflow.start_run() as run:
    mlflow.log_metric("resumed", 1.0)
    mlflow.log_text("new", "new.txt")
assert run.info.run_id not in runs
new_version = client.create_model_version("churn-model", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
print(json.dumps({"run": run.info.run_id, "experiment": experiment.experiment_id, "version": new_version.version}))
"#;

/// Users, a team, projects, tokens, a policy with an approved request, a comment, a secret and
/// a dataset, through the native API and the CLI. Returns the tokens by user name.
async fn populate_native(api: &Api, admin: &str) -> BTreeMap<String, String> {
    let mut tokens = BTreeMap::new();
    tokens.insert("admin".to_string(), admin.to_string());
    api.ok(
        admin,
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "churn", "description": "churn models"})),
    )
    .await;
    api.ok(admin, "POST", "/api/v1/projects", Some(json!({"name": "spare"}))).await;
    for (name, role) in
        [("alice", "owner"), ("bob", "contributor"), ("rita", "viewer"), ("ravi", "viewer")]
    {
        let password = format!("{name} has a long password");
        api.ok(admin, "POST", "/api/v1/users", Some(json!({"username": name, "password": password, "email": format!("{name}@example.com")}))).await;
        api.ok(
            admin,
            "PUT",
            &format!("/api/v1/projects/churn/members/{name}"),
            Some(json!({"role": role})),
        )
        .await;
        let basic = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{name}:{password}"),
        );
        let created: Value = reqwest::Client::new()
            .post(format!("{}/api/v1/tokens", api.url))
            .header("authorization", format!("Basic {basic}"))
            .json(&json!({"name": "laptop"}))
            .send()
            .await
            .expect("create token")
            .json()
            .await
            .expect("token json");
        tokens.insert(name.to_string(), created["secret"].as_str().expect("a token").to_string());
    }
    for reviewer in ["rita", "ravi"] {
        api.ok(
            admin,
            "PUT",
            &format!("/api/v1/users/{reviewer}/site-role"),
            Some(json!({"site_role": "governance-reviewer"})),
        )
        .await;
    }
    api.ok(admin, "POST", "/api/v1/teams", Some(json!({"name": "ds-team"}))).await;
    api.ok(admin, "PUT", "/api/v1/teams/ds-team/members/bob", None).await;
    api.ok(admin, "PUT", "/api/v1/projects/spare/teams/ds-team", Some(json!({"role": "viewer"})))
        .await;
    tokens
}

/// The governance part, after the mlflow client registered `churn-model` v1 and v2: a policy on
/// alias `champion`, a promotion request approved by two reviewers, a model card, a comment.
async fn populate_governance(api: &Api, tokens: &BTreeMap<String, String>, run_id: &str) {
    let (alice, rita, ravi) = (&tokens["alice"], &tokens["rita"], &tokens["ravi"]);
    let v1 = "/p/churn/api/v1";
    api.ok(
        alice,
        "POST",
        &format!("{v1}/policies"),
        Some(
            json!({"name": "champion-gate", "target": "alias:champion", "rules": {"approvals": 2}}),
        ),
    )
    .await;
    api.ok(
        alice,
        "PUT",
        &format!("{v1}/models/churn-model/versions/1/card"),
        Some(json!({"intended_use": "churn scoring"})),
    )
    .await;
    let promoted = api
        .ok(
            alice,
            "POST",
            &format!("{v1}/models/churn-model/versions/1/promote"),
            Some(json!({"alias": "champion", "comment": "first"})),
        )
        .await;
    let request = promoted["request"]["id"].as_i64().expect("an approval request");
    api.ok(
        rita,
        "POST",
        &format!("/api/v1/approvals/{request}/approve"),
        Some(json!({"comment": "ok"})),
    )
    .await;
    let approved =
        api.ok(ravi, "POST", &format!("/api/v1/approvals/{request}/approve"), None).await;
    assert_eq!(approved["state"], "approved", "{approved}");
    api.ok(
        alice,
        "POST",
        "/api/v1/projects/churn/comments",
        Some(json!({"target": format!("run:{run_id}"), "body": "nice run @bob"})),
    )
    .await;
    api.ok(
        alice,
        "PUT",
        "/api/v1/projects/churn/secrets/API_KEY",
        Some(json!({"value": "s3cr3t"})),
    )
    .await;
}

fn push_dataset(url: &str, token: &str) {
    let data = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from("x,label\n");
    for row in 0..200 {
        csv.push_str(&format!("{},{}\n", row as f64 * 0.25, row % 2));
    }
    std::fs::write(data.path().join("train.csv"), csv).expect("write csv");
    std::fs::write(data.path().join("README.txt"), "churn data").expect("write readme");
    let output = crate::compute::cairn(
        url,
        token,
        &[
            "dataset",
            "push",
            "churn",
            data.path().to_str().unwrap(),
            "--project",
            "churn",
            "-m",
            "v1",
        ],
    );
    assert!(output.status.success(), "dataset push: {}", String::from_utf8_lossy(&output.stderr));
}

fn read_manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"))
        .expect("manifest json")
}

fn total_rows(manifest: &Value) -> u64 {
    manifest["tables"].as_array().unwrap().iter().map(|table| table["rows"].as_u64().unwrap()).sum()
}

/// Backs `source` up into `out`; asserts success and returns the manifest.
fn backup(source: &Instance, out: &Path) -> Value {
    let started = Instant::now();
    let (ok, stdout, stderr) = source.admin(&["backup", "--out", out.to_str().unwrap()]);
    assert!(ok, "backup failed: {stdout}\n{stderr}");
    assert!(stderr.contains("backup: table runs:"), "progress on stderr: {stderr}");
    let manifest = read_manifest(out);
    eprintln!(
        "backup of {} rows and {} artifacts ({} bytes) in {:.2} s: {}",
        total_rows(&manifest),
        manifest["artifacts"]["count"],
        manifest["artifacts"]["bytes"],
        started.elapsed().as_secs_f64(),
        stdout.trim()
    );
    manifest
}

/// Restores `from` into `target`; asserts success.
fn restore(target: &Instance, from: &Path) {
    let started = Instant::now();
    let (ok, stdout, stderr) = target.admin(&["restore", "--from", from.to_str().unwrap()]);
    assert!(ok, "restore failed: {stdout}\n{stderr}");
    eprintln!("restore in {:.2} s: {}", started.elapsed().as_secs_f64(), stdout.trim());
}

/// Compares `source` and `target` table by table and object by object.
async fn assert_same_instance(source: &Instance, target: &Instance, label: &str) {
    assert_same_dump(&dump(&source.database_url).await, &dump(&target.database_url).await, label);
    let (left, right) =
        (artifact_digests(&source.artifacts()).await, artifact_digests(&target.artifacts()).await);
    assert!(!left.is_empty());
    assert_eq!(left, right, "{label}: every artifact with its digest");
}

/// On a server started on a restored instance: the audit chain verifies, old tokens work, the
/// mlflow client reads and writes, and new rows get fresh ids.
async fn check_restored(
    python: &str,
    target: &Instance,
    tokens: &BTreeMap<String, String>,
    runs: &[String],
    label: &str,
) {
    let server = target.serve().await;
    let api = Api::new(server.url.clone());
    let me = api.ok(&tokens["alice"], "GET", "/api/v1/me", None).await;
    assert_eq!(me["actor"], "alice", "{label}: an old token authenticates: {me}");
    let checked =
        mlflow_script(python, &format!("{}/p/churn", server.url), &tokens["alice"], CHECK_PY, runs)
            .await;
    assert_eq!(checked["version"], "3", "{label}: {checked}");
    api.ok(&tokens["admin"], "POST", "/api/v1/projects", Some(json!({"name": "after-restore"})))
        .await;
    api.ok(
        &tokens["admin"],
        "POST",
        "/api/v1/users",
        Some(json!({"username": "newcomer", "service_account": true})),
    )
    .await;
    api.ok(
        &tokens["bob"],
        "POST",
        "/api/v1/projects/churn/comments",
        Some(json!({"target": "project", "body": "after the restore"})),
    )
    .await;
    let chain = api.ok(&tokens["admin"], "GET", "/api/v1/audit-chain", None).await;
    assert_eq!(chain["intact"], true, "{label}: {chain}");
    drop(server);
    let (ok, stdout, stderr) = target.admin(&["audit", "verify"]);
    assert!(ok && stdout.contains("audit chain intact"), "{label}: {stdout}{stderr}");
}

/// Logs metric batches to `run_id` until stopped; returns the batches acknowledged.
async fn writer(
    url: String,
    token: String,
    run_id: String,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<std::sync::Mutex<Vec<(usize, Instant)>>>,
) {
    let http = reqwest::Client::new();
    let mut batch = 0;
    while !stop.load(Ordering::Relaxed) {
        let metrics: Vec<Value> = (0..10)
            .map(|offset| json!({"key": "load", "value": offset as f64, "timestamp": 1_700_000_000_000_i64, "step": batch * 10 + offset}))
            .collect();
        let answer = http
            .post(format!("{url}/api/2.0/mlflow/runs/log-batch"))
            .bearer_auth(&token)
            .json(&json!({"run_id": run_id, "metrics": metrics}))
            .send()
            .await
            .expect("log-batch");
        assert!(answer.status().is_success(), "log-batch: {}", answer.status());
        acknowledged.lock().unwrap().push((batch, Instant::now()));
        batch += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_restore_round_trip_across_backends() {
    let Some(python) = python() else { return };
    let started = Instant::now();
    let source = Instance::sqlite();
    let server = source.serve().await;
    let admin = std::fs::read_to_string(source.data_dir.join("bootstrap-admin-token"))
        .expect("bootstrap token")
        .trim()
        .to_string();
    let api = Api::new(server.url.clone());
    let tokens = populate_native(&api, &admin).await;
    let populated = mlflow_script(
        &python,
        &format!("{}/p/churn", server.url),
        &tokens["alice"],
        POPULATE_PY,
        &[],
    )
    .await;
    let runs: Vec<String> = populated["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run.as_str().unwrap().to_string())
        .collect();
    populate_governance(&api, &tokens, &runs[0]).await;
    let url = server.url.clone();
    let bob = tokens["bob"].clone();
    tokio::task::spawn_blocking(move || push_dataset(&url, &bob)).await.expect("join");

    // A backup while a client writes at full speed.
    let experiment = api
        .ok(
            &tokens["bob"],
            "GET",
            "/p/churn/api/2.0/mlflow/experiments/get-by-name?experiment_name=backup-exp",
            None,
        )
        .await;
    let experiment_id = experiment["experiment"]["experiment_id"].as_str().unwrap().to_string();
    let created = api
        .ok(
            &tokens["bob"],
            "POST",
            "/p/churn/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": experiment_id})),
        )
        .await;
    let load_run = created["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writing = tokio::spawn(writer(
        server.url.clone(),
        tokens["bob"].clone(),
        load_run.clone(),
        stop.clone(),
        acknowledged.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backups = tempfile::tempdir().expect("tempdir");
    let under_load = backups.path().join("under-load");
    let backup_started = Instant::now();
    // The writer runs on the runtime's other thread while this one waits for the backup.
    let under_load_manifest = backup(&source, &under_load);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writing.await.expect("writer");
    let before_backup: Vec<usize> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < backup_started)
        .map(|(batch, _)| *batch)
        .collect();
    let total_batches = acknowledged.lock().unwrap().len();
    assert!(total_batches > before_backup.len(), "the client kept writing during the backup");

    // Every table of the catalog is in the backup.
    let catalog: Vec<String> = dump(&source.database_url).await.into_keys().collect();
    let mut backed_up: Vec<String> = under_load_manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|table| table["name"].as_str().unwrap().to_string())
        .collect();
    backed_up.sort();
    assert_eq!(backed_up, catalog, "the backup holds every table of the catalog");

    // A quiet backup, compared with the source row for row.
    let quiet = backups.path().join("quiet");
    let manifest = backup(&source, &quiet);
    assert!(total_rows(&manifest) > 500, "a populated instance: {} rows", total_rows(&manifest));
    let source_dump = dump(&source.database_url).await;
    for table in [
        "users",
        "api_tokens",
        "teams",
        "team_members",
        "project_teams",
        "registered_models",
        "model_versions",
        "registered_model_aliases",
        "model_version_tags",
        "policies",
        "approval_requests",
        "approval_decisions",
        "model_cards",
        "comments",
        "comment_mentions",
        "secrets",
        "project_datasets",
        "project_dataset_versions",
        "metrics",
        "params",
        "tags",
        "audit_events",
    ] {
        assert!(!source_dump[table].1.is_empty(), "the source has {table} rows");
    }
    let (ok, stdout, stderr) = verify(&quiet);
    assert!(ok && stdout.contains("backup intact"), "{stdout}{stderr}");
    drop(server);

    // SQLite + local → SQLite + local.
    let target = Instance::sqlite();
    restore(&target, &quiet);
    assert_same_instance(&source, &target, "sqlite to sqlite").await;
    check_restored(&python, &target, &tokens, &runs, "sqlite to sqlite").await;

    // The backup taken under load restores into a consistent instance holding every write
    // acknowledged before it began.
    let loaded = Instance::sqlite();
    restore(&loaded, &under_load);
    let loaded_dump = dump(&loaded.database_url).await;
    let (columns, metric_rows) = &loaded_dump["metrics"];
    let (run_column, key_column, step_column) = (
        columns.iter().position(|c| c == "run_uuid").unwrap(),
        columns.iter().position(|c| c == "key").unwrap(),
        columns.iter().position(|c| c == "step").unwrap(),
    );
    let steps: std::collections::BTreeSet<i64> = metric_rows
        .iter()
        .filter(|row| {
            row[run_column] == Val::Text(load_run.clone())
                && row[key_column] == Val::Text("load".into())
        })
        .map(|row| match row[step_column] {
            Val::Int(step) => step,
            _ => -1,
        })
        .collect();
    for batch in &before_backup {
        for offset in 0..10 {
            assert!(
                steps.contains(&((batch * 10 + offset) as i64)),
                "acknowledged batch {batch} is in the backup"
            );
        }
    }
    assert_eq!(steps.len() % 10, 0, "batches are whole: {} steps", steps.len());
    let (ok, stdout, _) = loaded.admin(&["audit", "verify"]);
    assert!(ok, "the backup under load has an intact audit chain: {stdout}");
    eprintln!(
        "backup under load: {} of {total_batches} batches, {} acknowledged before it began",
        steps.len() / 10,
        before_backup.len()
    );

    // SQLite + local → PostgreSQL + S3, then PostgreSQL + S3 → SQLite + local.
    let Some(cluster) = Instance::postgres_s3().await else { return };
    restore(&cluster, &quiet);
    assert_same_instance(&source, &cluster, "sqlite to postgres").await;
    check_restored(&python, &cluster, &tokens, &runs, "sqlite to postgres").await;
    let from_cluster = backups.path().join("from-cluster");
    backup(&cluster, &from_cluster);
    let laptop = Instance::sqlite();
    restore(&laptop, &from_cluster);
    assert_same_instance(&cluster, &laptop, "postgres to sqlite").await;
    let (ok, stdout, _) = laptop.admin(&["audit", "verify"]);
    assert!(ok && stdout.contains("audit chain intact"), "postgres to sqlite: {stdout}");
    eprintln!("backup round trips done in {:.1} s", started.elapsed().as_secs_f64());
}

/// Builds a small instance in-process (users, tokens, a run, an artifact) and backs it up.
async fn small_backup(dir: &Path) -> (Instance, PathBuf) {
    let source = Instance::sqlite();
    let mut config = cairn::Config::embedded(&source.data_dir);
    config.auth_required = true;
    let app = cairn::App::build(&config).await.expect("build");
    let system = cairn_domain::audit::RequestContext::system();
    app.services.identity.bootstrap(&system, "admin").await.unwrap().unwrap();
    app.services.projects.create(&system, "churn", Some("churn models"), None).await.unwrap();
    let artifact = ArtifactPath::parse("1/abc/artifacts/model.bin").unwrap();
    let body =
        futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7_u8; 5000]))]);
    source.artifacts().put_stream(&artifact, body).await.expect("put");
    app.store.close().await;
    let out = dir.join("small");
    backup(&source, &out);
    (source, out)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Asserts a restore into a fresh instance fails with `expected` in its message and leaves
/// neither rows nor objects behind.
async fn assert_refused(from: &Path, expected: &str) {
    let target = Instance::sqlite();
    let (ok, stdout, stderr) = target.admin(&["restore", "--from", from.to_str().unwrap()]);
    assert!(!ok, "restore of {from:?} must fail: {stdout}");
    assert!(stderr.contains(expected), "the error says '{expected}': {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if target.data_dir.join("cairn.db").exists() {
        let users = dump(&target.database_url).await.get("users").map_or(0, |(_, rows)| rows.len());
        assert_eq!(users, 0, "nothing was restored");
    }
    assert!(artifact_digests(&target.artifacts()).await.is_empty(), "no object was restored");
}

fn rewrite_manifest(dir: &Path, change: impl FnOnce(&mut Value)) {
    let mut manifest = read_manifest(dir);
    change(&mut manifest);
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest).unwrap())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_nothing_half_restored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, good) = small_backup(dir.path()).await;

    // The output directory must be new or empty.
    let (ok, _, stderr) = source.admin(&["backup", "--out", good.to_str().unwrap()]);
    assert!(!ok && stderr.contains("is not empty"), "{stderr}");

    // A non-empty target database is refused and left as it was.
    let occupied = Instance::sqlite();
    let (ok, _, stderr) = occupied.admin(&["user", "create", "somebody", "--service-account"]);
    assert!(ok, "{stderr}");
    let before = dump(&occupied.database_url).await;
    let (ok, _, stderr) = occupied.admin(&["restore", "--from", good.to_str().unwrap()]);
    assert!(!ok && stderr.contains("already holds data ("), "{stderr}");
    assert!(stderr.contains("users: 1 rows"), "{stderr}");
    assert_same_dump(&before, &dump(&occupied.database_url).await, "refused target");
    assert!(artifact_digests(&occupied.artifacts()).await.is_empty());

    // A tampered table file: verify and restore both name it.
    let tampered = dir.path().join("tampered-table");
    copy_dir(&good, &tampered);
    let users = tampered.join("tables/users.jsonl");
    let text = std::fs::read_to_string(&users).unwrap().replace("\"admin\"", "\"admim\"");
    std::fs::write(&users, text).unwrap();
    let (ok, _, stderr) = verify(&tampered);
    assert!(!ok && stderr.contains("table file tables/users.jsonl does not match"), "{stderr}");
    assert_refused(&tampered, "table file tables/users.jsonl does not match").await;

    // A tampered artifact.
    let tampered = dir.path().join("tampered-artifact");
    copy_dir(&good, &tampered);
    std::fs::write(tampered.join("artifacts/1/abc/artifacts/model.bin"), vec![8_u8; 5000]).unwrap();
    let (ok, _, stderr) = verify(&tampered);
    assert!(
        !ok && stderr.contains("artifact 1/abc/artifacts/model.bin does not match"),
        "{stderr}"
    );
    assert_refused(&tampered, "artifact 1/abc/artifacts/model.bin does not match").await;

    // Rows that fail on insert (a duplicated key, digests made to match) roll back everything.
    let duplicated = dir.path().join("duplicated-row");
    copy_dir(&good, &duplicated);
    let users = duplicated.join("tables/users.jsonl");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{text}{text}")).unwrap();
    let (size, sha256) = (
        std::fs::metadata(&users).unwrap().len(),
        hex::encode(Sha256::digest(std::fs::read(&users).unwrap())),
    );
    rewrite_manifest(&duplicated, |manifest| {
        let entry = manifest["tables"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|table| table["name"] == "users")
            .unwrap();
        let rows = entry["rows"].as_u64().unwrap();
        entry["rows"] = json!(rows * 2);
        entry["bytes"] = json!(size);
        entry["sha256"] = json!(sha256);
    });
    assert_refused(&duplicated, "restoring table users").await;

    // A newer schema, a path outside the backup, and a directory that is no backup.
    let newer = dir.path().join("newer");
    copy_dir(&good, &newer);
    rewrite_manifest(&newer, |manifest| manifest["schema_version"] = json!(9999));
    assert_refused(&newer, "schema version 9999 is newer than this cairn's").await;
    let escaping = dir.path().join("escaping");
    copy_dir(&good, &escaping);
    rewrite_manifest(&escaping, |manifest| {
        manifest["artifacts"]["objects"][0]["path"] = json!("../../etc/passwd")
    });
    assert_refused(&escaping, "is not a valid artifact path").await;
    assert_refused(dir.path(), "a Cairn backup?").await;

    // An older schema is restored as it was, then migrated forward.
    let old = Instance::sqlite();
    std::fs::create_dir_all(&old.data_dir).unwrap();
    let store =
        cairn_store::Store::connect(&old.database_url, &cairn_store::StoreOptions::default())
            .await
            .unwrap();
    let latest = cairn_store::Store::latest_schema_version();
    store.migrate_to(latest - 1).await.unwrap();
    let mut connection = sqlx::SqliteConnection::connect(&old.database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO users (username, site_role, created_at) VALUES ('veteran', 'member', 1)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    store.close().await;
    let old_backup = dir.path().join("old");
    let manifest = backup(&old, &old_backup);
    assert_eq!(
        manifest["schema_version"],
        json!(latest - 1),
        "a backup leaves the source's schema alone"
    );
    let target = Instance::sqlite();
    let (ok, stdout, stderr) = target.admin(&["restore", "--from", old_backup.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("migrated forward through [{latest}]")), "{stdout}");
    let restored = dump(&target.database_url).await;
    assert!(restored["users"].1.iter().any(|row| row.contains(&Val::Text("veteran".into()))));
}
