//! The model registry over the MLflow wire, in-process, on both databases: models, versions
//! numbered and never reused, stages, aliases, tags, search, download URIs and MLflow's errors.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

const API: &str = "/api/2.0/mlflow";

async fn send(app: &TestApp, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
    if method == "GET" {
        return app.get(path).await;
    }
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, bytes) = app.request(request).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn registry(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else { return };
    let (status, body) = send(
        &app,
        "POST",
        &format!("{API}/registered-models/create"),
        json!({"name": "churn", "tags": [{"key": "team", "value": "a"}], "description": "d"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["registered_model"]["name"], "churn");
    let (status, body) =
        send(&app, "POST", &format!("{API}/registered-models/create"), json!({"name": "churn"}))
            .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("RESOURCE_ALREADY_EXISTS"))
    );
    assert_eq!(body["message"], "Registered Model (name=churn) already exists.");
    let (status, body) =
        send(&app, "POST", &format!("{API}/registered-models/create"), json!({"name": "a/b"}))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid model name 'a/b'. Names cannot contain '/' or ':'.");

    // A logged model behind version 1 lists it in its mlflow.modelVersions tag.
    let (_, logged) = send(
        &app,
        "POST",
        &format!("{API}/logged-models"),
        json!({"experiment_id": "0", "name": "model"}),
    )
    .await;
    let model_id = logged["model"]["info"]["model_id"].as_str().unwrap().to_string();
    for source in [
        format!("models:/{model_id}"),
        "runs:/abc/model".to_string(),
        "s3://bucket/model".to_string(),
    ] {
        let body = json!({"name": "churn", "source": source, "model_id": if source.starts_with("models:/") { json!(model_id) } else { Value::Null }});
        let (status, answer) =
            send(&app, "POST", &format!("{API}/model-versions/create"), body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["model_version"]["status"], "READY");
    }
    let (_, logged) = app.get(&format!("{API}/logged-models/{model_id}")).await;
    let tag = logged["model"]["info"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "mlflow.modelVersions")
        .expect("tagged")
        .clone();
    assert_eq!(
        serde_json::from_str::<Value>(tag["value"].as_str().unwrap()).unwrap(),
        json!([{"name": "churn", "version": 1}])
    );
    let (_, uri) =
        app.get(&format!("{API}/model-versions/get-download-uri?name=churn&version=1")).await;
    assert_eq!(uri["artifact_uri"], format!("mlflow-artifacts:/0/models/{model_id}/artifacts"));
    let (_, uri) =
        app.get(&format!("{API}/model-versions/get-download-uri?name=churn&version=3")).await;
    assert_eq!(uri["artifact_uri"], "s3://bucket/model");

    // Stages, with archiving; latest versions per stage.
    send(&app, "POST", &format!("{API}/model-versions/transition-stage"), json!({"name": "churn", "version": "1", "stage": "production", "archive_existing_versions": false})).await;
    let (_, moved) = send(&app, "POST", &format!("{API}/model-versions/transition-stage"), json!({"name": "churn", "version": "2", "stage": "Production", "archive_existing_versions": true})).await;
    assert_eq!(moved["model_version"]["current_stage"], "Production");
    let (_, one) = app.get(&format!("{API}/model-versions/get?name=churn&version=1")).await;
    assert_eq!(
        one["model_version"]["current_stage"], "Archived",
        "archive_existing_versions archived version 1"
    );
    let (status, body) = send(
        &app,
        "POST",
        &format!("{API}/model-versions/transition-stage"),
        json!({"name": "churn", "version": "2", "stage": "Foo"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "Invalid Model Version stage: Foo. Value must be one of None, Staging, Production, Archived."
    );
    let (_, latest) = send(
        &app,
        "POST",
        &format!("{API}/registered-models/get-latest-versions"),
        json!({"name": "churn", "stages": ["Production"]}),
    )
    .await;
    assert_eq!(latest["model_versions"][0]["version"], "2");
    let (_, latest) = send(
        &app,
        "POST",
        &format!("{API}/registered-models/get-latest-versions"),
        json!({"name": "churn"}),
    )
    .await;
    let versions: Vec<&str> = latest["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1", "2", "3"], "one per stage: Archived, Production, None");

    // Aliases.
    assert_eq!(
        send(
            &app,
            "POST",
            &format!("{API}/registered-models/alias"),
            json!({"name": "churn", "alias": "champion", "version": "2"})
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, aliased) =
        app.get(&format!("{API}/registered-models/alias?name=churn&alias=champion")).await;
    assert_eq!(aliased["model_version"]["version"], "2");
    assert_eq!(aliased["model_version"]["aliases"], json!(["champion"]));
    let (status, body) = send(
        &app,
        "POST",
        &format!("{API}/registered-models/alias"),
        json!({"name": "churn", "alias": "latest", "version": "2"}),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("'latest' alias name (case insensitive) is reserved."))
    );
    let (status, _) = send(
        &app,
        "POST",
        &format!("{API}/registered-models/alias"),
        json!({"name": "churn", "alias": "x", "version": "7"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) =
        app.get(&format!("{API}/registered-models/alias?name=churn&alias=nosuch")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Registered model alias nosuch not found."))
    );
    let (_, model) = app.get(&format!("{API}/registered-models/get?name=churn")).await;
    assert_eq!(
        model["registered_model"]["aliases"],
        json!([{"alias": "champion", "version": "2"}])
    );

    // Deleted numbers are never reused; missing versions and models answer MLflow's 404s.
    send(
        &app,
        "DELETE",
        &format!("{API}/model-versions/delete"),
        json!({"name": "churn", "version": "3"}),
    )
    .await;
    let (_, next) = send(
        &app,
        "POST",
        &format!("{API}/model-versions/create"),
        json!({"name": "churn", "source": "s3://b/m"}),
    )
    .await;
    assert_eq!(next["model_version"]["version"], "4");
    let (status, body) = app.get(&format!("{API}/model-versions/get?name=churn&version=99")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("Model Version (name=churn, version=99) not found"))
    );
    let (status, body) = app.get(&format!("{API}/model-versions/get?name=churn&version=abc")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Parameter 'version' must be an integer, got 'abc'."))
    );
    let (status, body) = app.get(&format!("{API}/registered-models/get?name=nosuch")).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("Registered Model with name=nosuch not found"))
    );

    // Search: the client's prompt filter matches untagged models; pages; version filters.
    send(&app, "POST", &format!("{API}/registered-models/create"), json!({"name": "churn-b"}))
        .await;
    send(
        &app,
        "POST",
        &format!("{API}/registered-models/create"),
        json!({"name": "prompt", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]}),
    )
    .await;
    let filter = "name LIKE '%' AND tag.`mlflow.prompt.is_prompt` != 'true'";
    let (_, found) = app
        .get(&format!("{API}/registered-models/search?filter={}&max_results=1", urlencode(filter)))
        .await;
    assert_eq!(found["registered_models"][0]["name"], "churn");
    let token = found["next_page_token"].as_str().expect("a second page").to_string();
    let (_, page2) = app
        .get(&format!(
            "{API}/registered-models/search?filter={}&max_results=1&page_token={token}",
            urlencode(filter)
        ))
        .await;
    assert_eq!(page2["registered_models"][0]["name"], "churn-b");
    assert!(page2.get("next_page_token").is_none(), "prompts are excluded");
    let (_, versions) = app
        .get(&format!(
            "{API}/model-versions/search?filter={}",
            urlencode("name = 'churn' AND version_number >= 2")
        ))
        .await;
    let numbers: Vec<&str> = versions["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["4", "2"], "name ASC then version DESC");

    // Rename and delete.
    let (_, renamed) = send(
        &app,
        "POST",
        &format!("{API}/registered-models/rename"),
        json!({"name": "churn", "new_name": "churn-v2"}),
    )
    .await;
    assert_eq!(renamed["registered_model"]["name"], "churn-v2");
    let (_, aliased) =
        app.get(&format!("{API}/registered-models/alias?name=churn-v2&alias=champion")).await;
    assert_eq!(aliased["model_version"]["name"], "churn-v2", "versions follow the rename");
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("{API}/registered-models/delete"),
            json!({"name": "churn-v2"})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("{API}/registered-models/delete"),
            json!({"name": "churn-v2"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn registry_on_sqlite() {
    registry(Backend::Sqlite).await;
}

#[tokio::test]
async fn registry_on_postgres() {
    registry(Backend::Postgres).await;
}
