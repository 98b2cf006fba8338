//! MLflow's model registry endpoints (`registered-models/…`, `model-versions/…`).

use axum::Json;
use axum::extract::State;
use cairn_domain::entities::{ModelVersion, RegisteredModel};
use cairn_service::{NewModelVersion, Services};
use serde_json::{Map, Value, json};

use super::error::{MlflowError, MlflowResult};
use super::experiments::parse_tags;
use super::request::MlflowRequest;
use super::wire;
use crate::context::Caller;

/// Most registered models one search page may hold.
const MAX_MODELS_PER_PAGE: i64 = 1000;
/// Most model versions one search page may hold.
const MAX_VERSIONS_PER_PAGE: i64 = 200_000;

fn put_opt(object: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        object.insert(key.into(), json!(value));
    }
}

/// A model version as proto3-JSON (`version` is a string).
pub fn model_version(version: &ModelVersion) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(version.name));
    object.insert("version".into(), json!(version.version.to_string()));
    object.insert("creation_timestamp".into(), json!(version.creation_timestamp));
    object.insert("last_updated_timestamp".into(), json!(version.last_updated_timestamp));
    put_opt(&mut object, "user_id", &version.user_id);
    object.insert("current_stage".into(), json!(version.current_stage.as_str()));
    put_opt(&mut object, "description", &version.description);
    object.insert("source".into(), json!(version.source));
    put_opt(&mut object, "run_id", &version.run_id);
    object.insert("status".into(), json!("READY"));
    put_opt(&mut object, "run_link", &version.run_link);
    put_opt(&mut object, "model_id", &version.model_id);
    if !version.tags.is_empty() {
        object.insert("tags".into(), Value::Array(wire::tags(&version.tags)));
    }
    if !version.aliases.is_empty() {
        object.insert("aliases".into(), json!(version.aliases));
    }
    Value::Object(object)
}

/// A registered model as proto3-JSON.
pub fn registered_model(model: &RegisteredModel) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(model.name));
    object.insert("creation_timestamp".into(), json!(model.creation_timestamp));
    object.insert("last_updated_timestamp".into(), json!(model.last_updated_timestamp));
    put_opt(&mut object, "user_id", &model.user_id);
    put_opt(&mut object, "description", &model.description);
    if !model.latest_versions.is_empty() {
        object.insert(
            "latest_versions".into(),
            model.latest_versions.iter().map(model_version).collect(),
        );
    }
    if !model.tags.is_empty() {
        object.insert("tags".into(), Value::Array(wire::tags(&model.tags)));
    }
    if !model.aliases.is_empty() {
        let aliases: Vec<Value> = model
            .aliases
            .iter()
            .map(|(alias, version)| json!({"alias": alias, "version": version.to_string()}))
            .collect();
        object.insert("aliases".into(), Value::Array(aliases));
    }
    Value::Object(object)
}

fn version(request: &MlflowRequest) -> MlflowResult<i64> {
    let raw = match request.raw("version") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => return Err(super::request::missing("version")),
    };
    raw.trim().parse::<i64>().map_err(|_| {
        MlflowError::invalid(format!("Parameter 'version' must be an integer, got '{raw}'."))
    })
}

fn model_body(model: &RegisteredModel) -> Json<Value> {
    Json(json!({ "registered_model": registered_model(model) }))
}

fn version_body(version: &ModelVersion) -> Json<Value> {
    Json(json!({ "model_version": model_version(version) }))
}

fn empty() -> Json<Value> {
    Json(json!({}))
}

/// The search fields shared by both registry searches, with `max_results` checked.
fn search_fields(
    request: &MlflowRequest,
    default: i64,
    most: i64,
) -> MlflowResult<(String, Vec<String>, i64, String)> {
    let max_results = request.int("max_results")?.unwrap_or(default);
    if !(1..=most).contains(&max_results) {
        return Err(MlflowError::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. It must be at most {most}"
        )));
    }
    let filter = request.string("filter")?.unwrap_or_default();
    let page_token = request.string("page_token")?.unwrap_or_default();
    Ok((filter, request.strings("order_by")?, max_results, page_token))
}

/// A search answer: the items under `key` (omitted when empty) and the next page's token.
fn page_body(key: &str, items: Vec<Value>, next: Option<String>) -> Json<Value> {
    let mut body = Map::new();
    if !items.is_empty() {
        body.insert(key.into(), Value::Array(items));
    }
    if let Some(token) = next {
        body.insert("next_page_token".into(), json!(token));
    }
    Json(Value::Object(body))
}

/// `POST registered-models/create`.
pub async fn create_model(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let tags = parse_tags(&request, "tags")?;
    let description = request.string("description")?;
    let model =
        services.registry.create_model(&context, &name, description.as_deref(), &tags).await?;
    Ok(model_body(&model))
}

/// `GET registered-models/get`.
pub async fn get_model(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let model = services.registry.get_model(&context, &request.required_string("name")?).await?;
    Ok(model_body(&model))
}

/// `POST registered-models/rename`.
pub async fn rename_model(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let new_name = request.required_string("new_name")?;
    Ok(model_body(&services.registry.rename_model(&context, &name, &new_name).await?))
}

