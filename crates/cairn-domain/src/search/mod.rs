//! MLflow's search grammar for `runs/search` and `experiments/search`: filter strings and
//! `order_by` clauses parsed into typed comparisons, with MLflow's own error messages.
//!
//! A filter is a list of comparisons joined by `AND` (no `OR`, no parentheses), such as
//! ``metrics.acc > 0.5 and params.lr = '0.01' and tags.`mlflow.user` LIKE 'a%'``. Parsing
//! happens in the same three passes as MLflow (its parser, then its SQL store's checks), so
//! the first error reported for a filter with several problems is the one MLflow reports:
//!
//! 1. structure: every top-level piece must be a comparison or `AND`
//!    ("Invalid clause(s) in filter string: ..."),
//! 2. each comparison's identifier and value, in order ("Invalid attribute key ...",
//!    "Expected numeric value type for metric ..."),
//! 3. each comparison's comparator, in order ("Invalid comparator '>>' not one of ...").
//!
//! Where MLflow's messages embed a Python set, whose order varies between runs, a fixed order
//! is used.

mod experiment;
mod generic;
mod lexer;
mod run;
mod syntax;

#[cfg(test)]
mod proptests;

use std::fmt;

pub use experiment::{parse_experiment_filter, parse_experiment_order_by};
pub use generic::parse_generic_filter;
pub use run::{parse_run_filter, parse_run_order_by};

use crate::DomainError;

/// A comparison operator of the search grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparator {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `LIKE`: SQL pattern (`%`, `_`), case-sensitive.
    Like,
    /// `ILIKE`: SQL pattern, case-insensitive.
    ILike,
    /// `IN (...)`
    In,
    /// `NOT IN (...)`
    NotIn,
    /// `IS NULL`: the key is absent.
    IsNull,
    /// `IS NOT NULL`: the key is present.
    IsNotNull,
}

impl Comparator {
    /// The comparator as MLflow spells it (`=`, `LIKE`, `NOT IN`, `IS NULL`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "!=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Like => "LIKE",
            Comparator::ILike => "ILIKE",
            Comparator::In => "IN",
            Comparator::NotIn => "NOT IN",
            Comparator::IsNull => "IS NULL",
            Comparator::IsNotNull => "IS NOT NULL",
        }
    }

    /// Parses MLflow's spelling (upper case, as produced by the parser); `None` if unknown.
    fn from_mlflow(text: &str) -> Option<Self> {
        ALL_COMPARATORS.into_iter().find(|comparator| comparator.as_str() == text)
    }

    /// Whether this is one of the numeric comparators `= != > >= < <=`.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            Comparator::Eq
                | Comparator::Ne
                | Comparator::Gt
                | Comparator::Ge
                | Comparator::Lt
                | Comparator::Le
        )
    }
}

const ALL_COMPARATORS: [Comparator; 12] = [
    Comparator::Eq,
    Comparator::Ne,
    Comparator::Gt,
    Comparator::Ge,
    Comparator::Lt,
    Comparator::Le,
    Comparator::Like,
    Comparator::ILike,
    Comparator::In,
    Comparator::NotIn,
    Comparator::IsNull,
    Comparator::IsNotNull,
];

impl fmt::Display for Comparator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// A quoted string, verbatim between its quotes (MLflow does not unescape `''` or `\'`).
    Str(String),
    /// A number (metrics, `start_time`, `end_time`, `creation_time`, `last_update_time`).
    Num(f64),
    /// The strings of an `IN` / `NOT IN` list.
    List(Vec<String>),
    /// No value: `IS NULL` / `IS NOT NULL`.
    Null,
}

/// A run attribute usable in filters and `order_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunAttribute {
    /// `run_id`
    RunId,
    /// `run_name` (aliases `run name`, `Run name`, `Run Name` in filters)
    RunName,
    /// `status`
    Status,
    /// `user_id`
    UserId,
    /// `artifact_uri`
    ArtifactUri,
    /// `start_time` (aliases `created`, `Created`)
    StartTime,
    /// `end_time`
    EndTime,
}

impl RunAttribute {
    /// The attribute's canonical MLflow name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunAttribute::RunId => "run_id",
            RunAttribute::RunName => "run_name",
            RunAttribute::Status => "status",
            RunAttribute::UserId => "user_id",
            RunAttribute::ArtifactUri => "artifact_uri",
            RunAttribute::StartTime => "start_time",
            RunAttribute::EndTime => "end_time",
        }
    }

    /// Whether the attribute is numeric (compared with `= != > >= < <=` and a number).
    pub fn is_numeric(self) -> bool {
        matches!(self, RunAttribute::StartTime | RunAttribute::EndTime)
    }
}

