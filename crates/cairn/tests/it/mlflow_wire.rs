//! The MLflow wire contract in-process: status codes, error codes and messages, field shapes,
//! on both metadata backends.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp};

const API: &str = "/api/2.0/mlflow";

async fn wire_contract(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let (status, body) = app.get(&format!("{API}/experiments/get?experiment_id=0")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["experiment"]["name"], "Default");

    let (status, body) = app.get(&format!("{API}/experiments/get?experiment_id=999999")).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    assert_eq!(body["message"], "No Experiment with id=999999 exists");
    let (status, body) = app.get(&format!("{API}/experiments/get?experiment_id=abc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
    );

    let (status, body) = app.post(&format!("{API}/experiments/create"), json!({"name": 123})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid value 123 for parameter 'name' supplied")
    );
    let (status, body) = app.post(&format!("{API}/experiments/create"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Missing value for required parameter 'name'.")
    );
    let (status, body) =
        app.post(&format!("{API}/experiments/create"), json!({"name": "wire", "bogus": 1})).await;
    assert_eq!(status, StatusCode::OK, "unknown fields are ignored");
    let experiment_id = body["experiment_id"].as_str().expect("string id").to_string();
    let (status, body) =
        app.post(&format!("{API}/experiments/create"), json!({"name": "wire"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("RESOURCE_ALREADY_EXISTS"))
    );
    let long_name = "x".repeat(501);
    let (status, body) =
        app.post(&format!("{API}/experiments/create"), json!({"name": long_name})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "'name' exceeds the maximum length of 500 characters");

    let (status, body) = app
        .post(
            &format!("{API}/runs/create"),
            json!({"experiment_id": experiment_id, "start_time": 5, "user_id": "ada"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let run_id = body["run"]["info"]["run_id"].as_str().expect("run id").to_string();
    assert_eq!(body["run"]["info"]["run_uuid"], run_id.as_str());
    assert!(body["run"]["info"].get("end_time").is_none(), "unset fields are omitted");
    assert_eq!(body["run"]["info"]["status"], "RUNNING");
    assert_eq!(body["run"]["info"]["start_time"], 5, "int64 as a JSON number");
    let (status, _) = app.post(&format!("{API}/runs/create"), json!({"experiment_id": 2})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "experiment_id must be a string");

    let log_path = format!("{API}/runs/log-metric");
    let log = |body: serde_json::Value| app.post(&log_path, body);
    let (status, _) =
        log(json!({"run_id": run_id, "key": "m", "value": "1.5", "timestamp": 1})).await;
    assert_eq!(status, StatusCode::OK, "numeric strings are accepted");
    let (status, _) =
        log(json!({"run_id": run_id, "key": "m", "value": "NaN", "timestamp": 2, "step": 1})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = log(json!({"run_id": run_id, "key": "m", "value": 1.0})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("'timestamp'"));
    let (status, body) =
        log(json!({"run_id": run_id, "key": "a*b", "value": 1.0, "timestamp": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("Names may only contain alphanumerics"));
    let (status, body) = app.get(&format!("{API}/runs/get?run_id={run_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["run"]["data"]["metrics"][0]["value"], "NaN", "NaN travels as a string");

    let param_path = format!("{API}/runs/log-parameter");
    let param =
        |value: &str| app.post(&param_path, json!({"run_id": run_id, "key": "lr", "value": value}));
    assert_eq!(param("0.1").await.0, StatusCode::OK);
    assert_eq!(param("0.1").await.0, StatusCode::OK);
    let (status, body) = param("0.2").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        format!(
            "Changing param values is not allowed. Param with key='lr' was already logged with value='0.1' for run ID='{run_id}'. Attempted logging new value '0.2'."
        )
    );

    let metrics: Vec<_> =
        (0..1001).map(|i| json!({"key": "k", "value": i, "timestamp": i})).collect();
    let (status, body) = app
        .post(&format!("{API}/runs/log-batch"), json!({"run_id": run_id, "metrics": metrics}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "A batch logging request can contain at most 1000 metrics. Got 1001 metrics. Please split up metrics across multiple requests and try again."
    );

    let (status, body) = app.get(&format!("{API}/runs/get?run_id=../x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Run with id=../x not found");

    let search_path = format!("{API}/runs/search");
    let search = |body: serde_json::Value| app.post(&search_path, body);
    let (status, body) =
        search(json!({"experiment_ids": [experiment_id], "filter": "metrics.m >> 1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().starts_with("Invalid comparator '>>'"));
    let (status, _) =
        search(json!({"experiment_ids": [experiment_id], "max_results": 50001})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) =
        search(json!({"experiment_ids": [experiment_id], "page_token": "garbage"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid page token, could not base64-decode");
    let (status, body) = search(json!({"experiment_ids": ["424242"]})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})), "unknown experiments yield nothing");
    let (status, body) = search(json!({"experiment_ids": [experiment_id], "order_by": ["metrics.m DESC", "metrics.m DESC"]})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "duplicate order_by is a client error, never a 500: {body}"
    );

    let (status, body) =
        app.post(&format!("{API}/experiments/search"), json!({"filter": "name = 'wire'"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "max_results is required: {body}");
    let (status, body) = app
        .post(
            &format!("{API}/experiments/search"),
            json!({"filter": "name = 'wire'", "max_results": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["experiments"][0]["experiment_id"], experiment_id.as_str());

    let request = axum::http::Request::post(format!("{API}/experiments/create"))
        .body(axum::body::Body::from("{\"name\": \"x\"}"))
        .unwrap();
    let (status, bytes) = app.request(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["message"], "Bad Request. Content-Type header is missing.");

    let (status, _) = app.post(&format!("{API}/runs/delete"), json!({"run_id": run_id})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        log(json!({"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 3})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        format!("The run {run_id} must be in the 'active' state. Current state is deleted.")
    );

    let (status, body) = app.get(&format!("/ajax-api/2.0/mlflow/runs/get?run_id={run_id}")).await;
    assert_eq!(status, StatusCode::OK, "ajax mirror serves the same routes");
    assert_eq!(body["run"]["info"]["lifecycle_stage"], "deleted");
    let (status, body) = app.get("/api/3.0/mlflow/server-info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["artifact_serving_enabled"], true);
}

#[tokio::test]
async fn wire_contract_on_sqlite() {
    wire_contract(Backend::Sqlite).await;
}

#[tokio::test]
async fn wire_contract_on_postgres() {
    wire_contract(Backend::Postgres).await;
}