/// `PATCH registered-models/update`.
pub async fn update_model(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let description = request.string("description")?.unwrap_or_default();
    Ok(model_body(&services.registry.update_model(&context, &name, &description).await?))
}

/// `DELETE registered-models/delete`.
pub async fn delete_model(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    services.registry.delete_model(&context, &request.required_string("name")?).await?;
    Ok(empty())
}

/// `GET registered-models/search`.
pub async fn search_models(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let (filter, order_by, max_results, page_token) =
        search_fields(&request, 100, MAX_MODELS_PER_PAGE)?;
    let (models, next) = services
        .registry
        .search_models(&context, &filter, &order_by, max_results, &page_token)
        .await?;
    Ok(page_body("registered_models", models.iter().map(registered_model).collect(), next))
}

/// `POST|GET registered-models/get-latest-versions`.
pub async fn latest_versions(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let stages = request.strings("stages")?;
    let versions = services.registry.latest_versions(&context, &name, &stages).await?;
    let mut body = Map::new();
    if !versions.is_empty() {
        body.insert("model_versions".into(), versions.iter().map(model_version).collect());
    }
    Ok(Json(Value::Object(body)))
}

/// `POST registered-models/set-tag`.
pub async fn set_model_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let key = request.required_string("key")?;
    let value = request.string("value")?.unwrap_or_default();
    services.registry.set_model_tag(&context, &name, &key, Some(&value)).await?;
    Ok(empty())
}

/// `DELETE registered-models/delete-tag`.
pub async fn delete_model_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let key = request.required_string("key")?;
    services.registry.set_model_tag(&context, &name, &key, None).await?;
    Ok(empty())
}

/// `POST registered-models/alias`.
pub async fn set_alias(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let alias = request.required_string("alias")?;
    services.registry.set_alias(&context, &name, &alias, version(&request)?).await?;
    Ok(empty())
}

/// `DELETE registered-models/alias`.
pub async fn delete_alias(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let alias = request.required_string("alias")?;
    services.registry.delete_alias(&context, &name, &alias).await?;
    Ok(empty())
}

/// `GET registered-models/alias`.
pub async fn get_alias(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let alias = request.required_string("alias")?;
    Ok(version_body(&services.registry.version_by_alias(&context, &name, &alias).await?))
}

/// `POST model-versions/create`.
pub async fn create_version(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let new_version = NewModelVersion {
        name: request.required_string("name")?,
        source: request.required_string("source")?,
        run_id: request.string("run_id")?.filter(|id| !id.is_empty()),
        run_link: request.string("run_link")?.filter(|link| !link.is_empty()),
        description: request.string("description")?.filter(|d| !d.is_empty()),
        tags: parse_tags(&request, "tags")?,
        model_id: request.string("model_id")?.filter(|id| !id.is_empty()),
        user_id: None,
    };
    Ok(version_body(&services.registry.create_version(&context, new_version).await?))
}

/// `GET model-versions/get`.
pub async fn get_version(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    Ok(version_body(&services.registry.get_version(&context, &name, version(&request)?).await?))
}

/// `PATCH model-versions/update`.
pub async fn update_version(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let description = request.string("description")?;
    let updated = services
        .registry
        .update_version(&context, &name, version(&request)?, description.as_deref())
        .await?;
    Ok(version_body(&updated))
}

/// `DELETE model-versions/delete`.
pub async fn delete_version(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    services.registry.delete_version(&context, &name, version(&request)?).await?;
    Ok(empty())
}

/// `POST model-versions/transition-stage`.
pub async fn transition_stage(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let stage = request.required_string("stage")?;
    let archive = request.bool("archive_existing_versions")?.unwrap_or(false);
    let moved = services
        .registry
        .transition_stage(&context, &name, version(&request)?, &stage, archive)
        .await?;
    Ok(version_body(&moved))
}

/// `GET model-versions/search`.
pub async fn search_versions(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let (filter, order_by, max_results, page_token) =
        search_fields(&request, 10_000, MAX_VERSIONS_PER_PAGE)?;
    let (versions, next) = services
        .registry
        .search_versions(&context, &filter, &order_by, max_results, &page_token)
        .await?;
    Ok(page_body("model_versions", versions.iter().map(model_version).collect(), next))
}

/// `GET model-versions/get-download-uri`.
pub async fn download_uri(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let uri = services.registry.download_uri(&context, &name, version(&request)?).await?;
    Ok(Json(json!({ "artifact_uri": uri })))
}

/// `POST model-versions/set-tag`.
pub async fn set_version_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let key = request.required_string("key")?;
    let value = request.string("value")?.unwrap_or_default();
    services
        .registry
        .set_version_tag(&context, &name, version(&request)?, &key, Some(&value))
        .await?;
    Ok(empty())
}

/// `DELETE model-versions/delete-tag`.
pub async fn delete_version_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let name = request.required_string("name")?;
    let key = request.required_string("key")?;
    services.registry.set_version_tag(&context, &name, version(&request)?, &key, None).await?;
    Ok(empty())
}
