//! The instances of the backup tests: where one keeps its data (SQLite + a directory, or
//! PostgreSQL + S3), the `cairn` commands run on it, and a `cairn serve` started on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_artifacts::{ArtifactStore, S3Options};

/// The `cairn` binary cargo built for these tests.
pub(super) fn cairn_bin() -> String {
    env!("CARGO_BIN_EXE_cairn").to_string()
}

/// Where one instance keeps its data: a database and an artifact store.
pub(super) struct Instance {
    _dir: tempfile::TempDir,
    pub(super) data_dir: PathBuf,
    pub(super) database_url: String,
    s3: Option<(String, S3Options)>,
}

impl Instance {
    pub(super) fn sqlite() -> Instance {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let database_url = format!("sqlite://{}", data_dir.join("cairn.db").display());
        Instance { _dir: dir, data_dir, database_url, s3: None }
    }

    /// PostgreSQL and S3, or `None` (after a notice) when they are not configured.
    pub(super) async fn postgres_s3() -> Option<Instance> {
        let database_url = cairn_store::testsuite::postgres_database_url().await?;
        let s3 = match crate::support::s3_artifacts() {
            Some(s3) => s3,
            None if cairn_store::testsuite::services_required() => {
                panic!("CAIRN_TEST_S3_ENDPOINT is not set but CAIRN_TEST_REQUIRE_SERVICES=1")
            }
            None => {
                eprintln!("SKIPPED: PostgreSQL + S3 backup test (set CAIRN_TEST_S3_ENDPOINT)");
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        Some(Instance { _dir: dir, data_dir, database_url, s3: Some(s3) })
    }

    /// The backend flags every `cairn` command takes.
    pub(super) fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
            "--database-url".to_string(),
            self.database_url.clone(),
        ];
        if let Some((root, options)) = &self.s3 {
            args.extend(["--artifacts".into(), root.clone()]);
            let flags = [
                ("--s3-endpoint", &options.endpoint),
                ("--s3-region", &options.region),
                ("--s3-access-key-id", &options.access_key_id),
                ("--s3-secret-access-key", &options.secret_access_key),
            ];
            for (flag, value) in flags {
                args.extend([flag.to_string(), value.clone().unwrap_or_default()]);
            }
        }
        args
    }

    pub(super) fn artifacts(&self) -> ArtifactStore {
        match &self.s3 {
            Some((root, options)) => ArtifactStore::open(root, options).expect("open s3 store"),
            None => {
                let root = self.data_dir.join("artifacts");
                ArtifactStore::open(root.to_str().unwrap(), &S3Options::default()).expect("open")
            }
        }
    }

    /// Runs `cairn admin <args> <backend flags>`: success, stdout, stderr.
    pub(super) fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(cairn_bin())
            .arg("admin")
            .args(args)
            .args(self.args())
            .env_remove("CAIRN_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("run cairn admin");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Starts `cairn serve --auth enabled` on this instance.
    pub(super) async fn serve(&self) -> Server {
        let port = crate::support::free_port();
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log_path = self.data_dir.join(format!("server-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(cairn_bin())
            .args(["serve", "--auth", "enabled", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .args(self.args())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn cairn serve");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = http.get(format!("{url}/readyz")).send().await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "cairn was not ready in 60 s; see {log_path:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server { child, url }
    }
}

pub(super) struct Server {
    child: Child,
    pub(super) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cairn admin backup verify DIR` (which names no backend).
pub(super) fn verify(dir: &Path) -> (bool, String, String) {
    let output = Command::new(cairn_bin())
        .args(["admin", "backup", "verify"])
        .arg(dir)
        .output()
        .expect("run cairn admin backup verify");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(super) fn python() -> Option<String> {
    match std::env::var("CAIRN_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) if cairn_store::testsuite::services_required() => {
            panic!("CAIRN_TEST_PYTHON is not set but CAIRN_TEST_REQUIRE_SERVICES=1")
        }
        Err(_) => {
            eprintln!("SKIPPED: backup round trip (set CAIRN_TEST_PYTHON to a venv with mlflow)");
            None
        }
    }
}
