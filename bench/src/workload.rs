//! The workloads: many small runs (a), large metric batches (b), seeding an experiment, and
//! filtered, ordered search over it (c). Payloads are deterministic functions of the run index,
//! so both servers receive exactly the same data and their search answers can be compared.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::client::{Api, now_millis};

/// The filter and order of workload (c).
pub const SEARCH_FILTER: &str = "metrics.m0 > 0.5 and params.p0 = 'a'";
/// The sort clause of workload (c).
pub const SEARCH_ORDER: &str = "metrics.m1 DESC";
/// The page size of workload (c).
pub const SEARCH_PAGE: usize = 100;

/// What one job (one run, one batch, one seeded model) reported.
pub struct JobResult {
    /// Whether every request of the job succeeded.
    pub ok: bool,
    /// Latencies of the job's successful requests.
    pub latencies: Vec<Duration>,
}

/// Throughput and latency of a concurrent workload.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// Jobs that completed without a failed request.
    pub ok_jobs: u64,
    /// Jobs with at least one failed request.
    pub failed_jobs: u64,
    /// Latencies of the successful requests.
    pub latencies: Vec<Duration>,
    /// Wall time of the whole workload.
    pub elapsed: Duration,
}

impl Throughput {
    /// Returns successful jobs per second.
    pub fn jobs_per_second(&self) -> f64 {
        self.ok_jobs as f64 / self.elapsed.as_secs_f64()
    }

    /// Returns successful requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Latencies of workload (c) and what the first page contained.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// Latency of each timed call.
    pub latencies: Vec<Duration>,
    /// Run names of the first page, in the order returned.
    pub run_names: Vec<String>,
    /// Whether every returned run matches the filter and the page is sorted by m1 descending.
    pub valid: bool,
    /// Whether a next page token was returned (expected with more than 100 matches).
    pub has_next_page: bool,
}

