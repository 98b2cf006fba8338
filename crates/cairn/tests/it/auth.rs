//! Authentication on every MLflow and native route: tokens (Bearer, or Basic with the token),
//! passwords (Basic), refusals in each surface's error format, revocation, expiry and
//! deactivation, and the authenticated user as the audit actor.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::SiteRole;
use cairn_service::UserSpec;

use crate::support::{Backend, TestApp};

const SEARCH: &str = "/api/2.0/mlflow/experiments/search?max_results=10";

async fn status_with(
    app: &TestApp,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::get(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let (status, body) = app.request(request.body(Body::empty()).unwrap()).await;
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

async fn authentication(backend: Backend) {
    let Some(app) = TestApp::with_auth(backend).await else { return };
    let system = RequestContext::system();
    let identity = &app.app.services.identity;

    let (status, body) = status_with(&app, SEARCH, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "UNAUTHENTICATED", "MLflow's format on the MLflow surface");
    let (status, body) = status_with(&app, "/api/v1/audit-events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthenticated", "the native format on the native surface");
    let (status, _) = status_with(&app, "/api/2.0/mlflow-artifacts/artifacts?path=0", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the artifact proxy is covered too");
    let (status, _) = status_with(&app, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK, "operator probes stay open");

    let (admin, token) =
        identity.bootstrap(&system, "admin").await.unwrap().expect("first bootstrap");
    assert!(identity.bootstrap(&system, "other").await.unwrap().is_none(), "bootstrap runs once");
    assert_eq!(admin.site_role, SiteRole::Admin);
    let bearer = format!("Bearer {token}");
    assert_eq!(status_with(&app, SEARCH, Some(&bearer)).await.0, StatusCode::OK);
    assert_eq!(status_with(&app, SEARCH, Some(&basic("admin", &token))).await.0, StatusCode::OK);
    assert_eq!(
        status_with(&app, SEARCH, Some(&basic("someone", &token))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&app, SEARCH, Some("Bearer cairn_nope")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_with(&app, SEARCH, Some("Digest abc")).await.0, StatusCode::UNAUTHORIZED);
    let (_, headers_check) = {
        let request = Request::get(SEARCH).body(Body::empty()).unwrap();
        let response = tower::ServiceExt::oneshot(app.app.router(), request).await.unwrap();
        (response.status(), response.headers().get(header::WWW_AUTHENTICATE).cloned())
    };
    assert!(headers_check.is_some(), "401 answers say how to authenticate");

    let alice = UserSpec {
        username: "alice".into(),
        site_role: SiteRole::Member,
        service_account: false,
        password: Some("correct horse battery".into()),
        display_name: None,
        email: None,
    };
    identity.create_user(&system, &alice).await.unwrap();
    app.app
        .services
        .projects
        .set_member(&system, "default", "alice", cairn_domain::identity::ProjectRole::Viewer)
        .await
        .unwrap();
    assert_eq!(
        status_with(&app, SEARCH, Some(&basic("alice", "correct horse battery"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status_with(&app, SEARCH, Some(&basic("alice", "correct horse battery"))).await.0,
        StatusCode::OK,
        "cached"
    );
    assert_eq!(
        status_with(&app, SEARCH, Some(&basic("alice", "wrong"))).await.0,
        StatusCode::UNAUTHORIZED
    );

    let (expired, expired_secret) =
        identity.create_token(&system, "alice", "expired", Some(0)).await.unwrap();
    assert!(expired.expires_at.is_some());
    assert_eq!(
        status_with(&app, SEARCH, Some(&format!("Bearer {expired_secret}"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (alice_token, alice_secret) =
        identity.create_token(&system, "alice", "laptop", Some(30)).await.unwrap();
    let alice_bearer = format!("Bearer {alice_secret}");
    assert_eq!(status_with(&app, SEARCH, Some(&alice_bearer)).await.0, StatusCode::OK);
    identity.revoke_token(&system, alice_token.id, Some("alice")).await.unwrap();
    assert_eq!(
        status_with(&app, SEARCH, Some(&alice_bearer)).await.0,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    let listed = identity.list_tokens(&system, "alice").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|t| !t.hint.contains(&alice_secret[10..])),
        "listings never show secrets"
    );

    let (_, second_secret) = identity.create_token(&system, "alice", "ci", None).await.unwrap();
    identity.set_user_active(&system, "alice", false).await.unwrap();
    assert_eq!(
        status_with(&app, SEARCH, Some(&format!("Bearer {second_secret}"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&app, SEARCH, Some(&basic("alice", "correct horse battery"))).await.0,
        StatusCode::UNAUTHORIZED,
        "deactivation clears the password cache"
    );

    let request = Request::post("/api/2.0/mlflow/experiments/create")
        .header(header::AUTHORIZATION, &bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": \"by-admin\"}"))
        .unwrap();
    assert_eq!(app.request(request).await.0, StatusCode::OK);
    let records = app.app.store.audit_records(0, i64::MIN, 100).await.unwrap();
    let created = records.iter().find(|r| r.action == "experiment.create").expect("audited");
    assert_eq!(created.actor, "admin", "the authenticated user is the audit actor");
    assert!(
        records.iter().all(|r| !r.details.contains(&token)),
        "secrets never reach the audit log"
    );
}

#[tokio::test]
async fn authentication_on_sqlite() {
    authentication(Backend::Sqlite).await;
}

#[tokio::test]
async fn authentication_on_postgres() {
    authentication(Backend::Postgres).await;
}
