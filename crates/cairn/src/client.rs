//! The client commands (`cairn login`, `cairn token …`, `cairn project …`): they talk to a
//! running server's native API with a saved or given token. The saved login lives in
//! `$CAIRN_CONFIG` or `~/.config/cairn/login.json`, readable by its owner only.

use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{ClientProjectCommand, ClientTokenCommand, LoginArgs};

/// A server and a token.
pub(crate) struct Login {
    server: String,
    token: String,
}

impl Login {
    /// The server's base URL, without a trailing slash.
    pub(crate) fn server(&self) -> &str {
        self.server.trim_end_matches('/')
    }
}

fn config_path() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("CAIRN_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var("HOME").context("HOME is not set; set CAIRN_CONFIG")?;
    Ok(PathBuf::from(home).join(".config/cairn/login.json"))
}

/// The server and token the client commands use: `CAIRN_SERVER` (with `CAIRN_TOKEN`, or none
/// for a server running without authentication), else the saved login, else the embedded
/// default `http://127.0.0.1:5000` without a token.
pub(crate) fn load_login() -> anyhow::Result<Login> {
    if let Ok(server) = std::env::var("CAIRN_SERVER") {
        let token = std::env::var("CAIRN_TOKEN").unwrap_or_default();
        return Ok(Login { server, token });
    }
    let path = config_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Login { server: "http://127.0.0.1:5000".into(), token: String::new() });
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let saved: Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    match (saved["server"].as_str(), saved["token"].as_str()) {
        (Some(server), Some(token)) => {
            Ok(Login { server: server.to_string(), token: token.to_string() })
        }
        _ => bail!("{} is not a cairn login file; run `cairn login` again", path.display()),
    }
}

/// A request to `url` with the login's token, when it has one.
fn authorised(login: &Login, method: Method, url: &str) -> reqwest::RequestBuilder {
    // One client per process: its connection pool is reused, and building a client (TLS roots
    // included) costs milliseconds — a push of 10,000 files paid that 10,000 times.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let request = CLIENT.get_or_init(reqwest::Client::new).request(method, url);
    if login.token.is_empty() { request } else { request.bearer_auth(&login.token) }
}

/// Sends one request to `path` (which includes `/api/v1`, and a `/p/<project>` prefix when
/// scoped) and returns the status and body, or fails when the server cannot be reached.
pub(crate) async fn send(
    login: &Login,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
    let url = format!("{}{path}", login.server.trim_end_matches('/'));
    let mut request = authorised(login, method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| format!("reaching {}", login.server))?;
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("reading from {}", login.server))?;
    Ok((status, bytes.to_vec()))
}

/// Sends raw bytes with a content type to `/api/v1{path}` (scoped to `project`) and returns the
/// answer's bytes, failing on a non-success status.
pub(crate) async fn send_raw(
    login: &Login,
    project: Option<&str>,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    let prefix = project.map(|project| format!("/p/{project}")).unwrap_or_default();
    let url = format!("{}{prefix}/api/v1{path}", login.server.trim_end_matches('/'));
    let mut request = authorised(login, method, &url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type).body(body);
    }
    let response = request.send().await.with_context(|| format!("reaching {}", login.server))?;
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("reading from {}", login.server))?;
    if !status.is_success() {
        return Err(failure(status, &bytes));
    }
    Ok(bytes.to_vec())
}

/// The error of a failed answer: the native error's message, else the body.
pub(crate) fn failure(status: reqwest::StatusCode, bytes: &[u8]) -> anyhow::Error {
    let text = String::from_utf8_lossy(bytes);
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let message =
        value["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| text.to_string());
    anyhow::anyhow!("{status}: {message}")
}

/// Calls the native API at `/api/v1{path}`, scoped to `project` when given.
pub(crate) async fn call_in(
    login: &Login,
    project: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let prefix = project.map(|project| format!("/p/{project}")).unwrap_or_default();
    let (status, bytes) = send(login, method, &format!("{prefix}/api/v1{path}"), body).await?;
    if !status.is_success() {
        return Err(failure(status, &bytes));
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn call(
    login: &Login,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    call_in(login, None, method, path, body).await
}

/// Runs `cairn login`.
pub async fn login(args: &LoginArgs) -> anyhow::Result<()> {
    let token = match &args.token {
        Some(token) => token.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the token from standard input")?;
            line.trim().to_string()
        }
    };
    let login = Login { server: args.server.clone(), token };
    let me = call(&login, Method::GET, "/me", None).await?;
    let path = config_path()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("writing {}", path.display()))?;
    let saved = json!({"server": login.server, "token": login.token});
    std::io::Write::write_all(&mut file, saved.to_string().as_bytes())?;
    println!(
        "logged in to {} as {}; saved to {}",
        login.server,
        me["actor"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(())
}

/// Runs `cairn token …`.
pub async fn token(command: &ClientTokenCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        ClientTokenCommand::Create { name, expires_in_days } => {
            let created = call(
                &login,
                Method::POST,
                "/tokens",
                Some(json!({"name": name, "expires_in_days": expires_in_days})),
            )
            .await?;
            println!(
                "token {} (shown once):\n{}",
                created["token"]["id"],
                created["secret"].as_str().unwrap_or_default()
            );
        }
        ClientTokenCommand::List => {
            let tokens = call(&login, Method::GET, "/tokens", None).await?;
            println!("{:<6} {:<24} {:<14} STATUS", "ID", "NAME", "HINT");
            for token in tokens.as_array().into_iter().flatten() {
                let status = if token["revoked_at"].is_null() { "active" } else { "revoked" };
                println!(
                    "{:<6} {:<24} {:<14} {status}",
                    token["id"],
                    token["name"].as_str().unwrap_or_default(),
                    token["hint"].as_str().unwrap_or_default()
                );
            }
        }
        ClientTokenCommand::Revoke { id } => {
            call(&login, Method::DELETE, &format!("/tokens/{id}"), None).await?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

/// Runs `cairn project …`.
pub async fn project(command: &ClientProjectCommand) -> anyhow::Result<()> {
    let login = load_login()?;
    match command {
        ClientProjectCommand::Create { name, description, owner } => {
            call(
                &login,
                Method::POST,
                "/projects",
                Some(json!({"name": name, "description": description, "owner": owner})),
            )
            .await?;
            println!(
                "created project '{name}'; tracking URI: {}/p/{name}",
                login.server.trim_end_matches('/')
            );
        }
        ClientProjectCommand::List => {
            for project in
                call(&login, Method::GET, "/projects", None).await?.as_array().into_iter().flatten()
            {
                println!(
                    "{:<32} {}",
                    project["name"].as_str().unwrap_or_default(),
                    project["description"].as_str().unwrap_or_default()
                );
            }
        }
        ClientProjectCommand::Members { project } => {
            for member in call(&login, Method::GET, &format!("/projects/{project}/members"), None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{:<32} {}",
                    member["username"].as_str().unwrap_or_default(),
                    member["role"].as_str().unwrap_or_default()
                );
            }
        }
        ClientProjectCommand::SetMember { project, user, role } => {
            call(
                &login,
                Method::PUT,
                &format!("/projects/{project}/members/{user}"),
                Some(json!({"role": role})),
            )
            .await?;
            println!("'{user}' is now a {role} of '{project}'");
        }
        ClientProjectCommand::RemoveMember { project, user } => {
            call(&login, Method::DELETE, &format!("/projects/{project}/members/{user}"), None)
                .await?;
            println!("removed '{user}' from '{project}'");
        }
    }
    Ok(())
}
