//! Data drift statistics, numerically matching Evidently 0.7's data-drift preset: column
//! typing, cleaning, the default test per column (K-S, χ², Z, normed Wasserstein,
//! Jensen–Shannon), the optional distances (PSI, KL, Hellinger) and the dataset verdict.
//! Pure computation: no I/O, no async.
//!
//! - [`column_drift`] compares one column of a reference sample with the same column of a
//!   current sample; [`PreparedColumn`] + [`column_drift_prepared`] let a reference be cleaned
//!   and sorted once and compared many times.
//! - [`dataset_drift`] turns the column verdicts into the dataset verdict.
//! - The p-values use SciPy's algorithms (`ks_2samp` exact and asymptotic, Cephes `igamc` and
//!   `ndtr`), so they agree with Evidently to about 1e-9 relative; `docs/MONITORING.md`
//!   ("Drift statistics") gives every formula.

mod binning;
mod divergence;
mod histogram;
mod igam_coeff;
mod kolmogorov;
mod ks;
mod method;
mod prepare;
pub mod special;
mod stattests;

#[cfg(test)]
mod proptests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use histogram::{Histogram, MAX_HISTOGRAM_CATEGORIES};
pub use kolmogorov::{kstwo_sf, smirnov_sf};
pub use method::{Method, UnknownMethod};
pub use prepare::{PreparedColumn, PreparedColumnBuilder};

use prepare::{CountTable, Sample};

/// A raw column as read from a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "values", rename_all = "snake_case")]
pub enum Values {
    /// Floating-point values; NaN marks a missing value.
    Floats(Vec<f64>),
    /// Integer values, `None` where missing.
    Integers(Vec<Option<i64>>),
    /// Strings (and booleans, as "true"/"false"), `None` where missing.
    Labels(Vec<Option<String>>),
}

impl Values {
    /// The number of rows, missing values included.
    pub fn len(&self) -> usize {
        match self {
            Values::Floats(values) => values.len(),
            Values::Integers(values) => values.len(),
            Values::Labels(values) => values.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a column's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Ordered numbers: distribution tests and distances over values or bins.
    Numerical,
    /// Unordered values: tests and distances over per-value counts.
    Categorical,
}

impl ColumnKind {
    /// "numerical" or "categorical".
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Numerical => "numerical",
            ColumnKind::Categorical => "categorical",
        }
    }
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for ColumnKind {
    type Err = String;

    fn from_str(text: &str) -> Result<ColumnKind, String> {
        match text {
            "numerical" | "num" => Ok(ColumnKind::Numerical),
            "categorical" | "cat" => Ok(ColumnKind::Categorical),
            other => {
                Err(format!("unknown column kind {other:?}; expected numerical or categorical"))
            }
        }
    }
}

/// Evidently 0.7's typing of a column (`infer_column_type`): floats are numerical; integers
/// are categorical with at most 10 distinct values, else numerical; labels are categorical
/// (Evidently's text columns are out of scope). The drift check types a column from its
/// current sample, as Evidently does.
pub fn infer_kind(values: &Values) -> ColumnKind {
    match values {
        Values::Floats(_) => ColumnKind::Numerical,
        Values::Integers(integers) => {
            let mut distinct: Vec<i64> = Vec::with_capacity(prepare::INTEGER_CARDINALITY_LIMIT + 1);
            for &value in integers.iter().flatten() {
                if !distinct.contains(&value) {
                    distinct.push(value);
                    if distinct.len() > prepare::INTEGER_CARDINALITY_LIMIT {
                        return ColumnKind::Numerical;
                    }
                }
            }
            ColumnKind::Categorical
        }
        Values::Labels(_) => ColumnKind::Categorical,
    }
}

/// Per-column choices; every `None` means Evidently's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnOptions {
    /// The column kind (default: inferred from the current sample).
    pub kind: Option<ColumnKind>,
    /// The method (default: Evidently's choice from kind, size and number of values).
    pub method: Option<Method>,
    /// The threshold (default: the method's).
    pub threshold: Option<f64>,
}

