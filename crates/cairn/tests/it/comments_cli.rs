//! Comments, search and the new administration routes through the `cairn` CLI and the native
//! API against a running server: `cairn comment add|list|delete` (mentions resolved, viewers
//! refused, authors delete), `cairn search` inside the caller's projects, `GET /teams`,
//! `PUT /users/{username}/site-role`, `GET /audit-chain`, and `cairn admin user set-role` /
//! `cairn admin team list` straight against the database.

use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::rbac::fixture;
use crate::support::{Backend, TestApp};

const CAIRN: &str = env!("CARGO_BIN_EXE_cairn");

/// Runs `cairn args…` as the holder of `token` against `server`.
fn cairn(server: &str, token: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(CAIRN)
        .args(args)
        .env("CAIRN_SERVER", server)
        .env("CAIRN_TOKEN", token)
        .env_remove("CAIRN_PROJECT")
        .stdin(Stdio::null())
        .output()
        .expect("run cairn");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_and_search_through_the_cli_and_api() {
    let Some(app) = TestApp::with_auth(Backend::Sqlite).await else { return };
    let f = fixture(&app).await;
    let token = |who: &str| f.tokens.iter().find(|(name, _)| *name == who).unwrap().1.clone();
    let server = app.spawn().await;
    let url = server.url();
    let run_id = f.run_id.clone();
    let (contributor, viewer, outsider) =
        (token("contributor"), token("viewer"), token("outsider"));
    let database_url = app.database_url.clone();
    let data_dir = app.data_dir.display().to_string();
    let cli_url = url.clone();
    let scenario = tokio::task::spawn_blocking(move || {
        let url = cli_url.as_str();
        let (ok, stdout, stderr) = cairn(
            url,
            &contributor,
            &["comment", "add", "ready for review @viewer", "--run", &run_id, "--project", "churn"],
        );
        assert!(ok, "{stderr}");
        assert!(stdout.contains(&format!("on run:{run_id}")), "{stdout}");
        assert!(stdout.contains("mentions: viewer"), "{stdout}");
        let id = stdout.split_whitespace().nth(1).unwrap().to_string();
        let (ok, _, stderr) =
            cairn(url, &viewer, &["comment", "add", "sneaky", "--project", "churn"]);
        assert!(!ok && stderr.contains("403"), "viewers do not comment: {stderr}");
        let (ok, stdout, stderr) =
            cairn(url, &viewer, &["comment", "list", "--project", "churn", "--run", &run_id]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("contributor on run:") && stdout.contains("ready for review"));
        let (_, stdout, _) =
            cairn(url, &viewer, &["comment", "list", "--project", "churn", "--project-only"]);
        assert!(stdout.trim().is_empty(), "none on the project itself: {stdout}");
        let (ok, _, stderr) = cairn(url, &outsider, &["comment", "list", "--project", "churn"]);
        assert!(!ok && stderr.contains("403"), "{stderr}");

        let (ok, stdout, stderr) = cairn(url, &viewer, &["search", "churn"]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("project") && stdout.contains("churn-exp"), "{stdout}");
        let (_, stdout, _) = cairn(url, &viewer, &["search", "ready"]);
        assert!(stdout.contains("comment") && stdout.contains("ready for review"), "{stdout}");
        let (_, stdout, _) = cairn(url, &outsider, &["search", "churn"]);
        assert_eq!(stdout.trim(), "nothing found", "another project's: {stdout}");

        let (ok, _, stderr) =
            cairn(url, &viewer, &["comment", "delete", &id, "--project", "churn"]);
        assert!(!ok && stderr.contains("403"), "{stderr}");
        let (ok, stdout, stderr) =
            cairn(url, &contributor, &["comment", "delete", &id, "--project", "churn"]);
        assert!(ok && stdout.contains("deleted"), "{stderr}");

        let set_role =
            ["admin", "user", "set-role", "viewer", "governance-reviewer", "--database-url"];
        let (ok, stdout, stderr) = cairn(
            url,
            "",
            &[&set_role[..], &[database_url.as_str(), "--data-dir", &data_dir]].concat(),
        );
        assert!(ok, "{stderr}");
        assert!(stdout.contains("governance-reviewer"), "{stdout}");
        let (ok, stdout, stderr) = cairn(
            url,
            "",
            &["admin", "team", "list", "--database-url", &database_url, "--data-dir", &data_dir],
        );
        assert!(ok && stdout.starts_with("TEAM"), "{stdout}{stderr}");
    });
    scenario.await.expect("the CLI scenario");

    // The native routes behind the administration pages.
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, who: &str, body: Option<Value>| {
        let mut request =
            http.request(method, format!("{url}/api/v1{path}")).bearer_auth(token(who));
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, teams) = call(reqwest::Method::GET, "/teams", "admin", None).await;
    assert_eq!(status, StatusCode::OK, "{teams}");
    assert!(teams.as_array().is_some());
    let (status, _) = call(reqwest::Method::GET, "/teams", "owner", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = json!({"site_role": "member"});
    let (status, user) =
        call(reqwest::Method::PUT, "/users/viewer/site-role", "admin", Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["site_role"], "member");
    let (status, _) =
        call(reqwest::Method::PUT, "/users/admin/site-role", "admin", Some(body)).await;
    assert_eq!(status, StatusCode::CONFLICT, "not one's own role");
    let (status, chain) = call(reqwest::Method::GET, "/audit-chain", "admin", None).await;
    assert_eq!(status, StatusCode::OK, "{chain}");
    assert_eq!(chain["intact"], true);
    assert!(chain["verified"].as_i64().unwrap() > 10, "{chain}");
    let (status, _) = call(reqwest::Method::GET, "/audit-chain", "owner", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, found) =
        call(reqwest::Method::GET, "/search?q=churn&limit=1", "viewer", None).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<&str> =
        found["hits"].as_array().unwrap().iter().map(|hit| hit["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["project", "experiment"], "one per kind: {found}");
    server.shutdown().await;
}
