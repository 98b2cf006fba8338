//! Two replicas of Cairn on one PostgreSQL database and one S3 server (issue 10's scale-out,
//! first part): MLflow writes on one are read on the other; a deployment created on one is
//! served by the other, and a change made on one is served by the other within seconds; with
//! both replicas' schedulers running, each scheduled monitor check runs exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use cairn_domain::audit::RequestContext;
use cairn_service::{MonitorConfig, NotifyConfig};
use serde_json::{Value, json};

use crate::monitoring::{Normal, columns, eventually, mlmodel, reference_parquet, traffic};
use crate::serving::{Client, register_onnx_with};
use crate::support::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work() {
    let config = MonitorConfig { tick: Duration::from_millis(50), notify: NotifyConfig::default() };
    let Some(a) = TestApp::with_monitoring(Backend::Postgres, true, config).await else { return };
    let b = Arc::new(a.replica().await);
    let a = Arc::new(a);
    let system = RequestContext::system();
    let (_, token) = a.app.services.identity.bootstrap(&system, "admin").await.unwrap().unwrap();
    a.app.services.projects.create(&system, "ml", None, None).await.unwrap();
    let on_a = Client { app: a.clone(), token: token.clone() };
    let on_b = Client { app: b.clone(), token };

    // MLflow: a run created on A takes a metric through B and is read back on A.
    let body = on_a
        .ok("POST", "/p/ml/api/2.0/mlflow/experiments/create", Some(json!({"name": "scale"})))
        .await;
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    let run = on_a
        .ok(
            "POST",
            "/p/ml/api/2.0/mlflow/runs/create",
            Some(json!({"experiment_id": experiment_id, "start_time": 1})),
        )
        .await;
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    on_b.ok(
        "POST",
        "/p/ml/api/2.0/mlflow/runs/log-metric",
        Some(json!({"run_id": run_id, "key": "auc", "value": 0.91, "timestamp": 5, "step": 0})),
    )
    .await;
    let read =
        on_a.ok("GET", &format!("/p/ml/api/2.0/mlflow/runs/get?run_id={run_id}"), None).await;
    assert_eq!(read["run"]["data"]["metrics"][0]["value"], 0.91);

    // A deployment created on A is served by B (B fetches and verifies the model itself).
    on_a.ok(
        "POST",
        "/p/ml/api/2.0/mlflow/registered-models/create",
        Some(json!({"name": "churn"})),
    )
    .await;
    let v1 =
        register_onnx_with(&on_a, &experiment_id, "churn", "logreg.onnx", Some(&mlmodel())).await;
    let v2 =
        register_onnx_with(&on_a, &experiment_id, "churn", "logreg.onnx", Some(&mlmodel())).await;
    let mut normal = Normal(0xabad_1dea);
    let reference = normal.rows(200, 0, 0.0);
    let artifact_uri = run["run"]["info"]["artifact_uri"].as_str().unwrap().to_string();
    let relative = artifact_uri.strip_prefix("mlflow-artifacts:/").unwrap().trim_start_matches('/');
    on_a.put_bytes(
        &format!("/api/2.0/mlflow-artifacts/artifacts/{relative}/reference.parquet"),
        reference_parquet(&reference, &vec![0; reference.len()]),
    )
    .await;
    on_a.ok(
        "POST",
        "/p/ml/api/v1/deployments",
        Some(json!({
            "name": "churn",
            "environment": "test",
            "routes": [{"model": "churn", "version": v1}],
            "monitor": {
                "reference": {"uri": format!("runs:/{run_id}/reference.parquet")},
                "schedule": "* * * * * *",
                "window": "1h",
                "min_rows": 10,
            },
        })),
    )
    .await;
    let served = traffic(&on_b, "b", &normal.rows(20, 0, 0.0)).await;
    assert_eq!(served.len(), 20);

    // A change on A reaches B within seconds (B rechecks the revision at most every second).
    on_a.ok(
        "PUT",
        "/p/ml/api/v1/deployments/churn",
        Some(json!({"routes": [{"model": "churn", "version": v2}]})),
    )
    .await;
    let changed_at = Instant::now();
    let body = json!({"dataframe_split": {"columns": columns(), "data": normal.rows(1, 0, 0.0)}});
    let on_b_ref = &on_b;
    eventually(10, "replica B serving version 2", move || {
        let body = body.clone();
        async move {
            let (status, headers, _) =
                on_b_ref.send("POST", "/serve/churn/invocations", Some(body)).await;
            assert_eq!(status, StatusCode::OK);
            (headers["x-cairn-model-version"] == format!("churn/{v2}").as_str()).then_some(())
        }
    })
    .await;
    assert!(changed_at.elapsed() < Duration::from_secs(3), "{:?}", changed_at.elapsed());

    // Both schedulers run; every scheduled check is run by one of them only. (Setting the
    // monitor again schedules the next second from now, so no run is overdue when they start.)
    a.app.services.deployments.flush_captures().await;
    b.app.services.deployments.flush_captures().await;
    let monitor = on_b.ok("GET", "/p/ml/api/v1/deployments/churn/monitor", None).await;
    on_b.ok(
        "PUT",
        "/p/ml/api/v1/deployments/churn/monitor",
        Some(json!({"monitor": monitor["monitor"]})),
    )
    .await;
    let schedulers = [a.app.services.monitoring.start(), b.app.services.monitoring.start()];
    tokio::time::sleep(Duration::from_millis(4500)).await;
    for scheduler in schedulers {
        scheduler.abort();
    }
    let checks: Vec<Value> = on_a
        .ok("GET", "/p/ml/api/v1/deployments/churn/checks?limit=100", None)
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["trigger"] == "schedule")
        .cloned()
        .collect();
    assert!(checks.len() >= 3, "a check per second: {}", checks.len());
    let mut ends: Vec<i64> = checks.iter().map(|c| c["window_end"].as_i64().unwrap()).collect();
    ends.sort_unstable();
    for pair in ends.windows(2) {
        assert!(
            pair[1] - pair[0] >= 500,
            "two checks of the same schedule slot, {} ms apart: {ends:?}",
            pair[1] - pair[0]
        );
    }
    assert!(
        checks.iter().all(|c| c["status"] == "passed" || c["status"] == "failed"),
        "{checks:?}"
    );
    assert!(
        checks.iter().all(|c| c["result"]["current_rows"].as_u64().unwrap() >= 20),
        "the captures of replica B are checked"
    );
}
