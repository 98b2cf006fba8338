//! Serving end to end over HTTP, on SQLite and PostgreSQL: ONNX models exported from
//! scikit-learn (the cairn-serving fixtures) are logged, registered and deployed; both protocols
//! answer what scikit-learn predicts; the deploy gate refuses ungoverned versions in a gated
//! environment; canary weights split traffic; a swap under load drops nothing; rollback restores
//! the previous traffic; unsupported models and bad inputs get clear errors.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{ProjectRole, SiteRole};
use cairn_service::UserSpec;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cairn-serving/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) app: std::sync::Arc<TestApp>,
    pub(crate) token: String,
}

impl Client {
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let (status, headers, bytes) =
            self.app.request_with_headers(request.body(body).unwrap()).await;
        (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub(crate) async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, _, value) = self.send(method, path, body).await;
        assert!(status.is_success(), "{method} {path} -> {status} {value}");
        value
    }

    pub(crate) async fn put_bytes(&self, path: &str, bytes: Vec<u8>) {
        let request = Request::put(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::from(bytes))
            .unwrap();
        let (status, _) = self.app.request(request).await;
        assert_eq!(status, StatusCode::OK, "upload {path}");
    }
}

/// Logs `file` as a logged model's `model.onnx` and registers it as the next version of `name`.
async fn register_onnx(client: &Client, experiment_id: &str, name: &str, file: &str) -> i64 {
    register_onnx_with(client, experiment_id, name, file, None).await
}

/// Like `register_onnx`, with an `MLmodel` file beside the model when given (its signature
/// names the input columns).
pub(crate) async fn register_onnx_with(
    client: &Client,
    experiment_id: &str,
    name: &str,
    file: &str,
    mlmodel: Option<&str>,
) -> i64 {
    let body = client
        .ok(
            "POST",
            "/p/ml/api/2.0/mlflow/logged-models",
            Some(json!({"experiment_id": experiment_id, "name": file})),
        )
        .await;
    let model_id = body["model"]["info"]["model_id"].as_str().unwrap().to_string();
    let uri = body["model"]["info"]["artifact_uri"].as_str().unwrap().to_string();
    let relative = uri.strip_prefix("mlflow-artifacts:/").unwrap().trim_start_matches('/');
    client
        .put_bytes(
            &format!("/api/2.0/mlflow-artifacts/artifacts/{relative}/model.onnx"),
            fixture(file),
        )
        .await;
    if let Some(mlmodel) = mlmodel {
        client
            .put_bytes(
                &format!("/api/2.0/mlflow-artifacts/artifacts/{relative}/MLmodel"),
                mlmodel.as_bytes().to_vec(),
            )
            .await;
    }
    let body = client
        .ok(
            "POST",
            "/p/ml/api/2.0/mlflow/model-versions/create",
            Some(json!({"name": name, "source": format!("models:/{model_id}"), "model_id": model_id})),
        )
        .await;
    body["model_version"]["version"].as_str().unwrap().parse().unwrap()
}

fn golden(name: &str) -> Value {
    let golden: Value = serde_json::from_slice(&fixture("golden.json")).unwrap();
    golden[name].clone()
}

fn assert_close(got: &Value, want: &Value) {
    let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        match (g.as_array(), w.as_array()) {
            (Some(_), Some(_)) => assert_close(g, w),
            _ => {
                let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
                assert!((g - w).abs() <= 1e-5, "{g} vs {w}");
            }
        }
    }
}

