//! The client commands against a running server: `cairn login` saves a checked token (privately),
//! then `cairn project …` and `cairn token …` work through the native API.

use std::process::{Command, Stdio};

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

fn run(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(CAIRN)
        .args(args)
        .env("CAIRN_CONFIG", config)
        .env_remove("CAIRN_SERVER")
        .env_remove("CAIRN_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run cairn");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_then_manage_projects_and_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config = dir.path().join("login.json");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(CAIRN)
        .args(["serve", "--auth", "enabled", "--port", &port.to_string(), "--data-dir"])
        .arg(&data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let token_file = data_dir.join("bootstrap-admin-token");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !token_file.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let admin_token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    let server_url = format!("http://127.0.0.1:{port}");
    let config_path = config.clone();
    let server_for_thread = server_url.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let config = config_path.as_path();
        let (ok, _, stderr) =
            run(config, &["login", "--server", &server_for_thread, "--token", "cairn_wrong"]);
        assert!(!ok && stderr.contains("401"), "a wrong token is refused before saving: {stderr}");
        assert!(!config.exists());
        let (ok, stdout, stderr) =
            run(config, &["login", "--server", &server_for_thread, "--token", &admin_token]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("as admin"), "{stdout}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(config).unwrap().permissions().mode() & 0o077,
                0,
                "the login file is private"
            );
        }
        let (ok, stdout, stderr) =
            run(config, &["project", "create", "churn", "--description", "churn models"]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("/p/churn"), "{stdout}");
        let (_, stdout, _) = run(config, &["project", "list"]);
        assert!(stdout.contains("churn") && stdout.contains("churn models"), "{stdout}");
        let (ok, _, stderr) =
            run(config, &["project", "set-member", "churn", "nobody", "--role", "viewer"]);
        assert!(!ok && stderr.contains("404"), "{stderr}");
        let (ok, stdout, _) =
            run(config, &["token", "create", "--name", "ci", "--expires-in-days", "7"]);
        assert!(ok);
        let secret = stdout.lines().last().unwrap().trim().to_string();
        assert!(secret.starts_with("cairn_"));
        let (_, listing, _) = run(config, &["token", "list"]);
        assert!(listing.contains("ci") && !listing.contains(&secret), "{listing}");
        let id = listing
            .lines()
            .find(|line| line.contains(" ci "))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let (ok, stdout, _) = run(config, &["token", "revoke", &id]);
        assert!(ok && stdout.contains("revoked"));
    });
    let result = outcome.await;
    let _ = server.kill();
    let _ = server.wait();
    result.expect("client scenario");
}
