//! A run's inputs (datasets and logged models) and outputs (logged models).

use crate::runs::require_active_run;
use crate::{Store, StoreResult};
use cairn_domain::audit::RequestContext;
use cairn_domain::entities::{DatasetInput, ModelOutput};

impl Store {
    /// Records datasets and logged models as inputs of an active run (idempotent).
    pub async fn log_inputs(
        &self,
        context: &RequestContext,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        let experiment_id = require_active_run(&mut transaction, run_id).await?;
        for input in datasets {
            let dataset = &input.dataset;
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT dataset_uuid FROM datasets WHERE experiment_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(experiment_id.0)
            .bind(&dataset.name)
            .bind(&dataset.digest)
            .fetch_optional(&mut *transaction)
            .await?;
            let dataset_uuid = match existing {
                Some(uuid) => uuid,
                None => {
                    let uuid = uuid::Uuid::new_v4().simple().to_string();
                    sqlx::query(
                        "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, source_type, source, schema, profile) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&uuid)
                    .bind(experiment_id.0)
                    .bind(&dataset.name)
                    .bind(&dataset.digest)
                    .bind(&dataset.source_type)
                    .bind(&dataset.source)
                    .bind(dataset.schema.clone())
                    .bind(dataset.profile.clone())
                    .execute(&mut *transaction)
                    .await?;
                    uuid
                }
            };
            sqlx::query(
                "INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(&dataset_uuid)
            .execute(&mut *transaction)
            .await?;
            for tag in &input.tags {
                sqlx::query(
                    "INSERT INTO run_dataset_input_tags (run_uuid, dataset_uuid, key, value) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (run_uuid, dataset_uuid, key) DO UPDATE SET value = excluded.value",
                )
                .bind(run_id)
                .bind(&dataset_uuid)
                .bind(&tag.key)
                .bind(&tag.value)
                .execute(&mut *transaction)
                .await?;
            }
        }
        for model_id in model_ids {
            link_model(&mut transaction, run_id, model_id, "input", 0).await?;
        }
        self.commit_audited(transaction, context, crate::audit::entry("run.log_inputs", format!("run:{run_id}"), serde_json::json!({"datasets": datasets.iter().map(|d| format!("{}@{}", d.dataset.name, d.dataset.digest)).collect::<Vec<_>>(), "models": model_ids}))).await?;
        Ok(())
    }

    /// Records logged models as outputs of an active run (idempotent).
    pub async fn log_outputs(
        &self,
        context: &RequestContext,
        run_id: &str,
        outputs: &[ModelOutput],
    ) -> StoreResult<()> {
        let mut transaction = self.begin().await?;
        require_active_run(&mut transaction, run_id).await?;
        for output in outputs {
            link_model(&mut transaction, run_id, &output.model_id, "output", output.step).await?;
        }
        self.commit_audited(transaction, context, crate::audit::entry("run.log_outputs", format!("run:{run_id}"), serde_json::json!({"models": outputs.iter().map(|o| o.model_id.as_str()).collect::<Vec<_>>()}))).await?;
        Ok(())
    }
}

async fn link_model(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    run_id: &str,
    model_id: &str,
    direction: &str,
    step: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO run_model_links (run_uuid, model_id, direction, step) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (run_uuid, model_id, direction) DO UPDATE SET step = excluded.step",
    )
    .bind(run_id)
    .bind(model_id)
    .bind(direction)
    .bind(step)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
