//! Cairn's drift statistics against the real Evidently 0.7: `tests/drift/evidently_golden.py`
//! generates reference and current Parquet files (20 numerical and 5 categorical columns,
//! drift injected into known ones) at 1 000 and 100 000 rows, on both sides of Evidently's
//! 1 000-row switch from p-value tests to distances, and records what `DataDriftPreset` and
//! every other applicable Evidently stattest say. Cairn, reading the same files through
//! `cairn_service::tables`, must agree on every method, statistic (1e-6 relative), verdict and
//! the dataset verdict; so must the `cairn drift` binary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_domain::drift::{ColumnKind, ColumnOptions, Method, column_drift, dataset_drift};
use cairn_service::tables::{TableFormat, read_local_column};
use serde_json::Value;

/// Relative tolerance on every statistic.
const RELATIVE_TOLERANCE: f64 = 1e-6;
/// p-values this small are "zero": SciPy and Cairn may underflow at slightly different points.
const P_VALUE_FLOOR: f64 = 1e-290;
/// Distances this close to zero are equal (e.g. identical constant columns).
const DISTANCE_FLOOR: f64 = 1e-12;

fn python() -> Option<String> {
    match std::env::var("CAIRN_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) if cairn_store::testsuite::services_required() => {
            panic!("CAIRN_TEST_PYTHON is not set but CAIRN_TEST_REQUIRE_SERVICES=1")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED: Evidently golden drift tests (set CAIRN_TEST_PYTHON to a venv with evidently)"
            );
            None
        }
    }
}

/// Runs the generator for `rows` rows into `dir`; returns evidently.json.
fn generate(python: &str, rows: usize, dir: &Path) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/drift/evidently_golden.py");
    let output = Command::new(python)
        .arg("-W")
        .arg("ignore")
        .arg(&script)
        .args(["--rows", &rows.to_string(), "--out"])
        .arg(dir)
        .output()
        .expect("run evidently_golden.py");
    assert!(
        output.status.success(),
        "evidently_golden.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(dir.join("evidently.json")).expect("evidently.json");
    serde_json::from_str(&text).expect("evidently.json is JSON")
}

/// Whether Cairn's statistic agrees with Evidently's; `None` means "agrees", else the relative
/// error.
fn mismatch(method: Method, actual: f64, expected: Option<f64>) -> Option<f64> {
    let Some(expected) = expected else {
        return (!actual.is_infinite()).then_some(f64::INFINITY);
    };
    let floor = if method.is_p_value() { P_VALUE_FLOOR } else { DISTANCE_FLOOR };
    let difference = (actual - expected).abs();
    if difference <= floor || difference <= RELATIVE_TOLERANCE * expected.abs() {
        return None;
    }
    Some(difference / expected.abs())
}

fn relative_error(actual: f64, expected: Option<f64>) -> f64 {
    match expected {
        Some(expected) if expected != 0.0 => ((actual - expected) / expected).abs(),
        Some(_) => actual.abs(),
        None => 0.0,
    }
}

fn kind_of(evidently_kind: &str) -> ColumnKind {
    match evidently_kind {
        "num" => ColumnKind::Numerical,
        "cat" => ColumnKind::Categorical,
        other => panic!("unexpected Evidently column type {other}"),
    }
}

