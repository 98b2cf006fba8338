//! The local environment cache: one Python venv per environment digest, built once and reused.
//!
//! Layout: `<cache>/<digest>/` is the venv, `<cache>/<digest>/cairn-build.log` its build log and
//! `<cache>/<digest>/.cairn-ready` the marker written last (atomically, by rename) when the
//! build succeeded; a directory without the marker is an interrupted or failed build, wiped by
//! the next attempt. Builds of one digest are serialised by an in-process lock and, across
//! processes sharing the cache, by `flock` on `<cache>/.<digest>.lock`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::process::base_env;
use crate::spec::{validate_id, validate_requirements};
use crate::{EnvironmentSpec, ExecError, PreparedEnv};

/// The marker whose presence means the venv is complete.
const READY_MARKER: &str = ".cairn-ready";
/// The build log kept inside each venv.
const BUILD_LOG: &str = "cairn-build.log";
/// How many log lines an `EnvironmentBuild` error carries.
const LOG_TAIL_LINES: usize = 40;
/// The longest a venv build may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Builds and caches venvs.
#[derive(Debug)]
pub(crate) struct EnvCache {
    root: PathBuf,
    default_python: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl EnvCache {
    /// Creates a cache in `root`, building venvs from `default_python` unless an environment
    /// names its own interpreter.
    pub fn new(root: PathBuf, default_python: PathBuf) -> Self {
        Self { root, default_python, locks: Mutex::new(HashMap::new()) }
    }

    /// Returns the ready venv for `env`, building it first if needed, with build output
    /// appended to `build_log` (nothing is written when the venv is reused).
    pub async fn ensure(
        &self,
        env: &EnvironmentSpec,
        build_log: &Path,
    ) -> Result<PreparedEnv, ExecError> {
        validate_id("environment digest", &env.digest)?;
        validate_requirements(&env.requirements)?;
        let dir = self.root.join(&env.digest);
        let python = dir.join("bin").join("python");
        let reused = PreparedEnv { python: python.clone(), reused: true };
        if dir.join(READY_MARKER).is_file() {
            return Ok(reused);
        }
        let lock = self.lock_for(&env.digest);
        let _in_process = lock.lock().await;
        tokio::fs::create_dir_all(&self.root)
            .await
            .map_err(|error| ExecError::io("creating the environment cache", error))?;
        let _across_processes = lock_file(self.root.join(format!(".{}.lock", env.digest))).await?;
        if dir.join(READY_MARKER).is_file() {
            return Ok(reused);
        }
        let build = self.build(env, &dir, build_log);
        match tokio::time::timeout(BUILD_TIMEOUT, build).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(ExecError::EnvironmentBuild {
                    message: format!("the build took longer than {} s", BUILD_TIMEOUT.as_secs()),
                    log_tail: log_tail(&dir.join(BUILD_LOG)).await,
                });
            }
        }
        Ok(PreparedEnv { python, reused: false })
    }

    fn lock_for(&self, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(digest.to_string()).or_default().clone()
    }

    async fn build(
        &self,
        env: &EnvironmentSpec,
        dir: &Path,
        build_log: &Path,
    ) -> Result<(), ExecError> {
        if tokio::fs::try_exists(dir).await.unwrap_or(false) {
            tokio::fs::remove_dir_all(dir)
                .await
                .map_err(|error| ExecError::io("removing an incomplete environment", error))?;
        }
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|error| ExecError::io("creating the environment directory", error))?;
        let mut log = BuildLog::open(&[build_log, &dir.join(BUILD_LOG)]).await?;
        let base = match resolve_python(env.python.as_deref(), &self.default_python) {
            Ok(base) => base,
            Err(message) => {
                log.line(&format!("error: {message}")).await;
                return Err(ExecError::EnvironmentBuild { message, log_tail: String::new() });
            }
        };
        log.line(&format!("creating environment {} with {}", env.digest, base.display())).await;
        let mut venv = Command::new(&base);
        venv.arg("-m").arg("venv").arg(dir);
        run_logged(venv, &mut log, "creating the venv", dir).await?;
        if !env.requirements.is_empty() {
            let requirements = dir.join("cairn-requirements.txt");
            let text = env.requirements.join("\n") + "\n";
            tokio::fs::write(&requirements, text)
                .await
                .map_err(|error| ExecError::io("writing the requirements file", error))?;
            log.line(&format!("installing {} requirement(s)", env.requirements.len())).await;
            let mut pip = Command::new(dir.join("bin").join("python"));
            pip.args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input"])
                .args(["--progress-bar", "off", "-r"])
                .arg(&requirements);
            run_logged(pip, &mut log, "pip install", dir).await?;
        }
        let marker = serde_json::json!({
            "digest": env.digest,
            "python": base,
            "requirements": env.requirements,
        });
        let temporary = dir.join(format!("{READY_MARKER}.tmp"));
        tokio::fs::write(&temporary, marker.to_string())
            .await
            .map_err(|error| ExecError::io("writing the ready marker", error))?;
        tokio::fs::rename(&temporary, dir.join(READY_MARKER))
            .await
            .map_err(|error| ExecError::io("writing the ready marker", error))?;
        log.line(&format!("environment {} is ready", env.digest)).await;
        Ok(())
    }
}

