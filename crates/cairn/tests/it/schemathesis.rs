//! Schemathesis (issue 10's hostile input) against the native API's OpenAPI document: a real
//! `cairn serve` with authentication on, on SQLite, holding an experiment with runs, a deployed
//! model version, an environment, a tier, a policy, a comment, a team and a project owner, is
//! sent several thousand generated requests — valid and invalid parameters and bodies, boundary
//! values, sequences that follow the document's links — with a fixed seed: as a site admin, as a
//! project owner who is no admin, and (the operations that could lock the run out) as a
//! disposable admin. Every answer must be a non-5xx whose status, content type and body the
//! document declares for that operation, and every operation must refuse a caller without
//! credentials (schemathesis's `ignored_auth` check, and a plain sweep at the end).
//!
//! The server is kept from reaching anything but loopback: its proxy variables point at a closed
//! local port (so a generated webhook URL or package index goes nowhere), pip may not use an
//! index, and the job and monitor loops tick once an hour, so generated jobs, workspaces and
//! alerts are recorded but never run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::compute::Api;

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// Generated cases per operation and phase; with about a hundred operations and three phases
/// this gives several thousand requests in about a minute here (2 cores). A deeper run sets
/// `CAIRN_TEST_SCHEMATHESIS_EXAMPLES` (and `CAIRN_TEST_SCHEMATHESIS_SEED` for another seed).
const MAX_EXAMPLES: &str = "40";
/// The run as a project owner who is not a site admin.
const MEMBER_EXAMPLES: &str = "10";
/// The destructive operations' own run (see [`DESTRUCTIVE`]).
const DESTRUCTIVE_EXAMPLES: &str = "25";
/// A fixed seed, so a CI failure can be replayed.
const SEED: &str = "20261127";
/// The least number of cases the main run must have tried: a run that generated nothing (an
/// empty document, every operation filtered out) must not pass.
const MIN_CASES: u64 = 2_000;

/// Operations that, given the admin's own identifiers, would lock the rest of the run out:
/// revoking the caller's token, deactivating or demoting the caller. The main run leaves them
/// out; a run of their own tests them as a disposable admin.
const DESTRUCTIVE: [&str; 3] =
    ["/tokens/{id}", "/users/{username}/deactivate", "/users/{username}/site-role"];

/// The checks applied to every response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth";

