//! The jobs scenario, in process on the embedded defaults (SQLite, local files, local executor):
//!
//! 1. Queue-to-running latency: a job whose command is `date +%s%N` is submitted through the
//!    service layer (the job and its run written, the dispatcher woken, the job claimed, its
//!    snapshot materialised, its environment checked, a token and secrets prepared, the process
//!    spawned in its cgroup); the time it prints minus the submission time is the latency. The
//!    same command spawned directly from Rust is the "process start" baseline; the difference is
//!    what Cairn adds (target: under 200 ms).
//! 2. Scheduler overhead: one dispatcher + schedule pass (`JobService::run_once`) timed with
//!    0, 1,000 and 10,000 schedules that are not due (target: flat).
//! 3. Dataset push: `cairn dataset push` of 10,000 small files (target: under 10 s), then the
//!    same directory with one file changed (one upload).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{
    EnvironmentDefinition, JobState, JobTemplate, MissedPolicy, RevisionState, SnapshotFile,
    TierSpec,
};

/// The target for what Cairn adds to a local job's start.
pub const LATENCY_TARGET_MS: f64 = 200.0;

/// Sizes of the jobs scenario.
#[derive(Debug, Clone)]
pub struct JobsSizes {
    /// Jobs timed for latency.
    pub jobs: usize,
    /// Schedule counts of the overhead series.
    pub schedules: Vec<usize>,
    /// Timed passes per schedule count.
    pub passes: usize,
    /// Files of the dataset push (0 skips it).
    pub dataset_files: usize,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct JobsOutcome {
    /// Submit-to-process-start latencies of jobs, ms.
    pub job_latency_ms: Vec<f64>,
    /// Direct spawn latencies of the same command, ms.
    pub spawn_latency_ms: Vec<f64>,
    /// (schedules, pass times in ms).
    pub passes: Vec<(usize, Vec<f64>)>,
    /// How the local executor limits memory here.
    pub memory_enforcement: String,
    /// (files, first push seconds, second push seconds) of the dataset push.
    pub dataset_push: Option<(usize, f64, f64)>,
}

/// Pushes `files` small files as a dataset with the CLI, then again with one file changed.
fn dataset_push(cairn_bin: &Path, url: &str, files: usize) -> Result<(usize, f64, f64)> {
    let dir = tempfile::tempdir()?;
    for index in 0..files {
        let sub = dir.path().join(format!("part-{:03}", index / 100));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(
            sub.join(format!("row-{index}.json")),
            format!("{{\"id\": {index}, \"value\": {}}}\n", index * 7),
        )?;
    }
    let push = || -> Result<f64> {
        let started = Instant::now();
        let output = std::process::Command::new(cairn_bin)
            .args([
                "dataset",
                "push",
                "events",
                dir.path().to_str().unwrap_or_default(),
                "--project",
                "default",
            ])
            .env("CAIRN_SERVER", url)
            .env_remove("CAIRN_TOKEN")
            .output()?;
        if !output.status.success() {
            bail!("cairn dataset push failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        eprintln!("{}", String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or_default());
        Ok(started.elapsed().as_secs_f64())
    };
    let first = push()?;
    std::fs::write(dir.path().join("part-000/row-0.json"), "{\"id\": 0, \"value\": -1}\n")?;
    let second = push()?;
    Ok((files, first, second))
}

fn now_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as i128)
}

fn percentile(values: &[f64], share: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * share).round() as usize;
    sorted[index]
}

