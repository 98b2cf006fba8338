//! The web UI's registry, governance, audit, search, comment, administration, token,
//! workspace and job pages over HTTP (reqwest with a cookie jar against a real socket): each
//! renders for the roles that may see it and answers the 403 page to the others, forms refuse
//! a missing CSRF token, viewers get no edit controls and their forged posts are refused,
//! comments keep their `@mentions` and render escaped, search stays inside the visitor's
//! projects, the audit log filters and verifies, and a token's secret is shown once.

use cairn_domain::audit::RequestContext;
use cairn_domain::comments::CommentTarget;
use cairn_domain::compute::ExecutorKind;
use cairn_domain::governance::{ModelCard, PromotionTarget};
use cairn_domain::identity::SiteRole;
use cairn_domain::workspaces::WorkspaceRequest;
use cairn_service::{NewRun, UserSpec};
use reqwest::StatusCode;

use crate::rbac::Fixture;
use crate::support::{RunningServer, TestApp};
use crate::ui::{Browser, PASSWORD, app, location, token_of};

/// `project` as the request's scope, acting as `system`.
fn in_project(project: &str) -> RequestContext {
    RequestContext { project: Some(project.to_string()), ..RequestContext::system() }
}

/// The number of forms that post (the header's logout form is one).
fn post_forms(page: &str) -> usize {
    page.matches("method=\"post\"").count()
}

/// A governance reviewer `rev` (logging in with a token), a registered model `churn-model`
/// whose version 1 (of the fixture's run) has a model card, a policy asking one approval for
/// the alias `champion`, and the pending request promoting version 1 to it. Returns the
/// reviewer's token and the request's id.
async fn governed(app: &TestApp, f: &Fixture) -> (String, i64) {
    let services = &app.app.services;
    let system = RequestContext::system();
    let spec = UserSpec {
        username: "rev".into(),
        site_role: SiteRole::GovernanceReviewer,
        service_account: true,
        password: None,
        display_name: None,
        email: None,
    };
    services.identity.create_user(&system, &spec).await.unwrap();
    let (_, token) = services.identity.create_token(&system, "rev", "ui", None).await.unwrap();
    let churn = in_project("churn");
    services
        .registry
        .create_model(&churn, "churn-model", Some("<i>scores churn</i>"), &[])
        .await
        .unwrap();
    let version = crate::support::version_from_run("churn-model", &f.run_id);
    services.registry.create_version(&churn, version).await.unwrap();
    let card = ModelCard {
        intended_use: "Ranking <b>customers</b> by churn risk.".into(),
        limitations: "One market only.".into(),
        owner: "risk-team".into(),
        ..ModelCard::default()
    };
    services.governance.save_card(&churn, "churn-model", 1, &card).await.unwrap();
    let policy = crate::support::champion_gate();
    services.governance.create_policy(&churn, policy).await.unwrap();
    let target = PromotionTarget::Alias("champion".into());
    let promotion = services
        .governance
        .promote(&churn, "churn-model", 1, &target, false, Some("beats the baseline"))
        .await
        .unwrap();
    assert!(!promotion.applied);
    (token, promotion.request.expect("a request").id)
}

