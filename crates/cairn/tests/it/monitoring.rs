//! Monitoring end to end, on SQLite, PostgreSQL, and PostgreSQL with S3: a deployed logistic regression with a
//! monitor spec (reference data logged with a run, per-feature thresholds, prediction drift,
//! an accuracy threshold, a webhook route); traffic whose distribution shifts halfway; ground
//! truth posted later by prediction id; the schedule fires on its own, opens alerts (once, while
//! they stay failed) and delivers them — signed, retried after a failure — to a webhook
//! receiver started by the test; traffic from the reference distribution closes them again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{ProjectRole, SiteRole};
use cairn_service::{MonitorConfig, NotifyConfig, UserSpec};
use serde_json::{Value, json};

use crate::serving::{Client, register_onnx_with};
use crate::support::{Backend, TestApp};

const FEATURES: usize = 8;
const SIGNING_KEY: &str = "monitoring-test-key";

/// A deterministic standard-normal generator (xorshift64* and Box–Muller).
pub(crate) struct Normal(pub(crate) u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// `count` rows of `FEATURES` values; the first `shifted` features moved by `shift`.
    pub(crate) fn rows(&mut self, count: usize, shifted: usize, shift: f64) -> Vec<Vec<f64>> {
        (0..count)
            .map(|_| {
                (0..FEATURES).map(|i| self.next() + if i < shifted { shift } else { 0.0 }).collect()
            })
            .collect()
    }
}

pub(crate) fn columns() -> Vec<String> {
    (0..FEATURES).map(|i| format!("f{i}")).collect()
}

pub(crate) fn mlmodel() -> String {
    let inputs: Vec<Value> = columns()
        .iter()
        .map(|name| json!({"type": "double", "name": name, "required": true}))
        .collect();
    format!("signature:\n  inputs: '{}'\n  outputs: null\n", Value::Array(inputs))
}

pub(crate) fn reference_parquet(rows: &[Vec<f64>], predictions: &[i64]) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (index, name) in columns().iter().enumerate() {
        fields.push(arrow_schema::Field::new(name, arrow_schema::DataType::Float64, false));
        arrays.push(Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r[index]))));
    }
    fields.push(arrow_schema::Field::new("prediction", arrow_schema::DataType::Int64, false));
    arrays.push(Arc::new(Int64Array::from(predictions.to_vec())));
    let batch = RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), arrays).unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

/// What the webhook receiver got: headers and body of each call.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on a real socket that answers 500 to its first call and 200 after.
async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let state = (received.clone(), calls);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            |axum::extract::State((received, calls)): axum::extract::State<(
                Received,
                Arc<std::sync::atomic::AtomicUsize>,
            )>,
             headers: HeaderMap,
             body: axum::body::Bytes| async move {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                received.lock().unwrap().push((headers, body.to_vec()));
                StatusCode::OK
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.with_state(state)).await.unwrap();
    });
    (format!("http://{address}/hook"), received)
}

