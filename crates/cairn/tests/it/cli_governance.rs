//! The governance commands of the `cairn` binary against a running server: an owner writes a
//! policy, a contributor promotes and fills the model card, a reviewer approves, the deploy gate
//! flips from refused (exit status 3) to allowed, the history shows the move, and a bundle is
//! exported, verified, and caught when a byte changes.

use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cairn_domain::audit::RequestContext;
use cairn_domain::identity::{ProjectRole, SiteRole};
use cairn_service::UserSpec;
use serde_json::json;

use crate::support::{Backend, TestApp};

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// Runs the binary as the holder of `token`; returns (exit code, stdout, stderr).
pub(crate) fn cairn(server: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(CAIRN)
        .args(args)
        .env("CAIRN_SERVER", server)
        .env("CAIRN_TOKEN", token)
        .env_remove("CAIRN_PROJECT")
        .stdin(Stdio::null())
        .output()
        .expect("run cairn");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn user(app: &TestApp, name: &str, role: SiteRole, member: Option<ProjectRole>) -> String {
    let system = RequestContext::system();
    let services = &app.app.services;
    let spec = UserSpec {
        username: name.into(),
        site_role: role,
        service_account: true,
        password: None,
        display_name: None,
        email: None,
    };
    services.identity.create_user(&system, &spec).await.unwrap();
    if let Some(member) = member {
        services.projects.set_member(&system, "risk", name, member).await.unwrap();
    }
    services.identity.create_token(&system, name, "cli", None).await.unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_through_the_cli() {
    let app = TestApp::with_auth(Backend::Sqlite).await.expect("app");
    let system = RequestContext::system();
    app.app.services.identity.bootstrap(&system, "admin").await.unwrap();
    app.app.services.projects.create(&system, "risk", None, None).await.unwrap();
    let alice = user(&app, "alice", SiteRole::Member, Some(ProjectRole::Contributor)).await;
    let olivia = user(&app, "olivia", SiteRole::Member, Some(ProjectRole::Owner)).await;
    let rita = user(&app, "rita", SiteRole::GovernanceReviewer, None).await;
    for (path, body) in [
        ("registered-models/create", json!({"name": "scorer"})),
        ("model-versions/create", json!({"name": "scorer", "source": "file:///models/scorer"})),
    ] {
        let request = Request::post(format!("/p/risk/api/2.0/mlflow/{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        assert_eq!(app.request(request).await.0, StatusCode::OK);
    }
    let server = app.spawn().await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("scorer.tar.gz");
    let bundle_path = bundle.to_str().unwrap().to_string();

    let outcome = tokio::task::spawn_blocking(move || {
        let p = ["--project", "risk"];
        let with = |args: &[&str]| -> Vec<String> {
            args.iter().chain(p.iter()).map(|arg| arg.to_string()).collect()
        };
        let run = |token: &str, args: &[&str]| {
            let args = with(args);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cairn(&url, token, &args)
        };

        let (code, _, stderr) =
            run(&alice, &["policy", "create", "prod-gate", "--target", "stage:Production"]);
        assert_eq!(code, 1, "contributors do not write policies");
        assert!(stderr.contains("403"), "{stderr}");
        let (code, stdout, stderr) = run(
            &olivia,
            &[
                "policy",
                "create",
                "prod-gate",
                "--target",
                "stage:Production",
                "--approvals",
                "1",
                "--require-model-card",
                "--environment",
                "production",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("governing stage:Production"), "{stdout}");
        let (_, stdout, _) = run(&alice, &["policy", "list"]);
        assert!(stdout.contains("prod-gate") && stdout.contains("risk"), "{stdout}");

        let (code, stdout, stderr) = run(
            &alice,
            &["model", "promote", "scorer", "1", "--stage", "Production", "--comment", "ready"],
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("governed: promotion awaits approval"), "{stdout}");
        assert!(stdout.contains("[FAIL] model card filled"), "{stdout}");
        let request_id = stdout
            .lines()
            .find_map(|line| line.strip_prefix("request "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_string();

        let (code, stdout, _) =
            run(&alice, &["model", "gate", "scorer", "1", "--environment", "production"]);
        assert_eq!(code, 3, "refused deployments exit with 3: {stdout}");
        assert!(stdout.contains(&format!("request {request_id} is pending")), "{stdout}");

        let (code, stdout, stderr) = run(
            &alice,
            &[
                "model",
                "card",
                "set",
                "scorer",
                "1",
                "--intended-use",
                "loan default scoring",
                "--limitations",
                "retail loans only",
                "--owner",
                "risk-team",
                "--dataset",
                "loans@3",
                "--metric",
                "auc=0.91",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("revision 1") && stdout.contains("(filled)"), "{stdout}");
        let (_, stdout, _) = run(&alice, &["model", "card", "show", "scorer", "1"]);
        assert!(stdout.contains("\"version\": \"3\"") && stdout.contains("0.91"), "{stdout}");

        let (code, stdout, stderr) =
            cairn(&url, &rita, &["approvals", "list", "--all-projects", "--state", "pending"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("scorer") && stdout.contains("stage:Production"), "{stdout}");
        let (code, _, stderr) = run(&alice, &["approvals", "approve", &request_id]);
        assert_eq!(code, 1);
        assert!(stderr.contains("governance-reviewer"), "{stderr}");
        let (code, stdout, stderr) = cairn(
            &url,
            &rita,
            &["approvals", "approve", &request_id, "--comment", "card complete"],
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("approved") && stdout.contains("card complete"), "{stdout}");

        let (_, stdout, _) = run(&alice, &["model", "history", "scorer"]);
        let moved = stdout.lines().find(|line| line.contains("Production")).unwrap_or_default();
        assert!(
            moved.contains("rita") && moved.contains(&request_id) && moved.contains("None"),
            "{stdout}"
        );
        let (code, stdout, _) =
            run(&alice, &["model", "gate", "scorer", "1", "--environment", "production"]);
        assert_eq!(code, 0, "{stdout}");
        assert!(stdout.contains("allowed"), "{stdout}");

        let (code, stdout, stderr) =
            run(&alice, &["model", "bundle", "scorer", "1", "--output", &bundle_path]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("7 files"), "{stdout}");
        let (code, stdout, stderr) =
            cairn(&url, &alice, &["model", "bundle", "verify", &bundle_path]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("intact") && stdout.contains("scorer version 1"), "{stdout}");
        let mut bytes = std::fs::read(&bundle_path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(&bundle_path, bytes).unwrap();
        let (code, _, stderr) = cairn(&url, &alice, &["model", "bundle", "verify", &bundle_path]);
        assert_eq!(code, 1, "a changed byte is caught");
        assert!(stderr.contains("BROKEN"), "{stderr}");
    })
    .await;
    server.shutdown().await;
    outcome.expect("cli scenario");
}
