//! Conformance: runs, params, metrics, tags, inputs and logged models.

use cairn_domain::ErrorKind;
use cairn_domain::entities::{
    Dataset, DatasetInput, LifecycleStage, LoggedModelStatus, Metric, ModelOutput, Param,
    RunStatus, Tag,
};

use super::ctx;
use crate::{LogBatch, NewLoggedModel, NewRun, RunUpdate, Store};

pub(super) async fn run(store: &Store) {
    lifecycle(store).await;
    params_are_immutable(store).await;
    metrics_history_and_latest(store).await;
    inputs_outputs_and_logged_models(store).await;
}

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric {
        key: key.into(),
        value,
        timestamp,
        step,
        model_id: None,
        dataset_name: None,
        dataset_digest: None,
        run_id: None,
    }
}

async fn new_run(store: &Store, experiment: &str) -> String {
    let experiment_id = match store.get_experiment_by_name(1, experiment).await {
        Ok(experiment) => experiment.experiment_id,
        Err(_) => {
            store.create_experiment(&ctx(), 1, experiment, None, &[]).await.expect("experiment")
        }
    };
    let run = store
        .create_run(&ctx(), &NewRun { experiment_id, user_id: "ada".into(), ..NewRun::default() })
        .await
        .expect("create run");
    run.info.run_id
}

