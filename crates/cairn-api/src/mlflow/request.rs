//! The MLflow request extractor: fields come from the query string for GET (or a JSON body when
//! there is no query string) and from a JSON body otherwise. Typed accessors reproduce the
//! MLflow server's validation messages.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path as AxumPath, Query as AxumQuery};
use axum::http::request::Parts;
use axum::http::{Method, Request, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::MlflowError;

/// Largest JSON request body accepted (log-batch with long tags stays far below this).
const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

const API_DOCS_HINT: &str = " See the API docs for more information about request parameters.";

/// The fields of one MLflow request.
#[derive(Debug, Default)]
pub struct MlflowRequest {
    fields: Map<String, Value>,
}

fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// MLflow's message for a field of the wrong type.
pub fn wrong_type(field: &str, value: &Value) -> MlflowError {
    let message = cairn_domain::validation::invalid_value(
        field,
        value,
        Some(&format!(" Hint: Value was of type '{}'.", python_type_name(value))),
    );
    MlflowError::invalid(format!("{message}{API_DOCS_HINT}"))
}

/// MLflow's message for a missing required field.
pub fn missing(field: &str) -> MlflowError {
    MlflowError::invalid(format!("Missing value for required parameter '{field}'.{API_DOCS_HINT}"))
}

pub(super) fn query_to_fields(query: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(key.as_ref()) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                fields.insert(key.into_owned(), value);
            }
        }
    }
    fields
}

pub(super) fn parse_json_body(bytes: &[u8]) -> Result<Map<String, Value>, MlflowError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let mut value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        // MLflow parses leniently and then reports the missing fields.
        Err(_) => return Ok(Map::new()),
    };
    // Legacy clients double-encode the body as a JSON string.
    if let Value::String(inner) = &value {
        value = serde_json::from_str(inner).unwrap_or(Value::Null);
    }
    match value {
        Value::Object(fields) => Ok(fields),
        _ => Ok(Map::new()),
    }
}

impl<S: Send + Sync> FromRequest<S> for MlflowRequest {
    type Rejection = MlflowError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let query = request.uri().query().unwrap_or("").to_string();
        let is_get = request.method() == Method::GET;
        if is_get && !query.is_empty() {
            return Ok(Self { fields: query_to_fields(&query) });
        }
        let has_content_type = request.headers().contains_key(header::CONTENT_TYPE);
        let bytes = axum::body::to_bytes(request.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| MlflowError::invalid("request body too large or unreadable"))?;
        if !is_get && !has_content_type && !bytes.is_empty() {
            return Err(MlflowError::invalid("Bad Request. Content-Type header is missing."));
        }
        let mut fields = parse_json_body(&bytes)?;
        if !is_get {
            // Query parameters complement the body (e.g. DELETE with a query string).
            for (key, value) in query_to_fields(&query) {
                fields.entry(key).or_insert(value);
            }
        }
        Ok(Self { fields })
    }
}

/// Path parameters, deserialised into `T`: a segment that is not UTF-8 once decoded is MLflow's
/// `INVALID_PARAMETER_VALUE` like any other malformed input, never axum's plain-text rejection.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AxumPath::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumPath(value)| Path(value))
            .map_err(|rejection| MlflowError::invalid(rejection.body_text()))
    }
}

/// Query-string parameters, deserialised into `T`, refused in MLflow's format (a repeated
/// field, a value of the wrong type).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = MlflowError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AxumQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|AxumQuery(value)| Query(value))
            .map_err(|rejection| MlflowError::invalid(rejection.body_text()))
    }
}

impl MlflowRequest {
    /// Builds a request from JSON fields (for tests and internal callers).
    pub fn from_fields(fields: Map<String, Value>) -> Self {
        Self { fields }
    }

