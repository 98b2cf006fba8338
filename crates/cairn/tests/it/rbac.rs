//! Project RBAC through the MLflow surface: owners, contributors and viewers of a project, a
//! member of another project, and a site admin, against reads and writes of experiments, runs,
//! metrics, artifacts and logged models; and `/p/<project>` scoping.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{ProjectRole, SiteRole};
use cairn_service::UserSpec;
use serde_json::json;

use crate::support::{Backend, TestApp};

pub(crate) struct Fixture {
    pub(crate) experiment_id: String,
    pub(crate) run_id: String,
    pub(crate) model_id: String,
    pub(crate) tokens: Vec<(&'static str, String)>,
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let (status, bytes) = app.request(request.body(body).unwrap()).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

pub(crate) async fn fixture(app: &TestApp) -> Fixture {
    let system = RequestContext::system();
    let services = &app.app.services;
    let (_, admin_token) = services.identity.bootstrap(&system, "admin").await.unwrap().unwrap();
    services.projects.create(&system, "churn", Some("churn models"), None).await.unwrap();
    services.projects.create(&system, "other", None, None).await.unwrap();
    let mut tokens = vec![("admin", admin_token.clone())];
    for (name, project, role) in [
        ("owner", "churn", ProjectRole::Owner),
        ("contributor", "churn", ProjectRole::Contributor),
        ("viewer", "churn", ProjectRole::Viewer),
        ("outsider", "other", ProjectRole::Owner),
    ] {
        let spec = UserSpec {
            username: name.into(),
            site_role: SiteRole::Member,
            service_account: true,
            password: None,
            display_name: None,
            email: None,
        };
        services.identity.create_user(&system, &spec).await.unwrap();
        services.projects.set_member(&system, project, name, role).await.unwrap();
        let (_, token) = services.identity.create_token(&system, name, "test", None).await.unwrap();
        tokens.push((name, token));
    }
    let (status, body) = call(
        app,
        &admin_token,
        "POST",
        "/p/churn/api/2.0/mlflow/experiments/create",
        Some(json!({"name": "churn-exp"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let experiment_id = body["experiment_id"].as_str().unwrap().to_string();
    let (_, body) = call(
        app,
        &admin_token,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(json!({"experiment_id": experiment_id})),
    )
    .await;
    let run_id = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (_, body) = call(
        app,
        &admin_token,
        "POST",
        "/api/2.0/mlflow/logged-models",
        Some(json!({"experiment_id": experiment_id, "name": "m"})),
    )
    .await;
    let model_id = body["model"]["info"]["model_id"].as_str().unwrap().to_string();
    let put = Request::put(format!(
        "/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/a.txt"
    ))
    .header(header::AUTHORIZATION, format!("Bearer {admin_token}"))
    .body(Body::from("alpha"))
    .unwrap();
    assert_eq!(app.request(put).await.0, StatusCode::OK);
    Fixture { experiment_id, run_id, model_id, tokens }
}

async fn rbac(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let f = fixture(&app).await;
    let (e, r, m) = (&f.experiment_id, &f.run_id, &f.model_id);
    let artifact = format!("/api/2.0/mlflow-artifacts/artifacts/{e}/{r}/artifacts/a.txt");
    // (method, path, body, needs write)
    let routes: Vec<(&str, String, Option<serde_json::Value>, bool)> = vec![
        ("GET", format!("/api/2.0/mlflow/experiments/get?experiment_id={e}"), None, false),
        (
            "GET",
            "/p/churn/api/2.0/mlflow/experiments/get-by-name?experiment_name=churn-exp".into(),
            None,
            false,
        ),
        (
            "POST",
            "/p/churn/api/2.0/mlflow/experiments/search".into(),
            Some(json!({"max_results": 10})),
            false,
        ),
        ("GET", format!("/api/2.0/mlflow/runs/get?run_id={r}"), None, false),
        ("POST", "/api/2.0/mlflow/runs/search".into(), Some(json!({"experiment_ids": [e]})), false),
        (
            "GET",
            format!("/api/2.0/mlflow/metrics/get-history?run_id={r}&metric_key=m"),
            None,
            false,
        ),
        ("GET", format!("/api/2.0/mlflow/logged-models/{m}"), None, false),
        ("GET", artifact.clone(), None, false),
        ("GET", format!("/api/2.0/mlflow-artifacts/artifacts?path={e}/{r}/artifacts"), None, false),
        ("POST", "/api/2.0/mlflow/runs/create".into(), Some(json!({"experiment_id": e})), true),
        (
            "POST",
            "/api/2.0/mlflow/runs/log-metric".into(),
            Some(json!({"run_id": r, "key": "m", "value": 1.0, "timestamp": 1})),
            true,
        ),
        (
            "POST",
            "/api/2.0/mlflow/runs/set-tag".into(),
            Some(json!({"run_id": r, "key": "t", "value": "v"})),
            true,
        ),
        (
            "POST",
            "/api/2.0/mlflow/experiments/set-experiment-tag".into(),
            Some(json!({"experiment_id": e, "key": "t", "value": "v"})),
            true,
        ),
        (
            "POST",
            "/p/churn/api/2.0/mlflow/experiments/create".into(),
            Some(json!({"name": "x"})),
            true,
        ),
        (
            "PATCH",
            format!("/api/2.0/mlflow/logged-models/{m}/tags"),
            Some(json!({"tags": [{"key": "k", "value": "v"}]})),
            true,
        ),
        ("PUT", format!("/api/2.0/mlflow-artifacts/artifacts/{e}/{r}/artifacts/b.txt"), None, true),
    ];
    for (who, token) in &f.tokens {
        for (index, (method, path, body, needs_write)) in routes.iter().enumerate() {
            // Creating the same experiment twice would answer 400: give each caller its own name.
            let body = body.clone().map(|mut body| {
                if body.get("name") == Some(&json!("x")) {
                    body["name"] = json!(format!("x-{who}-{index}"));
                }
                body
            });
            let (status, answer) = if *method == "PUT" {
                let request = Request::put(path.as_str())
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::from("beta"))
                    .unwrap();
                let (status, bytes) = app.request(request).await;
                (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
            } else {
                call(&app, token, method, path, body).await
            };
            let allowed = match *who {
                "admin" | "owner" | "contributor" => true,
                "viewer" => !needs_write,
                _ => false,
            };
            if allowed {
                assert!(
                    status.is_success(),
                    "{who} {method} {path}: expected success, got {status} {answer}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{who} {method} {path}: {answer}");
                assert_eq!(answer["error_code"], "PERMISSION_DENIED", "{who} {method} {path}");
            }
        }
    }

    let viewer = &f.tokens.iter().find(|(who, _)| *who == "viewer").unwrap().1;
    let (status, body) = call(
        &app,
        viewer,
        "POST",
        "/api/2.0/mlflow/runs/log-metric",
        Some(json!({"run_id": r, "key": "m", "value": 1.0, "timestamp": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("viewer of project 'churn'"), "{body}");
    let outsider = &f.tokens.iter().find(|(who, _)| *who == "outsider").unwrap().1;
    let (status, body) =
        call(&app, outsider, "GET", &format!("/api/2.0/mlflow/runs/get?run_id={r}"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("not a member of project 'churn'"),
        "{body}"
    );

    // Scoping: through /p/other the churn experiment does not exist; an unknown project is 404.
    let admin = &f.tokens[0].1;
    let (status, _) = call(
        &app,
        admin,
        "GET",
        &format!("/p/other/api/2.0/mlflow/experiments/get?experiment_id={e}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &app,
        admin,
        "POST",
        "/p/nope/api/2.0/mlflow/experiments/search",
        Some(json!({"max_results": 1})),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (_, body) = call(
        &app,
        admin,
        "POST",
        "/p/other/api/2.0/mlflow/experiments/search",
        Some(json!({"max_results": 10})),
    )
    .await;
    assert!(
        body.get("experiments").is_none(),
        "the other project's search sees none of churn's experiments"
    );
    let (_, body) = call(
        &app,
        admin,
        "GET",
        "/p/churn/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
        None,
    )
    .await;
    assert_eq!(
        body["error_code"], "RESOURCE_DOES_NOT_EXIST",
        "names are looked up in the scoped project"
    );

    // Reading an artifact with credentials is recorded as a sensitive read.
    let records = app.app.store.audit_records(0, i64::MIN, 10_000).await.unwrap();
    assert!(
        records.iter().any(|r| r.action == "artifact.read"
            && r.actor == "viewer"
            && r.target.ends_with("/artifacts/a.txt")),
        "the viewer's download is in the audit log"
    );

    // Managing members takes the owner; listing the audit log takes a site admin.
    let owner = &f.tokens.iter().find(|(who, _)| *who == "owner").unwrap().1;
    let (status, _) = call(&app, owner, "GET", "/api/v1/audit-events", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, admin, "GET", "/api/v1/audit-events", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn rbac_on_sqlite() {
    rbac(Backend::Sqlite).await;
}

#[tokio::test]
async fn rbac_on_postgres() {
    rbac(Backend::Postgres).await;
}

async fn teams_and_deactivation(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let f = fixture(&app).await;
    let system = RequestContext::system();
    let services = &app.app.services;
    let spec = UserSpec {
        username: "analyst".into(),
        site_role: SiteRole::Member,
        service_account: true,
        password: None,
        display_name: None,
        email: None,
    };
    services.identity.create_user(&system, &spec).await.unwrap();
    let (_, analyst) = services.identity.create_token(&system, "analyst", "t", None).await.unwrap();
    let read = format!("/api/2.0/mlflow/runs/get?run_id={}", f.run_id);
    let write = json!({"run_id": f.run_id, "key": "team", "value": "1"});
    assert_eq!(call(&app, &analyst, "GET", &read, None).await.0, StatusCode::FORBIDDEN);
    services.projects.create_team(&system, "analysts").await.unwrap();
    services.projects.set_team_user(&system, "analysts", "analyst", true).await.unwrap();
    services
        .projects
        .set_project_team(&system, "churn", "analysts", Some(ProjectRole::Viewer))
        .await
        .unwrap();
    assert_eq!(
        call(&app, &analyst, "GET", &read, None).await.0,
        StatusCode::OK,
        "a team role grants access"
    );
    assert_eq!(
        call(&app, &analyst, "POST", "/api/2.0/mlflow/runs/set-tag", Some(write.clone())).await.0,
        StatusCode::FORBIDDEN
    );
    services
        .projects
        .set_project_team(&system, "churn", "analysts", Some(ProjectRole::Contributor))
        .await
        .unwrap();
    assert_eq!(
        call(&app, &analyst, "POST", "/api/2.0/mlflow/runs/set-tag", Some(write)).await.0,
        StatusCode::OK
    );
    services.projects.set_team_user(&system, "analysts", "analyst", false).await.unwrap();
    assert_eq!(
        call(&app, &analyst, "GET", &read, None).await.0,
        StatusCode::FORBIDDEN,
        "leaving the team ends it"
    );

    // A default project: calls without a /p/ prefix land there.
    services.identity.set_default_project(&system, "contributor", Some("churn")).await.unwrap();
    let contributor = &f.tokens.iter().find(|(who, _)| *who == "contributor").unwrap().1;
    let (status, body) = call(
        &app,
        contributor,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(json!({"name": "no-prefix"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, found) = call(
        &app,
        contributor,
        "GET",
        "/p/churn/api/2.0/mlflow/experiments/get-by-name?experiment_name=no-prefix",
        None,
    )
    .await;
    assert_eq!(
        found["experiment"]["experiment_id"], body["experiment_id"],
        "it was created in churn"
    );
    services.identity.set_default_project(&system, "contributor", None).await.unwrap();
    let (status, _) = call(
        &app,
        contributor,
        "POST",
        "/api/2.0/mlflow/experiments/create",
        Some(json!({"name": "no-prefix-2"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "back to the site default project, where they are no member"
    );

    // The only owner cannot vanish without an heir; with one, ownership moves and work stays.
    let refused = services.identity.deactivate_user(&system, "owner", None).await.unwrap_err();
    assert!(refused.message.contains("only owner of project 'churn'"), "{}", refused.message);
    services.identity.deactivate_user(&system, "owner", Some("contributor")).await.unwrap();
    let owner_token = &f.tokens.iter().find(|(who, _)| *who == "owner").unwrap().1;
    assert_eq!(call(&app, owner_token, "GET", &read, None).await.0, StatusCode::UNAUTHORIZED);
    let members = services.projects.members(&system, "churn").await.unwrap();
    assert!(
        members.iter().any(|m| m.username == "contributor" && m.role == ProjectRole::Owner),
        "{members:?}"
    );
    let admin = &f.tokens[0].1;
    assert_eq!(
        call(&app, admin, "GET", &read, None).await.0,
        StatusCode::OK,
        "their work stays readable"
    );
}

#[tokio::test]
async fn teams_and_deactivation_on_sqlite() {
    teams_and_deactivation(Backend::Sqlite).await;
}

#[tokio::test]
async fn teams_and_deactivation_on_postgres() {
    teams_and_deactivation(Backend::Postgres).await;
}
