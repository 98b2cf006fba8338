//! The web UI in headless Chromium, driven through `chromedriver` with fantoccini: log in, create
//! a project, log runs into it with the real `mlflow` client, filter and sort the runs table,
//! open a run and find its chart with the right number of points, compare two runs; then, as a
//! governance reviewer, approve a pending promotion, find the decision in the audit log (as an
//! admin), and search globally from the header and open the result; then the operations
//! pages: a deployment with its traffic split, its monitor, a job's log (of a job the local
//! dispatcher ran), an image artifact's preview (loaded under the page's security policy) and
//! the project's README. The login form is also used from the keyboard: the skip link comes
//! first and moves the focus to the content, and Tab reaches the fields and the submit button.
//! Screenshots of the key pages go to `$CARGO_TARGET_DIR/ui-screenshots/`. Without Chromium, chromedriver or
//! the Python client the test says `SKIPPED` and passes, unless `CAIRN_TEST_REQUIRE_SERVICES=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::governance::PromotionTarget;
use cairn_domain::identity::SiteRole;
use cairn_service::UserSpec;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{Backend, TestApp};

const PASSWORD: &str = "a long browser password";

/// Logs three runs into experiment `resnet` and prints `{run name: run id}` as its last line.
const LOG_RUNS: &str = r#"
import json, mlflow
mlflow.set_experiment("resnet")
ids = {}
for lr, accuracy in [("0.1", 0.71), ("0.01", 0.93), ("0.001", 0.85)]:
    with mlflow.start_run(run_name=f"lr-{lr}") as run:
        mlflow.log_params({"lr": lr, "batch": 32})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1) + float(lr), step=step)
        mlflow.log_metric("accuracy", accuracy)
        mlflow.set_tag("team", "vision")
        ids[run.info.run_name] = run.info.run_id
print(json.dumps(ids))
"#;

fn skip<T>(what: &str) -> Option<T> {
    if cairn_store::testsuite::services_required() {
        panic!("{what} is missing but CAIRN_TEST_REQUIRE_SERVICES=1");
    }
    eprintln!("SKIPPED: UI browser test ({what} is missing)");
    None
}

/// The browser, its driver and the Python with `mlflow`, or `None` (skipped) when one lacks.
fn tools() -> Option<(PathBuf, PathBuf, String)> {
    let chromium = PathBuf::from(
        std::env::var("CAIRN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    let driver = PathBuf::from(
        std::env::var("CAIRN_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    if !chromium.exists() {
        return skip("chromium");
    }
    if !driver.exists() {
        return skip("chromedriver");
    }
    let Ok(python) = std::env::var("CAIRN_TEST_PYTHON") else {
        return skip("CAIRN_TEST_PYTHON (a Python with mlflow)");
    };
    Some((chromium, driver, python))
}

/// `chromedriver` on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(driver: &Path) -> Driver {
    let port = crate::support::free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on port {port} within 10 s");
}

async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1366,900",
    ]
    .into_iter()
    .map(str::to_string)
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
    });
    let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session in headless Chromium")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/../../target", env!("CARGO_MANIFEST_DIR")));
    let dir = PathBuf::from(target).join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// The run names of the runs table, top to bottom; empty while a page is being replaced (its
/// elements go stale).
async fn run_names(client: &Client) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(links) = client.find_all(Locator::Css("#runs a.run-link")).await else {
        return names;
    };
    for link in links {
        match link.text().await {
            Ok(text) => names.push(text),
            Err(_) => return Vec::new(),
        }
    }
    names
}

async fn submit(client: &Client, form: &str) {
    client
        .find(Locator::Css(&format!("{form} button[type=submit]")))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("submit");
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.expect("field");
    field.clear().await.expect("clear");
    if !text.is_empty() {
        field.send_keys(text).await.expect("type");
    }
}

