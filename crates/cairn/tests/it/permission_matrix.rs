//! The permission matrix: every route the router registers (read from the same tables the
//! router is built from) × {anonymous, viewer, contributor, owner, another project's member,
//! site admin}, asserting allow or deny against what the route declares it needs. A route added
//! without a declaration cannot be registered; a native path without a rule fails here.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_api::{Needs, RouteSpec};
use serde_json::{Value, json};

use crate::rbac::{Fixture, fixture};
use crate::support::{Backend, TestApp};

/// Request fields that get every handler past its own parsing, so the answer shows the
/// authorisation decision (the fixture's ids fill them in).
fn fields(f: &Fixture, spec: &RouteSpec, index: usize) -> Value {
    let (e, r, m) = (&f.experiment_id, &f.run_id, &f.model_id);
    let model_json =
        json!({"artifact_path": "model", "flavors": {}, "utc_time_created": "now", "run_id": r})
            .to_string();
    let mut body = json!({
        "experiment_id": e, "experiment_ids": [e], "run_id": r, "run_uuid": r, "run_ids": [r],
        "model_id": m, "key": "k", "value": "1", "timestamp": 1, "metric_key": "m",
        "name": format!("matrix-{index}"), "new_name": format!("matrix-renamed-{index}"),
        "experiment_name": "churn-exp", "max_results": 10, "path": "a.txt",
        "artifact_file_path": "a.txt", "metrics": [], "params": [], "tags": [], "datasets": [],
        "models": [], "status": "FINISHED", "model_json": model_json,
        "username": format!("matrix-user-{index}"), "role": "viewer",
        "version": "1", "alias": "champion", "stage": "Staging", "source": "models:/m-0", "stages": [],
    });
    if spec.method == "PATCH" && spec.path.ends_with("/logged-models/{model_id}") {
        body["status"] = json!("LOGGED_MODEL_READY");
    }
    if spec.path.ends_with("/presigned-upload-url") {
        body.as_object_mut().unwrap().remove("model_id");
    }
    if spec.path.ends_with("/mlflow-artifacts/artifacts") {
        body["path"] = json!(format!("{e}/{r}/artifacts"));
    }
    body
}

fn request(f: &Fixture, spec: &RouteSpec, index: usize, token: Option<&str>) -> Request<Body> {
    let path = spec
        .path
        .replace("{model_id}", &f.model_id)
        .replace("{tag_key}", "k")
        .replace("{username}", "bystander")
        .replace("{project}", "churn")
        .replace("{team}", "matrix-team")
        .replace("{id}", "999999")
        .replace("{name}", "matrix-model")
        .replace("{version}", "1")
        .replace("{deployment}", "matrix-deployment")
        .replace("{*path}", &format!("{}/{}/artifacts/a.txt", f.experiment_id, f.run_id));
    let fields = fields(f, spec, index);
    let mut builder = Request::builder().method(spec.method);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let scoped = format!("/p/churn{path}");
    match spec.method {
        "GET" | "DELETE" => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (key, value) in fields.as_object().unwrap() {
                match value {
                    Value::Array(items) => items.iter().for_each(|item| {
                        query.append_pair(key, item.as_str().unwrap_or_default());
                    }),
                    Value::String(text) => {
                        query.append_pair(key, text);
                    }
                    other => {
                        query.append_pair(key, &other.to_string());
                    }
                }
            }
            builder.uri(format!("{scoped}?{}", query.finish())).body(Body::empty()).unwrap()
        }
        "PUT" if !path.starts_with("/api/v1") => {
            builder.uri(scoped).body(Body::from("matrix")).unwrap()
        }
        _ => builder
            .uri(scoped)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(fields.to_string()))
            .unwrap(),
    }
}

fn allowed(who: &str, needs: Needs) -> bool {
    match who {
        "admin" => needs != Needs::Reviewer,
        "owner" => !matches!(needs, Needs::Admin | Needs::Reviewer),
        "contributor" => !matches!(needs, Needs::Admin | Needs::Manage | Needs::Reviewer),
        "viewer" => matches!(needs, Needs::Authenticated | Needs::Read),
        _ => needs == Needs::Authenticated,
    }
}

async fn matrix(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let f = fixture(&app).await;
    let bystander = cairn_service::UserSpec {
        username: "bystander".into(),
        site_role: cairn_domain::identity::SiteRole::Member,
        service_account: true,
        password: None,
        display_name: None,
        email: None,
    };
    app.app
        .services
        .identity
        .create_user(&cairn_domain::audit::RequestContext::system(), &bystander)
        .await
        .unwrap();
    let table = cairn_api::route_table();
    assert!(
        table.len() > 150,
        "every prefix of every route is enumerated ({} routes)",
        table.len()
    );
    for spec in table.iter().filter(|spec| spec.path.starts_with("/api/v1")) {
        assert!(
            cairn_api::native::needs_for(spec.method, &spec.path).is_some(),
            "{} {} has no rule",
            spec.method,
            spec.path
        );
    }
    let mut failures = Vec::new();
    for (index, spec) in table.iter().enumerate() {
        let (status, _) = app.request(request(&f, spec, index, None)).await;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!("anonymous {} {} -> {status}", spec.method, spec.path));
        }
        for (who, token) in &f.tokens {
            let (status, body) = app.request(request(&f, spec, index, Some(token))).await;
            let denied = status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED;
            if allowed(who, spec.needs) == denied {
                let body = String::from_utf8_lossy(&body).chars().take(160).collect::<String>();
                failures.push(format!(
                    "{who} {} {} ({:?}) -> {status} {body}",
                    spec.method, spec.path, spec.needs
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} permission mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_matrix_on_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_matrix_on_postgres() {
    matrix(Backend::Postgres).await;
}
