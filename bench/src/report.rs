//! The results of one server's session and the markdown table comparing Cairn with MLflow,
//! with the ratios and the targets from the issue. Missed targets are reported, never fatal.

use std::fmt::Write as _;
use std::time::Duration;

use crate::client::Failure;
use crate::load::LoadOutcome;
use crate::registry::{QueryOutcome, RegistryOutcome};
use crate::server::MemoryReport;
use crate::serving::{
    Agreement, CHECK_ROWS, ModelOutcome, PROBABILITY_TOLERANCE, ServerRuns, ServingOutcome, Timing,
};
use crate::workload::{SearchOutcome, Throughput};

/// Throughput target of workloads (a) and (b): Cairn at least this many times MLflow.
const THROUGHPUT_TARGET: f64 = 50.0;
/// Latency target of workload (c): Cairn's p50 at least this many times lower.
const SEARCH_TARGET: f64 = 30.0;
/// Cairn's cold start target, in milliseconds.
const COLD_START_TARGET_MS: f64 = 500.0;
/// Cairn's resident memory target, in MiB.
const RSS_TARGET_MIB: f64 = 150.0;
/// Cairn's p50 target for each registry search, in milliseconds.
const REGISTRY_P50_TARGET_MS: f64 = 10.0;
/// Serving throughput target at `--serving-connections`: Cairn at least this many times MLflow.
const SERVING_THROUGHPUT_TARGET: f64 = 50.0;
/// Cairn's serving p99 target at `--serving-connections`, in milliseconds.
const SERVING_P99_TARGET_MS: f64 = 5.0;
/// Capture on may cost at most this share of throughput (issue 5).
const CAPTURE_COST_TARGET: f64 = 0.10;
/// Cairn's in-process time per row at most this many times onnxruntime's (one-row p50).
const INPROC_RATIO_TARGET: f64 = 3.0;

/// Everything measured on one server.
#[derive(Debug, Clone, Default)]
pub struct ServerResults {
    /// Time from spawn to the first healthy answer, one entry per start.
    pub start_times: Vec<Duration>,
    /// Workload (a).
    pub small_runs: Throughput,
    /// Workload (b).
    pub large_batches: Throughput,
    /// Metric points per request in (b).
    pub points_per_batch: usize,
    /// Seeding the search experiment.
    pub seed: Throughput,
    /// Workload (c).
    pub search: SearchOutcome,
    /// The registry scenario, when it ran.
    pub registry: Option<RegistryOutcome>,
    /// Memory of the process tree at the end.
    pub memory: MemoryReport,
    /// Requests sent, including warm-up and setup.
    pub requests: u64,
    /// Requests that failed.
    pub failure_count: u64,
    /// The first failures verbatim.
    pub failures: Vec<Failure>,
}

/// Returns the `p`-th percentile (nearest rank) in milliseconds, or NaN when empty.
pub fn percentile_ms(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "**NO**" }
}

/// One row of the table; `mlflow` and `ratio` are empty when MLflow was skipped.
struct Row {
    measure: String,
    cairn: String,
    mlflow: String,
    ratio: String,
    target: String,
    met: String,
}

fn row(measure: impl Into<String>, cairn: String, mlflow: Option<String>) -> Row {
    Row {
        measure: measure.into(),
        cairn,
        mlflow: mlflow.unwrap_or_else(|| "—".into()),
        ratio: "—".into(),
        target: "—".into(),
        met: "—".into(),
    }
}

/// Fills ratio/target/met for a higher-is-better measure (Cairn ÷ MLflow).
fn higher_is_better(mut row: Row, cairn: f64, mlflow: Option<f64>, target: Option<f64>) -> Row {
    if let Some(mlflow) = mlflow {
        let ratio = cairn / mlflow;
        row.ratio = format!("{ratio:.1}×");
        if let Some(target) = target {
            row.met = yes_no(ratio >= target).into();
        }
    }
    if let Some(target) = target {
        row.target = format!("≥ {target:.0}×");
    }
    row
}