/// The `schemathesis` command of the venv `CAIRN_TEST_PYTHON` belongs to (the console script
/// beside the interpreter), or `None` (skipped; a failure when services are required).
fn schemathesis_command() -> Option<PathBuf> {
    let required = cairn_store::testsuite::services_required();
    let Ok(python) = std::env::var("CAIRN_TEST_PYTHON") else {
        assert!(!required, "CAIRN_TEST_PYTHON is not set but CAIRN_TEST_REQUIRE_SERVICES=1");
        eprintln!("SKIPPED: schemathesis (set CAIRN_TEST_PYTHON to a venv with schemathesis)");
        return None;
    };
    let command = Path::new(&python).with_file_name("schemathesis");
    match Command::new(&command).arg("--version").output() {
        Ok(output) if output.status.success() => {
            eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());
            Some(command)
        }
        _ => {
            assert!(
                !required,
                "{} is missing (crates/cairn/tests/mlflow/requirements.txt pins schemathesis)",
                command.display()
            );
            eprintln!("SKIPPED: schemathesis (no {})", command.display());
            None
        }
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cairn serve` on SQLite in `dir` with authentication on; returns it with its URL.
async fn start_server(dir: &Path) -> (Server, String) {
    let port = crate::support::free_port();
    let dead_proxy = format!("http://127.0.0.1:{}", crate::support::free_port());
    let child = Command::new(CAIRN)
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--auth", "enabled"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--job-tick-ms", "3600000", "--monitor-tick-ms", "3600000"])
        .arg("--python")
        .arg(dir.join("no-python"))
        .env("HTTP_PROXY", &dead_proxy)
        .env("HTTPS_PROXY", &dead_proxy)
        .env("ALL_PROXY", &dead_proxy)
        .env("http_proxy", &dead_proxy)
        .env("https_proxy", &dead_proxy)
        .env("all_proxy", &dead_proxy)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PIP_NO_INDEX", "1")
        .env_remove("CAIRN_RAY_ADDRESS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.log")).expect("log"))
        .spawn()
        .expect("start cairn serve");
    let server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "cairn serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, base)
}

/// What the generated requests can refer to.
struct Seeded {
    run_id: String,
    member_token: String,
}

/// Gives the run something to find: an experiment with runs, a registered model whose version
/// is deployed, an environment, a tier, a policy and a comment; a project `churn` with a team
/// and an owner who is no site admin.
async fn seed(api: &Api, admin: &str) -> Seeded {
    api.ok(admin, "POST", "/api/v1/projects", Some(json!({"name": "churn"}))).await;
    let member_token = user_token(api, admin, "member", "member").await;
    api.ok(admin, "PUT", "/api/v1/projects/churn/members/member", Some(json!({"role": "owner"})))
        .await;
    api.ok(admin, "POST", "/api/v1/teams", Some(json!({"name": "readers"}))).await;
    api.ok(admin, "PUT", "/api/v1/teams/readers/members/member", Some(json!({}))).await;
    // The native paths without a `/p/<project>` prefix act in the `default` project: the model,
    // its deployment and the policy live there so that generated requests can reach them.
    let mlflow = "/api/2.0/mlflow";
    let experiment = api
        .ok(admin, "POST", &format!("{mlflow}/experiments/create"), Some(json!({"name": "exp"})))
        .await;
    let experiment_id = experiment["experiment_id"].as_str().expect("an experiment id");
    let mut run_id = String::new();
    for index in 0..3 {
        let run = api
            .ok(
                admin,
                "POST",
                &format!("{mlflow}/runs/create"),
                Some(json!({"experiment_id": experiment_id, "run_name": format!("run-{index}")})),
            )
            .await;
        run_id = run["run"]["info"]["run_id"].as_str().expect("a run id").to_string();
        api.ok(
            admin,
            "POST",
            &format!("{mlflow}/runs/log-batch"),
            Some(json!({
                "run_id": run_id,
                "metrics": [{"key": "acc", "value": 0.5 + f64::from(index) / 10.0, "timestamp": 1, "step": 0}],
                "params": [{"key": "lr", "value": "0.01"}],
            })),
        )
        .await;
    }
    api.ok(
        admin,
        "POST",
        &format!("{mlflow}/registered-models/create"),
        Some(json!({"name": "churn-model"})),
    )
    .await;
    // Version 1 is the ONNX logistic regression of the serving fixtures, deployed as `churn-svc`.
    let logged = api
        .ok(
            admin,
            "POST",
            &format!("{mlflow}/logged-models"),
            Some(
                json!({"experiment_id": experiment_id, "name": "logreg", "source_run_id": run_id}),
            ),
        )
        .await;
    let model_id = logged["model"]["info"]["model_id"].as_str().expect("a model id");
    let uri = logged["model"]["info"]["artifact_uri"].as_str().expect("an artifact uri");
    let relative = uri.trim_start_matches("mlflow-artifacts:").trim_start_matches('/');
    let upload = reqwest::Client::new()
        .put(format!("{}/api/2.0/mlflow-artifacts/artifacts/{relative}/model.onnx", api.url))
        .bearer_auth(admin)
        .body(crate::serving::fixture("logreg.onnx"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(upload.status(), 200, "the model file is uploaded");
    api.ok(
        admin,
        "POST",
        &format!("{mlflow}/model-versions/create"),
        Some(json!({"name": "churn-model", "source": format!("models:/{model_id}"), "model_id": model_id})),
    )
    .await;
    api.ok(
        admin,
        "POST",
        "/api/v1/deployments",
        Some(json!({"name": "churn-svc", "routes": [{"model": "churn-model", "version": 1}]})),
    )
    .await;
    let environment = json!({"name": "py", "definition": {"requirements": []}});
    api.ok(admin, "POST", "/api/v1/environments", Some(environment)).await;
    let tier = json!({"spec": {"cpu": 1.0, "memory_mib": 512, "max_runtime_s": 60}});
    api.ok(admin, "PUT", "/api/v1/tiers/cpu", Some(tier)).await;
    api.ok(
        admin,
        "POST",
        "/api/v1/policies",
        Some(json!({"name": "gate", "target": "alias:prod"})),
    )
    .await;
    let comment = json!({"target": "project", "body": "hello @member"});
    api.ok(admin, "POST", "/api/v1/projects/default/comments", Some(comment)).await;
    Seeded { run_id, member_token }
}

/// Creates a user with this site role and a password, and returns a token the user made for
/// itself (an admin cannot mint another user's tokens over the API).
async fn user_token(api: &Api, admin: &str, username: &str, site_role: &str) -> String {
    let password = format!("{username}-password-0123456789");
    api.ok(
        admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": username, "site_role": site_role, "password": password})),
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/tokens", api.url))
        .basic_auth(username, Some(&password))
        .json(&json!({"name": "schemathesis"}))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 201, "a token for {username}");
    let created: Value = response.json().await.expect("json");
    created["secret"].as_str().expect("the token's secret").to_string()
}

/// `schemathesis.toml`: path parameters draw on the seeded names part of the time, so generated
/// requests reach existing resources as well as missing ones.
fn config(run_id: &str) -> String {
    format!(
        r#"
[dictionaries.project]
values = ["default", "churn"]
[dictionaries.name]
values = ["churn-model", "py", "cpu", "gate", "readers"]
[dictionaries.version]
values = ["1", 1]
[dictionaries.username]
values = ["member", "nobody"]
[dictionaries.team]
values = ["readers"]
[dictionaries.deployment]
values = ["churn-svc"]
[dictionaries.run_id]
values = ["{run_id}"]
[dictionaries.id]
values = [1, 2]

[parameters]
"path.project" = {{ dictionary = "project", probability = 0.7 }}
"path.name" = {{ dictionary = "name", probability = 0.5 }}
"path.version" = {{ dictionary = "version", probability = 0.5 }}
"path.username" = {{ dictionary = "username", probability = 0.5 }}
"path.team" = {{ dictionary = "team", probability = 0.5 }}
"path.deployment" = {{ dictionary = "deployment", probability = 0.7 }}
"path.run_id" = {{ dictionary = "run_id", probability = 0.5 }}
"path.id" = {{ dictionary = "id", probability = 0.3 }}
"#
    )
}

/// One schemathesis run; returns its output and how many cases it generated.
fn run_schemathesis(
    schemathesis: &Path,
    dir: &Path,
    base: &str,
    token: &str,
    extra: &[&str],
) -> (bool, String, u64) {
    let seed = std::env::var("CAIRN_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.to_string());
    let mut command = Command::new(schemathesis);
    command
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--url", &format!("{base}/api/v1")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS, "--seed", &seed, "--workers", "2"])
        .args(["--generation-database", "none", "--no-color", "--continue-on-failure"])
        .args(["--report", "ndjson", "--report-dir"])
        .arg(dir.join("report"))
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null());
    let output = command.output().expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The summary's "Test cases:" line: "8426 generated, 8426 passed".
    let cases = text
        .lines()
        .filter(|line| line.contains(" generated"))
        .find_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    (output.status.success(), text, cases)
}

/// The closing part of schemathesis's output, from its SUMMARY line.
fn summary(output: &str) -> &str {
    output
        .find("SUMMARY")
        .map_or(output, |start| &output[output[..start].rfind('\n').unwrap_or(0)..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_api_matches_its_openapi_document() {
    let Some(schemathesis) = schemathesis_command() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, base) = start_server(dir.path()).await;
    let admin = std::fs::read_to_string(dir.path().join("data/bootstrap-admin-token"))
        .expect("the bootstrap admin token")
        .trim()
        .to_string();
    let api = Api::new(base.clone());
    let seeded = seed(&api, &admin).await;
    std::fs::write(dir.path().join("schemathesis.toml"), config(&seeded.run_id)).expect("config");

    // The main run: every operation but the destructive ones.
    let started = Instant::now();
    let examples = std::env::var("CAIRN_TEST_SCHEMATHESIS_EXAMPLES")
        .unwrap_or_else(|_| MAX_EXAMPLES.to_string());
    let mut extra = vec!["--max-examples", examples.as_str()];
    for path in DESTRUCTIVE {
        extra.extend(["--exclude-path", path]);
    }
    let (passed, output, cases) =
        run_schemathesis(&schemathesis, dir.path(), &base, &admin, &extra);
    eprintln!("schemathesis, main run ({:.0?}):\n{}", started.elapsed(), summary(&output));
    assert!(passed, "schemathesis found failures:\n{output}");
    assert!(cases >= MIN_CASES, "only {cases} cases were generated:\n{output}");

    // The same as the project's owner, who is no site admin: the refusals' side.
    let started = Instant::now();
    let mut extra = vec!["--max-examples", MEMBER_EXAMPLES];
    for path in DESTRUCTIVE {
        extra.extend(["--exclude-path", path]);
    }
    let (passed, output, member_cases) =
        run_schemathesis(&schemathesis, dir.path(), &base, &seeded.member_token, &extra);
    eprintln!(
        "schemathesis, as a project owner ({:.0?}):\n{}",
        started.elapsed(),
        summary(&output)
    );
    assert!(passed, "schemathesis found failures:\n{output}");

    // The destructive operations alone, as a disposable admin who may lock itself out.
    let disposable = user_token(&api, &admin, "disposable", "admin").await;
    let started = Instant::now();
    let mut extra = vec!["--max-examples", DESTRUCTIVE_EXAMPLES];
    for path in DESTRUCTIVE {
        extra.extend(["--include-path", path]);
    }
    let (passed, output, destructive_cases) =
        run_schemathesis(&schemathesis, dir.path(), &base, &disposable, &extra);
    eprintln!(
        "schemathesis, destructive operations ({:.0?}):\n{}",
        started.elapsed(),
        summary(&output)
    );
    assert!(passed, "schemathesis found failures:\n{output}");
    assert!(destructive_cases > 0, "no destructive case was generated:\n{output}");

    // Without credentials every documented operation is refused with a 401 in the native format.
    let document: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/openapi.json"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut refused = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = path.replace(['{', '}'], "");
            let response = reqwest::Client::new()
                .request(method.to_uppercase().parse().unwrap(), format!("{base}/api/v1{concrete}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 401, "{method} {path} without credentials: {body}");
            assert_eq!(body["error"]["code"], "unauthenticated", "{method} {path}: {body}");
            refused += 1;
        }
    }
    eprintln!(
        "schemathesis: {cases} cases on the main run, {member_cases} as a project owner, {destructive_cases} on the destructive operations, {refused} operations refused without credentials"
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "the server still answers");
}
