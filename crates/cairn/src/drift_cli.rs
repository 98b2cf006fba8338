//! `cairn drift`: ad-hoc data drift between two local Parquet or CSV files, without a server.
//! Each column is read on its own (Parquet by projection, row group by row group) and compared
//! with Evidently 0.7's defaults unless told otherwise. Exit status: 0 without dataset drift,
//! 3 with dataset drift (like `cairn model gate`), 2 for bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use cairn_domain::drift::{
    ColumnDrift, ColumnKind, ColumnOptions, DEFAULT_DRIFT_SHARE, DatasetDrift, Method,
    column_drift_prepared, dataset_drift,
};
use cairn_service::tables::{self, TableFormat, ValueType};
use clap::Args;
use serde_json::{Value, json};

/// Exit status when the dataset drifted.
pub const EXIT_DATASET_DRIFT: i32 = 3;
/// Exit status for bad input (unreadable file, unknown column, bad option, untestable column).
pub const EXIT_BAD_INPUT: i32 = 2;

/// Flags of `cairn drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The reference table (.parquet or .csv).
    #[arg(long)]
    pub reference: PathBuf,
    /// The current table (.parquet or .csv).
    #[arg(long)]
    pub current: PathBuf,
    /// Only these columns, comma-separated (default: every column both tables have).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// COL=METHOD for one column, or METHOD for every column (ks, chisquare, z, wasserstein,
    /// jensenshannon, psi, kl_div, hellinger, chisquare_contingency). Repeatable.
    #[arg(long = "method", value_name = "[COL=]METHOD")]
    pub methods: Vec<String>,
    /// COL=X for one column, or X for every column: the threshold of the column's method.
    /// Repeatable.
    #[arg(long = "threshold", value_name = "[COL=]X")]
    pub thresholds: Vec<String>,
    /// COL=numerical|categorical for one column, or the kind of every column. Repeatable.
    #[arg(long = "kind", value_name = "[COL=]KIND")]
    pub kinds: Vec<String>,
    /// The share of drifted columns from which the dataset counts as drifted.
    #[arg(long, default_value_t = DEFAULT_DRIFT_SHARE)]
    pub drift_share: f64,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// Runs `cairn drift` and exits with its status.
pub async fn drift(args: &DriftArgs) -> anyhow::Result<()> {
    let outcome = match run(args).await {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(EXIT_BAD_INPUT);
        }
    };
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&outcome.to_json(args))?),
        _ => print!("{}", outcome.to_table(args.drift_share)),
    }
    for (column, reason) in &outcome.skipped {
        eprintln!("note: column {column:?} skipped: {reason}");
    }
    if outcome.columns.iter().any(|(_, result)| result.is_err()) {
        std::process::exit(EXIT_BAD_INPUT);
    }
    if outcome.dataset.dataset_drift {
        std::process::exit(EXIT_DATASET_DRIFT);
    }
    Ok(())
}

/// Every column's result and the dataset verdict.
struct Outcome {
    columns: Vec<(String, Result<ColumnDrift, String>)>,
    skipped: Vec<(String, String)>,
    dataset: DatasetDrift,
}

/// Per-column settings: one value for every column and overrides by column.
struct PerColumn<T> {
    every: Option<T>,
    by_column: HashMap<String, T>,
}

impl<T: Copy> PerColumn<T> {
    fn parse(
        flag: &str,
        entries: &[String],
        parse: impl Fn(&str) -> anyhow::Result<T>,
    ) -> anyhow::Result<PerColumn<T>> {
        let mut settings = PerColumn { every: None, by_column: HashMap::new() };
        for entry in entries {
            match entry.rsplit_once('=') {
                Some((column, value)) if !column.is_empty() => {
                    let parsed = parse(value).with_context(|| format!("--{flag} {entry}"))?;
                    settings.by_column.insert(column.to_owned(), parsed);
                }
                _ => {
                    settings.every =
                        Some(parse(entry).with_context(|| format!("--{flag} {entry}"))?)
                }
            }
        }
        Ok(settings)
    }

