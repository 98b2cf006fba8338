//! Fuzzing the MLflow request decoders on a budget (issue 10's hostile input): arbitrary bytes,
//! query strings and JSON values go through the extractor and every typed accessor and field
//! parser the handlers use. Nothing may panic; every refusal is MLflow's
//! `INVALID_PARAMETER_VALUE` (400); query strings decode to what was encoded.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::error::MlflowError;
use super::request::{MlflowRequest, float_value, int_value, parse_json_body, query_to_fields};

/// Cases per property; the set runs in a few seconds in a debug build.
const CASES: u32 = 512;

/// Field names the handlers read, and a few they do not.
const FIELDS: &[&str] = &[
    "run_id",
    "run_uuid",
    "experiment_id",
    "experiment_ids",
    "name",
    "new_name",
    "key",
    "value",
    "timestamp",
    "step",
    "metrics",
    "params",
    "tags",
    "filter",
    "order_by",
    "max_results",
    "page_token",
    "view_type",
    "run_view_type",
    "start_time",
    "end_time",
    "status",
    "version",
    "stages",
    "alias",
    "model_id",
    "source",
    "description",
    "datasets",
    "models",
    "path",
    "metric_key",
    "run_ids",
    "start_step",
    "end_step",
    "",
    "bogus",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(FIELDS).prop_map(str::to_string), 1 => "\\PC{0,8}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(
            &[
                "",
                "0",
                "1",
                "-1",
                "1.5",
                "NaN",
                "nan",
                "Infinity",
                "-Infinity",
                "inf",
                "1e400",
                "9223372036854775808",
                " 7 ",
                "true",
                "FALSE",
                "ACTIVE_ONLY",
                "ALL",
                "3",
                "0x1",
                "a",
                "é",
                "\u{0}",
                "{\"run_id\": \"x\"}",
            ][..],
        )
        .prop_map(|text| Value::String(text.to_string())),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

/// JSON values up to a few levels deep, with objects keyed by the handlers' field names.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((field_name(), json_value()), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect())
}

fn is_refusal(error: &MlflowError) -> bool {
    error.code == "INVALID_PARAMETER_VALUE" && error.status() == StatusCode::BAD_REQUEST
}

/// Runs the extractor on one request.
fn extract(request: Request<Body>) -> Result<MlflowRequest, MlflowError> {
    futures::executor::block_on(MlflowRequest::from_request(request, &()))
}

/// Calls every accessor and field parser on every known field; each result is a value or a
/// refusal.
fn read_everything(request: &MlflowRequest) -> Result<(), TestCaseError> {
    let check = |what: &str, result: Result<(), MlflowError>| match result {
        Ok(()) => Ok(()),
        Err(error) if is_refusal(&error) => Ok(()),
        Err(error) => Err(TestCaseError::fail(format!("{what}: {} {}", error.code, error.message))),
    };
    for field in FIELDS {
        check("string", request.string(field).map(drop))?;
        check("required_string", request.required_string(field).map(drop))?;
        check("int", request.int(field).map(drop))?;
        check("bool", request.bool(field).map(drop))?;
        check("strings", request.strings(field).map(drop))?;
        check("objects", request.objects(field).map(drop))?;
        check("tags", super::experiments::parse_tags(request, field).map(drop))?;
        check("view_type", super::experiments::view_type(request, field).map(drop))?;
        if let Some(value) = request.raw(field) {
            check("int_value", int_value(field, value).map(drop))?;
            check("float_value", float_value(field, value).map(drop))?;
        }
    }
    check("experiment_ids", request.experiment_ids().map(drop))?;
    check("experiment_id", super::experiments::experiment_id(request).map(drop))?;
    check("run_id", request.run_id().map(drop))?;
    check("run params", super::runs::parse_params(request).map(drop))?;
    check("logged model params", super::logged_models::parse_params(request).map(drop))?;
    if let Ok(objects) = request.objects("metrics") {
        for (index, object) in objects.iter().enumerate() {
            check(
                "metric",
                super::runs::parse_metric(object, &format!("metrics[{index}]")).map(drop),
            )?;
        }
    }
    check("metric fields", super::runs::parse_metric(&request_fields(request), "").map(drop))?;
    if let Ok(Some(filter)) = request.string("filter") {
        check("logged model filter", super::logged_models::parse_filter(&filter).map(drop))?;
    }
    Ok(())
}

