//! Schedules end to end on two replicas sharing one database: a one-minute cron in a non-UTC
//! time zone, created with the CLI, fires twice — each firing once, whichever replica claims it
//! — and its jobs run; firings missed during an outage are skipped or caught up once, per the
//! schedule's policy; a deleted schedule stops.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::compute::{Api, approve_environment, cairn, publish_environment, token, write_project};
use crate::rbac::fixture;
use crate::support::{Backend, TestApp};

fn settings() -> cairn::ComputeSettings {
    cairn::ComputeSettings { tick: Duration::from_millis(100), ..cairn::ComputeSettings::default() }
}

/// Moves a schedule's next firing into the past, as if no replica had run for a while.
async fn miss_firings(database_url: &str, name: &str, minutes: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
    let past = cairn_domain::time::now_millis() - minutes * 60_000;
    sqlx::query("UPDATE job_schedules SET next_run_at = $1 WHERE name = $2")
        .bind(past)
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn history(api: &Api, token: &str, name: &str) -> Value {
    api.ok(token, "GET", &format!("/api/v1/projects/churn/schedules/{name}"), None).await
}

async fn schedules_fire_once_each(backend: Backend) {
    let Some(app) = TestApp::with_compute(backend, false, settings()).await else { return };
    let f = fixture(&app).await;
    let replica = app.replica().await;
    let (first, second) = (app.spawn().await, replica.spawn().await);
    let api = Api::new(first.url());
    let (admin, contributor, viewer) =
        (token(&f.tokens, "admin"), token(&f.tokens, "contributor"), token(&f.tokens, "viewer"));
    publish_environment(&api, admin).await;
    approve_environment(&api, admin).await;
    let spec = json!({"cpu": 1.0, "memory_mib": 1024, "max_runtime_s": 120});
    api.ok(admin, "PUT", "/api/v1/tiers/small", Some(json!({"spec": spec}))).await;
    let project = tempfile::tempdir().unwrap();
    write_project(project.path(), "input");
    let pushed = cairn(
        &api.url,
        contributor,
        &["push", project.path().to_str().unwrap(), "--project", "churn"],
    );
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));

    // Bad schedules are refused with the reason.
    for (cron, timezone, expected) in
        [("61 * * * *", "UTC", "invalid cron"), ("* * * * *", "Mars/Olympus", "unknown time zone")]
    {
        let body = json!({"name": "bad", "cron": cron, "timezone": timezone,
            "template": {"command": ["python", "-c", "1"], "environment": "py", "tier": "small"}});
        let (status, answer) =
            api.call(contributor, "POST", "/api/v1/projects/churn/schedules", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer.to_string().contains(expected), "{answer}");
    }
    let body = json!({"name": "bad", "cron": "* * * * *",
        "template": {"command": ["python"], "environment": "nope", "tier": "small"}});
    let (status, answer) =
        api.call(contributor, "POST", "/api/v1/projects/churn/schedules", Some(body)).await;
    assert_eq!(status, 404, "{answer}");

    let created = cairn(
        &api.url,
        contributor,
        &[
            "schedule",
            "create",
            "every-minute",
            "--project",
            "churn",
            "--cron",
            "* * * * *",
            "--timezone",
            "Europe/Paris",
            "--env",
            "py",
            "--tier",
            "small",
            "--",
            "python",
            "-c",
            "print('tick', flush=True)",
        ],
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    // Two firings missed during an outage: one schedule skips them, one catches up once.
    for (name, missed) in [("skipper", "skip"), ("catcher", "catch_up")] {
        let body = json!({"name": name, "cron": "0 3 * * *", "timezone": "UTC", "missed": missed,
            "template": {"command": ["python", "-c", "print('nightly')"], "environment": "py", "tier": "small"}});
        api.ok(contributor, "POST", "/api/v1/projects/churn/schedules", Some(body)).await;
        miss_firings(&app.database_url, name, 10).await;
    }

    let started = Instant::now();
    let fired = loop {
        let view = history(&api, viewer, "every-minute").await;
        let jobs = view["history"].as_array().unwrap().clone();
        let done = jobs.iter().filter(|job| job["state"] == "succeeded").count();
        if done >= 2 {
            break jobs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(200),
            "two firings expected by now: {view}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut times: Vec<i64> =
        fired.iter().map(|job| job["scheduled_for"].as_i64().unwrap()).collect();
    times.sort_unstable();
    times.dedup();
    assert_eq!(times.len(), fired.len(), "each firing made exactly one job: {fired:?}");
    assert!(times.iter().all(|time| time % 60_000 == 0), "firings on the minute: {times:?}");
    assert_eq!(times[1] - times[0], 60_000);
    assert!(
        fired
            .iter()
            .all(|job| job["submitted_by"] == "contributor" && job["schedule"] == "every-minute")
    );
    let log = api.log(viewer, "churn", fired[0]["id"].as_i64().unwrap()).await;
    assert!(log.contains("tick"), "{log}");

    let skipper = history(&api, viewer, "skipper").await;
    assert_eq!(skipper["history"].as_array().unwrap().len(), 0, "{skipper}");
    assert!(
        skipper["schedule"]["next_run_at"].as_i64().unwrap() > cairn_domain::time::now_millis()
    );
    let catcher = history(&api, viewer, "catcher").await;
    assert_eq!(catcher["history"].as_array().unwrap().len(), 1, "caught up once: {catcher}");

    // Deleted: no more firings; its jobs stay on record.
    let deleted =
        cairn(&api.url, contributor, &["schedule", "delete", "every-minute", "--project", "churn"]);
    assert!(deleted.status.success());
    let listed = api.ok(viewer, "GET", "/api/v1/projects/churn/jobs?limit=500", None).await;
    assert!(listed.as_array().unwrap().len() >= 3);
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedules_fire_once_each_on_sqlite() {
    schedules_fire_once_each(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedules_fire_once_each_on_postgres() {
    schedules_fire_once_each(Backend::Postgres).await;
}
