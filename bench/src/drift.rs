//! The drift scenario: Evidently 0.7's `DataDriftPreset` against Cairn's drift statistics on
//! the golden data set (20 numerical + 5 categorical columns, `evidently_golden.py`), then a
//! scaling series for Cairn alone at larger sizes.
//!
//! 1. `evidently_golden.py --rows N --bench-repeats K` writes the two Parquet files, runs the
//!    preset once untimed on 200 rows (imports, first calls), then K timed runs (CPU and wall
//!    of `Dataset.from_pandas` for both sides + `Report.run` + `.dict()`; reading the Parquet
//!    files is timed apart), and the verdicts of a last run.
//! 2. In process: every column of both files read with `cairn_service::tables`, then
//!    `column_drift` over all columns with the defaults, `--drift-repeats` times (thread CPU
//!    from `/proc/thread-self/schedstat`, and wall); also with each reference prepared once
//!    (`column_drift_prepared`), as a monitor holding its reference would run. Every column's
//!    method and verdict is checked against Evidently's and the largest relative difference of
//!    the statistics is reported.
//! 3. End to end: `cairn drift --format json` on the two files under `/usr/bin/time` (wall,
//!    user + system CPU, peak RSS), its verdicts checked the same way.
//! 4. Scaling: the same generator at `--drift-scaling` sizes (no Evidently), then `cairn drift`
//!    as in 3.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cairn_domain::drift::{
    ColumnDrift, ColumnOptions, PreparedColumn, Values, column_drift, column_drift_prepared,
};
use cairn_service::tables::{TableFormat, read_local_column};
use serde_json::Value;

/// The target: all default checks on 100k rows × 25 columns within this CPU time.
pub const CPU_TARGET_S: f64 = 0.2;
/// The target: Cairn at least this many times faster than Evidently (CPU).
pub const RATIO_TARGET: f64 = 50.0;
/// Relative difference of statistics that still counts as the same answer.
const STATISTIC_TOLERANCE: f64 = 1e-6;

/// Sizes of the drift scenario.
#[derive(Debug, Clone)]
pub struct DriftSizes {
    /// Rows per side of the comparison with Evidently.
    pub rows: usize,
    /// Timed in-process repetitions and `cairn drift` runs.
    pub repeats: usize,
    /// Timed Evidently runs.
    pub evidently_repeats: usize,
    /// Rows per side of the scaling series (Cairn only).
    pub scaling: Vec<usize>,
}

/// Executables the scenario runs.
#[derive(Debug, Clone)]
pub struct DriftTools {
    /// Python with numpy, pandas, pyarrow and evidently 0.7.
    pub python: PathBuf,
    /// The Cairn release binary.
    pub cairn_bin: PathBuf,
}

/// CPU and wall seconds of one timed run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timed {
    /// CPU seconds (user + system).
    pub cpu_s: f64,
    /// Wall seconds.
    pub wall_s: f64,
}

/// One `cairn drift` run under `/usr/bin/time`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CliRun {
    /// CPU and wall time.
    pub time: Timed,
    /// Peak resident set, KiB.
    pub max_rss_kib: u64,
    /// Exit status: 0 without dataset drift, 3 with.
    pub status: i32,
}

/// How Cairn's verdicts compare with Evidently's.
#[derive(Debug, Clone, Default)]
pub struct Agreement {
    /// Columns compared.
    pub columns: usize,
    /// Columns whose method differs.
    pub method_mismatches: Vec<String>,
    /// Columns whose verdict differs.
    pub verdict_mismatches: Vec<String>,
    /// Largest relative difference of a statistic (p-values below 1e-290 count as equal).
    pub max_relative_difference: f64,
    /// Drifted columns by Cairn, and by Evidently.
    pub drifted: (usize, usize),
}

impl Agreement {
    fn same(&self) -> bool {
        self.method_mismatches.is_empty()
            && self.verdict_mismatches.is_empty()
            && self.max_relative_difference <= STATISTIC_TOLERANCE
            && self.drifted.0 == self.drifted.1
    }
}

