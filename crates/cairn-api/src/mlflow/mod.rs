//! The MLflow wire adapter: MLflow's routes, request parsing, validation messages, error codes
//! and JSON shapes, over the service layer. Nothing below this module knows MLflow's wire.

mod artifacts;
mod charts;
mod direct_transfer;
pub(crate) mod error;
mod experiments;
mod logged_models;
#[cfg(test)]
mod proptests;
mod registry;
mod request;
mod runs;
mod wire;

use axum::extract::DefaultBodyLimit;
use serde_json::json;

pub use error::{MlflowError, MlflowResult};
pub(crate) use request::Path as MlflowPath;

use crate::routes::{Needs, RouteTable};

/// The tracking and logged-model routes, relative to `/api/2.0/mlflow`.
fn tracking_routes() -> RouteTable {
    use Needs::{Authenticated, Read, Write};
    RouteTable::new()
        .add("POST", "/experiments/create", Write, experiments::create)
        .add("GET", "/experiments/get", Read, experiments::get)
        .add("GET", "/experiments/get-by-name", Read, experiments::get_by_name)
        .add("POST", "/experiments/search", Read, experiments::search)
        .add("GET", "/experiments/search", Read, experiments::search)
        .add("POST", "/experiments/delete", Write, experiments::delete)
        .add("POST", "/experiments/restore", Write, experiments::restore)
        .add("POST", "/experiments/update", Write, experiments::update)
        .add("POST", "/experiments/set-experiment-tag", Write, experiments::set_tag)
        .add("POST", "/experiments/delete-experiment-tag", Write, experiments::delete_tag)
        .add("POST", "/experiments/search-datasets", Read, charts::search_datasets)
        .add("POST", "/runs/create", Write, runs::create)
        .add("GET", "/runs/get", Read, runs::get)
        .add("POST", "/runs/update", Write, runs::update)
        .add("POST", "/runs/delete", Write, runs::delete)
        .add("POST", "/runs/restore", Write, runs::restore)
        .add("POST", "/runs/log-metric", Write, runs::log_metric)
        .add("POST", "/runs/log-parameter", Write, runs::log_param)
        .add("POST", "/runs/set-tag", Write, runs::set_tag)
        .add("POST", "/runs/delete-tag", Write, runs::delete_tag)
        .add("POST", "/runs/log-batch", Write, runs::log_batch)
        .add("POST", "/runs/log-inputs", Write, runs::log_inputs)
        .add("POST", "/runs/outputs", Write, runs::log_outputs)
        .add("POST", "/runs/log-model", Write, charts::log_model)
        .add("POST", "/runs/search", Read, runs::search)
        .add("GET", "/runs/search", Read, runs::search)
        .add("GET", "/metrics/get-history", Read, runs::get_history)
        .add("GET", "/metrics/get-history-bulk-interval", Read, charts::history_bulk_interval)
        .add("GET", "/metrics/get-history-bulk", Read, charts::history_bulk)
        .add("GET", "/artifacts/list", Read, artifacts::list_run)
        // Never writes: the lookup is authorised, then proxied storage is refused as in MLflow.
        .add("POST", "/artifacts/presigned-upload-url", Read, direct_transfer::presigned_upload_url)
        .add(
            "POST",
            "/artifacts/presigned-download-url",
            Read,
            direct_transfer::presigned_download_url,
        )
        .add("POST", "/logged-models", Write, logged_models::create)
        .add("POST", "/logged-models/search", Read, logged_models::search)
        .add("GET", "/logged-models/{model_id}", Read, logged_models::get)
        .add("PATCH", "/logged-models/{model_id}", Write, logged_models::finalize)
        .add("DELETE", "/logged-models/{model_id}", Write, logged_models::delete)
        .add("PATCH", "/logged-models/{model_id}/tags", Write, logged_models::set_tags)
        .add("DELETE", "/logged-models/{model_id}/tags/{tag_key}", Write, logged_models::delete_tag)
        .add("POST", "/logged-models/{model_id}/params", Write, logged_models::log_params)
        .add(
            "GET",
            "/logged-models/{model_id}/artifacts/directories",
            Read,
            artifacts::list_logged_model,
        )
        .add("GET", "/logged-models/{model_id}/artifacts/files", Read, artifacts::logged_model_file)
        .add("GET", "/server-info", Authenticated, server_info)
        .add("POST", "/registered-models/create", Write, registry::create_model)
        .add("GET", "/registered-models/get", Read, registry::get_model)
        .add("POST", "/registered-models/rename", Write, registry::rename_model)
        .add("PATCH", "/registered-models/update", Write, registry::update_model)
        .add("DELETE", "/registered-models/delete", Write, registry::delete_model)
        .add("GET", "/registered-models/search", Read, registry::search_models)
        .add("POST", "/registered-models/get-latest-versions", Read, registry::latest_versions)
        .add("GET", "/registered-models/get-latest-versions", Read, registry::latest_versions)
        .add("POST", "/registered-models/set-tag", Write, registry::set_model_tag)
        .add("DELETE", "/registered-models/delete-tag", Write, registry::delete_model_tag)
        .add("POST", "/registered-models/alias", Write, registry::set_alias)
        .add("DELETE", "/registered-models/alias", Write, registry::delete_alias)
        .add("GET", "/registered-models/alias", Read, registry::get_alias)
        .add("POST", "/model-versions/create", Write, registry::create_version)
        .add("GET", "/model-versions/get", Read, registry::get_version)
        .add("PATCH", "/model-versions/update", Write, registry::update_version)
        .add("DELETE", "/model-versions/delete", Write, registry::delete_version)
        .add("POST", "/model-versions/transition-stage", Write, registry::transition_stage)
        .add("GET", "/model-versions/search", Read, registry::search_versions)
        .add("GET", "/model-versions/get-download-uri", Read, registry::download_uri)
        .add("POST", "/model-versions/set-tag", Write, registry::set_version_tag)
        .add("DELETE", "/model-versions/delete-tag", Write, registry::delete_version_tag)
}

/// The artifact proxy routes, relative to `/api/2.0/mlflow-artifacts`.
fn artifact_routes() -> RouteTable {
    use Needs::{Read, Write};
    RouteTable::new()
        .add("GET", "/artifacts", Read, artifacts::list)
        .add("GET", "/artifacts/{*path}", Read, artifacts::download)
        .add("PUT", "/artifacts/{*path}", Write, artifacts::upload)
        .add("DELETE", "/artifacts/{*path}", Write, artifacts::delete)
        .add("POST", "/mpu/create/{*path}", Write, direct_transfer::multipart)
        .add("POST", "/mpu/complete/{*path}", Write, direct_transfer::multipart)
        .add("POST", "/mpu/abort/{*path}", Write, direct_transfer::multipart)
        .add("GET", "/presigned/{*path}", Read, direct_transfer::presigned)
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

/// Every MLflow route, mounted under `/api` and `/ajax-api`, versions 2.0 and 3.0, with the
/// declaration of what each needs.
pub fn routes() -> RouteTable {
    let mut table = RouteTable::new();
    for prefix in ["/api", "/ajax-api"] {
        for version in ["2.0", "3.0"] {
            table = table.nest(&format!("{prefix}/{version}/mlflow"), tracking_routes());
        }
        table = table.nest(&format!("{prefix}/2.0/mlflow-artifacts"), artifact_routes());
    }
    table.add("GET", "/get-artifact", Needs::Read, artifacts::run_file)
}
