//! How Cairn runs and talks to a workspace's JupyterLab: its command line, its private
//! directories, its token (read once from a private file, then deleted, so it is in no argument
//! list, environment or file while it runs) and the two calls the idle check makes.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_domain::workspaces::base_path;

/// The workspace directory's private part: JupyterLab's config, data and runtime directories
/// and IPython's, outside the files it serves.
pub(super) const PRIVATE_DIR: &str = "jupyter";
/// The token file's name inside [`PRIVATE_DIR`].
const TOKEN_FILE: &str = "token";

/// JupyterLab's command line for workspace `id`, serving `files` on `127.0.0.1:port`.
pub(super) fn command(id: i64, port: u16, files: &Path) -> Vec<String> {
    let options = [
        format!("--ServerApp.base_url={}", base_path(id)),
        "--ServerApp.ip=127.0.0.1".to_string(),
        format!("--ServerApp.port={port}"),
        "--ServerApp.port_retries=0".to_string(),
        format!("--ServerApp.root_dir={}", files.display()),
        // The proxy forwards the browser's Host header.
        "--ServerApp.allow_remote_access=True".to_string(),
        "--ServerApp.trust_xheaders=True".to_string(),
        // Jobs run as the server's user, which may be root in containers.
        "--ServerApp.allow_root=True".to_string(),
        "--ServerApp.no_browser_open_file=True".to_string(),
        // Dotfiles are project files too: a sync saves them, so users should see them.
        "--ContentsManager.allow_hidden=True".to_string(),
    ];
    let mut argv =
        vec!["python".to_string(), "-m".into(), "jupyterlab".into(), "--no-browser".into()];
    argv.extend(options);
    argv
}

/// The variables that keep JupyterLab's state in the workspace's private directory (never the
/// server's home) and point it at its token file.
pub(super) fn environment(dir: &Path) -> BTreeMap<String, String> {
    let private = dir.join(PRIVATE_DIR);
    let path = |name: &str| private.join(name).display().to_string();
    BTreeMap::from([
        ("JUPYTER_TOKEN_FILE".to_string(), path(TOKEN_FILE)),
        ("JUPYTER_CONFIG_DIR".to_string(), path("config")),
        ("JUPYTER_DATA_DIR".to_string(), path("data")),
        ("JUPYTER_RUNTIME_DIR".to_string(), path("runtime")),
        ("IPYTHONDIR".to_string(), path("ipython")),
    ])
}

/// A fresh token: 32 random bytes as hex.
pub(super) fn new_token() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    hex::encode(bytes)
}

/// Writes the token file, readable by the server's user only.
pub(super) async fn write_token(dir: &Path, token: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let private = dir.join(PRIVATE_DIR);
    tokio::fs::create_dir_all(&private).await?;
    tokio::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).await?;
    let path = private.join(TOKEN_FILE);
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = options.open(&path).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, token.as_bytes()).await?;
    tokio::io::AsyncWriteExt::flush(&mut file).await
}

/// Deletes the files holding the token once JupyterLab has read it: the token file and its
/// server-info files (`jpserver-*.json`).
pub(super) async fn forget_token_files(dir: &Path) {
    let private = dir.join(PRIVATE_DIR);
    let _ = tokio::fs::remove_file(private.join(TOKEN_FILE)).await;
    let Ok(mut entries) = tokio::fs::read_dir(private.join("runtime")).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("jpserver-") {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

/// A free TCP port on 127.0.0.1 (JupyterLab is told not to try others).
pub(super) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn url(port: u16, id: i64, rest: &str) -> String {
    format!("http://127.0.0.1:{port}{}{rest}", base_path(id))
}

/// Whether JupyterLab answers its status call.
pub(super) async fn answers(http: &reqwest::Client, port: u16, id: i64, token: &str) -> bool {
    let request =
        http.get(url(port, id, "api/status")).header("authorization", format!("token {token}"));
    matches!(request.send().await, Ok(response) if response.status().is_success())
}

/// What JupyterLab reports about its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Activity {
    /// Its last API, kernel or terminal activity, epoch ms.
    pub last_ms: i64,
    /// Whether a kernel is executing now.
    pub busy: bool,
}

/// Asks JupyterLab for its last activity and its kernels' states, without counting as activity.
pub(super) async fn activity(
    http: &reqwest::Client,
    port: u16,
    id: i64,
    token: &str,
) -> Result<Activity, String> {
    let authorization = format!("token {token}");
    let get = |rest: &str| http.get(url(port, id, rest)).header("authorization", &authorization);
    let status: serde_json::Value = read_json(get("api/status")).await?;
    let kernels: serde_json::Value = read_json(get("api/kernels?no_track_activity=1")).await?;
    let last_ms = status["last_activity"]
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| format!("JupyterLab reported no last activity: {status}"))?;
    let busy = kernels
        .as_array()
        .is_some_and(|kernels| kernels.iter().any(|kernel| kernel["execution_state"] == "busy"));
    Ok(Activity { last_ms, busy })
}

async fn read_json(request: reqwest::RequestBuilder) -> Result<serde_json::Value, String> {
    let response =
        request.send().await.map_err(|error| format!("JupyterLab did not answer: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("JupyterLab answered {}", response.status()));
    }
    response.json().await.map_err(|error| format!("JupyterLab answered unreadable JSON: {error}"))
}

/// Parses JupyterLab's RFC 3339 times into epoch ms.
fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|time| time.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_serves_under_the_base_path_without_the_token() {
        let argv = command(7, 41234, Path::new("/w/files"));
        assert_eq!(argv[..4], ["python", "-m", "jupyterlab", "--no-browser"]);
        assert!(argv.contains(&"--ServerApp.base_url=/workspaces/7/".to_string()));
        assert!(argv.contains(&"--ServerApp.port=41234".to_string()));
        assert!(argv.iter().all(|argument| !argument.contains("token")));
        let env = environment(Path::new("/w"));
        assert_eq!(env["JUPYTER_TOKEN_FILE"], "/w/jupyter/token");
    }

    #[test]
    fn tokens_are_long_and_fresh_and_times_parse() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_time("yesterday"), None);
    }
}