async fn logged_in(server: &RunningServer, f: &Fixture, who: &str) -> Browser {
    let browser = Browser::new(server);
    let (status, _, page) = browser.login(who, &token_of(f, who)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{who} logs in: {page}");
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_registry_and_approvals_for_each_role() {
    let Some((app, f)) = app(crate::support::Backend::Sqlite).await else { return };
    let (rev_token, request_id) = governed(&app, &f).await;
    let server = app.spawn().await;
    let model_page = "/projects/churn/models/churn-model";
    let version_page = format!("{model_page}/versions/1");
    let approval_page = format!("/approvals/{request_id}");

    // A viewer reads the registry: list, model, version with its rendered card, the bundle.
    let viewer = logged_in(&server, &f, "viewer").await;
    let (status, _, page) = viewer.get("/models").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("href=\"{model_page}\"")), "{page}");
    assert!(page.contains("&#60;i&#62;scores churn&#60;/i&#62;"), "descriptions are text");
    let (status, _, page) = viewer.get(model_page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Version 1") && !page.contains("id=\"history\""), "{page}");
    let (status, _, page) = viewer.get(&version_page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Ranking &#60;b&#62;customers&#60;/b&#62; by churn risk."), "{page}");
    assert!(page.contains("Missing: training_data"), "the card says what it lacks");
    assert!(page.contains(&format!("href=\"{approval_page}\"")), "its requests are listed");
    assert!(page.contains("id=\"bundle-link\""));
    assert_eq!(post_forms(&page), 1, "no promote or comment form for a viewer:\n{page}");
    let bundle =
        viewer.http.get(format!("{}{version_page}/bundle", viewer.base)).send().await.unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
    let disposition = bundle.headers()["content-disposition"].to_str().unwrap().to_string();
    assert_eq!(disposition, "attachment; filename=\"churn-model-v1-bundle.tar.gz\"");
    let bytes = bundle.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip archive");
    assert!(cairn_service::verify_bundle(&bytes).intact());

    // The approvals list: a viewer sees the request without decision controls.
    let (status, _, page) = viewer.get("/approvals").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("data-request-id=\"{request_id}\"")), "{page}");
    assert!(!page.contains("Approve"), "no decisions for a viewer");
    let (status, _, page) = viewer.get(&approval_page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(post_forms(&page), 1, "{page}");
    let csrf = viewer.csrf().await;
    let (status, _, page) =
        viewer.post(&format!("{approval_page}/approve"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a forged approval: {page}");
    assert!(page.contains("governance-reviewer"), "{page}");

    // A contributor gets the promote and comment forms.
    let contributor = logged_in(&server, &f, "contributor").await;
    let (_, _, page) = contributor.get(&version_page).await;
    assert!(page.contains("id=\"promote-form\"") && page.contains("id=\"comment-form\""));

    // Someone outside the project gets 403 pages and an empty list.
    let outsider = logged_in(&server, &f, "outsider").await;
    for path in [model_page, version_page.as_str(), approval_page.as_str()] {
        let (status, _, page) = outsider.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        assert!(page.contains("Not allowed"), "{page}");
    }
    let (_, _, page) = outsider.get("/models").await;
    assert!(!page.contains("churn-model"), "{page}");
    let (_, _, page) = outsider.get("/approvals").await;
    assert!(!page.contains("data-request-id"), "{page}");

    // The reviewer decides: the CSRF token is required, then the alias moves.
    let reviewer = Browser::new(&server);
    let (status, _, _) = reviewer.login("rev", &rev_token).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = reviewer.get("/approvals").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("action=\"{approval_page}/approve\"")), "{page}");
    let (status, _, page) = reviewer.post(&format!("{approval_page}/approve"), &[], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no token: {page}");
    let system = RequestContext::system();
    let request = app.app.services.governance.get_request(&system, request_id).await.unwrap();
    assert_eq!(request.state.as_str(), "pending");
    let csrf = reviewer.csrf().await;
    let (status, _, page) =
        reviewer.post(&format!("{approval_page}/reject"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a rejection needs a comment: {page}");
    let (status, headers, page) = reviewer
        .post(&format!("{approval_page}/approve"), &[("csrf", &csrf), ("comment", "ok")], &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), approval_page);
    let (_, _, page) = reviewer.get(&approval_page).await;
    assert!(page.contains("id=\"request-state\">approved<"), "{page}");
    assert!(page.contains("<strong>rev</strong> approve"), "{page}");
    let (_, _, page) = viewer.get(model_page).await;
    assert!(page.contains("<strong>@champion</strong>"), "the alias moved: {page}");
    assert!(page.contains(&format!("href=\"/approvals/{request_id}\">#{request_id}<")), "history");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_comments_keep_mentions_and_render_escaped() {
    let Some((app, f)) = app(crate::support::Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let run_page = format!("/projects/churn/runs/{}", f.run_id);
    let target = format!("run:{}", f.run_id);
    let contributor = logged_in(&server, &f, "contributor").await;
    let csrf = contributor.csrf().await;
    let body = "<script>alert(1)</script> ping @ada and @nobody";

    let (status, _, page) = contributor
        .post("/projects/churn/comments", &[("target", &target), ("body", body)], &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token: {page}");
    let (status, headers, page) = contributor
        .post(
            "/projects/churn/comments",
            &[("csrf", &csrf), ("target", &target), ("body", body)],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let system = RequestContext::system();
    let on_run = CommentTarget::Run(f.run_id.clone());
    let stored =
        app.app.services.comments.list(&system, "churn", Some(&on_run), 0, 10).await.unwrap();
    assert_eq!(stored.len(), 1, "one comment despite the refused post");
    assert_eq!(stored[0].mentions, ["ada"], "known users only");
    assert_eq!(stored[0].author, "contributor");
    let id = stored[0].id;
    assert_eq!(location(&headers), format!("{run_page}#comment-{id}"));

    let (status, _, page) = contributor.get(&run_page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62; ping "), "{page}");
    assert!(page.contains("<strong class=\"mention\">@ada</strong>"), "{page}");
    assert!(page.contains(" and @nobody"), "unknown names stay text");
    assert!(page.contains(&format!("aria-label=\"Delete comment {id} by contributor\"")));

    // ada (a contributor who did not write it) sees it on her home page, cannot delete it.
    let ada = Browser::new(&server);
    ada.login("ada", PASSWORD).await;
    let (_, _, page) = ada.get("/").await;
    assert!(page.contains("Mentions of me"), "{page}");
    assert!(page.contains(&format!("href=\"{run_page}#comment-{id}\"")), "{page}");
    let (_, _, page) = ada.get(&run_page).await;
    assert!(!page.contains(&format!("Delete comment {id}")), "not hers");
    let ada_csrf = ada.csrf().await;
    let delete = format!("/projects/churn/comments/{id}/delete");
    let (status, _, page) =
        ada.post(&delete, &[("csrf", &ada_csrf), ("target", &target)], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");

    // A viewer has no form and a forged comment is refused.
    let viewer = logged_in(&server, &f, "viewer").await;
    let (_, _, page) = viewer.get(&run_page).await;
    assert!(!page.contains("comment-form") && !page.contains("Delete comment"), "{page}");
    let viewer_csrf = viewer.csrf().await;
    let (status, _, _) = viewer
        .post(
            "/projects/churn/comments",
            &[("csrf", &viewer_csrf), ("target", "project"), ("body", "sneaky")],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Comments on the project itself show on its page; the owner may delete anyone's.
    let (status, _, _) = contributor
        .post(
            "/projects/churn/comments",
            &[("csrf", &csrf), ("target", "project"), ("body", "kick-off notes")],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let owner = logged_in(&server, &f, "owner").await;
    let (_, _, page) = owner.get("/projects/churn").await;
    assert!(page.contains("kick-off notes") && page.contains("Delete comment"), "{page}");
    let owner_csrf = owner.csrf().await;
    let (status, headers, _) =
        owner.post(&delete, &[("csrf", &owner_csrf), ("target", &target)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), format!("{run_page}#comments"));
    let left = app.app.services.comments.list(&system, "churn", Some(&on_run), 0, 10).await;
    assert!(left.unwrap().is_empty());
    let (status, _, _) = contributor
        .post(
            "/projects/churn/comments",
            &[("csrf", &csrf), ("target", "run:0123456789abcdef0123456789abcdef"), ("body", "x")],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a run of no project");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_search_finds_runs_and_models_inside_the_visitors_projects() {
    let Some((app, f)) = app(crate::support::Backend::Sqlite).await else { return };
    let services = &app.app.services;
    let system = RequestContext::system();
    let experiment = cairn_domain::ids::ExperimentId(f.experiment_id.parse().unwrap());
    let run = services
        .tracking
        .create_run(
            &system,
            NewRun {
                experiment_id: experiment,
                user_id: "admin".into(),
                run_name: Some("resnet-alpha".into()),
                ..NewRun::default()
            },
        )
        .await
        .unwrap();
    services.registry.create_model(&in_project("churn"), "resnet-model", None, &[]).await.unwrap();
    let other = in_project("other");
    services.tracking.create_experiment(&other, "resnet-elsewhere", None, &[]).await.unwrap();
    let server = app.spawn().await;

    let viewer = logged_in(&server, &f, "viewer").await;
    let (status, _, page) = viewer.get("/search?q=resnet").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let run_href = format!("href=\"/projects/churn/runs/{}\"", run.info.run_id);
    assert!(page.contains(&run_href), "the run by name: {page}");
    assert!(page.contains("href=\"/projects/churn/models/resnet-model\""), "the model: {page}");
    assert!(!page.contains("resnet-elsewhere"), "another project's experiment: {page}");
    assert!(page.contains("value=\"resnet\""), "the header box keeps the term");
    let (_, _, page) = viewer.get(&format!("/search?q={}", run.info.run_id)).await;
    assert!(page.contains(&run_href), "the run by id");

    let outsider = logged_in(&server, &f, "outsider").await;
    let (status, _, page) = outsider.get("/search?q=resnet").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("resnet-elsewhere"), "their own project's: {page}");
    assert!(!page.contains("/projects/churn"), "nothing of churn: {page}");
    let (_, _, page) = outsider.get("/search?q=churn").await;
    assert!(!page.contains("/projects/churn"), "{page}");
    assert!(page.contains("Nothing found"), "{page}");
    let (status, _, page) = outsider.get("/search?q=").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_audit_is_for_admins_filters_pages_and_verifies() {
    let Some((app, f)) = app(crate::support::Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let ada = Browser::new(&server);
    ada.login("ada", PASSWORD).await;
    let (status, _, page) = ada.get("/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!page.contains("href=\"/audit\""), "no Audit entry in a member's navigation");

    let admin = logged_in(&server, &f, "admin").await;
    let (status, _, page) = admin.get("/audit").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("href=\"/audit\" aria-current=\"page\""), "{page}");
    let (_, _, page) = admin.get("/audit?actor=ada&action=session.").await;
    assert!(page.contains("<code>session.login</code>"), "{page}");
    assert!(!page.contains("<code>project.create</code>"), "other actions filtered out");
    assert!(!page.contains("<td>admin</td>"), "other actors filtered out");
    let (_, _, page) = admin.get("/audit?action=project.create&target=project%3Achurn").await;
    assert_eq!(page.matches("data-seq=").count(), 1, "{page}");
    let (_, _, page) = admin.get("/audit?until=2000-01-01").await;
    assert!(page.contains("No record matches."), "{page}");
    let (_, _, page) = admin.get("/audit?since=2000-01-01T00%3A00&action=user.create").await;
    assert!(page.matches("data-seq=").count() >= 5, "{page}");
    let (status, _, page) = admin.get("/audit?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"audit-error\""), "{page}");

    // Newest first, in stable pages.
    let (_, _, page) = admin.get("/audit?per=3").await;
    let seqs = |page: &str| -> Vec<i64> {
        page.split("data-seq=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let first = seqs(&page);
    assert_eq!(first.len(), 3);
    assert!(first[0] > first[1] && first[1] > first[2], "{first:?}");
    let next = page.split("rel=\"next\"").next().unwrap();
    let href =
        next.rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&#38;", "&");
    let (status, _, page) = admin.get(&href).await;
    assert_eq!(status, StatusCode::OK, "{href}: {page}");
    let second = seqs(&page);
    assert_eq!(second.first().copied(), Some(first[2] - 1), "{second:?}");

    let (_, _, page) = admin.get("/audit?verify=1").await;
    assert!(page.contains("id=\"chain-status\""), "{page}");
    assert!(page.contains("<strong>Intact:</strong>"), "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_tokens_show_the_secret_once_and_revoked_tokens_stop() {
    let Some((app, _f)) = app(crate::support::Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let ada = Browser::new(&server);
    ada.login("ada", PASSWORD).await;
    let (status, _, page) = ada.get("/tokens").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("You have no token."), "{page}");
    let (status, _, _) = ada.post("/tokens", &[("name", "laptop")], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let csrf = ada.csrf().await;
    let (status, _, page) = ada.post("/tokens", &[("csrf", &csrf), ("name", "laptop")], &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{page}");
    let marker = "id=\"token-secret\" class=\"secret-value\" value=\"";
    let start = page.find(marker).expect("the secret is shown") + marker.len();
    let secret = page[start..].split('"').next().unwrap().to_string();
    assert!(secret.starts_with("cairn_"), "{secret}");
    let id: i64 =
        page.split("data-token-id=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
    let (_, headers, page) = ada.get("/tokens").await;
    assert!(!page.contains(&secret), "shown once only");
    assert!(page.contains("laptop") && page.contains(">active<"), "{page}");
    assert_eq!(headers["cache-control"], "no-store");

    let me = |token: String| {
        let url = format!("{}/api/v1/me", server.url());
        async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(secret.clone()).await, StatusCode::OK, "the new token works");
    let (status, headers, _) =
        ada.post(&format!("/tokens/{id}/revoke"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/tokens");
    assert_eq!(me(secret).await, StatusCode::UNAUTHORIZED, "a revoked token stops working");
    let (_, _, page) = ada.get("/tokens").await;
    assert!(page.contains(">revoked<") && !page.contains("Revoke token laptop"), "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_administration_is_for_admins() {
    let Some((app, f)) = app(crate::support::Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let contributor = logged_in(&server, &f, "contributor").await;
    for path in ["/admin/users", "/admin/teams"] {
        let (status, _, page) = contributor.get(path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        assert!(!page.contains("href=\"/admin/users\""), "no Admin entry for members");
    }
    let csrf = contributor.csrf().await;
    let (status, _, _) = contributor
        .post("/admin/users", &[("csrf", &csrf), ("username", "mallory"), ("role", "admin")], &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = logged_in(&server, &f, "admin").await;
    let (status, _, page) = admin.get("/admin/users").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-user=\"ada\"") && page.contains("(you)"), "{page}");
    let (status, _, _) =
        admin.post("/admin/users", &[("username", "bo"), ("role", "member")], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let csrf = admin.csrf().await;
    let (status, headers, page) = admin
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "bo"),
                ("role", "member"),
                ("password", "a good long password"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/admin/users");
    let (status, _, _) = admin
        .post("/admin/users/bo/role", &[("csrf", &csrf), ("role", "governance-reviewer")], &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let identity = &app.app.services.identity;
    assert_eq!(identity.get_user("bo").await.unwrap().site_role, SiteRole::GovernanceReviewer);
    let (status, _, page) =
        admin.post("/admin/users/admin/role", &[("csrf", &csrf), ("role", "member")], &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not one's own role: {page}");

    // Deactivating ada ends her session for good; reactivated, she logs in again (the old
    // session is not revived).
    let ada = Browser::new(&server);
    ada.login("ada", PASSWORD).await;
    let (status, _, _) = admin.post("/admin/users/ada/deactivate", &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = ada.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "her session ended");
    let (_, _, page) = admin.get("/admin/users").await;
    assert!(page.contains("Reactivate ada"), "{page}");
    let (status, _, _) = admin.post("/admin/users/ada/activate", &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = ada.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the old session stays ended");
    ada.login("ada", PASSWORD).await;
    let (status, _, page) = ada.get("/").await;
    assert_eq!(status, StatusCode::OK, "{page}");

    // Teams: create, add and remove members.
    let (status, headers, _) =
        admin.post("/admin/teams", &[("csrf", &csrf), ("name", "vision")], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/admin/teams#team-vision");
    let (status, _, _) = admin
        .post("/admin/teams/vision/members", &[("csrf", &csrf), ("username", "viewer")], &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = admin.get("/admin/teams").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("aria-label=\"Remove viewer from vision\""), "{page}");
    let (status, _, _) = admin
        .post("/admin/teams/vision/members/remove", &[("csrf", &csrf), ("username", "viewer")], &[])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = admin.get("/admin/teams").await;
    assert!(!page.contains("Remove viewer from vision"), "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_workspaces_and_jobs_on_the_project_page() {
    let Some((app, f)) = app(crate::support::Backend::Sqlite).await else { return };
    let store = &app.app.store;
    let contributor = app.app.services.identity.get_user("contributor").await.unwrap();
    let churn = store.get_project("churn").await.unwrap();
    let request = WorkspaceRequest {
        environment: "py".into(),
        environment_revision: None,
        tier: "small".into(),
        shared: false,
        idle_timeout_s: None,
        datasets: vec![],
    };
    let launch = cairn_store::WorkspaceLaunch {
        request: &request,
        environment_revision: 1,
        executor: ExecutorKind::Local,
        snapshot: None,
        replica: "another-replica",
        lease_until: i64::MAX / 2,
    };
    let acting = RequestContext::user(contributor.principal(), None);
    let record =
        store.create_workspace(&acting, churn.id, Some(contributor.id), &launch).await.unwrap();
    let id = record.workspace.id;
    let running = store.set_workspace_running(&acting, id, "another-replica", "exec-1", 9).await;
    assert!(running.unwrap());
    let server = app.spawn().await;

    // Its owner gets the Open link (the proxy's URL) and the save and stop forms.
    let owner_of_it = logged_in(&server, &f, "contributor").await;
    let (status, _, page) = owner_of_it.get("/projects/churn").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!("data-workspace-id=\"{id}\"")), "{page}");
    assert!(page.contains(&format!("href=\"/workspaces/{id}/lab\"")), "{page}");
    assert!(page.contains(&format!("aria-label=\"Stop workspace {id}\"")), "{page}");
    assert!(page.contains("Start a workspace"), "{page}");
    assert!(page.contains("needs an approved environment"), "no environment yet: {page}");

    // A viewer sees it listed, without the link or any form; the server refuses a forged stop.
    let viewer = logged_in(&server, &f, "viewer").await;
    let (_, _, page) = viewer.get("/projects/churn").await;
    assert!(page.contains(&format!("data-workspace-id=\"{id}\"")), "{page}");
    assert!(!page.contains("/lab\"") && !page.contains("Start a workspace"), "{page}");
    assert_eq!(post_forms(&page), 1, "{page}");
    let csrf = viewer.csrf().await;
    let stop = format!("/projects/churn/workspaces/{id}/stop");
    let (status, _, _) = viewer.post(&stop, &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The owner stops it: the request is recorded for the replica running it.
    let csrf = owner_of_it.csrf().await;
    let (status, _, _) = owner_of_it.post(&stop, &[], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, headers, page) = owner_of_it.post(&stop, &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/projects/churn#workspaces");
    let after = store.get_workspace(id).await.unwrap();
    assert_eq!(after.workspace.stop_requested_by.as_deref(), Some("contributor"));
    let (status, _, page) = owner_of_it
        .post(
            "/projects/churn/workspaces",
            &[("csrf", &csrf), ("environment", "nope"), ("tier", "nope")],
            &[],
        )
        .await;
    assert!(status.is_client_error(), "{status}: {page}");
    assert!(page.contains("Request id"), "an error page: {page}");

    // Jobs: readers see the list; others get 403.
    let (status, _, page) = viewer.get("/projects/churn/jobs").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("No job"), "{page}");
    let (status, _, _) = viewer.get("/projects/churn/jobs?state=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let outsider = logged_in(&server, &f, "outsider").await;
    let (status, _, _) = outsider.get("/projects/churn/jobs").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.shutdown().await;
}
