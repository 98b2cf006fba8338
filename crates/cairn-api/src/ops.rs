//! Operator endpoints: liveness (`/healthz`, and MLflow's `/health`), readiness (`/readyz`:
//! the database and the artifact store answer) and the MLflow `/version` probe.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use cairn_service::Services;

/// The MLflow server version Cairn answers to, as `/version` reports it.
pub const MLFLOW_COMPAT_VERSION: &str = "3.18.0";

async fn healthz() -> &'static str {
    "OK"
}

async fn readyz(State(services): State<Services>) -> (StatusCode, String) {
    match services.readiness().await {
        Ok(()) => (StatusCode::OK, "ready".to_string()),
        Err(error) => {
            tracing::warn!(error.message = %error.message, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}", error.message))
        }
    }
}

async fn version() -> &'static str {
    MLFLOW_COMPAT_VERSION
}

/// The operator routes.
pub fn router() -> Router<Services> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/health", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
}
