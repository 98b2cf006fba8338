//! Datasets: versions pushed with the same blob protocol as project files (so a file unchanged
//! between versions, or shared with a snapshot, is stored once), described by the rows and
//! schemas of their CSV and Parquet files, used by jobs by name and version, deleted softly
//! with audit, and kept to the newest N versions by a retention setting.

use cairn_domain::audit::RequestContext;
use cairn_domain::compute::{Job, Manifest, SnapshotFile};
use cairn_domain::datasets::{ColumnSchema, Dataset, DatasetRef, DatasetVersion, TableMetadata};
use cairn_domain::identity::{Access, Project};
use cairn_store::{NewDatasetVersion, Store};

use super::files::FilesService;
use crate::tables::{TableFormat, ValueType};
use crate::{ArtifactService, Authorizer, ServiceError, ServiceResult};

/// Tables larger than this are described by name only (no schema or row count read).
const MAX_DESCRIBED_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// At most this many tables of a version are described.
const MAX_DESCRIBED_TABLES: usize = 200;

/// Pushes, lists, describes and deletes datasets.
#[derive(Clone)]
pub struct DatasetService {
    store: Store,
    artifacts: ArtifactService,
    files: FilesService,
    authz: Authorizer,
}

/// What the lineage of a dataset version holds.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DatasetLineage {
    /// The version.
    pub version: DatasetVersion,
    /// Jobs that used it, with their runs.
    pub jobs: Vec<Job>,
}

impl DatasetService {
    /// Wraps the stores.
    pub fn new(store: Store, artifacts: ArtifactService, files: FilesService) -> Self {
        Self { authz: Authorizer::new(store.clone()), store, artifacts, files }
    }

    async fn project(
        &self,
        context: &RequestContext,
        project: &str,
        access: Access,
    ) -> ServiceResult<Project> {
        let project = self.store.get_project(project).await?;
        self.authz.require(context, project.id, access).await?;
        Ok(project)
    }

    /// Records a new version of `name` (creating the dataset on its first push) from files
    /// whose contents were uploaded with the project blob protocol.
    pub async fn push(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        files: Vec<SnapshotFile>,
        message: &str,
    ) -> ServiceResult<DatasetVersion> {
        let project = self.project(context, project, Access::Write).await?;
        DatasetRef::parse(name)?;
        if message.len() > 5000 {
            return Err(ServiceError::invalid("a version message has at most 5000 characters"));
        }
        let manifest = Manifest::parse(files)?;
        if manifest.files.is_empty() {
            return Err(ServiceError::invalid("a dataset version needs at least one file"));
        }
        self.files.verify_blobs(project.id, &manifest).await?;
        let previous = match self.store.dataset_version(project.id, name, None).await {
            Ok(version) => Some(version.digest),
            Err(error) if error.kind() == cairn_domain::ErrorKind::NotFound => None,
            Err(error) => return Err(error.into()),
        };
        let new_bytes = self.files.new_bytes(project.id, previous.as_deref(), &manifest).await?;
        let tables = self.describe(project.id, &manifest).await;
        let digest = self.files.write_manifest(project.id, &manifest).await?;
        let new = NewDatasetVersion {
            project_id: project.id,
            name,
            digest: &digest,
            message,
            file_count: i64::try_from(manifest.files.len()).unwrap_or(i64::MAX),
            total_bytes: i64::try_from(manifest.total_bytes()).unwrap_or(i64::MAX),
            new_bytes: i64::try_from(new_bytes).unwrap_or(i64::MAX),
            tables: &tables,
        };
        Ok(self.store.create_dataset_version(context, &new).await?)
    }

