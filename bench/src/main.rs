//! `cairn-bench`: drives the same HTTP workload against Cairn and stock MLflow, each started
//! here with fresh temporary directories and a free port, and prints a markdown table of the
//! results, their ratios and the targets.
//!
//! Progress goes to stderr, the report to stdout. The exit status is non-zero only for harness
//! errors (a server that cannot start, a broken flag); missed targets and failed requests are
//! reported in the table.

mod client;
mod drift;
mod jobs;
mod load;
mod mixed;
mod procfs;
mod registry;
mod report;
mod server;
mod serving;
mod ui;
mod workload;
mod workspaces;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::client::Api;
use crate::registry::RegistrySizes;
use crate::report::ServerResults;
use crate::server::{Server, ServerSpec};
use crate::serving::{ServingSizes, ServingTools};

/// Side-by-side benchmark of Cairn against stock MLflow (SQLite) on this machine.
#[derive(Debug, Parser)]
#[command(name = "cairn-bench", about, long_about = None)]
struct Args {
    /// Runs in workload (a), each runs/create + one log-batch of 5 params, 5 metrics, 1 tag
    /// [default: 2000, 500 with --quick].
    #[arg(long)]
    runs: Option<usize>,
    /// log-batch calls of 10 keys × 100 steps in workload (b) [default: 200, 50 with --quick].
    #[arg(long)]
    batch_calls: Option<usize>,
    /// Concurrent clients for (a), (b) and the seeding.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Runs in the searched experiment of workload (c) [default: 10000, 2000 with --quick].
    #[arg(long)]
    search_runs: Option<usize>,
    /// Timed runs/search calls in workload (c), after one untimed warm-up call.
    #[arg(long, default_value_t = 30)]
    search_repeats: usize,
    /// Registered models seeded for the registry scenario [default: 500, 100 with --quick].
    #[arg(long)]
    registry_models: Option<usize>,
    /// Versions seeded per registered model [default: 20].
    #[arg(long, default_value_t = 20)]
    registry_versions_per_model: usize,
    /// Timed calls of each registry search, after three untimed ones.
    #[arg(long, default_value_t = 30)]
    registry_repeats: usize,
    /// Measured seconds of each serving load run, after the warm-up [default: 15, 5 with --quick].
    #[arg(long)]
    serving_duration: Option<u64>,
    /// Untimed seconds of sending before each serving load run's window.
    #[arg(long, default_value_t = 3)]
    serving_warm_up: u64,
    /// Concurrent connections of the serving throughput runs (each also runs with 1).
    #[arg(long, default_value_t = 8)]
    serving_connections: usize,
    /// Timed one-row in-process calls, for tract and for onnxruntime [default: 5000, 1000 with
    /// --quick].
    #[arg(long)]
    inproc_calls: Option<usize>,
    /// Run only this scenario: `tracking` (workloads a, b, c), `registry`, `serving` or
    /// `drift` [default: the first three, in that order; `drift` runs only when asked for].
    #[arg(long, value_enum)]
    only: Option<Scenario>,
    /// Load scenario: seconds of the measured mixed workload.
    #[arg(long, default_value_t = 600)]
    load_duration: u64,
    /// Load scenario: seconds of the same mix before it (untimed; the baseline for memory and
    /// file descriptors is taken after it).
    #[arg(long, default_value_t = 60)]
    load_warm_up: u64,
    /// Load scenario: closed-loop clients, one connection and one request in flight each.
    #[arg(long, default_value_t = 8)]
    load_concurrency: usize,
    /// Load scenario: relative weights, `key=weight,…` with keys log, history, search, upload,
    /// download, infer, native (runs are created as needed) [default:
    /// log=30,history=10,search=5,upload=5,download=10,infer=30,native=5].
    #[arg(long)]
    load_mix: Option<mixed::Mix>,
    /// Load scenario: `--database-url` of an empty database (default: SQLite in the data dir).
    #[arg(long)]
    load_database_url: Option<String>,
    /// Load scenario: `--artifacts` root, e.g. `s3://bucket/prefix` (default: local files).
    #[arg(long)]
    load_artifacts: Option<String>,
    /// Load scenario: `--s3-endpoint`; region and keys come from `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[arg(long)]
    load_s3_endpoint: Option<String>,
    /// Jobs scenario: jobs timed for queue-to-running latency.
    #[arg(long, default_value_t = 30)]
    jobs: usize,
    /// Workspaces scenario: timed HTTP requests per path (through Cairn, direct).
    #[arg(long, default_value_t = 2000)]
    workspace_requests: usize,
    /// Workspaces scenario: kernel messages sent back to back per round.
    #[arg(long, default_value_t = 2000)]
    workspace_messages: usize,
    /// Workspaces scenario: 1 MiB kernel replies asked for per round.
    #[arg(long, default_value_t = 64)]
    workspace_bulk_mib: usize,
    /// Workspaces scenario: timed WebSocket rounds per path.
    #[arg(long, default_value_t = 5)]
    workspace_rounds: usize,
    /// Workspaces scenario: the JupyterLab requirement of the workspace's environment.
    #[arg(long, default_value = "jupyterlab==4.6.6")]
    workspace_jupyterlab: String,
    /// Where the workspaces scenario caches its environment [default:
    /// $CARGO_TARGET_DIR/cairn-bench-envs, else a directory under the system's temp dir].
    #[arg(long)]
    env_cache: Option<PathBuf>,
    /// Drift scenario: rows per side of the comparison with Evidently.
    #[arg(long, default_value_t = 100_000)]
    drift_rows: usize,
    /// Drift scenario: timed in-process repetitions and `cairn drift` runs.
    #[arg(long, default_value_t = 5)]
    drift_repeats: usize,
    /// Drift scenario: timed Evidently runs (after one untimed warm-up on 200 rows).
    #[arg(long, default_value_t = 3)]
    evidently_repeats: usize,
    /// Drift scenario: rows per side of the Cairn-only scaling series, comma-separated (0 to
    /// skip).
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    drift_scaling: Vec<usize>,
    /// UI scenario: runs in the experiment.
    #[arg(long, default_value_t = 100_000)]
    ui_runs: usize,
    /// UI scenario: timed requests of each query on Cairn.
    #[arg(long, default_value_t = 20)]
    ui_repeats: usize,
    /// UI scenario: timed requests of each query on MLflow (slow at this size).
    #[arg(long, default_value_t = 5)]
    ui_mlflow_repeats: usize,
    /// UI scenario: seconds one MLflow call may take before it is recorded as unanswered.
    #[arg(long, default_value_t = 300)]
    ui_mlflow_timeout_s: u64,
    /// UI scenario: warm browser loads per UI after the cold one (0 to skip the browser).
    #[arg(long, default_value_t = 3)]
    ui_browser_loads: usize,
    /// UI scenario: the deep page timed (1-based, 100 runs a page).
    #[arg(long, default_value_t = 101)]
    ui_deep_page: usize,
    /// Cairn cold starts measured before the benchmarked instance (which is timed too).
    #[arg(long, default_value_t = 4)]
    cold_starts: usize,
    /// Smaller sizes for a smoke run; explicit size flags still win.
    #[arg(long)]
    quick: bool,
    /// Cairn release binary [default: $CARGO_TARGET_DIR/release/cairn, else target/release/cairn].
    #[arg(long)]
    cairn_bin: Option<PathBuf>,
    /// The `mlflow` console script of an MLflow 3.17.2 install [default: `mlflow` beside
    /// $CAIRN_TEST_PYTHON (the test venv), else on PATH].
    #[arg(long)]
    mlflow_bin: Option<PathBuf>,
    /// Python with mlflow, scikit-learn, skl2onnx and onnxruntime, for the serving scenario's
    /// `serving_models.py` [default: $CAIRN_TEST_PYTHON, else `python` beside the `mlflow`
    /// script, else `python3` on PATH].
    #[arg(long)]
    python: Option<PathBuf>,
    /// Benchmark Cairn only (no ratios).
    #[arg(long)]
    skip_mlflow: bool,
    /// Also run Cairn with `--auth enabled` (token on every request) and report the overhead.
    #[arg(long)]
    with_auth: bool,
}

