//! The tracking entities of the system of record: experiments, runs and their data, logged
//! models and dataset inputs. Plain data; the store loads and saves them.

use crate::ids::ExperimentId;

/// Whether an entity is live or soft-deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleStage {
    /// Visible and writable.
    Active,
    /// Soft-deleted; restorable.
    Deleted,
}

impl LifecycleStage {
    /// The stored and wire name (`active` / `deleted`).
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::Active => "active",
            LifecycleStage::Deleted => "deleted",
        }
    }

    /// Parses a stored name; anything but `deleted` is active.
    pub fn from_stored(raw: &str) -> Self {
        if raw == "deleted" { LifecycleStage::Deleted } else { LifecycleStage::Active }
    }
}

/// Which lifecycle stages a search includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    /// Only active entities (the default).
    #[default]
    ActiveOnly,
    /// Only deleted entities.
    DeletedOnly,
    /// Both.
    All,
}

impl ViewType {
    /// Parses MLflow's enum by name or number (`ACTIVE_ONLY`/`1`, `DELETED_ONLY`/`2`, `ALL`/`3`).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "ACTIVE_ONLY" | "1" => Some(ViewType::ActiveOnly),
            "DELETED_ONLY" | "2" => Some(ViewType::DeletedOnly),
            "ALL" | "3" => Some(ViewType::All),
            _ => None,
        }
    }
}

/// A run's status, as MLflow's `RunStatus` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running.
    Running,
    /// Scheduled but not started.
    Scheduled,
    /// Completed successfully.
    Finished,
    /// Completed with a failure.
    Failed,
    /// Stopped by someone.
    Killed,
}

impl RunStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// Parses the enum by name or number; unknown values give `None`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "RUNNING" | "1" => Some(RunStatus::Running),
            "SCHEDULED" | "2" => Some(RunStatus::Scheduled),
            "FINISHED" | "3" => Some(RunStatus::Finished),
            "FAILED" | "4" => Some(RunStatus::Failed),
            "KILLED" | "5" => Some(RunStatus::Killed),
            _ => None,
        }
    }
}

/// A key/value tag on an experiment, run or logged model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tag's key.
    pub key: String,
    /// The tag's value.
    pub value: String,
}

/// An immutable run parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's key.
    pub key: String,
    /// The parameter's value.
    pub value: String,
}

/// One metric point. `value` may be NaN; infinities are clamped to ±f64::MAX on write.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's key.
    pub key: String,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The step (0 by default).
    pub step: i64,
    /// The logged model this point belongs to, if any.
    pub model_id: Option<String>,
    /// The dataset this point was computed on, if any.
    pub dataset_name: Option<String>,
    /// The digest of that dataset.
    pub dataset_digest: Option<String>,
    /// The run that logged the point (filled where a response needs it).
    pub run_id: Option<String>,
}

/// An experiment: a named container of runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// The decimal id.
    pub experiment_id: ExperimentId,
    /// The project it belongs to.
    pub project_id: i64,
    /// The name, unique within its project.
    pub name: String,
    /// Where its runs' artifacts live by default.
    pub artifact_location: String,
    /// Active or deleted.
    pub lifecycle_stage: LifecycleStage,
    /// Creation time in epoch milliseconds.
    pub creation_time: i64,
    /// Last change in epoch milliseconds.
    pub last_update_time: i64,
    /// Its tags.
    pub tags: Vec<Tag>,
}

/// A run's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The 32-hex run id.
    pub run_id: String,
    /// The experiment it belongs to.
    pub experiment_id: ExperimentId,
    /// Its display name.
    pub run_name: String,
    /// Who started it.
    pub user_id: String,
    /// Its status.
    pub status: RunStatus,
    /// Start time in epoch milliseconds.
    pub start_time: i64,
    /// End time, once it ended.
    pub end_time: Option<i64>,
    /// Where its artifacts live.
    pub artifact_uri: String,
    /// Active or deleted.
    pub lifecycle_stage: LifecycleStage,
}

/// A dataset as logged by `mlflow.log_input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The dataset's name.
    pub name: String,
    /// Its content digest.
    pub digest: String,
    /// The kind of source (`local`, `s3`, `code`…).
    pub source_type: String,
    /// The source, usually JSON.
    pub source: String,
    /// Its schema, if given.
    pub schema: Option<String>,
    /// Its profile, if given.
    pub profile: Option<String>,
}

/// A dataset attached to a run, with the input's own tags (e.g. `mlflow.data.context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInput {
    /// Tags of the input link.
    pub tags: Vec<Tag>,
    /// The dataset.
    pub dataset: Dataset,
}

/// A logged model used as an input or produced as an output of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutput {
    /// The logged model id.
    pub model_id: String,
    /// The step at which it was produced (outputs only; 0 for inputs).
    pub step: i64,
}