/// Fills ratio/target/met for a lower-is-better measure (MLflow ÷ Cairn, "× lower").
fn lower_is_better(mut row: Row, cairn: f64, mlflow: Option<f64>, target: Option<f64>) -> Row {
    if let Some(mlflow) = mlflow {
        let ratio = mlflow / cairn;
        row.ratio = format!("{ratio:.1}× lower");
        if let Some(target) = target {
            row.met = yes_no(ratio >= target).into();
        }
    }
    if let Some(target) = target {
        row.target = format!("≥ {target:.0}× lower");
    }
    row
}

fn latency_pair(latencies: &[Duration]) -> String {
    format!("{:.1} / {:.1}", percentile_ms(latencies, 50.0), percentile_ms(latencies, 95.0))
}

/// Renders the comparison table as markdown; `mlflow` is `None` with `--skip-mlflow`. Without
/// `tracking`, only start, memory and failure rows are shown.
pub fn render(
    cairn: &ServerResults,
    mlflow: Option<&ServerResults>,
    clients: usize,
    tracking: bool,
) -> String {
    let mut rows = if tracking { tracking_rows(cairn, mlflow, clients) } else { Vec::new() };
    rows.push(cold_start_row(cairn, mlflow));
    rows.push(memory_row(cairn, mlflow));
    let sampled = |r: &ServerResults| {
        format!("{:.1} ({} samples)", mib(r.memory.sampled_peak_kib), r.memory.samples)
    };
    rows.push(row(
        "peak sampled RSS (sum of VmRSS over tree), MiB",
        sampled(cairn),
        mlflow.map(sampled),
    ));
    let failures = |r: &ServerResults| format!("{} of {}", r.failure_count, r.requests);
    rows.push(row("failed requests (non-2xx or transport)", failures(cairn), mlflow.map(failures)));
    to_markdown(&rows)
}

/// The rows of workloads (a), (b) and (c).
fn tracking_rows(
    cairn: &ServerResults,
    mlflow: Option<&ServerResults>,
    clients: usize,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let (a_c, a_m) = (&cairn.small_runs, mlflow.map(|m| &m.small_runs));
    let runs = a_c.ok_jobs + a_c.failed_jobs;
    rows.push(higher_is_better(
        row(
            format!("(a) runs/s — {runs} × (create + log-batch 5p/5m/1t), {clients} clients"),
            format!("{:.1}", a_c.jobs_per_second()),
            a_m.map(|m| format!("{:.1}", m.jobs_per_second())),
        ),
        a_c.jobs_per_second(),
        a_m.map(Throughput::jobs_per_second),
        Some(THROUGHPUT_TARGET),
    ));
    rows.push(higher_is_better(
        row(
            "(a) requests/s",
            format!("{:.1}", a_c.requests_per_second()),
            a_m.map(|m| format!("{:.1}", m.requests_per_second())),
        ),
        a_c.requests_per_second(),
        a_m.map(Throughput::requests_per_second),
        None,
    ));
    rows.push(lower_is_better(
        row(
            "(a) request latency p50 / p95, ms",
            latency_pair(&a_c.latencies),
            a_m.map(|m| latency_pair(&m.latencies)),
        ),
        percentile_ms(&a_c.latencies, 50.0),
        a_m.map(|m| percentile_ms(&m.latencies, 50.0)),
        None,
    ));
    let (b_c, b_m) = (&cairn.large_batches, mlflow.map(|m| &m.large_batches));
    let points = |t: &Throughput| t.jobs_per_second() * cairn.points_per_batch as f64;
    let calls = b_c.ok_jobs + b_c.failed_jobs;
    rows.push(higher_is_better(
        row(
            format!(
                "(b) metric points/s — {calls} × log-batch of {}, {clients} clients",
                cairn.points_per_batch
            ),
            format!("{:.0}", points(b_c)),
            b_m.map(|m| format!("{:.0}", points(m))),
        ),
        points(b_c),
        b_m.map(points),
        Some(THROUGHPUT_TARGET),
    ));
    rows.push(lower_is_better(
        row(
            "(b) log-batch latency p50 / p95, ms",
            latency_pair(&b_c.latencies),
            b_m.map(|m| latency_pair(&m.latencies)),
        ),
        percentile_ms(&b_c.latencies, 50.0),
        b_m.map(|m| percentile_ms(&m.latencies, 50.0)),
        None,
    ));
    let (s_c, s_m) = (&cairn.seed, mlflow.map(|m| &m.seed));
    let seeded = s_c.ok_jobs + s_c.failed_jobs;
    rows.push(higher_is_better(
        row(
            format!("seeding (c): {seeded} runs, runs/s"),
            format!("{:.1}", s_c.jobs_per_second()),
            s_m.map(|m| format!("{:.1}", m.jobs_per_second())),
        ),
        s_c.jobs_per_second(),
        s_m.map(Throughput::jobs_per_second),
        None,
    ));
    for (label, p, target) in [("p50", 50.0, Some(SEARCH_TARGET)), ("p95", 95.0, None)] {
        let c = percentile_ms(&cairn.search.latencies, p);
        let m = mlflow.map(|m| percentile_ms(&m.search.latencies, p));
        rows.push(lower_is_better(
            row(
                format!("(c) runs/search {label}, ms ({} calls)", cairn.search.latencies.len()),
                format!("{c:.1}"),
                m.map(|m| format!("{m:.1}")),
            ),
            c,
            m,
            target,
        ));
    }
    let page = |s: &SearchOutcome| {
        format!("{} runs, valid: {}, next page: {}", s.run_names.len(), s.valid, s.has_next_page)
    };
    let mut page_row = row(
        "(c) first page (filter + order checked)",
        page(&cairn.search),
        mlflow.map(|m| page(&m.search)),
    );
    if let Some(m) = mlflow {
        page_row.ratio =
            if m.search.run_names == cairn.search.run_names && !m.search.run_names.is_empty() {
                "identical runs and order".into()
            } else {
                "**pages differ**".into()
            };
    }
    rows.push(page_row);
    rows
}