async fn serving(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let app = std::sync::Arc::new(app);
    let system = RequestContext::system();
    let services = &app.app.services;
    let (_, admin_token) = services.identity.bootstrap(&system, "admin").await.unwrap().unwrap();
    services.projects.create(&system, "ml", None, None).await.unwrap();
    services.projects.create(&system, "elsewhere", None, None).await.unwrap();
    let mut tokens = Vec::new();
    for (name, project, role) in [
        ("dev", "ml", ProjectRole::Contributor),
        ("app", "ml", ProjectRole::Viewer),
        ("stranger", "elsewhere", ProjectRole::Owner),
    ] {
        let spec = UserSpec {
            username: name.into(),
            site_role: SiteRole::Member,
            service_account: true,
            password: None,
            display_name: None,
            email: None,
        };
        services.identity.create_user(&system, &spec).await.unwrap();
        services.projects.set_member(&system, project, name, role).await.unwrap();
        tokens.push(services.identity.create_token(&system, name, "t", None).await.unwrap().1);
    }
    let dev = Client { app: app.clone(), token: tokens[0].clone() };
    let caller = Client { app: app.clone(), token: tokens[1].clone() };
    let stranger = Client { app: app.clone(), token: tokens[2].clone() };
    let admin = Client { app: app.clone(), token: admin_token };

    let body = dev
        .ok("POST", "/p/ml/api/2.0/mlflow/experiments/create", Some(json!({"name": "serving"})))
        .await;
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    dev.ok("POST", "/p/ml/api/2.0/mlflow/registered-models/create", Some(json!({"name": "risk"})))
        .await;
    let v1 = register_onnx(&dev, &experiment_id, "risk", "logreg.onnx").await;
    let v2 = register_onnx(&dev, &experiment_id, "risk", "forest.onnx").await;
    let v3 = register_onnx(&dev, &experiment_id, "risk", "logreg_zipmap.onnx").await;

    // Unsupported models are refused when deployed, naming the operator.
    let (status, _, body) = dev
        .send(
            "POST",
            "/p/ml/api/v1/deployments",
            Some(json!({"name": "bad", "routes": [{"model": "risk", "version": v3}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ZipMap"), "{body}");
    // Viewers may call deployments but not create them.
    let (status, _, _) = caller
        .send(
            "POST",
            "/p/ml/api/v1/deployments",
            Some(json!({"name": "x", "routes": [{"model": "risk", "version": v1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let created = dev
        .ok(
            "POST",
            "/p/ml/api/v1/deployments",
            Some(json!({"name": "risk-api", "routes": [{"model": "risk", "version": v1}]})),
        )
        .await;
    assert_eq!(created["revision"], 1);
    assert_eq!(created["routes"][0]["runtime"], "onnx");
    assert_eq!(created["routes"][0]["sha256"].as_str().unwrap().len(), 64);

    // MLflow scoring protocol, in every JSON format, answers as scikit-learn does.
    let lr = golden("logreg");
    let rows = lr["rows"].clone();
    let columns: Vec<String> = (0..8).map(|i| format!("f{i}")).collect();
    let records: Vec<Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            Value::Object(
                columns.iter().cloned().zip(row.as_array().unwrap().iter().cloned()).collect(),
            )
        })
        .collect();
    for body in [
        json!({"dataframe_split": {"columns": columns, "data": rows}}),
        json!({"instances": rows}),
        json!({"inputs": rows}),
        json!({"dataframe_records": records}),
    ] {
        let (status, headers, answer) =
            caller.send("POST", "/serve/risk-api/invocations", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(headers["x-cairn-model-version"], "risk/1");
        assert!(headers.contains_key("x-prediction-id"));
        let predictions = answer["predictions"].as_array().unwrap();
        let labels: Vec<Value> = predictions.iter().map(|p| p["label"].clone()).collect();
        assert_eq!(Value::Array(labels), lr["labels"]);
        let probabilities: Vec<Value> =
            predictions.iter().map(|p| p["probabilities"].clone()).collect();
        assert_close(&Value::Array(probabilities), &lr["probabilities"]);
    }
    // CSV bodies too: a header row, then rows.
    let mut csv = columns.join(",");
    for row in rows.as_array().unwrap() {
        let cells: Vec<String> = row.as_array().unwrap().iter().map(|v| v.to_string()).collect();
        csv.push('\n');
        csv.push_str(&cells.join(","));
    }
    let request = Request::post("/serve/risk-api/invocations")
        .header(header::AUTHORIZATION, format!("Bearer {}", caller.token))
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::from(csv))
        .unwrap();
    let (status, _, bytes) = app.request_with_headers(request).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let labels: Vec<Value> =
        answer["predictions"].as_array().unwrap().iter().map(|p| p["label"].clone()).collect();
    assert_eq!(Value::Array(labels), lr["labels"]);

    // The Open Inference Protocol, flat data with a shape, echoing the id.
    let flat: Vec<Value> =
        rows.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().clone()).collect();
    let answer = caller
        .ok(
            "POST",
            "/v2/models/risk-api/infer",
            Some(json!({"id": "req-7", "inputs": [{"name": "X", "shape": [25, 8], "datatype": "FP32", "data": flat}]})),
        )
        .await;
    assert_eq!(answer["id"], "req-7");
    assert_eq!(answer["model_version"], "risk/1");
    let probabilities = answer["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probabilities")
        .unwrap();
    assert_eq!(probabilities["shape"], json!([25, 2]));
    assert_eq!(probabilities["datatype"], "FP32");
    let want: Vec<Value> = lr["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().clone())
        .collect();
    assert_close(&probabilities["data"], &Value::Array(want));
    let metadata = caller.ok("GET", "/v2/models/risk-api", None).await;
    assert_eq!(metadata["inputs"][0], json!({"name": "X", "datatype": "FP32", "shape": [-1, 8]}));
    assert_eq!(caller.send("GET", "/v2/models/risk-api/ready", None).await.0, StatusCode::OK);

    // Bad input: a clear 400 naming the column and the expected type; wrong width; bad shape.
    let (status, _, body) = caller
        .send("POST", "/serve/risk-api/invocations", Some(json!({"dataframe_split": {"columns": columns, "data": [[1, 2, 3, 4, 5, 6, 7, "x"]]}})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "column 'f7', row 0: expected a number (float), got \"x\"");
    let (status, _, body) = caller
        .send("POST", "/serve/risk-api/invocations", Some(json!({"instances": [[1, 2]]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("takes 8 features"), "{body}");
    let (status, _, body) =
        caller.send("POST", "/serve/risk-api/invocations", Some(json!({"rows": [[1]]}))).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BAD_REQUEST"))
    );
    // Other projects' members get 403; unknown deployments 404.
    assert_eq!(
        stranger
            .send("POST", "/serve/risk-api/invocations", Some(json!({"instances": rows})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        caller.send("POST", "/serve/nope/invocations", Some(json!({"instances": rows}))).await.0,
        StatusCode::NOT_FOUND
    );

    // Canary: 80/20 between the logistic regression and the forest, over 2,000 calls.
    dev.ok(
        "PUT",
        "/p/ml/api/v1/deployments/risk-api",
        Some(json!({"routes": [{"model": "risk", "version": v1, "weight": 80}, {"model": "risk", "version": v2, "weight": 20}], "comment": "canary"})),
    )
    .await;
    let one_row = json!({"instances": [rows[0].clone()]});
    let mut forest = 0;
    for _ in 0..2000 {
        let (status, headers, _) =
            caller.send("POST", "/serve/risk-api/invocations", Some(one_row.clone())).await;
        assert_eq!(status, StatusCode::OK);
        if headers["x-cairn-model-version"] == "risk/2" {
            forest += 1;
        }
    }
    // Binomial(2000, 0.2): mean 400, standard deviation 17.9; ±5 sd.
    assert!((310..=490).contains(&forest), "forest answered {forest} of 2000");

    // A swap under load: a loop of calls running across two updates sees no error.
    let load = {
        let caller = caller.clone();
        let one_row = one_row.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..400 {
                statuses.push(
                    caller
                        .send("POST", "/serve/risk-api/invocations", Some(one_row.clone()))
                        .await
                        .0,
                );
            }
            statuses
        })
    };
    dev.ok(
        "PUT",
        "/p/ml/api/v1/deployments/risk-api",
        Some(json!({"routes": [{"model": "risk", "version": v2}]})),
    )
    .await;
    dev.ok("PUT", "/p/ml/api/v1/deployments/risk-api", Some(json!({"routes": [{"model": "risk", "version": v1, "weight": 50}, {"model": "risk", "version": v2, "weight": 50}]}))).await;
    let statuses = load.await.unwrap();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "errors during the swap: {statuses:?}");

    // Rollback returns to the previous revision's traffic (forest only).
    let rolled = dev.ok("POST", "/p/ml/api/v1/deployments/risk-api/rollback", None).await;
    assert_eq!(rolled["revision"], 5);
    assert_eq!(rolled["routes"].as_array().unwrap().len(), 1);
    let forest_golden = golden("forest");
    let answer = caller
        .ok(
            "POST",
            "/serve/risk-api/invocations",
            Some(json!({"instances": forest_golden["rows"]})),
        )
        .await;
    let labels: Vec<Value> =
        answer["predictions"].as_array().unwrap().iter().map(|p| p["label"].clone()).collect();
    assert_eq!(Value::Array(labels), forest_golden["labels"]);
    let history = caller.ok("GET", "/p/ml/api/v1/deployments/risk-api/history", None).await;
    let comments: Vec<Value> =
        history.as_array().unwrap().iter().map(|r| r["comment"].clone()).collect();
    assert_eq!(
        comments,
        vec![
            json!("created"),
            json!("canary"),
            Value::Null,
            Value::Null,
            json!("rollback to revision 3")
        ]
    );
    assert_eq!(history[1]["routes"][1]["share"], 20.0);

    // A deployment callable only by named accounts: the listed viewer may call it; members who
    // could otherwise read the project (and admins) may not; unknown accounts are refused.
    let (status, _, body) = dev
        .send(
            "POST",
            "/p/ml/api/v1/deployments",
            Some(json!({"name": "risk-locked", "routes": [{"model": "risk", "version": v1}], "callers": ["nobody"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let locked = dev
        .ok(
            "POST",
            "/p/ml/api/v1/deployments",
            Some(json!({"name": "risk-locked", "routes": [{"model": "risk", "version": v1}], "callers": ["app"]})),
        )
        .await;
    assert_eq!(locked["callers"], json!(["app"]));
    assert_eq!(
        caller.send("POST", "/serve/risk-locked/invocations", Some(one_row.clone())).await.0,
        StatusCode::OK
    );
    for outsider in [&dev, &admin] {
        let (status, _, body) =
            outsider.send("POST", "/serve/risk-locked/invocations", Some(one_row.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(body["message"].as_str().unwrap().contains("may be called only by app"), "{body}");
    }
    assert_eq!(
        dev.send("DELETE", "/p/ml/api/v1/deployments/risk-locked", None).await.0,
        StatusCode::NO_CONTENT
    );

    // The deploy gate: a policy gating "production" refuses versions without an approved
    // promotion, naming the policy; an ungated environment is open.
    let policy = admin
        .ok(
            "POST",
            "/p/ml/api/v1/policies",
            Some(json!({"name": "prod-gate", "target": "alias:champion", "rules": {"approvals": 1, "environments": ["production"]}})),
        )
        .await;
    let (status, _, body) = dev
        .send(
            "POST",
            "/p/ml/api/v1/deployments",
            Some(json!({"name": "risk-prod", "routes": [{"model": "risk", "version": v1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("deploy gate refuses risk version 1")
            && message.contains("policy 'prod-gate'"),
        "{message}"
    );
    dev.ok(
        "POST",
        "/p/ml/api/v1/deployments",
        Some(json!({"name": "risk-staging", "environment": "staging", "routes": [{"model": "risk", "version": v1}]})),
    )
    .await;
    let listed = caller.ok("GET", "/p/ml/api/v1/deployments", None).await;
    let names: Vec<&str> =
        listed.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["risk-api", "risk-staging"]);
    assert_eq!(
        dev.send("DELETE", "/p/ml/api/v1/deployments/risk-staging", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        caller.send("POST", "/serve/risk-staging/invocations", Some(one_row.clone())).await.0,
        StatusCode::NOT_FOUND
    );

    // While the policy is in force, even an existing production deployment cannot change to
    // ungoverned versions; without it, it can.
    let (status, _, _) = dev
        .send(
            "PUT",
            "/p/ml/api/v1/deployments/risk-api",
            Some(json!({"routes": [{"model": "risk", "version": v1}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let policy_path = format!("/p/ml/api/v1/policies/{}", policy["id"]);
    assert_eq!(admin.send("DELETE", &policy_path, None).await.0, StatusCode::NO_CONTENT);

    // `/metrics`: per-deployment counts by protocol, status and answering version; latency.
    let request = Request::get("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {}", caller.token))
        .body(Body::empty())
        .unwrap();
    let (status, _, bytes) = app.request_with_headers(request).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    let count = |needle: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(needle))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
    };
    assert!(
        count(
            "cairn_inference_requests_total{deployment=\"risk-api\",protocol=\"mlflow\",status=\"200\",model_version=\"risk/1\"}"
        ) >= 1600.0
    );
    assert_eq!(
        count(
            "cairn_inference_requests_total{deployment=\"risk-api\",protocol=\"oip\",status=\"200\",model_version=\"risk/1\"}"
        ),
        1.0
    );
    assert_eq!(
        count(
            "cairn_inference_requests_total{deployment=\"risk-api\",protocol=\"mlflow\",status=\"400\",model_version=\"\"}"
        ),
        3.0
    );
    assert!(
        count(
            "cairn_inference_request_duration_seconds_count{deployment=\"risk-api\",protocol=\"mlflow\"}"
        ) >= 2000.0
    );
    assert_eq!(
        app.request(Request::get("/metrics").body(Body::empty()).unwrap()).await.0,
        StatusCode::UNAUTHORIZED
    );

    // The same through the `cairn` binary against a real socket.
    let server = app.spawn().await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("rows.json");
    std::fs::write(&input, one_row.to_string()).unwrap();
    let (dev_token, app_token) = (dev.token.clone(), caller.token.clone());
    let input = input.to_str().unwrap().to_string();
    let cli_url = url.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let cairn = |token: &str, args: &[&str]| {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
                .args(args)
                .env("CAIRN_SERVER", &cli_url)
                .env("CAIRN_TOKEN", token)
                .env_remove("CAIRN_PROJECT")
                .output()
                .expect("run cairn");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let (ok, stdout, stderr) = cairn(
            &dev_token,
            &[
                "deploy",
                "update",
                "risk-api",
                "--project",
                "ml",
                "--model",
                "risk",
                "--version",
                "1",
                "--version",
                "2",
                "--weight",
                "3",
                "--weight",
                "1",
                "--comment",
                "cli canary",
            ],
        );
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains("risk version 1 — 75.0%") && stdout.contains("risk version 2 — 25.0%"),
            "{stdout}"
        );
        let (ok, stdout, stderr) =
            cairn(&dev_token, &["deploy", "show", "risk-api", "--project", "ml"]);
        assert!(ok, "{stderr}");
        assert!(
            stdout.contains("revision 6")
                && stdout.contains("(cli canary)")
                && stdout.contains("(rollback to revision 3)"),
            "{stdout}"
        );
        let (ok, stdout, stderr) =
            cairn(&app_token, &["deploy", "predict", "risk-api", "--input", &input]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("\"probabilities\""), "{stdout}");
        let (ok, _, stderr) =
            cairn(&app_token, &["deploy", "rollback", "risk-api", "--project", "ml"]);
        assert!(!ok && stderr.contains("403"), "viewers cannot roll back: {stderr}");
        let (ok, stdout, stderr) =
            cairn(&dev_token, &["deploy", "rollback", "risk-api", "--project", "ml"]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("at revision 7"), "{stdout}");
    })
    .await;
    outcome.expect("cli");

    // Capture and shadow: every row of every answered request is written to Parquet, with the
    // shadow's answers beside them (never returned); the server's graceful shutdown flushes.
    dev.ok(
        "POST",
        "/p/ml/api/v1/deployments",
        Some(json!({"name": "risk-shadow", "routes": [{"model": "risk", "version": v1}], "shadow": {"model": "risk", "version": v2}})),
    )
    .await;
    let client = reqwest::Client::new();
    let two_rows = json!({"instances": [rows[0].clone(), rows[1].clone()]});
    for i in 0..40 {
        let response = client
            .post(format!("{url}/serve/risk-shadow/invocations"))
            .bearer_auth(&caller.token)
            .header("x-prediction-id", format!("cap-{i}"))
            .json(&two_rows)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["x-cairn-model-version"],
            "risk/1",
            "the shadow never answers"
        );
        assert_eq!(response.headers()["x-prediction-id"], format!("cap-{i}").as_str());
    }
    server.shutdown().await;
    let primary = captured(&app, "risk-shadow", "primary");
    assert_eq!(primary.len(), 80, "every row of every request, flushed on shutdown");
    assert!(primary.iter().all(|r| r.version == 1 && r.features.len() == 8));
    let ids: std::collections::BTreeSet<&str> =
        primary.iter().map(|r| r.prediction_id.as_str()).collect();
    assert_eq!(ids.len(), 40);
    let first: Value = serde_json::from_str(&primary[0].outputs).unwrap();
    assert_eq!(first["label"], lr["labels"][primary[0].row as usize]);
    let mut shadow = Vec::new();
    for _ in 0..50 {
        app.app.services.deployments.flush_captures().await;
        shadow = captured(&app, "risk-shadow", "shadow");
        if shadow.len() >= 80 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(shadow.len(), 80);
    assert!(shadow.iter().all(|r| r.version == 2 && r.model == "risk"));
    assert_eq!(app.app.services.deployments.captures_dropped(), 0);
}

struct Captured {
    prediction_id: String,
    row: u32,
    model: String,
    version: i64,
    features: Vec<f32>,
    outputs: String,
}

/// Reads back every captured row of a deployment and variant from the Parquet files.
fn captured(app: &TestApp, deployment: &str, variant: &str) -> Vec<Captured> {
    use arrow_array::{Array, Float32Array, Int64Array, ListArray, StringArray, UInt32Array};
    let root = app.data_dir.join("artifacts/captures").join(deployment);
    let mut rows = Vec::new();
    let Ok(days) = std::fs::read_dir(&root) else { return rows };
    for day in days {
        let day = day.unwrap().path();
        assert!(day.file_name().unwrap().to_str().unwrap().starts_with("date="));
        for file in std::fs::read_dir(&day).unwrap() {
            let bytes = bytes::Bytes::from(std::fs::read(file.unwrap().path()).unwrap());
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let column = |name: &str| batch.column_by_name(name).unwrap().clone();
                let text = |name: &str| {
                    column(name).as_any().downcast_ref::<StringArray>().unwrap().clone()
                };
                let (ids, variants, models, outputs) =
                    (text("prediction_id"), text("variant"), text("model"), text("outputs"));
                let versions =
                    column("version").as_any().downcast_ref::<Int64Array>().unwrap().clone();
                let row_numbers =
                    column("row").as_any().downcast_ref::<UInt32Array>().unwrap().clone();
                let features =
                    column("features").as_any().downcast_ref::<ListArray>().unwrap().clone();
                for i in 0..batch.num_rows() {
                    if variants.value(i) != variant {
                        continue;
                    }
                    let values = features.value(i);
                    let values = values.as_any().downcast_ref::<Float32Array>().unwrap();
                    rows.push(Captured {
                        prediction_id: ids.value(i).to_string(),
                        row: row_numbers.value(i),
                        model: models.value(i).to_string(),
                        version: versions.value(i),
                        features: (0..values.len()).map(|j| values.value(j)).collect(),
                        outputs: outputs.value(i).to_string(),
                    });
                }
            }
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_on_sqlite() {
    serving(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_on_postgres() {
    serving(Backend::Postgres).await;
}