/// Predicts `rows` in requests of 10 rows with the prediction ids `<prefix>-<n>`; returns
/// `(prediction id, row, label)` of every row.
pub(crate) async fn traffic(
    client: &Client,
    prefix: &str,
    rows: &[Vec<f64>],
) -> Vec<(String, usize, i64)> {
    let mut labels = Vec::new();
    for (n, chunk) in rows.chunks(10).enumerate() {
        let id = format!("{prefix}-{n}");
        let body = json!({"dataframe_split": {"columns": columns(), "data": chunk}});
        let request = Request::post("/serve/churn/invocations")
            .header(header::AUTHORIZATION, format!("Bearer {}", client.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-prediction-id", &id)
            .body(Body::from(body.to_string()))
            .unwrap();
        let (status, _, bytes) = client.app.request_with_headers(request).await;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "{answer}");
        for (row, prediction) in answer["predictions"].as_array().unwrap().iter().enumerate() {
            labels.push((id.clone(), row, prediction["label"].as_i64().unwrap()));
        }
    }
    labels
}

/// Posts ground truth as CSV: the predicted label, flipped when `flip`.
async fn ground_truth(client: &Client, labels: &[(String, usize, i64)], flip: bool) {
    let mut csv = String::from("prediction_id,row,value\n");
    for (id, row, label) in labels {
        let value = if flip { 1 - label } else { *label };
        csv.push_str(&format!("{id},{row},{value}\n"));
    }
    let request = Request::post("/p/ml/api/v1/deployments/churn/ground-truth")
        .header(header::AUTHORIZATION, format!("Bearer {}", client.token))
        .header(header::CONTENT_TYPE, "text/csv")
        .body(Body::from(csv))
        .unwrap();
    let (status, bytes) = client.app.request(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["rows"], labels.len());
}

/// Polls `probe` every 100 ms until it answers `Some`, for at most `seconds`.
pub(crate) async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    seconds: u64,
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn monitor_spec(run_id: &str, webhook: &str, schedule: &str, window: &str) -> Value {
    let features: Vec<Value> = columns()
        .iter()
        .map(|name| json!({"name": name, "method": "ks", "threshold": 0.001}))
        .collect();
    json!({
        "features": features,
        "reference": {"uri": format!("runs:/{run_id}/data/reference.parquet")},
        "prediction": {"output": "label", "column": "prediction", "threshold": 0.001},
        "quality": [{"metric": "accuracy", "min": 0.7}],
        "schedule": schedule,
        "window": window,
        "min_rows": 100,
        "alerts": [{"type": "webhook", "url": webhook}],
    })
}

async fn monitoring(backend: Backend, s3: bool) {
    let config = MonitorConfig {
        tick: Duration::from_millis(100),
        notify: NotifyConfig {
            signing_key: Some(SIGNING_KEY.into()),
            retry_base: Duration::from_millis(200),
            ..NotifyConfig::default()
        },
    };
    let Some(app) = TestApp::with_monitoring(backend, s3, config).await else { return };
    let app = Arc::new(app);
    let system = RequestContext::system();
    let services = &app.app.services;
    services.identity.bootstrap(&system, "admin").await.unwrap().unwrap();
    services.projects.create(&system, "ml", None, None).await.unwrap();
    let mut tokens = Vec::new();
    for (name, role) in [("dev", ProjectRole::Contributor), ("viewer", ProjectRole::Viewer)] {
        let spec = UserSpec {
            username: name.into(),
            site_role: SiteRole::Member,
            service_account: true,
            password: None,
            display_name: None,
            email: None,
        };
        services.identity.create_user(&system, &spec).await.unwrap();
        services.projects.set_member(&system, "ml", name, role).await.unwrap();
        tokens.push(services.identity.create_token(&system, name, "t", None).await.unwrap().1);
    }
    let dev = Client { app: app.clone(), token: tokens[0].clone() };
    let viewer = Client { app: app.clone(), token: tokens[1].clone() };
    let (webhook, received) = webhook_receiver().await;

    let body = dev
        .ok("POST", "/p/ml/api/2.0/mlflow/experiments/create", Some(json!({"name": "churn"})))
        .await;
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    dev.ok("POST", "/p/ml/api/2.0/mlflow/registered-models/create", Some(json!({"name": "churn"})))
        .await;
    let version =
        register_onnx_with(&dev, &experiment_id, "churn", "logreg.onnx", Some(&mlmodel())).await;
    dev.ok(
        "POST",
        "/p/ml/api/v1/deployments",
        Some(json!({
            "name": "churn",
            "routes": [{"model": "churn", "version": version}],
            "capture": {"enabled": false},
        })),
    )
    .await;

    // The reference: 500 rows from N(0, 1) with the model's own predictions, logged with a run.
    let mut normal = Normal(0x5eed_cafe);
    let reference = normal.rows(500, 0, 0.0);
    let reference_labels: Vec<i64> =
        traffic(&dev, "reference", &reference).await.into_iter().map(|(_, _, l)| l).collect();
    // From now on every answer is captured.
    dev.ok(
        "PUT",
        "/p/ml/api/v1/deployments/churn",
        Some(json!({"routes": [{"model": "churn", "version": version}]})),
    )
    .await;
    let run = dev
        .ok(
            "POST",
            "/p/ml/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": experiment_id, "start_time": 1})),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let artifact_uri = run["run"]["info"]["artifact_uri"].as_str().unwrap().to_string();
    let relative = artifact_uri.strip_prefix("mlflow-artifacts:/").unwrap().trim_start_matches('/');
    dev.put_bytes(
        &format!("/api/2.0/mlflow-artifacts/artifacts/{relative}/data/reference.parquet"),
        reference_parquet(&reference, &reference_labels),
    )
    .await;

    // Bad specs are refused when set, saying why; viewers may not set one.
    for (spec, expected) in [
        (
            json!({"reference": {"uri": format!("runs:/{run_id}/data/missing.parquet")}}),
            "cannot be read",
        ),
        (
            json!({"reference": {"uri": format!("runs:/{run_id}/data/reference.parquet")}, "features": [{"name": "nope"}]}),
            "not an input",
        ),
        (
            json!({"reference": {"uri": format!("runs:/{run_id}/data/reference.parquet")}, "schedule": "often"}),
            "invalid schedule",
        ),
    ] {
        let (status, _, body) = dev
            .send("PUT", "/p/ml/api/v1/deployments/churn/monitor", Some(json!({"monitor": spec})))
            .await;
        assert!(status.is_client_error(), "{status} {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(expected), "{body}");
    }
    let spec = monitor_spec(&run_id, &webhook, "0 0 1 1 *", "1h");
    let (status, _, _) = viewer
        .send("PUT", "/p/ml/api/v1/deployments/churn/monitor", Some(json!({"monitor": spec})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Without a feature list, the monitor takes the model's signature.
    let set = dev
        .ok(
            "PUT",
            "/p/ml/api/v1/deployments/churn/monitor",
            Some(json!({"monitor": {"reference": {"uri": format!("runs:/{run_id}/data/reference.parquet")}}})),
        )
        .await;
    let names: Vec<&str> = set["monitor"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, columns());
    let set = dev
        .ok("PUT", "/p/ml/api/v1/deployments/churn/monitor", Some(json!({"monitor": spec})))
        .await;
    let monitored_revision = set["revision"].as_i64().unwrap();
    assert_eq!(set["monitor"]["reference"]["resolved"]["sha256"].as_str().unwrap().len(), 64);

    // Too little traffic yet: insufficient data, no alert.
    let check = dev.ok("POST", "/p/ml/api/v1/deployments/churn/checks", None).await;
    assert_eq!(check["status"], "insufficient_data", "{check}");

    // Phase 1: traffic like the reference, ground truth agreeing with the model.
    let phase1 = normal.rows(300, 0, 0.0);
    let labels1 = traffic(&viewer, "p1", &phase1).await;
    services.deployments.flush_captures().await;
    ground_truth(&dev, &labels1, false).await;
    let check = dev.ok("POST", "/p/ml/api/v1/deployments/churn/checks", None).await;
    assert_eq!(check["status"], "passed", "{check}");
    assert_eq!(check["revision"], monitored_revision);
    let result = &check["result"];
    assert_eq!(result["current_rows"], 300);
    assert_eq!(result["reference_rows"], 500);
    for feature in result["features"].as_array().unwrap() {
        assert_eq!(feature["drift"]["method"], "ks", "{feature}");
        assert_eq!(feature["drift"]["drifted"], false, "{feature}");
    }
    assert_eq!(result["quality"]["metrics"]["accuracy"], 1.0);
    assert_eq!(result["quality"]["rows"], 300);
    assert!(result["prediction"]["drift"].is_object(), "{result}");
    let report = {
        let id = check["id"].as_i64().unwrap();
        let request = Request::get(format!("/p/ml/api/v1/deployments/churn/checks/{id}/report"))
            .header(header::AUTHORIZATION, format!("Bearer {}", viewer.token))
            .body(Body::empty())
            .unwrap();
        let (status, headers, bytes) = app.request_with_headers(request).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        String::from_utf8(bytes).unwrap()
    };
    assert!(report.contains("<svg") && report.contains("f7") && report.contains("passed"));

    // Phase 2: the first five features shift by two standard deviations; the model is now
    // wrong on every row.
    let phase2 = normal.rows(600, 5, 2.0);
    let labels2 = traffic(&viewer, "p2", &phase2).await;
    services.deployments.flush_captures().await;
    ground_truth(&dev, &labels2, true).await;
    assert!(received.lock().unwrap().is_empty(), "nothing failed yet");
    // Two manual checks at once both fail and open each alert once.
    let (first, second) = tokio::join!(
        dev.ok("POST", "/p/ml/api/v1/deployments/churn/checks", None),
        dev.ok("POST", "/p/ml/api/v1/deployments/churn/checks", None),
    );
    assert_eq!(
        (first["status"].as_str(), second["status"].as_str()),
        (Some("failed"), Some("failed"))
    );
    let alerts = dev.ok("GET", "/p/ml/api/v1/deployments/churn/alerts", None).await;
    let keys: Vec<&str> =
        alerts.as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(keys.len(), unique.len(), "{keys:?}");

    // Let the schedule fire (every second) on the running server.
    let server = app.spawn().await;
    let dev = &dev;
    let viewer = &viewer;
    let spec = monitor_spec(&run_id, &webhook, "* * * * * *", "1h");
    dev.ok("PUT", "/p/ml/api/v1/deployments/churn/monitor", Some(json!({"monitor": spec}))).await;
    let failed = eventually(30, "a failed scheduled check", move || async move {
        let checks = dev.ok("GET", "/p/ml/api/v1/deployments/churn/checks?limit=50", None).await;
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["trigger"] == "schedule" && c["status"] == "failed")
            .cloned()
    })
    .await;
    let failed_keys: Vec<&str> = failed["result"]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["failed"] == true)
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    for key in ["dataset_drift", "feature_drift:f0", "feature_drift:f4", "quality:accuracy"] {
        assert!(failed_keys.contains(&key), "{key} in {failed_keys:?}");
    }
    assert!(!failed_keys.contains(&"feature_drift:f7"), "{failed_keys:?}");
    // The webhook failed once and was retried: the delivered body is signed.
    let (headers, body) = eventually(30, "the webhook delivery", || {
        let first = received.lock().unwrap().first().cloned();
        async move { first }
    })
    .await;
    let signature = headers["x-cairn-signature"].to_str().unwrap();
    assert_eq!(signature, cairn_service::monitoring::signature(SIGNING_KEY, &body));
    assert_eq!(headers["x-cairn-attempt"], "2", "the first attempt got a 500");
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["deployment"], "churn");
    let opened: Vec<&str> =
        payload["opened"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert!(opened.contains(&"dataset_drift") && opened.contains(&"quality:accuracy"), "{payload}");
    // Later checks keep failing: the alerts stay open once, not once per check.
    eventually(30, "a second failed scheduled check", move || async move {
        let checks = dev.ok("GET", "/p/ml/api/v1/deployments/churn/checks?limit=50", None).await;
        let failed = checks.as_array().unwrap().iter().filter(|c| c["status"] == "failed").count();
        (failed >= 2).then_some(())
    })
    .await;
    let alerts = dev.ok("GET", "/p/ml/api/v1/deployments/churn/alerts", None).await;
    let keys: Vec<&str> =
        alerts.as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    let mut unique = keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(keys.len(), unique.len(), "one open alert per threshold: {keys:?}");
    assert!(keys.contains(&"dataset_drift"));
    let project_alerts = viewer.ok("GET", "/p/ml/api/v1/alerts", None).await;
    assert_eq!(project_alerts.as_array().unwrap().len(), keys.len());

    // The same through the command line.
    let url = server.url();
    let cli = |token: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--project", "ml"]);
        crate::cli_governance::cairn(&url, token, &all)
    };
    let (code, out, err) = cli(&dev.token, &["monitor", "show", "churn"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"f7\"") && out.contains("next scheduled check"), "{out}");
    let (code, out, err) = cli(&dev.token, &["monitor", "check", "churn"]);
    assert_eq!(code, 3, "a failed check exits 3: {out} {err}");
    assert!(out.contains("DRIFT") && out.contains("accuracy"), "{out}");
    let (code, out, _) = cli(&viewer.token, &["monitor", "alerts", "churn"]);
    assert_eq!(code, 0);
    assert!(out.contains("dataset_drift") && out.contains("quality:accuracy"), "{out}");
    let (code, out, _) = cli(&viewer.token, &["monitor", "checks", "churn", "--limit", "3"]);
    assert_eq!(code, 0);
    assert!(out.contains("failed"), "{out}");
    let scratch = tempfile::tempdir().unwrap();
    let report_file = scratch.path().join("report.html");
    let failed_id = failed["id"].to_string();
    let (code, _, err) = cli(
        &viewer.token,
        &["monitor", "report", "churn", &failed_id, "-o", report_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&report_file).unwrap();
    assert!(html.contains("<svg") && html.contains("dataset_drift"));
    let truth_file = scratch.path().join("truth.json");
    let (id, row, label) = &labels2[0];
    std::fs::write(
        &truth_file,
        json!([{"prediction_id": id, "row": row, "value": 1 - label}]).to_string(),
    )
    .unwrap();
    let (code, out, err) =
        cli(&dev.token, &["monitor", "ground-truth", "churn", truth_file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stored 1 "), "{out}");
    let spec_file = scratch.path().join("deploy-monitor.json");
    std::fs::write(&spec_file, monitor_spec(&run_id, &webhook, "0 0 1 1 *", "1h").to_string())
        .unwrap();
    let version_text = version.to_string();
    let (code, out, err) = cli(
        &dev.token,
        &[
            "deploy",
            "create",
            "churn-b",
            "--model",
            "churn",
            "--version",
            &version_text,
            "--environment",
            "test",
            "--monitor-file",
            spec_file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("monitor: 8 features") && out.contains("window 1h"), "{out}");
    let (code, _, err) = cli(&viewer.token, &["monitor", "check", "churn"]);
    assert_ne!(code, 0, "viewers may not run checks");
    assert!(err.contains("403"), "{err}");

    // Recovery: a short window over fresh reference-like traffic closes every alert. (Set from
    // a file with flags overriding it, through the command line.)
    let spec_file = scratch.path().join("monitor.json");
    let spec = monitor_spec(&run_id, &webhook, "* * * * * *", "1h");
    std::fs::write(&spec_file, spec.to_string()).unwrap();
    let (code, out, err) = cli(
        &dev.token,
        &[
            "monitor",
            "set",
            "churn",
            "--file",
            spec_file.to_str().unwrap(),
            "--window",
            "8s",
            "--schedule",
            "0 0 1 1 *",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 features") && out.contains("window 8s"), "{out}");
    let phase3 = normal.rows(300, 0, 0.0);
    let labels3 = traffic(viewer, "p3", &phase3).await;
    services.deployments.flush_captures().await;
    ground_truth(dev, &labels3, false).await;
    let spec = monitor_spec(&run_id, &webhook, "* * * * * *", "8s");
    dev.ok("PUT", "/p/ml/api/v1/deployments/churn/monitor", Some(json!({"monitor": spec}))).await;
    let passed = eventually(30, "a passing scheduled check", move || async move {
        let checks = dev.ok("GET", "/p/ml/api/v1/deployments/churn/checks?limit=5", None).await;
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["trigger"] == "schedule" && c["status"] == "passed")
            .cloned()
    })
    .await;
    // Phase 2 has aged out of the window; phase 3 is in it.
    assert!(passed["result"]["current_rows"].as_u64().unwrap() >= 100, "{passed}");
    let open = dev.ok("GET", "/p/ml/api/v1/deployments/churn/alerts", None).await;
    assert_eq!(open, json!([]), "every alert closed");
    let all = dev.ok("GET", "/p/ml/api/v1/deployments/churn/alerts?state=all", None).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|a| a["state"] == "closed" && a["closed_check"].is_i64())
    );
    let closed = eventually(30, "the recovery webhook", || {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| serde_json::from_slice::<Value>(body).unwrap())
            .find(|payload| !payload["closed"].as_array().unwrap().is_empty());
        async move { found }
    })
    .await;
    assert!(closed["closed"].as_array().unwrap().iter().any(|a| a["key"] == "dataset_drift"));
    // Alerts are in the audit log.
    let (records, _) = app
        .app
        .store
        .search_audit(&cairn_store::AuditQuery {
            action: Some("alert.open".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!records.is_empty());
    // Removing the monitor stops the schedule.
    dev.ok("DELETE", "/p/ml/api/v1/deployments/churn/monitor", None).await;
    let (status, _, body) = dev.send("POST", "/p/ml/api/v1/deployments/churn/checks", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_on_sqlite() {
    monitoring(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_on_postgres() {
    monitoring(Backend::Postgres, false).await;
}

/// Captures, the reference (ranged Parquet reads), reports and ground truth in a real
/// S3-compatible server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_on_postgres_and_s3() {
    monitoring(Backend::Postgres, true).await;
}

/// Several replicas asking at once: each due schedule is claimed by exactly one, and a claim
/// held by a dead replica is taken over once its lease expires.
async fn claimed_once(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let store = app.app.store.clone();
    let system = RequestContext::system();
    let project = app.app.services.projects.create(&system, "ml", None, None).await.unwrap();
    let spec: cairn_domain::serving::DeploymentSpec =
        serde_json::from_value(json!({"routes": [{"model": "m", "version": 1}]})).unwrap();
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let deployment =
            store.create_deployment(&system, project.id, name, "test", &spec).await.unwrap();
        store.set_monitor_schedule(deployment.id, Some((1, 1_000))).await.unwrap();
        ids.push(deployment.id);
    }
    let mut claims = Vec::new();
    for replica in 0..6 {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(id) =
                store.claim_due_monitor(&format!("r{replica}"), 2_000, 60_000).await.unwrap()
            {
                mine.push(id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for claim in claims {
        claimed.extend(claim.await.unwrap());
    }
    claimed.sort_unstable();
    assert_eq!(claimed, ids, "each due schedule claimed once");
    // Nothing is due while the leases hold; after they expire, another replica takes over.
    assert_eq!(store.claim_due_monitor("late", 59_000, 120_000).await.unwrap(), None);
    let taken = store.claim_due_monitor("late", 61_000, 120_000).await.unwrap().unwrap();
    // Released with its next run, a schedule is due again only then.
    store.release_monitor(taken, "late", 500_000).await.unwrap();
    let mut again = Vec::new();
    while let Some(id) = store.claim_due_monitor("later", 130_000, 200_000).await.unwrap() {
        again.push(id);
    }
    assert_eq!(again.len(), 2, "the released one waits for its next run");
    assert!(!again.contains(&taken));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_claimed_once_on_sqlite() {
    claimed_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_claimed_once_on_postgres() {
    claimed_once(Backend::Postgres).await;
}