    /// The raw value of a field, treating JSON null as absent.
    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).filter(|value| !value.is_null())
    }

    /// An optional string field; numbers and other types are rejected as MLflow does.
    pub fn string(&self, field: &str) -> Result<Option<String>, MlflowError> {
        match self.raw(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(wrong_type(field, other)),
        }
    }

    /// A required, non-empty string field.
    pub fn required_string(&self, field: &str) -> Result<String, MlflowError> {
        match self.string(field)? {
            Some(text) if !text.is_empty() => Ok(text),
            _ => Err(missing(field)),
        }
    }

    /// An optional integer field; numeric strings are accepted.
    pub fn int(&self, field: &str) -> Result<Option<i64>, MlflowError> {
        match self.raw(field) {
            None => Ok(None),
            Some(value) => int_value(field, value).map(Some),
        }
    }

    /// An optional boolean field (`true`/`false`, or JSON booleans).
    pub fn bool(&self, field: &str) -> Result<Option<bool>, MlflowError> {
        match self.raw(field) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(wrong_type(field, other)),
        }
    }

    /// A repeated string field: an array, or a single value (from a query string).
    pub fn strings(&self, field: &str) -> Result<Vec<String>, MlflowError> {
        match self.raw(field) {
            None => Ok(Vec::new()),
            Some(Value::String(text)) => Ok(vec![text.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    _ => Err(wrong_type(field, &Value::Array(items.clone()))),
                })
                .collect(),
            Some(other) => Err(wrong_type(field, other)),
        }
    }

    /// A repeated message field: an array of JSON objects.
    pub fn objects(&self, field: &str) -> Result<Vec<&Map<String, Value>>, MlflowError> {
        match self.raw(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Object(object) => Ok(object),
                    _ => Err(wrong_type(field, &Value::Array(items.clone()))),
                })
                .collect(),
            Some(other) => Err(wrong_type(field, other)),
        }
    }

    /// The repeated `experiment_ids` field, each parsed as MLflow does.
    pub fn experiment_ids(&self) -> Result<Vec<cairn_domain::ids::ExperimentId>, MlflowError> {
        self.strings("experiment_ids")?
            .iter()
            .map(|raw| {
                cairn_domain::ids::ExperimentId::parse(raw)
                    .map_err(|error| MlflowError::invalid(error.message))
            })
            .collect()
    }

    /// `run_id`, falling back to the legacy `run_uuid`.
    pub fn run_id(&self) -> Result<String, MlflowError> {
        if let Some(run_id) = self.string("run_id")?.filter(|id| !id.is_empty()) {
            return Ok(run_id);
        }
        match self.string("run_uuid")?.filter(|id| !id.is_empty()) {
            Some(run_id) => Ok(run_id),
            None => Err(missing("run_id")),
        }
    }
}

/// Parses an integer from a JSON number or numeric string.
pub fn int_value(field: &str, value: &Value) -> Result<i64, MlflowError> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| wrong_type(field, value)),
        Value::String(text) => text.trim().parse::<i64>().map_err(|_| wrong_type(field, value)),
        _ => Err(wrong_type(field, value)),
    }
}

/// Parses a float from a JSON number or a numeric string (including NaN and infinities).
pub fn float_value(field: &str, value: &Value) -> Result<f64, MlflowError> {
    match value {
        Value::Number(number) => number.as_f64().ok_or_else(|| wrong_type(field, value)),
        Value::String(text) => match text.trim() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            other => other.parse::<f64>().map_err(|_| wrong_type(field, value)),
        },
        _ => Err(wrong_type(field, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_become_fields() {
        let fields = query_to_fields("run_id=a&run_ids=x&run_ids=y&max_results=5");
        let request = MlflowRequest::from_fields(fields);
        assert_eq!(request.run_id().unwrap(), "a");
        assert_eq!(request.strings("run_ids").unwrap(), vec!["x", "y"]);
        assert_eq!(request.int("max_results").unwrap(), Some(5));
    }

    #[test]
    fn wrong_types_use_mlflow_messages() {
        let request = MlflowRequest::from_fields(
            serde_json::json!({"name": 123}).as_object().unwrap().clone(),
        );
        assert_eq!(
            request.string("name").unwrap_err().message,
            "Invalid value 123 for parameter 'name' supplied:  Hint: Value was of type 'int'. See the API docs for more information about request parameters."
        );
        assert_eq!(
            request.required_string("missing").unwrap_err().message,
            "Missing value for required parameter 'missing'. See the API docs for more information about request parameters."
        );
    }

    #[test]
    fn floats_accept_strings_and_specials() {
        assert_eq!(float_value("v", &serde_json::json!("1.5")).unwrap(), 1.5);
        assert!(float_value("v", &serde_json::json!("NaN")).unwrap().is_nan());
        assert!(float_value("v", &serde_json::json!("abc")).is_err());
    }
}
