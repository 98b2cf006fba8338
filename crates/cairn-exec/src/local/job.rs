//! One local job from start to end: its directory, its state (in memory and in `state.json`),
//! and the supervisor task that builds its environment, runs its process with limits, enforces
//! the time limit and stop requests, and uploads its outputs.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::Inner;
use super::cgroups::MemoryEnforcement;
use super::process::{Launch, base_env, describe_signal, signal_group};
use crate::spec::{JOB_ID_VAR, OUTPUTS_DIR_VAR};
use crate::{ExecError, JobSpec, JobState};

/// The job's combined stdout and stderr.
pub(crate) const LOG_FILE: &str = "output.log";
/// The job's last known state.
const STATE_FILE: &str = "state.json";
/// How much of the log end is searched for signs of a failed allocation (rlimit mode).
const OOM_SCAN_BYTES: u64 = 16 * 1024;

/// What `state.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    state: JobState,
    /// The process (and process group) id while it runs.
    pid: Option<u32>,
}

/// A job known to this executor.
#[derive(Debug)]
pub(crate) struct JobHandle {
    /// `<root>/jobs/<job id>`.
    pub dir: PathBuf,
    /// The current state; receivers wait on it for the end.
    pub state: watch::Sender<JobState>,
    /// The first stop reason given, once `stop` was called.
    pub stop: watch::Sender<Option<String>>,
}

impl JobHandle {
    /// Creates the handle of a new pending job.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, state: watch::Sender::new(JobState::Pending), stop: watch::Sender::new(None) }
    }

    /// Returns the path of the job's log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// Records a new state in memory and in `state.json`.
    async fn set(&self, state: JobState, pid: Option<u32>) {
        if let Err(error) = write_state(&self.dir, &state, pid).await {
            tracing::warn!(job.dir = %self.dir.display(), %error, "could not save a job's state");
        }
        self.state.send_replace(state);
    }

    /// Asks the supervisor to stop the job; the first reason wins.
    pub fn request_stop(&self, reason: &str) {
        self.stop.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason.to_string());
            true
        });
    }
}

/// Writes `state.json` atomically.
pub(crate) async fn write_state(
    dir: &Path,
    state: &JobState,
    pid: Option<u32>,
) -> std::io::Result<()> {
    let saved = SavedState { state: state.clone(), pid };
    let text = serde_json::to_vec(&saved).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!("{STATE_FILE}.tmp"));
    tokio::fs::write(&temporary, text).await?;
    tokio::fs::rename(&temporary, dir.join(STATE_FILE)).await
}

