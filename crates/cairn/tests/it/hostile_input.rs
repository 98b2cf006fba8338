//! Hostile input (issue 10's attack table), over a real socket against a server with
//! authentication on: each attack gets the right refusal — a 4xx in the surface's own error
//! format, never a 5xx, never a panic — and leaves nothing behind: no file outside the artifact
//! root, the tables intact, the server still answering.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::compute::{Api, token};
use crate::rbac::fixture;
use crate::support::{Backend, TestApp};

/// Sends raw bytes on a fresh connection and returns the status line's code (0 when the
/// server closed the connection without answering).
fn raw_status(address: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
        if answer.windows(4).any(|window| window == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

async fn attacks(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, owner, contributor, viewer) = (
        token(&f.tokens, "admin"),
        token(&f.tokens, "owner"),
        token(&f.tokens, "contributor"),
        token(&f.tokens, "viewer"),
    );
    let http = reqwest::Client::new();
    let mlflow = format!("{}/api/2.0/mlflow", api.url);
    let run = api
        .ok(
            contributor,
            "POST",
            "/p/churn/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": f.experiment_id})),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let prefix = run["run"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches("mlflow-artifacts:")
        .trim_start_matches('/')
        .to_string();
    let outside = app.data_dir.parent().unwrap().join("escaped.txt");

    // 1. Path traversal in artifact paths: raw, encoded, double-encoded, absolute, Windows-style.
    let artifacts = format!("{}/api/2.0/mlflow-artifacts/artifacts", api.url);
    for path in [
        format!("{prefix}/../../../escaped.txt"),
        format!("{prefix}/%2e%2e/%2e%2e/%2e%2e/escaped.txt"),
        format!("{prefix}/%252e%252e/%252e%252e/escaped.txt"),
        format!("{prefix}/..%2f..%2f..%2fescaped.txt"),
        "/etc/passwd".to_string(),
        "%2Fetc%2Fpasswd".to_string(),
        format!("{prefix}/..\\..\\..\\escaped.txt"),
        format!("{prefix}/..%5c..%5c..%5cescaped.txt"),
        "C:\\Windows\\escaped.txt".to_string(),
        format!("{prefix}/a%00b"),
    ] {
        for method in ["PUT", "GET", "DELETE"] {
            let request = http
                .request(method.parse().unwrap(), format!("{artifacts}/{path}"))
                .bearer_auth(contributor)
                .body("escaped");
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(matches!(status, 400 | 403 | 404), "{method} {path}: {status} {body}");
            assert!(
                body["error_code"].is_string(),
                "{method} {path}: MLflow's error format: {body}"
            );
        }
        let listing = http
            .get(format!("{artifacts}?path={path}"))
            .bearer_auth(contributor)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(listing.status().as_u16(), 400 | 403 | 404),
            "list {path}: {}",
            listing.status()
        );
    }
    assert!(!outside.exists(), "nothing was written outside the artifact root");

    // 2. Oversized bodies and headers.
    let huge = vec![b' '; 65 * 1024 * 1024];
    let response = http
        .post(format!("{mlflow}/runs/log-batch"))
        .bearer_auth(contributor)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert!(
        matches!(response.status().as_u16(), 400 | 413),
        "a 65 MiB JSON body: {}",
        response.status()
    );
    let long_header = format!(
        "GET /api/2.0/mlflow/experiments/search HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let status = raw_status(server.address, long_header.as_bytes());
    assert!(status == 431 || status == 400 || status == 0, "a 1 MiB header: {status}");

    // 3. Deeply nested JSON, invalid UTF-8, malformed JSON.
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for (what, body) in [
        ("deep nesting", nested.into_bytes()),
        ("invalid UTF-8", b"{\"name\": \"\xff\xfe\"}".to_vec()),
        ("truncated", b"{\"name\": ".to_vec()),
    ] {
        let response = http
            .post(format!("{mlflow}/experiments/create"))
            .bearer_auth(contributor)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{what}: {body}");
    }
    let response = http
        .get(format!("{}/api/v1/projects/%ff%fe", api.url))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "invalid UTF-8 in a path: {}", response.status());
    // Path parameters that do not decode (found by schemathesis): each surface's own 400, not
    // axum's plain-text rejection.
    for (path, format) in [
        ("/api/v1/projects/churn/jobs/9223372036854775808", "native"),
        ("/api/v1/projects/churn/jobs/%ff", "native"),
        ("/api/v1/deployments/x/checks/not-a-number", "native"),
        ("/api/2.0/mlflow/logged-models/%ff%fe", "mlflow"),
        ("/api/2.0/mlflow/logged-models/m-1/tags/%ff", "mlflow"),
        ("/api/2.0/mlflow-artifacts/artifacts/%ff%fe/x", "mlflow"),
        ("/serve/%ff/ping", "mlflow"),
        ("/v2/models/%ff/ready", "oip"),
    ] {
        let method = if path.contains("/tags/") { "DELETE" } else { "GET" };
        let response = http
            .request(method.parse().unwrap(), format!("{}{path}", api.url))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let formatted = match format {
            "native" => body["error"]["code"] == "invalid_argument",
            "mlflow" => body["error_code"] == "INVALID_PARAMETER_VALUE",
            _ => body["error"].is_string(),
        };
        assert!(status == 400 && formatted, "{method} {path}: {status} {body}");
    }

    // 4. Huge metric batches (MLflow's limits: 1000 metrics, 100 params, 100 tags per call).
    let metrics: Vec<Value> = (0..10_001)
        .map(|step| json!({"key": "m", "value": 1.0, "timestamp": 1, "step": step}))
        .collect();
    let (status, body) = api
        .call(
            contributor,
            "POST",
            "/api/2.0/mlflow/runs/log-batch",
            Some(json!({"run_id": run_id, "metrics": metrics})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");

    // 5. SQL metacharacters in every filter and order field: answered, never a 5xx; tables intact.
    let evil = [
        "x' OR '1'='1",
        "x'; DROP TABLE runs; --",
        "\" OR \"\"=\"",
        "%' UNION SELECT * FROM users --",
        "x\\' OR 1=1 --",
    ];
    for value in evil {
        let quoted = value.replace('\'', "''");
        for (path, body) in [
            (
                "/api/2.0/mlflow/runs/search",
                json!({"experiment_ids": [f.experiment_id], "filter": format!("params.lr = '{quoted}'")}),
            ),
            (
                "/api/2.0/mlflow/runs/search",
                json!({"experiment_ids": [f.experiment_id], "filter": format!("tags.`{value}` = 'x'")}),
            ),
            (
                "/api/2.0/mlflow/runs/search",
                json!({"experiment_ids": [f.experiment_id], "filter": format!("attributes.run_name LIKE '{quoted}'")}),
            ),
            (
                "/api/2.0/mlflow/runs/search",
                json!({"experiment_ids": [f.experiment_id], "order_by": [format!("metrics.`{value}` DESC")]}),
            ),
            (
                "/api/2.0/mlflow/runs/search",
                json!({"experiment_ids": [f.experiment_id], "order_by": [value]}),
            ),
            ("/api/2.0/mlflow/runs/search", json!({"experiment_ids": [value]})),
            (
                "/api/2.0/mlflow/experiments/search",
                json!({"filter": format!("name LIKE '{quoted}'")}),
            ),
            ("/api/2.0/mlflow/experiments/search", json!({"order_by": [value]})),
            (
                "/api/2.0/mlflow/logged-models/search",
                json!({"experiment_ids": [f.experiment_id], "filter": format!("name = '{quoted}'")}),
            ),
        ] {
            let (status, answer) = api.call(admin, "POST", path, Some(body.clone())).await;
            assert!(
                status == 200 || status == 400 || status == 404,
                "{path} {body}: {status} {answer}"
            );
            if status == 200 && body.get("filter").is_some() {
                let found = answer["runs"]
                    .as_array()
                    .or(answer["experiments"].as_array())
                    .map_or(0, Vec::len);
                assert!(found <= 1, "an injected filter matched too much: {path} {body}: {answer}");
            }
        }
        for path in ["registered-models/search", "model-versions/search"] {
            let filter = urlencoding(&format!("name = '{quoted}'"));
            let url = format!("/api/2.0/mlflow/{path}?filter={filter}");
            let (status, answer) = api.call(admin, "GET", &url, None).await;
            assert!(status == 200 || status == 400, "{url}: {status} {answer}");
        }
        let (status, answer) = api
            .call(admin, "GET", &format!("/api/v1/audit-events?actor={}", urlencoding(value)), None)
            .await;
        assert!(status == 200 || status == 400, "audit filter {value}: {status} {answer}");
    }
    let (status, answer) = api
        .call(
            admin,
            "POST",
            "/api/2.0/mlflow/runs/search",
            Some(json!({"experiment_ids": [f.experiment_id]})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        answer["runs"].as_array().is_some_and(|runs| runs.len() >= 2),
        "the runs table is intact: {answer}"
    );

    // 6. Token replay after revocation.
    let created =
        api.ok(viewer, "POST", "/api/v1/tokens", Some(json!({"name": "short-lived"}))).await;
    let secret = created["secret"].as_str().expect("the new token's secret").to_string();
    let id = created["token"]["id"].as_i64().expect("the token's id");
    api.ok(&secret, "GET", "/api/v1/me", None).await;
    let (status, _) = api.call(viewer, "DELETE", &format!("/api/v1/tokens/{id}"), None).await;
    assert!(status == 200 || status == 204, "revoked: {status}");
    for _ in 0..3 {
        let (status, body) = api.call(&secret, "GET", "/api/v1/me", None).await;
        assert_eq!(status, 401, "a revoked token is refused on replay: {body}");
        let (status, body) =
            api.call(&secret, "POST", "/api/2.0/mlflow/experiments/search", Some(json!({}))).await;
        assert_eq!((status, body["error_code"].as_str()), (401, Some("UNAUTHENTICATED")), "{body}");
    }

    // 7. Privilege escalation through team membership.
    api.ok(admin, "POST", "/api/v1/teams", Some(json!({"name": "readers"}))).await;
    let (status, _) =
        api.call(viewer, "PUT", "/api/v1/teams/readers/members/viewer", Some(json!({}))).await;
    assert_eq!(status, 403, "a member may not add themselves to a team");
    let (status, _) = api
        .call(owner, "PUT", "/api/v1/projects/other/teams/readers", Some(json!({"role": "owner"})))
        .await;
    assert_eq!(status, 403, "an owner of one project may not attach a team to another");
    api.ok(admin, "PUT", "/api/v1/teams/readers/members/viewer", Some(json!({}))).await;
    let (status, _) = api
        .call(owner, "PUT", "/api/v1/projects/churn/teams/readers", Some(json!({"role": "viewer"})))
        .await;
    assert!(
        status == 200 || status == 204,
        "the project's owner attaches the team as viewers: {status}"
    );
    let (status, _) = api
        .call(
            viewer,
            "POST",
            "/p/churn/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": f.experiment_id})),
        )
        .await;
    assert_eq!(status, 403, "a viewer in a viewer team still may not write");
    let (status, _) = api
        .call(
            viewer,
            "PUT",
            "/api/v1/projects/churn/members/viewer",
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, 403, "a viewer may not raise their own role");
    let (status, _) = api
        .call(
            contributor,
            "PUT",
            "/api/v1/projects/churn/teams/readers",
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, 403, "a contributor may not raise a team's role");

    // The server is still healthy after all of it.
    let health = http.get(format!("{}/healthz", api.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    server.shutdown().await;
}

fn urlencoding(value: &str) -> String {
    value.bytes().map(|byte| format!("%{byte:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_refused_on_sqlite() {
    attacks(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_refused_on_postgres() {
    attacks(Backend::Postgres).await;
}
