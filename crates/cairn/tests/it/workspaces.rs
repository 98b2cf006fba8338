//! Workspaces end to end over a real socket, against real JupyterLab: a contributor starts one
//! on the project's newest snapshot; JupyterLab answers only through Cairn's proxy, to its
//! owner (others get 403, strangers 401, cross-origin browsers 403) and never shows its token;
//! a notebook cell runs over the proxied kernel WebSocket, writes files and logs an MLflow run
//! with the token Cairn gave it; sync and stop save the files as snapshots (checkpoints left
//! out) and revoke that token; a restart starts from the saved files and stops itself when
//! idle; a server shutdown saves and stops the workspaces it runs.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::compute::{Api, cairn, token};
use crate::rbac::fixture;
use crate::support::{Backend, TestApp};

/// The JupyterLab the tests' environment pins (as `tests/mlflow/requirements.txt` does).
const JUPYTERLAB: &str = "jupyterlab==4.6.6";

/// The cell run over the kernel WebSocket: files (one in a checkpoint directory, which saves
/// leave out), an MLflow run logged with the workspace's own token, and the memory limit the
/// kernel runs under (its cgroup's, else its address-space limit).
const CELL: &str = r#"
import os, resource, mlflow
def memory_limit():
    for line in open("/proc/self/cgroup"):
        path = line.strip().split(":", 2)[2]
        for candidate in (f"/sys/fs/cgroup{path}/memory.max", f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"):
            try:
                value = open(candidate).read().strip()
            except OSError:
                continue
            if value != "max" and int(value) < 1 << 50:
                return value
    return str(resource.getrlimit(resource.RLIMIT_AS)[0])
print("MEMORY", memory_limit())
with open("made_in_lab.txt", "w") as handle:
    handle.write("written by a kernel\n")
os.makedirs(".ipynb_checkpoints", exist_ok=True)
with open(".ipynb_checkpoints/made_in_lab-checkpoint.txt", "w") as handle:
    handle.write("never saved")
mlflow.set_experiment("workspace-notebooks")
with mlflow.start_run() as run:
    mlflow.log_metric("accuracy", 0.93)
print("RUN", run.info.run_id)
print("TOKEN", os.environ["MLFLOW_TRACKING_TOKEN"])
"#;

fn settings() -> cairn::ComputeSettings {
    cairn::ComputeSettings {
        tick: Duration::from_millis(200),
        kill_grace: Duration::from_secs(3),
        secrets_key: Some(crate::compute::test_secrets_key()),
        ..cairn::ComputeSettings::default()
    }
}

/// Waits until the workspace leaves `starting` (or reaches `until`), failing after `limit`.
async fn wait_state(api: &Api, token: &str, id: i64, until: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let path = format!("/api/v1/projects/churn/workspaces/{id}");
        let workspace = api.ok(token, "GET", &path, None).await;
        if workspace["state"] == until {
            return workspace;
        }
        assert!(
            workspace["state"] == "starting" || workspace["state"] == "running",
            "workspace {id} ended instead of reaching {until}: {workspace}"
        );
        assert!(
            started.elapsed() < limit,
            "workspace {id} not {until} after {limit:?}: {workspace}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs `code` in a kernel over the proxied WebSocket and returns its printed output.
async fn execute(url: &str, token: &str, code: &str) -> String {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("kernel channels");
    let msg_id = uuid::Uuid::new_v4().simple().to_string();
    let message = json!({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid::Uuid::new_v4().simple().to_string(),
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": false, "store_history": true, "user_expressions": {},
                    "allow_stdin": false, "stop_on_error": true},
    });
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(60), socket.next()).await
        else {
            panic!("the kernel channel closed; output so far: {output}");
        };
        let Message::Text(text) = frame else { continue };
        let reply: Value = serde_json::from_str(&text).unwrap();
        if reply["parent_header"]["msg_id"] != msg_id.as_str() {
            continue;
        }
        match reply["msg_type"].as_str().unwrap_or_default() {
            "stream" => output.push_str(reply["content"]["text"].as_str().unwrap_or_default()),
            "error" => panic!("the cell failed: {}", reply["content"]),
            "execute_reply" => {
                assert_eq!(reply["content"]["status"], "ok", "{reply}");
                let _ = socket.close(None).await;
                return output;
            }
            _ => {}
        }
    }
    panic!("no execute_reply within 3 minutes; output: {output}");
}

/// The value after `label ` on a line of `output`.
fn printed<'a>(output: &'a str, label: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} in {output}"))
}

