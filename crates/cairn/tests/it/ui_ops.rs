//! The web UI's pages for operations over HTTP (reqwest with a cookie jar against a real socket,
//! the dispatcher running a real local job): a job's page with its log, datasets and their
//! versions, deployments with traffic and revisions, a monitor with its checks and alerts,
//! schedules, secrets (names only), approval policies, environments, tiers and quotas, a run's
//! artifact previews and lineage, and the project's README rendered safely. Each page renders
//! with data; viewers get no edit controls and their forged posts are refused; free text shows
//! escaped.

use std::time::Duration;

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{
    EnvironmentDefinition, JobTemplate, MissedPolicy, Quota, QuotaScope, RevisionState,
    SecretScope, SnapshotFile, TierSpec,
};
use cairn_domain::drift::{ColumnDrift, ColumnKind, DatasetDrift, Histogram, Method};
use cairn_domain::monitoring::{CheckResult, CheckStatus, FeatureResult, ThresholdOutcome};
use cairn_domain::serving::{CaptureSpec, DeploymentSpec, Route};
use cairn_service::compute::ScheduleRequest;
use reqwest::StatusCode;

use crate::rbac::Fixture;
use crate::support::{Backend, RunningServer, TestApp};
use crate::ui::{Browser, location, token_of};

/// An 8×8 blue PNG.
pub(crate) const PNG: &str = "89504e470d0a1a0a0000000d49484452000000080000000808020000004b6d29dc0000001149444154789c63908b3a8115310c2d0900181950013a5905ad0000000049454e44ae426082";
/// The project README: Markdown with raw HTML and a `javascript:` link, both neutralised.
const README: &str = "# Churn\n\nPredicts **churn**. See [the docs](https://example.com/docs).\n\n<script>alert('readme')</script>\n\n[bad](javascript:alert(1))\n";
/// The job: prints lines the log page must show.
const JOB_PY: &str =
    "import sys\nfor i in range(3):\n    print(f'line {i} <b>')\nprint('done', file=sys.stderr)\n";

/// What [`ops_data`] made.
pub(crate) struct OpsData {
    /// The finished job's id.
    pub job_id: i64,
    /// The run it logged into.
    pub job_run_id: String,
    /// The deployment's name.
    pub deployment: String,
    /// The monitor check's id.
    pub check_id: i64,
    /// The policy's id.
    pub policy_id: i64,
}

fn in_project(project: &str) -> RequestContext {
    RequestContext { project: Some(project.to_string()), ..RequestContext::system() }
}

/// An app whose dispatcher runs local jobs, with the fixture's users.
pub(crate) async fn compute_app() -> Option<(TestApp, Fixture)> {
    let settings = cairn::ComputeSettings {
        tick: Duration::from_millis(100),
        kill_grace: Duration::from_secs(2),
        ..cairn::ComputeSettings::default()
    };
    let app = TestApp::with_compute(Backend::Sqlite, false, settings).await?;
    let f = crate::rbac::fixture(&app).await;
    Some((app, f))
}

async fn blob(app: &TestApp, path: &str, content: &[u8]) -> SnapshotFile {
    let system = RequestContext::system();
    let bytes = bytes::Bytes::copy_from_slice(content);
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    app.app.services.files.put_blob(&system, "churn", &sha256, body).await.unwrap();
    SnapshotFile { path: path.into(), sha256, size: content.len() as u64, executable: false }
}

async fn artifact(app: &TestApp, f: &Fixture, path: &str, content: &[u8]) {
    let system = RequestContext::system();
    let run = app.app.services.tracking.get_run(&in_project("churn"), &f.run_id).await.unwrap();
    let root = run.info.artifact_uri.strip_prefix("mlflow-artifacts:/").unwrap().trim_matches('/');
    let body =
        futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(content))]);
    app.app.services.artifacts.upload(&system, &format!("{root}/{path}"), body).await.unwrap();
}