    fn get(&self, column: &str) -> Option<T> {
        self.by_column.get(column).copied().or(self.every)
    }

    fn unknown_columns<'a>(&'a self, known: &'a [String]) -> impl Iterator<Item = &'a String> {
        self.by_column.keys().filter(move |column| !known.contains(column))
    }
}

fn format_of(path: &Path) -> anyhow::Result<TableFormat> {
    TableFormat::from_name(&path.to_string_lossy())
        .ok_or_else(|| anyhow!("{}: expected a .parquet or .csv file", path.display()))
}

async fn run(args: &DriftArgs) -> anyhow::Result<Outcome> {
    if !(0.0..=1.0).contains(&args.drift_share) {
        bail!("--drift-share must be between 0 and 1, got {}", args.drift_share);
    }
    let methods = PerColumn::parse("method", &args.methods, |text| Ok(Method::from_str(text)?))?;
    let thresholds = PerColumn::parse("threshold", &args.thresholds, |text| {
        let value: f64 = text.parse().map_err(|_| anyhow!("not a number: {text:?}"))?;
        if !value.is_finite() {
            bail!("not a finite number: {text:?}");
        }
        Ok(value)
    })?;
    let kinds = PerColumn::parse("kind", &args.kinds, |text| {
        ColumnKind::from_str(text).map_err(|e| anyhow!(e))
    })?;

    let reference_format = format_of(&args.reference)?;
    let current_format = format_of(&args.current)?;
    let reference_path = args.reference.clone();
    let current_path = args.current.clone();
    let (reference_columns, current_columns) = tokio::task::spawn_blocking(move || {
        Ok::<_, tables::TableError>((
            tables::list_local(&reference_path, reference_format)?,
            tables::list_local(&current_path, current_format)?,
        ))
    })
    .await??;

    let mut skipped = Vec::new();
    let selected: Vec<String> = if args.columns.is_empty() {
        let mut selected = Vec::new();
        for column in &reference_columns {
            let in_current = current_columns.iter().find(|c| c.name == column.name);
            match (&column.value_type, in_current) {
                (_, None) => {
                    skipped.push((column.name.clone(), "not in the current table".to_owned()))
                }
                (ValueType::Unsupported(data_type), _) => {
                    skipped.push((column.name.clone(), format!("type {data_type} is not testable")))
                }
                (_, Some(current)) => match &current.value_type {
                    ValueType::Unsupported(data_type) => skipped.push((
                        column.name.clone(),
                        format!("type {data_type} in the current table is not testable"),
                    )),
                    _ => selected.push(column.name.clone()),
                },
            }
        }
        for column in &current_columns {
            if !reference_columns.iter().any(|c| c.name == column.name) {
                skipped.push((column.name.clone(), "not in the reference table".to_owned()));
            }
        }
        selected
    } else {
        for column in &args.columns {
            for (side, columns) in
                [("reference", &reference_columns), ("current", &current_columns)]
            {
                if !columns.iter().any(|c| &c.name == column) {
                    bail!("the {side} table has no column {column:?}");
                }
            }
        }
        args.columns.clone()
    };
    if let Some(column) = methods
        .unknown_columns(&selected)
        .chain(thresholds.unknown_columns(&selected))
        .chain(kinds.unknown_columns(&selected))
        .next()
    {
        bail!("an option names column {column:?}, which is not compared");
    }

    let jobs: Vec<(String, ColumnOptions)> = selected
        .iter()
        .map(|column| {
            let options = ColumnOptions {
                kind: kinds.get(column),
                method: methods.get(column),
                threshold: thresholds.get(column),
            };
            (column.clone(), options)
        })
        .collect();
    let reference = (args.reference.clone(), reference_format);
    let current = (args.current.clone(), current_format);
    let columns = tokio::task::spawn_blocking(move || compare_columns(&reference, &current, jobs))
        .await?
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tested: Vec<ColumnDrift> =
        columns.iter().filter_map(|(_, result)| result.as_ref().ok().cloned()).collect();
    let dataset = dataset_drift(&tested, args.drift_share);
    Ok(Outcome { columns, skipped, dataset })
}

