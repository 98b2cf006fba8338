//! The audit log end to end: every mutation through the MLflow surface is recorded with its
//! request id, `cairn admin audit verify` finds a record edited in the database, and a server
//! killed with SIGKILL under load leaves a chain that verifies with every acknowledged write in it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use sqlx::{AnyConnection, Connection, Executor};

use crate::support::{Backend, TestApp};

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// Runs `cairn admin audit verify` against a database; returns (success, stdout).
fn verify(database_url: &str, data_dir: &std::path::Path) -> (bool, String) {
    let output = Command::new(CAIRN)
        .args(["admin", "audit", "verify", "--database-url", database_url, "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("run cairn admin audit verify");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn tamper_detection(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let api = "/api/2.0/mlflow";
    let (_, body) = app
        .post(&format!("{api}/experiments/create"), serde_json::json!({"name": "audited"}))
        .await;
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    let (_, body) = app
        .post(&format!("{api}/runs/create"), serde_json::json!({"experiment_id": experiment_id}))
        .await;
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (status, _) = app
        .post(
            &format!("{api}/runs/log-batch"),
            serde_json::json!({"run_id": run_id, "params": [{"key": "lr", "value": "0.1"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let request = axum::http::Request::put(format!(
        "/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/a.txt"
    ))
    .header("x-request-id", "upload-42")
    .body(axum::body::Body::from("hello"))
    .unwrap();
    assert_eq!(app.request(request).await.0, StatusCode::OK);

    let records = app.app.store.audit_records(0, i64::MIN, 100).await.expect("records");
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["experiment.create", "run.create", "run.log_batch", "artifact.put"]);
    assert!(records.iter().all(|r| r.actor == "anonymous" && r.request_id.is_some()));
    assert_eq!(
        records[3].request_id.as_deref(),
        Some("upload-42"),
        "the caller's request id is kept"
    );
    assert!(
        records[3]
            .details
            .contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        "sha256 of the upload"
    );

    let (intact, stdout) = verify(&app.database_url, &app.data_dir);
    assert!(intact, "{stdout}");
    assert!(stdout.contains("4 records verified"), "{stdout}");

    let mut connection = AnyConnection::connect(&app.database_url).await.expect("connect");
    connection
        .execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
        .await
        .expect("tamper");
    connection.close().await.ok();
    let (intact, stdout) = verify(&app.database_url, &app.data_dir);
    assert!(!intact, "a tampered chain must fail: {stdout}");
    assert!(stdout.contains("BROKEN at record 2"), "{stdout}");
}

#[tokio::test]
async fn tampering_is_detected_on_sqlite() {
    sqlx::any::install_default_drivers();
    tamper_detection(Backend::Sqlite).await;
}

#[tokio::test]
async fn tampering_is_detected_on_postgres() {
    sqlx::any::install_default_drivers();
    tamper_detection(Backend::Postgres).await;
}

fn start_server(port: u16, database_url: &str, data_dir: &std::path::Path) -> Child {
    Command::new(CAIRN)
        .args(["serve", "--port", &port.to_string(), "--database-url", database_url, "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cairn serve")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cairn did not become ready at {base}");
}

async fn crash_under_load(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("cairn.db").display()),
        Backend::Postgres => match cairn_store::testsuite::postgres_database_url().await {
            Some(url) => url,
            None => return,
        },
    };
    let port = crate::support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start_server(port, &database_url, dir.path());
    wait_healthy(&client, &base).await;
    let api = format!("{base}/api/2.0/mlflow");
    let run: serde_json::Value = client
        .post(format!("{api}/runs/create"))
        .json(&serde_json::json!({"experiment_id": "0"}))
        .send()
        .await
        .expect("create run")
        .json()
        .await
        .expect("json");
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();

    // Four writers set uniquely named tags until the server dies under them.
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, api, run_id) = (client.clone(), api.clone(), run_id.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for index in 0.. {
                let key = format!("w{writer}-{index}");
                let sent = client
                    .post(format!("{api}/runs/set-tag"))
                    .json(&serde_json::json!({"run_id": run_id, "key": key, "value": "v"}))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => acknowledged.push(key),
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    assert!(acknowledged.len() > 20, "the load ran ({} writes)", acknowledged.len());

    // Restart on the same data, then check the chain and that every acknowledged write is in it.
    let mut server = start_server(port, &database_url, dir.path());
    wait_healthy(&client, &base).await;
    server.kill().expect("stop");
    server.wait().expect("reap");
    let (intact, stdout) = verify(&database_url, dir.path());
    assert!(intact, "chain must verify after a crash: {stdout}");
    let output = Command::new(CAIRN)
        .args([
            "admin",
            "audit",
            "export",
            "--format",
            "jsonl",
            "--database-url",
            &database_url,
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("export");
    assert!(output.status.success());
    let exported = String::from_utf8_lossy(&output.stdout);
    let mut audited_keys = std::collections::HashSet::new();
    for line in exported.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("json line");
        if record["action"] == "run.log_batch" {
            for key in record["details"]["tags"].as_array().expect("tags") {
                audited_keys.insert(key.as_str().unwrap().to_string());
            }
        }
    }
    let missing: Vec<_> = acknowledged.iter().filter(|key| !audited_keys.contains(*key)).collect();
    assert!(missing.is_empty(), "acknowledged writes without an audit record: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_load_keeps_the_chain_on_sqlite() {
    crash_under_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_load_keeps_the_chain_on_postgres() {
    crash_under_load(Backend::Postgres).await;
}