/// A group of workloads that `--only` can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Workloads (a), (b) and (c): runs, metric batches, run search.
    Tracking,
    /// Model registry: seed registered models and versions, then time registry searches.
    Registry,
    /// Model serving: `mlflow models serve` against Cairn's ONNX deployments, single-row
    /// requests, and tract against onnxruntime in process.
    Serving,
    /// Drift statistics: Evidently's `DataDriftPreset` against Cairn in process and through
    /// `cairn drift`, then Cairn alone at larger sizes.
    Drift,
    /// Jobs: queue-to-running latency of local jobs, scheduler overhead with many schedules.
    Jobs,
    /// Workspaces: Cairn's proxy against direct JupyterLab (HTTP latency, kernel WebSocket
    /// messages and bytes).
    Workspaces,
    /// The web UI's runs table at 100,000 runs against MLflow's UI on the same data.
    Ui,
    /// Load: a sustained mixed workload (logging, searching, artifacts, inference) against one
    /// Cairn with authentication on; errors, latency per class, memory and file descriptors.
    Load,
}

/// Workload sizes after applying `--quick` and explicit flags, and which scenarios run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    runs: usize,
    batch_calls: usize,
    search_runs: usize,
    clients: usize,
    search_repeats: usize,
    tracking: bool,
    registry: Option<RegistrySizes>,
    serving: Option<ServingSizes>,
}