/// Renders the registry scenario: seeding rate, then one row per query kind and one for all
/// queries pooled, with Cairn's p50 against the 10 ms target.
pub fn render_registry(cairn: &RegistryOutcome, mlflow: Option<&RegistryOutcome>) -> String {
    let (s_c, s_m) = (&cairn.seed, mlflow.map(|m| &m.seed));
    let versions = |t: &Throughput| t.jobs_per_second() * cairn.versions_per_model as f64;
    let models = s_c.ok_jobs + s_c.failed_jobs;
    let seed_rows = [
        higher_is_better(
            row(
                format!(
                    "registry seeding: {models} models × {} versions (tagged), versions/s",
                    cairn.versions_per_model
                ),
                format!("{:.1}", versions(s_c)),
                s_m.map(|m| format!("{:.1}", versions(m))),
            ),
            versions(s_c),
            s_m.map(versions),
            None,
        ),
        lower_is_better(
            row(
                "registry create latency p50 / p95, ms (models/create, model-versions/create)",
                latency_pair(&s_c.latencies),
                s_m.map(|m| latency_pair(&m.latencies)),
            ),
            percentile_ms(&s_c.latencies, 50.0),
            s_m.map(|m| percentile_ms(&m.latencies, 50.0)),
            None,
        ),
    ];
    let mut out = to_markdown(&seed_rows);
    let repeats = cairn.queries.first().map_or(0, |q| q.latencies.len());
    let _infallible = write!(
        out,
        "\n| Query (GET …/search, {repeats} timed calls each) | Results, Cairn / MLflow | Same results \
         | Cairn p50 / p95, ms | MLflow p50 / p95, ms | p50 ratio | Target | Met |\n\
         |---|---:|---|---:|---:|---:|---|---|\n"
    );
    let find = |label: &str| mlflow.and_then(|m| m.queries.iter().find(|q| q.label == label));
    let mut pooled_c = Vec::new();
    let mut pooled_m = Vec::new();
    let mut all_same = true;
    for query in &cairn.queries {
        let other = find(&query.label);
        pooled_c.extend(query.latencies.iter().copied());
        if let Some(other) = other {
            pooled_m.extend(other.latencies.iter().copied());
        }
        let same = other.map(|other| same_results(query, other));
        all_same &= same.unwrap_or(true);
        let results = format!(
            "{} / {}",
            answer_size(Some(query)),
            mlflow.map_or("—".into(), |_| answer_size(other))
        );
        let latencies = (&query.latencies[..], other.map(|o| &o.latencies[..]));
        query_line(&mut out, &query.label, &results, same, latencies);
    }
    // A query only MLflow timed (a second page Cairn did not offer) is a difference in itself.
    for other in mlflow.map(|m| m.queries.as_slice()).unwrap_or_default() {
        if !cairn.queries.iter().any(|q| q.label == other.label) {
            all_same = false;
            let results = format!("— / {}", answer_size(Some(other)));
            query_line(
                &mut out,
                &other.label,
                &results,
                Some(false),
                (&[], Some(&other.latencies)),
            );
        }
    }
    let pooled_m = mlflow.map(|_| &pooled_m[..]);
    let same = mlflow.map(|_| all_same);
    query_line(&mut out, "**all queries pooled**", "—", same, (&pooled_c, pooled_m));
    out
}