/// One column's drift result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    /// How the column was compared.
    pub kind: ColumnKind,
    /// The method used.
    pub method: Method,
    /// The p-value (p-value methods) or the distance.
    pub statistic: f64,
    /// The threshold the statistic was compared with.
    pub threshold: f64,
    /// Whether the column drifted (see [`Method::is_drift`]).
    pub drifted: bool,
    /// Reference rows after dropping missing and infinite values.
    pub reference_rows: usize,
    /// Current rows after dropping missing and infinite values.
    pub current_rows: usize,
    /// Both distributions, for reports.
    pub histogram: Histogram,
}

/// Which sample an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The reference sample.
    Reference,
    /// The current sample.
    Current,
}

impl fmt::Display for Side {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Side::Reference => "reference",
            Side::Current => "current",
        })
    }
}

/// Why a column could not be tested.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum DriftError {
    /// A sample has no usable value after dropping missing and infinite ones.
    #[error(
        "insufficient data: the {side} column has {rows} usable rows after dropping missing and infinite values"
    )]
    InsufficientData {
        /// The empty sample.
        side: Side,
        /// Its usable rows (0).
        rows: usize,
    },
    /// The two samples hold different kinds of values (labels against numbers).
    #[error(
        "mismatched types: the reference column holds {reference} values and the current column {current} values"
    )]
    MismatchedTypes {
        /// The reference's value type.
        reference: String,
        /// The current sample's value type.
        current: String,
    },
    /// A numerical comparison was asked of a column of labels.
    #[error("the column is treated as numerical but holds labels; use the categorical kind")]
    NotNumeric,
    /// The method cannot test a column of this kind.
    #[error("method {method} does not apply to a {kind} column")]
    MethodNotApplicable {
        /// The method asked for.
        method: Method,
        /// The column's kind.
        kind: ColumnKind,
    },
    /// The threshold is not a finite number.
    #[error("the threshold must be a finite number, got {threshold}")]
    InvalidThreshold {
        /// The threshold given.
        threshold: f64,
    },
    /// The statistic cannot be computed in floating point (values spanning more than f64).
    #[error("the {method} statistic cannot be computed: the values span a range beyond f64")]
    OutOfRange {
        /// The method.
        method: Method,
    },
}

/// Compares one column of the reference sample with the same column of the current sample.
///
/// Missing values and ±∞ are dropped from each sample separately; the kind, method and
/// threshold default as in Evidently 0.7 (see [`infer_kind`], [`Method::default_for`],
/// [`Method::default_threshold`]).
pub fn column_drift(
    reference: &Values,
    current: &Values,
    options: &ColumnOptions,
) -> Result<ColumnDrift, DriftError> {
    column_drift_prepared(&PreparedColumn::new(reference), &PreparedColumn::new(current), options)
}

