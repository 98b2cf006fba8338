//! The real `mlflow` Python client against Cairn over a real socket: the pytest scenarios in
//! `tests/mlflow/`, once on SQLite with local artifacts and once on PostgreSQL with S3.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{Backend, TestApp};

fn python() -> Option<String> {
    match std::env::var("CAIRN_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) if cairn_store::testsuite::services_required() => {
            panic!("CAIRN_TEST_PYTHON is not set but CAIRN_TEST_REQUIRE_SERVICES=1")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED: mlflow client scenarios (set CAIRN_TEST_PYTHON to a venv with mlflow)"
            );
            None
        }
    }
}

async fn run_scenarios(app: TestApp, label: &str) {
    let Some(python) = python() else { return };
    let server = app.spawn().await;
    let tests_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow");
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(&tests_dir)
            .env("MLFLOW_TRACKING_URI", url)
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .output()
            .expect("run pytest")
    })
    .await
    .expect("join");
    server.shutdown().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mlflow client scenarios failed on {label}:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .rfind(|line| line.contains("passed"))
        .unwrap_or("");
    eprintln!("mlflow client scenarios on {label}: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_client_on_sqlite_and_local_artifacts() {
    let app = TestApp::new(Backend::Sqlite).await.expect("app");
    run_scenarios(app, "sqlite + local artifacts").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_client_on_postgres_and_s3() {
    let Some(app) = TestApp::with_artifacts(Backend::Postgres, true).await else {
        return;
    };
    run_scenarios(app, "postgres + s3 artifacts").await;
}
