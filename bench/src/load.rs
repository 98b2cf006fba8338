//! A closed-loop HTTP/1.1 load generator for the serving scenario: `connections` clients, each
//! with exactly one keep-alive connection, send `POST`s back to back for a warm-up and then a
//! measured window, cycling through prepared bodies.
//!
//! It runs on its own OS thread with a single-threaded tokio runtime, so on a small machine it
//! takes at most one core from the server under test (its CPU time is measured and reported),
//! and it uses hyper's connection API directly (no pool, no per-request URL parsing), the
//! cheapest client available in the workspace. Being closed-loop, a slow answer delays the next
//! request on its connection (coordinated omission): read latency from the 1-connection runs and
//! throughput from the multi-connection ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};

use crate::procfs;

/// How many failures are kept verbatim; the rest are only counted.
const KEPT_FAILURES: usize = 5;

/// What to send, how hard and for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The server's address.
    pub addr: SocketAddr,
    /// The request path, e.g. `/invocations`.
    pub path: String,
    /// JSON bodies, sent in turn (connection `c` starts at body `c`).
    pub bodies: Arc<Vec<Bytes>>,
    /// Concurrent connections, each with one request in flight.
    pub connections: usize,
    /// Untimed sending before the measured window.
    pub warm_up: Duration,
    /// The measured window.
    pub duration: Duration,
    /// The server's process-group leader, whose tree's CPU time is sampled at the window's edges.
    pub server_pid: Option<u32>,
}

/// What one load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadOutcome {
    /// Latencies of the successful requests that completed inside the window.
    pub latencies: Vec<Duration>,
    /// The measured window.
    pub window: Duration,
    /// Requests sent over the whole run, warm-up included.
    pub requests: u64,
    /// Failed requests (non-2xx or transport error) over the whole run, warm-up included.
    pub errors: u64,
    /// The first failures: status or transport error, and the start of the body.
    pub failures: Vec<String>,
    /// CPU time of the server's process tree during the window, when sampled.
    pub server_cpu: Option<Duration>,
    /// CPU time of the load generator's thread over the whole run.
    pub client_cpu: Option<Duration>,
    /// Wall time of the whole run, warm-up included.
    pub wall: Duration,
}

impl LoadOutcome {
    /// Successful requests per second in the window.
    pub fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }

    /// Server CPU time per successful request in the window, in microseconds.
    pub fn server_cpu_per_request_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (!self.latencies.is_empty()).then(|| cpu.as_secs_f64() * 1e6 / self.latencies.len() as f64)
    }

    /// The load generator's CPU use, as a share of one core over the run.
    pub fn client_core_share(&self) -> Option<f64> {
        Some(self.client_cpu?.as_secs_f64() / self.wall.as_secs_f64())
    }
}

/// What one connection counted.
#[derive(Default)]
struct ConnectionTally {
    latencies: Vec<Duration>,
    requests: u64,
    errors: u64,
    failures: Vec<String>,
}

impl ConnectionTally {
    fn fail(&mut self, failure: String) {
        self.errors += 1;
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(failure);
        }
    }
}

/// Runs the load on a dedicated thread with its own single-threaded runtime and returns what it
/// measured.
pub async fn run(spec: LoadSpec) -> Result<LoadOutcome> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("building the load generator's runtime")
                .and_then(|runtime| runtime.block_on(drive(spec)));
            let _receiver_gone = sender.send(outcome);
        })
        .context("spawning the load generator thread")?;
    receiver.await.context("the load generator thread died")?
}

/// Opens one HTTP/1.1 keep-alive connection to `addr` (TCP_NODELAY), its driver spawned on the
/// current runtime.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await.context("connecting")?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes the connection.
        let _closed = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer; returns the status and the body.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    spec: &LoadSpec,
    host: &str,
    body: Bytes,
) -> Result<(hyper::StatusCode, Bytes)> {
    let request = hyper::Request::post(spec.path.as_str())
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .context("building the request")?;
    sender.ready().await.context("waiting for the connection")?;
    let response = sender.send_request(request).await.context("sending")?;
    let status = response.status();
    let body = response.into_body().collect().await.context("reading the answer")?.to_bytes();
    Ok((status, body))
}

/// One client: one connection (reopened after a transport error), one request in flight.
async fn client(spec: Arc<LoadSpec>, index: usize, window: (Instant, Instant)) -> ConnectionTally {
    let (window_start, end) = window;
    let host = spec.addr.to_string();
    let mut tally = ConnectionTally::default();
    let mut next = index;
    'reconnect: while Instant::now() < end {
        let mut sender = match connect(spec.addr).await {
            Ok(sender) => sender,
            Err(error) => {
                tally.fail(format!("transport: {error:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while Instant::now() < end {
            let body = spec.bodies[next % spec.bodies.len()].clone();
            next += 1;
            tally.requests += 1;
            let started = Instant::now();
            let answer = exchange(&mut sender, &spec, &host, body).await;
            let finished = Instant::now();
            match answer {
                Ok((status, _)) if status.is_success() => {
                    if finished >= window_start && finished <= end {
                        tally.latencies.push(finished - started);
                    }
                }
                Ok((status, body)) => {
                    let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                    tally.fail(format!("status {status}: {text}"));
                }
                Err(error) => {
                    tally.fail(format!("transport: {error:#}"));
                    continue 'reconnect;
                }
            }
        }
    }
    tally
}

async fn drive(spec: LoadSpec) -> Result<LoadOutcome> {
    if spec.bodies.is_empty() {
        return Err(anyhow!("no request bodies to send"));
    }
    let ticks = procfs::clock_ticks_per_second() as f64;
    let to_duration = |ticks_used: u64| Duration::from_secs_f64(ticks_used as f64 / ticks);
    let client_start = procfs::thread_cpu_ticks();
    let started = Instant::now();
    let window_start = started + spec.warm_up;
    let end = window_start + spec.duration;
    let spec = Arc::new(spec);
    let clients: Vec<_> = (0..spec.connections.max(1))
        .map(|index| tokio::spawn(client(Arc::clone(&spec), index, (window_start, end))))
        .collect();
    let server_pid = spec.server_pid;
    let sampler = tokio::spawn(async move {
        let pid = server_pid?;
        tokio::time::sleep_until(window_start.into()).await;
        let before = procfs::tree_cpu_ticks(pid);
        tokio::time::sleep_until(end.into()).await;
        Some(procfs::tree_cpu_ticks(pid).saturating_sub(before))
    });
    let mut outcome = LoadOutcome { window: spec.duration, ..LoadOutcome::default() };
    for handle in clients {
        let tally = handle.await.context("a load client panicked")?;
        outcome.latencies.extend(tally.latencies);
        outcome.requests += tally.requests;
        outcome.errors += tally.errors;
        for failure in tally.failures {
            if outcome.failures.len() < KEPT_FAILURES {
                outcome.failures.push(failure);
            }
        }
    }
    outcome.server_cpu = sampler.await.context("the CPU sampler panicked")?.map(to_duration);
    outcome.wall = started.elapsed();
    outcome.client_cpu = client_start
        .zip(procfs::thread_cpu_ticks())
        .map(|(before, after)| to_duration(after.saturating_sub(before)));
    Ok(outcome)
}
