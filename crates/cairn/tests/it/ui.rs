//! The web UI over HTTP, without a browser: a real socket and reqwest with a cookie jar.
//! Logging in with a password and with a token, refusals, logout, CSRF and cross-site refusals,
//! what a viewer sees and may do, HTML escaping, redirects to the login page, error pages,
//! the runs table's pages, sorting and columns, the session cookie on the workspace proxy (and
//! not on the APIs), and the anonymous mode with its banner.

use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{Metric, Param, Tag};
use cairn_domain::identity::{ProjectRole, SiteRole};
use cairn_service::{NewRun, UserSpec};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::rbac::{Fixture, fixture};
use crate::support::{Backend, RunningServer, TestApp};

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A browser-like client: cookies kept, redirects not followed (so tests see them).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The CSRF token a page embeds in its forms.
pub(crate) fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..].split('"').next().expect("token").to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

pub(crate) fn token_of(f: &Fixture, who: &str) -> String {
    f.tokens.iter().find(|(name, _)| *name == who).expect("token").1.clone()
}

/// A UI session against a running server.
pub(crate) struct Browser {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new(server: &RunningServer) -> Self {
        Self { base: server.url(), http: client() }
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, HeaderMap, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("get");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("post");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.text().await.expect("body"))
    }

    /// Logs in through the form; returns the answer to the form post.
    pub(crate) async fn login(
        &self,
        username: &str,
        secret: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let (status, _, page) = self.get("/login").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let csrf = csrf_of(&page);
        self.post("/login", &[("csrf", &csrf), ("username", username), ("secret", secret)], &[])
            .await
    }

    /// The CSRF token of the visitor's session (read from a page).
    pub(crate) async fn csrf(&self) -> String {
        let (_, _, page) = self.get("/projects").await;
        csrf_of(&page)
    }
}

pub(crate) fn location(headers: &HeaderMap) -> String {
    headers.get(LOCATION).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string()
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_string))
        .collect()
}

/// The fixture (admin, owner, contributor, viewer, outsider; project churn with a run) plus
/// `ada`, a contributor of churn who logs in with a password.
pub(crate) async fn app(backend: Backend) -> Option<(TestApp, Fixture)> {
    let app = TestApp::with_auth(backend).await?;
    let f = fixture(&app).await;
    let system = RequestContext::system();
    let spec = UserSpec {
        username: "ada".into(),
        site_role: SiteRole::Member,
        service_account: false,
        password: Some(PASSWORD.into()),
        display_name: None,
        email: None,
    };
    let services = &app.app.services;
    services.identity.create_user(&system, &spec).await.unwrap();
    services.projects.set_member(&system, "churn", "ada", ProjectRole::Contributor).await.unwrap();
    Some((app, f))
}