/// Everything a `runs/get` answer carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Metadata.
    pub info: RunInfo,
    /// The latest value of each metric.
    pub metrics: Vec<Metric>,
    /// Parameters.
    pub params: Vec<Param>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Dataset inputs.
    pub dataset_inputs: Vec<DatasetInput>,
    /// Logged models used as inputs.
    pub model_inputs: Vec<ModelOutput>,
    /// Logged models produced.
    pub model_outputs: Vec<ModelOutput>,
}

/// A logged model's lifecycle status, as MLflow's `LoggedModelStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedModelStatus {
    /// Not specified.
    Unspecified = 0,
    /// Created; files are being uploaded.
    Pending = 1,
    /// Files are complete.
    Ready = 2,
    /// The upload failed.
    UploadFailed = 3,
}

impl LoggedModelStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Unspecified => "LOGGED_MODEL_STATUS_UNSPECIFIED",
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    /// Parses the enum by name or number.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "LOGGED_MODEL_STATUS_UNSPECIFIED" | "0" => Some(LoggedModelStatus::Unspecified),
            "LOGGED_MODEL_PENDING" | "1" => Some(LoggedModelStatus::Pending),
            "LOGGED_MODEL_READY" | "2" => Some(LoggedModelStatus::Ready),
            "LOGGED_MODEL_UPLOAD_FAILED" | "3" => Some(LoggedModelStatus::UploadFailed),
            _ => None,
        }
    }

    /// Maps the stored number back to the enum.
    pub fn from_number(number: i64) -> Self {
        match number {
            1 => LoggedModelStatus::Pending,
            2 => LoggedModelStatus::Ready,
            3 => LoggedModelStatus::UploadFailed,
            _ => LoggedModelStatus::Unspecified,
        }
    }
}

/// An MLflow 3 logged model (`m-<32hex>`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    /// The id.
    pub model_id: String,
    /// The experiment it belongs to.
    pub experiment_id: ExperimentId,
    /// Its name (e.g. `model`).
    pub name: String,
    /// Where its files live.
    pub artifact_uri: String,
    /// Creation time in epoch milliseconds.
    pub creation_timestamp_ms: i64,
    /// Last change in epoch milliseconds.
    pub last_updated_timestamp_ms: i64,
    /// Upload status.
    pub status: LoggedModelStatus,
    /// Who created it.
    pub creator_id: Option<String>,
    /// Free-form model type.
    pub model_type: Option<String>,
    /// The run that produced it.
    pub source_run_id: Option<String>,
    /// A message about the status.
    pub status_message: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Params.
    pub params: Vec<Param>,
    /// Metrics logged against it.
    pub metrics: Vec<Metric>,
}

/// A model version's stage (MLflow's deprecated-but-used stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No stage.
    None,
    /// Staging.
    Staging,
    /// Production.
    Production,
    /// Archived.
    Archived,
}

impl Stage {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Parses a stage case-insensitively, with MLflow's message for anything else.
    pub fn parse(raw: &str) -> Result<Self, crate::DomainError> {
        match raw.to_ascii_lowercase().as_str() {
            "none" => Ok(Stage::None),
            "staging" => Ok(Stage::Staging),
            "production" => Ok(Stage::Production),
            "archived" => Ok(Stage::Archived),
            _ => Err(crate::DomainError::invalid(format!(
                "Invalid Model Version stage: {raw}. Value must be one of None, Staging, Production, Archived."
            ))),
        }
    }
}

/// One version of a registered model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// The version number (from 1, never reused).
    pub version: i64,
    /// Creation time in epoch milliseconds.
    pub creation_timestamp: i64,
    /// Last change in epoch milliseconds.
    pub last_updated_timestamp: i64,
    /// Who registered it.
    pub user_id: Option<String>,
    /// Its stage.
    pub current_stage: Stage,
    /// A description.
    pub description: Option<String>,
    /// Where its files are (`models:/m-…`, `runs:/…`, a URI).
    pub source: String,
    /// The run that produced it.
    pub run_id: Option<String>,
    /// A link to the run.
    pub run_link: Option<String>,
    /// The MLflow 3 logged model behind it.
    pub model_id: Option<String>,
    /// Its tags.
    pub tags: Vec<Tag>,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModel {
    /// The unique name.
    pub name: String,
    /// Creation time in epoch milliseconds.
    pub creation_timestamp: i64,
    /// Last change in epoch milliseconds.
    pub last_updated_timestamp: i64,
    /// Who created it.
    pub user_id: Option<String>,
    /// A description.
    pub description: Option<String>,
    /// The latest version per stage.
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Aliases and the versions they point at.
    pub aliases: Vec<(String, i64)>,
}