    /// Rows and columns of the manifest's CSV and Parquet files (a file that cannot be read as
    /// a table says why, and the push still succeeds).
    async fn describe(&self, project_id: i64, manifest: &Manifest) -> Vec<TableMetadata> {
        let mut tables = Vec::new();
        for file in
            manifest.files.iter().filter(|file| TableFormat::from_name(&file.path).is_some())
        {
            if tables.len() >= MAX_DESCRIBED_TABLES {
                break;
            }
            let Some(format) = TableFormat::from_name(&file.path) else { continue };
            let format_name = match format {
                TableFormat::Csv => "csv",
                TableFormat::Parquet => "parquet",
            };
            let mut metadata = TableMetadata {
                path: file.path.clone(),
                format: format_name.into(),
                rows: None,
                columns: Vec::new(),
                error: None,
            };
            if file.size > MAX_DESCRIBED_BYTES {
                metadata.error = Some("too large to describe".into());
                tables.push(metadata);
                continue;
            }
            let source = match self
                .artifacts
                .table_as(&FilesService::blob_store_path(project_id, &file.sha256), format)
            {
                Ok(source) => source,
                Err(error) => {
                    metadata.error = Some(error.message);
                    tables.push(metadata);
                    continue;
                }
            };
            match source.list_columns().await {
                Ok(columns) => {
                    metadata.columns = columns
                        .into_iter()
                        .map(|column| ColumnSchema {
                            name: column.name,
                            r#type: match column.value_type {
                                ValueType::Float => "float".into(),
                                ValueType::Integer => "integer".into(),
                                ValueType::Label => "string".into(),
                                ValueType::Unsupported(name) => name,
                            },
                        })
                        .collect();
                    match source.row_count().await {
                        Ok(rows) => metadata.rows = Some(rows),
                        Err(error) => metadata.error = Some(error.to_string()),
                    }
                }
                Err(error) => metadata.error = Some(error.to_string()),
            }
            tables.push(metadata);
        }
        tables
    }

    /// A project's datasets.
    pub async fn list(
        &self,
        context: &RequestContext,
        project: &str,
    ) -> ServiceResult<Vec<Dataset>> {
        let project = self.project(context, project, Access::Read).await?;
        Ok(self.store.list_datasets(project.id).await?)
    }

    /// A dataset with every version, deleted ones included.
    pub async fn get(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
    ) -> ServiceResult<(Dataset, Vec<DatasetVersion>)> {
        let project = self.project(context, project, Access::Read).await?;
        let dataset = self.store.get_dataset(project.id, name).await?;
        let versions = self.store.dataset_versions(project.id, name).await?;
        Ok((dataset, versions))
    }

    /// One live version (absent: the newest) with its files, and the jobs that used it.
    pub async fn version(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        version: Option<i64>,
    ) -> ServiceResult<(DatasetLineage, Manifest)> {
        let project = self.project(context, project, Access::Read).await?;
        let found = self.store.dataset_version(project.id, name, version).await?;
        let manifest = self.files.manifest(project.id, &found.digest).await?;
        let jobs = self.store.dataset_version_jobs(project.id, name, found.version).await?;
        Ok((DatasetLineage { version: found, jobs }, manifest))
    }

    /// Sets the description and retention (keep the newest N versions; applied at once).
    pub async fn configure(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        description: &str,
        keep_versions: Option<i64>,
    ) -> ServiceResult<Dataset> {
        let project = self.project(context, project, Access::Write).await?;
        if keep_versions.is_some_and(|keep| keep < 1) {
            return Err(ServiceError::invalid("keep_versions is at least 1"));
        }
        Ok(self
            .store
            .set_dataset_settings(context, project.id, name, description, keep_versions)
            .await?)
    }

    /// Deletes one version, or the whole dataset when `version` is absent (soft, audited).
    pub async fn delete(
        &self,
        context: &RequestContext,
        project: &str,
        name: &str,
        version: Option<i64>,
    ) -> ServiceResult<()> {
        let project = self.project(context, project, Access::Write).await?;
        match version {
            Some(version) => {
                Ok(self.store.delete_dataset_version(context, project.id, name, version).await?)
            }
            None => Ok(self.store.delete_dataset(context, project.id, name).await?),
        }
    }
}