async fn sessions(backend: Backend) {
    let Some((app, f)) = app(backend).await else { return };
    let server = app.spawn().await;
    let ada = Browser::new(&server);

    let (status, headers, _) = ada.get("/projects/churn").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "pages need a session when auth is on");
    assert_eq!(location(&headers), "/login?next=%2Fprojects%2Fchurn");

    let (status, _, page) = ada.login("ada", "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong user name, password or token"), "{page}");
    let (status, _, _) = ada.login("nobody", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, headers, _) = ada.login("ada", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/");
    let cookie = set_cookies(&headers)
        .into_iter()
        .find(|cookie| cookie.starts_with("cairn_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains("Secure"), "plain http: no Secure flag ({cookie})");
    let secret = cookie["cairn_session=".len()..].split(';').next().unwrap().to_string();

    let (status, _, page) = ada.get("/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Signed in as <strong>ada</strong>"), "{page}");
    assert!(!page.contains("Authentication is disabled"));
    let (status, _, page) = ada.get("/projects/churn").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("churn-exp"));

    // Logging out ends the session on the server, not only in this browser.
    let csrf = ada.csrf().await;
    let (status, headers, _) = ada.post("/logout", &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/login");
    let (status, _, _) = ada.get("/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", server.url()))
        .header("cookie", format!("cairn_session={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER, "a logged-out session is dead");

    // A service account logs in with one of its tokens; a token must match the user name.
    let viewer = Browser::new(&server);
    let (status, _, _) = viewer.login("viewer", &token_of(&f, "viewer")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = viewer.get("/projects/churn").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let impostor = Browser::new(&server);
    let (status, _, _) = impostor.login("owner", &token_of(&f, "viewer")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Behind an https proxy the cookie is Secure.
    let proxied = Browser::new(&server);
    let (_, _, page) = proxied.get("/login").await;
    let owned = [("csrf", csrf_of(&page)), ("username", "ada".into()), ("secret", PASSWORD.into())];
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, headers, _) =
        proxied.post("/login", &pairs, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        set_cookies(&headers)
            .iter()
            .any(|c| c.starts_with("cairn_session=") && c.contains("Secure"))
    );

    // Logins and logouts are in the audit log.
    let query = cairn_store::AuditQuery {
        action: Some("session.".into()),
        limit: 100,
        ..Default::default()
    };
    let (records, _) = app.app.store.search_audit(&query).await.unwrap();
    let actions: Vec<(&str, &str)> =
        records.iter().map(|r| (r.action.as_str(), r.actor.as_str())).collect();
    assert!(actions.contains(&("session.login", "ada")), "{actions:?}");
    assert!(actions.contains(&("session.logout", "ada")), "{actions:?}");
    assert!(actions.contains(&("session.login", "viewer")), "{actions:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_sessions_on_sqlite() {
    sessions(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_sessions_on_postgres() {
    sessions(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_forms_need_the_csrf_token_and_this_origin() {
    let Some((app, f)) = app(Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let admin = Browser::new(&server);
    let (status, _, _) = admin.login("admin", &token_of(&f, "admin")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let csrf = admin.csrf().await;
    let create = |name: &'static str| [("name", name), ("description", "d")];

    let (status, _, page) = admin.post("/projects", &create("no-token"), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "missing token");
    assert!(page.contains("security token"), "{page}");
    let stale = "x".repeat(43);
    let mut wrong: Vec<(&str, &str)> = create("wrong-token").to_vec();
    wrong.push(("csrf", &stale));
    let (status, _, _) = admin.post("/projects", &wrong, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong token");
    let mut good: Vec<(&str, &str)> = create("cross-site").to_vec();
    good.push(("csrf", csrf.as_str()));
    let (status, _, _) = admin.post("/projects", &good, &[("origin", "http://evil.example")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "cross-origin post with a valid token");
    let (status, _, _) = admin.post("/projects", &good, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a browser-marked cross-site post");
    let projects = app.app.services.projects.list(&RequestContext::system()).await.unwrap();
    assert!(projects.iter().all(|p| p.name != "cross-site" && p.name != "no-token"));

    let origin = server.url();
    let mut same: Vec<(&str, &str)> = create("made-here").to_vec();
    same.push(("csrf", csrf.as_str()));
    let (status, headers, page) = admin.post("/projects", &same, &[("origin", &origin)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/projects/made-here");
    let (status, _, page) = admin.get("/projects/made-here").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_viewers_see_no_edit_controls_and_are_refused() {
    let Some((app, f)) = app(Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let run_page = format!("/projects/churn/runs/{}", f.run_id);

    let contributor = Browser::new(&server);
    contributor.login("contributor", &token_of(&f, "contributor")).await;
    let (status, _, page) = contributor.get(&run_page).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("/rename"), "contributors get the edit forms");
    let (_, _, page) = contributor.get("/projects/churn").await;
    assert!(page.contains("Create experiment"));

    let viewer = Browser::new(&server);
    viewer.login("viewer", &token_of(&f, "viewer")).await;
    for path in [run_page.as_str(), "/projects/churn", "/projects/churn/members", "/projects"] {
        let (status, _, page) = viewer.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let post_forms = page.matches("method=\"post\"").count();
        assert_eq!(post_forms, 1, "{path}: only the logout form for a viewer:\n{page}");
        for control in ["/rename", "Create experiment", "Create project", ">Remove<", "Set tag"] {
            assert!(!page.contains(control), "{path} shows {control} to a viewer");
        }
    }
    // The server refuses a viewer's forged edits anyway.
    let csrf = viewer.csrf().await;
    let (status, _, page) = viewer
        .post(&format!("{run_page}/rename"), &[("csrf", &csrf), ("name", "hijacked")], &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("viewer"), "the refusal says why: {page}");
    let (status, _, _) = viewer
        .post("/projects/churn/experiments", &[("csrf", &csrf), ("name", "sneaky")], &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = viewer
        .post(
            "/projects/churn/members",
            &[("csrf", &csrf), ("username", "viewer"), ("role", "owner")],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let run =
        app.app.services.tracking.get_run(&RequestContext::system(), &f.run_id).await.unwrap();
    assert_ne!(run.info.run_name, "hijacked");

    // Someone outside the project gets 403 pages; a missing run is a 404 page in the layout.
    let outsider = Browser::new(&server);
    outsider.login("outsider", &token_of(&f, "outsider")).await;
    let (status, _, page) = outsider.get("/projects/churn").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Not allowed") && page.contains("Log out"), "{page}");
    let (status, _, page) =
        viewer.get("/projects/churn/runs/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert!(page.contains("Not found") && page.contains("Request id"), "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_escapes_html_everywhere() {
    let Some((app, f)) = app(Backend::Sqlite).await else { return };
    let system = RequestContext::system();
    let tracking = &app.app.services.tracking;
    let experiment = cairn_domain::ids::ExperimentId(f.experiment_id.parse().unwrap());
    let evil = "<script>alert(1)</script>";
    let run = tracking
        .create_run(
            &system,
            NewRun {
                experiment_id: experiment,
                user_id: "admin".into(),
                run_name: Some(evil.into()),
                ..NewRun::default()
            },
        )
        .await
        .unwrap();
    let run_id = run.info.run_id.clone();
    let param = Param { key: "payload".into(), value: "\"><img src=x onerror=alert(2)>".into() };
    let tag = Tag { key: "note".into(), value: "<b>bold</b>".into() };
    let metric = Metric {
        key: "m".into(),
        value: 1.0,
        timestamp: 1,
        step: 0,
        model_id: None,
        dataset_name: None,
        dataset_digest: None,
        run_id: None,
    };
    tracking.log_batch(&system, &run_id, vec![metric], vec![param], vec![tag]).await.unwrap();
    let server = app.spawn().await;
    let admin = Browser::new(&server);
    admin.login("admin", &token_of(&f, "admin")).await;
    let table = format!("/projects/churn/experiments/{}", f.experiment_id);
    let compare = format!("/projects/churn/compare?runs={run_id}&runs={}", f.run_id);
    for path in [table, format!("/projects/churn/runs/{run_id}"), compare, "/".to_string()] {
        let (status, _, page) = admin.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(!page.contains(evil), "{path} renders the run name as markup");
        assert!(
            page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path} shows it as text"
        );
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(!page.contains("<b>bold</b>"), "{path}");
    }
    let (_, _, page) = admin.get(&format!("/projects/churn/runs/{run_id}")).await;
    assert!(
        page.contains("&#60;b&#62;bold&#60;/b&#62;") && page.contains("&#34;&#62;&#60;img src=x")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_runs_table_pages_sorts_filters_and_picks_columns() {
    let Some((app, f)) = app(Backend::Sqlite).await else { return };
    let system = RequestContext::system();
    let tracking = &app.app.services.tracking;
    let experiment = cairn_domain::ids::ExperimentId(f.experiment_id.parse().unwrap());
    for index in 0..7 {
        let run = tracking
            .create_run(
                &system,
                NewRun {
                    experiment_id: experiment,
                    user_id: "admin".into(),
                    run_name: Some(format!("trial-{index}")),
                    start_time: Some(1_000 + index),
                    ..NewRun::default()
                },
            )
            .await
            .unwrap();
        let metric = Metric {
            key: "auc".into(),
            value: 0.5 + index as f64 / 100.0,
            timestamp: 1,
            step: 0,
            model_id: None,
            dataset_name: None,
            dataset_digest: None,
            run_id: None,
        };
        let param = Param { key: "depth".into(), value: (index % 3).to_string() };
        tracking
            .log_batch(&system, &run.info.run_id, vec![metric], vec![param], vec![])
            .await
            .unwrap();
    }
    let server = app.spawn().await;
    let admin = Browser::new(&server);
    admin.login("admin", &token_of(&f, "admin")).await;
    let table = format!("/projects/churn/experiments/{}", f.experiment_id);
    let rows = |page: &str| page.matches("<tr data-run-id=").count();

    let (status, _, page) = admin.get(&format!("{table}?per=3&order=metrics.%60auc%60+DESC")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(rows(&page), 3);
    let first = page.find("trial-6").expect("best auc first");
    assert!(first < page.find("trial-5").unwrap());
    assert!(page.contains("aria-sort=\"descending\""));
    let next = page.split("rel=\"next\"").next().unwrap();
    let href =
        next.rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&#38;", "&");
    let (status, _, page) = admin.get(&href).await;
    assert_eq!(status, StatusCode::OK, "{href}: {page}");
    assert_eq!(rows(&page), 3);
    assert!(page.contains("trial-3") && page.contains("Runs 4–6"), "{page}");
    assert!(page.contains("rel=\"prev\""));

    let (_, _, page) =
        admin.get(&format!("{table}?filter=params.depth+%3D+%272%27&cols=metrics.auc")).await;
    assert_eq!(rows(&page), 2, "trial-2 and trial-5");
    assert!(page.contains("data-sort=\"auc\"") && !page.contains("data-sort=\"depth\""));

    let (status, _, page) = admin.get(&format!("{table}?filter=metrics.auc+%3E%3E+1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a filter the grammar refuses");
    assert!(page.contains("id=\"filter-error\""), "{page}");
    let (status, _, _) = admin.get(&format!("{table}?order=nonsense+sideways")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_pages_errors_assets_and_the_workspace_proxy_cookie() {
    let Some((app, f)) = app(Backend::Sqlite).await else { return };
    let server = app.spawn().await;
    let viewer = Browser::new(&server);
    viewer.login("viewer", &token_of(&f, "viewer")).await;

    let (status, headers, page) = viewer.get("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("Not found") && page.contains("<main"), "an HTML 404 for browsers");
    assert!(headers.get("content-security-policy").is_some());
    let json = reqwest::get(format!("{}/no/such/page", server.url())).await.unwrap();
    assert_eq!(json.status(), StatusCode::NOT_FOUND);
    assert!(json.text().await.unwrap().contains("ENDPOINT_NOT_FOUND"), "others get JSON");

    let (status, headers, css) = viewer.get("/ui/static/cairn.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains(":focus-visible"));
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_string();
    assert!(headers.get("cache-control").unwrap().to_str().unwrap().contains("immutable"));
    let cached = viewer
        .http
        .get(format!("{}/ui/static/cairn.css", server.url()))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let (_, _, page) = viewer.get("/").await;
    assert!(page.contains(&format!("/ui/static/cairn.css?v={}", etag.trim_matches('"'))));

    // The session cookie authenticates the workspace proxy (no such workspace: 404, not 401)…
    let (status, _, _) = viewer.get("/workspaces/999/lab").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the cookie is accepted by the proxy");
    let anonymous = reqwest::get(format!("{}/workspaces/999/lab", server.url())).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // …but never the JSON APIs.
    let (status, _, _) = viewer.get("/api/2.0/mlflow/experiments/search?max_results=1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the APIs ignore the cookie");
    let (status, _, _) = viewer.get("/api/v1/projects").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_without_authentication_shows_the_banner_and_still_checks_forms() {
    let app = TestApp::new(Backend::Sqlite).await.expect("app");
    let server = app.spawn().await;
    let browser = Browser::new(&server);
    let (status, headers, page) = browser.get("/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Authentication is disabled"), "{page}");
    assert!(set_cookies(&headers).iter().any(|cookie| cookie.starts_with("cairn_csrf=")));
    let (status, _, _) = browser.post("/projects", &[("name", "anon")], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "forms need the token even without auth");
    let (_, _, page) = browser.get("/projects").await;
    let csrf = csrf_of(&page);
    let (status, headers, page) =
        browser.post("/projects", &[("csrf", &csrf), ("name", "anon")], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/projects/anon");
    let (status, _, page) = browser.get("/projects/anon").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Create experiment"), "the anonymous caller may do everything");
    server.shutdown().await;
}
