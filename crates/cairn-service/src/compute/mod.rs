//! Central compute: project files, the environment/tier/quota catalogue, secrets, jobs on the
//! configured executors, and schedules.

mod catalog;
mod datasets;
mod dispatch;
mod files;
mod jobs;
mod schedules;
mod sealing;
mod secrets;

pub use catalog::CatalogService;
pub use datasets::{DatasetLineage, DatasetService};
pub(crate) use dispatch::make_read_only;
pub use files::FilesService;
pub use jobs::{
    DEFAULT_JOB_EXPERIMENT, DatasetUse, JobLog, JobService, JobsConfig, MAX_JOBS_PAGE,
    MAX_LOG_CHUNK, RunLineage,
};
pub use schedules::{MISSED_AFTER_MS, ScheduleRequest, next_firing, parse_timezone};
pub use sealing::SecretKey;
pub use secrets::{MAX_SECRET_BYTES, SecretService, rotate_secrets};

use std::collections::HashMap;
use std::sync::Arc;

use cairn_domain::compute::ExecutorKind;

/// How compute is set up on this server.
#[derive(Clone, Default)]
pub struct ComputeConfig {
    /// The executors by kind (local and/or Ray).
    pub executors: HashMap<ExecutorKind, Arc<dyn cairn_exec::JobExecutor>>,
    /// Dispatcher settings.
    pub jobs: JobsConfig,
    /// The key that seals secrets; without one, secrets cannot be set or used.
    pub secrets_key: Option<SecretKey>,
}
