//! Inference over HTTP: the MLflow scoring protocol at `/serve/{deployment}/invocations` (what
//! `mlflow models serve` answers) and the Open Inference Protocol v2 at `/v2/models/{deployment}`
//! (what KServe, Triton and Seldon clients speak). Both call one service method; every answer
//! carries `x-prediction-id` (the caller's, else the request id) and the model version that
//! answered.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_service::{
    InputTable, Output, PredictOutcome, ServiceError, Services, Values, row_outputs,
};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::context::Caller;
use crate::metrics::Metrics;
use crate::mlflow::MlflowPath;
use crate::mlflow::error::MlflowError;
use crate::routes::{Needs, RouteTable};

/// The inference routes (and `/metrics`).
pub fn routes() -> RouteTable {
    RouteTable::new()
        .add("GET", "/metrics", Needs::Authenticated, crate::metrics::scrape)
        .add("POST", "/serve/{deployment}/invocations", Needs::Read, invocations)
        .add("GET", "/serve/{deployment}/ping", Needs::Read, ping)
        .add("GET", "/v2/models/{deployment}", Needs::Read, oip_metadata)
        .add("GET", "/v2/models/{deployment}/ready", Needs::Read, oip_ready)
        .add("POST", "/v2/models/{deployment}/infer", Needs::Read, oip_infer)
}