/// One size of the scaling series.
#[derive(Debug, Clone)]
pub struct ScalingPoint {
    /// Rows per side.
    pub rows: usize,
    /// Size of the two Parquet files together, bytes.
    pub file_bytes: u64,
    /// The `cairn drift` runs.
    pub runs: Vec<CliRun>,
}

/// Everything the scenario measured.
#[derive(Debug, Clone, Default)]
pub struct DriftOutcome {
    /// Rows per side.
    pub rows: usize,
    /// Evidently's version.
    pub evidently_version: String,
    /// Evidently's timed runs of the preset.
    pub evidently: Vec<Timed>,
    /// pandas reading the two Parquet files, per Evidently run.
    pub evidently_read: Vec<Timed>,
    /// Cairn reading every column of both files (once).
    pub cairn_read: Timed,
    /// Cairn's `column_drift` over all columns, per repetition.
    pub cairn_drift: Vec<Timed>,
    /// The same with the references prepared beforehand, per repetition.
    pub cairn_prepared: Vec<Timed>,
    /// In-process agreement with Evidently.
    pub agreement: Agreement,
    /// `cairn drift` runs at `rows`.
    pub cli: Vec<CliRun>,
    /// Agreement of the CLI's JSON with Evidently.
    pub cli_agreement: Agreement,
    /// The scaling series.
    pub scaling: Vec<ScalingPoint>,
}

fn progress(message: &str) {
    eprintln!("[bench] drift: {message}");
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/cairn/tests/drift/evidently_golden.py")
}

