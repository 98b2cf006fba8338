//! What an executor reports about a job: its state, with a human reason for how it ended, and
//! chunks of its log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which executor runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// Processes on the server's own machine.
    Local,
    /// Jobs on a Ray cluster, through its Jobs REST API.
    Ray,
}

impl ExecutorKind {
    /// Returns the lowercase name (`local`, `ray`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Ray => "ray",
        }
    }
}

/// Where a job is in its life. The last five variants are terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Accepted; waiting for its environment or for resources.
    Pending,
    /// Its command is running (or its outputs are being uploaded).
    Running,
    /// Its command exited with code 0 and its outputs were uploaded.
    Succeeded,
    /// Its command failed, or uploading its outputs did.
    Failed {
        /// The command's exit code, when it exited normally.
        exit_code: Option<i32>,
        /// Why, in a sentence: `exit code 2`, `killed by signal 9 (SIGKILL)`, or the backend's
        /// message.
        reason: String,
    },
    /// Stopped on request.
    Stopped {
        /// The reason given to `stop`, such as `cancelled by alice`.
        reason: String,
    },
    /// Stopped for running longer than its limit.
    TimedOut {
        /// The limit it exceeded.
        limit: Duration,
    },
    /// Killed for using more memory than its limit.
    MemoryExceeded {
        /// The limit it exceeded, in bytes.
        limit_bytes: u64,
    },
}

impl JobState {
    /// Returns whether the job has ended (it will not change state again).
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// Returns a short lowercase name of the state (`pending`, `timed_out`…).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed { .. } => "failed",
            Self::Stopped { .. } => "stopped",
            Self::TimedOut { .. } => "timed_out",
            Self::MemoryExceeded { .. } => "memory_exceeded",
        }
    }

    /// Returns a human sentence saying why the job is in this state, such as `exit code 2` or
    /// `exceeded the tier's memory limit of 256 MiB`.
    pub fn reason(&self) -> String {
        match self {
            Self::Pending => "waiting to start".into(),
            Self::Running => "running".into(),
            Self::Succeeded => "exit code 0".into(),
            Self::Failed { reason, .. } | Self::Stopped { reason } => reason.clone(),
            Self::TimedOut { limit } => {
                format!("exceeded the tier's maximum run time of {}", format_duration(*limit))
            }
            Self::MemoryExceeded { limit_bytes } => {
                format!("exceeded the tier's memory limit of {}", format_bytes(*limit_bytes))
            }
        }
    }
}

/// A piece of a job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// Log bytes from the requested offset (stdout and stderr interleaved as written).
    pub bytes: Vec<u8>,
    /// The offset to ask for next.
    pub next_offset: u64,
    /// Whether the job has ended and this chunk reaches the end of its log.
    pub complete: bool,
}

/// Formats a duration the way people write limits: `5s`, `1m30s`, `2h`, `1.5s`.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() != 0 || duration.as_secs() == 0 {
        let seconds = duration.as_secs_f64();
        return format!("{}s", (seconds * 1000.0).round() / 1000.0);
    }
    let total = duration.as_secs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 {
        text.push_str(&format!("{seconds}s"));
    }
    text
}

/// Formats a byte count in binary units: `256 MiB`, `2 GiB`, `1.5 GiB`, `512 bytes`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] =
        [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            if bytes.is_multiple_of(size) {
                return format!("{} {unit}", bytes / size);
            }
            // Precision loss is irrelevant for a human-readable size.
            let value = bytes as f64 / size as f64;
            return format!("{} {unit}", (value * 10.0).round() / 10.0);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let memory = JobState::MemoryExceeded { limit_bytes: 256 << 20 };
        assert_eq!(memory.reason(), "exceeded the tier's memory limit of 256 MiB");
        let time = JobState::TimedOut { limit: Duration::from_secs(5) };
        assert_eq!(time.reason(), "exceeded the tier's maximum run time of 5s");
        let failed = JobState::Failed { exit_code: Some(2), reason: "exit code 2".into() };
        assert_eq!(failed.reason(), "exit code 2");
        let stopped = JobState::Stopped { reason: "cancelled by alice".into() };
        assert_eq!(stopped.reason(), "cancelled by alice");
        assert!(stopped.is_terminal() && !JobState::Running.is_terminal());
    }

    #[test]
    fn durations_and_sizes_format_compactly() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
        assert_eq!(format_bytes(200 << 20), "200 MiB");
        assert_eq!(format_bytes(100), "100 bytes");
    }

    #[test]
    fn states_round_trip_through_json() {
        let state = JobState::TimedOut { limit: Duration::from_secs(2) };
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<JobState>(&text).unwrap(), state);
    }
}
