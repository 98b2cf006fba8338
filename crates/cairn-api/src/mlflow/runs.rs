//! MLflow run endpoints: create, get, update, delete, restore, logging (metric, param, tag,
//! batch, inputs, outputs), tag deletion, search and metric history.

use axum::Json;
use axum::extract::State;
use cairn_domain::entities::{Dataset, DatasetInput, Metric, ModelOutput, Param, RunStatus};
use cairn_domain::ids::ExperimentId;
use cairn_domain::validation::{MAX_HISTORY_PER_PAGE, MAX_RUNS_PER_PAGE};
use cairn_service::Services;

use crate::context::Caller;
use cairn_service::{NewRun, RunUpdate};
use serde_json::{Map, Value, json};

use super::error::{MlflowError, MlflowResult};
use super::experiments::{parse_tags, view_type};
use super::request::{MlflowRequest, float_value, int_value, missing, wrong_type};
use super::wire;

fn empty() -> Json<Value> {
    Json(json!({}))
}

fn object_string(
    object: &Map<String, Value>,
    field: &str,
    path: &str,
) -> MlflowResult<Option<String>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(wrong_type(&format!("{path}.{field}"), other)),
    }
}

/// Parses one metric object of a log-batch (or the fields of log-metric).
pub(super) fn parse_metric(object: &Map<String, Value>, path: &str) -> MlflowResult<Metric> {
    let prefix = |field: &str| {
        if path.is_empty() { field.to_string() } else { format!("{path}.{field}") }
    };
    let key = match object_string(object, "key", path)? {
        Some(key) if !key.is_empty() => key,
        _ => return Err(missing(&prefix("key"))),
    };
    let value = match object.get("value") {
        None | Some(Value::Null) => return Err(missing(&prefix("value"))),
        Some(value) => float_value(&prefix("value"), value)?,
    };
    let timestamp = match object.get("timestamp") {
        None | Some(Value::Null) => return Err(missing(&prefix("timestamp"))),
        Some(value) => int_value(&prefix("timestamp"), value)?,
    };
    let step = match object.get("step") {
        None | Some(Value::Null) => 0,
        Some(value) => int_value(&prefix("step"), value)?,
    };
    Ok(Metric {
        key,
        value,
        timestamp,
        step,
        model_id: object_string(object, "model_id", path)?.filter(|id| !id.is_empty()),
        dataset_name: object_string(object, "dataset_name", path)?.filter(|n| !n.is_empty()),
        dataset_digest: object_string(object, "dataset_digest", path)?.filter(|d| !d.is_empty()),
        run_id: None,
    })
}

pub(super) fn parse_params(request: &MlflowRequest) -> MlflowResult<Vec<Param>> {
    request
        .objects("params")?
        .iter()
        .enumerate()
        .map(|(index, object)| {
            let path = format!("params[{index}]");
            let key = object_string(object, "key", &path)?
                .ok_or_else(|| missing(&format!("{path}.key")))?;
            let value = object_string(object, "value", &path)?.unwrap_or_default();
            Ok(Param { key, value })
        })
        .collect()
}

/// `POST runs/create`.
pub async fn create(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let experiment_id = match request.string("experiment_id")? {
        Some(raw) if !raw.is_empty() => {
            ExperimentId::parse(&raw).map_err(|error| MlflowError::invalid(error.message))?
        }
        _ => ExperimentId::DEFAULT,
    };
    let new_run = NewRun {
        experiment_id,
        user_id: request.string("user_id")?.unwrap_or_default(),
        run_name: request.string("run_name")?,
        start_time: request.int("start_time")?,
        tags: parse_tags(&request, "tags")?,
    };
    let run = services.tracking.create_run(&context, new_run).await?;
    Ok(Json(json!({ "run": wire::run(&run) })))
}

/// `GET runs/get`.
pub async fn get(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run = services.tracking.get_run(&context, &request.run_id()?).await?;
    Ok(Json(json!({ "run": wire::run(&run) })))
}

/// `POST runs/update`; an unknown status is ignored, as MLflow does.
pub async fn update(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let status = match request.raw("status") {
        Some(Value::String(text)) => RunStatus::parse(text),
        Some(Value::Number(number)) => RunStatus::parse(&number.to_string()),
        _ => None,
    };
    let update = RunUpdate {
        status,
        end_time: request.int("end_time")?,
        run_name: request.string("run_name")?,
    };
    let info = services.tracking.update_run(&context, &request.run_id()?, &update).await?;
    Ok(Json(json!({ "run_info": wire::run_info(&info) })))
}

/// `POST runs/delete`.
pub async fn delete(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    services.tracking.delete_run(&context, &request.run_id()?).await?;
    Ok(empty())
}

/// `POST runs/restore`.
pub async fn restore(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    services.tracking.restore_run(&context, &request.run_id()?).await?;
    Ok(empty())
}

/// `POST runs/log-metric`.
pub async fn log_metric(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let mut fields = Map::new();
    for field in ["key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest"]
    {
        if let Some(value) = request.raw(field) {
            fields.insert(field.to_string(), value.clone());
        }
    }
    let metric = parse_metric(&fields, "")?;
    services.tracking.log_metric(&context, &run_id, metric).await?;
    Ok(empty())
}

/// `POST runs/log-parameter`.
pub async fn log_param(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let key = request.required_string("key")?;
    let value = request.string("value")?.unwrap_or_default();
    services.tracking.log_param(&context, &run_id, &Param { key, value }).await?;
    Ok(empty())
}