fn generate(
    tools: &DriftTools,
    rows: usize,
    dir: &Path,
    evidently_repeats: Option<usize>,
) -> Result<()> {
    let mut command = Command::new(&tools.python);
    command
        .args(["-W", "ignore"])
        .arg(script())
        .args(["--rows", &rows.to_string(), "--out"])
        .arg(dir);
    match evidently_repeats {
        Some(repeats) => {
            command.args(["--bench-repeats", &repeats.to_string()]);
        }
        None => {
            command.arg("--skip-evidently");
        }
    }
    let output = command.output().context("running evidently_golden.py")?;
    if !output.status.success() {
        bail!("evidently_golden.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// CPU time of the calling thread, from `/proc/thread-self/schedstat` (nanoseconds on CPU).
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn timed<T>(work: impl FnOnce() -> T) -> (T, Timed) {
    let cpu = thread_cpu_s();
    let wall = Instant::now();
    let value = work();
    (value, Timed { cpu_s: thread_cpu_s() - cpu, wall_s: wall.elapsed().as_secs_f64() })
}

/// The median CPU and wall seconds (each taken separately).
pub fn median(runs: &[Timed]) -> Timed {
    let pick = |mut values: Vec<f64>| -> f64 {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Timed {
        cpu_s: pick(runs.iter().map(|r| r.cpu_s).collect()),
        wall_s: pick(runs.iter().map(|r| r.wall_s).collect()),
    }
}

fn relative_difference(actual: f64, expected: Option<f64>, p_value: bool) -> f64 {
    let Some(expected) = expected else {
        return if actual.is_infinite() { 0.0 } else { f64::INFINITY };
    };
    let difference = (actual - expected).abs();
    if difference == 0.0 || (p_value && difference <= 1e-290) {
        return 0.0;
    }
    difference / expected.abs()
}

/// Compares (column, method name, statistic, drifted, is p-value) results with evidently.json.
fn agreement<'a>(
    golden: &Value,
    results: impl Iterator<Item = (&'a str, &'a str, f64, bool, bool)>,
) -> Agreement {
    let mut outcome = Agreement::default();
    for (column, method, statistic, drifted, p_value) in results {
        let expected = &golden["columns"][column];
        outcome.columns += 1;
        if expected["method"].as_str() != Some(method) {
            outcome.method_mismatches.push(column.to_owned());
        }
        if expected["drift"].as_bool() != Some(drifted) {
            outcome.verdict_mismatches.push(column.to_owned());
        }
        outcome.max_relative_difference = outcome.max_relative_difference.max(relative_difference(
            statistic,
            expected["statistic"].as_f64(),
            p_value,
        ));
        outcome.drifted.0 += usize::from(drifted);
    }
    outcome.drifted.1 = golden["dataset"]["count"].as_f64().unwrap_or(f64::NAN) as usize;
    outcome
}

fn in_process_agreement(golden: &Value, columns: &[String], results: &[ColumnDrift]) -> Agreement {
    agreement(
        golden,
        columns.iter().zip(results).map(|(column, drift)| {
            (
                column.as_str(),
                drift.method.name(),
                drift.statistic,
                drift.drifted,
                drift.method.is_p_value(),
            )
        }),
    )
}

fn cli_agreement(golden: &Value, report: &Value) -> Agreement {
    let Some(columns) = report["columns"].as_array() else { return Agreement::default() };
    agreement(
        golden,
        columns.iter().map(|column| {
            let method = column["method"].as_str().unwrap_or("");
            let p_value =
                method.parse::<cairn_domain::drift::Method>().is_ok_and(|m| m.is_p_value());
            (
                column["column"].as_str().unwrap_or(""),
                method,
                column["statistic"].as_f64().unwrap_or(f64::NAN),
                column["drifted"].as_bool().unwrap_or(false),
                p_value,
            )
        }),
    )
}

/// Runs `cairn drift --format json` under `/usr/bin/time`; returns the run and its JSON.
fn run_cli(cairn_bin: &Path, dir: &Path) -> Result<(CliRun, Value)> {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "TIME %e %U %S %M"])
        .arg(cairn_bin)
        .arg("drift")
        .arg("--reference")
        .arg(dir.join("reference.parquet"))
        .arg("--current")
        .arg(dir.join("current.parquet"))
        .args(["--format", "json"])
        .output()
        .context("running cairn drift under /usr/bin/time")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some(line) = stderr.lines().rev().find(|line| line.starts_with("TIME ")) else {
        bail!("no timing from /usr/bin/time: {stderr}");
    };
    let fields: Vec<f64> = line[5..].split_whitespace().filter_map(|f| f.parse().ok()).collect();
    let [wall, user, system, rss] = fields[..] else { bail!("unexpected timing line {line:?}") };
    let status = output.status.code().unwrap_or(-1);
    if status != 0 && status != 3 {
        bail!("cairn drift exited with {status}: {stderr}");
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("cairn drift JSON")?;
    let run = CliRun {
        time: Timed { cpu_s: user + system, wall_s: wall },
        max_rss_kib: rss as u64,
        status,
    };
    Ok((run, report))
}

fn read_all(path: &Path, columns: &[String]) -> Result<Vec<Values>> {
    columns
        .iter()
        .map(|column| {
            read_local_column(path, TableFormat::Parquet, column)
                .with_context(|| format!("reading {column} from {}", path.display()))
        })
        .collect()
}

/// Runs the whole scenario.
pub fn run(tools: &DriftTools, sizes: &DriftSizes) -> Result<DriftOutcome> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let mut outcome = DriftOutcome { rows: sizes.rows, ..DriftOutcome::default() };
    progress(&format!(
        "generating {} rows and timing Evidently ({} runs after a warm-up)",
        sizes.rows, sizes.evidently_repeats
    ));
    generate(tools, sizes.rows, dir.path(), Some(sizes.evidently_repeats.max(1)))?;
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("evidently.json")).context("evidently.json")?,
    )?;
    outcome.evidently_version = golden["evidently_version"].as_str().unwrap_or("?").to_owned();
    for run in golden["timing"]["runs"].as_array().into_iter().flatten() {
        let number = |key: &str| run[key].as_f64().unwrap_or(f64::NAN);
        outcome.evidently.push(Timed { cpu_s: number("cpu_s"), wall_s: number("wall_s") });
        outcome
            .evidently_read
            .push(Timed { cpu_s: number("read_cpu_s"), wall_s: number("read_wall_s") });
    }
    let columns: Vec<String> =
        golden["columns"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default();

    progress("in process: reading every column, then column_drift over all columns");
    let reference_path = dir.path().join("reference.parquet");
    let current_path = dir.path().join("current.parquet");
    let ((references, currents), read) =
        timed(|| (read_all(&reference_path, &columns), read_all(&current_path, &columns)));
    let (references, currents) = (references?, currents?);
    outcome.cairn_read = read;
    let options = ColumnOptions::default();
    let mut last = Vec::new();
    for _ in 0..sizes.repeats.max(1) {
        let (results, time) = timed(|| {
            references
                .iter()
                .zip(&currents)
                .map(|(reference, current)| column_drift(reference, current, &options))
                .collect::<Result<Vec<_>, _>>()
        });
        outcome.cairn_drift.push(time);
        last = results.context("column_drift")?;
    }
    outcome.agreement = in_process_agreement(&golden, &columns, &last);
    let prepared: Vec<PreparedColumn> = references.iter().map(PreparedColumn::new).collect();
    for _ in 0..sizes.repeats.max(1) {
        let (results, time) = timed(|| {
            prepared
                .iter()
                .zip(&currents)
                .map(|(reference, current)| {
                    column_drift_prepared(reference, &PreparedColumn::new(current), &options)
                })
                .collect::<Result<Vec<_>, _>>()
        });
        outcome.cairn_prepared.push(time);
        results.context("column_drift_prepared")?;
    }

    progress("end to end: cairn drift");
    for _ in 0..sizes.repeats.max(1) {
        let (run, report) = run_cli(&tools.cairn_bin, dir.path())?;
        outcome.cli_agreement = cli_agreement(&golden, &report);
        outcome.cli.push(run);
    }

    for &rows in &sizes.scaling {
        let scaling_dir = tempfile::tempdir().context("creating a temporary directory")?;
        progress(&format!("scaling: generating {rows} rows"));
        generate(tools, rows, scaling_dir.path(), None)?;
        let file_bytes = ["reference.parquet", "current.parquet"]
            .iter()
            .filter_map(|name| std::fs::metadata(scaling_dir.path().join(name)).ok())
            .map(|meta| meta.len())
            .sum();
        let mut runs = Vec::new();
        for _ in 0..2 {
            progress(&format!("scaling: cairn drift at {rows} rows"));
            runs.push(run_cli(&tools.cairn_bin, scaling_dir.path())?.0);
        }
        outcome.scaling.push(ScalingPoint { rows, file_bytes, runs });
    }
    Ok(outcome)
}