/// Whether two servers answered a query the same: same identifiers and same paging.
fn same_results(cairn: &QueryOutcome, mlflow: &QueryOutcome) -> bool {
    cairn.ids.is_some() && cairn.ids == mlflow.ids && cairn.has_next_page == mlflow.has_next_page
}

/// The size of the first answer to a query, e.g. `100 + next page`.
fn answer_size(query: Option<&QueryOutcome>) -> String {
    match query.map(|q| (&q.ids, q.has_next_page)) {
        Some((Some(ids), true)) => format!("{} + next page", ids.len()),
        Some((Some(ids), false)) => ids.len().to_string(),
        Some((None, _)) => "failed".into(),
        None => "missing".into(),
    }
}

/// One row of the query table; `latencies` are Cairn's and MLflow's timed calls.
fn query_line(
    out: &mut String,
    label: &str,
    results: &str,
    same: Option<bool>,
    latencies: (&[Duration], Option<&[Duration]>),
) {
    let (cairn, mlflow) = latencies;
    let p50 = percentile_ms(cairn, 50.0);
    let ratio = mlflow
        .map_or_else(|| "—".to_owned(), |m| format!("{:.1}× lower", percentile_ms(m, 50.0) / p50));
    let _infallible = writeln!(
        out,
        "| {label} | {results} | {} | {} | {} | {ratio} | Cairn p50 < {REGISTRY_P50_TARGET_MS:.0} ms | {} |",
        same.map_or("—", |same| if same { "yes" } else { "**NO**" }),
        latency_pair(cairn),
        mlflow.map_or_else(|| "—".to_owned(), latency_pair),
        yes_no(p50 < REGISTRY_P50_TARGET_MS),
    );
}

fn cold_start_row(cairn: &ServerResults, mlflow: Option<&ServerResults>) -> Row {
    let summary = |r: &ServerResults| {
        let median = percentile_ms(&r.start_times, 50.0);
        let max = percentile_ms(&r.start_times, 100.0);
        (median, format!("{median:.0} (max {max:.0}, n={})", r.start_times.len()))
    };
    let (median, text) = summary(cairn);
    let mut start =
        row("start to healthy, ms (median, fresh data dir)", text, mlflow.map(|m| summary(m).1));
    if let Some(m) = mlflow {
        start.ratio = format!("{:.0}× faster", summary(m).0 / median);
    }
    start.target = format!("Cairn < {COLD_START_TARGET_MS:.0} ms");
    start.met = yes_no(median < COLD_START_TARGET_MS).into();
    start
}

fn memory_row(cairn: &ServerResults, mlflow: Option<&ServerResults>) -> Row {
    let hwm = |r: &ServerResults| {
        format!("{:.1} ({} proc)", mib(r.memory.hwm_sum_kib), r.memory.processes)
    };
    let mut memory =
        row("peak RSS (VmHWM, summed over process tree), MiB", hwm(cairn), mlflow.map(hwm));
    if let Some(m) = mlflow {
        memory.ratio =
            format!("{:.1}× less", m.memory.hwm_sum_kib as f64 / cairn.memory.hwm_sum_kib as f64);
    }
    memory.target = format!("Cairn < {RSS_TARGET_MIB:.0} MiB");
    memory.met = yes_no(mib(cairn.memory.hwm_sum_kib) < RSS_TARGET_MIB).into();
    memory
}

