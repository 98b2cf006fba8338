//! The native audit API: filters, stable keyset pages, the native error format, and the
//! OpenAPI document that describes it.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{Backend, TestApp};

async fn audit_api(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    for index in 0..5 {
        let (status, _) = app
            .post("/api/2.0/mlflow/experiments/create", json!({"name": format!("audit-{index}")}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, body) = app.post("/api/2.0/mlflow/runs/create", json!({"experiment_id": "1"})).await;
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();

    let (status, page) = app.get("/api/v1/audit-events?action=experiment.create&page_size=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["details"]["name"], "audit-0", "details are JSON objects");
    let mut seen: Vec<i64> =
        page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    let mut token = page["next_page_token"].as_str().map(str::to_string);
    while let Some(current) = token {
        let (status, page) = app
            .get(&format!(
                "/api/v1/audit-events?action=experiment.create&page_size=2&page_token={current}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
        token = page["next_page_token"].as_str().map(str::to_string);
    }
    assert_eq!(seen, [1, 2, 3, 4, 5], "pages visit every record once, in order");

    let (_, page) = app.get(&format!("/api/v1/audit-events?target=run:{run_id}")).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["action"], "run.create");
    let (_, page) = app.get("/api/v1/audit-events?action=run.").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "an action prefix ending in a dot");
    let (_, page) = app.get("/api/v1/audit-events?actor=someone-else").await;
    assert!(page["events"].as_array().unwrap().is_empty());
    let (_, page) = app.get("/api/v1/audit-events?since=0&until=1").await;
    assert!(page["events"].as_array().unwrap().is_empty());

    let (status, body) = app.get("/api/v1/audit-events?page_size=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_argument");
    let (status, body) = app.get("/api/v1/audit-events?since=yesterday").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a malformed query is a native error, not plain text"
    );
    assert_eq!(body["error"]["code"], "invalid_argument");
    let (status, _) = app.get("/api/v1/audit-events?page_token=garbage!").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn audit_api_on_sqlite() {
    audit_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn audit_api_on_postgres() {
    audit_api(Backend::Postgres).await;
}

#[tokio::test]
async fn openapi_document_describes_the_native_api() {
    let app = TestApp::new(Backend::Sqlite).await.expect("app");
    let (status, document) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(document["servers"][0]["url"], "/api/v1");
    let operation = &document["paths"]["/audit-events"]["get"];
    let parameters: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in ["actor", "action", "target", "since", "until", "page_size", "page_token"] {
        assert!(parameters.contains(&expected), "{expected} is documented");
    }
    assert!(document["components"]["schemas"]["AuditPage"].is_object());
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    // The answers every operation can give are documented once for all (schemathesis checks
    // them against the server: tests/it/schemathesis.rs).
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for status in ["400", "401", "403", "503"] {
        assert!(operation["responses"][status].is_object(), "/audit-events documents {status}");
    }
    assert!(document["paths"]["/me"]["get"]["responses"]["403"].is_null(), "/me needs no role");
}