/// Takes an exclusive `flock` on `path` (created if missing), released when the guard drops.
async fn lock_file(path: PathBuf) -> Result<nix::fcntl::Flock<std::fs::File>, ExecError> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| ExecError::io("opening the environment lock", error))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| ExecError::Internal(format!("locking the environment: {errno}")))
    })
    .await
    .map_err(|error| ExecError::Internal(format!("locking the environment: {error}")))?
}

/// Finds the base interpreter: `None` → the default, a version such as `3.11` → `python3.11`
/// on `PATH`, anything else → a path that must exist.
fn resolve_python(requested: Option<&str>, default_python: &Path) -> Result<PathBuf, String> {
    let Some(requested) = requested.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(default_python.to_path_buf());
    };
    let is_version = requested
        .split('.')
        .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    if is_version {
        let name = format!("python{requested}");
        return find_on_path(&name).ok_or_else(|| {
            format!("python {requested} is not available on this executor (no {name} on PATH)")
        });
    }
    let path = PathBuf::from(requested);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("the python interpreter {requested} does not exist on this executor"))
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| {
        std::fs::metadata(candidate)
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// Runs a build step with its output teed into the build logs; a failure becomes
/// `EnvironmentBuild` with the tail of the venv's log.
async fn run_logged(
    mut command: Command,
    log: &mut BuildLog,
    step: &str,
    dir: &Path,
) -> Result<(), ExecError> {
    // Build steps run code from packages: give them the job's clean environment, not ours.
    command
        .env_clear()
        .envs(base_env())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let message = format!("{step} could not start: {error}");
            log.line(&format!("error: {message}")).await;
            return Err(ExecError::EnvironmentBuild {
                message,
                log_tail: log_tail(&dir.join(BUILD_LOG)).await,
            });
        }
    };
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<String>(256);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, lines_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, lines_tx.clone()));
    }
    drop(lines_tx);
    while let Some(line) = lines_rx.recv().await {
        log.line(&line).await;
    }
    let status = child.wait().await.map_err(|error| ExecError::io(step, error))?;
    if status.success() {
        return Ok(());
    }
    let message = match status.code() {
        Some(code) => format!("{step} failed with exit code {code}"),
        None => format!("{step} was killed by a signal"),
    };
    log.line(&format!("error: {message}")).await;
    Err(ExecError::EnvironmentBuild { message, log_tail: log_tail(&dir.join(BUILD_LOG)).await })
}

async fn forward_lines(stream: impl AsyncRead + Unpin, lines: tokio::sync::mpsc::Sender<String>) {
    // Split on bytes, not UTF-8 lines: a tool printing invalid UTF-8 must not stall the pipe.
    let mut reader = BufReader::new(stream).split(b'\n');
    while let Ok(Some(line)) = reader.next_segment().await {
        let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
        if lines.send(text).await.is_err() {
            return;
        }
    }
}

/// Returns the last [`LOG_TAIL_LINES`] lines of a log file (empty if unreadable).
async fn log_tail(path: &Path) -> String {
    let text = tokio::fs::read(path).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// Appends one line to a build log (used to say a cached environment was reused).
pub(crate) async fn append_line(build_log: &Path, line: &str) -> Result<(), ExecError> {
    BuildLog::open(&[build_log]).await?.line(line).await;
    Ok(())
}

/// Appends lines to several log files; a file that cannot be written is skipped (the build
/// itself matters more than its log).
struct BuildLog {
    files: Vec<tokio::fs::File>,
}

impl BuildLog {
    async fn open(paths: &[&Path]) -> Result<Self, ExecError> {
        let mut files = Vec::new();
        for path in paths {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|error| ExecError::io("creating the build log directory", error))?;
            }
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|error| ExecError::io("opening the build log", error))?;
            files.push(file);
        }
        Ok(Self { files })
    }

    async fn line(&mut self, line: &str) {
        let bytes = format!("{line}\n");
        for file in &mut self.files {
            // tokio writes files in the background: flush so readers see each line at once.
            let _ = file.write_all(bytes.as_bytes()).await;
            let _ = file.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_versions_are_looked_up_on_path() {
        let default = Path::new("/usr/bin/python3");
        assert_eq!(resolve_python(None, default).unwrap(), default);
        let missing = resolve_python(Some("2.1"), default).unwrap_err();
        assert_eq!(missing, "python 2.1 is not available on this executor (no python2.1 on PATH)");
        let bad_path = resolve_python(Some("/nowhere/python"), default).unwrap_err();
        assert!(bad_path.contains("does not exist"), "{bad_path}");
    }
}