fn to_markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Measure | Cairn | MLflow 3.17.2 | Ratio | Target | Met |\n|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let _infallible = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.measure, r.cairn, r.mlflow, r.ratio, r.target, r.met
        );
    }
    out
}

/// Renders the recorded failures of one server, endpoint, status and body, for the report.
pub fn render_failures(label: &str, results: &ServerResults) -> String {
    let mut out = String::new();
    if results.failure_count == 0 {
        return out;
    }
    let _infallible = writeln!(
        out,
        "\n{label}: {} failed requests; first {}:",
        results.failure_count,
        results.failures.len()
    );
    for failure in &results.failures {
        let body: String = failure.body.chars().take(500).collect();
        let _infallible =
            writeln!(out, "- `{}` status {:?}: {body}", failure.endpoint, failure.status);
    }
    out
}

/// Pools two sessions of the same server kind: jobs, latencies and wall time add up.
pub fn merge(first: &ServerResults, second: &ServerResults) -> ServerResults {
    let pool = |a: &Throughput, b: &Throughput| Throughput {
        ok_jobs: a.ok_jobs + b.ok_jobs,
        failed_jobs: a.failed_jobs + b.failed_jobs,
        latencies: a.latencies.iter().chain(&b.latencies).copied().collect(),
        elapsed: a.elapsed + b.elapsed,
    };
    let mut search = first.search.clone();
    search.latencies.extend(second.search.latencies.iter().copied());
    let mut failures = first.failures.clone();
    failures.extend(second.failures.iter().cloned());
    ServerResults {
        start_times: first.start_times.iter().chain(&second.start_times).copied().collect(),
        small_runs: pool(&first.small_runs, &second.small_runs),
        large_batches: pool(&first.large_batches, &second.large_batches),
        points_per_batch: first.points_per_batch,
        seed: pool(&first.seed, &second.seed),
        search,
        registry: first.registry.clone(),
        memory: first.memory,
        requests: first.requests + second.requests,
        failure_count: first.failure_count + second.failure_count,
        failures,
    }
}

/// The cost of authentication: the same workloads on Cairn without and with `--auth enabled`.
pub fn render_auth_overhead(plain: &ServerResults, with_auth: &ServerResults) -> String {
    const TARGET_PERCENT: f64 = 10.0;
    let mut out = String::from(
        "Each column pools two sessions, run in the order disabled, enabled, enabled, disabled.\n\n| Measure (Cairn) | auth disabled | auth enabled (Bearer token) | Overhead | Target | Met |\n|---|---:|---:|---:|---|---|\n",
    );
    let mut line = |measure: &str,
                    plain_value: f64,
                    auth_value: f64,
                    higher_is_better: bool,
                    unit: &str| {
        let overhead = if higher_is_better {
            (plain_value / auth_value - 1.0) * 100.0
        } else {
            (auth_value / plain_value - 1.0) * 100.0
        };
        let _ = writeln!(
            out,
            "| {measure} | {plain_value:.1} {unit} | {auth_value:.1} {unit} | {overhead:+.1} % | ≤ {TARGET_PERCENT:.0} % | {} |",
            yes_no(overhead <= TARGET_PERCENT)
        );
    };
    line(
        "(a) runs/s",
        plain.small_runs.jobs_per_second(),
        with_auth.small_runs.jobs_per_second(),
        true,
        "",
    );
    let points = |results: &ServerResults| {
        results.large_batches.jobs_per_second() * results.points_per_batch as f64
    };
    line("(b) metric points/s", points(plain), points(with_auth), true, "");
    line(
        "(c) runs/search p50",
        percentile_ms(&plain.search.latencies, 50.0),
        percentile_ms(&with_auth.search.latencies, 50.0),
        false,
        "ms",
    );
    out
}

/// Latency percentiles of a load run: `p50 / p95 / p99` in milliseconds.
fn latency_triple(outcome: &LoadOutcome) -> String {
    let p = |q: f64| percentile_ms(&outcome.latencies, q);
    format!("{:.2} / {:.2} / {:.2}", p(50.0), p(95.0), p(99.0))
}