/// [`column_drift`] on columns cleaned beforehand, e.g. a reference prepared once.
pub fn column_drift_prepared(
    reference: &PreparedColumn,
    current: &PreparedColumn,
    options: &ColumnOptions,
) -> Result<ColumnDrift, DriftError> {
    if let Some(threshold) = options.threshold
        && !threshold.is_finite()
    {
        return Err(DriftError::InvalidThreshold { threshold });
    }
    let kind = options.kind.unwrap_or_else(|| current.inferred_kind());
    let reference_rows = reference.rows();
    let current_rows = current.rows();
    let evaluation = match (&reference.sample, &current.sample) {
        (Sample::Floats(r), Sample::Floats(c)) => evaluate_numbers(kind, options, r, c),
        (Sample::Integers(r), Sample::Integers(c)) => evaluate_numbers(kind, options, r, c),
        (Sample::Floats(r), Sample::Integers(c)) => {
            evaluate_numbers(kind, options, r, &to_floats(c))
        }
        (Sample::Integers(r), Sample::Floats(c)) => {
            evaluate_numbers(kind, options, &to_floats(r), c)
        }
        (Sample::Labels(r), Sample::Labels(c)) => {
            if kind == ColumnKind::Numerical {
                return Err(DriftError::NotNumeric);
            }
            check_sizes(reference_rows, current_rows)?;
            let table = CountTable::from_labels(r, c);
            evaluate_table(options, &table)
        }
        _ => {
            return Err(DriftError::MismatchedTypes {
                reference: reference.type_name().to_owned(),
                current: current.type_name().to_owned(),
            });
        }
    }?;
    let threshold = options.threshold.unwrap_or_else(|| evaluation.method.default_threshold());
    Ok(ColumnDrift {
        kind,
        method: evaluation.method,
        statistic: evaluation.statistic,
        threshold,
        drifted: evaluation.method.is_drift(evaluation.statistic, threshold),
        reference_rows,
        current_rows,
        histogram: evaluation.histogram,
    })
}

/// The method chosen, its statistic and the report histogram.
struct Evaluation {
    method: Method,
    statistic: f64,
    histogram: Histogram,
}

fn to_floats(values: &[i64]) -> Vec<f64> {
    values.iter().map(|&value| value as f64).collect()
}

fn check_sizes(reference_rows: usize, current_rows: usize) -> Result<(), DriftError> {
    if reference_rows == 0 {
        return Err(DriftError::InsufficientData { side: Side::Reference, rows: 0 });
    }
    if current_rows == 0 {
        return Err(DriftError::InsufficientData { side: Side::Current, rows: 0 });
    }
    Ok(())
}

/// The explicit method if it applies to `kind`, else the default for the column.
fn choose_method(
    options: &ColumnOptions,
    kind: ColumnKind,
    reference_rows: usize,
    distinct_values: impl FnOnce() -> usize,
) -> Result<Method, DriftError> {
    match options.method {
        Some(method) if method.applies_to(kind) => Ok(method),
        Some(method) => Err(DriftError::MethodNotApplicable { method, kind }),
        None => Ok(Method::default_for(kind, reference_rows, distinct_values())),
    }
}

fn evaluate_numbers<T: prepare::Number>(
    kind: ColumnKind,
    options: &ColumnOptions,
    reference: &[T],
    current: &[T],
) -> Result<Evaluation, DriftError> {
    check_sizes(reference.len(), current.len())?;
    // The default only distinguishes ≤ 2, 3–5 and more than 5 distinct values.
    let method = choose_method(options, kind, reference.len(), || {
        prepare::merged_steps(reference, current).take(6).count()
    })?;
    let statistic = stattests::on_numbers(method, kind, reference, current)
        .ok_or(DriftError::OutOfRange { method })?;
    if statistic.is_nan() {
        return Err(DriftError::OutOfRange { method });
    }
    let histogram = match kind {
        ColumnKind::Numerical => histogram::numerical(reference, current),
        ColumnKind::Categorical => {
            histogram::categorical(&CountTable::from_numbers(reference, current))
        }
    };
    Ok(Evaluation { method, statistic, histogram })
}

fn evaluate_table(options: &ColumnOptions, table: &CountTable) -> Result<Evaluation, DriftError> {
    let method =
        choose_method(options, ColumnKind::Categorical, table.reference_total as usize, || {
            table.len()
        })?;
    let statistic = stattests::on_table(method, table);
    if statistic.is_nan() {
        return Err(DriftError::OutOfRange { method });
    }
    Ok(Evaluation { method, statistic, histogram: histogram::categorical(table) })
}

/// The dataset verdict over the tested columns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    /// Columns that drifted.
    pub drifted: usize,
    /// Columns tested.
    pub tested: usize,
    /// drifted / tested (0 when nothing was tested).
    pub share: f64,
    /// Whether share ≥ the drift share asked for.
    pub dataset_drift: bool,
}