/// Checks every column and extra stattest of one golden run; returns the largest relative
/// error per method, for the log.
fn check_golden(dir: &Path, golden: &Value) -> BTreeMap<String, f64> {
    let reference_path = dir.join("reference.parquet");
    let current_path = dir.join("current.parquet");
    let read = |path: &Path, column: &str| {
        read_local_column(path, TableFormat::Parquet, column)
            .unwrap_or_else(|error| panic!("reading {column}: {error}"))
    };
    let mut worst: BTreeMap<String, f64> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut results = Vec::new();

    let columns = golden["columns"].as_object().expect("columns");
    assert_eq!(columns.len(), 25, "Evidently tested every column");
    for (column, expected) in columns {
        let reference = read(&reference_path, column);
        let current = read(&current_path, column);
        let drift = column_drift(&reference, &current, &ColumnOptions::default())
            .unwrap_or_else(|error| panic!("{column}: {error}"));
        let expected_method = expected["method"].as_str().expect("method");
        let expected_statistic = expected["statistic"].as_f64();
        assert_eq!(drift.kind, kind_of(expected["kind"].as_str().expect("kind")), "{column} kind");
        assert_eq!(drift.method.name(), expected_method, "{column} method");
        assert_eq!(Some(drift.threshold), expected["threshold"].as_f64(), "{column} threshold");
        if let Some(error) = mismatch(drift.method, drift.statistic, expected_statistic) {
            failures.push(format!(
                "{column} {expected_method}: {} vs Evidently {expected_statistic:?} (relative {error:e})",
                drift.statistic
            ));
        }
        if Some(drift.drifted) != expected["drift"].as_bool() {
            failures.push(format!(
                "{column}: verdict {} vs Evidently {}",
                drift.drifted, expected["drift"]
            ));
        }
        let entry = worst.entry(format!("{expected_method} (preset)")).or_insert(0.0);
        *entry = entry.max(relative_error(drift.statistic, expected_statistic));
        results.push(drift);
    }

    let dataset =
        dataset_drift(&results, golden["dataset"]["drift_share"].as_f64().expect("share"));
    assert_eq!(
        Some(dataset.drifted as f64),
        golden["dataset"]["count"].as_f64(),
        "drifted columns"
    );
    assert_eq!(Some(dataset.share), golden["dataset"]["share"].as_f64(), "drifted share");
    assert_eq!(Some(dataset.dataset_drift), golden["dataset"]["dataset_drift"].as_bool());

    for expected in golden["extra"].as_array().expect("extra") {
        let column = expected["column"].as_str().expect("column");
        let method: Method = expected["method"].as_str().expect("method").parse().expect("method");
        let kind = kind_of(columns[column]["kind"].as_str().expect("kind"));
        let options = ColumnOptions { kind: Some(kind), method: Some(method), threshold: None };
        let drift =
            column_drift(&read(&reference_path, column), &read(&current_path, column), &options)
                .unwrap_or_else(|error| panic!("{column} {method}: {error}"));
        let expected_statistic = expected["statistic"].as_f64();
        if let Some(error) = mismatch(method, drift.statistic, expected_statistic) {
            failures.push(format!(
                "{column} {method}: {} vs Evidently {expected_statistic:?} (relative {error:e})",
                drift.statistic
            ));
        }
        if Some(drift.drifted) != expected["drift"].as_bool() {
            failures.push(format!("{column} {method}: verdict {}", drift.drifted));
        }
        let entry = worst.entry(method.name().to_owned()).or_insert(0.0);
        *entry = entry.max(relative_error(drift.statistic, expected_statistic));
    }
    assert!(failures.is_empty(), "disagreements with Evidently:\n{}", failures.join("\n"));
    worst
}

fn run_golden(rows: usize) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let golden = generate(&python, rows, dir.path());
    assert!(
        golden["evidently_version"].as_str().is_some_and(|v| v.starts_with("0.7.")),
        "Evidently 0.7.x: {}",
        golden["evidently_version"]
    );
    let worst = check_golden(dir.path(), &golden);
    eprintln!("largest relative error per method at {rows} rows: {worst:?}");
}

#[test]
fn matches_evidently_at_1000_rows() {
    run_golden(1_000);
}

#[test]
fn matches_evidently_at_100000_rows() {
    run_golden(100_000);
}

/// Runs `cairn drift`; returns the exit status and standard output.
fn cairn_drift(dir: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("drift")
        .arg("--reference")
        .arg(dir.join("reference.parquet"))
        .arg("--current")
        .arg(dir.join("current.parquet"))
        .args(extra)
        .output()
        .expect("run cairn drift");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_drift_command_agrees_with_evidently() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let golden = generate(&python, 1_000, dir.path());

    let (status, stdout, stderr) = cairn_drift(dir.path(), &["--format", "json"]);
    assert_eq!(status, Some(0), "no dataset drift at the default share: {stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    let columns = report["columns"].as_array().expect("columns");
    assert_eq!(columns.len(), 25);
    for column in columns {
        let name = column["column"].as_str().expect("name");
        let expected = &golden["columns"][name];
        assert_eq!(column["method"], expected["method"], "{name}");
        assert_eq!(column["drifted"], expected["drift"], "{name}");
        let method: Method = column["method"].as_str().expect("method").parse().expect("method");
        let statistic = column["statistic"].as_f64().expect("statistic");
        assert!(mismatch(method, statistic, expected["statistic"].as_f64()).is_none(), "{name}");
    }
    assert_eq!(report["dataset"]["share"], golden["dataset"]["share"]);
    assert_eq!(report["dataset"]["dataset_drift"], false);

    // The same share crosses a lower drift share: exit status 3.
    let (status, stdout, _) = cairn_drift(dir.path(), &["--drift-share", "0.3"]);
    assert_eq!(status, Some(3), "{stdout}");
    assert!(stdout.contains("DATASET DRIFT"), "{stdout}");

    // Options apply per column; a method that does not fit the column is bad input.
    let (status, stdout, stderr) = cairn_drift(
        dir.path(),
        &[
            "--columns",
            "num_00,cat_4",
            "--method",
            "psi",
            "--threshold",
            "cat_4=0.5",
            "--format",
            "json",
        ],
    );
    assert_eq!(status, Some(3), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["columns"][0]["method"], "psi");
    assert_eq!(report["columns"][1]["threshold"], 0.5);
    let (status, _, stderr) = cairn_drift(dir.path(), &["--method", "num_00=chisquare"]);
    assert_eq!(status, Some(2), "chi-square on a numerical column: {stderr}");
    let (status, _, stderr) = cairn_drift(dir.path(), &["--columns", "no_such_column"]);
    assert_eq!(status, Some(2));
    assert!(stderr.contains("no_such_column"), "{stderr}");
}
