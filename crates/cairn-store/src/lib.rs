//! Cairn's metadata store: one [`Store`] over SQLite (WAL, the embedded default) and PostgreSQL
//! (at scale). Queries are written once with `$n` placeholders, which both engines accept;
//! per-dialect SQL appears only where the engines differ. Every public method is one use case
//! in one transaction, durable before it returns.

mod audit;
pub mod backup;
mod comments;
mod compute;
mod datasets;
mod deployments;
mod error;
mod experiments;
mod global_search;
mod governance;
mod identity;
mod jobs;
mod logged_models;
mod metric_sampling;
mod migrate;
mod monitoring;
mod projects;
mod registry;
mod run_data;
mod run_inputs;
mod run_search;
mod runs;
mod schedules;
mod secrets;
mod sessions;
mod sql;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod workspaces;

use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Executor, Transaction};

pub use audit::{AuditQuery, ChainStatus};
pub use comments::CommentRecord;
pub use compute::NewSnapshot;
pub use datasets::NewDatasetVersion;
pub use error::{StoreError, StoreResult};
pub use experiments::ExperimentSearch;
pub use global_search::COMMENT_WINDOW;
pub use governance::{
    CardRevision, DecisionKind, NewPolicy, Opened, PolicyRevision, RequestFilter,
};
pub use identity::NewUser;
pub use jobs::{JobOutcome, NewJob};
pub use logged_models::{LoggedModelField, LoggedModelSearch, NewLoggedModel};
pub use metric_sampling::DatasetSummary;
pub use monitoring::{AlertChanges, AlertScope, GroundTruth, NewCheck, Notification};
pub use projects::{Member, Team};
pub use registry::{NewModelVersion, RegistrySearch};
pub use run_data::{LogBatch, MetricHistoryPage};
pub use run_search::{RecentRun, RunSearch};
pub use runs::{NewRun, RunUpdate};
pub use schedules::{DueSchedule, ScheduleSettings};
pub use secrets::SealedSecret;
pub use sessions::{NewSession, SessionRecord};
pub use workspaces::{WorkspaceLaunch, WorkspaceRecord};

/// The database engine behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool (readers, for SQLite).
    pub max_connections: u32,
    /// How long to wait for a connection before answering "unavailable".
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 8, acquire_timeout: Duration::from_secs(5) }
    }
}

/// The metadata store. Cheap to clone: the pools are shared.
#[derive(Debug, Clone)]
pub struct Store {
    dialect: Dialect,
    reader: AnyPool,
    writer: AnyPool,
}

const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON;";

impl Store {
    /// Connects to `sqlite://path` or `postgres://…` (the file is created when missing).
    pub async fn connect(url: &str, options: &StoreOptions) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(cairn_domain::DomainError::invalid(format!(
                "unsupported database url scheme in '{}': use sqlite:// or postgres://",
                redact_url(url)
            ))
            .into());
        };
        match dialect {
            Dialect::Sqlite => {
                let url = sqlite_url_with_create(url);
                // One writer connection serialises writes inside the process, so SQLite never
                // has to upgrade a read lock under contention; readers share WAL snapshots.
                let writer = sqlite_pool(&url, 1, options).await?;
                let reader = sqlite_pool(&url, options.max_connections.max(1), options).await?;
                Ok(Store { dialect, reader, writer })
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .acquire_timeout(options.acquire_timeout)
                    .connect(url)
                    .await?;
                Ok(Store { dialect, reader: pool.clone(), writer: pool })
            }
        }
    }

    /// The engine in use.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies pending migrations; safe to call from several processes.
    pub async fn migrate(&self) -> StoreResult<Vec<i64>> {
        migrate::run(self, None).await
    }

    /// Applies pending migrations numbered at most `version` (restoring an older backup
    /// first recreates its schema, then migrates forward).
    pub async fn migrate_to(&self, version: i64) -> StoreResult<Vec<i64>> {
        migrate::run(self, Some(version)).await
    }

    /// The newest schema version this build can migrate to.
    pub fn latest_schema_version() -> i64 {
        migrate::latest_version()
    }

    /// Proves the database answers (for readiness checks).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").fetch_one(&self.reader).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    pub(crate) async fn begin(&self) -> StoreResult<Transaction<'static, sqlx::Any>> {
        Ok(self.writer.begin().await?)
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }
}

async fn sqlite_pool(url: &str, max: u32, options: &StoreOptions) -> StoreResult<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(options.acquire_timeout)
        .after_connect(|connection, _meta| {
            Box::pin(async move {
                connection.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// Hides the password of a database URL for logs and messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::from_str(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
