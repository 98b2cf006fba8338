//! The chart and UI endpoints: sampled and bulk metric history, dataset summaries, and the
//! legacy `runs/log-model` record, on both metadata backends.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp};

const API: &str = "/api/2.0/mlflow";

async fn chart_endpoints(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let (_, body) = app.post(&format!("{API}/experiments/create"), json!({"name": "charts"})).await;
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    let mut run_ids = Vec::new();
    for _ in 0..2 {
        let (_, body) =
            app.post(&format!("{API}/runs/create"), json!({"experiment_id": experiment_id})).await;
        run_ids.push(body["run"]["info"]["run_id"].as_str().unwrap().to_string());
    }
    let metrics: Vec<_> = (0..100)
        .map(|step| json!({"key": "loss", "value": step, "timestamp": 1000 + step, "step": step}))
        .collect();
    for run_id in &run_ids {
        let (status, _) = app
            .post(&format!("{API}/runs/log-batch"), json!({"run_id": run_id, "metrics": metrics}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    let query =
        format!("run_ids={}&run_ids={}&metric_key=loss&max_results=10", run_ids[0], run_ids[1]);
    let (status, body) = app.get(&format!("{API}/metrics/get-history-bulk-interval?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let points = body["metrics"].as_array().unwrap();
    assert_eq!(points.len(), 20, "ten points per run");
    let first_run: Vec<i64> = points
        .iter()
        .filter(|p| p["run_id"] == run_ids[0].as_str())
        .map(|p| p["step"].as_i64().unwrap())
        .collect();
    assert_eq!(first_run.first(), Some(&0), "keeps the first point");
    assert_eq!(first_run.last(), Some(&99), "keeps the last point");
    assert!(first_run.windows(2).all(|w| w[0] < w[1]), "ordered by step: {first_run:?}");

    let (_, body) = app
        .get(&format!("{API}/metrics/get-history-bulk-interval?run_ids={}&metric_key=loss&start_step=10&end_step=19", run_ids[0]))
        .await;
    let steps: Vec<i64> =
        body["metrics"].as_array().unwrap().iter().map(|p| p["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, (10..20).collect::<Vec<_>>(), "a step window returns every point in it");
    let (status, _) = app
        .get(&format!(
            "{API}/metrics/get-history-bulk-interval?run_ids={}&metric_key=loss&start_step=5",
            run_ids[0]
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "start_step needs end_step");
    let (status, _) = app
        .get(&format!(
            "{API}/metrics/get-history-bulk-interval?run_ids={}&metric_key=loss&max_results=2501",
            run_ids[0]
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get(&format!("{API}/metrics/get-history-bulk-interval?run_ids=0123456789abcdef0123456789abcdef&metric_key=loss")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) =
        app.get(&format!("/ajax-api/2.0/mlflow/metrics/get-history-bulk?{query}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["metrics"].as_array().unwrap().len(), 10, "bulk history honours max_results");

    let dataset = json!({"name": "iris", "digest": "d1", "source_type": "local", "source": "{}"});
    let (status, _) = app
        .post(&format!("{API}/runs/log-inputs"), json!({"run_id": run_ids[0], "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/ajax-api/2.0/mlflow/experiments/search-datasets",
            json!({"experiment_ids": [experiment_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["dataset_summaries"],
        json!([{"experiment_id": experiment_id, "name": "iris", "digest": "d1", "context": "train"}])
    );

    let model = json!({"artifact_path": "model", "flavors": {"sklearn": {"config": {"x": 1}, "version": "1"}}, "utc_time_created": "now", "run_id": run_ids[0]});
    for _ in 0..2 {
        let (status, _) = app
            .post(
                &format!("{API}/runs/log-model"),
                json!({"run_id": run_ids[0], "model_json": model.to_string()}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, body) = app.get(&format!("{API}/runs/get?run_id={}", run_ids[0])).await;
    let history = body["run"]["data"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "mlflow.log-model.history")
        .expect("history tag")
        .clone();
    let history: serde_json::Value =
        serde_json::from_str(history["value"].as_str().unwrap()).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert!(history[0]["flavors"]["sklearn"].get("config").is_none(), "flavor configs are dropped");
    let (status, body) = app
        .post(
            &format!("{API}/runs/log-model"),
            json!({"run_id": run_ids[0], "model_json": "{\"flavors\": {}}"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().unwrap().starts_with("Model json is missing mandatory fields")
    );
}

#[tokio::test]
async fn chart_endpoints_on_sqlite() {
    chart_endpoints(Backend::Sqlite).await;
}

#[tokio::test]
async fn chart_endpoints_on_postgres() {
    chart_endpoints(Backend::Postgres).await;
}