/// Steps per metric key in workload (b): 10 keys × 100 steps = 1000 points per request.
const BATCH_STEPS: usize = 100;
/// Untimed runs created on each server before measuring, to warm every worker.
const WARM_UP_RUNS: usize = 20;

impl Args {
    fn sizes(&self) -> Sizes {
        let pick = |explicit: Option<usize>, full: usize, quick: usize| {
            explicit.unwrap_or(if self.quick { quick } else { full })
        };
        Sizes {
            runs: pick(self.runs, 2000, 500),
            batch_calls: pick(self.batch_calls, 200, 50),
            search_runs: pick(self.search_runs, 10_000, 2000),
            clients: self.clients.max(1),
            search_repeats: self.search_repeats.max(1),
            tracking: self.only.is_none_or(|only| only == Scenario::Tracking),
            registry: self.only.is_none_or(|only| only == Scenario::Registry).then(|| {
                RegistrySizes {
                    models: pick(self.registry_models, 500, 100),
                    versions_per_model: self.registry_versions_per_model,
                    repeats: self.registry_repeats.max(1),
                    clients: self.clients.max(1),
                }
            }),
            serving: self.only.is_none_or(|only| only == Scenario::Serving).then(|| ServingSizes {
                duration: Duration::from_secs(
                    self.serving_duration.unwrap_or(if self.quick { 5 } else { 15 }).max(1),
                ),
                warm_up: Duration::from_secs(self.serving_warm_up),
                connections: self.serving_connections.max(1),
                inproc_calls: pick(self.inproc_calls, 5000, 1000).max(1),
            }),
        }
    }

    fn python(&self) -> PathBuf {
        if let Some(python) = &self.python {
            return python.clone();
        }
        if let Some(python) = std::env::var_os("CAIRN_TEST_PYTHON") {
            return PathBuf::from(python);
        }
        let beside = self.mlflow_bin().with_file_name("python");
        if beside.is_file() {
            return beside;
        }
        PathBuf::from("python3")
    }

    fn mlflow_bin(&self) -> PathBuf {
        if let Some(bin) = &self.mlflow_bin {
            return bin.clone();
        }
        if let Some(python) = std::env::var_os("CAIRN_TEST_PYTHON") {
            let beside = PathBuf::from(python).with_file_name("mlflow");
            if beside.is_file() {
                return beside;
            }
        }
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("mlflow"))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| PathBuf::from("mlflow"))
    }

    fn cairn_bin(&self) -> PathBuf {
        if let Some(bin) = &self.cairn_bin {
            return bin.clone();
        }
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        );
        target.join("release/cairn")
    }
}

fn progress(message: &str) {
    eprintln!("[bench] {message}");
}

fn load() -> String {
    procfs::load_average().unwrap_or_else(|| "unknown".into())
}

