//! Runs: create, read (with all their data, in bulk), update, soft-delete and restore.

use std::collections::HashMap;

use cairn_domain::DomainError;
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{
    Dataset, DatasetInput, LifecycleStage, Metric, ModelOutput, Param, Run, RunInfo, RunStatus, Tag,
};
use cairn_domain::ids::{ExperimentId, hex_id};
use cairn_domain::time::now_millis;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::experiments::active_experiment_location;
use crate::sql::{Sql, float, opt_text};
use crate::{Store, StoreResult};

/// The tag that carries a run's display name.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// How many ids one `IN (…)` list carries when loading runs in bulk.
const LOAD_CHUNK: usize = 500;

pub(crate) const RUN_COLUMNS: &str = "r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, \
     r.start_time, r.end_time, r.lifecycle_stage, r.artifact_uri";

/// What `runs/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    /// The experiment to create the run in.
    pub experiment_id: ExperimentId,
    /// Who starts it.
    pub user_id: String,
    /// The display name; generated when absent.
    pub run_name: Option<String>,
    /// Start time; now when absent.
    pub start_time: Option<i64>,
    /// Initial tags.
    pub tags: Vec<Tag>,
}

/// What `runs/update` may change.
#[derive(Debug, Clone, Default)]
pub struct RunUpdate {
    /// A new status.
    pub status: Option<RunStatus>,
    /// A new end time.
    pub end_time: Option<i64>,
    /// A new display name.
    pub run_name: Option<String>,
}

pub(crate) fn run_not_found(run_id: &str) -> crate::StoreError {
    DomainError::not_found(format!("Run with id={run_id} not found")).into()
}

pub(crate) fn info_from_row(row: &AnyRow) -> sqlx::Result<RunInfo> {
    let status: String = row.try_get("status")?;
    Ok(RunInfo {
        run_id: row.try_get("run_uuid")?,
        experiment_id: ExperimentId(row.try_get("experiment_id")?),
        run_name: row.try_get("name")?,
        user_id: row.try_get("user_id")?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Running),
        start_time: row.try_get("start_time")?,
        end_time: row.try_get::<Option<i64>, _>("end_time")?,
        artifact_uri: row.try_get("artifact_uri")?,
        lifecycle_stage: LifecycleStage::from_stored(&row.try_get::<String, _>("lifecycle_stage")?),
    })
}

const ADJECTIVES: &[&str] = &[
    "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "gentle", "glad", "grand",
    "honest", "keen", "lively", "lucky", "merry", "mighty", "nimble", "polite", "quick", "quiet",
    "rare", "sharp", "shy", "silent", "smooth", "steady", "swift", "tidy", "vivid", "wise",
];
const NOUNS: &[&str] = &[
    "badger", "bear", "cairn", "carp", "crane", "deer", "eagle", "finch", "fox", "hare", "hawk",
    "heron", "lark", "lynx", "mole", "moth", "newt", "otter", "owl", "ram", "robin", "seal",
    "shrew", "snail", "stoat", "swan", "toad", "trout", "vole", "wren",
];

/// Makes an `adjective-noun-NNN` run name from random bytes, as MLflow does.
pub(crate) fn random_run_name(bytes: [u8; 16]) -> String {
    let adjective = ADJECTIVES[usize::from(bytes[0]) % ADJECTIVES.len()];
    let noun = NOUNS[usize::from(bytes[1]) % NOUNS.len()];
    let number = u16::from_le_bytes([bytes[2], bytes[3]]) % 1000;
    format!("{adjective}-{noun}-{number}")
}