/// The fields a handler would read as one metric (`log-metric` reads them from the top level).
fn request_fields(request: &MlflowRequest) -> Map<String, Value> {
    ["key", "value", "timestamp", "step", "model_id", "dataset_name", "dataset_digest"]
        .into_iter()
        .filter_map(|field| request.raw(field).map(|value| (field.to_string(), value.clone())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a body, with any method, query and content type.
    #[test]
    fn arbitrary_requests_are_decoded_or_refused(
        method in prop::sample::select(&["GET", "POST", "PATCH", "DELETE", "PUT"][..]),
        query in prop_oneof![Just(String::new()), "[ -~]{0,30}", "\\PC{0,20}"],
        content_type in prop::option::of(prop::sample::select(&["application/json", "text/plain", ""][..])),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            json_value().prop_map(|value| value.to_string().into_bytes()),
            json_value().prop_map(|value| Value::String(value.to_string()).to_string().into_bytes()),
        ],
    ) {
        let uri = if query.is_empty() {
            "/api/2.0/mlflow/runs/search".to_string()
        } else {
            let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
            format!("/api/2.0/mlflow/runs/search?{encoded}&{}", query.replace(['#', ' '], ""))
        };
        let Ok(uri) = uri.parse::<axum::http::Uri>() else { return Ok(()) };
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let request = builder.body(Body::from(body)).expect("a request");
        match extract(request) {
            Ok(request) => read_everything(&request)?,
            Err(error) => prop_assert!(is_refusal(&error), "{} {}", error.code, error.message),
        }
    }

    /// Arbitrary JSON objects as the fields of a request.
    #[test]
    fn arbitrary_fields_are_read_or_refused(fields in json_object()) {
        let body = Value::Object(fields.clone()).to_string();
        let parsed = parse_json_body(body.as_bytes()).map_err(|error| TestCaseError::fail(error.message))?;
        prop_assert!(parsed.keys().eq(fields.keys()), "{} -> {:?}", body, parsed);
        read_everything(&MlflowRequest::from_fields(fields))?;
    }

    /// A query string decodes to what was encoded: one value as a string, repeats as a list.
    #[test]
    fn query_strings_decode_to_what_was_encoded(
        pairs in prop::collection::vec((prop::sample::select(FIELDS).prop_filter("named", |f| !f.is_empty()), "\\PC{0,10}"), 0..8),
    ) {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(key, value)| (*key, value.as_str())))
            .finish();
        let fields = query_to_fields(&query);
        let mut expected: Map<String, Value> = Map::new();
        for (key, value) in &pairs {
            let value = Value::String(value.clone());
            match expected.get_mut(*key) {
                Some(Value::Array(items)) => items.push(value),
                Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
                None => {
                    expected.insert((*key).to_string(), value);
                }
            }
        }
        prop_assert_eq!(fields, expected);
    }

    /// Integers and floats survive the trip through JSON numbers and numeric strings.
    #[test]
    fn numbers_decode_to_what_was_encoded(integer in any::<i64>(), float in any::<f64>()) {
        prop_assert_eq!(int_value("f", &Value::from(integer)).ok(), Some(integer));
        prop_assert_eq!(int_value("f", &Value::String(integer.to_string())).ok(), Some(integer));
        if float.is_finite() {
            prop_assert_eq!(float_value("f", &Value::from(float)).ok(), Some(float));
            prop_assert_eq!(float_value("f", &Value::String(float.to_string())).ok(), Some(float));
        }
    }
}
