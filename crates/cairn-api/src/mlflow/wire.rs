//! Domain entities rendered as MLflow's proto3-JSON: snake_case names, int64 as JSON numbers,
//! enums by name, NaN as the string `"NaN"`, and empty fields omitted.

use cairn_domain::entities::{
    DatasetInput, Experiment, LoggedModel, Metric, Param, Run, RunInfo, Tag,
};
use serde_json::{Map, Value, json};

/// Inserts `value` under `key` unless it is an empty list.
fn put_list(object: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        object.insert(key.to_string(), Value::Array(items));
    }
}

/// A float as proto3-JSON: finite numbers as numbers, NaN and infinities as strings.
pub fn float(value: f64) -> Value {
    if value.is_nan() {
        Value::String("NaN".into())
    } else if value == f64::INFINITY {
        Value::String("Infinity".into())
    } else if value == f64::NEG_INFINITY {
        Value::String("-Infinity".into())
    } else {
        json!(value)
    }
}

/// A tag or param as `{key, value}`.
pub fn key_value(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": value })
}

/// Tags as a list.
pub fn tags(tags: &[Tag]) -> Vec<Value> {
    tags.iter().map(|tag| key_value(&tag.key, &tag.value)).collect()
}

/// Params as a list.
pub fn params(params: &[Param]) -> Vec<Value> {
    params.iter().map(|param| key_value(&param.key, &param.value)).collect()
}

/// A metric point.
pub fn metric(metric: &Metric) -> Value {
    let mut object = Map::new();
    object.insert("key".into(), json!(metric.key));
    object.insert("value".into(), float(metric.value));
    object.insert("timestamp".into(), json!(metric.timestamp));
    object.insert("step".into(), json!(metric.step));
    for (key, value) in [
        ("model_id", &metric.model_id),
        ("dataset_name", &metric.dataset_name),
        ("dataset_digest", &metric.dataset_digest),
        ("run_id", &metric.run_id),
    ] {
        if let Some(value) = value {
            object.insert(key.into(), json!(value));
        }
    }
    Value::Object(object)
}

/// An experiment.
pub fn experiment(experiment: &Experiment) -> Value {
    let mut object = Map::new();
    object.insert("experiment_id".into(), json!(experiment.experiment_id.to_string()));
    object.insert("name".into(), json!(experiment.name));
    object.insert("artifact_location".into(), json!(experiment.artifact_location));
    object.insert("lifecycle_stage".into(), json!(experiment.lifecycle_stage.as_str()));
    object.insert("last_update_time".into(), json!(experiment.last_update_time));
    object.insert("creation_time".into(), json!(experiment.creation_time));
    put_list(&mut object, "tags", tags(&experiment.tags));
    Value::Object(object)
}

/// A run's info block.
pub fn run_info(info: &RunInfo) -> Value {
    let mut object = Map::new();
    object.insert("run_id".into(), json!(info.run_id));
    object.insert("run_uuid".into(), json!(info.run_id));
    object.insert("run_name".into(), json!(info.run_name));
    object.insert("experiment_id".into(), json!(info.experiment_id.to_string()));
    object.insert("user_id".into(), json!(info.user_id));
    object.insert("status".into(), json!(info.status.as_str()));
    object.insert("start_time".into(), json!(info.start_time));
    if let Some(end_time) = info.end_time {
        object.insert("end_time".into(), json!(end_time));
    }
    object.insert("artifact_uri".into(), json!(info.artifact_uri));
    object.insert("lifecycle_stage".into(), json!(info.lifecycle_stage.as_str()));
    Value::Object(object)
}

fn dataset_input(input: &DatasetInput) -> Value {
    let dataset = &input.dataset;
    let mut body = Map::new();
    body.insert("name".into(), json!(dataset.name));
    body.insert("digest".into(), json!(dataset.digest));
    body.insert("source_type".into(), json!(dataset.source_type));
    body.insert("source".into(), json!(dataset.source));
    if let Some(schema) = &dataset.schema {
        body.insert("schema".into(), json!(schema));
    }
    if let Some(profile) = &dataset.profile {
        body.insert("profile".into(), json!(profile));
    }
    let mut object = Map::new();
    put_list(&mut object, "tags", tags(&input.tags));
    object.insert("dataset".into(), Value::Object(body));
    Value::Object(object)
}

/// A complete run: info, data, inputs and outputs.
pub fn run(run: &Run) -> Value {
    let mut data = Map::new();
    put_list(&mut data, "metrics", run.metrics.iter().map(metric).collect());
    put_list(&mut data, "params", params(&run.params));
    put_list(&mut data, "tags", tags(&run.tags));
    let mut inputs = Map::new();
    put_list(&mut inputs, "dataset_inputs", run.dataset_inputs.iter().map(dataset_input).collect());
    put_list(
        &mut inputs,
        "model_inputs",
        run.model_inputs.iter().map(|m| json!({ "model_id": m.model_id })).collect(),
    );
    let mut outputs = Map::new();
    put_list(
        &mut outputs,
        "model_outputs",
        run.model_outputs
            .iter()
            .map(|m| json!({ "model_id": m.model_id, "step": m.step }))
            .collect(),
    );
    json!({
        "info": run_info(&run.info),
        "data": Value::Object(data),
        "inputs": Value::Object(inputs),
        "outputs": Value::Object(outputs),
    })
}

/// A logged model: info and data.
pub fn logged_model(model: &LoggedModel) -> Value {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(model.model_id));
    info.insert("experiment_id".into(), json!(model.experiment_id.to_string()));
    info.insert("name".into(), json!(model.name));
    info.insert("creation_timestamp_ms".into(), json!(model.creation_timestamp_ms));
    info.insert("last_updated_timestamp_ms".into(), json!(model.last_updated_timestamp_ms));
    info.insert("artifact_uri".into(), json!(model.artifact_uri));
    info.insert("status".into(), json!(model.status.as_str()));
    for (key, value) in [
        ("creator_id", &model.creator_id),
        ("model_type", &model.model_type),
        ("source_run_id", &model.source_run_id),
        ("status_message", &model.status_message),
    ] {
        if let Some(value) = value {
            info.insert(key.into(), json!(value));
        }
    }
    put_list(&mut info, "tags", tags(&model.tags));
    let mut data = Map::new();
    put_list(&mut data, "params", params(&model.params));
    put_list(&mut data, "metrics", model.metrics.iter().map(metric).collect());
    json!({ "info": Value::Object(info), "data": Value::Object(data) })
}
