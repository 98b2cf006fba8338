//! The artifact proxy over HTTP: streamed round trips, listings, traversal refusals, on the
//! local directory and on a real S3-compatible server.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sha2::{Digest, Sha256};

use crate::support::{Backend, TestApp};

const PROXY: &str = "/api/2.0/mlflow-artifacts/artifacts";

async fn proxy_contract(app: &TestApp) {
    let put = |path: &str, body: Vec<u8>| {
        Request::put(format!("{PROXY}/{path}")).body(Body::from(body)).expect("request")
    };
    let (status, _) = app.request(put("1/run/artifacts/hello.txt", b"hello".to_vec())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.request(put("1/run/artifacts/dir/sub/x.json", b"{}".to_vec())).await;
    assert_eq!(status, StatusCode::OK);
    let big: Vec<u8> = (0..12 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
    let (status, _) = app.request(put("1/run/artifacts/big.bin", big.clone())).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .request(
            Request::get(format!("{PROXY}/1/run/artifacts/big.bin")).body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(Sha256::digest(&body), Sha256::digest(&big), "large file round-trips intact");

    let (status, listing) = app.get(&format!("{PROXY}?path=1/run/artifacts")).await;
    assert_eq!(status, StatusCode::OK);
    let files = listing["files"].as_array().expect("files");
    let names: Vec<_> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(names, ["big.bin", "dir", "hello.txt"], "basenames, sorted");
    assert_eq!(files[2]["file_size"], 5);
    assert_eq!(files[1]["is_dir"], true);
    let (status, listing) = app.get(&format!("{PROXY}?path=1/nothing/here")).await;
    assert_eq!(
        (status, listing),
        (StatusCode::OK, serde_json::json!({})),
        "missing dir lists empty"
    );

    let (status, body) = app.get(&format!("{PROXY}/1/run/artifacts/nosuch/file")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");

    for bad in ["1/../../etc/passwd", "1/%2E%2E/%2E%2E/secret", "1/run/./x", "1/a%00b"] {
        let (status, body) = app.request(put(bad, b"x".to_vec())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} must be refused");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "Invalid path", "{bad}");
    }
    let (status, _) = app.get(&format!("{PROXY}?path=../..")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = app
        .request(
            Request::delete(format!("{PROXY}/1/run/artifacts/dir")).body(Body::empty()).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, listing) = app.get(&format!("{PROXY}?path=1/run/artifacts/dir/sub")).await;
    assert!(listing.get("files").is_none(), "deleted files are gone: {listing}");
    let (_, listing) = app.get(&format!("{PROXY}?path=1/run/artifacts")).await;
    let files = listing["files"].as_array().unwrap();
    // SeaweedFS may keep an empty folder entry for a while; only files matter here.
    assert_eq!(files.iter().filter(|f| f["is_dir"] == false).count(), 2);
}

#[tokio::test]
async fn proxy_on_local_directory() {
    let app = TestApp::new(Backend::Sqlite).await.expect("app");
    proxy_contract(&app).await;
}

#[tokio::test]
async fn proxy_on_s3() {
    let Some(app) = TestApp::with_artifacts(Backend::Sqlite, true).await else {
        return;
    };
    proxy_contract(&app).await;
}

#[tokio::test]
async fn run_and_logged_model_artifact_views() {
    let app = TestApp::new(Backend::Sqlite).await.expect("app");
    let api = "/api/2.0/mlflow";
    let (_, body) =
        app.post(&format!("{api}/runs/create"), serde_json::json!({"experiment_id": "0"})).await;
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let root = format!("0/{run_id}/artifacts");
    for (path, content) in [("a.txt", "alpha"), ("dir/b.txt", "beta"), ("dir/empty.txt", "")] {
        let request =
            Request::put(format!("{PROXY}/{root}/{path}")).body(Body::from(content)).unwrap();
        assert_eq!(app.request(request).await.0, StatusCode::OK);
    }
    let (status, body) = app.get(&format!("{api}/artifacts/list?run_id={run_id}&path=dir")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["root_uri"], format!("mlflow-artifacts:/{root}"));
    assert_eq!(
        body["files"],
        serde_json::json!([{"path": "dir/b.txt", "is_dir": false, "file_size": 4}, {"path": "dir/empty.txt", "is_dir": false}])
    );
    let request = Request::get(format!("/get-artifact?run_uuid={run_id}&path=dir/b.txt"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.request(request).await, (StatusCode::OK, b"beta".to_vec()));
    let (status, _) = app.get(&format!("/get-artifact?run_uuid={run_id}&path=../../x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "traversal out of the run root is refused");

    let (_, body) = app
        .post(
            &format!("{api}/logged-models"),
            serde_json::json!({"experiment_id": "0", "name": "model"}),
        )
        .await;
    let model_id = body["model"]["info"]["model_id"].as_str().unwrap().to_string();
    let request = Request::put(format!("{PROXY}/0/models/{model_id}/artifacts/MLmodel"))
        .body(Body::from("flavors: {}"))
        .unwrap();
    assert_eq!(app.request(request).await.0, StatusCode::OK);
    let (status, body) =
        app.get(&format!("{api}/logged-models/{model_id}/artifacts/directories")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["files"][0]["path"], "MLmodel");
    let request = Request::get(format!(
        "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files?artifact_file_path=MLmodel"
    ))
    .body(Body::empty())
    .unwrap();
    assert_eq!(app.request(request).await, (StatusCode::OK, b"flavors: {}".to_vec()));
}

#[tokio::test]
async fn direct_transfers_are_refused_like_mlflow() {
    let app = TestApp::new(Backend::Sqlite).await.expect("app");
    let (status, body) = app
        .post(
            "/api/2.0/mlflow-artifacts/mpu/create/0/run/artifacts/big.bin",
            serde_json::json!({"path": "big.bin", "num_parts": 2}),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_IMPLEMENTED, Some("NOT_IMPLEMENTED"))
    );
    let (status, _) = app
        .post("/api/2.0/mlflow-artifacts/mpu/create/0/../../x", serde_json::json!({"path": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "paths are validated first");
    let (status, _) = app.get("/api/2.0/mlflow-artifacts/presigned/0/run/artifacts/a.txt").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);

    let (_, body) =
        app.post("/api/2.0/mlflow/runs/create", serde_json::json!({"experiment_id": "0"})).await;
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(
            "/api/2.0/mlflow/artifacts/presigned-upload-url",
            serde_json::json!({"run_id": run_id, "path": "a.txt"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Presigned upload is not supported for proxied artifact storage")
    );
    let (status, body) = app
        .post(
            "/api/2.0/mlflow/artifacts/presigned-upload-url",
            serde_json::json!({"path": "a.txt"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Exactly one of run_id and model_id must be provided."))
    );
    let (status, _) = app
        .post(
            "/api/2.0/mlflow/artifacts/presigned-download-url",
            serde_json::json!({"run_id": run_id, "path": "a.txt", "expiration": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
