//! MLflow experiment endpoints: create, get, get-by-name, search, update (rename), delete,
//! restore and experiment tags.

use axum::Json;
use axum::extract::State;
use cairn_domain::entities::{Tag, ViewType};
use cairn_domain::ids::ExperimentId;
use cairn_service::Services;

use crate::context::Caller;
use serde_json::{Value, json};

use super::error::{MlflowError, MlflowResult};
use super::request::{MlflowRequest, missing, wrong_type};
use super::wire;

/// The most experiments one search page may return.
const MAX_EXPERIMENTS_PER_PAGE: i64 = 50000;

/// Reads a list of `{key, value}` objects (tags); a missing key is rejected.
pub fn parse_tags(request: &MlflowRequest, field: &str) -> MlflowResult<Vec<Tag>> {
    request
        .objects(field)?
        .iter()
        .map(|object| {
            let key = match object.get("key") {
                Some(Value::String(key)) if !key.is_empty() => key.clone(),
                Some(Value::String(_)) | None | Some(Value::Null) => return Err(missing(field)),
                Some(other) => return Err(wrong_type("key", other)),
            };
            let value = match object.get("value") {
                Some(Value::String(value)) => value.clone(),
                None | Some(Value::Null) => String::new(),
                Some(other) => return Err(wrong_type("value", other)),
            };
            Ok(Tag { key, value })
        })
        .collect()
}

/// Reads and parses the required `experiment_id` field.
pub fn experiment_id(request: &MlflowRequest) -> MlflowResult<ExperimentId> {
    let raw = request.required_string("experiment_id")?;
    ExperimentId::parse(&raw).map_err(|error| MlflowError::invalid(error.message))
}

/// Parses MLflow's `view_type`/`run_view_type` enum (name or number); default ACTIVE_ONLY.
pub fn view_type(request: &MlflowRequest, field: &str) -> MlflowResult<ViewType> {
    match request.raw(field) {
        None => Ok(ViewType::ActiveOnly),
        Some(Value::String(text)) => {
            ViewType::parse(text).ok_or_else(|| wrong_type(field, &Value::String(text.clone())))
        }
        Some(Value::Number(number)) => ViewType::parse(&number.to_string())
            .ok_or_else(|| wrong_type(field, &Value::Number(number.clone()))),
        Some(other) => Err(wrong_type(field, other)),
    }
}

/// `POST experiments/create`.
pub async fn create(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let artifact_location = request.string("artifact_location")?;
    let tags = parse_tags(&request, "tags")?;
    let id = services
        .tracking
        .create_experiment(
            &context,
            &name,
            artifact_location.as_deref().filter(|l| !l.is_empty()),
            &tags,
        )
        .await?;
    Ok(Json(json!({ "experiment_id": id.to_string() })))
}

/// `GET experiments/get`.
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let experiment = services.tracking.get_experiment(&context, experiment_id(&request)?).await?;
    Ok(Json(json!({ "experiment": wire::experiment(&experiment) })))
}

/// `GET experiments/get-by-name`.
pub async fn get_by_name(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("experiment_name")?;
    let experiment = services.tracking.get_experiment_by_name(&context, &name).await?;
    Ok(Json(json!({ "experiment": wire::experiment(&experiment) })))
}

/// `POST|GET experiments/search`.
pub async fn search(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let max_results = request.int("max_results")?.unwrap_or(0);
    if max_results < 1 {
        return Err(MlflowError::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer"
        )));
    }
    if max_results > MAX_EXPERIMENTS_PER_PAGE {
        return Err(MlflowError::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be at most {MAX_EXPERIMENTS_PER_PAGE}"
        )));
    }
    let filter = request.string("filter")?.unwrap_or_default();
    let order_by = request.strings("order_by")?;
    let page_token = request.string("page_token")?.unwrap_or_default();
    let (experiments, next) = services
        .tracking
        .search_experiments(
            &context,
            &filter,
            &order_by,
            view_type(&request, "view_type")?,
            max_results,
            &page_token,
        )
        .await?;
    let mut body = serde_json::Map::new();
    if !experiments.is_empty() {
        body.insert("experiments".into(), experiments.iter().map(wire::experiment).collect());
    }
    if let Some(token) = next {
        body.insert("next_page_token".into(), json!(token));
    }
    Ok(Json(Value::Object(body)))
}

/// `POST experiments/delete`.
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    services.tracking.delete_experiment(&context, experiment_id(&request)?).await?;
    Ok(Json(json!({})))
}

/// `POST experiments/restore`.
pub async fn restore(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    services.tracking.restore_experiment(&context, experiment_id(&request)?).await?;
    Ok(Json(json!({})))
}

/// `POST experiments/update` (rename).
pub async fn update(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let id = experiment_id(&request)?;
    if let Some(new_name) = request.string("new_name")?.filter(|name| !name.is_empty()) {
        services.tracking.rename_experiment(&context, id, &new_name).await?;
    }
    Ok(Json(json!({})))
}

/// `POST experiments/set-experiment-tag`.
pub async fn set_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let id = experiment_id(&request)?;
    let key = request.required_string("key")?;
    let value = request.string("value")?.unwrap_or_default();
    services.tracking.set_experiment_tag(&context, id, &Tag { key, value }).await?;
    Ok(Json(json!({})))
}

/// `POST experiments/delete-experiment-tag`.
pub async fn delete_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let id = experiment_id(&request)?;
    let key = request.required_string("key")?;
    services.tracking.delete_experiment_tag(&context, id, &key).await?;
    Ok(Json(json!({})))
}