/// Everything the operations pages show, in project churn: an approved environment, tiers, a
/// quota, a snapshot with a README and a job script, a dataset, a finished job reading it, a
/// schedule, a secret, a registered model from the fixture's run, a policy, a deployment with a
/// monitor, a failed check and its open alert, and run artifacts to preview. Needs the server
/// spawned (the dispatcher runs the job).
pub(crate) async fn ops_data(app: &TestApp, f: &Fixture, server: &RunningServer) -> OpsData {
    let _ = server;
    let services = &app.app.services;
    let system = RequestContext::system();
    let churn = in_project("churn");
    let definition = EnvironmentDefinition { python: None, requirements: Vec::new(), image: None };
    services.catalog.create_environment(&system, "bare", "no packages", &definition).await.unwrap();
    services.catalog.set_revision_state(&system, "bare", 1, RevisionState::Approved).await.unwrap();
    let tier = TierSpec {
        cpu: 1.0,
        memory_mib: 512,
        gpus: 0,
        max_runtime_s: 300,
        cost_per_hour: 0.25,
        executor: None,
    };
    services.catalog.put_tier(&system, "small", &tier, true).await.unwrap();
    let quota =
        Quota { scope: QuotaScope::Project("churn".into()), max_jobs: Some(4), max_gpus: None };
    services.catalog.set_quota(&system, &quota).await.unwrap();

    let files = vec![
        blob(app, "README.md", README.as_bytes()).await,
        blob(app, "job.py", JOB_PY.as_bytes()).await,
    ];
    services.files.create_snapshot(&system, "churn", files, "first").await.unwrap();
    let csv = b"age,plan\n31,basic\n45,pro\n";
    let data = vec![blob(app, "train.csv", csv).await];
    services.datasets.push(&system, "churn", "train", data, "first cut").await.unwrap();
    services
        .datasets
        .configure(&system, "churn", "train", "<script>alert('dataset')</script>", None)
        .await
        .unwrap();

    let contributor = services.identity.get_user("contributor").await.unwrap().principal();
    let acting = RequestContext::user(contributor, None);
    let template = JobTemplate {
        command: vec!["python".into(), "job.py".into()],
        environment: "bare".into(),
        environment_revision: None,
        tier: "small".into(),
        snapshot: None,
        experiment: None,
        run_name: Some("scored".into()),
        env: Default::default(),
        datasets: vec!["train@1".into()],
    };
    let job = services.jobs.submit(&acting, "churn", &template).await.unwrap();
    let schedule = ScheduleRequest {
        cron: "0 3 * * *".into(),
        timezone: "UTC".into(),
        template: template.clone(),
        missed: MissedPolicy::Skip,
        enabled: true,
    };
    services.jobs.create_schedule(&acting, "churn", "nightly", &schedule).await.unwrap();
    let scope = SecretScope::Project("churn".into());
    services.secrets.put(&system, &scope, "API_KEY", "hunter2-very-secret").await.unwrap();

    services.registry.create_model(&churn, "churn-model", None, &[]).await.unwrap();
    let version = crate::support::version_from_run("churn-model", &f.run_id);
    services.registry.create_version(&churn, version).await.unwrap();
    let policy = crate::support::champion_gate();
    let policy_id = services.governance.create_policy(&churn, policy).await.unwrap().id;

    let (deployment, check_id) = deployment(app).await;
    artifact(app, f, "plots/loss.png", &hex::decode(PNG).unwrap()).await;
    artifact(
        app,
        f,
        "plots/logo.svg",
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    )
    .await;
    let mut table = String::from("step,loss\n");
    for step in 0..30 {
        table.push_str(&format!("{step},{}\n", 1.0 / f64::from(step + 1)));
    }
    artifact(app, f, "metrics.csv", table.as_bytes()).await;
    artifact(app, f, "notes.txt", b"<script>alert('notes')</script> plain text").await;

    for _ in 0..600 {
        let state = services.jobs.get(&system, "churn", job.id).await.unwrap().state;
        if state.is_terminal() {
            assert_eq!(state.as_str(), "succeeded", "the job ended {}", state.as_str());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    OpsData { job_id: job.id, job_run_id: job.run_id, deployment, check_id, policy_id }
}

/// A deployment of churn-model v1 (two revisions, a monitor) and a failed check with an open
/// alert, written through the store (no model file is needed to show them).
async fn deployment(app: &TestApp) -> (String, i64) {
    let store = &app.app.store;
    let system = RequestContext::system();
    let churn = store.get_project("churn").await.unwrap();
    let monitor = serde_json::from_value(serde_json::json!({
        "features": [{"name": "age", "threshold": 0.05}],
        "reference": {"run_artifact": "data/train.parquet"},
        "quality": [{"metric": "accuracy", "min": 0.8}],
        "alerts": [{"type": "webhook", "url": "https://user:pw@hooks.example.com/secret-path?token=x"}],
        "schedule": "@hourly",
        "window": "24h"
    }))
    .unwrap();
    let route = |weight| Route { model: "churn-model".into(), version: 1, weight, artifact: None };
    let mut spec = DeploymentSpec {
        routes: vec![route(100)],
        shadow: None,
        capture: CaptureSpec { enabled: true, sample_rate: 1.0 },
        callers: vec![],
        monitor: None,
    };
    let created =
        store.create_deployment(&system, churn.id, "churn-api", "production", &spec).await.unwrap();
    spec.routes = vec![route(90), route(10)];
    spec.monitor = Some(monitor);
    store
        .revise_deployment(&system, "churn-api", &spec, Some("split <b>traffic</b>"), None)
        .await
        .unwrap();
    let drift = ColumnDrift {
        kind: ColumnKind::Numerical,
        method: Method::Ks,
        statistic: 0.001,
        threshold: 0.05,
        drifted: true,
        reference_rows: 100,
        current_rows: 80,
        histogram: Histogram::Bins {
            edges: vec![0.0, 1.0],
            reference: vec![1.0],
            current: vec![1.0],
        },
    };
    let outcome = ThresholdOutcome {
        key: "feature_drift:age".into(),
        failed: true,
        message: "age drifted (ks p=0.001 < 0.05)".into(),
    };
    let result = CheckResult {
        current_rows: 80,
        reference_rows: 100,
        features: vec![FeatureResult { name: "age".into(), drift: Some(drift), error: None }],
        dataset: Some(DatasetDrift { drifted: 1, tested: 1, share: 1.0, dataset_drift: true }),
        prediction: None,
        quality: None,
        thresholds: vec![outcome.clone()],
    };
    let now = cairn_domain::time::now_millis();
    let check = cairn_store::NewCheck {
        deployment_id: created.id,
        deployment: "churn-api",
        revision: 2,
        trigger: "manual",
        requested_by: "admin",
        window_start: now - 3_600_000,
        window_end: now,
        started_at: now,
        status: CheckStatus::Failed,
        message: "<script>alert('check')</script> 1 threshold failed",
        result: Some(&result),
        report_path: None,
    };
    let (check, _) =
        store.record_check(&system, &check, &[outcome], &[], |_, _| None).await.unwrap();
    ("churn-api".into(), check.id)
}

async fn logged_in(server: &RunningServer, f: &Fixture, who: &str) -> Browser {
    let browser = Browser::new(server);
    let (status, _, page) = browser.login(who, &token_of(f, who)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{who} logs in: {page}");
    browser
}

fn post_forms(page: &str) -> usize {
    page.matches("method=\"post\"").count()
}

/// Every page of this file for `data`, with a marker each must contain.
pub(crate) fn pages(f: &Fixture, data: &OpsData) -> Vec<(String, String)> {
    let project = "/projects/churn";
    let deployment = format!("{project}/deployments/{}", data.deployment);
    let run = format!("{project}/runs/{}", f.run_id);
    vec![
        (format!("{project}/jobs/{}", data.job_id), "line 2 &#60;b&#62;".into()),
        (format!("{project}/jobs"), format!("{project}/jobs/{}", data.job_id)),
        (format!("{project}/datasets"), "data-dataset=\"train\"".into()),
        (format!("{project}/datasets/train"), "first cut".into()),
        (format!("{project}/datasets/train/versions/1"), "<code>plan</code>".into()),
        (format!("{project}/deployments"), "churn-model v1 (90%), churn-model v1 (10%)".into()),
        (deployment.clone(), "id=\"traffic\"".into()),
        (format!("{deployment}/monitor"), "feature_drift:age".into()),
        (format!("{deployment}/monitor/checks/{}", data.check_id), "data-feature=\"age\"".into()),
        (format!("{project}/schedules"), "data-schedule=\"nightly\"".into()),
        (format!("{project}/schedules/nightly"), "0 3 * * *".into()),
        (format!("{project}/secrets"), "data-secret=\"API_KEY\"".into()),
        (format!("{project}/policies"), "champion-gate".into()),
        (format!("{project}/policies/{}", data.policy_id), "id=\"policy-revisions\"".into()),
        ("/environments".into(), "data-environment=\"bare\"".into()),
        ("/environments/bare".into(), "data-revision=\"1\"".into()),
        ("/tiers".into(), "data-tier=\"small\"".into()),
        (run.clone(), "id=\"lineage-versions\"".into()),
        (format!("{project}/runs/{}", data.job_run_id), "id=\"lineage-job\"".into()),
        (format!("{run}/preview/metrics.csv"), "id=\"csv-head\"".into()),
        (format!("{run}/preview/notes.txt"), "id=\"text-preview\"".into()),
        (format!("{run}/preview/plots/loss.png"), "id=\"artifact-image\"".into()),
        (format!("{run}/preview/plots/logo.svg"), "id=\"svg-note\"".into()),
        (project.into(), "id=\"readme-body\"".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_operations_pages_for_each_role() {
    let Some((app, f)) = compute_app().await else { return };
    let server = app.spawn().await;
    let data = ops_data(&app, &f, &server).await;
    let project = "/projects/churn";
    let deployment = format!("{project}/deployments/{}", data.deployment);
    let run = format!("{project}/runs/{}", f.run_id);

    // Every page renders for a viewer, with its data.
    let viewer = logged_in(&server, &f, "viewer").await;
    for (path, marker) in pages(&f, &data) {
        let (status, _, page) = viewer.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(page.contains(&marker), "{path} lacks {marker}:\n{page}");
        assert!(!page.contains("<script>alert"), "{path} shows a script unescaped");
        assert_eq!(post_forms(&page), 1, "{path}: no edit controls for a viewer:\n{page}");
    }

    // The job's page: the log, its datasets, the run; the log route answers new bytes by offset.
    let (_, _, page) = viewer.get(&format!("{project}/jobs/{}", data.job_id)).await;
    assert!(page.contains("line 0 &#60;b&#62;") && page.contains("done"), "{page}");
    assert!(page.contains("data-complete=\"true\""), "{page}");
    assert!(page.contains("href=\"/projects/churn/datasets/train/versions/1\""), "{page}");
    let log_at = |offset: u64| {
        let url = format!("{}{project}/jobs/{}/log?offset={offset}", viewer.base, data.job_id);
        let request = viewer.http.get(url);
        async move { request.send().await.unwrap() }
    };
    let whole = log_at(0).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(whole.headers()["x-log-complete"], "true");
    assert_eq!(whole.headers()["x-job-state"], "succeeded");
    let end: u64 = whole.headers()["x-next-offset"].to_str().unwrap().parse().unwrap();
    let whole = whole.text().await.unwrap();
    assert!(whole.contains("line 1 <b>"), "{whole}");
    assert_eq!(end, whole.len() as u64);
    let rest = log_at(3).await.text().await.unwrap();
    assert_eq!(rest, whole[3..], "read from byte 3");
    assert!(log_at(end).await.text().await.unwrap().is_empty(), "nothing after the end");

    // Datasets, deployments and monitors show free text escaped, secrets never their values.
    let (_, _, page) = viewer.get(&format!("{project}/datasets/train")).await;
    assert!(page.contains("&#60;script&#62;alert(&#39;dataset&#39;)"), "{page}");
    let (_, _, page) = viewer.get(&deployment).await;
    assert!(page.contains("90%") && page.contains("10%"), "{page}");
    assert!(page.contains("/serve/churn-api/invocations"), "{page}");
    assert!(page.contains("split &#60;b&#62;traffic&#60;/b&#62;"), "{page}");
    assert!(page.contains("1 open alert"), "{page}");
    assert!(page.contains(&format!("href=\"{deployment}/monitor\"")), "{page}");
    let (_, _, page) = viewer.get(&format!("{deployment}/monitor")).await;
    assert!(page.contains("webhook to hooks.example.com"), "{page}");
    assert!(!page.contains("secret-path") && !page.contains("user:pw"), "{page}");
    assert!(page.contains("&#60;script&#62;alert(&#39;check&#39;)"), "{page}");
    let (_, _, page) = viewer.get(&format!("{project}/secrets")).await;
    assert!(!page.contains("hunter2"), "{page}");

    // The run: lineage and previews; the image answers with its own type, nosniff and sandbox.
    let (_, _, page) = viewer.get(&run).await;
    assert!(page.contains("href=\"/projects/churn/models/churn-model/versions/1\""), "{page}");
    assert!(page.contains(&format!("href=\"{run}/preview/notes.txt\"")), "{page}");
    let (_, _, page) = viewer.get(&format!("{run}/preview/metrics.csv")).await;
    assert_eq!(page.matches("<tr><td>").count(), 20, "the first 20 rows: {page}");
    let (_, _, page) = viewer.get(&format!("{run}/preview/notes.txt")).await;
    assert!(page.contains("&#60;script&#62;alert(&#39;notes&#39;)&#60;/script&#62; plain text"));
    let image =
        viewer.http.get(format!("{}{run}/raw/plots/loss.png", viewer.base)).send().await.unwrap();
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
    assert!(image.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(image.bytes().await.unwrap().as_ref(), hex::decode(PNG).unwrap().as_slice());
    let (status, _, _) = viewer.get(&format!("{run}/raw/plots/logo.svg")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "SVG is never served inline");

    // The README is rendered; its raw HTML is text and its javascript: link is gone.
    let (_, _, page) = viewer.get(project).await;
    assert!(page.contains("<h3>Churn</h3>") && page.contains("<strong>churn</strong>"), "{page}");
    assert!(page.contains("<a href=\"https://example.com/docs\">the docs</a>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&#39;readme&#39;)&lt;/script&gt;")
            || page.contains("&lt;script&gt;alert('readme')&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("javascript:"), "{page}");

    // The viewer's forged posts are refused.
    let csrf = viewer.csrf().await;
    let forged = [
        (format!("{deployment}/rollback"), vec![("revision", "1")]),
        (format!("{deployment}/monitor/check"), vec![]),
        (format!("{project}/schedules/nightly/pause"), vec![]),
        (format!("{project}/secrets"), vec![("name", "STOLEN"), ("value", "x")]),
        (format!("{project}/policies/{}", data.policy_id), vec![("approvals", "0")]),
        (format!("{project}/jobs/{}/cancel", data.job_id), vec![]),
        ("/environments/bare/revisions/1/state".into(), vec![("state", "deprecated")]),
        (
            "/tiers".into(),
            vec![("name", "huge"), ("cpu", "64"), ("memory_mib", "1024"), ("max_runtime_s", "60")],
        ),
        ("/tiers/quotas".into(), vec![("scope", "project:churn")]),
    ];
    for (path, fields) in &forged {
        let mut pairs = vec![("csrf", csrf.as_str())];
        pairs.extend(fields.iter().copied());
        let (status, _, page) = viewer.post(path, &pairs, &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
    }

    // Someone outside the project gets 403 pages.
    let outsider = logged_in(&server, &f, "outsider").await;
    for path in [
        deployment.clone(),
        format!("{project}/jobs/{}", data.job_id),
        format!("{project}/secrets"),
    ] {
        let (status, _, _) = outsider.get(&path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }

    // The owner manages: pause and resume the schedule, set and delete a secret, change the
    // policy's rules, roll the deployment back; a missing CSRF token is refused.
    let owner = logged_in(&server, &f, "owner").await;
    let csrf = owner.csrf().await;
    let (_, _, page) = owner.get(&format!("{project}/schedules")).await;
    assert!(page.contains("aria-label=\"Pause schedule nightly\""), "{page}");
    let pause = format!("{project}/schedules/nightly/pause");
    let (status, _, _) = owner.post(&pause, &[], &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let (status, headers, page) = owner.post(&pause, &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), format!("{project}/schedules/nightly"));
    let system = RequestContext::system();
    let (schedule, _) =
        app.app.services.jobs.schedule(&system, "churn", "nightly", 1).await.unwrap();
    assert!(!schedule.enabled);
    let (_, _, page) = owner.get(&format!("{project}/schedules/nightly")).await;
    assert!(page.contains("id=\"schedule-state\">paused<"), "{page}");
    let (status, _, _) =
        owner.post(&format!("{project}/schedules/nightly/resume"), &[("csrf", &csrf)], &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let secret = [("csrf", csrf.as_str()), ("name", "DB_PASSWORD"), ("value", "pa55-word-xyz")];
    let (status, _, page) = owner.post(&format!("{project}/secrets"), &secret, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, _, page) = owner.get(&format!("{project}/secrets")).await;
    assert!(
        page.contains("data-secret=\"DB_PASSWORD\"") && !page.contains("pa55-word-xyz"),
        "{page}"
    );
    assert!(page.contains("type=\"password\""), "{page}");
    let delete = [("csrf", csrf.as_str()), ("name", "DB_PASSWORD")];
    let (status, _, _) = owner.post(&format!("{project}/secrets/delete"), &delete, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = owner.get(&format!("{project}/secrets")).await;
    assert!(!page.contains("DB_PASSWORD"), "{page}");

    let rules = [
        ("csrf", csrf.as_str()),
        ("approvals", "2"),
        ("conditions", "metrics.auc >= 0.8"),
        ("require_model_card", "1"),
    ];
    let policy = format!("{project}/policies/{}", data.policy_id);
    let (status, _, page) = owner.post(&policy, &rules, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, _, page) = owner.get(&policy).await;
    assert!(page.contains("id=\"policy-approval-count\">2<"), "{page}");
    assert!(page.contains("<code>metrics.auc &#62;= 0.8</code>"), "{page}");
    let bad = [("csrf", csrf.as_str()), ("approvals", "2"), ("conditions", "nonsense")];
    let (status, _, _) = owner.post(&policy, &bad, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, _, page) = owner.get(&deployment).await;
    assert!(page.contains("id=\"rollback-form\""), "{page}");
    let (status, _, page) = owner
        .post(&format!("{deployment}/rollback"), &[("csrf", &csrf), ("revision", "1")], &[])
        .await;
    assert!(status == StatusCode::SEE_OTHER || status.is_client_error(), "{status}: {page}");

    // A site admin approves and deprecates environment revisions, writes tiers and quotas.
    let admin = logged_in(&server, &f, "admin").await;
    let csrf = admin.csrf().await;
    let (_, _, page) = admin.get("/environments/bare").await;
    assert!(page.contains("aria-label=\"Deprecate revision 1 of bare\""), "{page}");
    let state = [("csrf", csrf.as_str()), ("state", "deprecated")];
    let (status, _, page) = admin.post("/environments/bare/revisions/1/state", &state, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, _, page) = admin.get("/environments/bare").await;
    assert!(page.contains(">deprecated<"), "{page}");
    let tier = [
        ("csrf", csrf.as_str()),
        ("name", "gpu"),
        ("cpu", "4"),
        ("memory_mib", "8192"),
        ("gpus", "1"),
        ("max_runtime_s", "3600"),
        ("active", "1"),
    ];
    let (status, _, page) = admin.post("/tiers", &tier, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let quota = [("csrf", csrf.as_str()), ("scope", "user:contributor"), ("max_gpus", "2")];
    let (status, _, page) = admin.post("/tiers/quotas", &quota, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, _, page) = admin.get("/tiers").await;
    assert!(
        page.contains("data-tier=\"gpu\"") && page.contains("<code>user:contributor</code>"),
        "{page}"
    );
    server.shutdown().await;
}
