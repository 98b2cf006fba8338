//! Server processes under test: starting Cairn or MLflow on a free port with fresh temporary
//! directories, timing the start until the health endpoint answers, sampling memory over the
//! whole process tree, and killing the process group at the end (also on drop, as a safety net).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::procfs;

/// Which server to start and from which executable.
#[derive(Debug, Clone)]
pub enum ServerSpec {
    /// `cairn serve --port P --data-dir DIR` (embedded SQLite).
    Cairn {
        /// Path of the release `cairn` binary.
        bin: PathBuf,
        /// Start with `--auth enabled` (every request then carries the bootstrap admin token).
        auth: bool,
        /// More `cairn serve` arguments (e.g. `--database-url`, `--artifacts`).
        extra_args: Vec<String>,
    },
    /// `mlflow server` on SQLite with the artifact proxy, default uvicorn workers.
    Mlflow {
        /// Path of the `mlflow` console script.
        bin: PathBuf,
    },
    /// `mlflow models serve -m <model_uri> --env-manager local -w 1` (MLflow's scoring server),
    /// reading the registry at `tracking_uri`.
    MlflowServe {
        /// Path of the `mlflow` console script; its directory goes first on `PATH`, because the
        /// command runs `uvicorn` from there.
        bin: PathBuf,
        /// The model, e.g. `models:/bench-lr/1`.
        model_uri: String,
        /// `MLFLOW_TRACKING_URI` of the store the model is registered in.
        tracking_uri: String,
    },
}

impl ServerSpec {
    /// Returns the human-readable name used in progress lines and the report.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Cairn { auth: true, .. } => "cairn+auth",
            Self::Cairn { .. } => "cairn",
            Self::Mlflow { .. } => "mlflow",
            Self::MlflowServe { .. } => "mlflow-serve",
        }
    }

    fn health_path(&self) -> &'static str {
        match self {
            Self::Cairn { .. } => "/healthz",
            Self::Mlflow { .. } => "/health",
            Self::MlflowServe { .. } => "/ping",
        }
    }

    fn startup_timeout(&self) -> Duration {
        match self {
            Self::Cairn { .. } => Duration::from_secs(30),
            Self::Mlflow { .. } | Self::MlflowServe { .. } => Duration::from_secs(180),
        }
    }

    fn command(&self, port: u16, dir: &Path) -> Command {
        match self {
            Self::Cairn { bin, auth, extra_args } => {
                let mut command = Command::new(bin);
                command
                    .arg("serve")
                    .arg("--port")
                    .arg(port.to_string())
                    .arg("--data-dir")
                    .arg(dir.join("data"));
                if *auth {
                    command.arg("--auth").arg("enabled");
                }
                command.args(extra_args);
                command
            }
            Self::Mlflow { bin } => {
                let mut command = Command::new(bin);
                command
                    .arg("server")
                    .arg("--backend-store-uri")
                    .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
                    .arg("--artifacts-destination")
                    .arg(dir.join("art"))
                    .arg("--serve-artifacts")
                    .arg("--host")
                    .arg("127.0.0.1")
                    .arg("--port")
                    .arg(port.to_string());
                command
            }
            Self::MlflowServe { bin, model_uri, tracking_uri } => {
                let mut command = Command::new(bin);
                command
                    .arg("models")
                    .arg("serve")
                    .arg("-m")
                    .arg(model_uri)
                    .arg("--env-manager")
                    .arg("local")
                    .arg("-w")
                    .arg("1")
                    .arg("-h")
                    .arg("127.0.0.1")
                    .arg("-p")
                    .arg(port.to_string())
                    .env("MLFLOW_TRACKING_URI", tracking_uri);
                if let Some(bin_dir) = bin.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    let inherited = std::env::var_os("PATH").unwrap_or_default();
                    let paths = std::iter::once(bin_dir.to_path_buf())
                        .chain(std::env::split_paths(&inherited));
                    if let Ok(path) = std::env::join_paths(paths) {
                        command.env("PATH", path);
                    }
                }
                command
            }
        }
    }
}

/// Memory of a server's process tree, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryReport {
    /// Largest sum of VmRSS over the tree among the periodic samples.
    pub sampled_peak_kib: u64,
    /// Sum of VmHWM (each process's own peak) over the tree when measured.
    pub hwm_sum_kib: u64,
    /// Number of processes in the tree when measured.
    pub processes: usize,
    /// Number of RSS samples taken.
    pub samples: u64,
}

/// A running server in its own process group, killed when stopped or dropped.
pub struct Server {
    /// Base URL, e.g. `http://127.0.0.1:5123`.
    pub base_url: String,
    label: &'static str,
    child: Child,
    pid: u32,
    dir: TempDir,
    peak_kib: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    sampler: Option<tokio::task::JoinHandle<()>>,
    stopped: bool,
}

/// Returns a port that was free a moment ago (bind to port 0, read it, release it).
fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe socket to port 0")?;
    Ok(listener.local_addr().context("reading the probe socket address")?.port())
}