/// Starts a server, runs every workload against it, measures memory and stops it.
async fn bench_server(
    spec: &ServerSpec,
    sizes: Sizes,
    extra_starts: usize,
) -> Result<ServerResults> {
    let label = spec.label();
    let health = reqwest::Client::builder().build().context("building the health client")?;
    let mut results = ServerResults::default();
    for attempt in 0..extra_starts {
        let (server, elapsed) = Server::start(spec, &health).await?;
        progress(&format!("{label} cold start {}: {} ms", attempt + 1, elapsed.as_millis()));
        results.start_times.push(elapsed);
        server.stop().await?;
    }
    let (server, elapsed) = Server::start(spec, &health).await?;
    progress(&format!(
        "{label} healthy in {} ms at {} (load {})",
        elapsed.as_millis(),
        server.base_url,
        load()
    ));
    results.start_times.push(elapsed);
    let api = Api::new(&server.base_url, sizes.clients, server.bootstrap_token().as_deref())?;
    if sizes.tracking {
        run_workloads(&api, label, sizes, &mut results).await?;
    }
    if let Some(registry) = sizes.registry {
        progress(&format!(
            "{label} registry: seeding {} models × {} versions with {} clients",
            registry.models, registry.versions_per_model, registry.clients
        ));
        results.registry = Some(registry::run(&api, label, registry).await);
    }
    results.memory = server.memory();
    results.requests = api.request_count();
    results.failure_count = api.failure_count();
    results.failures = api.failures();
    progress(&format!(
        "{label} done: VmHWM sum {} KiB over {} processes, {} failed requests (load {})",
        results.memory.hwm_sum_kib,
        results.memory.processes,
        results.failure_count,
        load()
    ));
    server.stop().await?;
    Ok(results)
}

