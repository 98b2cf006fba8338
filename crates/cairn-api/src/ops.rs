//! Operator endpoints: liveness (`/healthz`, and MLflow's `/health`), readiness (`/readyz`:
//! the database and the artifact store answer; executors are reported) and the MLflow
//! `/version` probe.

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

/// `ready` or `not ready`, then one line per dependency (`database: ok`, `ray executor:
/// unavailable: …`); 503 when a required one (the database, the artifact store) is down. An
/// executor being down is reported but does not make the server unready: only jobs wait.
async fn readyz(State(services): State<Services>) -> (StatusCode, String) {
    let dependencies = services.dependencies().await;
    let ready =
        dependencies.iter().all(|dependency| !dependency.required || dependency.state.is_ok());
    let mut body = String::from(if ready { "ready" } else { "not ready" });
    for dependency in &dependencies {
        match &dependency.state {
            Ok(()) => body.push_str(&format!("\n{}: ok", dependency.name)),
            Err(error) => {
                tracing::warn!(dependency = %dependency.name, %error, "readiness check failed");
                body.push_str(&format!("\n{}: unavailable: {error}", dependency.name));
            }
        }
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body)
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