/// Whether two answers agree, e.g. `yes (max |Δp| 3.0e-8)`.
fn agreement_text(agreement: Option<Agreement>) -> String {
    match agreement {
        None => "no answer".into(),
        Some(a) if a.rows == 0 => "**NO** (answers not comparable)".into(),
        Some(a) => format!(
            "{} ({} rows, labels {}, max \\|Δp\\| {})",
            yes_no(a.same()),
            a.rows,
            if a.same_labels { "equal" } else { "differ" },
            if a.max_diff == 0.0 { "0".to_owned() } else { format!("{:.1e}", a.max_diff) }
        ),
    }
}

/// The HTTP rows of one model: throughput and latency at `connections` and 1 connection,
/// Cairn's OIP route, CPU, failures and the prediction check.
fn serving_rows(model: &ModelOutcome, connections: usize) -> Vec<Row> {
    let cairn = &model.cairn;
    let mlflow = model.mlflow.as_ref();
    let mut rows = Vec::new();
    let rate = |o: &LoadOutcome| format!("{:.1}", o.requests_per_second());
    for (label, pick, target) in [
        (
            format!("{connections} connections: requests/s"),
            (|r: &ServerRuns| &r.concurrent) as fn(&ServerRuns) -> &LoadOutcome,
            Some(SERVING_THROUGHPUT_TARGET),
        ),
        ("1 connection: requests/s".to_owned(), |r: &ServerRuns| &r.single, None),
    ] {
        rows.push(higher_is_better(
            row(label, rate(pick(cairn)), mlflow.map(|m| rate(pick(m)))),
            pick(cairn).requests_per_second(),
            mlflow.map(|m| pick(m).requests_per_second()),
            target,
        ));
    }
    let p99 = |o: &LoadOutcome| percentile_ms(&o.latencies, 99.0);
    let mut concurrent_latency = row(
        format!("{connections} connections: latency p50 / p95 / p99, ms"),
        latency_triple(&cairn.concurrent),
        mlflow.map(|m| latency_triple(&m.concurrent)),
    );
    if let Some(m) = mlflow {
        concurrent_latency.ratio =
            format!("p99 {:.1}× lower", p99(&m.concurrent) / p99(&cairn.concurrent));
    }
    concurrent_latency.target = format!("Cairn p99 < {SERVING_P99_TARGET_MS:.0} ms");
    concurrent_latency.met = yes_no(p99(&cairn.concurrent) < SERVING_P99_TARGET_MS).into();
    rows.insert(1, concurrent_latency);
    let p50 = |o: &LoadOutcome| percentile_ms(&o.latencies, 50.0);
    let mut single_latency = row(
        "1 connection: latency p50 / p95 / p99, ms",
        latency_triple(&cairn.single),
        mlflow.map(|m| latency_triple(&m.single)),
    );
    if let Some(m) = mlflow {
        single_latency.ratio = format!("p50 {:.1}× lower", p50(&m.single) / p50(&cairn.single));
    }
    rows.push(single_latency);
    if let Some(oip) = &cairn.oip {
        rows.push(row(
            format!(
                "OIP `/v2/models/{}/infer`, {connections} connections: requests/s; latency p50 / p95 / p99, ms",
                model.registered
            ),
            format!("{}; {}", rate(oip), latency_triple(oip)),
            mlflow.map(|_| "—".to_owned()),
        ));
    }
    if let Some((off, on_again)) = &cairn.capture_ab {
        let on = (cairn.concurrent.requests_per_second() + on_again.requests_per_second()) / 2.0;
        let cost = 1.0 - on / off.requests_per_second();
        let mut capture = row(
            format!(
                "capture cost, {connections} connections: requests/s with capture on (before; after) / off (between)"
            ),
            format!("{}; {} / {}", rate(&cairn.concurrent), rate(on_again), rate(off)),
            mlflow.map(|_| "—".to_owned()),
        );
        capture.ratio = format!("{:.1} % slower with capture", cost * 100.0);
        capture.target = format!("< {:.0} % slower", CAPTURE_COST_TARGET * 100.0);
        capture.met = yes_no(cost < CAPTURE_COST_TARGET).into();
        rows.push(capture);
    }
    let cpu = |o: &LoadOutcome| {
        o.server_cpu_per_request_us().map_or_else(|| "?".to_owned(), |us| format!("{us:.0}"))
    };
    let mut cpu_row = row(
        format!("server CPU per request, µs ({connections} connections; 1 connection)"),
        format!("{}; {}", cpu(&cairn.concurrent), cpu(&cairn.single)),
        mlflow.map(|m| format!("{}; {}", cpu(&m.concurrent), cpu(&m.single))),
    );
    if let (Some(m), Some(c)) = (
        mlflow.and_then(|m| m.concurrent.server_cpu_per_request_us()),
        cairn.concurrent.server_cpu_per_request_us(),
    ) {
        cpu_row.ratio = format!("{:.1}× less", m / c);
    }
    rows.push(cpu_row);
    let share = |o: &LoadOutcome| {
        o.client_core_share().map_or_else(|| "?".to_owned(), |s| format!("{:.0} %", s * 100.0))
    };
    rows.push(row(
        format!("load generator CPU, share of one core ({connections} connections)"),
        share(&cairn.concurrent),
        mlflow.map(|m| share(&m.concurrent)),
    ));
    let failures = |r: &ServerRuns| {
        let (off, on_again) = r.capture_ab.as_ref().map(|(a, b)| (a, b)).unzip();
        let runs = [Some(&r.concurrent), Some(&r.single), r.oip.as_ref(), off, on_again];
        let (errors, requests) =
            runs.iter().flatten().fold((0, 0), |(e, n), o| (e + o.errors, n + o.requests));
        format!("{errors} of {requests}")
    };
    rows.push(row(
        "failed requests (non-2xx or transport), all runs incl. warm-up",
        failures(cairn),
        mlflow.map(failures),
    ));
    let versus_mlflow = mlflow.map(|m| match (&cairn.answer, &m.answer) {
        (Some(c), Some(m)) => Some(Agreement::of(c, m)),
        _ => None,
    });
    let oip_versus = match (&cairn.oip_answer, &cairn.answer) {
        (Some(oip), Some(invocations)) => Some(Agreement::of(oip, invocations)),
        _ => None,
    };
    let mut same = row(
        format!(
            "same predictions ({CHECK_ROWS} rows in one request; labels equal, max \\|Δp\\| ≤ {PROBABILITY_TOLERANCE:.0e})"
        ),
        format!("OIP vs invocations: {}", agreement_text(oip_versus)),
        versus_mlflow.map(|agreement| format!("Cairn vs MLflow: {}", agreement_text(agreement))),
    );
    same.target = "same".into();
    let all_same = oip_versus.is_some_and(|a| a.same())
        && versus_mlflow.is_none_or(|agreement| agreement.is_some_and(|a| a.same()));
    same.met = yes_no(all_same).into();
    rows.push(same);
    rows
}

