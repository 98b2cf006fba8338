//! Datasets: named per project, with immutable versions of files (content-addressed blobs
//! shared with the project's snapshots) and what Cairn learnt about their tables.

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A reference to a dataset version: `NAME` (the newest) or `NAME@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The dataset's name.
    pub name: String,
    /// A pinned version; absent: the newest.
    pub version: Option<i64>,
}

impl DatasetRef {
    /// Parses `NAME` or `NAME@VERSION`.
    pub fn parse(raw: &str) -> Result<DatasetRef, DomainError> {
        let (name, version) = match raw.split_once('@') {
            Some((name, version)) => {
                let version =
                    version.parse::<i64>().ok().filter(|version| *version > 0).ok_or_else(
                        || {
                            DomainError::invalid(format!(
                                "invalid dataset '{raw}': the version after '@' is a number from 1"
                            ))
                        },
                    )?;
                (name, Some(version))
            }
            None => (raw, None),
        };
        crate::compute::validate_resource_name("dataset", name)?;
        Ok(DatasetRef { name: name.to_string(), version })
    }
}

/// A column of a table file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ColumnSchema {
    /// The column's name.
    pub name: String,
    /// Its type: `float`, `integer`, `string` or the file's own type name.
    pub r#type: String,
}

/// What Cairn read from a CSV or Parquet file of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TableMetadata {
    /// The file's path in the version.
    pub path: String,
    /// `csv` or `parquet`.
    pub format: String,
    /// Data rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The columns.
    #[serde(default)]
    pub columns: Vec<ColumnSchema>,
    /// Why the file could not be read as a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dataset {
    /// Its name, unique among the project's live datasets.
    pub name: String,
    /// The project's name.
    pub project: String,
    /// What it holds.
    pub description: String,
    /// Retention: only the newest N versions are kept (older ones are deleted, audited).
    pub keep_versions: Option<i64>,
    /// The newest live version.
    pub latest_version: Option<i64>,
    /// Who created it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
}

/// A version of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DatasetVersion {
    /// The dataset's name.
    pub dataset: String,
    /// The version, from 1.
    pub version: i64,
    /// The manifest's digest (SHA-256 of the files' paths and digests).
    pub digest: String,
    /// What changed.
    pub message: String,
    /// How many files.
    pub file_count: i64,
    /// Their total size.
    pub total_bytes: i64,
    /// Bytes stored for the first time by this version.
    pub new_bytes: i64,
    /// Rows and schemas of its CSV and Parquet files.
    pub tables: Vec<TableMetadata>,
    /// Who pushed it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_at: i64,
    /// When it was deleted (its record stays).
    pub deleted_at: Option<i64>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
}

impl DatasetVersion {
    /// The URI a run's MLflow dataset input carries for this version.
    pub fn source_uri(&self, project: &str) -> String {
        format!("cairn:/projects/{project}/datasets/{}/versions/{}", self.dataset, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_names_and_versions() {
        assert_eq!(
            DatasetRef::parse("churn").unwrap(),
            DatasetRef { name: "churn".into(), version: None }
        );
        assert_eq!(DatasetRef::parse("churn@3").unwrap().version, Some(3));
        for bad in ["churn@0", "churn@x", "Churn", "", "a@1@2"] {
            assert!(DatasetRef::parse(bad).is_err(), "{bad}");
        }
    }
}