/// Waits (up to 10 s) until the runs table shows `expected`, in order unless `any_order`.
async fn wait_for_runs(client: &Client, expected: &[&str], any_order: bool) {
    let mut names = Vec::new();
    for _ in 0..100 {
        names = run_names(client).await;
        if any_order {
            names.sort();
        }
        if names == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the runs table shows {names:?}, not {expected:?}");
}

/// Logs out through the header's form and waits for the login page.
async fn log_out(client: &Client) {
    submit(client, ".account form").await;
    client.wait().for_element(Locator::Css("#username")).await.expect("the login page");
}

/// Logs in as `username` (with the test password) from the login page.
async fn log_in(client: &Client, base: &str, username: &str) {
    client.goto(&format!("{base}/login")).await.unwrap();
    fill(client, "#username", username).await;
    fill(client, "#secret", PASSWORD).await;
    submit(client, "form.stacked").await;
    client.wait().for_element(Locator::Css("#my-projects")).await.expect("the home page");
}

/// What has the keyboard focus: `tag#id.class`.
async fn focused(client: &Client) -> String {
    let script = "var e = document.activeElement; return e.tagName.toLowerCase() + '#' + e.id + '.' + e.className;";
    client.execute(script, vec![]).await.expect("script").as_str().unwrap_or_default().to_string()
}

async fn press(client: &Client, key: Key) {
    let value = char::from(key);
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value })
        .then(KeyAction::Up { value });
    client.perform_actions(actions).await.expect("a key press");
}

/// On the login page (the name field has the focus on load), Tab reaches the secret and then
/// the submit button.
async fn keyboard_reaches_the_login_form(client: &Client) {
    let first = focused(client).await;
    assert!(first.starts_with("input#username"), "the name field has the focus: {first}");
    let mut reached = Vec::new();
    for _ in 0..15 {
        press(client, Key::Tab).await;
        let now = focused(client).await;
        if now.starts_with("input#") || now.starts_with("button#") {
            reached.push(now.split('.').next().unwrap_or_default().to_string());
        }
        if now.starts_with("button#") {
            break;
        }
    }
    assert_eq!(reached, ["input#secret", "button#"], "Tab order of the login form");
}

/// On a freshly loaded page, the first Tab lands on the skip link and Enter moves the focus
/// to the content.
async fn skip_link_works(client: &Client, url: &str) {
    client.goto(url).await.unwrap();
    press(client, Key::Tab).await;
    let first = focused(client).await;
    assert_eq!(first, "a#.skip", "the skip link comes first");
    let visible = client
        .execute("return document.activeElement.getBoundingClientRect().left >= 0;", vec![])
        .await
        .unwrap();
    assert_eq!(visible, json!(true), "the focused skip link is on screen");
    screenshot(client, "skip-link").await;
    press(client, Key::Enter).await;
    let mut moved = String::new();
    for _ in 0..50 {
        moved = focused(client).await;
        if moved.starts_with("main#main") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        moved.starts_with("main#main"),
        "the skip link moves the focus to the content: {moved}"
    );
}