impl Server {
    /// The server's temporary directory (MLflow's database is `mlflow.db` in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the server (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The bootstrap admin token of a Cairn started with `--auth enabled`, if there is one.
    pub fn bootstrap_token(&self) -> Option<String> {
        let path = self.dir.path().join("data").join("bootstrap-admin-token");
        std::fs::read_to_string(path).ok().map(|token| token.trim().to_string())
    }

    /// Starts the server with fresh directories and waits until its health endpoint answers 200.
    /// Returns the server and the time from spawn to the first healthy answer.
    pub async fn start(spec: &ServerSpec, http: &reqwest::Client) -> Result<(Self, Duration)> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("cairn-bench-{}-", spec.label()))
            .tempdir()
            .context("creating a temporary directory")?;
        let port = free_port()?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let mut command = spec.command(port, dir.path());
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        // Its own process group, so the whole tree (uvicorn workers, job runners) can be killed.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("spawning {} ({:?})", spec.label(), command.get_program()))?;
        let pid = child.id();
        let mut server = Self {
            base_url: format!("http://127.0.0.1:{port}"),
            label: spec.label(),
            child,
            pid,
            dir,
            peak_kib: Arc::new(AtomicU64::new(0)),
            samples: Arc::new(AtomicU64::new(0)),
            sampler: None,
            stopped: false,
        };
        let healthy = server.wait_healthy(spec, http, started).await;
        let elapsed = match healthy {
            Ok(elapsed) => elapsed,
            Err(error) => {
                let tail = server.log_tail();
                server.kill_now();
                return Err(error.context(format!("{} log tail:\n{tail}", spec.label())));
            }
        };
        server.start_sampler();
        Ok((server, elapsed))
    }

    async fn wait_healthy(
        &mut self,
        spec: &ServerSpec,
        http: &reqwest::Client,
        started: Instant,
    ) -> Result<Duration> {
        let url = format!("{}{}", self.base_url, spec.health_path());
        let deadline = started + spec.startup_timeout();
        loop {
            if let Some(status) = self.child.try_wait().context("polling the child process")? {
                bail!("{} exited during startup with {status}", self.label);
            }
            let answer = http.get(&url).timeout(Duration::from_secs(2)).send().await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                bail!("{} not healthy at {url} after {:?}", self.label, spec.startup_timeout());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn start_sampler(&mut self) {
        let pid = self.pid;
        let peak = Arc::clone(&self.peak_kib);
        let samples = Arc::clone(&self.samples);
        self.sampler = Some(tokio::spawn(async move {
            loop {
                let tree = procfs::process_tree(pid);
                let rss: u64 = tree.iter().filter_map(|p| procfs::status_kib(*p, "VmRSS:")).sum();
                peak.fetch_max(rss, Ordering::Relaxed);
                samples.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }

    /// Measures memory now (sum of VmHWM over the tree) together with the sampled peak RSS.
    pub fn memory(&self) -> MemoryReport {
        let tree = procfs::process_tree(self.pid);
        let rss: u64 = tree.iter().filter_map(|p| procfs::status_kib(*p, "VmRSS:")).sum();
        self.peak_kib.fetch_max(rss, Ordering::Relaxed);
        MemoryReport {
            sampled_peak_kib: self.peak_kib.load(Ordering::Relaxed),
            hwm_sum_kib: tree.iter().filter_map(|p| procfs::status_kib(*p, "VmHWM:")).sum(),
            processes: tree.len(),
            samples: self.samples.load(Ordering::Relaxed),
        }
    }

    fn log_tail(&self) -> String {
        let path = self.dir.path().join("server.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the server: SIGTERM to its process group, then SIGKILL to whatever is left.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(sampler) = self.sampler.take() {
            sampler.abort();
        }
        let tree = procfs::process_tree(self.pid);
        procfs::signal_group(self.pid, "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let leader_gone = self.child.try_wait().context("polling the child")?.is_some();
            if leader_gone && procfs::group_members(self.pid).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_now_with(&tree);
        Ok(())
    }

    fn kill_now(&mut self) {
        let tree = procfs::process_tree(self.pid);
        self.kill_now_with(&tree);
    }

    /// Sends SIGKILL to the group and to any recorded descendant that left the group, then reaps.
    fn kill_now_with(&mut self, tree: &[u32]) {
        if let Some(sampler) = self.sampler.take() {
            sampler.abort();
        }
        if !procfs::group_members(self.pid).is_empty() {
            let _ignored = procfs::signal_group(self.pid, "KILL");
        }
        for pid in tree.iter().filter(|pid| procfs::is_alive(**pid)) {
            let _ignored = procfs::signal_pid(*pid, "KILL");
        }
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
        self.stopped = true;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            eprintln!("[bench] killing {} (pid {}) on drop", self.label, self.pid);
            self.kill_now();
        }
    }
}
