//! Operator endpoints: liveness, readiness and the MLflow probes.

use axum::http::StatusCode;

use crate::support::{Backend, TestApp};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::new(Backend::Sqlite).await.expect("sqlite app");
    for path in ["/healthz", "/health", "/readyz", "/version"] {
        let request = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        let (status, _) = app.request(request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, body) = app.get("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::new(Backend::Sqlite).await.expect("sqlite app");
    app.app.store.close().await;
    let request = axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
    let (status, _) = app.request(request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn response_carries_a_request_id() {
    let app = TestApp::new(Backend::Sqlite).await.expect("sqlite app");
    let request = axum::http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app.app.router(), request).await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}
