//! The workspaces scenario: what Cairn's proxy costs in front of JupyterLab. In process, on the
//! embedded defaults with authentication on (every proxied request carries a token of a
//! contributor who owns the workspace), a workspace's JupyterLab is reached two ways in one
//! run — through Cairn (`/workspaces/<id>/…`) and directly on its loopback port with its own
//! token — alternating in blocks so that drift over the run cancels out:
//!
//! 1. HTTP: sequential `GET api/contents/<file>` (a small JSON answer) on one kept-alive
//!    connection; the per-request overhead is the difference of the medians (target < 2 ms).
//! 2. Kernel WebSocket messages: `kernel_info_request`s sent back to back on the kernel's
//!    channels, timed until every reply arrived (messages per second; target: no loss).
//! 3. Kernel WebSocket bytes: a 1 MiB value asked for again and again (it comes back in each
//!    `execute_reply`), timed (MiB per second; target: no loss). Output on IOPub is not used:
//!    JupyterLab rate-limits it to 1 MB/s by default, which would be measured instead.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{EnvironmentDefinition, RevisionState, TierSpec};
use cairn_domain::workspaces::{WorkspaceRequest, WorkspaceState};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The target for the proxy's cost per HTTP request.
pub const HTTP_OVERHEAD_TARGET_MS: f64 = 2.0;

/// Sizes of the workspaces scenario.
#[derive(Debug, Clone)]
pub struct WorkspacesSizes {
    /// HTTP requests per path.
    pub requests: usize,
    /// Kernel messages per round.
    pub messages: usize,
    /// 1 MiB replies asked for per round.
    pub bulk_mib: usize,
    /// Rounds of each WebSocket measure per path.
    pub rounds: usize,
    /// The JupyterLab requirement of the workspace's environment.
    pub jupyterlab: String,
}

/// What the scenario measured: for each measure, (through Cairn, direct).
#[derive(Debug, Clone)]
pub struct WorkspacesOutcome {
    /// Seconds from the start request to `running` (environment cached or built).
    pub start_s: f64,
    /// HTTP request latencies, ms.
    pub http_ms: (Vec<f64>, Vec<f64>),
    /// Kernel messages per second, per round.
    pub messages_per_s: (Vec<f64>, Vec<f64>),
    /// MiB of 1 MiB replies per second, per round.
    pub mib_per_s: (Vec<f64>, Vec<f64>),
}

/// One way to reach JupyterLab: its HTTP base (ending in `/workspaces/<id>/`), its WebSocket
/// base, and the `Authorization` header to send.
struct Route {
    http: String,
    ws: String,
    authorization: String,
}

fn percentile(values: &[f64], share: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 - 1.0) * share).round() as usize]
}

