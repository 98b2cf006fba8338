//! What a caller asks an executor to run: the job, its Python environment, its limits and where
//! its outputs go, with the validation every executor applies before running anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ExecError;

/// The environment variable naming the job, set for every job.
pub const JOB_ID_VAR: &str = "CAIRN_JOB_ID";
/// The environment variable naming a fresh directory whose files are uploaded when the job ends.
pub const OUTPUTS_DIR_VAR: &str = "CAIRN_OUTPUTS_DIR";
/// The longest accepted job id or environment digest, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The Python environment a job runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSpec {
    /// A stable key of the environment's revision: equal digests mean equal environments, so a
    /// built environment is reused. Letters, digits, `.`, `_` and `-` only.
    pub digest: String,
    /// The interpreter: a version such as `3.11` (found as `python3.11` on `PATH`), a path, or
    /// `None` for the executor's default.
    pub python: Option<String>,
    /// pip requirement lines.
    pub requirements: Vec<String>,
    /// A container image, for cluster executors that run jobs in images (ignored locally).
    pub image: Option<String>,
}

/// An environment ready to run jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedEnv {
    /// The interpreter jobs run with: the venv's python locally, `python` on Ray (resolved on
    /// the cluster).
    pub python: PathBuf,
    /// Whether an existing environment was used rather than built by this call.
    pub reused: bool,
}

/// The resources a job may use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// CPU cores (fractions allowed); `0` means no CPU limit.
    pub cpu: f64,
    /// Memory in bytes, or `None` for no limit.
    pub memory_bytes: Option<u64>,
    /// GPUs to reserve (Ray schedules them; the local executor does not).
    pub gpus: u32,
    /// Wall-clock time the job may run, or `None` for no limit.
    pub max_runtime: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { cpu: 1.0, memory_bytes: None, gpus: 0, max_runtime: None }
    }
}

/// Where a job's outputs go when its command ends.
#[derive(Clone, PartialEq, Eq)]
pub struct OutputsUpload {
    /// Base URL: each file is sent as `PUT {url}/{relative path}`.
    pub url: String,
    /// Bearer token sent with each upload (never logged).
    pub token: String,
}

impl fmt::Debug for OutputsUpload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OutputsUpload")
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// One job to run.
#[derive(Clone, PartialEq)]
pub struct JobSpec {
    /// Cairn's id of the job (the Ray `submission_id`). Letters, digits, `.`, `_` and `-` only.
    pub job_id: String,
    /// The command; a bare `python` as `argv[0]` means the environment's interpreter.
    pub argv: Vec<String>,
    /// A directory holding the project files, the job's working directory (uploaded as a package
    /// to cluster executors).
    pub working_dir: PathBuf,
    /// Environment variables for the job. Values may be secrets: `Debug` redacts them and
    /// executors never log them.
    pub env: BTreeMap<String, String>,
    /// The Python environment.
    pub environment: EnvironmentSpec,
    /// Resource limits.
    pub limits: Limits,
    /// Where to upload the files the job leaves in `$CAIRN_OUTPUTS_DIR`, if anywhere.
    pub outputs: Option<OutputsUpload>,
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env: BTreeMap<&str, &str> =
            self.env.keys().map(|name| (name.as_str(), "[redacted]")).collect();
        formatter
            .debug_struct("JobSpec")
            .field("job_id", &self.job_id)
            .field("argv", &self.argv)
            .field("working_dir", &self.working_dir)
            .field("env", &env)
            .field("environment", &self.environment)
            .field("limits", &self.limits)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl JobSpec {
    /// Checks everything an executor relies on before running the job; `InvalidSpec` otherwise.
    pub fn validate(&self) -> Result<(), ExecError> {
        validate_id("job id", &self.job_id)?;
        validate_id("environment digest", &self.environment.digest)?;
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return Err(ExecError::InvalidSpec("the command is empty".into()));
        }
        if self.argv.iter().any(|argument| argument.contains('\0')) {
            return Err(ExecError::InvalidSpec("the command contains a NUL byte".into()));
        }
        if !self.working_dir.is_dir() {
            return Err(ExecError::InvalidSpec(format!(
                "the working directory {} does not exist",
                self.working_dir.display()
            )));
        }
        for (name, value) in &self.env {
            let bad_name = name.is_empty() || name.contains(['=', '\0']);
            if bad_name || value.contains('\0') {
                // The name is safe to show; the value never is.
                return Err(ExecError::InvalidSpec(format!(
                    "environment variable {name:?} has an invalid name or value"
                )));
            }
        }
        validate_requirements(&self.environment.requirements)?;
        let limits = &self.limits;
        if !limits.cpu.is_finite() || limits.cpu < 0.0 {
            return Err(ExecError::InvalidSpec(format!("invalid cpu limit {}", limits.cpu)));
        }
        if limits.memory_bytes == Some(0) {
            return Err(ExecError::InvalidSpec("the memory limit is zero".into()));
        }
        if limits.max_runtime == Some(Duration::ZERO) {
            return Err(ExecError::InvalidSpec("the maximum run time is zero".into()));
        }
        if let Some(outputs) = &self.outputs {
            validate_outputs_url(&outputs.url)?;
        }
        Ok(())
    }
}