async fn lifecycle(store: &Store) {
    let experiment_id =
        store.create_experiment(&ctx(), 1, "conf-runs", None, &[]).await.expect("experiment");
    let run = store
        .create_run(
            &ctx(),
            &NewRun {
                experiment_id,
                user_id: "ada".into(),
                run_name: Some("first".into()),
                start_time: Some(1000),
                tags: vec![Tag { key: "mlflow.source.type".into(), value: "LOCAL".into() }],
            },
        )
        .await
        .expect("create run");
    assert_eq!(run.info.run_id.len(), 32);
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(
        run.info.artifact_uri,
        format!("mlflow-artifacts:/{experiment_id}/{}/artifacts", run.info.run_id)
    );
    assert!(run.tags.iter().any(|t| t.key == "mlflow.runName" && t.value == "first"));
    let generated = store
        .create_run(&ctx(), &NewRun { experiment_id, ..NewRun::default() })
        .await
        .expect("run");
    assert!(!generated.info.run_name.is_empty(), "a name is generated");

    let info = store
        .update_run(
            &ctx(),
            &run.info.run_id,
            &RunUpdate {
                status: Some(RunStatus::Finished),
                end_time: Some(2000),
                run_name: Some("renamed".into()),
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (info.status, info.end_time, info.run_name.as_str()),
        (RunStatus::Finished, Some(2000), "renamed")
    );

    store.delete_run(&ctx(), &run.info.run_id).await.expect("delete");
    let deleted = store.get_run(&run.info.run_id).await.expect("deleted runs stay readable");
    assert_eq!(deleted.info.lifecycle_stage, LifecycleStage::Deleted);
    let refused = store
        .log_batch(
            &ctx(),
            &run.info.run_id,
            &LogBatch { metrics: vec![metric("m", 1.0, 1, 0)], ..LogBatch::default() },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidArgument);
    store.restore_run(&ctx(), &run.info.run_id).await.expect("restore");

    let missing = store.get_run("0123456789abcdef0123456789abcdef").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(missing.to_string(), "Run with id=0123456789abcdef0123456789abcdef not found");

    store.delete_experiment(&ctx(), experiment_id).await.expect("delete experiment");
    let in_deleted =
        store.create_run(&ctx(), &NewRun { experiment_id, ..NewRun::default() }).await.unwrap_err();
    assert_eq!(in_deleted.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        store.get_run(&generated.info.run_id).await.expect("run").info.lifecycle_stage,
        LifecycleStage::Deleted,
        "deleting an experiment deletes its runs"
    );
}

async fn params_are_immutable(store: &Store) {
    let run_id = new_run(store, "conf-params").await;
    let lr = Param { key: "lr".into(), value: "0.1".into() };
    store.log_param(&ctx(), &run_id, &lr).await.expect("log param");
    store.log_param(&ctx(), &run_id, &lr).await.expect("same value is idempotent");
    let changed = store
        .log_param(&ctx(), &run_id, &Param { key: "lr".into(), value: "0.2".into() })
        .await
        .unwrap_err();
    assert_eq!(changed.kind(), ErrorKind::InvalidArgument);
    assert!(
        changed
            .to_string()
            .starts_with("Changing param values is not allowed. Param with key='lr'")
    );
    let batch = LogBatch {
        params: vec![Param { key: "lr".into(), value: "0.3".into() }],
        ..LogBatch::default()
    };
    let changed = store.log_batch(&ctx(), &run_id, &batch).await.unwrap_err();
    assert!(changed.to_string().contains("'old_value': '0.1', 'new_value': '0.3'"));
    let duplicate = LogBatch {
        params: vec![
            Param { key: "a".into(), value: "1".into() },
            Param { key: "a".into(), value: "1".into() },
        ],
        ..LogBatch::default()
    };
    assert!(
        store
            .log_batch(&ctx(), &run_id, &duplicate)
            .await
            .unwrap_err()
            .to_string()
            .contains("Duplicate parameter keys")
    );
    let tags = LogBatch {
        tags: vec![
            Tag { key: "t".into(), value: "1".into() },
            Tag { key: "t".into(), value: "2".into() },
        ],
        ..LogBatch::default()
    };
    store.log_batch(&ctx(), &run_id, &tags).await.expect("tags overwrite");
    let run = store.get_run(&run_id).await.expect("run");
    assert!(run.tags.contains(&Tag { key: "t".into(), value: "2".into() }));
    store.delete_run_tag(&ctx(), &run_id, "t").await.expect("delete tag");
    assert_eq!(
        store.delete_run_tag(&ctx(), &run_id, "t").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

async fn metrics_history_and_latest(store: &Store) {
    let run_id = new_run(store, "conf-metrics").await;
    let mut metrics: Vec<Metric> =
        (0..1000).map(|step| metric("loss", 1.0 / (step as f64 + 1.0), 10 + step, step)).collect();
    store
        .log_batch(&ctx(), &run_id, &LogBatch { metrics: metrics.clone(), ..LogBatch::default() })
        .await
        .expect("batch");
    // A retried batch (the client retries 5xx) must not duplicate history.
    store
        .log_batch(
            &ctx(),
            &run_id,
            &LogBatch { metrics: metrics.split_off(990), ..LogBatch::default() },
        )
        .await
        .expect("retry");
    let odd = LogBatch {
        metrics: vec![
            metric("nan", f64::NAN, 1, 0),
            metric("inf", f64::INFINITY, 1, 0),
            metric("loss", 9.0, 5, 3),
        ],
        ..LogBatch::default()
    };
    store.log_batch(&ctx(), &run_id, &odd).await.expect("odd values");
    let run = store.get_run(&run_id).await.expect("run");
    let latest = |key: &str| run.metrics.iter().find(|m| m.key == key).expect("metric").clone();
    assert_eq!(latest("loss").step, 999, "latest is the highest step, not the last written");
    assert!(latest("nan").value.is_nan());
    assert_eq!(latest("inf").value, f64::MAX);

    let page = store.get_metric_history(&run_id, "loss", 0, 600).await.expect("history");
    assert_eq!(page.metrics.len(), 600);
    assert!(page.has_more);
    let rest = store.get_metric_history(&run_id, "loss", 600, 600).await.expect("history page 2");
    assert_eq!(rest.metrics.len(), 401, "1000 points plus one, retries deduplicated");
    assert!(!rest.has_more);
    let timestamps: Vec<i64> =
        page.metrics.iter().chain(&rest.metrics).map(|m| m.timestamp).collect();
    assert!(timestamps.windows(2).all(|pair| pair[0] <= pair[1]), "ordered by timestamp");
    let unknown = store.get_metric_history(&run_id, "nope", 0, 10).await.expect("unknown key");
    assert!(unknown.metrics.is_empty());
}

async fn inputs_outputs_and_logged_models(store: &Store) {
    let run_id = new_run(store, "conf-models").await;
    let experiment_id = store.get_run(&run_id).await.expect("run").info.experiment_id;
    let input = DatasetInput {
        tags: vec![Tag { key: "mlflow.data.context".into(), value: "training".into() }],
        dataset: Dataset {
            name: "iris".into(),
            digest: "abc123".into(),
            source_type: "local".into(),
            source: "{\"uri\": \"/data/iris.csv\"}".into(),
            schema: None,
            profile: Some("{\"num_rows\": 150}".into()),
        },
    };
    store.log_inputs(&ctx(), &run_id, std::slice::from_ref(&input), &[]).await.expect("inputs");
    store.log_inputs(&ctx(), &run_id, std::slice::from_ref(&input), &[]).await.expect("idempotent");
    let model = store
        .create_logged_model(
            &ctx(),
            &NewLoggedModel {
                experiment_id,
                name: Some("model".into()),
                source_run_id: Some(run_id.clone()),
                params: vec![Param { key: "lr".into(), value: "0.1".into() }],
                ..NewLoggedModel::default()
            },
        )
        .await
        .expect("logged model");
    assert!(model.model_id.starts_with("m-") && model.model_id.len() == 34);
    assert_eq!(model.status, LoggedModelStatus::Pending);
    assert_eq!(
        model.artifact_uri,
        format!("mlflow-artifacts:/{experiment_id}/models/{}/artifacts", model.model_id)
    );
    store
        .log_outputs(&ctx(), &run_id, &[ModelOutput { model_id: model.model_id.clone(), step: 0 }])
        .await
        .expect("outputs");
    let mut with_model = metric("acc", 0.9, 5, 0);
    with_model.model_id = Some(model.model_id.clone());
    store
        .log_batch(&ctx(), &run_id, &LogBatch { metrics: vec![with_model], ..LogBatch::default() })
        .await
        .expect("model metric");
    let ready = store
        .finalize_logged_model(&ctx(), &model.model_id, LoggedModelStatus::Ready)
        .await
        .expect("finalize");
    assert_eq!(ready.status, LoggedModelStatus::Ready);
    assert_eq!(ready.metrics.len(), 1);
    store
        .set_logged_model_tags(
            &ctx(),
            &model.model_id,
            &[Tag { key: "mlflow.modelVersions".into(), value: "[]".into() }],
        )
        .await
        .expect("tags");

    let run = store.get_run(&run_id).await.expect("run");
    assert_eq!(run.dataset_inputs, vec![input]);
    assert_eq!(run.model_outputs[0].model_id, model.model_id);

    let search = crate::LoggedModelSearch {
        experiment_ids: vec![experiment_id],
        filter: vec![(
            crate::LoggedModelField::Name,
            cairn_domain::search::Comparator::Eq,
            cairn_domain::search::FilterValue::Str("model".into()),
        )],
        max_results: 10,
        ..crate::LoggedModelSearch::default()
    };
    let (found, _) = store.search_logged_models(&search).await.expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].tags.len(), 1);
    store.delete_logged_model(&ctx(), &model.model_id).await.expect("delete");
    assert_eq!(
        store.get_logged_model(&model.model_id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
