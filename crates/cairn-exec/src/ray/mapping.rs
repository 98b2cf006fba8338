//! The pure translation between Cairn's job model and Ray's: the submission body (entrypoint,
//! runtime_env, resources, metadata) and Ray's job status back into a [`JobState`].

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::client::JobInfo;
use crate::spec::JOB_ID_VAR;
use crate::{JobSpec, JobState};

/// The wrapper's file name inside the package (hidden, beside the project files).
pub(crate) const WRAPPER_NAME: &str = ".cairn_job_wrapper.py";
/// A file holding the job's id, which makes each job's package (and so the directory Ray
/// unpacks it into, shared by the jobs of one package) its own.
pub(crate) const JOB_ID_NAME: &str = ".cairn_job_id";
/// The wrapper itself (see its docstring).
pub(crate) const WRAPPER_SOURCE: &str = include_str!("wrapper.py");
/// The wrapper's last line when it killed the job for its memory use.
const MEMORY_MARKER: &str = "cairn: exceeded the memory limit of";
/// The wrapper's last line when uploading outputs failed.
const UPLOAD_MARKER: &str = "cairn: uploading outputs failed:";
/// Metadata keys that let a restarted server still classify a job's end.
const META_MAX_RUNTIME_MS: &str = "cairn_max_runtime_ms";
const META_MEMORY_LIMIT: &str = "cairn_memory_limit_bytes";
/// The longest failure reason taken from Ray's message.
const MAX_REASON_CHARS: usize = 300;

/// Why Cairn stopped a Ray job, remembered in memory until Ray reports it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopCause {
    /// `stop` was called with this reason.
    Requested(String),
    /// The job ran past its limit.
    TimedOut(Duration),
}

/// Quotes one word for `sh` (Ray runs the entrypoint with `shell=True`).
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r#"'"'"'"#))
}

/// Builds the `POST /api/jobs/` body for `spec` with its working directory at `package_uri`.
pub(crate) fn submission(spec: &JobSpec, package_uri: &str) -> Value {
    let mut words = vec!["python".to_string(), WRAPPER_NAME.to_string(), "--".to_string()];
    words.extend(spec.argv.iter().map(|word| shell_quote(word)));
    let limits = &spec.limits;
    let mut env_vars: Map<String, Value> =
        spec.env.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
    env_vars.insert(JOB_ID_VAR.into(), json!(spec.job_id));
    env_vars.entry("PYTHONUNBUFFERED").or_insert(json!("1"));
    let mut metadata = Map::new();
    metadata.insert("cairn_job_id".into(), json!(spec.job_id));
    if let Some(bytes) = limits.memory_bytes {
        env_vars.insert("CAIRN_MEMORY_LIMIT_BYTES".into(), json!(bytes.to_string()));
        metadata.insert(META_MEMORY_LIMIT.into(), json!(bytes.to_string()));
    }
    if let Some(limit) = limits.max_runtime {
        metadata.insert(META_MAX_RUNTIME_MS.into(), json!(limit.as_millis().to_string()));
    }
    if let Some(outputs) = &spec.outputs {
        env_vars.insert("CAIRN_OUTPUTS_URL".into(), json!(outputs.url));
        env_vars.insert("CAIRN_OUTPUTS_TOKEN".into(), json!(outputs.token));
    }
    let mut runtime_env = Map::new();
    runtime_env.insert("working_dir".into(), json!(package_uri));
    runtime_env.insert("env_vars".into(), Value::Object(env_vars));
    if !spec.environment.requirements.is_empty() {
        runtime_env.insert("pip".into(), json!(spec.environment.requirements));
    }
    if let Some(image) = &spec.environment.image {
        runtime_env.insert("image_uri".into(), json!(image));
    }
    let mut body = json!({
        "entrypoint": words.join(" "),
        "submission_id": spec.job_id,
        "runtime_env": runtime_env,
        "metadata": metadata,
    });
    if limits.cpu > 0.0 {
        body["entrypoint_num_cpus"] = json!(limits.cpu);
    }
    if limits.gpus > 0 {
        body["entrypoint_num_gpus"] = json!(limits.gpus);
    }
    if let Some(bytes) = limits.memory_bytes {
        body["entrypoint_memory"] = json!(bytes);
    }
    body
}

/// Returns the job's time limit recorded in its metadata.
pub(crate) fn max_runtime(info: &JobInfo) -> Option<Duration> {
    let text = info.metadata.as_ref()?.get(META_MAX_RUNTIME_MS)?;
    text.parse().ok().map(Duration::from_millis)
}

/// Translates Ray's view of a job; `cause` is why Cairn stopped it, if it did.
pub(crate) fn job_state(info: &JobInfo, cause: Option<&StopCause>) -> JobState {
    let message = info.message.as_deref().unwrap_or_default();
    match info.status.as_str() {
        "PENDING" => JobState::Pending,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "STOPPED" => match cause {
            Some(StopCause::Requested(reason)) => JobState::Stopped { reason: reason.clone() },
            Some(StopCause::TimedOut(limit)) => JobState::TimedOut { limit: *limit },
            None => stopped_without_cause(info),
        },
        "FAILED" => failed(info, message),
        other => JobState::Failed {
            exit_code: None,
            reason: format!("ray reported an unknown job status {other}"),
        },
    }
}