fn timing_triple(timing: &Timing) -> String {
    format!(
        "{:.1} / {:.1} / {:.1} (n={})",
        timing.p50_us, timing.p99_us, timing.min_us, timing.calls
    )
}

/// Renders the serving scenario: per model the HTTP comparison, then the servers' start and
/// memory, then the in-process comparison of tract with onnxruntime.
pub fn render_serving(outcome: &ServingOutcome) -> String {
    let sizes = outcome.sizes;
    let mut out = format!(
        "Serving: single-row `dataframe_split` requests (20 features; {} prepared test rows sent \
         in turn), each run {:.0} s measured after {:.0} s of warm-up, closed loop over \
         keep-alive HTTP/1.1 connections from one client thread. MLflow: `mlflow models serve \
         --env-manager local -w 1` (sklearn flavour, `predict_proba`); Cairn: the skl2onnx \
         export deployed with `POST /api/v1/deployments`, at `/serve/<name>/invocations`. \
         Python: {}. Environment of the harness and Cairn: {}.\n",
        outcome.rows,
        sizes.duration.as_secs_f64(),
        sizes.warm_up.as_secs_f64(),
        outcome.versions,
        outcome.backtrace_env
    );
    for model in &outcome.models {
        let _infallible = writeln!(
            out,
            "\n**{}** (`{}`; ONNX {} bytes; test accuracy {:.3})\n",
            model.title, model.registered, model.onnx_bytes, model.accuracy
        );
        out.push_str(&to_markdown(&serving_rows(model, sizes.connections)));
    }
    let (cairn_started, cairn_memory) = outcome.cairn_server;
    out.push_str(
        "\n| Server | start to first 200 (`/healthz` or `/ping`), ms \
         | peak RSS (VmHWM over process tree), MiB |\n|---|---:|---:|\n",
    );
    let _infallible = writeln!(
        out,
        "| Cairn (one instance, both deployments) | {} | {:.1} ({} proc) |",
        cairn_started.as_millis(),
        mib(cairn_memory.hwm_sum_kib),
        cairn_memory.processes
    );
    for model in &outcome.models {
        if let Some((started, memory)) = &model.mlflow_server {
            let _infallible = writeln!(
                out,
                "| `mlflow models serve` {} | {} | {:.1} ({} proc) |",
                model.registered,
                started.as_millis(),
                mib(memory.hwm_sum_kib),
                memory.processes
            );
        }
    }
    let calls = outcome.models.first().map_or(0, |m| m.onnxruntime.calls);
    let _infallible = write!(
        out,
        "\nIn process, single thread, the same ONNX files: up to {calls} one-row calls after 200 \
         warm-up calls (tract: `cairn_serving::OnnxModel::predict` in this binary, stopped after \
         60 s; onnxruntime {}: `InferenceSession.run`, intra/inter-op threads 1, in Python), and \
         a 1000-row batch per row (median of up to 20 calls; tract stops after 10 s).\n\n\
         | Model | tract 1 row p50 / p99 / min, µs | onnxruntime 1 row p50 / p99 / min, µs \
         | p50 ratio (tract ÷ onnxruntime) | Target | Met \
         | 1000-row batch per row, tract / onnxruntime, µs \
         | Same predictions as onnxruntime ({} rows) |\n\
         |---|---:|---:|---:|---|---|---:|---|\n",
        outcome
            .versions
            .split(", ")
            .find(|v| v.starts_with("onnxruntime"))
            .map_or("", |v| v.trim_start_matches("onnxruntime ")),
        outcome.rows
    );
    for model in &outcome.models {
        let ratio = model.tract.p50_us / model.onnxruntime.p50_us;
        let _infallible = writeln!(
            out,
            "| {} | {} | {} | {ratio:.2}× | ≤ {INPROC_RATIO_TARGET:.0}× | {} | {:.3} / {:.3} (n={} / {}) | {} |",
            model.title,
            timing_triple(&model.tract),
            timing_triple(&model.onnxruntime),
            yes_no(ratio <= INPROC_RATIO_TARGET),
            model.tract.batch_per_row_us,
            model.onnxruntime.batch_per_row_us,
            model.tract.batch_calls,
            model.onnxruntime.batch_calls,
            agreement_text(Some(model.tract_vs_onnxruntime)),
        );
    }
    for model in &outcome.models {
        let servers = [("Cairn", Some(&model.cairn)), ("MLflow", model.mlflow.as_ref())];
        for (server, runs) in servers {
            let Some(runs) = runs else { continue };
            for (run, load) in [
                ("concurrent", Some(&runs.concurrent)),
                ("1 connection", Some(&runs.single)),
                ("OIP", runs.oip.as_ref()),
                ("capture off", runs.capture_ab.as_ref().map(|(off, _)| off)),
                ("capture on again", runs.capture_ab.as_ref().map(|(_, on)| on)),
            ] {
                let Some(load) = load.filter(|load| load.errors > 0) else { continue };
                let _infallible = writeln!(
                    out,
                    "\n{server} {} {run}: {} failed requests; first {}:",
                    model.registered,
                    load.errors,
                    load.failures.len()
                );
                for failure in &load.failures {
                    let _infallible = writeln!(out, "- {failure}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((percentile_ms(&latencies, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&latencies, 95.0) - 95.0).abs() < 1e-9);
        assert!((percentile_ms(&latencies, 100.0) - 100.0).abs() < 1e-9);
        assert!(percentile_ms(&[], 50.0).is_nan());
    }
}