/// Runs the scenario; `python` is the base interpreter of the workspace's environment,
/// `env_cache` where environments are cached across runs.
pub async fn run(
    python: &Path,
    env_cache: &Path,
    sizes: &WorkspacesSizes,
) -> Result<WorkspacesOutcome> {
    let dir = tempfile::tempdir()?;
    let mut config = cairn::Config::embedded(dir.path().join("data"));
    config.python = python.to_path_buf();
    config.auth_required = true;
    config.compute.tick = Duration::from_millis(100);
    config.compute.env_cache = Some(env_cache.to_path_buf());
    let app = cairn::App::build(&config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let services = &app.services;
    let system = RequestContext::system();

    // A contributor of the default project, who owns the workspace and calls through Cairn.
    services.identity.bootstrap(&system, "admin").await?.context("a fresh site has no users")?;
    let spec = cairn_service::UserSpec {
        username: "ada".into(),
        site_role: cairn_domain::identity::SiteRole::Member,
        service_account: false,
        password: None,
        display_name: None,
        email: None,
    };
    services.identity.create_user(&system, &spec).await?;
    services
        .projects
        .set_member(&system, "default", "ada", cairn_domain::identity::ProjectRole::Contributor)
        .await?;
    let (_, token) = services.identity.create_token(&system, "ada", "bench", None).await?;
    let principal =
        services.identity.authenticate(&cairn_service::Credentials::Bearer(token.clone())).await?;
    let ada = RequestContext::user(principal, None);

    let definition = EnvironmentDefinition {
        python: None,
        requirements: vec![sizes.jupyterlab.clone()],
        image: None,
    };
    services.catalog.create_environment(&system, "lab", "bench", &definition).await?;
    services.catalog.set_revision_state(&system, "lab", 1, RevisionState::Approved).await?;
    let tier = TierSpec {
        cpu: 2.0,
        memory_mib: 4096,
        gpus: 0,
        max_runtime_s: 3600,
        cost_per_hour: 0.0,
        executor: None,
    };
    services.catalog.put_tier(&system, "lab", &tier, true).await?;
    let request = WorkspaceRequest {
        environment: "lab".into(),
        environment_revision: None,
        tier: "lab".into(),
        shared: false,
        idle_timeout_s: Some(3600),
        datasets: Vec::new(),
    };
    let started = Instant::now();
    eprintln!(
        "workspaces: starting JupyterLab ({}; the first run builds its environment)",
        sizes.jupyterlab
    );
    let workspace = services.workspaces.start(&ada, "default", &request).await?;
    let id = workspace.id;
    loop {
        let current = services.workspaces.get(&ada, "default", id).await?;
        match current.state {
            WorkspaceState::Running => break,
            WorkspaceState::Starting => {}
            state => bail!("the workspace ended {}: {:?}", state.as_str(), current.reason),
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the workspace did not start within 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start_s = started.elapsed().as_secs_f64();
    eprintln!("workspaces: running after {start_s:.1} s");
    let target = services.workspaces.proxy_target(&ada, id).await?;
    let proxied = Route {
        http: format!("http://{address}/workspaces/{id}/"),
        ws: format!("ws://{address}/workspaces/{id}/"),
        authorization: format!("Bearer {token}"),
    };
    let direct = Route {
        http: format!("http://{}/workspaces/{id}/", target.address),
        ws: format!("ws://{}/workspaces/{id}/", target.address),
        authorization: target.authorization().to_string(),
    };
    let outcome = measure(&proxied, &direct, sizes, start_s).await;
    let stopped_workspace = services.workspaces.stop(&ada, "default", id, None).await;
    let _ = stop.send(());
    let _ = server.await;
    stopped_workspace?;
    outcome
}

async fn measure(
    proxied: &Route,
    direct: &Route,
    sizes: &WorkspacesSizes,
    start_s: f64,
) -> Result<WorkspacesOutcome> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let file = json!({"type": "file", "format": "text", "content": "small file\n"});
    let response = http
        .put(format!("{}api/contents/bench.txt", proxied.http))
        .header("authorization", &proxied.authorization)
        .json(&file)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("writing the bench file answered {}", response.status());
    }
    let kernel: Value = http
        .post(format!("{}api/kernels", proxied.http))
        .header("authorization", &proxied.authorization)
        .json(&json!({"name": "python3"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let kernel = kernel["id"].as_str().context("no kernel id")?.to_string();

    // HTTP, alternating blocks of requests; the first block of each is a warm-up.
    let block = (sizes.requests / 10).max(1);
    let (mut through, mut around) = (Vec::new(), Vec::new());
    for round in 0..=10 {
        for (route, into) in [(proxied, &mut through), (direct, &mut around)] {
            for _ in 0..block {
                let sent = Instant::now();
                let response = http
                    .get(format!("{}api/contents/bench.txt?content=1", route.http))
                    .header("authorization", &route.authorization)
                    .send()
                    .await?;
                let status = response.status();
                response.bytes().await?;
                if !status.is_success() {
                    bail!("GET api/contents answered {status}");
                }
                if round > 0 {
                    into.push(sent.elapsed().as_secs_f64() * 1000.0);
                }
            }
        }
    }
    eprintln!("workspaces: {} HTTP requests per path timed", through.len());

    let (mut messages_through, mut messages_around) = (Vec::new(), Vec::new());
    let (mut bytes_through, mut bytes_around) = (Vec::new(), Vec::new());
    for round in 0..=sizes.rounds {
        for (route, messages, bytes) in [
            (proxied, &mut messages_through, &mut bytes_through),
            (direct, &mut messages_around, &mut bytes_around),
        ] {
            let mut socket = connect(route, &kernel).await?;
            let rate = kernel_info_burst(&mut socket, sizes.messages).await?;
            let mib = bulk_output(&mut socket, sizes.bulk_mib).await?;
            let _ = socket.close(None).await;
            if round > 0 {
                messages.push(rate);
                bytes.push(mib);
            }
        }
    }
    eprintln!("workspaces: {} WebSocket rounds per path timed", sizes.rounds);
    Ok(WorkspacesOutcome {
        start_s,
        http_ms: (through, around),
        messages_per_s: (messages_through, messages_around),
        mib_per_s: (bytes_through, bytes_around),
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(route: &Route, kernel: &str) -> Result<Socket> {
    let mut request = format!("{}api/kernels/{kernel}/channels", route.ws).into_client_request()?;
    request.headers_mut().insert("authorization", route.authorization.parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(socket)
}

fn message(msg_type: &str, content: Value) -> (String, String) {
    let msg_id = uuid::Uuid::new_v4().simple().to_string();
    let text = json!({
        "header": {"msg_id": msg_id, "username": "bench", "session": "bench",
                   "msg_type": msg_type, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": content,
    })
    .to_string();
    (msg_id, text)
}

/// Sends `count` `kernel_info_request`s back to back; returns replies per second.
async fn kernel_info_burst(socket: &mut Socket, count: usize) -> Result<f64> {
    let started = Instant::now();
    let mut pending = std::collections::HashSet::new();
    for _ in 0..count {
        let (msg_id, text) = message("kernel_info_request", json!({}));
        pending.insert(msg_id);
        socket.feed(Message::Text(text.into())).await?;
    }
    socket.flush().await?;
    while !pending.is_empty() {
        let frame = tokio::time::timeout(Duration::from_secs(120), socket.next())
            .await
            .context("no kernel reply within 120 s")?
            .context("the kernel channel closed")??;
        let Message::Text(text) = frame else { continue };
        let reply: Value = serde_json::from_str(&text)?;
        if reply["msg_type"] == "kernel_info_reply"
            && let Some(parent) = reply["parent_header"]["msg_id"].as_str()
        {
            pending.remove(parent);
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Executes one cell and waits for its reply; returns the reply's content.
async fn execute(socket: &mut Socket, code: &str, user_expressions: Value) -> Result<Value> {
    let (msg_id, text) = message(
        "execute_request",
        json!({"code": code, "silent": false, "store_history": false,
               "user_expressions": user_expressions, "allow_stdin": false, "stop_on_error": true}),
    );
    socket.send(Message::Text(text.into())).await?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(300), socket.next())
            .await
            .context("no kernel reply within 300 s")?
            .context("the kernel channel closed")??;
        let Message::Text(text) = frame else { continue };
        let reply: Value = serde_json::from_str(&text)?;
        if reply["parent_header"]["msg_id"] == msg_id.as_str()
            && reply["msg_type"] == "execute_reply"
        {
            if reply["content"]["status"] != "ok" {
                bail!("a bench cell failed: {}", reply["content"]);
            }
            return Ok(reply["content"].clone());
        }
    }
}

/// Asks for a 1 MiB value `mib` times (each answer comes back in the `execute_reply` on the
/// shell channel — output on IOPub would meet JupyterLab's own 1 MB/s output rate limit);
/// returns MiB of answers per second.
async fn bulk_output(socket: &mut Socket, mib: usize) -> Result<f64> {
    execute(socket, "big = 'x' * 1048576", json!({})).await?;
    let started = Instant::now();
    let mut received = 0_usize;
    for _ in 0..mib {
        let content = execute(socket, "", json!({"b": "big"})).await?;
        received +=
            content["user_expressions"]["b"]["data"]["text/plain"].as_str().map_or(0, str::len);
    }
    if received < mib << 20 {
        bail!("the kernel sent {received} bytes of answers, not {}", mib << 20);
    }
    Ok(received as f64 / f64::from(1 << 20) / started.elapsed().as_secs_f64())
}

/// The scenario's report.
pub fn render(outcome: &WorkspacesOutcome) -> String {
    let mut out = String::from("## Workspaces: Cairn's proxy in front of JupyterLab\n\n");
    out.push_str(&format!(
        "One JupyterLab (workspace running {:.1} s after the start request), reached through Cairn with a contributor's token (authentication on) and directly with its own token, alternating.\n\n",
        outcome.start_s
    ));
    let (through, around) = &outcome.http_ms;
    out.push_str(&format!(
        "HTTP `GET api/contents/bench.txt`, {} sequential requests per path on one connection:\n\n",
        through.len()
    ));
    out.push_str("| path | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|\n");
    for (name, values) in [("through Cairn", through), ("direct", around)] {
        out.push_str(&format!(
            "| {name} | {:.3} | {:.3} | {:.3} |\n",
            percentile(values, 0.5),
            percentile(values, 0.95),
            percentile(values, 0.99)
        ));
    }
    let overhead = percentile(through, 0.5) - percentile(around, 0.5);
    out.push_str(&format!(
        "\nProxy overhead per HTTP request (p50 difference): {overhead:.3} ms; target < {HTTP_OVERHEAD_TARGET_MS:.0} ms: {}\n\n",
        if overhead < HTTP_OVERHEAD_TARGET_MS { "met" } else { "MISSED" }
    ));
    out.push_str("| kernel WebSocket | through Cairn (median) | direct (median) | ratio |\n|---|---:|---:|---:|\n");
    for (name, (through, around)) in [
        ("kernel_info replies per s", &outcome.messages_per_s),
        ("1 MiB replies, MiB per s", &outcome.mib_per_s),
    ] {
        let (a, b) = (percentile(through, 0.5), percentile(around, 0.5));
        out.push_str(&format!("| {name} | {a:.1} | {b:.1} | {:.3} |\n", a / b));
    }
    out.push_str(&format!(
        "\nRounds per path: {}; every round's figures: through {:?} / direct {:?} replies/s, through {:?} / direct {:?} MiB/s\n",
        outcome.messages_per_s.0.len(),
        rounded(&outcome.messages_per_s.0),
        rounded(&outcome.messages_per_s.1),
        rounded(&outcome.mib_per_s.0),
        rounded(&outcome.mib_per_s.1),
    ));
    out
}

fn rounded(values: &[f64]) -> Vec<f64> {
    values.iter().map(|value| (value * 10.0).round() / 10.0).collect()
}