impl Store {
    /// Creates a run in an active experiment.
    pub async fn create_run(&self, context: &RequestContext, new_run: &NewRun) -> StoreResult<Run> {
        let mut transaction = self.begin().await?;
        let run = self.insert_run(&mut transaction, new_run, RunStatus::Running).await?;
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                "run.create",
                format!("run:{}", run.info.run_id),
                serde_json::json!({"experiment_id": new_run.experiment_id.0, "run_name": run.info.run_name}),
            ),
        )
        .await?;
        Ok(run)
    }

    /// Inserts a run in `status` inside a caller's transaction (which writes the audit record).
    pub(crate) async fn insert_run(
        &self,
        transaction: &mut Transaction<'static, Any>,
        new_run: &NewRun,
        status: RunStatus,
    ) -> StoreResult<Run> {
        let run_id = hex_id(*uuid::Uuid::new_v4().as_bytes());
        let tag_name = new_run.tags.iter().find(|t| t.key == RUN_NAME_TAG).map(|t| t.value.clone());
        if let (Some(name), Some(tag)) = (&new_run.run_name, &tag_name)
            && !name.is_empty()
            && name != tag
        {
            return Err(DomainError::invalid(format!(
                    "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='{name}', mlflow.runName='{tag}')."
                ))
                .into());
        }
        let run_name = new_run
            .run_name
            .clone()
            .filter(|name| !name.is_empty())
            .or(tag_name.clone())
            .unwrap_or_else(|| random_run_name(*uuid::Uuid::new_v4().as_bytes()));
        let start_time = new_run.start_time.unwrap_or_else(now_millis);
        let location = active_experiment_location(transaction, new_run.experiment_id).await?;
        let artifact_uri = format!("{}/{run_id}/artifacts", location.trim_end_matches('/'));
        sqlx::query(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, \
             lifecycle_stage, artifact_uri) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)",
        )
        .bind(&run_id)
        .bind(new_run.experiment_id.0)
        .bind(&run_name)
        .bind(&new_run.user_id)
        .bind(status.as_str())
        .bind(start_time)
        .bind(&artifact_uri)
        .execute(&mut **transaction)
        .await?;
        let mut tags = new_run.tags.clone();
        if tag_name.is_none() {
            tags.push(Tag { key: RUN_NAME_TAG.to_string(), value: run_name.clone() });
        }
        let tags = upsert_run_tags(self.dialect, transaction, &run_id, &tags).await?;
        // A new run has no data but its tags: answer without reading it back.
        Ok(Run {
            info: RunInfo {
                run_id,
                experiment_id: new_run.experiment_id,
                run_name,
                user_id: new_run.user_id.clone(),
                status,
                start_time,
                end_time: None,
                artifact_uri,
                lifecycle_stage: LifecycleStage::Active,
            },
            metrics: Vec::new(),
            params: Vec::new(),
            tags,
            dataset_inputs: Vec::new(),
            model_inputs: Vec::new(),
            model_outputs: Vec::new(),
        })
    }

    /// Loads a run with its latest metrics, params, tags, inputs and outputs.
    pub async fn get_run(&self, run_id: &str) -> StoreResult<Run> {
        let mut runs = self.load_runs(&[run_id.to_string()]).await?;
        runs.pop().ok_or_else(|| run_not_found(run_id))
    }

    /// Loads a run's metadata only.
    pub async fn get_run_info(&self, run_id: &str) -> StoreResult<RunInfo> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = $1"
        )))
        .bind(run_id)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| run_not_found(run_id))?;
        Ok(info_from_row(&row)?)
    }

    /// Updates status, end time and/or name of an active run.
    pub async fn update_run(
        &self,
        context: &RequestContext,
        run_id: &str,
        update: &RunUpdate,
    ) -> StoreResult<RunInfo> {
        let mut transaction = self.begin().await?;
        require_active_run(&mut transaction, run_id).await?;
        let mut sql = Sql::new("UPDATE runs SET run_uuid = run_uuid");
        if let Some(status) = update.status {
            sql.push(", status = ").bind(status.as_str());
        }
        if let Some(end_time) = update.end_time {
            sql.push(", end_time = ").bind(end_time);
        }
        if let Some(name) = update.run_name.as_ref().filter(|name| !name.is_empty()) {
            sql.push(", name = ").bind(name);
        }
        sql.push(" WHERE run_uuid = ").bind(run_id);
        sql.query(self.dialect).execute(&mut *transaction).await?;
        if let Some(name) = update.run_name.as_ref().filter(|name| !name.is_empty()) {
            let tag = Tag { key: RUN_NAME_TAG.to_string(), value: name.clone() };
            upsert_run_tags(self.dialect, &mut transaction, run_id, &[tag]).await?;
        }
        self.commit_audited(transaction, context, crate::audit::entry("run.update", format!("run:{run_id}"), serde_json::json!({"status": update.status.map(|s| s.as_str()), "end_time": update.end_time, "run_name": update.run_name}))).await?;
        self.get_run_info(run_id).await
    }

    /// Soft-deletes a run.
    pub async fn delete_run(&self, context: &RequestContext, run_id: &str) -> StoreResult<()> {
        self.set_run_stage(context, run_id, LifecycleStage::Deleted).await
    }

    /// Restores a soft-deleted run.
    pub async fn restore_run(&self, context: &RequestContext, run_id: &str) -> StoreResult<()> {
        self.set_run_stage(context, run_id, LifecycleStage::Active).await
    }

    async fn set_run_stage(
        &self,
        context: &RequestContext,
        run_id: &str,
        stage: LifecycleStage,
    ) -> StoreResult<()> {
        let deleted_time = (stage == LifecycleStage::Deleted).then(now_millis);
        let mut transaction = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE runs SET lifecycle_stage = $1, deleted_time = $2 WHERE run_uuid = $3",
        )
        .bind(stage.as_str())
        .bind(deleted_time)
        .bind(run_id)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(run_not_found(run_id));
        }
        self.commit_audited(
            transaction,
            context,
            crate::audit::entry(
                if stage == LifecycleStage::Deleted { "run.delete" } else { "run.restore" },
                format!("run:{run_id}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        Ok(())
    }

    /// Loads complete runs for the given ids, in the given order; unknown ids are skipped.
    pub(crate) async fn load_runs(&self, run_ids: &[String]) -> StoreResult<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::with_capacity(run_ids.len());
        for chunk in run_ids.chunks(LOAD_CHUNK) {
            self.load_run_chunk(chunk, &mut runs).await?;
        }
        let position: HashMap<&str, usize> =
            run_ids.iter().enumerate().map(|(index, id)| (id.as_str(), index)).collect();
        runs.sort_by_key(|run| {
            position.get(run.info.run_id.as_str()).copied().unwrap_or(usize::MAX)
        });
        Ok(runs)
    }

    async fn load_run_chunk(&self, ids: &[String], out: &mut Vec<Run>) -> StoreResult<()> {
        let pool = self.reader();
        let mut sql = Sql::new("SELECT ");
        sql.push(RUN_COLUMNS)
            .push(" FROM runs r WHERE r.run_uuid IN ")
            .bind_list(ids.iter().cloned());
        let mut by_id: HashMap<String, Run> = HashMap::new();
        for row in sql.query(self.dialect).fetch_all(pool).await? {
            let info = info_from_row(&row)?;
            by_id.insert(
                info.run_id.clone(),
                Run {
                    info,
                    metrics: Vec::new(),
                    params: Vec::new(),
                    tags: Vec::new(),
                    dataset_inputs: Vec::new(),
                    model_inputs: Vec::new(),
                    model_outputs: Vec::new(),
                },
            );
        }
        if by_id.is_empty() {
            return Ok(());
        }
        let present: Vec<String> = by_id.keys().cloned().collect();
        let list = |select: &str, tail: &str| {
            let mut sql = Sql::new(select);
            sql.bind_list(present.iter().cloned()).push(tail);
            sql
        };
        let params =
            list("SELECT run_uuid, key, value FROM params WHERE run_uuid IN ", " ORDER BY key");
        for row in params.query(self.dialect).fetch_all(pool).await? {
            if let Some(run) = by_id.get_mut(&row.try_get::<String, _>("run_uuid")?) {
                run.params.push(Param { key: row.try_get("key")?, value: row.try_get("value")? });
            }
        }
        let tags =
            list("SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ", " ORDER BY key");
        for row in tags.query(self.dialect).fetch_all(pool).await? {
            if let Some(run) = by_id.get_mut(&row.try_get::<String, _>("run_uuid")?) {
                run.tags.push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
            }
        }
        let metrics = list(
            "SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN ",
            " ORDER BY key",
        );
        for row in metrics.query(self.dialect).fetch_all(pool).await? {
            if let Some(run) = by_id.get_mut(&row.try_get::<String, _>("run_uuid")?) {
                run.metrics.push(metric_from_row(&row)?);
            }
        }
        self.attach_inputs(&present, &mut by_id).await?;
        out.extend(by_id.into_values());
        Ok(())
    }

    async fn attach_inputs(
        &self,
        present: &[String],
        by_id: &mut HashMap<String, Run>,
    ) -> StoreResult<()> {
        let pool = self.reader();
        let mut sql = Sql::new(
            "SELECT i.run_uuid, d.dataset_uuid, d.name, d.digest, d.source_type, d.source, d.schema, d.profile \
             FROM run_dataset_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid WHERE i.run_uuid IN ",
        );
        sql.bind_list(present.iter().cloned()).push(" ORDER BY d.name, d.digest");
        let mut input_index: HashMap<(String, String), usize> = HashMap::new();
        for row in sql.query(self.dialect).fetch_all(pool).await? {
            let run_id: String = row.try_get("run_uuid")?;
            if let Some(run) = by_id.get_mut(&run_id) {
                input_index.insert(
                    (run_id.clone(), row.try_get("dataset_uuid")?),
                    run.dataset_inputs.len(),
                );
                run.dataset_inputs.push(DatasetInput {
                    tags: Vec::new(),
                    dataset: Dataset {
                        name: row.try_get("name")?,
                        digest: row.try_get("digest")?,
                        source_type: row.try_get("source_type")?,
                        source: row.try_get("source")?,
                        schema: opt_text(&row, "schema")?,
                        profile: opt_text(&row, "profile")?,
                    },
                });
            }
        }
        if !input_index.is_empty() {
            let mut tag_sql = Sql::new(
                "SELECT run_uuid, dataset_uuid, key, value FROM run_dataset_input_tags WHERE run_uuid IN ",
            );
            tag_sql.bind_list(present.iter().cloned()).push(" ORDER BY key");
            for row in tag_sql.query(self.dialect).fetch_all(pool).await? {
                let run_id: String = row.try_get("run_uuid")?;
                let key = (run_id.clone(), row.try_get::<String, _>("dataset_uuid")?);
                if let (Some(index), Some(run)) = (input_index.get(&key), by_id.get_mut(&run_id)) {
                    run.dataset_inputs[*index]
                        .tags
                        .push(Tag { key: row.try_get("key")?, value: row.try_get("value")? });
                }
            }
        }
        let mut links = Sql::new(
            "SELECT run_uuid, model_id, direction, step FROM run_model_links WHERE run_uuid IN ",
        );
        links.bind_list(present.iter().cloned()).push(" ORDER BY model_id");
        for row in links.query(self.dialect).fetch_all(pool).await? {
            if let Some(run) = by_id.get_mut(&row.try_get::<String, _>("run_uuid")?) {
                let link =
                    ModelOutput { model_id: row.try_get("model_id")?, step: row.try_get("step")? };
                if row.try_get::<String, _>("direction")? == "output" {
                    run.model_outputs.push(link);
                } else {
                    run.model_inputs.push(link);
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn metric_from_row(row: &AnyRow) -> sqlx::Result<Metric> {
    let is_nan: i64 = row.try_get("is_nan")?;
    Ok(Metric {
        key: row.try_get("key")?,
        value: if is_nan != 0 { f64::NAN } else { float(row, "value")? },
        timestamp: row.try_get("timestamp")?,
        step: row.try_get("step")?,
        model_id: None,
        dataset_name: None,
        dataset_digest: None,
        run_id: None,
    })
}

/// Fails unless the run exists and is active; returns its experiment.
pub(crate) async fn require_active_run(
    transaction: &mut Transaction<'static, Any>,
    run_id: &str,
) -> StoreResult<ExperimentId> {
    let row = sqlx::query("SELECT experiment_id, lifecycle_stage FROM runs WHERE run_uuid = $1")
        .bind(run_id)
        .fetch_optional(&mut **transaction)
        .await?
        .ok_or_else(|| run_not_found(run_id))?;
    let stage: String = row.try_get("lifecycle_stage")?;
    if stage != "active" {
        return Err(DomainError::invalid(format!(
            "The run {run_id} must be in the 'active' state. Current state is {stage}."
        ))
        .into());
    }
    Ok(ExperimentId(row.try_get("experiment_id")?))
}

/// Sets many tags in one statement (the last value of a repeated key wins) and keeps the run's
/// name in step with `mlflow.runName`; returns the tags written, sorted by key.
pub(crate) async fn upsert_run_tags(
    dialect: crate::Dialect,
    transaction: &mut Transaction<'static, Any>,
    run_id: &str,
    tags: &[Tag],
) -> StoreResult<Vec<Tag>> {
    let mut latest: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
    for tag in tags {
        latest.insert(&tag.key, &tag.value);
    }
    if latest.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("INSERT INTO tags (run_uuid, key, value) VALUES ");
    for (index, (key, value)) in latest.iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push("(").bind(run_id).push(", ").bind(*key).push(", ").bind(*value).push(")");
    }
    sql.push(" ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value");
    sql.query(dialect).execute(&mut **transaction).await?;
    if let Some(name) = latest.get(RUN_NAME_TAG) {
        sqlx::query("UPDATE runs SET name = $1 WHERE run_uuid = $2")
            .bind(*name)
            .bind(run_id)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(latest
        .into_iter()
        .map(|(key, value)| Tag { key: key.to_string(), value: value.to_string() })
        .collect())
}
