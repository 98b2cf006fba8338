//! A minimal MLflow REST client over plain HTTP, shared by every workload and both servers.
//!
//! Every non-2xx answer and transport error is recorded with its endpoint, status and body, so
//! a failing server shows up in the report instead of silently inflating throughput.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

/// How many failures are kept verbatim for the report; the rest are only counted.
const KEPT_FAILURES: usize = 20;

/// One failed request, as the server answered it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The path under `/api/2.0/mlflow/`, e.g. `runs/log-batch`.
    pub endpoint: String,
    /// The HTTP status, or `None` for a transport error (refused, reset, timeout).
    pub status: Option<u16>,
    /// The response body, or the transport error's text.
    pub body: String,
}

/// A client bound to one server's base URL.
pub struct Api {
    http: reqwest::Client,
    base_url: String,
    requests: AtomicU64,
    failure_count: AtomicU64,
    failures: Mutex<Vec<Failure>>,
}

impl Api {
    /// Builds a client for `base_url` with a connection pool sized for `clients` tasks, sending
    /// `token` as a Bearer token when given.
    pub fn new(base_url: &str, clients: usize, token: Option<&str>) -> Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the bootstrap token is not a valid header value")?;
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(clients.max(1) * 2)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.to_owned(),
            requests: AtomicU64::new(0),
            failure_count: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
        })
    }

    /// Posts `body` to `/api/2.0/mlflow/{endpoint}` and returns the JSON answer and its latency.
    pub async fn post(&self, endpoint: &str, body: &Value) -> Result<(Value, Duration)> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base_url);
        // Timed from before the body is serialised, as before `get` was added.
        let started = Instant::now();
        self.send(endpoint, started, self.http.post(&url).json(body)).await
    }

    /// Sends `GET /api/2.0/mlflow/{endpoint}?{query}` (a key may repeat, e.g. `order_by`) and
    /// returns the JSON answer and its latency.
    pub async fn get(&self, endpoint: &str, query: &[(&str, String)]) -> Result<(Value, Duration)> {
        let mut url = reqwest::Url::parse(&format!("{}/api/2.0/mlflow/{endpoint}", self.base_url))
            .with_context(|| format!("building the URL of {endpoint}"))?;
        url.query_pairs_mut().extend_pairs(query);
        self.send(endpoint, Instant::now(), self.http.get(url)).await
    }

    /// Sends one request and returns its JSON answer and its latency since `started`; failures
    /// are recorded.
    async fn send(
        &self,
        endpoint: &str,
        started: Instant,
        request: reqwest::RequestBuilder,
    ) -> Result<(Value, Duration)> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = request.send().await;
        let response = match answer {
            Ok(response) => response,
            Err(error) => return Err(self.fail(endpoint, None, error.to_string())),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => {
                return Err(self.fail(endpoint, Some(status.as_u16()), error.to_string()));
            }
        };
        let latency = started.elapsed();
        if !status.is_success() {
            return Err(self.fail(endpoint, Some(status.as_u16()), text));
        }
        let value = serde_json::from_str(&text).map_err(|error| {
            self.fail(endpoint, Some(status.as_u16()), format!("{error}: {text}"))
        })?;
        Ok((value, latency))
    }

    fn fail(&self, endpoint: &str, status: Option<u16>, body: String) -> anyhow::Error {
        self.failure_count.fetch_add(1, Ordering::Relaxed);
        let error = anyhow!("{endpoint} failed ({status:?}): {body}");
        let failure = Failure { endpoint: endpoint.to_owned(), status, body };
        if let Ok(mut kept) = self.failures.lock()
            && kept.len() < KEPT_FAILURES
        {
            eprintln!(
                "[bench] request failed: {} {:?} {}",
                failure.endpoint, failure.status, failure.body
            );
            kept.push(failure);
        }
        error
    }

    /// Returns the number of requests sent so far.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Returns the number of failed requests so far.
    pub fn failure_count(&self) -> u64 {
        self.failure_count.load(Ordering::Relaxed)
    }

    /// Returns the first failures verbatim.
    pub fn failures(&self) -> Vec<Failure> {
        self.failures.lock().map(|kept| kept.clone()).unwrap_or_default()
    }

    /// Creates an experiment with a unique name and returns its id.
    pub async fn create_experiment(&self, prefix: &str) -> Result<String> {
        let name = format!("{prefix}-{}", uuid::Uuid::new_v4().simple());
        let (answer, _) = self.post("experiments/create", &json!({ "name": name })).await?;
        answer["experiment_id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("experiments/create answered without an id: {answer}"))
    }

    /// Creates a run named `run_name` and returns its id and the request latency.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
    ) -> Result<(String, Duration)> {
        let body = json!({
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": now_millis(),
        });
        let (answer, latency) = self.post("runs/create", &body).await?;
        let run_id = answer["run"]["info"]["run_id"]
            .as_str()
            .with_context(|| format!("runs/create answered without a run id: {answer}"))?;
        Ok((run_id.to_owned(), latency))
    }
}

/// Returns the current Unix time in milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