/// A field of a run's dataset inputs usable in filters (`datasets.name` etc.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetField {
    /// `name`
    Name,
    /// `digest`
    Digest,
    /// `context` (the input's `mlflow.data.context` tag)
    Context,
}

impl DatasetField {
    /// The field's MLflow name.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetField::Name => "name",
            DatasetField::Digest => "digest",
            DatasetField::Context => "context",
        }
    }
}

/// What a run comparison or ordering refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunKey {
    /// `metrics.<key>`: the run's latest value of the metric.
    Metric(String),
    /// `params.<key>`
    Param(String),
    /// `tags.<key>`
    Tag(String),
    /// `attributes.<name>` or a bare name.
    Attribute(RunAttribute),
    /// `datasets.<field>` (filters only).
    Dataset(DatasetField),
}

/// One condition of a run filter.
#[derive(Debug, Clone, PartialEq)]
pub struct RunComparison {
    /// What is compared.
    pub key: RunKey,
    /// How it is compared.
    pub comparator: Comparator,
    /// What it is compared with.
    pub value: FilterValue,
}

/// One `order_by` entry of a run search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOrderBy {
    /// The sort key (never [`RunKey::Dataset`]).
    pub key: RunKey,
    /// `true` for `ASC` (the default), `false` for `DESC`.
    pub ascending: bool,
}

/// What an experiment comparison or ordering refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExperimentKey {
    /// `name`
    Name,
    /// `experiment_id`
    ExperimentId,
    /// `creation_time`
    CreationTime,
    /// `last_update_time`
    LastUpdateTime,
    /// `tags.<key>` (filters only).
    Tag(String),
}

/// One condition of an experiment filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentComparison {
    /// What is compared.
    pub key: ExperimentKey,
    /// How it is compared.
    pub comparator: Comparator,
    /// What it is compared with; experiment ids come normalised to canonical decimal strings.
    pub value: FilterValue,
}

/// One `order_by` entry of an experiment search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentOrderBy {
    /// The sort key (never [`ExperimentKey::Tag`]).
    pub key: ExperimentKey,
    /// `true` for `ASC` (the default), `false` for `DESC`.
    pub ascending: bool,
}

/// A malformed filter or `order_by`; `message` is MLflow's wording, meant for an
/// `INVALID_PARAMETER_VALUE` response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SearchError {
    /// The message shown to the caller.
    pub message: String,
}

impl SearchError {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

impl From<SearchError> for DomainError {
    fn from(error: SearchError) -> Self {
        DomainError::invalid(error.message)
    }
}

/// Formats comparators as MLflow's set repr, `{'=', '!='}`, in a fixed order.
fn comparator_set(comparators: &[Comparator]) -> String {
    let items: Vec<String> = comparators.iter().map(|c| format!("'{c}'")).collect();
    format!("{{{}}}", items.join(", "))
}

/// Formats names as MLflow's set repr, `{'a', 'b'}`, in the given order.
fn name_set(names: &[&str]) -> String {
    let items: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    format!("{{{}}}", items.join(", "))
}

const NUMERIC_COMPARATORS: [Comparator; 6] = [
    Comparator::Eq,
    Comparator::Ne,
    Comparator::Gt,
    Comparator::Ge,
    Comparator::Lt,
    Comparator::Le,
];

const STRING_ATTRIBUTE_COMPARATORS: [Comparator; 6] = [
    Comparator::Eq,
    Comparator::Ne,
    Comparator::Like,
    Comparator::ILike,
    Comparator::In,
    Comparator::NotIn,
];

const KEY_VALUE_COMPARATORS: [Comparator; 6] = [
    Comparator::Eq,
    Comparator::Ne,
    Comparator::Like,
    Comparator::ILike,
    Comparator::IsNull,
    Comparator::IsNotNull,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparators_round_trip_through_their_spelling() {
        for comparator in ALL_COMPARATORS {
            assert_eq!(Comparator::from_mlflow(comparator.as_str()), Some(comparator));
        }
        assert_eq!(Comparator::from_mlflow(">>"), None);
        assert!(Comparator::Le.is_numeric() && !Comparator::Like.is_numeric());
    }

    #[test]
    fn sets_are_formatted_like_python() {
        assert_eq!(comparator_set(&[Comparator::Eq, Comparator::In]), "{'=', 'IN'}");
        assert_eq!(name_set(&["a", "b c"]), "{'a', 'b c'}");
    }

    #[test]
    fn search_errors_become_invalid_argument() {
        let error: DomainError = SearchError::new("bad").into();
        assert_eq!(error, DomainError::invalid("bad"));
        assert_eq!(SearchError::new("bad").to_string(), "bad");
    }
}
