//! How Cairn runs and talks to a workspace's JupyterLab: its command line (local, or through a
//! launcher on a Ray node), its private directories, its token (read once from a private file,
//! then deleted, so it is in no argument list, environment or file while it runs), the two calls
//! the idle check makes and the contents API that saves of a remote workspace read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use cairn_domain::workspaces::base_path;

/// The workspace directory's private part: JupyterLab's config, data and runtime directories
/// and IPython's, outside the files it serves.
pub(super) const PRIVATE_DIR: &str = "jupyter";
/// The token file's name inside [`PRIVATE_DIR`].
const TOKEN_FILE: &str = "token";

/// The variable carrying the token to the remote launcher, which moves it into a file.
pub(super) const REMOTE_TOKEN_VAR: &str = "CAIRN_JUPYTER_TOKEN";
/// The launcher JupyterLab starts through on a Ray node (see its docstring).
const REMOTE_LAUNCHER: &str = include_str!("remote_launcher.py");
/// The line the launcher prints with the address JupyterLab listens on.
const ADDRESS_MARKER: &str = "cairn-workspace-address ";

/// JupyterLab's options shared by both ways of running it.
fn options(id: i64) -> Vec<String> {
    vec![
        format!("--ServerApp.base_url={}", base_path(id)),
        "--ServerApp.port_retries=0".to_string(),
        // The proxy forwards the browser's Host header.
        "--ServerApp.allow_remote_access=True".to_string(),
        "--ServerApp.trust_xheaders=True".to_string(),
        // Jobs run as the server's user, which may be root in containers.
        "--ServerApp.allow_root=True".to_string(),
        "--ServerApp.no_browser_open_file=True".to_string(),
        // Dotfiles are project files too: a sync saves them, so users should see them.
        "--ContentsManager.allow_hidden=True".to_string(),
    ]
}

/// JupyterLab's command line for workspace `id`, serving `files` on `127.0.0.1:port`.
pub(super) fn command(id: i64, port: u16, files: &Path) -> Vec<String> {
    let mut argv =
        vec!["python".to_string(), "-m".into(), "jupyterlab".into(), "--no-browser".into()];
    argv.push("--ServerApp.ip=127.0.0.1".to_string());
    argv.push(format!("--ServerApp.port={port}"));
    argv.push(format!("--ServerApp.root_dir={}", files.display()));
    argv.extend(options(id));
    argv
}

/// The command line on a Ray node: the launcher picks the node's address and a port, serves
/// the job's working directory and prints where it listens.
pub(super) fn remote_command(id: i64) -> Vec<String> {
    let mut argv = vec!["python".to_string(), "-c".into(), REMOTE_LAUNCHER.into()];
    argv.extend(options(id));
    argv
}

/// The address the remote launcher reported in the log, once it did.
pub(super) fn reported_address(log: &[u8]) -> Option<SocketAddr> {
    String::from_utf8_lossy(log)
        .lines()
        .find_map(|line| line.trim().strip_prefix(ADDRESS_MARKER))
        .and_then(|address| address.trim().parse().ok())
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

fn url(address: SocketAddr, id: i64, rest: &str) -> String {
    format!("http://{address}{}{rest}", base_path(id))
}

/// Whether JupyterLab answers its status call.
pub(super) async fn answers(
    http: &reqwest::Client,
    address: SocketAddr,
    id: i64,
    token: &str,
) -> bool {
    let request =
        http.get(url(address, id, "api/status")).header("authorization", format!("token {token}"));
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
    address: SocketAddr,
    id: i64,
    token: &str,
) -> Result<Activity, String> {
    let authorization = format!("token {token}");
    let get = |rest: &str| http.get(url(address, id, rest)).header("authorization", &authorization);
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

/// A file JupyterLab's contents API lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RemoteFile {
    /// Its path under the served directory, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time as JupyterLab reports it.
    pub modified: String,
}

/// Encodes each segment of a relative path for a URL.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Lists every file JupyterLab serves (hidden ones included), leaving out what `skip` says
/// (given a path and whether it is a directory).
pub(super) async fn list_files(
    http: &reqwest::Client,
    address: SocketAddr,
    id: i64,
    token: &str,
    skip: &(dyn Fn(&str, bool) -> bool + Sync),
) -> Result<Vec<RemoteFile>, String> {
    let authorization = format!("token {token}");
    let mut files = Vec::new();
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        let rest = format!("api/contents/{}?content=1&type=directory", encode_path(&dir));
        let listing =
            read_json(http.get(url(address, id, &rest)).header("authorization", &authorization))
                .await?;
        for entry in listing["content"].as_array().into_iter().flatten() {
            let Some(path) = entry["path"].as_str() else { continue };
            let is_dir = entry["type"] == "directory";
            if skip(path, is_dir) {
                continue;
            }
            if is_dir {
                pending.push(path.to_string());
            } else {
                files.push(RemoteFile {
                    path: path.to_string(),
                    size: entry["size"].as_u64().unwrap_or(0),
                    modified: entry["last_modified"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
    }
    Ok(files)
}

/// Reads one file's bytes through the contents API.
pub(super) async fn read_file(
    http: &reqwest::Client,
    address: SocketAddr,
    id: i64,
    token: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let rest = format!("api/contents/{}?content=1&type=file&format=base64", encode_path(path));
    let request =
        http.get(url(address, id, &rest)).header("authorization", format!("token {token}"));
    let model = read_json(request).await?;
    let content = model["content"].as_str().unwrap_or_default().replace('\n', "");
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|error| format!("JupyterLab sent '{path}' in unreadable base64: {error}"))
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
        let remote = remote_command(7);
        assert_eq!(remote[..2], ["python", "-c"]);
        assert!(remote.iter().all(|argument| !argument.starts_with("--ServerApp.port=")));
        assert!(remote.contains(&"--ServerApp.base_url=/workspaces/7/".to_string()));
        let log = b"installing\ncairn-workspace-address 10.0.0.5:40001\n[I] started\n";
        assert_eq!(reported_address(log), Some("10.0.0.5:40001".parse().unwrap()));
        assert_eq!(reported_address(b"cairn-workspace-address nonsense\n"), None);
        assert_eq!(encode_path("a b/c#d.txt"), "a%20b/c%23d%2Etxt");
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