fn seconds(time: Timed) -> String {
    format!("{:.3} / {:.3}", time.cpu_s, time.wall_s)
}

fn agreement_text(agreement: &Agreement) -> String {
    let mut text = format!(
        "{} columns; methods {}, verdicts {}; drifted {} vs {}; max relative difference {:.1e}",
        agreement.columns,
        if agreement.method_mismatches.is_empty() {
            "equal".to_owned()
        } else {
            format!("DIFFER {:?}", agreement.method_mismatches)
        },
        if agreement.verdict_mismatches.is_empty() {
            "equal".to_owned()
        } else {
            format!("DIFFER {:?}", agreement.verdict_mismatches)
        },
        agreement.drifted.0,
        agreement.drifted.1,
        agreement.max_relative_difference
    );
    text.push_str(if agreement.same() { " (same)" } else { " (NOT the same)" });
    text
}

/// The markdown report of the scenario.
pub fn render(outcome: &DriftOutcome) -> String {
    let evidently = median(&outcome.evidently);
    let evidently_read = median(&outcome.evidently_read);
    let drift = median(&outcome.cairn_drift);
    let prepared = median(&outcome.cairn_prepared);
    let cli = median(&outcome.cli.iter().map(|run| run.time).collect::<Vec<_>>());
    let cli_rss = outcome.cli.iter().map(|run| run.max_rss_kib).max().unwrap_or(0);
    let cli_statuses: Vec<i32> = outcome.cli.iter().map(|run| run.status).collect();
    let ratio = evidently.cpu_s / drift.cpu_s;
    let cli_ratio = (evidently.cpu_s + evidently_read.cpu_s) / cli.cpu_s;
    let yes_no = |met: bool| if met { "yes" } else { "NO" };
    let mut out = format!(
        "**Drift: {} rows × 25 columns (20 numerical, 5 categorical) per side, all default checks** (Evidently {})\n\n",
        outcome.rows, outcome.evidently_version
    );
    out.push_str("| Measure | CPU s / wall s (median) | Ratio (Evidently CPU ÷ this) | Target | Met |\n|---|---:|---:|---|---|\n");
    out.push_str(&format!(
        "| Evidently `DataDriftPreset` (from_pandas + run + dict), {} runs | {} | 1× | — | — |\n",
        outcome.evidently.len(),
        seconds(evidently)
    ));
    out.push_str(&format!(
        "| pandas `read_parquet` of both files | {} | — | — | — |\n",
        seconds(evidently_read)
    ));
    out.push_str(&format!(
        "| Cairn `column_drift` over all columns, in process, {} runs | {} | {:.0}× | ≤ {CPU_TARGET_S} s CPU and ≥ {RATIO_TARGET}× | {} |\n",
        outcome.cairn_drift.len(),
        seconds(drift),
        ratio,
        yes_no(drift.cpu_s <= CPU_TARGET_S && ratio >= RATIO_TARGET)
    ));
    out.push_str(&format!(
        "| Cairn, references prepared once (`column_drift_prepared`) | {} | {:.0}× | — | — |\n",
        seconds(prepared),
        evidently.cpu_s / prepared.cpu_s
    ));
    out.push_str(&format!(
        "| Cairn reading all 50 columns (`tables::read_local_column`) | {} | — | — | — |\n",
        seconds(outcome.cairn_read)
    ));
    out.push_str(&format!(
        "| `cairn drift` end to end (process start, Parquet reading, checks, JSON), {} runs (exit {:?}); peak RSS {:.0} MiB | {} | {:.0}× (vs Evidently + pandas reading) | ≥ {RATIO_TARGET}× | {} |\n",
        outcome.cli.len(),
        cli_statuses,
        cli_rss as f64 / 1024.0,
        seconds(cli),
        cli_ratio,
        yes_no(cli_ratio >= RATIO_TARGET)
    ));
    out.push_str(&format!(
        "| same verdicts, in process | {} | — | same | {} |\n",
        agreement_text(&outcome.agreement),
        yes_no(outcome.agreement.same())
    ));
    out.push_str(&format!(
        "| same verdicts, `cairn drift` JSON | {} | — | same | {} |\n",
        agreement_text(&outcome.cli_agreement),
        yes_no(outcome.cli_agreement.same())
    ));
    if !outcome.scaling.is_empty() {
        out.push_str(
            "\n**Scaling, `cairn drift` alone (reading Parquet + all default checks)**\n\n",
        );
        out.push_str("| Rows per side | Parquet, both files | CPU s / wall s (median of runs) | CPU µs per row (both sides) | Peak RSS | One float column, both sides |\n|---:|---:|---:|---:|---:|---:|\n");
        let mut points: Vec<(usize, u64, Timed, u64)> = vec![(outcome.rows, 0, cli, cli_rss)];
        for point in &outcome.scaling {
            let time = median(&point.runs.iter().map(|run| run.time).collect::<Vec<_>>());
            let rss = point.runs.iter().map(|run| run.max_rss_kib).max().unwrap_or(0);
            points.push((point.rows, point.file_bytes, time, rss));
        }
        for (rows, bytes, time, rss) in points {
            out.push_str(&format!(
                "| {rows} | {} | {} | {:.3} | {:.0} MiB | {:.0} MiB |\n",
                if bytes == 0 {
                    "—".to_owned()
                } else {
                    format!("{:.0} MiB", bytes as f64 / 1048576.0)
                },
                seconds(time),
                time.cpu_s * 1e6 / (2.0 * rows as f64),
                rss as f64 / 1024.0,
                (2 * rows * 8) as f64 / 1048576.0
            ));
        }
    }
    out
}
