//! Cairn's job executors: the [`JobExecutor`] trait the service layer drives as
//! `Arc<dyn JobExecutor>`, and its two implementations, [`LocalExecutor`] (processes on the
//! server's machine) and [`RayExecutor`] (a Ray cluster's Jobs REST API).
//!
//! A job is a command ([`JobSpec::argv`], where a bare `python` means the environment's
//! interpreter) run in a working directory of project files, in a Python environment
//! ([`EnvironmentSpec`]), with [`Limits`], injected environment variables (which may be
//! secrets: `Debug` redacts them and nothing here logs them) and, optionally, an
//! [`OutputsUpload`]. Every job sees `CAIRN_JOB_ID` and `CAIRN_OUTPUTS_DIR`, a fresh directory
//! whose files are uploaded (`PUT {url}/{relative path}`, `Authorization: Bearer {token}`)
//! after the command ends and before the job reports a terminal state. A job ends in one
//! distinguishable [`JobState`]: `Succeeded`, `Failed` (exit code or signal), `Stopped`
//! (with the caller's reason), `TimedOut` or `MemoryExceeded`; [`JobState::reason`] says it
//! in a sentence.
//!
//! # What the local executor enforces, and how
//!
//! - **Environment**: one venv per [`EnvironmentSpec::digest`] in the env cache (`python -m
//!   venv`, then `pip install`), built once even with concurrent callers (an in-process lock,
//!   `flock` across processes, and a ready marker renamed into place last); a failed build
//!   leaves no marker and returns [`ExecError::EnvironmentBuild`] with the log's last 40 lines.
//!   Build steps and jobs get a clean environment: `PATH`, `HOME`, locale, proxy and `PIP_*`
//!   variables only, never the server's own secrets.
//! - **Process**: its own process group, stdout and stderr appended to one log file, in the
//!   working directory itself (not a copy). The job ends with its main process: anything it
//!   left in its group or cgroup is killed.
//! - **Memory**: a per-job cgroup — v2 (`memory.max`) when `/sys/fs/cgroup` is a writable
//!   unified hierarchy with the memory controller, else v1 (`memory.limit_in_bytes` under
//!   `/sys/fs/cgroup/memory/cairn/`) — and the kernel's OOM kill, read back from
//!   `memory.events` / `memory.oom_control`, becomes `MemoryExceeded`. Without writable cgroups
//!   the fallback is `ulimit -v` (RLIMIT_AS): allocations beyond the limit fail, and a failed
//!   job whose log ends with `MemoryError` (or similar) is reported `MemoryExceeded`; virtual
//!   size overstates real use, so that mode is approximate.
//!   [`LocalExecutor::memory_enforcement`] says which mode is in force.
//! - **CPU**: a CFS quota (`cpu.max`, or v1 `cpu.cfs_quota_us`) of `cpu` cores when cgroups are
//!   writable; otherwise no CPU limit ([`LocalExecutor::limits_cpu`]). GPUs are not scheduled
//!   locally.
//! - **Time**: a timer started when the process is spawned (after the environment is ready);
//!   at the limit the group gets SIGTERM, then SIGKILL after [`LocalConfig::kill_grace`], and
//!   the job is `TimedOut`. `stop` does the same with its reason, and returns once the job ended.
//! - **Outputs**: uploaded when the command ended by itself (success or failure), not after a
//!   stop, a timeout or a memory kill; a failed upload turns success into `Failed` ("uploading
//!   outputs failed: …").
//! - **State**: in memory plus `state.json` per job, so a finished job's state and logs survive
//!   a restart; a job that was running when the server died is unknown after it (`NotFound`).
//!
//! # What the Ray executor enforces, and how (caveats)
//!
//! - **Submission**: the working directory is zipped deterministically, with Cairn's job
//!   wrapper (`.cairn_job_wrapper.py`, Python stdlib only) added, and uploaded to the head's
//!   package store (`GET`, then `PUT /api/packages/gcs/_ray_pkg_<hash>.zip`) as the Ray SDK does;
//!   the job is `POST /api/jobs/` with `submission_id` = Cairn's job id, the shell-quoted
//!   entrypoint `python .cairn_job_wrapper.py -- ARGV…`, `runtime_env` (`working_dir`,
//!   `env_vars`, `pip` when there are requirements, `image_uri` when an image is set) and
//!   `entrypoint_num_cpus` / `_num_gpus` / `_memory`. A 500 "No available agent" is retried
//!   for [`RayConfig::submit_retry_timeout`]; a duplicate id counts as submitted.
//! - **Environment**: `prepare` builds nothing: Ray installs `pip` requirements per job when
//!   it starts, in a virtualenv it caches per requirement set, with the cluster's Python (a
//!   requested Python version applies only through an image). A bad requirement fails the job,
//!   after Ray's own setup retries (about two minutes on a small head), with pip's `ERROR:`
//!   line in the reason. `python` in the entrypoint is whatever `python` is first on the Ray
//!   node's `PATH` (`cairn_ray_start` puts the head's venv first).
//! - **Memory**: `entrypoint_memory` only reserves memory for scheduling, and Ray's own memory
//!   monitor kills tasks and actors, not the entrypoint. So the wrapper polls the resident
//!   memory of the command's process tree every 100 ms and SIGKILLs it past the limit, which
//!   the executor reports as `MemoryExceeded` (as it does Ray's own out-of-memory errors). A
//!   burst between two polls can overshoot the limit.
//! - **Time**: a watchdog task here polls the job ([`RayConfig::poll_interval`]) from the
//!   moment it is seen running (after the runtime env is set up) and stops it past its limit
//!   (`TimedOut`), so the limit holds to within one poll plus Ray's stop. After a server
//!   restart, `status` restarts the watchdog, counting from Ray's start time.
//! - **Stop**: `POST …/stop`: Ray sends SIGTERM to the entrypoint's process tree and SIGKILL 3 s
//!   later (`RAY_JOB_STOP_WAIT_TIME_S`). The reason lives in this process's memory; after a
//!   restart a stop reads as "stopped on the ray cluster" (or `TimedOut` if it ran as long as its
//!   limit, which the submission's metadata records).
//! - **Outputs**: the wrapper sets `CAIRN_OUTPUTS_DIR` to a fresh temporary directory (jobs with
//!   identical packages share Ray's unpacked copy, so not a directory inside it) and uploads
//!   its files before exiting with the command's code; the URL must be reachable from the Ray
//!   nodes. The outputs URL and token are removed from the command's environment.
//! - **Logs**: Ray returns the whole log on every call; offsets index into it. While the job
//!   runs, chunks end at a line break. Ray prefixes the log with its own setup lines.
//! - **Secrets**: env values travel in `runtime_env.env_vars`, so anyone with access to the
//!   Ray dashboard can read them; error texts from Ray are scrubbed of them.
//! - **Cleanup**: `DELETE /api/jobs/{id}` (stopping first); Ray collects unused packages itself.
//!
//! # Testing
//!
//! With the `testsuite` feature, [`testsuite`] holds the conformance suite both executors
//! pass: `tests/local.rs` runs it locally (`CAIRN_TEST_PYTHON` is the base interpreter) and
//! `tests/ray.rs` against the head in `CAIRN_TEST_RAY_ADDRESS` (started by
//! `scripts/lib/services.sh`'s `cairn_ray_start`).

mod error;
mod executor;
mod local;
mod outputs;
mod ray;
mod spec;
mod state;

#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use error::ExecError;
pub use executor::JobExecutor;
pub use local::{LocalConfig, LocalExecutor, MAX_LOG_CHUNK, MemoryEnforcement};
pub use ray::{ADDED_FILES as RAY_ADDED_FILES, MAX_PACKAGE_SOURCE_BYTES, RayConfig, RayExecutor};
pub use spec::{
    EnvironmentSpec, JOB_ID_VAR, JobSpec, Limits, MAX_ID_LEN, OUTPUTS_DIR_VAR, OutputsUpload,
    PreparedEnv,
};
pub use state::{ExecutorKind, JobState, LogChunk, format_bytes, format_duration};
