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
    let summary = stdout.lines().rfind(|line| line.contains("passed")).unwrap_or("");
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

/// The whole scenario suite against the real binary with `--auth enabled`, the client holding
/// the bootstrap admin token; the server logs at debug level, and the token must not appear in
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_client_with_token_auth_and_no_secret_in_logs() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let log_file = std::fs::File::create(&log_path).expect("log file");
    let mut server = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["serve", "--auth", "enabled", "--port", &port.to_string(), "--data-dir"])
        .arg(&data_dir)
        .env("CAIRN_LOG", "debug")
        .env("CAIRN_PYTHON", &python)
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("spawn cairn");
    let token_file = data_dir.join("bootstrap-admin-token");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !token_file.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let token = std::fs::read_to_string(&token_file).expect("token file").trim().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is private to its owner");
    }
    // A project with a contributor, a viewer, and a member of another project, made with the CLI.
    let admin = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&data_dir)
            .output()
            .expect("run cairn admin");
        assert!(
            output.status.success(),
            "cairn admin {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    admin(&["project", "create", "churn"]);
    admin(&["project", "create", "elsewhere"]);
    let mut member_tokens = Vec::new();
    for (user, project, role) in [
        ("contributor", "churn", "contributor"),
        ("viewer", "churn", "viewer"),
        ("outsider", "elsewhere", "owner"),
    ] {
        admin(&["user", "create", user, "--service-account"]);
        admin(&["project", "set-member", project, user, "--role", role]);
        let printed = admin(&["token", "create", "--user", user]);
        let secret = printed.lines().last().expect("token line").trim().to_string();
        member_tokens.push((format!("CAIRN_TEST_{}_TOKEN", user.to_uppercase()), secret));
    }
    let tests_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mlflow");
    let url = format!("http://127.0.0.1:{port}");
    let client_token = token.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(&tests_dir)
            .env("MLFLOW_TRACKING_URI", url)
            .env("MLFLOW_TRACKING_TOKEN", &client_token)
            .env("CAIRN_TEST_AUTH_TOKEN", &client_token)
            .env("CAIRN_TEST_PROJECT", "churn")
            .envs(member_tokens)
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            .output()
            .expect("run pytest")
    })
    .await
    .expect("join");
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mlflow client scenarios failed with auth on:\n{stdout}\n{stderr}"
    );
    let summary = stdout.lines().rfind(|line| line.contains("passed")).unwrap_or("");
    assert!(!summary.contains("skipped"), "every scenario ran, the auth ones included: {summary}");
    let logs = std::fs::read_to_string(&log_path).expect("server log");
    assert!(logs.lines().count() > 100, "the server logged the traffic at debug level");
    assert!(!logs.contains(&token), "the token must never appear in the server's logs");
    assert!(!logs.contains(&token[6..20]), "not even a slice of it");
    eprintln!("mlflow client scenarios with token auth: {summary}");
}
