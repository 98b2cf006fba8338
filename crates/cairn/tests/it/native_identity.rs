//! The native identity API end to end: an admin creates a user and a project over HTTP, the user
//! manages their own tokens, owners manage members, and secrets are shown exactly once.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_domain::audit::RequestContext;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

async fn send(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
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
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn identity_api(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let (_, admin) = app
        .app
        .services
        .identity
        .bootstrap(&RequestContext::system(), "admin")
        .await
        .unwrap()
        .unwrap();

    let (status, me) = send(&app, &admin, "GET", "/api/v1/me", None).await;
    assert_eq!(
        (status, me["actor"].as_str(), me["site_role"].as_str()),
        (StatusCode::OK, Some("admin"), Some("admin"))
    );
    let (status, user) = send(
        &app,
        &admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "ada", "password": "long enough pw"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["site_role"], "member");
    let (status, body) =
        send(&app, &admin, "POST", "/api/v1/users", Some(json!({"username": "ada"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    let (status, body) =
        send(&app, &admin, "POST", "/api/v1/users", Some(json!({"username": "Bad Name"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_argument"))
    );
    let (status, _) = send(&app, &admin, "POST", "/api/v1/users", Some(json!({"nope": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a malformed body is a native error");

    // Ada logs in with her password (Basic) and makes herself a token.
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ada:long enough pw")
    );
    let request = Request::post("/api/v1/tokens")
        .header(header::AUTHORIZATION, basic)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "laptop", "expires_in_days": 30}).to_string()))
        .unwrap();
    let (status, bytes) = app.request(request).await;
    assert_eq!(status, StatusCode::CREATED);
    let created: Value = serde_json::from_slice(&bytes).unwrap();
    let ada = created["secret"].as_str().unwrap().to_string();
    assert!(ada.starts_with("cairn_"));
    let (_, tokens) = send(&app, &ada, "GET", "/api/v1/tokens", None).await;
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    assert!(!tokens.to_string().contains(&ada), "listings never show secrets");
    assert_eq!(send(&app, &ada, "GET", "/api/v1/users", None).await.0, StatusCode::FORBIDDEN);

    let (status, _) = send(
        &app,
        &admin,
        "POST",
        "/api/v1/projects",
        Some(json!({"name": "fraud", "owner": "ada"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, projects) = send(&app, &ada, "GET", "/api/v1/projects", None).await;
    let names: Vec<&str> =
        projects.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fraud"], "members see their own projects");
    send(
        &app,
        &admin,
        "POST",
        "/api/v1/users",
        Some(json!({"username": "bo", "service_account": true})),
    )
    .await;
    let (status, _) = send(
        &app,
        &ada,
        "PUT",
        "/api/v1/projects/fraud/members/bo",
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "owners manage members");
    let (_, members) = send(&app, &ada, "GET", "/api/v1/projects/fraud/members", None).await;
    assert_eq!(
        members,
        json!([{"username": "ada", "role": "owner"}, {"username": "bo", "role": "viewer"}])
    );
    let (status, _) =
        send(&app, &ada, "PUT", "/api/v1/projects/fraud/members/bo", Some(json!({"role": "king"})))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        send(&app, &ada, "DELETE", "/api/v1/projects/fraud/members/bo", None).await.0,
        StatusCode::NO_CONTENT
    );

    // Teams over the API: a team role reaches its members.
    assert_eq!(
        send(&app, &admin, "POST", "/api/v1/teams", Some(json!({"name": "fraud-ops"}))).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        send(&app, &admin, "PUT", "/api/v1/teams/fraud-ops/members/bo", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(
            &app,
            &ada,
            "PUT",
            "/api/v1/projects/fraud/teams/fraud-ops",
            Some(json!({"role": "viewer"}))
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    let (_, bo) = app
        .app
        .services
        .identity
        .create_token(&RequestContext::system(), "bo", "t", None)
        .await
        .unwrap();
    assert_eq!(
        send(&app, &bo, "GET", "/api/v1/projects/fraud/members", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, &ada, "DELETE", "/api/v1/projects/fraud/teams/fraud-ops", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, &bo, "GET", "/api/v1/projects/fraud/members", None).await.0,
        StatusCode::FORBIDDEN
    );

    let token_id = created["token"]["id"].as_i64().unwrap();
    assert_eq!(
        send(&app, &ada, "DELETE", &format!("/api/v1/tokens/{token_id}"), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(&app, &ada, "GET", "/api/v1/me", None).await.0,
        StatusCode::UNAUTHORIZED,
        "a revoked token stops working"
    );
    let (status, user) = send(&app, &admin, "POST", "/api/v1/users/bo/deactivate", None).await;
    assert_eq!((status, user["active"].as_bool()), (StatusCode::OK, Some(false)));
    let (_, document) = send(&app, &admin, "GET", "/api/v1/openapi.json", None).await;
    for path in ["/me", "/users", "/tokens", "/projects", "/projects/{project}/members/{username}"]
    {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn identity_api_on_sqlite() {
    identity_api(Backend::Sqlite).await;
}

#[tokio::test]
async fn identity_api_on_postgres() {
    identity_api(Backend::Postgres).await;
}