/// Runs the scenario with `python` as the base interpreter of the (empty) job environment.
pub async fn run(python: &Path, cairn_bin: &Path, sizes: &JobsSizes) -> Result<JobsOutcome> {
    let dir = tempfile::tempdir()?;
    let mut config = cairn::Config::embedded(dir.path().join("data"));
    config.python = python.to_path_buf();
    config.compute.tick = Duration::from_millis(100);
    let memory_enforcement = {
        let probe = cairn_exec::LocalExecutor::new(cairn_exec::LocalConfig::new(
            dir.path().join("probe"),
            python,
        ))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
        probe.memory_enforcement().to_string()
    };
    let app = cairn::App::build(&config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    let services = &app.services;
    let context = RequestContext::system();

    let definition = EnvironmentDefinition { python: None, requirements: Vec::new(), image: None };
    services.catalog.create_environment(&context, "bare", "bench", &definition).await?;
    services.catalog.set_revision_state(&context, "bare", 1, RevisionState::Approved).await?;
    let tier = TierSpec {
        cpu: 1.0,
        memory_mib: 512,
        gpus: 0,
        max_runtime_s: 60,
        cost_per_hour: 0.0,
        executor: None,
    };
    services.catalog.put_tier(&context, "bench", &tier, true).await?;
    let content = b"print('hello')\n".to_vec();
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&content))
    };
    let body =
        futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(content.clone()))]);
    services.files.put_blob(&context, "default", &sha256, body).await?;
    let file = SnapshotFile {
        path: "main.py".into(),
        sha256,
        size: content.len() as u64,
        executable: false,
    };
    services.files.create_snapshot(&context, "default", vec![file], "bench").await?;

    let template = JobTemplate {
        command: vec!["date".into(), "+%s%N".into()],
        environment: "bare".into(),
        environment_revision: None,
        tier: "bench".into(),
        snapshot: None,
        experiment: None,
        run_name: None,
        env: Default::default(),
        datasets: Vec::new(),
    };
    // One untimed job builds the environment and warms every path.
    run_job(services, &context, &template).await.context("the warm-up job")?;
    eprintln!("jobs: environment ready; timing {} jobs", sizes.jobs);
    let mut job_latency_ms = Vec::with_capacity(sizes.jobs);
    for _ in 0..sizes.jobs {
        job_latency_ms.push(run_job(services, &context, &template).await?);
    }
    let mut spawn_latency_ms = Vec::with_capacity(sizes.jobs);
    for _ in 0..sizes.jobs {
        let submitted = now_ns();
        let output = tokio::process::Command::new("date").arg("+%s%N").output().await?;
        let started: i128 = String::from_utf8_lossy(&output.stdout).trim().parse()?;
        spawn_latency_ms.push((started - submitted) as f64 / 1e6);
    }

    let project_id = services
        .projects
        .authorize(&context, "default", cairn_domain::identity::Access::Read)
        .await?
        .id;
    let mut passes = Vec::new();
    let mut created = 0_usize;
    for &count in &sizes.schedules {
        let started = Instant::now();
        while created < count {
            let settings = cairn_store::ScheduleSettings {
                cron: "0 3 * * *",
                timezone: "UTC",
                template: &template,
                missed: MissedPolicy::Skip,
                enabled: true,
                next_run_at: cairn_domain::time::now_millis() + 86_400_000,
            };
            app.store
                .create_schedule(&context, project_id, &format!("s{created}"), None, &settings)
                .await?;
            created += 1;
        }
        if count > 0 {
            eprintln!(
                "jobs: {count} schedules in place ({:.1} s to create)",
                started.elapsed().as_secs_f64()
            );
        }
        services.jobs.run_once().await?;
        let mut times = Vec::with_capacity(sizes.passes);
        for _ in 0..sizes.passes {
            let pass = Instant::now();
            services.jobs.run_once().await?;
            times.push(pass.elapsed().as_secs_f64() * 1000.0);
        }
        passes.push((count, times));
    }
    let dataset_push = if sizes.dataset_files > 0 {
        let (bin, files) = (cairn_bin.to_path_buf(), sizes.dataset_files);
        let url = url.clone();
        Some(tokio::task::spawn_blocking(move || dataset_push(&bin, &url, files)).await??)
    } else {
        None
    };
    let _ = stop.send(());
    let _ = server.await;
    Ok(JobsOutcome { job_latency_ms, spawn_latency_ms, passes, memory_enforcement, dataset_push })
}

/// Submits one job and returns submit-to-process-start in ms (from the time the job printed).
async fn run_job(
    services: &cairn_service::Services,
    context: &RequestContext,
    template: &JobTemplate,
) -> Result<f64> {
    let submitted = now_ns();
    let job = services.jobs.submit(context, "default", template).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let current = services.jobs.get(context, "default", job.id).await?;
        if current.state.is_terminal() {
            break current;
        }
        if Instant::now() > deadline {
            bail!("job {} did not end within 120 s", job.id);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    if job.state != JobState::Succeeded {
        bail!("job {} ended {}: {:?}", job.id, job.state.as_str(), job.reason);
    }
    let log = services.jobs.logs(context, "default", job.id, 0).await?;
    let text = String::from_utf8_lossy(&log.bytes);
    let started: i128 = text
        .lines()
        .find_map(|line| line.trim().parse().ok())
        .with_context(|| format!("job {} printed no time: {text:?}", job.id))?;
    Ok((started - submitted) as f64 / 1e6)
}

/// The scenario's report.
pub fn render(outcome: &JobsOutcome) -> String {
    let mut out = String::from("## Jobs: queue-to-running latency and scheduler overhead\n\n");
    let (job_p50, spawn_p50) =
        (percentile(&outcome.job_latency_ms, 0.5), percentile(&outcome.spawn_latency_ms, 0.5));
    out.push_str(&format!(
        "Local executor, memory limits by {}; {} jobs of `date +%s%N`, one at a time.\n\n",
        outcome.memory_enforcement,
        outcome.job_latency_ms.len()
    ));
    out.push_str("| path | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|\n");
    for (name, values) in [
        ("submit → process start (Cairn job)", &outcome.job_latency_ms),
        ("spawn → process start (direct)", &outcome.spawn_latency_ms),
    ] {
        out.push_str(&format!(
            "| {name} | {:.1} | {:.1} | {:.1} |\n",
            percentile(values, 0.5),
            percentile(values, 0.95),
            percentile(values, 1.0)
        ));
    }
    let added = job_p50 - spawn_p50;
    out.push_str(&format!(
        "\nCairn adds {added:.1} ms (p50) beyond process start; target < {LATENCY_TARGET_MS:.0} ms: {}\n\n",
        if added < LATENCY_TARGET_MS { "met" } else { "MISSED" }
    ));
    out.push_str("| schedules (none due) | pass p50 ms | pass p95 ms |\n|---:|---:|---:|\n");
    for (count, times) in &outcome.passes {
        out.push_str(&format!(
            "| {count} | {:.2} | {:.2} |\n",
            percentile(times, 0.5),
            percentile(times, 0.95)
        ));
    }
    if let Some((files, first, second)) = outcome.dataset_push {
        out.push_str(&format!(
            "\n`cairn dataset push` of {files} small files: {first:.1} s (target < 10 s: {}); again with one file changed: {second:.1} s\n",
            if first < 10.0 { "met" } else { "MISSED" }
        ));
    }
    out
}
