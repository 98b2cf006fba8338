//! MLflow 3 logged-model endpoints: create, get, finalize, delete, tags, params and search.

use axum::Json;
use axum::extract::State;
use cairn_domain::entities::{LoggedModelStatus, Param};
use cairn_domain::search::{Comparator, FilterValue};
use cairn_service::Services;

use crate::context::Caller;
use cairn_service::{LoggedModelField, LoggedModelSearch, NewLoggedModel};
use serde_json::{Map, Value, json};

use super::error::{MlflowError, MlflowResult};
use super::experiments::{experiment_id, parse_tags};
use super::request::{MlflowRequest, Path, missing};
use super::wire;

fn model_body(model: &cairn_domain::entities::LoggedModel) -> Json<Value> {
    Json(json!({ "model": wire::logged_model(model) }))
}

pub(super) fn parse_params(request: &MlflowRequest) -> MlflowResult<Vec<Param>> {
    Ok(parse_tags(request, "params")?
        .into_iter()
        .map(|tag| Param { key: tag.key, value: tag.value })
        .collect())
}

/// `POST logged-models`.
pub async fn create(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let new_model = NewLoggedModel {
        experiment_id: experiment_id(&request)?,
        name: request.string("name")?,
        model_type: request.string("model_type")?.filter(|t| !t.is_empty()),
        source_run_id: request.string("source_run_id")?.filter(|r| !r.is_empty()),
        params: parse_params(&request)?,
        tags: parse_tags(&request, "tags")?,
        creator_id: None,
    };
    let model = services.tracking.create_logged_model(&context, &new_model).await?;
    Ok(model_body(&model))
}

/// `GET logged-models/{model_id}`.
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
) -> MlflowResult<Json<Value>> {
    let model = services.tracking.get_logged_model(&context, &model_id).await?;
    Ok(model_body(&model))
}

/// `PATCH logged-models/{model_id}`: finalize with a status.
pub async fn finalize(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let status = match request.raw("status") {
        Some(Value::String(text)) => LoggedModelStatus::parse(text),
        Some(Value::Number(number)) => LoggedModelStatus::parse(&number.to_string()),
        _ => None,
    }
    .ok_or_else(|| missing("status"))?;
    let model = services.tracking.finalize_logged_model(&context, &model_id, status).await?;
    Ok(model_body(&model))
}

/// `DELETE logged-models/{model_id}`.
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
) -> MlflowResult<Json<Value>> {
    services.tracking.delete_logged_model(&context, &model_id).await?;
    Ok(Json(json!({})))
}

/// `PATCH logged-models/{model_id}/tags`.
pub async fn set_tags(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let tags = parse_tags(&request, "tags")?;
    let model = services.tracking.set_logged_model_tags(&context, &model_id, &tags).await?;
    Ok(model_body(&model))
}

/// `DELETE logged-models/{model_id}/tags/{tag_key}`.
pub async fn delete_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    Path((model_id, tag_key)): Path<(String, String)>,
) -> MlflowResult<Json<Value>> {
    services.tracking.delete_logged_model_tag(&context, &model_id, &tag_key).await?;
    Ok(Json(json!({})))
}

/// `POST logged-models/{model_id}/params`.
pub async fn log_params(
    State(services): State<Services>,
    Caller(context): Caller,
    Path(model_id): Path<String>,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let params = parse_params(&request)?;
    services.tracking.log_logged_model_params(&context, &model_id, &params).await?;
    Ok(Json(json!({})))
}

/// Maps a logged-model search key (`name`, `metrics.acc`, `tags.x`…) to a field.
fn field(key: &str) -> MlflowResult<LoggedModelField> {
    let (entity, name) = match key.split_once('.') {
        Some((entity, name)) => (entity, name.trim_matches(|c| c == '`' || c == '"')),
        None => ("attributes", key),
    };
    Ok(match (entity, name) {
        ("metrics" | "metric", metric) => LoggedModelField::Metric(metric.to_string()),
        ("params" | "param", param) => LoggedModelField::Param(param.to_string()),
        ("tags" | "tag", tag) => LoggedModelField::Tag(tag.to_string()),
        (_, "name") => LoggedModelField::Name,
        (_, "model_id") => LoggedModelField::ModelId,
        (_, "model_type") => LoggedModelField::ModelType,
        (_, "status") => LoggedModelField::Status,
        (_, "source_run_id") => LoggedModelField::SourceRunId,
        (_, "creation_timestamp" | "creation_time") => LoggedModelField::CreationTimestamp,
        (_, "last_updated_timestamp" | "last_updated_time") => {
            LoggedModelField::LastUpdatedTimestamp
        }
        _ => {
            return Err(MlflowError::invalid(format!("Invalid attribute key '{key}' specified.")));
        }
    })
}

/// Parses the logged-model filter: `key op value` clauses joined by AND.
pub(super) fn parse_filter(
    filter: &str,
) -> MlflowResult<Vec<(LoggedModelField, Comparator, FilterValue)>> {
    let clauses = cairn_domain::search::parse_generic_filter(filter)
        .map_err(|error| MlflowError::invalid(error.message))?;
    clauses
        .into_iter()
        .map(|(key, comparator, value)| Ok((field(&key)?, comparator, value)))
        .collect()
}

/// `POST logged-models/search`.
pub async fn search(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let experiment_ids = request.experiment_ids()?;
    let order_by = request
        .objects("order_by")?
        .iter()
        .map(|order: &&Map<String, Value>| {
            let name = order
                .get("field_name")
                .and_then(Value::as_str)
                .ok_or_else(|| missing("order_by.field_name"))?;
            let ascending = order.get("ascending").and_then(Value::as_bool).unwrap_or(true);
            Ok((field(name)?, ascending))
        })
        .collect::<MlflowResult<Vec<_>>>()?;
    let search = LoggedModelSearch {
        experiment_ids,
        filter: parse_filter(&request.string("filter")?.unwrap_or_default())?,
        order_by,
        max_results: request.int("max_results")?.filter(|m| *m > 0).unwrap_or(50).min(1000),
        offset: 0,
    };
    let page_token = request.string("page_token")?.unwrap_or_default();
    let (models, next) =
        services.tracking.search_logged_models(&context, search, &page_token).await?;
    let mut body = Map::new();
    body.insert("models".into(), models.iter().map(wire::logged_model).collect());
    if let Some(token) = next {
        body.insert("next_page_token".into(), json!(token));
    }
    Ok(Json(Value::Object(body)))
}