/// The share of drifted columns at which Evidently calls the dataset drifted.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;

/// Evidently's dataset verdict: the dataset drifts when the share of drifted columns is at
/// least `drift_share` (0.5 by default).
pub fn dataset_drift(columns: &[ColumnDrift], drift_share: f64) -> DatasetDrift {
    let tested = columns.len();
    let drifted = columns.iter().filter(|column| column.drifted).count();
    let share = if tested == 0 { 0.0 } else { drifted as f64 / tested as f64 };
    DatasetDrift { drifted, tested, share, dataset_drift: tested > 0 && share >= drift_share }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_columns_are_insufficient_data() {
        let empty = Values::Floats(vec![f64::NAN, f64::INFINITY]);
        let full = Values::Floats(vec![1.0, 2.0]);
        let error = column_drift(&empty, &full, &ColumnOptions::default()).unwrap_err();
        assert_eq!(error, DriftError::InsufficientData { side: Side::Reference, rows: 0 });
        let error = column_drift(&full, &empty, &ColumnOptions::default()).unwrap_err();
        assert_eq!(error, DriftError::InsufficientData { side: Side::Current, rows: 0 });
        let labels = Values::Labels(vec![None]);
        let error = column_drift(
            &labels,
            &Values::Labels(vec![Some("a".into())]),
            &ColumnOptions::default(),
        )
        .unwrap_err();
        assert_eq!(error, DriftError::InsufficientData { side: Side::Reference, rows: 0 });
    }

    #[test]
    fn labels_against_numbers_is_a_type_mismatch() {
        let labels = Values::Labels(vec![Some("a".into())]);
        let numbers = Values::Floats(vec![1.0]);
        let error = column_drift(&labels, &numbers, &ColumnOptions::default()).unwrap_err();
        assert!(matches!(error, DriftError::MismatchedTypes { .. }), "{error}");
    }

    #[test]
    fn methods_are_checked_against_the_kind() {
        let numbers = Values::Floats((0..50).map(f64::from).collect());
        let options = ColumnOptions { method: Some(Method::ChiSquare), ..ColumnOptions::default() };
        let error = column_drift(&numbers, &numbers, &options).unwrap_err();
        assert_eq!(
            error,
            DriftError::MethodNotApplicable {
                method: Method::ChiSquare,
                kind: ColumnKind::Numerical
            }
        );
        let labels = Values::Labels(vec![Some("a".into())]);
        let numerical =
            ColumnOptions { kind: Some(ColumnKind::Numerical), ..ColumnOptions::default() };
        assert_eq!(column_drift(&labels, &labels, &numerical).unwrap_err(), DriftError::NotNumeric);
    }

    #[test]
    fn integers_and_floats_compare_as_numbers() {
        let integers = Values::Integers((0..40).map(Some).collect());
        let floats = Values::Floats((0..40).map(f64::from).collect());
        let drift = column_drift(&integers, &floats, &ColumnOptions::default()).expect("drift");
        assert_eq!(drift.method, Method::Ks);
        assert_eq!(drift.statistic, 1.0);
        assert!(!drift.drifted);
    }

    #[test]
    fn dataset_share_uses_at_least() {
        let column = |drifted| ColumnDrift {
            kind: ColumnKind::Numerical,
            method: Method::Ks,
            statistic: 0.5,
            threshold: 0.05,
            drifted,
            reference_rows: 1,
            current_rows: 1,
            histogram: Histogram::Bins { edges: vec![], reference: vec![], current: vec![] },
        };
        let verdict = dataset_drift(&[column(true), column(false)], 0.5);
        assert_eq!(
            verdict,
            DatasetDrift { drifted: 1, tested: 2, share: 0.5, dataset_drift: true }
        );
        assert!(!dataset_drift(&[], 0.5).dataset_drift);
    }
}
