//! Conformance: experiments.

use cairn_domain::ErrorKind;
use cairn_domain::entities::{LifecycleStage, Tag, ViewType};
use cairn_domain::ids::ExperimentId;
use cairn_domain::search::{parse_experiment_filter, parse_experiment_order_by};

use super::ctx;
use crate::{ExperimentSearch, Store};

pub(super) async fn run(store: &Store) {
    default_experiment_exists(store).await;
    create_get_rename_delete(store).await;
    search_orders_and_pages(store).await;
}

async fn default_experiment_exists(store: &Store) {
    let default = store.get_experiment(ExperimentId::DEFAULT).await.expect("Default exists");
    assert_eq!(default.name, "Default");
    assert_eq!(default.artifact_location, "mlflow-artifacts:/0");
    assert_eq!(default.lifecycle_stage, LifecycleStage::Active);
}

async fn create_get_rename_delete(store: &Store) {
    let tags = [Tag { key: "team".into(), value: "churn".into() }];
    let id = store.create_experiment(&ctx(), 1, "conf-exp", None, &tags).await.expect("create");
    assert!(id.0 > 0, "user experiments are numbered from 1");
    let experiment = store.get_experiment(id).await.expect("get");
    assert_eq!(experiment.artifact_location, format!("mlflow-artifacts:/{id}"));
    assert_eq!(experiment.tags, tags);
    let duplicate = store.create_experiment(&ctx(), 1, "conf-exp", None, &[]).await.unwrap_err();
    assert_eq!(duplicate.kind(), ErrorKind::AlreadyExists);
    assert_eq!(duplicate.to_string(), "Experiment(name=conf-exp) already exists.");

    store.rename_experiment(&ctx(), id, "conf-exp-renamed").await.expect("rename");
    assert_eq!(
        store.get_experiment_by_name(1, "conf-exp-renamed").await.expect("by name").experiment_id,
        id
    );
    let missing = store.get_experiment_by_name(1, "conf-exp").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);

    store.delete_experiment(&ctx(), id).await.expect("delete");
    assert_eq!(
        store.get_experiment(id).await.expect("get deleted").lifecycle_stage,
        LifecycleStage::Deleted
    );
    let reused =
        store.create_experiment(&ctx(), 1, "conf-exp-renamed", None, &[]).await.unwrap_err();
    assert_eq!(reused.kind(), ErrorKind::AlreadyExists, "deleted experiments keep their name");
    store.restore_experiment(&ctx(), id).await.expect("restore");
    let again = store.restore_experiment(&ctx(), id).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::InvalidArgument);

    let unknown = store.get_experiment(ExperimentId(999_999)).await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert_eq!(unknown.to_string(), "No Experiment with id=999999 exists");
}

async fn search_orders_and_pages(store: &Store) {
    for name in ["srch-a", "srch-ab", "srch-Abc"] {
        store.create_experiment(&ctx(), 1, name, None, &[]).await.expect("create");
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let search = ExperimentSearch {
        filter: parse_experiment_filter("name LIKE 'srch-%'").expect("filter"),
        max_results: 2,
        ..ExperimentSearch::default()
    };
    let (first, more) = store.search_experiments(&search).await.expect("search");
    assert!(more);
    let names: Vec<_> = first.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["srch-Abc", "srch-ab"], "newest first");
    let (second, more) = store
        .search_experiments(&ExperimentSearch { offset: 2, ..search.clone() })
        .await
        .expect("page 2");
    assert!(!more);
    assert_eq!(second[0].name, "srch-a");

    let by_name = ExperimentSearch {
        filter: parse_experiment_filter("name ILIKE 'SRCH-A%'").expect("filter"),
        order_by: parse_experiment_order_by(&["name ASC".to_string()]).expect("order"),
        max_results: 10,
        view_type: ViewType::All,
        ..ExperimentSearch::default()
    };
    let (found, _) = store.search_experiments(&by_name).await.expect("ilike");
    let names: Vec<_> = found.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["srch-Abc", "srch-a", "srch-ab"], "binary order, case-insensitive match");

    let case_sensitive = ExperimentSearch {
        filter: parse_experiment_filter("name LIKE 'srch-a%'").expect("filter"),
        max_results: 10,
        ..ExperimentSearch::default()
    };
    let (found, _) = store.search_experiments(&case_sensitive).await.expect("like");
    assert_eq!(found.len(), 2, "LIKE is case-sensitive");
}