/// `POST runs/set-tag`.
pub async fn set_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let key = request.required_string("key")?;
    let value = request.string("value")?.unwrap_or_default();
    services
        .tracking
        .set_tag(&context, &run_id, &cairn_domain::entities::Tag { key, value })
        .await?;
    Ok(empty())
}

/// `POST runs/delete-tag`.
pub async fn delete_tag(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let key = request.required_string("key")?;
    services.tracking.delete_tag(&context, &run_id, &key).await?;
    Ok(empty())
}

/// `POST runs/log-batch`: one transaction for everything.
pub async fn log_batch(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let metrics = request
        .objects("metrics")?
        .iter()
        .enumerate()
        .map(|(index, object)| parse_metric(object, &format!("metrics[{index}]")))
        .collect::<MlflowResult<Vec<_>>>()?;
    let params = parse_params(&request)?;
    let tags = parse_tags(&request, "tags")?;
    services.tracking.log_batch(&context, &run_id, metrics, params, tags).await?;
    Ok(empty())
}

/// `POST runs/log-inputs`.
pub async fn log_inputs(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let mut datasets = Vec::new();
    for (index, input) in request.objects("datasets")?.iter().enumerate() {
        let path = format!("datasets[{index}]");
        let dataset = match input.get("dataset") {
            Some(Value::Object(dataset)) => dataset,
            _ => return Err(missing(&format!("{path}.dataset"))),
        };
        let dataset_path = format!("{path}.dataset");
        let required = |field: &str| -> MlflowResult<String> {
            object_string(dataset, field, &dataset_path)?
                .filter(|value| !value.is_empty())
                .ok_or_else(|| missing(&format!("{dataset_path}.{field}")))
        };
        let tags = match input.get("tags") {
            Some(Value::Array(_)) => {
                let wrapper = MlflowRequest::from_fields((*input).clone());
                parse_tags(&wrapper, "tags")?
            }
            _ => Vec::new(),
        };
        datasets.push(DatasetInput {
            tags,
            dataset: Dataset {
                name: required("name")?,
                digest: required("digest")?,
                source_type: required("source_type")?,
                source: required("source")?,
                schema: object_string(dataset, "schema", &dataset_path)?,
                profile: object_string(dataset, "profile", &dataset_path)?,
            },
        });
    }
    let model_ids = request
        .objects("models")?
        .iter()
        .filter_map(|model| model.get("model_id").and_then(Value::as_str).map(str::to_string))
        .collect::<Vec<_>>();
    services.tracking.log_inputs(&context, &run_id, &datasets, &model_ids).await?;
    Ok(empty())
}

/// `POST runs/outputs`.
pub async fn log_outputs(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let outputs = request
        .objects("models")?
        .iter()
        .enumerate()
        .map(|(index, model)| {
            let path = format!("models[{index}]");
            let model_id = object_string(model, "model_id", &path)?
                .filter(|id| !id.is_empty())
                .ok_or_else(|| missing(&format!("{path}.model_id")))?;
            let step = match model.get("step") {
                None | Some(Value::Null) => 0,
                Some(value) => int_value(&format!("{path}.step"), value)?,
            };
            Ok(ModelOutput { model_id, step })
        })
        .collect::<MlflowResult<Vec<_>>>()?;
    services.tracking.log_outputs(&context, &run_id, &outputs).await?;
    Ok(empty())
}

/// `POST|GET runs/search`.
pub async fn search(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let max_results = request.int("max_results")?.unwrap_or(1000);
    if !(0..=MAX_RUNS_PER_PAGE).contains(&max_results) {
        return Err(MlflowError::invalid(format!(
            "Invalid value {max_results} for parameter 'max_results' supplied. See the API docs for more information about request parameters."
        )));
    }
    let experiment_ids = request.experiment_ids()?;
    let filter = request.string("filter")?.unwrap_or_default();
    let order_by = request.strings("order_by")?;
    let page_token = request.string("page_token")?.unwrap_or_default();
    let (runs, next) = services
        .tracking
        .search_runs(
            &context,
            experiment_ids,
            &filter,
            &order_by,
            view_type(&request, "run_view_type")?,
            max_results,
            &page_token,
        )
        .await?;
    let mut body = Map::new();
    if !runs.is_empty() {
        body.insert("runs".into(), runs.iter().map(wire::run).collect());
    }
    if let Some(token) = next {
        body.insert("next_page_token".into(), json!(token));
    }
    Ok(Json(Value::Object(body)))
}

/// `GET metrics/get-history`.
pub async fn get_history(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let key = request.required_string("metric_key")?;
    let max_results = match request.int("max_results")? {
        Some(value) if value <= 0 => {
            return Err(MlflowError::invalid(format!(
                "Invalid value {value} for parameter 'max_results' supplied. It must be a positive integer."
            )));
        }
        Some(value) => value.min(MAX_HISTORY_PER_PAGE),
        None => i64::from(i32::MAX),
    };
    let page_token = request.string("page_token")?.unwrap_or_default();
    let (metrics, next) = services
        .tracking
        .get_metric_history(&context, &run_id, &key, &page_token, max_results)
        .await?;
    let mut body = Map::new();
    if !metrics.is_empty() {
        body.insert("metrics".into(), metrics.iter().map(wire::metric).collect());
    }
    if let Some(token) = next {
        body.insert("next_page_token".into(), json!(token));
    }
    Ok(Json(Value::Object(body)))
}