type ColumnResult = anyhow::Result<(String, Result<ColumnDrift, String>)>;

/// Reads and compares the columns on as many threads as there are cores, keeping their order.
/// A column that cannot be tested (e.g. empty) gets its reason; an unreadable file is an error.
fn compare_columns(
    reference: &(PathBuf, TableFormat),
    current: &(PathBuf, TableFormat),
    jobs: Vec<(String, ColumnOptions)>,
) -> Vec<ColumnResult> {
    let workers =
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<ColumnResult>> = (0..jobs.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((column, options)) = jobs.get(index) else { break };
                    let result = compare_column(reference, current, column, options);
                    if let Ok(mut slots) = slots.lock() {
                        slots[index] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(anyhow!("a worker thread failed"))))
        .collect()
}

fn compare_column(
    reference: &(PathBuf, TableFormat),
    current: &(PathBuf, TableFormat),
    column: &str,
    options: &ColumnOptions,
) -> ColumnResult {
    let reference_values = tables::read_local_prepared(&reference.0, reference.1, column)?;
    let current_values = tables::read_local_prepared(&current.0, current.1, column)?;
    let result = column_drift_prepared(&reference_values, &current_values, options)
        .map_err(|error| error.to_string());
    Ok((column.to_owned(), result))
}

impl Outcome {
    fn to_json(&self, args: &DriftArgs) -> Value {
        let columns: Vec<Value> = self
            .columns
            .iter()
            .map(|(column, result)| match result {
                Ok(drift) => {
                    let mut value = serde_json::to_value(drift).unwrap_or(Value::Null);
                    if let Value::Object(map) = &mut value {
                        map.insert("column".to_owned(), json!(column));
                    }
                    value
                }
                Err(error) => json!({ "column": column, "error": error }),
            })
            .collect();
        let skipped: Vec<Value> = self
            .skipped
            .iter()
            .map(|(column, reason)| json!({ "column": column, "reason": reason }))
            .collect();
        json!({
            "reference": args.reference.display().to_string(),
            "current": args.current.display().to_string(),
            "columns": columns,
            "skipped": skipped,
            "dataset": {
                "drifted": self.dataset.drifted,
                "tested": self.dataset.tested,
                "share": self.dataset.share,
                "drift_share": args.drift_share,
                "dataset_drift": self.dataset.dataset_drift,
            },
        })
    }

    fn to_table(&self, drift_share: f64) -> String {
        let width = self.columns.iter().map(|(column, _)| column.len()).max().unwrap_or(6).max(6);
        let mut out = format!(
            "{:<width$}  {:<11}  {:<21}  {:>12}  {:>9}  {}\n",
            "column", "kind", "method", "statistic", "threshold", "verdict"
        );
        for (column, result) in &self.columns {
            match result {
                Ok(drift) => {
                    out.push_str(&format!(
                        "{:<width$}  {:<11}  {:<21}  {:>12}  {:>9}  {}\n",
                        column,
                        drift.kind.name(),
                        drift.method.name(),
                        format_statistic(drift.statistic),
                        drift.threshold,
                        if drift.drifted { "DRIFT" } else { "ok" }
                    ));
                }
                Err(error) => out.push_str(&format!("{column:<width$}  error: {error}\n")),
            }
        }
        let verdict = if self.dataset.dataset_drift { "DATASET DRIFT" } else { "no dataset drift" };
        out.push_str(&format!(
            "\n{} of {} columns drifted (share {:.3}, drift share {}): {}\n",
            self.dataset.drifted, self.dataset.tested, self.dataset.share, drift_share, verdict
        ));
        out
    }
}

/// Six significant digits, in scientific notation only when very small or large.
fn format_statistic(value: f64) -> String {
    if value == 0.0 || (1e-4..1e6).contains(&value.abs()) {
        let digits = if value == 0.0 { 6 } else { (5 - value.abs().log10().floor() as i32).max(0) };
        format!("{value:.*}", digits as usize)
    } else {
        format!("{value:.5e}")
    }
}
