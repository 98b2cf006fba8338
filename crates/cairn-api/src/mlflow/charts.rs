//! Endpoints the MLflow UI and chart clients use: sampled metric history across runs,
//! bulk history, dataset summaries, and the legacy `runs/log-model` record.

use axum::Json;
use axum::extract::State;
use cairn_service::Services;

use crate::context::Caller;
use serde_json::{Map, Value, json};

use super::error::{MlflowError, MlflowResult};
use super::request::MlflowRequest;
use super::wire;

/// Most runs one bulk history request may name.
const MAX_RUNS_PER_BULK_REQUEST: usize = 100;
/// Most sampled points per run.
const MAX_POINTS_PER_RUN: i64 = 2500;

fn run_ids(request: &MlflowRequest, operation: &str) -> MlflowResult<Vec<String>> {
    let ids = request.strings("run_ids")?;
    if ids.is_empty() {
        return Err(super::request::missing("run_ids"));
    }
    if ids.len() > MAX_RUNS_PER_BULK_REQUEST {
        return Err(MlflowError::invalid(format!(
            "{operation} request must specify at most {MAX_RUNS_PER_BULK_REQUEST} run_ids. Received {} run_ids.",
            ids.len()
        )));
    }
    Ok(ids)
}

fn metrics_body(metrics: &[cairn_domain::entities::Metric]) -> Json<Value> {
    let mut body = Map::new();
    if !metrics.is_empty() {
        body.insert("metrics".into(), metrics.iter().map(wire::metric).collect());
    }
    Json(Value::Object(body))
}

/// `GET metrics/get-history-bulk-interval`.
pub async fn history_bulk_interval(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let ids = run_ids(&request, "GetMetricHistoryBulkInterval")?;
    let key = request.required_string("metric_key")?;
    let max_results = request.int("max_results")?.unwrap_or(MAX_POINTS_PER_RUN);
    if !(1..=MAX_POINTS_PER_RUN).contains(&max_results) {
        return Err(MlflowError::invalid(format!(
            "max_results must be between 1 and {MAX_POINTS_PER_RUN}. See the API docs for more information about request parameters."
        )));
    }
    let steps = match (request.int("start_step")?, request.int("end_step")?) {
        (Some(start), Some(end)) if start > end => {
            return Err(MlflowError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={start} and end_step={end}."
            )));
        }
        (Some(start), Some(end)) => Some((start, end)),
        (None, None) => None,
        _ => {
            return Err(MlflowError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
    };
    let metrics =
        services.tracking.sample_metric_histories(&context, &ids, &key, max_results, steps).await?;
    Ok(metrics_body(&metrics))
}

/// `GET metrics/get-history-bulk` (UI): raw points, sorted by run, timestamp, step, value.
pub async fn history_bulk(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let ids = run_ids(&request, "GetMetricHistoryBulk")?;
    let key = request.required_string("metric_key")?;
    let max_results = request.int("max_results")?.unwrap_or(25000).clamp(1, 25000);
    let metrics = services.tracking.metric_history_bulk(&context, &ids, &key, max_results).await?;
    Ok(metrics_body(&metrics))
}

/// `POST experiments/search-datasets` (UI).
pub async fn search_datasets(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let experiment_ids = request.experiment_ids()?;
    let summaries = services.tracking.search_datasets(&context, &experiment_ids).await?;
    let mut body = Map::new();
    if !summaries.is_empty() {
        let items: Vec<Value> = summaries
            .iter()
            .map(|summary| {
                let mut item = Map::new();
                item.insert("experiment_id".into(), json!(summary.experiment_id.to_string()));
                item.insert("name".into(), json!(summary.name));
                item.insert("digest".into(), json!(summary.digest));
                if let Some(context) = &summary.context {
                    item.insert("context".into(), json!(context));
                }
                Value::Object(item)
            })
            .collect();
        body.insert("dataset_summaries".into(), Value::Array(items));
    }
    Ok(Json(Value::Object(body)))
}

/// `POST runs/log-model` (legacy 2.x clients): appends the model to the run's history tag.
pub async fn log_model(
    State(services): State<Services>,
    Caller(context): Caller,
    request: MlflowRequest,
) -> MlflowResult<Json<Value>> {
    let run_id = request.run_id()?;
    let model_json = request.required_string("model_json")?;
    let model: Map<String, Value> = serde_json::from_str(&model_json).map_err(|_| {
        MlflowError::invalid(format!(
            "Malformed model info. \n {model_json} \n is not a valid JSON."
        ))
    })?;
    let mut missing: Vec<&str> = ["artifact_path", "flavors", "utc_time_created", "run_id"]
        .into_iter()
        .filter(|field| !model.contains_key(*field))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        let listed: Vec<String> = missing.iter().map(|field| format!("'{field}'")).collect();
        return Err(MlflowError::invalid(format!(
            "Model json is missing mandatory fields: {{{}}}",
            listed.join(", ")
        )));
    }
    // The history keeps what MLflow's `Model.get_tags_dict` keeps: ids, time, path, flavors
    // without their `config` blocks.
    let mut tags = Map::new();
    for field in ["run_id", "utc_time_created", "artifact_path", "model_uuid"] {
        if let Some(value) = model.get(field) {
            tags.insert(field.into(), value.clone());
        }
    }
    let mut flavors = Map::new();
    if let Some(Value::Object(all)) = model.get("flavors") {
        for (name, config) in all {
            let trimmed = match config {
                Value::Object(config) => Value::Object(
                    config
                        .iter()
                        .filter(|(k, _)| *k != "config")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
                other => other.clone(),
            };
            flavors.insert(name.clone(), trimmed);
        }
    }
    tags.insert("flavors".into(), Value::Object(flavors));
    services.tracking.record_logged_model(&context, &run_id, Value::Object(tags)).await?;
    Ok(Json(json!({})))
}
