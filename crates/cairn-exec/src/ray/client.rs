//! A thin client of Ray's Jobs REST API (on the dashboard port). Ray answers errors in plain
//! text (often a Python traceback); they are kept, shortened, in error messages.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::ExecError;

/// The longest piece of a Ray error text kept in an error message.
const MAX_ERROR_TEXT: usize = 600;

/// What `GET /api/jobs/{submission_id}` says about a job (the fields Cairn reads).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JobInfo {
    /// PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED.
    pub status: String,
    /// Ray's explanation, for failures with the end of the log.
    #[serde(default)]
    pub message: Option<String>,
    /// The entrypoint's exit code, once it ended.
    #[serde(default)]
    pub driver_exit_code: Option<i32>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub end_time: Option<u64>,
    /// The metadata given at submission.
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}

/// An answer that was not a success.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The head answered with this status and text.
    Status(reqwest::StatusCode, String),
    /// The request did not get an answer.
    Transport(String),
}

impl Failure {
    /// Converts to an `ExecError`: 404 → `NotFound`, 400 → `InvalidSpec`, no answer or 5xx →
    /// `Unavailable` or `Internal`.
    pub fn into_error(self, what: &str) -> ExecError {
        match self {
            Self::Status(status, text) if status == reqwest::StatusCode::NOT_FOUND => {
                ExecError::NotFound(format!("{what}: {}", shorten(&text)))
            }
            Self::Status(status, text) if status == reqwest::StatusCode::BAD_REQUEST => {
                ExecError::InvalidSpec(format!("ray rejected {what}: {}", shorten(&text)))
            }
            Self::Status(status, text) if status.is_server_error() && is_transient(&text) => {
                ExecError::Unavailable(format!("ray could not {what}: {}", shorten(&text)))
            }
            Self::Status(status, text) => {
                ExecError::Internal(format!("ray answered {status} to {what}: {}", shorten(&text)))
            }
            Self::Transport(message) => {
                ExecError::Unavailable(format!("ray head unreachable ({what}): {message}"))
            }
        }
    }

    /// Returns whether the head asks to retry later (its job agent is not up yet).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status(status, text) => status.is_server_error() && is_transient(text),
            Self::Transport(_) => true,
        }
    }

    /// Returns whether Ray refused a submission because the id exists already.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Status(_, text) if text.contains("already exists"))
    }
}

fn is_transient(text: &str) -> bool {
    text.contains("No available agent") || text.contains("try again later")
}

/// Keeps the last lines of a traceback (where the exception is), within [`MAX_ERROR_TEXT`].
fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_string();
    }
    let mut start = text.len() - MAX_ERROR_TEXT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Calls the Jobs API of one Ray head.
#[derive(Debug, Clone)]
pub(crate) struct RayClient {
    http: reqwest::Client,
    base: String,
}

impl RayClient {
    /// Creates a client of the head at `base` (`http://host:8265`).
    pub fn new(base: &url::Url, request_timeout: Duration) -> Result<Self, ExecError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(request_timeout)
            .build()
            .map_err(|error| ExecError::Internal(format!("building an http client: {error}")))?;
        Ok(Self { http, base: base.as_str().trim_end_matches('/').to_string() })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, Failure> {
        let response =
            request.send().await.map_err(|error| Failure::Transport(error.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|error| Failure::Transport(error.to_string()))?;
        if status.is_success() { Ok(text) } else { Err(Failure::Status(status, text)) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /api/version`.
    pub async fn version(&self) -> Result<Value, Failure> {
        let text = self.send(self.http.get(self.url("/api/version"))).await?;
        serde_json::from_str(&text).map_err(|error| Failure::Transport(error.to_string()))
    }

    /// `GET /api/packages/gcs/{name}`: whether the package is stored (this also pins it for a
    /// while, so it is not collected before the job that uses it starts).
    pub async fn package_exists(&self, name: &str) -> Result<bool, Failure> {
        let url = self.url(&format!("/api/packages/gcs/{name}"));
        match self.send(self.http.get(url)).await {
            Ok(_) => Ok(true),
            Err(Failure::Status(status, _)) if status == reqwest::StatusCode::NOT_FOUND => {
                Ok(false)
            }
            Err(failure) => Err(failure),
        }
    }

    /// `PUT /api/packages/gcs/{name}` with the zip.
    pub async fn upload_package(&self, name: &str, bytes: Vec<u8>) -> Result<(), Failure> {
        let url = self.url(&format!("/api/packages/gcs/{name}"));
        self.send(self.http.put(url).body(bytes)).await.map(|_| ())
    }

    /// `POST /api/jobs/` (the trailing slash is required).
    pub async fn submit(&self, body: &Value) -> Result<(), Failure> {
        self.send(self.http.post(self.url("/api/jobs/")).json(body)).await.map(|_| ())
    }

    /// `GET /api/jobs/{id}`; `None` when Ray does not know it.
    pub async fn job(&self, id: &str) -> Result<Option<JobInfo>, Failure> {
        match self.send(self.http.get(self.url(&format!("/api/jobs/{id}")))).await {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|error| Failure::Transport(format!("unexpected job answer: {error}"))),
            Err(Failure::Status(status, _)) if status == reqwest::StatusCode::NOT_FOUND => Ok(None),
            Err(failure) => Err(failure),
        }
    }

    /// `GET /api/jobs/{id}/logs`: the whole log so far.
    pub async fn logs(&self, id: &str) -> Result<String, Failure> {
        #[derive(Deserialize)]
        struct Logs {
            logs: String,
        }
        let text = self.send(self.http.get(self.url(&format!("/api/jobs/{id}/logs")))).await?;
        serde_json::from_str::<Logs>(&text)
            .map(|logs| logs.logs)
            .map_err(|error| Failure::Transport(format!("unexpected logs answer: {error}")))
    }

    /// `POST /api/jobs/{id}/stop`.
    pub async fn stop(&self, id: &str) -> Result<(), Failure> {
        self.send(self.http.post(self.url(&format!("/api/jobs/{id}/stop")))).await.map(|_| ())
    }

    /// `DELETE /api/jobs/{id}`.
    pub async fn delete(&self, id: &str) -> Result<(), Failure> {
        self.send(self.http.delete(self.url(&format!("/api/jobs/{id}")))).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_kinds() {
        let agent = Failure::Status(
            reqwest::StatusCode::INTERNAL_SERVER_ERROR,
            "No available agent to submit job, please try again later.".into(),
        );
        assert!(agent.is_retryable());
        assert!(matches!(agent.into_error("submit the job"), ExecError::Unavailable(_)));
        let duplicate = Failure::Status(
            reqwest::StatusCode::INTERNAL_SERVER_ERROR,
            "Traceback...\nValueError: Job with submission_id x already exists.".into(),
        );
        assert!(duplicate.is_duplicate() && !duplicate.is_retryable());
        let long = "x".repeat(2000) + "the end";
        assert!(shorten(&long).ends_with("the end") && shorten(&long).len() < 700);
    }
}
