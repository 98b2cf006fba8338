//! Multipart uploads and presigned URLs. Cairn proxies every transfer itself (server-info
//! advertises neither capability, so the client never needs these), and answers these calls as
//! MLflow's own server does for a proxied, non-multipart artifact store: paths are validated
//! first, then the capability is refused with MLflow's codes and messages.

use axum::Json;
use axum::extract::State;
use cairn_domain::identity::Access;
use cairn_service::Services;

use crate::context::Caller;
use serde_json::Value;

use super::error::{MlflowError, MlflowResult};
use super::request::{MlflowRequest, Path, missing};

/// The longest presigned-URL lifetime cloud providers accept (7 days).
const MAX_EXPIRATION_SECONDS: i64 = 604_800;

fn not_implemented(message: &str) -> MlflowError {
    MlflowError { code: "NOT_IMPLEMENTED", message: message.to_string() }
}

fn scheme(uri: &str) -> &str {
    uri.split_once(':').map_or("", |(scheme, _)| scheme)
}

/// `POST mlflow-artifacts/mpu/{create,complete,abort}/{path}`.
pub async fn multipart(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(path): Path<String>,
) -> MlflowResult<Json<Value>> {
    services.artifacts.check_access(&context, &path, Access::Write).await?;
    Err(not_implemented("Multipart upload is not supported for the current artifact repository"))
}

/// `GET mlflow-artifacts/presigned/{path}`.
pub async fn presigned(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(path): Path<String>,
) -> MlflowResult<Json<Value>> {
    services.artifacts.check_access(&context, &path, Access::Read).await?;
    Err(not_implemented("Multipart download is not supported for the current artifact repository"))
}

/// `POST artifacts/presigned-upload-url`.
pub async fn presigned_upload_url(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.string("run_id")?.filter(|id| !id.is_empty());
    let model_id = request.string("model_id")?.filter(|id| !id.is_empty());
    let path = request.required_string("path")?;
    request.int("expiration")?;
    if run_id.is_some() == model_id.is_some() {
        return Err(MlflowError::invalid("Exactly one of run_id and model_id must be provided."));
    }
    services.artifacts.validate_path(&path)?;
    let artifact_uri = match (&run_id, &model_id) {
        (Some(run_id), _) => services.tracking.get_run(&context, run_id).await?.info.artifact_uri,
        (_, Some(model_id)) => {
            services.tracking.get_logged_model(&context, model_id).await?.artifact_uri
        }
        (None, None) => return Err(missing("run_id")),
    };
    let uri_scheme = scheme(&artifact_uri);
    if matches!(uri_scheme, "http" | "https" | "mlflow-artifacts") {
        return Err(MlflowError::invalid(format!(
            "Presigned upload is not supported for proxied artifact storage (artifact URI scheme: {uri_scheme}). This endpoint requires a direct cloud storage artifact URI."
        )));
    }
    Err(not_implemented("Presigned upload is not supported for the current artifact repository"))
}

/// `POST artifacts/presigned-download-url`.
pub async fn presigned_download_url(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.required_string("run_id")?;
    let path = request.required_string("path")?;
    services.artifacts.validate_path(&path)?;
    let expiration = request.int("expiration")?.unwrap_or(900);
    if !(1..=MAX_EXPIRATION_SECONDS).contains(&expiration) {
        return Err(MlflowError::invalid(format!(
            "expiration must be between 1 and {MAX_EXPIRATION_SECONDS} seconds (got {expiration})."
        )));
    }
    let artifact_uri = services.tracking.get_run(&context, &run_id).await?.info.artifact_uri;
    let uri_scheme = scheme(&artifact_uri);
    if matches!(uri_scheme, "http" | "https" | "mlflow-artifacts") {
        return Err(MlflowError::invalid(format!(
            "Presigned download is not supported for runs with proxied artifact storage (artifact URI scheme: {uri_scheme}). This endpoint requires a run with a direct cloud storage artifact URI."
        )));
    }
    Err(not_implemented("Presigned download is not supported for the current artifact repository"))
}
