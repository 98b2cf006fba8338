//! Datasets end to end: two versions pushed with the CLI differ in one file and the second
//! stores only that file; each version describes its CSV and Parquet tables; a job pinned to a
//! version reads it under `datasets/<name>/`; the run's lineage and its MLflow dataset inputs
//! lead back to the version and the version lists the job; retention deletes old versions
//! (audited) and a job or reproduction naming a deleted version is refused with the reason.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use serde_json::json;

use crate::compute::{Api, approve_environment, cairn, publish_environment, token, write_project};
use crate::rbac::fixture;
use crate::support::{Backend, TestApp};

const READ_PY: &str = r#"
import csv, os
with open("datasets/churn/train.csv") as handle:
    rows = list(csv.DictReader(handle))
print("rows", len(rows), "first", rows[0]["x"], flush=True)
"#;

fn write_dataset(dir: &std::path::Path, rows: usize, offset: f64) {
    std::fs::create_dir_all(dir.join("tables")).unwrap();
    let mut csv = String::from("x,label\n");
    for row in 0..rows {
        csv.push_str(&format!("{},{}\n", row as f64 * 0.5 + offset, row % 2));
    }
    std::fs::write(dir.join("train.csv"), csv).unwrap();
    std::fs::write(dir.join("README.txt"), "churn training data").unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("amount", DataType::Float64, false),
        Field::new("count", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Float64Array::from((0..50).map(f64::from).collect::<Vec<_>>())),
            Arc::new(Int64Array::from((0..50).collect::<Vec<i64>>())),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join("tables/extra.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

async fn datasets_end_to_end(backend: Backend, s3: bool) {
    let settings = cairn::ComputeSettings {
        tick: Duration::from_millis(100),
        secrets_key: Some(crate::compute::test_secrets_key()),
        ..cairn::ComputeSettings::default()
    };
    let Some(app) = TestApp::with_compute(backend, s3, settings).await else { return };
    let f = fixture(&app).await;
    let server = app.spawn().await;
    let api = Api::new(server.url());
    let (admin, contributor, viewer, outsider) = (
        token(&f.tokens, "admin"),
        token(&f.tokens, "contributor"),
        token(&f.tokens, "viewer"),
        token(&f.tokens, "outsider"),
    );
    let data = tempfile::tempdir().unwrap();
    write_dataset(data.path(), 100, 0.0);
    let dir = data.path().to_str().unwrap();
    let push = |who: &str| {
        cairn(&api.url, who, &["dataset", "push", "churn", dir, "--project", "churn", "-m", "v"])
    };
    let refused = push(viewer);
    assert!(!refused.status.success(), "viewers do not push");
    let first = push(contributor);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stderr).contains("uploading 3 new files"));
    write_dataset(data.path(), 120, 1.0);
    let second = push(contributor);
    let stderr = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("uploading 1 new files") && stderr.contains("2 already stored"),
        "{stderr}"
    );
    let view = api.ok(viewer, "GET", "/api/v1/projects/churn/datasets/churn", None).await;
    let versions = view["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let csv_size = std::fs::metadata(data.path().join("train.csv")).unwrap().len();
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(
        versions[0]["new_bytes"], csv_size,
        "the second version stored only the changed file"
    );
    let tables = &versions[0]["tables"];
    let train = tables.as_array().unwrap().iter().find(|t| t["path"] == "train.csv").unwrap();
    assert_eq!(train["rows"], 120);
    assert_eq!(
        train["columns"],
        json!([{"name": "x", "type": "float"}, {"name": "label", "type": "integer"}])
    );
    let extra =
        tables.as_array().unwrap().iter().find(|t| t["path"] == "tables/extra.parquet").unwrap();
    assert_eq!(extra["rows"], 50);
    assert_eq!(extra["format"], "parquet");
    let (status, _) = api.call(outsider, "GET", "/api/v1/projects/churn/datasets", None).await;
    assert_eq!(status, 403);

    // A job pinned to version 1 reads it; the lineage leads back to the version.
    publish_environment(&api, admin).await;
    approve_environment(&api, admin).await;
    let spec = json!({"cpu": 1.0, "memory_mib": 1024, "max_runtime_s": 120});
    api.ok(admin, "PUT", "/api/v1/tiers/small", Some(json!({"spec": spec}))).await;
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), "x");
    std::fs::write(project.path().join("read.py"), READ_PY).unwrap();
    assert!(
        cairn(
            &api.url,
            contributor,
            &["push", project.path().to_str().unwrap(), "--project", "churn"]
        )
        .status
        .success()
    );
    let run = cairn(
        &api.url,
        contributor,
        &[
            "job",
            "run",
            "--project",
            "churn",
            "--env",
            "py",
            "--tier",
            "small",
            "--dataset",
            "churn@1",
            "--follow",
            "--",
            "python",
            "read.py",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("rows 100 first 0\n"), "version 1 (100 rows, offset 0): {stdout}");
    let job = &api.ok(viewer, "GET", "/api/v1/projects/churn/jobs", None).await[0];
    let run_id = job["run_id"].as_str().unwrap();
    let lineage =
        api.ok(viewer, "GET", &format!("/api/v1/projects/churn/runs/{run_id}/lineage"), None).await;
    assert_eq!(
        lineage["datasets"],
        json!([{"name": "churn", "version": 1, "digest": versions[1]["digest"]}]),
        "{lineage}"
    );
    assert_eq!(lineage["job"]["id"], job["id"]);
    let mlflow_run = api
        .ok(viewer, "GET", &format!("/p/churn/api/2.0/mlflow/runs/get?run_id={run_id}"), None)
        .await;
    let input = &mlflow_run["run"]["inputs"]["dataset_inputs"][0]["dataset"];
    assert_eq!(input["name"], "churn");
    assert_eq!(input["source_type"], "cairn");
    assert!(
        input["source"]
            .as_str()
            .unwrap()
            .contains("cairn:/projects/churn/datasets/churn/versions/1"),
        "{input}"
    );
    let used =
        api.ok(viewer, "GET", "/api/v1/projects/churn/datasets/churn/versions/1", None).await;
    assert_eq!(used["jobs"][0]["run_id"], run_id);
    assert_eq!(used["files"].as_array().unwrap().len(), 3);

    // Retention: keep one version; version 1 goes (audited) and can no longer be used.
    api.ok(
        contributor,
        "PUT",
        "/api/v1/projects/churn/datasets/churn",
        Some(json!({"description": "churn", "keep_versions": 1})),
    )
    .await;
    let view = api.ok(viewer, "GET", "/api/v1/projects/churn/datasets/churn", None).await;
    assert_eq!(view["versions"][1]["deleted_by"], "contributor", "{view}");
    assert_eq!(view["dataset"]["latest_version"], 2);
    let template = json!({"command": ["python", "read.py"], "environment": "py", "tier": "small", "datasets": ["churn@1"]});
    let (status, answer) =
        api.call(contributor, "POST", "/api/v1/projects/churn/jobs", Some(template)).await;
    assert_eq!(status, 404, "{answer}");
    assert!(answer.to_string().contains("no version 1"), "{answer}");
    let (status, answer) = api
        .call(contributor, "POST", &format!("/api/v1/projects/churn/runs/{run_id}/reproduce"), None)
        .await;
    assert_eq!(status, 404, "reproducing needs the exact data: {answer}");
    let audit = app.app.store.audit_records(0, i64::MIN, 10_000).await.unwrap();
    assert!(audit.iter().any(|record| record.action == "dataset.retention"));
    let latest =
        api.ok(viewer, "GET", "/api/v1/projects/churn/datasets/churn/versions/latest", None).await;
    assert_eq!(latest["version"]["version"], 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn datasets_end_to_end_on_sqlite() {
    datasets_end_to_end(Backend::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn datasets_end_to_end_on_postgres_and_s3() {
    datasets_end_to_end(Backend::Postgres, true).await;
}
