//! scikit-learn models exported with skl2onnx (`tests/fixtures/make_fixtures.py`) load in the
//! in-process runtime and predict what scikit-learn predicts: labels exactly, probabilities and
//! regression outputs within 1e-5. Models the runtime cannot serve are refused at load time with
//! the operator named.

use std::path::PathBuf;

use cairn_serving::{OnnxModel, ServingError, Values};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn golden() -> Value {
    serde_json::from_slice(&fixture("golden.json")).unwrap()
}

fn rows(case: &Value) -> (usize, Vec<f32>) {
    let rows = case["rows"].as_array().unwrap();
    let data = rows
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32))
        .collect();
    (rows.len(), data)
}

fn check_classifier(name: &str) {
    let model = OnnxModel::load(&fixture(&format!("{name}.onnx"))).expect("loads");
    assert_eq!(model.features(), 8);
    assert_eq!(model.input().name, "X");
    let case = &golden()[name];
    let (count, data) = rows(case);
    let outputs = model.predict(count, data).expect("predicts");
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["label", "probabilities"], "{name}");
    let Values::I64(labels) = &outputs[0].values else { panic!("labels are integers") };
    let expected: Vec<i64> =
        case["labels"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(labels, &expected, "{name} labels");
    assert_eq!(outputs[1].shape, vec![count, 2]);
    let Values::F64(probabilities) = &outputs[1].values else { panic!("probabilities are floats") };
    let expected: Vec<f64> = case["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    let worst = probabilities
        .iter()
        .zip(&expected)
        .map(|(got, want)| (got - want).abs())
        .fold(0.0_f64, f64::max);
    assert!(worst <= 1e-5, "{name}: largest probability difference {worst}");
}

#[test]
fn logistic_regression_matches_scikit_learn() {
    check_classifier("logreg");
}

#[test]
fn random_forest_matches_scikit_learn() {
    check_classifier("forest");
}

#[test]
fn gradient_boosting_matches_scikit_learn() {
    check_classifier("boosting");
}

#[test]
fn pipeline_with_a_scaler_matches_scikit_learn() {
    check_classifier("scaled_logreg");
}

#[test]
fn linear_regression_matches_scikit_learn() {
    let model = OnnxModel::load(&fixture("linreg.onnx")).expect("loads");
    let case = &golden()["linreg"];
    let (count, data) = rows(case);
    let outputs = model.predict(count, data).unwrap();
    let Values::F64(values) = &outputs[0].values else { panic!("floats") };
    for (got, want) in values.iter().zip(case["predictions"].as_array().unwrap()) {
        let want = want.as_f64().unwrap();
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{got} vs {want}");
    }
}

#[test]
fn random_forest_regression_matches_scikit_learn() {
    let model = OnnxModel::load(&fixture("forest_regressor.onnx")).expect("loads");
    let case = &golden()["forest_regressor"];
    let (count, data) = rows(case);
    let outputs = model.predict(count, data).unwrap();
    assert_eq!(outputs[0].shape, vec![count, 1]);
    let Values::F64(values) = &outputs[0].values else { panic!("floats") };
    for (got, want) in values.iter().zip(case["predictions"].as_array().unwrap()) {
        let want = want.as_f64().unwrap();
        assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "{got} vs {want}");
    }
}

#[test]
fn unsupported_operators_are_refused_at_load_time_by_name() {
    let error = OnnxModel::load(&fixture("logreg_zipmap.onnx")).unwrap_err();
    assert!(matches!(error, ServingError::Unsupported(_)));
    assert!(
        error.to_string().contains("ZipMap") && error.to_string().contains("zipmap"),
        "{error}"
    );
}

#[test]
fn invalid_models_are_refused_at_load_time() {
    let error = OnnxModel::load(b"not onnx at all").unwrap_err();
    assert!(matches!(error, ServingError::Invalid(_)), "{error}");
}

#[test]
fn bad_batches_are_input_errors() {
    let model = OnnxModel::load(&fixture("logreg.onnx")).unwrap();
    assert!(matches!(model.predict(2, vec![0.0; 15]), Err(ServingError::BadInput(_))));
    assert!(matches!(model.predict(0, vec![]), Err(ServingError::BadInput(_))));
    assert_eq!(model.sha256().len(), 64);
}
