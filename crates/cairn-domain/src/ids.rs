//! Identifiers, chosen to be MLflow-compatible so no mapping table is needed: decimal
//! experiment ids (`0` is Default), 32-hex run ids and `m-<32hex>` logged-model ids.

use std::fmt;

use crate::DomainError;

/// A decimal experiment id; `0` is the Default experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ExperimentId(pub i64);

impl ExperimentId {
    /// The Default experiment, present on every fresh database.
    pub const DEFAULT: ExperimentId = ExperimentId(0);

    /// Parses an experiment id as MLflow does, with MLflow's message for a non-integer.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        raw.trim().parse::<i64>().map(ExperimentId).map_err(|_| {
            DomainError::invalid(format!(
                "Invalid experiment ID '{raw}'. Experiment ID must be a valid integer."
            ))
        })
    }
}

impl fmt::Display for ExperimentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Formats 16 random bytes as the 32 lowercase hex digits MLflow uses for run ids.
pub fn hex_id(bytes: [u8; 16]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Builds a logged-model id (`m-` followed by 32 hex digits) from 16 random bytes.
pub fn logged_model_id(bytes: [u8; 16]) -> String {
    format!("m-{}", hex_id(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_ids_parse_like_mlflow() {
        assert_eq!(ExperimentId::parse("42").unwrap(), ExperimentId(42));
        assert_eq!(
            ExperimentId::parse("abc").unwrap_err().message,
            "Invalid experiment ID 'abc'. Experiment ID must be a valid integer."
        );
    }

    #[test]
    fn ids_have_mlflow_shapes() {
        assert_eq!(hex_id([0xab; 16]).len(), 32);
        assert!(logged_model_id([1; 16]).starts_with("m-0101"));
    }
}
