//! MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/...`): streamed uploads and
//! downloads, one-level listings, deletes; and the tracking API's `artifacts/list` for a run.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_service::Services;

use crate::context::Caller;
use futures::TryStreamExt;
use serde_json::{Map, Value, json};

use super::error::{MlflowError, MlflowResult};
use super::request::{MlflowRequest, Path, Query};

/// The URI scheme of proxied artifact locations.
const PROXY_SCHEME: &str = "mlflow-artifacts:/";

/// Query of a proxy listing.
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    path: Option<String>,
}

fn guess_content_type(path: &str) -> &'static str {
    let extension =
        path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "txt" | "log" | "yaml" | "yml" | "md" | "py" | "mlmodel" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "csv" => "text/csv",
        _ => "application/octet-stream",
    }
}

/// `GET mlflow-artifacts/artifacts?path=dir`: entries named by basename, as MLflow answers.
pub async fn list(
    State(services): State<Services>,
    Caller(context): Caller,
    Query(query): Query<ListQuery>,
) -> MlflowResult<Json<Value>> {
    let entries = services.artifacts.list(&context, query.path.as_deref()).await?;
    let mut body = Map::new();
    if !entries.is_empty() {
        let files: Vec<Value> = entries
            .iter()
            .map(|entry| {
                let name = entry.path.rsplit('/').next().unwrap_or(&entry.path);
                let mut file = Map::new();
                file.insert("path".into(), json!(name));
                file.insert("is_dir".into(), json!(entry.is_dir));
                if let (false, Some(size @ 1..)) = (entry.is_dir, entry.size) {
                    file.insert("file_size".into(), json!(size));
                }
                Value::Object(file)
            })
            .collect();
        body.insert("files".into(), Value::Array(files));
    }
    Ok(Json(Value::Object(body)))
}

/// `GET mlflow-artifacts/artifacts/{path}`: streams the file.
pub async fn download(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(path): Path<String>,
) -> MlflowResult<Response> {
    let outcome = services.artifacts.download(&context, &path).await?;
    let stream = outcome.stream.map_err(std::io::Error::other);
    let file_name = path.rsplit('/').next().unwrap_or("artifact").replace('"', "");
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, guess_content_type(&path).to_string()),
            (header::CONTENT_LENGTH, outcome.size.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `PUT mlflow-artifacts/artifacts/{path}`: streams the body to the store, atomically.
pub async fn upload(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(path): Path<String>,
    request: Request,
) -> MlflowResult<Json<Value>> {
    let stream = request.into_body().into_data_stream().map_err(std::io::Error::other);
    services.artifacts.upload(&context, &path, Box::pin(stream)).await?;
    Ok(Json(json!({})))
}

/// `DELETE mlflow-artifacts/artifacts/{path}`.
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(path): Path<String>,
) -> MlflowResult<Json<Value>> {
    services.artifacts.delete(&context, &path).await?;
    Ok(Json(json!({})))
}

/// The store path under a proxied artifact URI (`mlflow-artifacts:/1/abc/artifacts` → `1/abc/artifacts`).
fn proxied_root(uri: &str) -> MlflowResult<&str> {
    uri.strip_prefix(PROXY_SCHEME).map(|root| root.trim_matches('/')).ok_or_else(|| {
        MlflowError::invalid(format!("artifacts at '{uri}' are not served by this server's proxy"))
    })
}

/// Joins a root and a caller-given relative path (validated by the artifact service).
fn under(root: &str, relative: &str) -> String {
    let relative = relative.trim_matches('/');
    if relative.is_empty() { root.to_string() } else { format!("{root}/{relative}") }
}

/// Lists `relative` under the artifact URI `root_uri`, answering paths relative to that root.
async fn list_under(
    services: &Services,
    context: &cairn_domain::audit::RequestContext,
    root_uri: &str,
    relative: &str,
) -> MlflowResult<Json<Value>> {
    let root = proxied_root(root_uri)?;
    let entries = services.artifacts.list(context, Some(&under(root, relative))).await?;
    let mut body = Map::new();
    body.insert("root_uri".into(), json!(root_uri));
    if !entries.is_empty() {
        let prefix = format!("{root}/");
        let files: Vec<Value> = entries
            .iter()
            .map(|entry| {
                let path = entry.path.strip_prefix(&prefix).unwrap_or(&entry.path);
                let mut file = Map::new();
                file.insert("path".into(), json!(path));
                file.insert("is_dir".into(), json!(entry.is_dir));
                if let (false, Some(size @ 1..)) = (entry.is_dir, entry.size) {
                    file.insert("file_size".into(), json!(size));
                }
                Value::Object(file)
            })
            .collect();
        body.insert("files".into(), Value::Array(files));
    }
    Ok(Json(Value::Object(body)))
}

/// `GET artifacts/list` (tracking API): entries relative to the run's artifact root.
pub async fn list_run(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run = services.tracking.get_run(&context, &request.run_id()?).await?;
    let relative = request.string("path")?.unwrap_or_default();
    list_under(&services, &context, &run.info.artifact_uri, &relative).await
}

/// `GET logged-models/{model_id}/artifacts/directories`: entries relative to the model's root.
pub async fn list_logged_model(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let model = services.tracking.get_logged_model(&context, &model_id).await?;
    let relative = request.string("artifact_directory_path")?.unwrap_or_default();
    list_under(&services, &context, &model.artifact_uri, &relative).await
}

/// `GET logged-models/{model_id}/artifacts/files` (UI): one file of a logged model.
pub async fn logged_model_file(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
    request: MlflowRequest,
) -> MlflowResult<Response> {
    let model = services.tracking.get_logged_model(&context, &model_id).await?;
    let relative = request.required_string("artifact_file_path")?;
    let path = under(proxied_root(&model.artifact_uri)?, &relative);
    download(State(services), Caller(context), Path(path)).await
}

/// `GET /get-artifact?run_uuid=…&path=…` (UI): one file of a run.
pub async fn run_file(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Response> {
    let run = services.tracking.get_run(&context, &request.run_id()?).await?;
    let relative = request.required_string("path")?;
    let path = under(proxied_root(&run.info.artifact_uri)?, &relative);
    download(State(services), Caller(context), Path(path)).await
}