/// Runs `total` jobs with at most `clients` in flight and prints progress to stderr.
pub async fn drive<F, Fut>(label: &str, total: usize, clients: usize, job: F) -> Throughput
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = JobResult>,
{
    let started = Instant::now();
    let mut outcome = Throughput::default();
    let step = (total / 10).max(1);
    let mut results = futures::stream::iter(0..total).map(&job).buffer_unordered(clients.max(1));
    let mut done = 0;
    while let Some(result) = results.next().await {
        done += 1;
        if result.ok {
            outcome.ok_jobs += 1;
        } else {
            outcome.failed_jobs += 1;
        }
        outcome.latencies.extend(result.latencies);
        if done % step == 0 || done == total {
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprintln!("[bench]   {label}: {done}/{total} ({rate:.1}/s)");
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// A deterministic value in [0, 1) for run `index` and key `key` (splitmix64).
fn unit(index: usize, key: usize) -> f64 {
    let mut z = (index as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((key as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1_u64 << 53) as f64
}

/// The small log-batch of a seeded run: p0..p4 from {a, b, c}, m0..m4 in [0, 1), one tag.
fn small_batch(run_id: &str, index: usize) -> Value {
    let timestamp = now_millis();
    let params: Vec<Value> = (0..5)
        .map(|key| {
            let choice = ["a", "b", "c"][(unit(index, 100 + key) * 3.0) as usize % 3];
            json!({ "key": format!("p{key}"), "value": choice })
        })
        .collect();
    let metrics: Vec<Value> = (0..5)
        .map(|key| {
            let value = unit(index, key);
            json!({ "key": format!("m{key}"), "value": value, "timestamp": timestamp, "step": 0 })
        })
        .collect();
    let tags = vec![json!({ "key": "bench.kind", "value": "small" })];
    json!({ "run_id": run_id, "params": params, "metrics": metrics, "tags": tags })
}

/// Creates one run and logs its small batch; the job behind workloads (a) and the seeding.
async fn run_with_small_batch(
    api: &Api,
    experiment_id: &str,
    prefix: &str,
    index: usize,
) -> JobResult {
    let mut latencies = Vec::with_capacity(2);
    let Ok((run_id, latency)) = api.create_run(experiment_id, &format!("{prefix}-{index}")).await
    else {
        return JobResult { ok: false, latencies };
    };
    latencies.push(latency);
    let Ok((_, latency)) = api.post("runs/log-batch", &small_batch(&run_id, index)).await else {
        return JobResult { ok: false, latencies };
    };
    latencies.push(latency);
    JobResult { ok: true, latencies }
}

/// Workload (a) and the seeding of (c): `runs` × (runs/create + one small runs/log-batch).
pub async fn small_runs(
    api: &Api,
    label: &str,
    experiment_id: &str,
    runs: usize,
    clients: usize,
) -> Throughput {
    drive(label, runs, clients, |index| run_with_small_batch(api, experiment_id, "run", index))
        .await
}

/// Workload (b): `calls` runs/log-batch requests of 10 keys × `steps` steps into fresh runs.
/// The runs are created first, untimed.
pub async fn large_batches(
    api: &Api,
    label: &str,
    experiment_id: &str,
    calls: usize,
    steps: usize,
    clients: usize,
) -> Throughput {
    let mut run_ids = Vec::with_capacity(calls);
    for index in 0..calls {
        // A failed creation is recorded by the client and counted below as a failed job.
        let created = api.create_run(experiment_id, &format!("batch-{index}")).await;
        run_ids.push(created.ok().map(|(run_id, _)| run_id));
    }
    let bodies: Vec<Option<Value>> = run_ids
        .iter()
        .map(|run_id| {
            let run_id = run_id.as_ref()?;
            let timestamp = now_millis();
            let metrics: Vec<Value> = (0..10)
                .flat_map(|key| (0..steps).map(move |step| (key, step)))
                .map(|(key, step)| {
                    json!({ "key": format!("loss{key}"), "value": 1.0 / (1.0 + step as f64),
                            "timestamp": timestamp + step as i64, "step": step })
                })
                .collect();
            Some(json!({ "run_id": run_id, "metrics": metrics }))
        })
        .collect();
    let job = |index: usize| {
        let body = bodies[index].as_ref();
        async move {
            let Some(body) = body else {
                return JobResult { ok: false, latencies: Vec::new() };
            };
            match api.post("runs/log-batch", body).await {
                Ok((_, latency)) => JobResult { ok: true, latencies: vec![latency] },
                Err(_) => JobResult { ok: false, latencies: Vec::new() },
            }
        }
    };
    drive(label, calls, clients, job).await
}

/// Workload (c): one untimed warm-up call, whose page is checked, then `repeats` timed calls.
pub async fn search(api: &Api, experiment_id: &str, repeats: usize) -> SearchOutcome {
    let body = json!({
        "experiment_ids": [experiment_id],
        "filter": SEARCH_FILTER,
        "order_by": [SEARCH_ORDER],
        "max_results": SEARCH_PAGE,
    });
    let mut outcome = match api.post("runs/search", &body).await {
        Ok((first_page, _)) => inspect_page(&first_page),
        Err(error) => {
            eprintln!("[bench]   warm-up search failed: {error:#}");
            SearchOutcome::default()
        }
    };
    for call in 0..repeats {
        match api.post("runs/search", &body).await {
            Ok((_, latency)) => outcome.latencies.push(latency),
            Err(error) => eprintln!("[bench]   search call {call} failed: {error:#}"),
        }
    }
    outcome
}

/// Checks a page of runs/search against the filter and the order, and records the run names.
fn inspect_page(page: &Value) -> SearchOutcome {
    let runs = page["runs"].as_array().cloned().unwrap_or_default();
    let mut valid = true;
    let mut previous_m1 = f64::INFINITY;
    let mut run_names = Vec::with_capacity(runs.len());
    for run in &runs {
        let find = |list: &str, key: &str| {
            run["data"][list]
                .as_array()
                .and_then(|entries| entries.iter().find(|entry| entry["key"] == key))
                .map(|entry| entry["value"].clone())
        };
        let m0 = find("metrics", "m0").and_then(|value| value.as_f64());
        let m1 = find("metrics", "m1").and_then(|value| value.as_f64());
        let p0 = find("params", "p0");
        let matches = m0.is_some_and(|m0| m0 > 0.5) && p0.is_some_and(|p0| p0 == "a");
        let sorted = m1.is_some_and(|m1| m1 <= previous_m1);
        valid &= matches && sorted;
        previous_m1 = m1.unwrap_or(f64::NEG_INFINITY);
        run_names.push(run["info"]["run_name"].as_str().unwrap_or("?").to_owned());
    }
    SearchOutcome {
        latencies: Vec::new(),
        valid: valid && !runs.is_empty(),
        has_next_page: page["next_page_token"].as_str().is_some_and(|token| !token.is_empty()),
        run_names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_values_are_in_range_and_deterministic() {
        for index in 0..1000 {
            let value = unit(index, 3);
            assert!((0.0..1.0).contains(&value));
            assert_eq!(value.to_bits(), unit(index, 3).to_bits());
        }
    }
}