/// A job stopped by someone else, or before a restart: a run as long as its limit was the
/// time limit.
fn stopped_without_cause(info: &JobInfo) -> JobState {
    let ran = match (info.start_time, info.end_time) {
        (Some(start), Some(end)) => Some(Duration::from_millis(end.saturating_sub(start))),
        _ => None,
    };
    match (max_runtime(info), ran) {
        (Some(limit), Some(ran)) if ran >= limit => JobState::TimedOut { limit },
        _ => JobState::Stopped { reason: "stopped on the ray cluster".into() },
    }
}

fn failed(info: &JobInfo, message: &str) -> JobState {
    let memory_limit = info.metadata.as_ref().and_then(|meta| meta.get(META_MEMORY_LIMIT));
    let memory_limit = memory_limit.and_then(|text| text.parse::<u64>().ok());
    let ray_oom = message.contains("OutOfMemoryError")
        || message.contains("running low on memory")
        || message.contains("killed due to memory pressure");
    if let Some(limit_bytes) = memory_limit
        && (message.contains(MEMORY_MARKER) || ray_oom)
    {
        return JobState::MemoryExceeded { limit_bytes };
    }
    if let Some(line) = message.lines().rev().find(|line| line.starts_with(UPLOAD_MARKER)) {
        let detail = line.trim_start_matches("cairn: ");
        return JobState::Failed { exit_code: None, reason: detail.to_string() };
    }
    let exit_code = info.driver_exit_code.or_else(|| exit_code_in(message));
    match exit_code {
        Some(code) => {
            JobState::Failed { exit_code: Some(code), reason: format!("exit code {code}") }
        }
        None => JobState::Failed { exit_code: None, reason: failure_reason(message) },
    }
}

/// Summarises a failure without an exit code (a runtime env that could not be set up, say):
/// Ray's first line, plus the last `ERROR:` line of the tool that failed (pip's, usually).
fn failure_reason(message: &str) -> String {
    let first = message.lines().map(str::trim).find(|line| !line.is_empty());
    let Some(first) = first else {
        return "failed on the ray cluster".into();
    };
    let tool_error = message.lines().map(str::trim).rfind(|line| line.starts_with("ERROR:"));
    // pip names the head's temporary requirements file: noise to the job's owner.
    let tool_error = tool_error.map(|line| line.split(" (from line ").next().unwrap_or(line));
    let reason = match tool_error {
        Some(error) if error != first => format!("{first} {error}"),
        _ => first.to_string(),
    };
    reason.chars().take(MAX_REASON_CHARS).collect()
}

/// Reads `failed with exit code N` from Ray's message (older heads have no `driver_exit_code`).
fn exit_code_in(message: &str) -> Option<i32> {
    let rest = message.split("failed with exit code ").nth(1)?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn info(status: &str, message: &str, metadata: &[(&str, &str)]) -> JobInfo {
        JobInfo {
            status: status.into(),
            message: Some(message.into()),
            driver_exit_code: None,
            start_time: Some(1_000),
            end_time: Some(4_000),
            metadata: Some(metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(shell_quote("train.py"), "train.py");
        assert_eq!(shell_quote("it's here"), r#"'it'"'"'s here'"#);
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn failures_are_classified() {
        let oom = info(
            "FAILED",
            "...\ncairn: exceeded the memory limit of 10 bytes\n",
            &[(META_MEMORY_LIMIT, "10")],
        );
        assert_eq!(job_state(&oom, None), JobState::MemoryExceeded { limit_bytes: 10 });
        let exit = info("FAILED", "Job entrypoint command failed with exit code 3, last logs", &[]);
        assert_eq!(
            job_state(&exit, None),
            JobState::Failed { exit_code: Some(3), reason: "exit code 3".into() }
        );
        let upload = info(
            "FAILED",
            "failed with exit code 75\ncairn: uploading outputs failed: a.txt: 403\n",
            &[],
        );
        assert_eq!(job_state(&upload, None).reason(), "uploading outputs failed: a.txt: 403");
        let setup = info("FAILED", "runtime_env setup failed: pip install failed\nmore", &[]);
        assert_eq!(
            job_state(&setup, None).reason(),
            "runtime_env setup failed: pip install failed"
        );
        let pip = info(
            "FAILED",
            "runtime_env setup failed: Failed.\nTraceback\n    ERROR: Invalid requirement: 'x!' \
             (from line 1 of /tmp/r.txt)\n",
            &[],
        );
        assert_eq!(
            job_state(&pip, None).reason(),
            "runtime_env setup failed: Failed. ERROR: Invalid requirement: 'x!'"
        );
    }

    #[test]
    fn stops_keep_their_cause() {
        let stopped = info("STOPPED", "", &[(META_MAX_RUNTIME_MS, "2000")]);
        let cause = StopCause::Requested("cancelled by alice".into());
        assert_eq!(job_state(&stopped, Some(&cause)).reason(), "cancelled by alice");
        // Ran 3 s against a 2 s limit: the time limit, even without a remembered cause.
        assert_eq!(job_state(&stopped, None), JobState::TimedOut { limit: Duration::from_secs(2) });
        let mut short = stopped.clone();
        short.metadata = Some(BTreeMap::new());
        assert!(matches!(job_state(&short, None), JobState::Stopped { .. }));
    }
}