/// A JSON object read with its keys in the order they were sent.
#[derive(Debug, Default)]
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor;
        impl<'de> Visitor<'de> for OrderedVisitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut pairs = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    pairs.push((key, value));
                }
                Ok(Ordered(pairs))
            }
        }
        deserializer.deserialize_map(OrderedVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Rows {
    Lists(Vec<Vec<Value>>),
    Records(Vec<Ordered>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Inputs {
    Lists(Vec<Vec<Value>>),
    Columns(Ordered),
}

#[derive(Debug, Deserialize)]
struct Split {
    columns: Option<Vec<String>>,
    data: Vec<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct ScoringBody {
    dataframe_split: Option<Split>,
    dataframe_records: Option<Vec<Ordered>>,
    instances: Option<Rows>,
    inputs: Option<Inputs>,
    #[allow(dead_code)]
    params: Option<Value>,
}

const INPUT_FIELDS: &str = "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}";

fn bad_request(message: impl Into<String>) -> MlflowError {
    MlflowError { code: "BAD_REQUEST", message: message.into() }
}

fn records(records: Vec<Ordered>) -> Result<InputTable, MlflowError> {
    let Some(first) = records.first() else { return Ok(InputTable::default()) };
    let columns: Vec<String> = first.0.iter().map(|(key, _)| key.clone()).collect();
    let mut rows = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let row = columns
            .iter()
            .map(|column| {
                record.0.iter().find(|(key, _)| key == column).map(|(_, v)| v.clone()).ok_or_else(
                    || MlflowError::invalid(format!("record {index} lacks column '{column}'")),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    Ok(InputTable { columns: Some(columns), rows })
}

fn columns(columns: Ordered) -> Result<InputTable, MlflowError> {
    let names: Vec<String> = columns.0.iter().map(|(key, _)| key.clone()).collect();
    let lists: Vec<&Vec<Value>> = columns
        .0
        .iter()
        .map(|(key, value)| {
            value.as_array().ok_or_else(|| {
                MlflowError::invalid(format!("input '{key}' must be a list of values"))
            })
        })
        .collect::<Result<_, _>>()?;
    let count = lists.first().map_or(0, |list| list.len());
    if lists.iter().any(|list| list.len() != count) {
        return Err(MlflowError::invalid("every input column must have the same number of values"));
    }
    let rows = (0..count).map(|row| lists.iter().map(|list| list[row].clone()).collect()).collect();
    Ok(InputTable { columns: Some(names), rows })
}

/// Reads an MLflow scoring request: exactly one of the four input fields.
fn scoring_table(headers: &HeaderMap, body: &[u8]) -> Result<InputTable, MlflowError> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or("").to_ascii_lowercase();
    let parameters_ok = parts.all(|p| p.eq_ignore_ascii_case("charset=utf-8"));
    if media == "text/csv" && parameters_ok {
        return csv_table(body);
    }
    if media != "application/json" || !parameters_ok {
        return Err(MlflowError {
            code: "UNSUPPORTED_MEDIA_TYPE",
            message: format!(
                "This predictor only supports the following content types: application/json, text/csv (got '{content_type}')"
            ),
        });
    }
    let parsed: ScoringBody = serde_json::from_slice(body).map_err(|error| {
        bad_request(format!(
            "The input must be a JSON dictionary with exactly one of the input fields {INPUT_FIELDS}; {error}"
        ))
    })?;
    let given = [
        parsed.dataframe_split.is_some(),
        parsed.dataframe_records.is_some(),
        parsed.instances.is_some(),
        parsed.inputs.is_some(),
    ];
    if given.iter().filter(|present| **present).count() != 1 {
        return Err(bad_request(format!(
            "The input must be a JSON dictionary with exactly one of the input fields {INPUT_FIELDS}. Received dictionary with input fields: {}",
            ["dataframe_split", "dataframe_records", "instances", "inputs"]
                .iter()
                .zip(given)
                .filter(|(_, present)| *present)
                .map(|(name, _)| format!("'{name}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(split) = parsed.dataframe_split {
        return Ok(InputTable { columns: split.columns, rows: split.data });
    }
    if let Some(list) = parsed.dataframe_records {
        return records(list);
    }
    match (parsed.instances, parsed.inputs) {
        (Some(Rows::Lists(rows)), _) | (_, Some(Inputs::Lists(rows))) => {
            Ok(InputTable { columns: None, rows })
        }
        (Some(Rows::Records(list)), _) => records(list),
        (_, Some(Inputs::Columns(ordered))) => columns(ordered),
        _ => Err(bad_request("no input")),
    }
}

/// Reads a CSV body as pandas' `read_csv` would for numbers: a header row of column names, then
/// rows; cells that parse as numbers are numbers, the rest text.
fn csv_table(body: &[u8]) -> Result<InputTable, MlflowError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|error| bad_request(format!("Failed to parse the CSV input: {error}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record
            .map_err(|error| bad_request(format!("Failed to parse the CSV input: {error}")))?;
        rows.push(
            record
                .iter()
                .map(|cell| match cell.trim().parse::<f64>() {
                    Ok(number) if number.is_finite() => json!(number),
                    _ => Value::String(cell.to_string()),
                })
                .collect(),
        );
    }
    Ok(InputTable { columns: Some(columns), rows })
}

fn flat_values(output: &Output) -> Value {
    match &output.values {
        Values::F64(values) => json!(values),
        Values::I64(values) => json!(values),
        Values::Bool(values) => json!(values),
        Values::Str(values) => json!(values),
        Values::Json(values) => json!(values),
    }
}

/// MLflow's `{"predictions": …}`: one output as a list (of rows); several as row records.
fn predictions(outcome: &PredictOutcome) -> Value {
    let rows =
        outcome.outputs.first().map_or(0, |output| output.shape.first().copied().unwrap_or(0));
    let body = (0..rows)
        .map(|row| {
            let values = row_outputs(&outcome.outputs, row);
            if outcome.outputs.len() == 1 {
                values.into_iter().next().map_or(Value::Null, |(_, value)| value)
            } else {
                Value::Object(values)
            }
        })
        .collect();
    json!({"predictions": Value::Array(body)})
}

fn prediction_id(headers: &HeaderMap) -> String {
    ["x-prediction-id", crate::REQUEST_ID_HEADER]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|value| value.to_str().ok()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn with_headers(mut response: Response, id: &str, outcome: &PredictOutcome) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-prediction-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{}/{}", outcome.model, outcome.version)) {
        headers.insert("x-cairn-model-version", value);
    }
    headers.insert("x-cairn-deployment-revision", HeaderValue::from(outcome.revision));
    response
}

/// Counts a finished inference request in `/metrics`.
fn measured<E: IntoResponse>(
    metrics: &Metrics,
    deployment: &str,
    protocol: &str,
    started: Instant,
    result: Result<Response, E>,
) -> Response {
    let response = match result {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let version = response.headers().get("x-cairn-model-version").and_then(|v| v.to_str().ok());
    metrics.observe(deployment, protocol, response.status().as_u16(), version, started.elapsed());
    response
}

/// `POST /serve/{deployment}/invocations`.
async fn invocations(
    State(services): State<Services>,
    Extension(metrics): Extension<Arc<Metrics>>,
    caller: Caller,
    MlflowPath(name): MlflowPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = mlflow_invocations(&services, caller, &name, &headers, &body).await;
    measured(&metrics, &name, "mlflow", started, result)
}

async fn mlflow_invocations(
    services: &Services,
    Caller(context): Caller,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, MlflowError> {
    // Authorised (and the deployment found) before the body is read.
    let served = services.deployments.served(&context, name).await?;
    let table = scoring_table(headers, body)?;
    let id = prediction_id(headers);
    let outcome = services.deployments.predict(&served, table, &id).await?;
    Ok(with_headers(axum::Json(predictions(&outcome)).into_response(), &id, &outcome))
}

/// `GET /serve/{deployment}/ping`: 200 when the deployment's models are loaded.
async fn ping(
    State(services): State<Services>,
    Caller(context): Caller,
    MlflowPath(name): MlflowPath<String>,
) -> Result<&'static str, MlflowError> {
    services.deployments.served(&context, &name).await?;
    Ok("\n")
}

/// An Open Inference Protocol error: `{"error": "…"}` with a 4xx/5xx status.
struct OipError(ServiceError);

impl From<ServiceError> for OipError {
    fn from(error: ServiceError) -> Self {
        Self(error)
    }
}

impl IntoResponse for OipError {
    fn into_response(self) -> Response {
        let mlflow = MlflowError::from(self.0);
        (mlflow.status(), axum::Json(json!({"error": mlflow.message}))).into_response()
    }
}

fn oip_invalid(message: impl Into<String>) -> OipError {
    OipError(ServiceError::invalid(message))
}

/// The deployment named in an Open Inference Protocol path; a name that is not UTF-8 once
/// decoded is a 400 in that protocol's format, never axum's plain-text rejection.
struct OipPath(String);

impl<S: Send + Sync> FromRequestParts<S> for OipPath {
    type Rejection = OipError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(name)| OipPath(name))
            .map_err(|rejection| oip_invalid(rejection.body_text()))
    }
}

/// `GET /v2/models/{deployment}`: name, versions, platform, inputs and outputs.
async fn oip_metadata(
    State(services): State<Services>,
    Caller(context): Caller,
    OipPath(name): OipPath,
) -> Result<axum::Json<Value>, OipError> {
    let served = services.deployments.served(&context, &name).await?;
    let (platform, inputs, outputs) = served.describe();
    let shape = |shape: &[Option<usize>]| -> Vec<i64> {
        shape.iter().map(|dim| dim.map_or(-1, |d| d as i64)).collect()
    };
    let versions: Vec<String> = served
        .deployment()
        .spec
        .routes
        .iter()
        .map(|route| format!("{}/{}", route.model, route.version))
        .collect();
    Ok(axum::Json(json!({
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": inputs.iter().map(|input| json!({
            "name": input.name, "datatype": input.element.oip_name(), "shape": shape(&input.shape),
        })).collect::<Vec<_>>(),
        "outputs": outputs.iter().map(|output| json!({
            "name": output.name, "datatype": output.element.oip_name(), "shape": shape(&output.shape),
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /v2/models/{deployment}/ready`: 200 with an empty body when ready.
async fn oip_ready(
    State(services): State<Services>,
    Caller(context): Caller,
    OipPath(name): OipPath,
) -> Result<StatusCode, OipError> {
    services.deployments.served(&context, &name).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct OipTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Value,
}

#[derive(Debug, Deserialize)]
struct OipRequest {
    id: Option<String>,
    inputs: Vec<OipTensor>,
}

fn flatten(value: &Value, into: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, into)),
        other => into.push(other.clone()),
    }
}

/// `POST /v2/models/{deployment}/infer`: one `[rows, features]` numeric input tensor.
async fn oip_infer(
    State(services): State<Services>,
    Extension(metrics): Extension<Arc<Metrics>>,
    caller: Caller,
    OipPath(name): OipPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let result = oip_infer_inner(&services, caller, &name, &headers, &body).await;
    measured(&metrics, &name, "oip", started, result)
}

async fn oip_infer_inner(
    services: &Services,
    Caller(context): Caller,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OipError> {
    let served = services.deployments.served(&context, name).await?;
    let request: OipRequest = serde_json::from_slice(body)
        .map_err(|error| oip_invalid(format!("invalid inference request: {error}")))?;
    let [tensor] = request.inputs.as_slice() else {
        return Err(oip_invalid(format!(
            "expected one input tensor, got {}",
            request.inputs.len()
        )));
    };
    if !matches!(tensor.datatype.as_str(), "FP32" | "FP64" | "INT32" | "INT64" | "FP16") {
        return Err(oip_invalid(format!(
            "input '{}' has datatype {}; the model takes numbers (FP32)",
            tensor.name, tensor.datatype
        )));
    }
    let [rows, features] = tensor.shape.as_slice() else {
        return Err(oip_invalid(format!(
            "input '{}' must have shape [rows, features], not {:?}",
            tensor.name, tensor.shape
        )));
    };
    let mut cells = Vec::new();
    flatten(&tensor.data, &mut cells);
    let (rows, features) =
        (usize::try_from(*rows).unwrap_or(0), usize::try_from(*features).unwrap_or(0));
    if features == 0 || cells.len() != rows * features {
        return Err(oip_invalid(format!(
            "input '{}' has {} values for shape {:?}",
            tensor.name,
            cells.len(),
            tensor.shape
        )));
    }
    let table =
        InputTable { columns: None, rows: cells.chunks(features).map(<[Value]>::to_vec).collect() };
    let id = request.id.clone().unwrap_or_else(|| prediction_id(headers));
    let outcome = services.deployments.predict(&served, table, &id).await?;
    let body = json!({
        "model_name": name,
        "model_version": format!("{}/{}", outcome.model, outcome.version),
        "id": id,
        "outputs": outcome.outputs.iter().map(|output| json!({
            "name": output.name,
            "shape": output.shape,
            "datatype": output.element.oip_name(),
            "data": flat_values(output),
        })).collect::<Vec<_>>(),
    });
    Ok(with_headers(axum::Json(body).into_response(), &id, &outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
    }

    #[test]
    fn every_scoring_format_becomes_a_table() {
        let headers = json_headers();
        let split = scoring_table(
            &headers,
            br#"{"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2]]}}"#,
        )
        .unwrap();
        assert_eq!(split.columns, Some(vec!["b".into(), "a".into()]));
        let records = scoring_table(
            &headers,
            br#"{"dataframe_records": [{"z": 1, "a": 2}, {"a": 4, "z": 3}]}"#,
        )
        .unwrap();
        assert_eq!(records.columns, Some(vec!["z".into(), "a".into()]));
        assert_eq!(records.rows[1], vec![json!(3), json!(4)]);
        let instances = scoring_table(&headers, br#"{"instances": [[1, 2], [3, 4]]}"#).unwrap();
        assert_eq!((instances.columns, instances.rows.len()), (None, 2));
        let inputs = scoring_table(&headers, br#"{"inputs": {"y": [1, 2], "x": [3, 4]}}"#).unwrap();
        assert_eq!(inputs.columns, Some(vec!["y".into(), "x".into()]));
        assert_eq!(inputs.rows[0], vec![json!(1), json!(3)]);
    }

    #[test]
    fn malformed_scoring_requests_are_refused_like_mlflow() {
        let headers = json_headers();
        let both =
            scoring_table(&headers, br#"{"instances": [[1]], "inputs": [[1]]}"#).unwrap_err();
        assert_eq!(both.code, "BAD_REQUEST");
        assert!(both.message.contains("'instances', 'inputs'"), "{}", both.message);
        assert_eq!(
            scoring_table(&headers, br#"{"columns": [], "data": []}"#).unwrap_err().code,
            "BAD_REQUEST"
        );
        let mut plain = HeaderMap::new();
        plain.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(scoring_table(&plain, b"1,2").unwrap_err().code, "UNSUPPORTED_MEDIA_TYPE");
        let mut csv = HeaderMap::new();
        csv.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        let table = scoring_table(&csv, b"b,a\n1.5,x\n2,3\n").unwrap();
        assert_eq!(table.columns, Some(vec!["b".into(), "a".into()]));
        assert_eq!(table.rows, vec![vec![json!(1.5), json!("x")], vec![json!(2.0), json!(3.0)]]);
        assert_eq!(scoring_table(&csv, b"a,b\n1\n").unwrap_err().code, "BAD_REQUEST");
    }
}