/// Reads the state a job dir records, if it has one.
pub(crate) fn read_state(dir: &Path) -> Option<JobState> {
    let text = std::fs::read(dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice::<SavedState>(&text).ok().map(|saved| saved.state)
}

/// Runs the job to its end and records the final state.
pub(crate) async fn supervise(inner: Arc<Inner>, handle: Arc<JobHandle>, spec: JobSpec) {
    let final_state = run(&inner, &handle, &spec).await;
    tracing::info!(
        job.id = %spec.job_id,
        state = final_state.name(),
        reason = %final_state.reason(),
        "local job ended"
    );
    handle.set(final_state, None).await;
}

/// How the job's process ended.
enum Ending {
    Exited(ExitStatus),
    TimedOut(Duration),
    Stopped(String),
}

async fn run(inner: &Inner, handle: &JobHandle, spec: &JobSpec) -> JobState {
    let mut stop_requests = handle.stop.subscribe();
    let log_path = handle.log_path();
    let prepared = tokio::select! {
        result = inner.envs.ensure(&spec.environment, &log_path) => match result {
            Ok(prepared) => prepared,
            Err(error) => return JobState::Failed { exit_code: None, reason: error.to_string() },
        },
        reason = stop_requested(&mut stop_requests) => return JobState::Stopped { reason },
    };
    let outputs_dir = handle.dir.join("outputs");
    if let Err(error) = fresh_dir(&outputs_dir).await {
        return internal_failure(format!("could not create the outputs directory: {error}"));
    }
    let limits = &spec.limits;
    let cgroups = match inner.cgroups.create(&spec.job_id, limits.memory_bytes, limits.cpu) {
        Ok(cgroups) => cgroups,
        Err(error) => {
            return internal_failure(format!("could not create the job's cgroup: {error}"));
        }
    };
    let rlimit_mode = inner.cgroups.memory == MemoryEnforcement::RlimitAs;
    let launch = Launch {
        argv: &spec.argv,
        python: &prepared.python,
        cgroup_procs: cgroups.procs_files(),
        rlimit_bytes: if rlimit_mode { limits.memory_bytes } else { None },
    };
    let venv_dir = prepared.python.parent().and_then(Path::parent).unwrap_or(Path::new("/"));
    let mut child = match spawn(&launch, spec, venv_dir, &outputs_dir, &log_path) {
        Ok(child) => child,
        Err(error) => {
            cgroups.remove().await;
            return JobState::Failed {
                exit_code: None,
                reason: format!("the command could not start: {error}"),
            };
        }
    };
    let pid = child.id();
    let Some(pgid) = pid.and_then(|pid| i32::try_from(pid).ok()) else {
        cgroups.kill_all();
        cgroups.remove().await;
        return internal_failure("the job's process has no id".into());
    };
    handle.set(JobState::Running, pid).await;
    let ending = wait(&mut child, pgid, limits.max_runtime, &mut stop_requests, inner).await;
    // The job ends with its main process: nothing it left behind keeps running.
    signal_group(pgid, Signal::SIGKILL);
    cgroups.kill_all();
    let oom_killed = cgroups.oom_killed();
    cgroups.remove().await;
    let state = match ending {
        Ending::Stopped(reason) => return JobState::Stopped { reason },
        Ending::TimedOut(limit) => return JobState::TimedOut { limit },
        Ending::Exited(status) => {
            let memory_limit = limits.memory_bytes;
            let failed_allocation =
                rlimit_mode && !status.success() && allocation_failed(&log_path).await;
            match memory_limit {
                Some(limit_bytes) if oom_killed || failed_allocation => {
                    return JobState::MemoryExceeded { limit_bytes };
                }
                _ => exit_state(status),
            }
        }
    };
    let Some(upload) = &spec.outputs else {
        return state;
    };
    let uploading = crate::outputs::upload_dir(&inner.http, &outputs_dir, upload);
    tokio::select! {
        result = uploading => match (result, state) {
            (Ok(_), state) => state,
            (Err(message), JobState::Succeeded) => JobState::Failed {
                exit_code: None,
                reason: format!("uploading outputs failed: {message}"),
            },
            (Err(message), state) => {
                tracing::warn!(
                    job.id = %spec.job_id,
                    %message,
                    "uploading a failed job's outputs failed"
                );
                state
            }
        },
        reason = stop_requested(&mut stop_requests) => JobState::Stopped { reason },
    }
}

fn internal_failure(reason: String) -> JobState {
    tracing::error!(%reason, "a local job could not run");
    JobState::Failed { exit_code: None, reason }
}

fn exit_state(status: ExitStatus) -> JobState {
    match (status.code(), status.signal()) {
        (Some(0), _) => JobState::Succeeded,
        (Some(code), _) => {
            JobState::Failed { exit_code: Some(code), reason: format!("exit code {code}") }
        }
        (None, Some(signal)) => {
            JobState::Failed { exit_code: None, reason: describe_signal(signal) }
        }
        (None, None) => {
            JobState::Failed { exit_code: None, reason: "ended without an exit code".into() }
        }
    }
}

async fn stop_requested(requests: &mut watch::Receiver<Option<String>>) -> String {
    let reason = requests.wait_for(Option::is_some).await.ok().and_then(|reason| reason.clone());
    match reason {
        Some(reason) => reason,
        // The handle owns the sender, so this only happens while it is being dropped.
        None => std::future::pending().await,
    }
}

fn spawn(
    launch: &Launch<'_>,
    spec: &JobSpec,
    venv_dir: &Path,
    outputs_dir: &Path,
    log_path: &Path,
) -> std::io::Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path)?;
    let log_for_stderr = log.try_clone()?;
    let (program, args) = launch.program_and_args();
    let base = base_env();
    let inherited_path =
        base.iter().find(|(name, _)| name == "PATH").map(|(_, value)| value.clone());
    let venv_bin = venv_dir.join("bin").display().to_string();
    let path = match inherited_path {
        Some(path) => format!("{venv_bin}:{path}"),
        None => format!("{venv_bin}:/usr/local/bin:/usr/bin:/bin"),
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&spec.working_dir)
        .env_clear()
        .envs(base)
        .env("PATH", path)
        .env("VIRTUAL_ENV", venv_dir)
        .env("PYTHONUNBUFFERED", "1")
        .envs(&spec.env)
        .env(JOB_ID_VAR, &spec.job_id)
        .env(OUTPUTS_DIR_VAR, outputs_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .process_group(0);
    command.spawn()
}

async fn wait(
    child: &mut tokio::process::Child,
    pgid: i32,
    max_runtime: Option<Duration>,
    stop_requests: &mut watch::Receiver<Option<String>>,
    inner: &Inner,
) -> Ending {
    let deadline = async {
        match max_runtime {
            Some(limit) => {
                tokio::time::sleep(limit).await;
                limit
            }
            None => std::future::pending().await,
        }
    };
    let ending = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => return Ending::Exited(status),
            Err(error) => {
                tracing::error!(pgid, %error, "waiting for a local job failed; stopping it");
                Ending::Stopped(format!("the executor lost track of the job: {error}"))
            }
        },
        limit = deadline => Ending::TimedOut(limit),
        reason = stop_requested(stop_requests) => Ending::Stopped(reason),
    };
    terminate(child, pgid, inner.config.kill_grace).await;
    ending
}

/// SIGTERM to the group, SIGKILL after `grace`, and waits for the main process.
async fn terminate(child: &mut tokio::process::Child, pgid: i32, grace: Duration) {
    signal_group(pgid, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// Looks for a failed allocation at the end of the log (rlimit mode has no kernel counter).
async fn allocation_failed(log_path: &Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let Ok(mut file) = tokio::fs::File::open(log_path).await else {
        return false;
    };
    let length = file.metadata().await.map(|meta| meta.len()).unwrap_or(0);
    let start = length.saturating_sub(OOM_SCAN_BYTES);
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return false;
    }
    let mut tail = Vec::new();
    if file.read_to_end(&mut tail).await.is_err() {
        return false;
    }
    let text = String::from_utf8_lossy(&tail);
    ["MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory"]
        .iter()
        .any(|sign| text.contains(sign))
}

/// Removes and recreates a directory.
async fn fresh_dir(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    tokio::fs::create_dir_all(dir).await
}

/// Reads log bytes from `offset`, at most `max` of them.
pub(crate) async fn read_log(path: &Path, offset: u64, max: u64) -> Result<Vec<u8>, ExecError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        // No log yet: the job has written nothing.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(ExecError::io("opening the job log", error)),
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|error| ExecError::io("reading the job log", error))?;
    let mut bytes = Vec::new();
    file.take(max)
        .read_to_end(&mut bytes)
        .await
        .map_err(|error| ExecError::io("reading the job log", error))?;
    Ok(bytes)
}