async fn latest_paths(api: &Api, token: &str) -> (Value, Vec<String>) {
    let latest = api.ok(token, "GET", "/api/v1/projects/churn/snapshots/latest", None).await;
    let paths = latest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["path"].as_str().unwrap().to_string())
        .collect();
    (latest["snapshot"].clone(), paths)
}

/// The dataset the workspaces mount.
const IRIS_ROWS: &str = "petal,kind\n1.4,setosa\n";

/// Pushes dataset `iris` version 1 to project `churn` with the CLI.
fn push_dataset(api: &Api, token: &str) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("rows.csv"), IRIS_ROWS).unwrap();
    let dir = data.path().to_str().unwrap();
    let pushed = cairn(&api.url, token, &["dataset", "push", "iris", dir, "--project", "churn"]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
}

/// JupyterLab processes still running for this test's data directory.
fn leftover_servers(data_dir: &std::path::Path) -> usize {
    let needle = data_dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|command| command.contains("jupyterlab") && command.contains(&needle))
        .count()
}

async fn workspaces_end_to_end(backend: Backend) {
    let Some(app) = TestApp::with_compute(backend, false, settings()).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, owner, contributor, viewer, outsider) = (
        token(&f.tokens, "admin"),
        token(&f.tokens, "owner"),
        token(&f.tokens, "contributor"),
        token(&f.tokens, "viewer"),
        token(&f.tokens, "outsider"),
    );
    let definition = json!({"requirements": [JUPYTERLAB, "mlflow-skinny==3.17.2"]});
    let environment = json!({"name": "lab", "description": "notebooks", "definition": definition});
    api.ok(admin, "POST", "/api/v1/environments", Some(environment)).await;
    let approve = json!({"revision": 1, "state": "approved"});
    api.ok(admin, "POST", "/api/v1/environments/lab/state", Some(approve)).await;
    let spec = json!({"cpu": 1.0, "memory_mib": 2048, "max_runtime_s": 60});
    api.ok(admin, "PUT", "/api/v1/tiers/small", Some(json!({"spec": spec}))).await;
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("notes.md"), "# churn\n").unwrap();
    let dir = files.path().to_str().unwrap();
    let pushed = cairn(&api.url, contributor, &["push", dir, "--project", "churn", "-m", "start"]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    push_dataset(&api, contributor);

    // Starting needs write access; the workspace starts on the newest snapshot.
    let request = json!({"environment": "lab", "tier": "small"});
    let (status, _) =
        api.call(viewer, "POST", "/api/v1/projects/churn/workspaces", Some(request)).await;
    assert_eq!(status, 403);
    let started = Instant::now();
    let (url, who) = (api.url.clone(), contributor.to_string());
    let args = [
        "workspace",
        "start",
        "--project",
        "churn",
        "--env",
        "lab",
        "--tier",
        "small",
        "--dataset",
        "iris@1",
    ];
    let cli = tokio::task::spawn_blocking(move || cairn(&url, &who, &args)).await.unwrap();
    let stdout = String::from_utf8_lossy(&cli.stdout).to_string();
    assert!(cli.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&cli.stderr));
    let listed = api.ok(viewer, "GET", "/api/v1/projects/churn/workspaces", None).await;
    let running = listed[0].clone();
    let id = running["id"].as_i64().unwrap();
    assert_eq!(running["snapshot"], latest_paths(&api, viewer).await.0["digest"]);
    eprintln!("workspace {id} running after {:?}", started.elapsed());
    assert!(stdout.contains(&format!("{}/workspaces/{id}/lab", api.url)), "{stdout}");
    assert_eq!(
        (running["state"].as_str(), running["owner"].as_str()),
        (Some("running"), Some("contributor"))
    );
    let base = format!("/workspaces/{id}");

    // JupyterLab through the proxy: the lab page without its token, the files API.
    let (status, page) = api.call(contributor, "GET", &format!("{base}/lab"), None).await;
    assert_eq!(status, 200, "{page}");
    let page = page.as_str().unwrap().to_string();
    assert!(page.contains(r#""token": """#), "the page config's token is blanked out");
    let note =
        api.ok(contributor, "GET", &format!("/p/churn{base}/api/contents/notes.md"), None).await;
    assert_eq!(note["content"], "# churn\n");
    let rows = format!("{base}/api/contents/datasets/iris/rows.csv");
    assert_eq!(api.ok(contributor, "GET", &rows, None).await["content"], IRIS_ROWS);
    for (who, token, expected) in [
        ("viewer", viewer, 403),
        ("owner", owner, 403),
        ("outsider", outsider, 403),
        ("anonymous", "", 401),
    ] {
        let (status, answer) = api.call(token, "GET", &format!("{base}/api/status"), None).await;
        assert_eq!(status, expected, "{who}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{who}: {answer}");
    }
    let (status, _) =
        api.call(contributor, "GET", &format!("/p/other{base}/api/status"), None).await;
    assert_eq!(status, 403, "a scope the caller may not write in");
    let cross_site = reqwest::Client::new()
        .post(format!("{}{base}/api/kernels", api.url))
        .bearer_auth(contributor)
        .header("origin", "http://evil.example")
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403, "cross-origin unsafe methods are refused");

    // A notebook cell over the proxied kernel WebSocket; a cross-origin upgrade is refused.
    let kernel = api
        .ok(contributor, "POST", &format!("{base}/api/kernels"), Some(json!({"name": "python3"})))
        .await;
    let channels = format!(
        "ws://{}{base}/api/kernels/{}/channels",
        server.address,
        kernel["id"].as_str().unwrap()
    );
    let mut hostile = channels.as_str().into_client_request().unwrap();
    hostile.headers_mut().insert("authorization", format!("Bearer {contributor}").parse().unwrap());
    hostile.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(hostile).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("a cross-origin upgrade was not refused: {other:?}"),
    }
    let output = execute(&channels, contributor, CELL).await;
    let run_id = printed(&output, "RUN").to_string();
    let workspace_token = printed(&output, "TOKEN").to_string();
    assert_eq!(printed(&output, "MEMORY"), (2048_u64 << 20).to_string(), "the tier's memory limit");
    let run = api
        .ok(viewer, "GET", &format!("/p/churn/api/2.0/mlflow/runs/get?run_id={run_id}"), None)
        .await;
    assert_eq!(run["run"]["data"]["metrics"][0]["value"], 0.93, "{run}");

    // Sync saves the changed files (not checkpoints); nothing new, no snapshot.
    let path = format!("/api/v1/projects/churn/workspaces/{id}/sync");
    let synced = api.ok(contributor, "POST", &path, Some(json!({"message": "mid-way"}))).await;
    assert_eq!(synced["snapshot"]["message"], "mid-way", "{synced}");
    assert_eq!(synced["snapshot"]["author"], "contributor");
    let (_, paths) = latest_paths(&api, viewer).await;
    assert_eq!(paths, ["made_in_lab.txt", "notes.md"]);
    let again = api.ok(contributor, "POST", &path, None).await;
    assert!(again["snapshot"].is_null(), "{again}");
    let (status, _) = api.call(owner, "POST", &path, None).await;
    assert_eq!(status, 403, "not the owner's, not shared");

    // Stop saves what changed since, revokes the workspace's token, and the proxy stops.
    let put = json!({"type": "file", "format": "text", "content": "after sync"});
    api.ok(contributor, "PUT", &format!("{base}/api/contents/later.txt"), Some(put)).await;
    let stop = format!("/api/v1/projects/churn/workspaces/{id}/stop");
    let stopped =
        api.ok(contributor, "POST", &stop, Some(json!({"message": "done for today"}))).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert_eq!(stopped["reason"], "stopped by contributor");
    let (snapshot, paths) = latest_paths(&api, viewer).await;
    assert_eq!(paths, ["later.txt", "made_in_lab.txt", "notes.md"]);
    assert_eq!(snapshot["message"], "done for today");
    assert_eq!(stopped["synced_snapshot"], snapshot["digest"]);
    let (status, _) = api.call(contributor, "GET", &format!("{base}/api/status"), None).await;
    assert_eq!(status, 409, "a stopped workspace is not proxied");
    let (status, _) = api.call(&workspace_token, "GET", "/api/v1/me", None).await;
    assert_eq!(status, 401, "the workspace's token is revoked at stop");
    assert_eq!(leftover_servers(&app.data_dir), 0, "JupyterLab stopped");

    // Restarted on the saved files, it stops itself when idle, saving nothing new.
    let restart = format!("/api/v1/projects/churn/workspaces/{id}/start");
    api.ok(contributor, "POST", &restart, Some(json!({"idle_timeout_s": 10}))).await;
    wait_state(&api, contributor, id, "running", Duration::from_secs(300)).await;
    let later = api.ok(contributor, "GET", &format!("{base}/api/contents/later.txt"), None).await;
    assert_eq!(later["content"], "after sync");
    let idle_since = Instant::now();
    let idle = wait_state(&api, contributor, id, "stopped", Duration::from_secs(120)).await;
    eprintln!("idle stop after {:?}", idle_since.elapsed());
    assert_eq!(idle["reason"], "stopped after 10s without activity", "{idle}");
    assert_eq!(latest_paths(&api, viewer).await.0["digest"], snapshot["digest"]);

    // The audit trail of it all.
    let events =
        api.ok(admin, "GET", &format!("/api/v1/audit-events?target=workspace:{id}"), None).await;
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    for action in [
        "workspace.start",
        "workspace.token",
        "workspace.running",
        "workspace.sync",
        "workspace.stop.request",
        "workspace.stop",
    ] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }

    // Another replica sends requests for it elsewhere, and a stop asked there is carried out
    // by the replica running it; browsers may sign in with Basic (user name and token).
    api.ok(contributor, "POST", &restart, None).await;
    wait_state(&api, contributor, id, "running", Duration::from_secs(300)).await;
    let basic = reqwest::Client::new()
        .get(format!("{}{base}/api/status", api.url))
        .basic_auth("contributor", Some(contributor))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    let other = app.replica().await;
    let credentials = cairn_service::Credentials::Bearer(contributor.to_string());
    let principal = other.app.services.identity.authenticate(&credentials).await.unwrap();
    let context = cairn_domain::audit::RequestContext::user(principal, None);
    let elsewhere = other.app.services.workspaces.proxy_target(&context, id).await.unwrap_err();
    assert!(elsewhere.message.contains("another Cairn server"), "{}", elsewhere.message);
    let asked = other.app.services.workspaces.stop(&context, "churn", id, None).await.unwrap();
    assert_eq!(asked.stop_requested_by.as_deref(), Some("contributor"));
    let stopped = wait_state(&api, contributor, id, "stopped", Duration::from_secs(60)).await;
    assert_eq!(stopped["reason"], "stopped by contributor");

    // A server shutting down stops and saves the workspaces it runs.
    api.ok(contributor, "POST", &restart, None).await;
    wait_state(&api, contributor, id, "running", Duration::from_secs(300)).await;
    let put = json!({"type": "file", "format": "text", "content": "unsaved at shutdown"});
    api.ok(contributor, "PUT", &format!("{base}/api/contents/shutdown.txt"), Some(put)).await;
    server.shutdown().await;
    let store = cairn_store::Store::connect(&app.database_url, &Default::default()).await.unwrap();
    let record = store.get_workspace(id).await.unwrap();
    assert_eq!(record.workspace.state.as_str(), "stopped");
    assert_eq!(record.workspace.reason.as_deref(), Some("the server running it shut down"));
    let snapshot = store.list_snapshots(record.project_id, 1).await.unwrap().remove(0);
    assert_eq!(Some(&snapshot.digest), record.workspace.synced_snapshot.as_ref());
    assert_eq!(snapshot.author, "contributor");
    store.close().await;
    assert_eq!(leftover_servers(&app.data_dir), 0, "JupyterLab stopped with the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_end_to_end_on_sqlite() {
    workspaces_end_to_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_end_to_end_on_postgres() {
    workspaces_end_to_end(Backend::Postgres).await;
}

/// The cell run on a Ray node: the secrets and dataset it was given, the token kept from it,
/// a file written.
const RAY_CELL: &str = r#"
import os
print("SECRET", os.environ.get("API_KEY"))
print("DATA", open("datasets/iris/rows.csv").read().replace("\n", "|"))
token_file = os.environ.get("JUPYTER_TOKEN_FILE", "")
print("TOKEN_VISIBLE", "CAIRN_JUPYTER_TOKEN" in os.environ or os.path.exists(token_file))
with open("from_ray.txt", "w") as handle:
    handle.write("written on a Ray node\n")
os.makedirs("notebooks", exist_ok=True)
with open("notebooks/analysis.py", "w") as handle:
    handle.write("print('hi')\n")
"#;

/// A workspace on the Ray executor (a real Ray head): JupyterLab runs as a Ray job on the
/// project's files and a dataset, reached through Cairn's proxy at the node address it
/// reports; its kernel sees the project's secret but not JupyterLab's token; sync and stop read
/// the files back through JupyterLab (new, changed and deleted files), leaving the dataset out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspaces_run_on_ray() {
    let Some(address) = std::env::var("CAIRN_TEST_RAY_ADDRESS").ok() else {
        assert!(
            !cairn_store::testsuite::services_required(),
            "CAIRN_TEST_RAY_ADDRESS is not set but CAIRN_TEST_REQUIRE_SERVICES=1"
        );
        eprintln!("SKIPPED: Ray workspace test (set CAIRN_TEST_RAY_ADDRESS to run it)");
        return;
    };
    let compute = cairn::ComputeSettings { ray_address: Some(address), ..settings() };
    let Some(app) = TestApp::with_compute(Backend::Sqlite, false, compute).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, contributor, viewer, owner) = (
        token(&f.tokens, "admin"),
        token(&f.tokens, "contributor"),
        token(&f.tokens, "viewer"),
        token(&f.tokens, "owner"),
    );
    let definition = json!({"requirements": [JUPYTERLAB]});
    let environment = json!({"name": "lab", "description": "notebooks", "definition": definition});
    api.ok(admin, "POST", "/api/v1/environments", Some(environment)).await;
    let approve = json!({"revision": 1, "state": "approved"});
    api.ok(admin, "POST", "/api/v1/environments/lab/state", Some(approve)).await;
    let spec = json!({"cpu": 1.0, "memory_mib": 2048, "max_runtime_s": 60, "executor": "ray"});
    api.ok(admin, "PUT", "/api/v1/tiers/cluster", Some(json!({"spec": spec}))).await;
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("notes.md"), "# churn\n").unwrap();
    std::fs::write(files.path().join("obsolete.txt"), "to be deleted\n").unwrap();
    let dir = files.path().to_str().unwrap();
    let pushed = cairn(&api.url, contributor, &["push", dir, "--project", "churn"]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    push_dataset(&api, contributor);
    let secret = json!({"value": "ray-workspace-secret"});
    api.ok(admin, "PUT", "/api/v1/projects/churn/secrets/API_KEY", Some(secret)).await;

    let started = Instant::now();
    let request = json!({"environment": "lab", "tier": "cluster", "datasets": ["iris"]});
    let workspace =
        api.ok(contributor, "POST", "/api/v1/projects/churn/workspaces", Some(request)).await;
    assert_eq!(workspace["executor"], "ray");
    let id = workspace["id"].as_i64().unwrap();
    wait_state(&api, contributor, id, "running", Duration::from_secs(420)).await;
    eprintln!("ray workspace {id} running after {:?}", started.elapsed());
    let base = format!("/workspaces/{id}");
    let (status, page) = api.call(contributor, "GET", &format!("{base}/lab"), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.as_str().unwrap().contains(r#""token": """#), "the token is blanked out");
    let (status, _) = api.call(owner, "GET", &format!("{base}/api/status"), None).await;
    assert_eq!(status, 403, "not the owner's, not shared");

    let kernel = api
        .ok(contributor, "POST", &format!("{base}/api/kernels"), Some(json!({"name": "python3"})))
        .await;
    let channels = format!(
        "ws://{}{base}/api/kernels/{}/channels",
        server.address,
        kernel["id"].as_str().unwrap()
    );
    let output = execute(&channels, contributor, RAY_CELL).await;
    assert_eq!(printed(&output, "SECRET"), "ray-workspace-secret", "{output}");
    assert_eq!(printed(&output, "DATA"), IRIS_ROWS.replace('\n', "|"));
    assert_eq!(printed(&output, "TOKEN_VISIBLE"), "False", "kernels never see JupyterLab's token");

    let sync = format!("/api/v1/projects/churn/workspaces/{id}/sync");
    let synced = api.ok(contributor, "POST", &sync, Some(json!({"message": "on ray"}))).await;
    assert_eq!(synced["snapshot"]["message"], "on ray", "{synced}");
    let (_, paths) = latest_paths(&api, viewer).await;
    assert_eq!(paths, ["from_ray.txt", "notebooks/analysis.py", "notes.md", "obsolete.txt"]);
    let again = api.ok(contributor, "POST", &sync, None).await;
    assert!(again["snapshot"].is_null(), "nothing changed: {again}");

    // Changed and deleted files are read back at stop.
    let put = json!({"type": "file", "format": "text", "content": "# churn, revised\n"});
    api.ok(contributor, "PUT", &format!("{base}/api/contents/notes.md"), Some(put)).await;
    let (status, _) =
        api.call(contributor, "DELETE", &format!("{base}/api/contents/obsolete.txt"), None).await;
    assert_eq!(status, 204);
    let stop = format!("/api/v1/projects/churn/workspaces/{id}/stop");
    let stopped = api.ok(contributor, "POST", &stop, Some(json!({"message": "ray done"}))).await;
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    let (snapshot, paths) = latest_paths(&api, viewer).await;
    assert_eq!(paths, ["from_ray.txt", "notebooks/analysis.py", "notes.md"]);
    assert_eq!(snapshot["message"], "ray done");
    let pulled = tempfile::tempdir().unwrap();
    let target = pulled.path().to_str().unwrap();
    let got = cairn(&api.url, viewer, &["pull", "--project", "churn", target]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let notes = std::fs::read_to_string(pulled.path().join("notes.md")).unwrap();
    assert_eq!(notes, "# churn, revised\n");
    let (status, _) = api.call(contributor, "GET", &format!("{base}/api/status"), None).await;
    assert_eq!(status, 409, "a stopped workspace is not proxied");

    let events = api.ok(admin, "GET", "/api/v1/audit-events?action=secret.read", None).await;
    let read_by_workspace = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|event| event["details"]["workspace_id"] == id);
    assert!(read_by_workspace, "the secret's read is audited with the workspace: {events}");
    server.shutdown().await;
}

/// Starts that cannot work are refused with the reason, or fail with it: a draft environment, a
/// tier on an executor the server lacks, unknown or repeated datasets, an environment whose
/// build fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_start_failures_are_explained() {
    let Some(app) = TestApp::with_compute(Backend::Sqlite, false, settings()).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, contributor) = (token(&f.tokens, "admin"), token(&f.tokens, "contributor"));
    let missing = "cairn-no-such-package-anywhere==0.0.1";
    for (name, requirement) in [("draft", JUPYTERLAB), ("broken", missing)] {
        let definition = json!({"requirements": [requirement]});
        let body = json!({"name": name, "description": "", "definition": definition});
        api.ok(admin, "POST", "/api/v1/environments", Some(body)).await;
    }
    let approve = json!({"revision": 1, "state": "approved"});
    api.ok(admin, "POST", "/api/v1/environments/broken/state", Some(approve)).await;
    for (tier, executor) in [("small", None), ("cluster", Some("ray"))] {
        let mut spec = json!({"cpu": 1.0, "memory_mib": 1024, "max_runtime_s": 60});
        if let Some(executor) = executor {
            spec["executor"] = json!(executor);
        }
        api.ok(admin, "PUT", &format!("/api/v1/tiers/{tier}"), Some(json!({"spec": spec}))).await;
    }
    let start = "/api/v1/projects/churn/workspaces";
    let draft = json!({"environment": "draft", "tier": "small"});
    let (status, answer) = api.call(contributor, "POST", start, Some(draft)).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("approved"), "{answer}");
    let ray = json!({"environment": "broken", "tier": "cluster"});
    let (status, answer) = api.call(contributor, "POST", start, Some(ray)).await;
    assert_eq!(status, 409, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("ray executor, which this server is not configured with"), "{answer}");
    let unknown = json!({"environment": "broken", "tier": "small", "datasets": ["nowhere"]});
    let (status, answer) = api.call(contributor, "POST", start, Some(unknown)).await;
    assert_eq!(status, 404, "{answer}");
    let twice = json!({"environment": "broken", "tier": "small", "datasets": ["a", "a@2"]});
    let (status, answer) = api.call(contributor, "POST", start, Some(twice)).await;
    assert_eq!(status, 400, "{answer}");
    let short = json!({"environment": "broken", "tier": "small", "idle_timeout_s": 1});
    let (status, _) = api.call(contributor, "POST", start, Some(short)).await;
    assert_eq!(status, 400);

    // An empty project starts from no files; a failing build fails the workspace with pip's words.
    let broken = json!({"environment": "broken", "tier": "small"});
    let workspace = api.ok(contributor, "POST", start, Some(broken)).await;
    assert!(workspace["snapshot"].is_null(), "{workspace}");
    let id = workspace["id"].as_i64().unwrap();
    let started = Instant::now();
    let failed = loop {
        let path = format!("/api/v1/projects/churn/workspaces/{id}");
        let workspace = api.ok(contributor, "GET", &path, None).await;
        if workspace["state"] != "starting" {
            break workspace;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "still starting: {workspace}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(failed["state"], "failed", "{failed}");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("could not start: environment 'broken@1' failed to build"),
        "{reason}"
    );
    assert!(reason.contains("cairn-no-such-package-anywhere"), "{reason}");
    server.shutdown().await;
}
