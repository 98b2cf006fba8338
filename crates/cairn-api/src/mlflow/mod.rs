//! The MLflow wire adapter: MLflow's routes, request parsing, validation messages, error codes
//! and JSON shapes, over the service layer. Nothing below this module knows MLflow's wire.

mod artifacts;
mod charts;
mod direct_transfer;
mod error;
mod experiments;
mod logged_models;
mod request;
mod runs;
mod wire;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use cairn_service::Services;
use serde_json::json;

pub use error::{MlflowError, MlflowResult};

/// The tracking and logged-model routes, relative to `/api/2.0/mlflow`.
fn tracking_routes() -> Router<Services> {
    Router::new()
        .route("/experiments/create", post(experiments::create))
        .route("/experiments/get", get(experiments::get))
        .route("/experiments/get-by-name", get(experiments::get_by_name))
        .route("/experiments/search", post(experiments::search).get(experiments::search))
        .route("/experiments/delete", post(experiments::delete))
        .route("/experiments/restore", post(experiments::restore))
        .route("/experiments/update", post(experiments::update))
        .route("/experiments/set-experiment-tag", post(experiments::set_tag))
        .route("/experiments/delete-experiment-tag", post(experiments::delete_tag))
        .route("/runs/create", post(runs::create))
        .route("/runs/get", get(runs::get))
        .route("/runs/update", post(runs::update))
        .route("/runs/delete", post(runs::delete))
        .route("/runs/restore", post(runs::restore))
        .route("/runs/log-metric", post(runs::log_metric))
        .route("/runs/log-parameter", post(runs::log_param))
        .route("/runs/set-tag", post(runs::set_tag))
        .route("/runs/delete-tag", post(runs::delete_tag))
        .route("/runs/log-batch", post(runs::log_batch))
        .route("/runs/log-inputs", post(runs::log_inputs))
        .route("/runs/outputs", post(runs::log_outputs))
        .route("/runs/search", post(runs::search).get(runs::search))
        .route("/metrics/get-history", get(runs::get_history))
        .route("/metrics/get-history-bulk-interval", get(charts::history_bulk_interval))
        .route("/metrics/get-history-bulk", get(charts::history_bulk))
        .route("/experiments/search-datasets", post(charts::search_datasets))
        .route("/runs/log-model", post(charts::log_model))
        .route("/artifacts/list", get(artifacts::list_run))
        .route("/logged-models", post(logged_models::create))
        .route("/logged-models/search", post(logged_models::search))
        .route(
            "/logged-models/{model_id}",
            get(logged_models::get).patch(logged_models::finalize).delete(logged_models::delete),
        )
        .route("/logged-models/{model_id}/tags", axum::routing::patch(logged_models::set_tags))
        .route(
            "/logged-models/{model_id}/tags/{tag_key}",
            axum::routing::delete(logged_models::delete_tag),
        )
        .route("/logged-models/{model_id}/params", post(logged_models::log_params))
        .route("/logged-models/{model_id}/artifacts/directories", get(artifacts::list_logged_model))
        .route("/logged-models/{model_id}/artifacts/files", get(artifacts::logged_model_file))
        .route("/artifacts/presigned-upload-url", post(direct_transfer::presigned_upload_url))
        .route("/artifacts/presigned-download-url", post(direct_transfer::presigned_download_url))
        .route("/server-info", get(server_info))
}

/// The artifact proxy routes, relative to `/api/2.0/mlflow-artifacts`.
fn artifact_routes() -> Router<Services> {
    Router::new()
        .route("/artifacts", get(artifacts::list))
        .route(
            "/artifacts/{*path}",
            get(artifacts::download).put(artifacts::upload).delete(artifacts::delete),
        )
        .route("/mpu/create/{*path}", post(direct_transfer::multipart))
        .route("/mpu/complete/{*path}", post(direct_transfer::multipart))
        .route("/mpu/abort/{*path}", post(direct_transfer::multipart))
        .route("/presigned/{*path}", get(direct_transfer::presigned))
        .layer(DefaultBodyLimit::disable())
}

/// What the 3.x client asks once per process before artifact transfers.
async fn server_info() -> axum::Json<serde_json::Value> {
    axum::Json(json!({
        "store_type": "SqlStore",
        "artifact_serving_enabled": true,
        "multipart_uploads_enabled": false,
        "multipart_downloads_enabled": false,
        "artifacts_presigned_only": false,
        "workspaces_enabled": false,
    }))
}

/// Every MLflow route, mounted under `/api` and `/ajax-api`, versions 2.0 and 3.0.
pub fn router() -> Router<Services> {
    let mut router = Router::new();
    for prefix in ["/api", "/ajax-api"] {
        for version in ["2.0", "3.0"] {
            router = router.nest(&format!("{prefix}/{version}/mlflow"), tracking_routes());
        }
        router = router.nest(&format!("{prefix}/2.0/mlflow-artifacts"), artifact_routes());
    }
    router.route("/get-artifact", get(artifacts::run_file))
}