async fn run_workloads(
    api: &Api,
    label: &str,
    sizes: Sizes,
    results: &mut ServerResults,
) -> Result<()> {
    let warm_up =
        api.create_experiment("bench-warmup").await.context("creating the warm-up experiment")?;
    workload::small_runs(api, &format!("{label} warm-up"), &warm_up, WARM_UP_RUNS, sizes.clients)
        .await;

    progress(&format!("{label} (a): {} runs with {} clients", sizes.runs, sizes.clients));
    let experiment = api.create_experiment("bench-a").await.context("creating experiment (a)")?;
    results.small_runs =
        workload::small_runs(api, &format!("{label} (a)"), &experiment, sizes.runs, sizes.clients)
            .await;

    progress(&format!(
        "{label} (b): {} log-batch calls of {} points",
        sizes.batch_calls,
        10 * BATCH_STEPS
    ));
    let experiment = api.create_experiment("bench-b").await.context("creating experiment (b)")?;
    results.points_per_batch = 10 * BATCH_STEPS;
    results.large_batches = workload::large_batches(
        api,
        &format!("{label} (b)"),
        &experiment,
        sizes.batch_calls,
        BATCH_STEPS,
        sizes.clients,
    )
    .await;

    progress(&format!("{label} (c): seeding {} runs", sizes.search_runs));
    let experiment = api.create_experiment("bench-c").await.context("creating experiment (c)")?;
    results.seed = workload::small_runs(
        api,
        &format!("{label} seed"),
        &experiment,
        sizes.search_runs,
        sizes.clients,
    )
    .await;

    progress(&format!("{label} (c): {} searches", sizes.search_repeats));
    results.search = workload::search(api, &experiment, sizes.search_repeats).await;
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    if args.only == Some(Scenario::Jobs) {
        let sizes = jobs::JobsSizes {
            jobs: args.jobs.max(1),
            schedules: vec![0, 1_000, 10_000],
            passes: 50,
            dataset_files: 10_000,
        };
        let outcome = jobs::run(&args.python(), &args.cairn_bin(), &sizes).await?;
        println!(
            "Machine: {} cores; load average {}\n",
            std::thread::available_parallelism().map_or(0, usize::from),
            load()
        );
        println!("{}", jobs::render(&outcome));
        return Ok(());
    }
    if args.only == Some(Scenario::Load) {
        return run_load(&args).await;
    }
    if args.only == Some(Scenario::Workspaces) {
        let sizes = workspaces::WorkspacesSizes {
            requests: args.workspace_requests.max(10),
            messages: args.workspace_messages.max(1),
            bulk_mib: args.workspace_bulk_mib.max(1),
            rounds: args.workspace_rounds.max(1),
            jupyterlab: args.workspace_jupyterlab.clone(),
        };
        let env_cache = args.env_cache.clone().unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(std::env::temp_dir, PathBuf::from)
                .join("cairn-bench-envs")
        });
        let outcome = workspaces::run(&args.python(), &env_cache, &sizes).await?;
        println!(
            "Machine: {} cores; load average {}\n",
            std::thread::available_parallelism().map_or(0, usize::from),
            load()
        );
        println!("{}", workspaces::render(&outcome));
        return Ok(());
    }
    if args.only == Some(Scenario::Ui) {
        let sizes = ui::UiSizes {
            runs: args.ui_runs.max(args.ui_deep_page * 100),
            clients: args.clients.max(1),
            repeats: args.ui_repeats.max(1),
            mlflow_repeats: args.ui_mlflow_repeats.max(1),
            mlflow_timeout: std::time::Duration::from_secs(args.ui_mlflow_timeout_s.max(1)),
            browser_loads: args.ui_browser_loads,
            deep_page: args.ui_deep_page.max(2),
        };
        let mlflow_bin = args.mlflow_bin();
        let mlflow = (!args.skip_mlflow).then_some(mlflow_bin.as_path());
        if let Some(bin) = mlflow
            && !bin.is_file()
        {
            bail!("no mlflow at {} (--mlflow-bin, or --skip-mlflow)", bin.display());
        }
        let outcome = ui::run(&args.cairn_bin(), mlflow, &args.python(), &sizes).await?;
        println!(
            "Machine: {} cores; load average {}\n",
            std::thread::available_parallelism().map_or(0, usize::from),
            load()
        );
        println!("{}", ui::render(&outcome));
        return Ok(());
    }
    let sizes = args.sizes();
    let cairn_bin = args.cairn_bin();
    if !cairn_bin.is_file() {
        bail!(
            "no Cairn binary at {} (cargo build --release -p cairn, or --cairn-bin)",
            cairn_bin.display()
        );
    }
    if args.with_auth && !sizes.tracking {
        bail!(
            "--with-auth compares the tracking workloads; it cannot be combined with --only registry or --only serving"
        );
    }
    let mlflow_bin = args.mlflow_bin();
    let drift_only = args.only == Some(Scenario::Drift);
    if !args.skip_mlflow && !drift_only && !mlflow_bin.is_file() {
        bail!("no mlflow at {} (--mlflow-bin, or --skip-mlflow)", mlflow_bin.display());
    }
    let python = args.python();
    if sizes.serving.is_some() && python.components().count() > 1 && !python.is_file() {
        bail!("no Python at {} (--python, or $CAIRN_TEST_PYTHON)", python.display());
    }
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let started_load = load();
    progress(&format!("{cores} cores, load average {started_load}, sizes {sizes:?}"));
    let started = Instant::now();

    let http_scenarios = sizes.tracking || sizes.registry.is_some();
    let mut sessions = None;
    if http_scenarios {
        sessions = Some(bench_sessions(&args, sizes, &cairn_bin, &mlflow_bin).await?);
    }
    let drift = if drift_only {
        let tools = drift::DriftTools { python: python.clone(), cairn_bin: cairn_bin.clone() };
        let drift_sizes = drift::DriftSizes {
            rows: args.drift_rows.max(1),
            repeats: args.drift_repeats.max(1),
            evidently_repeats: args.evidently_repeats.max(1),
            scaling: args.drift_scaling.iter().copied().filter(|&rows| rows > 0).collect(),
        };
        let outcome = tokio::task::spawn_blocking(move || drift::run(&tools, &drift_sizes))
            .await
            .context("the drift scenario panicked")??;
        Some(outcome)
    } else {
        None
    };
    let serving = match sizes.serving {
        Some(serving_sizes) => {
            let tools = ServingTools {
                python,
                mlflow_bin: (!args.skip_mlflow).then_some(mlflow_bin),
                cairn_bin,
            };
            Some(serving::run(&tools, serving_sizes).await?)
        }
        None => None,
    };

    println!("Machine: {cores} cores; load average at start {started_load}, at end {}", load());
    println!("Sizes: {sizes:?}; total wall time {:.0} s\n", started.elapsed().as_secs_f64());
    if let Some((cairn, auth_comparison, mlflow)) = &sessions {
        println!("{}", report::render(cairn, mlflow.as_ref(), sizes.clients, sizes.tracking));
        if let Some(registry) = &cairn.registry {
            let other = mlflow.as_ref().and_then(|m| m.registry.as_ref());
            println!("{}", report::render_registry(registry, other));
        }
        if let Some((plain, with_auth)) = auth_comparison {
            println!("{}", report::render_auth_overhead(plain, with_auth));
            print!("{}", report::render_failures("Cairn with auth", with_auth));
        }
        print!("{}", report::render_failures("Cairn", cairn));
        if let Some(mlflow) = mlflow {
            print!("{}", report::render_failures("MLflow", mlflow));
        }
    }
    if let Some(serving) = &serving {
        println!("{}", report::render_serving(serving));
    }
    if let Some(drift) = &drift {
        println!("{}", drift::render(drift));
    }
    Ok(())
}