/// Checks an id used as a directory name and in URLs: 1 to 128 letters, digits, `.`, `_`, `-`,
/// not starting with `.` or `-`.
pub(crate) fn validate_id(what: &str, id: &str) -> Result<(), ExecError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.chars().all(allowed)
        && !id.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(ExecError::InvalidSpec(format!(
            "invalid {what} {id:?}: use 1 to {MAX_ID_LEN} letters, digits, '.', '_' or '-'"
        )))
    }
}

/// Checks pip requirement lines: one requirement each, no line breaks (they would smuggle
/// pip options into a requirements file).
pub(crate) fn validate_requirements(requirements: &[String]) -> Result<(), ExecError> {
    for line in requirements {
        if line.trim().is_empty() || line.contains(['\n', '\r', '\0']) {
            return Err(ExecError::InvalidSpec(format!("invalid requirement line {line:?}")));
        }
    }
    Ok(())
}

fn validate_outputs_url(url: &str) -> Result<(), ExecError> {
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        _ => Err(ExecError::InvalidSpec(format!("invalid outputs url {url:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            job_id: "job-1".into(),
            argv: vec!["python".into(), "-c".into(), "print(1)".into()],
            working_dir: std::env::temp_dir(),
            env: BTreeMap::from([("TOKEN".to_string(), "hunter2-secret".to_string())]),
            environment: EnvironmentSpec {
                digest: "env-1".into(),
                python: None,
                requirements: vec![],
                image: None,
            },
            limits: Limits::default(),
            outputs: Some(OutputsUpload {
                url: "http://127.0.0.1:1/outputs".into(),
                token: "token-secret".into(),
            }),
        }
    }

    #[test]
    fn debug_redacts_env_values_and_tokens() {
        let text = format!("{:?}", spec());
        assert!(text.contains("TOKEN"), "{text}");
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(!text.contains("token-secret"), "{text}");
    }

    #[test]
    fn validation_rejects_bad_specs_without_showing_values() {
        assert_eq!(spec().validate(), Ok(()));
        let mut bad_id = spec();
        bad_id.job_id = "../escape".into();
        assert!(matches!(bad_id.validate(), Err(ExecError::InvalidSpec(_))));
        let mut bad_env = spec();
        bad_env.env.insert("BAD=NAME".into(), "hunter2-secret".into());
        let error = bad_env.validate().unwrap_err().to_string();
        assert!(!error.contains("hunter2-secret"), "{error}");
        let mut bad_requirement = spec();
        bad_requirement.environment.requirements = vec!["six\n--index-url http://x".into()];
        assert!(bad_requirement.validate().is_err());
        let mut bad_cpu = spec();
        bad_cpu.limits.cpu = f64::NAN;
        assert!(bad_cpu.validate().is_err());
        let mut empty = spec();
        empty.argv.clear();
        assert!(empty.validate().is_err());
    }
}