/// The operations pages in the browser, over the data of `ui_ops::ops_data` (ada is a site
/// admin, so she sees project churn).
async fn operations_pages(
    client: &Client,
    base: &str,
    app: &TestApp,
    fixture: &crate::rbac::Fixture,
    server: &crate::support::RunningServer,
) {
    let data = crate::ui_ops::ops_data(app, fixture, server).await;
    let deployment = format!("{base}/projects/churn/deployments/{}", data.deployment);
    client.goto(&deployment).await.unwrap();
    let traffic = client.wait().for_element(Locator::Css("#traffic")).await.expect("the traffic");
    let text = traffic.text().await.unwrap();
    assert!(text.contains("90%") && text.contains("10%"), "{text}");
    screenshot(client, "deployment").await;
    client.find(Locator::Id("monitor-link")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("#checks")).await.expect("the monitor's checks");
    screenshot(client, "monitor").await;

    client.goto(&format!("{base}/projects/churn/jobs/{}", data.job_id)).await.unwrap();
    let log = client.wait().for_element(Locator::Css("#job-log")).await.expect("the log");
    let text = log.text().await.unwrap();
    assert!(text.contains("line 2 <b>") && text.contains("done"), "{text}");
    screenshot(client, "job-log").await;

    let run = format!("{base}/projects/churn/runs/{}", fixture.run_id);
    client.goto(&format!("{run}/preview/plots/loss.png")).await.unwrap();
    client.wait().for_element(Locator::Css("#artifact-image")).await.expect("the image");
    let mut width = serde_json::Value::Null;
    for _ in 0..50 {
        let script = "var i = document.getElementById('artifact-image'); return i.complete ? i.naturalWidth : null;";
        width = client.execute(script, vec![]).await.unwrap();
        if !width.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(width, json!(8), "the PNG loads under the page's policy");
    screenshot(client, "artifact-image").await;
    client.goto(&format!("{run}/preview/metrics.csv")).await.unwrap();
    client.wait().for_element(Locator::Css("#csv-head")).await.expect("the CSV head");
    screenshot(client, "artifact-csv").await;

    client.goto(&format!("{base}/projects/churn")).await.unwrap();
    let readme = client.wait().for_element(Locator::Css("#readme-body")).await.expect("README");
    let text = readme.text().await.unwrap();
    assert!(text.contains("Predicts churn") && text.contains("<script>"), "{text}");
    screenshot(client, "project-readme").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_in_headless_chromium() {
    let Some((chromium, driver_path, python)) = tools() else { return };
    let settings = cairn::ComputeSettings {
        tick: Duration::from_millis(100),
        ..cairn::ComputeSettings::default()
    };
    let app = TestApp::with_compute(Backend::Sqlite, false, settings).await.expect("app");
    let fixture = crate::rbac::fixture(&app).await;
    let system = RequestContext::system();
    let spec = UserSpec {
        username: "ada".into(),
        site_role: SiteRole::Admin,
        service_account: false,
        password: Some(PASSWORD.into()),
        display_name: Some("Ada".into()),
        email: None,
    };
    let services = &app.app.services;
    services.identity.create_user(&system, &spec).await.unwrap();
    let (_, token) = services.identity.create_token(&system, "ada", "mlflow", None).await.unwrap();
    let server = app.spawn().await;
    let base = server.url();
    let driver = start_driver(&driver_path).await;
    let profile = tempfile::tempdir().expect("profile");
    let client = browser(&driver, &chromium, profile.path()).await;

    // Log in: the home page sends a visitor without a session to the login form.
    client.goto(&format!("{base}/")).await.unwrap();
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/login", "{url}");
    screenshot(&client, "login").await;
    keyboard_reaches_the_login_form(&client).await;
    fill(&client, "#username", "ada").await;
    fill(&client, "#secret", PASSWORD).await;
    submit(&client, "form.stacked").await;
    client.wait().for_element(Locator::Css("#my-projects")).await.expect("the home page");
    let header = client.find(Locator::Css(".account")).await.unwrap().text().await.unwrap();
    assert!(header.contains("ada"), "{header}");
    screenshot(&client, "home").await;
    skip_link_works(&client, &format!("{base}/")).await;

    // Create a project through its form.
    client.goto(&format!("{base}/projects")).await.unwrap();
    fill(&client, "#project-name", "vision").await;
    fill(&client, "#project-description", "image models").await;
    fill(&client, "#project-owner", "ada").await;
    submit(&client, "#new-project-form").await;
    client
        .wait()
        .for_url(&url::Url::parse(&format!("{base}/projects/vision")).unwrap())
        .await
        .unwrap();
    screenshot(&client, "project-created").await;

    // The real mlflow client logs three runs into the new project.
    let tracking_uri = format!("{base}/p/vision");
    let script_token = token.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", LOG_RUNS])
            .env("MLFLOW_TRACKING_URI", tracking_uri)
            .env("MLFLOW_TRACKING_TOKEN", script_token)
            .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "logging runs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ids: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("ids line")).expect("ids json");

    // The project page lists the experiment; its runs table shows the three runs.
    client.goto(&format!("{base}/projects/vision")).await.unwrap();
    client.find(Locator::LinkText("resnet")).await.expect("the experiment").click().await.unwrap();
    client.wait().for_element(Locator::Css("#runs")).await.unwrap();
    wait_for_runs(&client, &["lr-0.001", "lr-0.01", "lr-0.1"], true).await;
    screenshot(&client, "runs").await;

    // Filter with MLflow's grammar, then sort by a metric column (descending, then ascending).
    fill(&client, "#filter", "params.lr != '0.001'").await;
    submit(&client, "#run-filter").await;
    wait_for_runs(&client, &["lr-0.01", "lr-0.1"], true).await;
    let filtered = client.current_url().await.unwrap();
    assert!(filtered.query().unwrap_or_default().contains("filter="), "{filtered}");
    fill(&client, "#filter", "").await;
    submit(&client, "#run-filter").await;
    wait_for_runs(&client, &["lr-0.001", "lr-0.01", "lr-0.1"], true).await;
    client.find(Locator::Css("a[data-sort=accuracy]")).await.unwrap().click().await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("th[aria-sort=descending] a[data-sort=accuracy]"))
        .await
        .unwrap();
    wait_for_runs(&client, &["lr-0.01", "lr-0.001", "lr-0.1"], false).await;
    client.find(Locator::Css("a[data-sort=accuracy]")).await.unwrap().click().await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("th[aria-sort=ascending] a[data-sort=accuracy]"))
        .await
        .unwrap();
    wait_for_runs(&client, &["lr-0.1", "lr-0.001", "lr-0.01"], false).await;
    screenshot(&client, "runs-sorted").await;
    let table_url = client.current_url().await.unwrap();

    // Open a run: its loss chart is an SVG line of five points.
    client.find(Locator::LinkText("lr-0.01")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("#run-name")).await.unwrap();
    let line = client
        .find(Locator::Css("figure[data-metric=loss] svg polyline"))
        .await
        .expect("the loss chart");
    assert_eq!(line.attr("data-points").await.unwrap().as_deref(), Some("5"));
    let (_, _, width, height) = line.rectangle().await.unwrap();
    assert!(width > 100.0 && height > 10.0, "the line is drawn ({width}x{height})");
    let url = client.current_url().await.unwrap();
    assert!(url.path().ends_with(ids["lr-0.01"].as_str().unwrap()), "{url}");
    screenshot(&client, "run").await;

    // Compare two runs: overlaid loss lines, and the differing param marked.
    client.goto(table_url.as_str()).await.unwrap();
    for name in ["lr-0.01", "lr-0.1"] {
        let id = ids[name].as_str().unwrap();
        client.find(Locator::Id(&format!("select-{id}"))).await.unwrap().click().await.unwrap();
    }
    client.find(Locator::Id("compare-button")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("#param-diff")).await.unwrap();
    let lines =
        client.find_all(Locator::Css("figure[data-metric=loss] svg polyline")).await.unwrap();
    assert_eq!(lines.len(), 2, "one line per run");
    for line in &lines {
        assert_eq!(line.attr("data-points").await.unwrap().as_deref(), Some("5"));
    }
    let differing = client.find(Locator::Css("#param-diff tr.differs th")).await.unwrap();
    assert!(differing.text().await.unwrap().starts_with("lr"));
    screenshot(&client, "compare").await;

    // A governed promotion waits for a reviewer: model, version, policy and request made
    // through the services; the reviewer is a person with a password.
    let reviewer = UserSpec {
        username: "rex".into(),
        site_role: SiteRole::GovernanceReviewer,
        service_account: false,
        password: Some(PASSWORD.into()),
        display_name: None,
        email: None,
    };
    services.identity.create_user(&system, &reviewer).await.unwrap();
    let vision = RequestContext { project: Some("vision".into()), ..RequestContext::system() };
    services.registry.create_model(&vision, "resnet", None, &[]).await.unwrap();
    let run_id = ids["lr-0.01"].as_str().unwrap().to_string();
    let version = crate::support::version_from_run("resnet", &run_id);
    services.registry.create_version(&vision, version).await.unwrap();
    let policy = crate::support::champion_gate();
    services.governance.create_policy(&vision, policy).await.unwrap();
    let champion = PromotionTarget::Alias("champion".into());
    let promotion = services
        .governance
        .promote(&vision, "resnet", 1, &champion, false, Some("best accuracy"))
        .await
        .unwrap();
    let request_id = promotion.request.expect("a pending request").id;

    // The reviewer logs in and approves it from the list.
    log_out(&client).await;
    log_in(&client, &base, "rex").await;
    client.goto(&format!("{base}/approvals")).await.unwrap();
    let row = format!("tr[data-request-id=\"{request_id}\"]");
    client.wait().for_element(Locator::Css(&row)).await.expect("the pending request");
    screenshot(&client, "approvals").await;
    submit(&client, &row).await;
    let state = client.wait().for_element(Locator::Css("#request-state")).await.unwrap();
    assert_eq!(state.text().await.unwrap(), "approved");
    let decisions = client.find(Locator::Css("#decisions")).await.unwrap().text().await.unwrap();
    assert!(decisions.contains("rex approve"), "{decisions}");
    screenshot(&client, "approval-decided").await;
    client.find(Locator::LinkText("resnet v1")).await.unwrap().click().await.unwrap();
    client.wait().for_element(Locator::Css("#model-card")).await.expect("the version page");
    let facts = client.find(Locator::Css(".facts")).await.unwrap().text().await.unwrap();
    assert!(facts.contains("@champion"), "the alias moved: {facts}");
    screenshot(&client, "model-version").await;

    // An admin finds the decision in the audit log.
    log_out(&client).await;
    log_in(&client, &base, "ada").await;
    client.goto(&format!("{base}/audit")).await.unwrap();
    fill(&client, "#audit-action", "approval.").await;
    submit(&client, "#audit-filter").await;
    let mut table = String::new();
    for _ in 0..100 {
        let filtered = client
            .current_url()
            .await
            .is_ok_and(|url| url.query().unwrap_or_default().contains("action=approval."));
        if filtered && let Ok(element) = client.find(Locator::Css("#audit")).await {
            table = element.text().await.unwrap_or_default();
            if table.contains("approval.approve") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(table.contains("approval.approve") && table.contains("rex"), "{table}");
    assert!(table.contains(&format!("approval_request:{request_id}")), "{table}");
    screenshot(&client, "audit").await;

    // Global search from the header, then open the run it found.
    fill(&client, "#site-search", "lr-0.0").await;
    submit(&client, "form.site-search").await;
    client.wait().for_element(Locator::Css("#results-run")).await.expect("runs found");
    screenshot(&client, "search").await;
    client
        .find(Locator::Css("#results-run"))
        .await
        .unwrap()
        .find(Locator::LinkText("lr-0.01"))
        .await
        .expect("the run by name")
        .click()
        .await
        .unwrap();
    client.wait().for_element(Locator::Css("#run-name")).await.unwrap();
    let url = client.current_url().await.unwrap();
    assert!(url.path().ends_with(ids["lr-0.01"].as_str().unwrap()), "{url}");
    let name = client.find(Locator::Css("#run-name")).await.unwrap().text().await.unwrap();
    assert_eq!(name, "lr-0.01");

    operations_pages(&client, &base, &app, &fixture, &server).await;

    client.close().await.unwrap();
    drop(driver);
    server.shutdown().await;
}