/// The load scenario: prints its report, then fails when a request failed or memory or file
/// descriptors grew.
async fn run_load(args: &Args) -> Result<()> {
    let cairn_bin = args.cairn_bin();
    if !cairn_bin.is_file() {
        bail!(
            "no Cairn binary at {} (cargo build --release -p cairn, or --cairn-bin)",
            cairn_bin.display()
        );
    }
    let sizes = mixed::LoadSizes {
        duration: Duration::from_secs(args.load_duration.max(1)),
        warm_up: Duration::from_secs(args.load_warm_up),
        concurrency: args.load_concurrency.max(1),
        mix: args.load_mix.unwrap_or_default(),
        backend: mixed::LoadBackend {
            database_url: args.load_database_url.clone(),
            artifacts: args.load_artifacts.clone(),
            s3_endpoint: args.load_s3_endpoint.clone(),
        },
    };
    let outcome = mixed::run(&cairn_bin, sizes).await?;
    println!("{}", mixed::render(&outcome));
    let errors = outcome.warm_up.errors() + outcome.run.errors();
    let verdicts = mixed::verdicts(&outcome);
    if errors > 0 || !verdicts.rss_flat || !verdicts.fds_flat {
        bail!(
            "load: {errors} failed requests, memory {}, file descriptors {}",
            if verdicts.rss_flat { "flat" } else { "growing" },
            if verdicts.fds_flat { "flat" } else { "growing" }
        );
    }
    Ok(())
}

/// Cairn's session, the optional authentication comparison, and MLflow's session.
type Sessions = (ServerResults, Option<(ServerResults, ServerResults)>, Option<ServerResults>);

/// The tracking and registry scenarios: Cairn (and, with `--with-auth`, the A-B-B-A
/// authentication sessions), then MLflow.
async fn bench_sessions(
    args: &Args,
    sizes: Sizes,
    cairn_bin: &std::path::Path,
    mlflow_bin: &std::path::Path,
) -> Result<Sessions> {
    let plain_spec =
        ServerSpec::Cairn { bin: cairn_bin.to_path_buf(), auth: false, extra_args: Vec::new() };
    let cairn = bench_server(&plain_spec, sizes, args.cold_starts).await?;
    // Authentication overhead in A-B-B-A order (plain, auth, auth, plain), so that drift over the
    // session (the later of two identical runs was measured ~20 % slower here) cancels out.
    let auth_comparison = if args.with_auth {
        // The comparison covers the tracking workloads only.
        let tracking = Sizes { registry: None, ..sizes };
        let auth_spec =
            ServerSpec::Cairn { bin: cairn_bin.to_path_buf(), auth: true, extra_args: Vec::new() };
        let first_auth = bench_server(&auth_spec, tracking, 0).await?;
        let second_auth = bench_server(&auth_spec, tracking, 0).await?;
        let second_plain = bench_server(&plain_spec, tracking, 0).await?;
        Some((report::merge(&cairn, &second_plain), report::merge(&first_auth, &second_auth)))
    } else {
        None
    };
    let mlflow = if args.skip_mlflow {
        None
    } else {
        let spec = ServerSpec::Mlflow { bin: mlflow_bin.to_path_buf() };
        Some(bench_server(&spec, sizes, 0).await?)
    };
    Ok((cairn, auth_comparison, mlflow))
}

/// Resolves when SIGINT or SIGTERM arrives, so the servers are dropped (and killed) on the way out.
async fn interrupted() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    tokio::select! {
        result = run(args) => result,
        signal = interrupted() => {
            signal?;
            bail!("interrupted; servers stopped")
        }
    }
}
