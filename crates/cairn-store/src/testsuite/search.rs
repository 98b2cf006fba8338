//! Conformance: run search with MLflow's grammar, ordering and pagination.

use cairn_domain::entities::{Metric, Param, Tag, ViewType};
use cairn_domain::search::{parse_run_filter, parse_run_order_by};

use super::ctx;
use crate::{LogBatch, NewRun, RunSearch, Store};

pub(super) async fn run(store: &Store) {
    let experiment_id =
        store.create_experiment(&ctx(), 1, "conf-search", None, &[]).await.expect("experiment");
    let mut ids = Vec::new();
    for index in 0..12_i64 {
        let run = store
            .create_run(
                &ctx(),
                &NewRun {
                    experiment_id,
                    user_id: if index % 2 == 0 { "ben".into() } else { "ada".into() },
                    run_name: Some(format!("run-{index:02}")),
                    start_time: Some(1_000 + index),
                    tags: Vec::new(),
                },
            )
            .await
            .expect("run");
        let mut batch = LogBatch {
            params: vec![Param {
                key: "p0".into(),
                value: if index % 3 == 0 { "a".into() } else { "b".into() },
            }],
            tags: vec![Tag { key: "group".into(), value: format!("G{}", index % 2) }],
            ..LogBatch::default()
        };
        if index != 11 {
            batch.metrics.push(Metric {
                key: "m0".into(),
                value: if index == 10 { f64::NAN } else { index as f64 / 10.0 },
                timestamp: 1,
                step: 0,
                model_id: None,
                dataset_name: None,
                dataset_digest: None,
                run_id: None,
            });
        }
        store.log_batch(&ctx(), &run.info.run_id, &batch).await.expect("batch");
        ids.push(run.info.run_id);
    }
    let search = |filter: &str, order: &[&str], max_results: i64| RunSearch {
        experiment_ids: vec![experiment_id],
        filter: parse_run_filter(filter).expect("filter"),
        order_by: parse_run_order_by(&order.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .expect("order"),
        view_type: ViewType::ActiveOnly,
        max_results,
        offset: 0,
        after: None,
    };
    let names = |runs: &[cairn_domain::entities::Run]| {
        runs.iter().map(|r| r.info.run_name.clone()).collect::<Vec<_>>()
    };

    let (runs, more) = store.search_runs(&search("", &[], 5)).await.expect("default order");
    assert!(more);
    assert_eq!(names(&runs), ["run-11", "run-10", "run-09", "run-08", "run-07"], "start_time DESC");
    assert_eq!(runs[0].params.len(), 1, "search answers carry full data");

    let (runs, _) = store
        .search_runs(&search("metrics.m0 > 0.5 and params.p0 = 'a'", &["metrics.m0 DESC"], 100))
        .await
        .expect("q1");
    assert_eq!(names(&runs), ["run-09", "run-06"]);

    let (runs, _) =
        store.search_runs(&search("", &["metrics.m0 DESC"], 100)).await.expect("order by metric");
    let order = names(&runs);
    assert_eq!(&order[..2], ["run-09", "run-08"]);
    assert_eq!(&order[10..], ["run-10", "run-11"], "NaN then missing sort last");
    let (runs, _) = store.search_runs(&search("", &["metrics.m0 ASC"], 100)).await.expect("asc");
    assert_eq!(
        &names(&runs)[10..],
        ["run-10", "run-11"],
        "NaN then missing last in both directions"
    );

    let (runs, _) = store.search_runs(&search("metrics.m0 != 0.1", &[], 100)).await.expect("ne");
    assert_eq!(runs.len(), 10, "NaN matches != but a missing metric never matches");

    let (runs, _) = store
        .search_runs(&search("tags.group = 'G1' and attributes.user_id = 'ada'", &[], 100))
        .await
        .expect("tags");
    assert_eq!(runs.len(), 6);
    let (runs, _) =
        store.search_runs(&search("tags.group LIKE 'g%'", &[], 100)).await.expect("like");
    assert!(runs.is_empty(), "LIKE is case-sensitive");
    let (runs, _) =
        store.search_runs(&search("tags.group ILIKE 'g%'", &[], 100)).await.expect("ilike");
    assert_eq!(runs.len(), 12);
    let (runs, _) =
        store.search_runs(&search("params.missing IS NULL", &[], 100)).await.expect("is null");
    assert_eq!(runs.len(), 12);
    let in_filter = format!("attributes.run_id IN ('{}', '{}')", ids[0], ids[1]);
    let (runs, _) = store.search_runs(&search(&in_filter, &[], 100)).await.expect("in");
    assert_eq!(runs.len(), 2);
    let (runs, _) =
        store.search_runs(&search("attributes.run_name = 'run-03'", &[], 100)).await.expect("name");
    assert_eq!(names(&runs), ["run-03"]);
    let (runs, _) = store
        .search_runs(&search("attributes.start_time >= 1010", &["attributes.start_time ASC"], 100))
        .await
        .expect("time");
    assert_eq!(names(&runs), ["run-10", "run-11"]);

    // Pagination visits every run exactly once.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = RunSearch { offset, ..search("", &["params.p0 ASC"], 5) };
        let (runs, more) = store.search_runs(&page).await.expect("page");
        offset += runs.len() as u64;
        seen.extend(runs.into_iter().map(|r| r.info.run_id));
        if !more {
            break;
        }
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);

    // Keyset paging (the position of the last row in the next token) gives, page by page,
    // exactly the one-page answer, for every kind of ordering key, NULLs and NaN included.
    for order in [
        &[][..],
        &["metrics.m0 DESC"][..],
        &["metrics.m0 ASC"][..],
        &["params.p0 ASC", "metrics.m0 DESC"][..],
        &["params.missing DESC"][..],
        &["tags.group DESC"][..],
        &["attributes.run_name DESC"][..],
        &["attributes.end_time ASC"][..],
        &["attributes.start_time ASC"][..],
    ] {
        let (whole, _) = store.search_runs(&search("", order, 100)).await.expect("whole");
        let mut paged = Vec::new();
        let mut after = None;
        for _ in 0..20 {
            let page = RunSearch { after: after.clone(), ..search("", order, 5) };
            let found = store.search_runs_page(&page).await.expect("keyset page");
            paged.extend(found.runs.iter().map(|r| r.info.run_id.clone()));
            if !found.has_more {
                break;
            }
            after = found.last;
        }
        let whole: Vec<_> = whole.into_iter().map(|r| r.info.run_id).collect();
        assert_eq!(paged, whole, "keyset pages of {order:?}");
        // Two experiments (one empty) take the one-query path rather than reading the leading
        // key class by class: both give the same order.
        let one_query = RunSearch {
            experiment_ids: vec![experiment_id, cairn_domain::ids::ExperimentId(999_999)],
            ..search("", order, 100)
        };
        let (one_query, _) = store.search_runs(&one_query).await.expect("one query");
        let one_query: Vec<_> = one_query.into_iter().map(|r| r.info.run_id).collect();
        assert_eq!(one_query, whole, "class by class against one query, {order:?}");
    }
    // A run logged between two page reads (newest, so before the position) neither repeats a
    // run of the first page on the second nor pushes one off it, as an offset would.
    let first = store.search_runs_page(&search("", &[], 5)).await.expect("page 1");
    store
        .create_run(
            &ctx(),
            &NewRun {
                experiment_id,
                user_id: "ada".into(),
                run_name: Some("run-late".into()),
                start_time: Some(5_000),
                tags: Vec::new(),
            },
        )
        .await
        .expect("late run");
    let second = store
        .search_runs_page(&RunSearch { after: first.last.clone(), ..search("", &[], 5) })
        .await
        .expect("page 2");
    assert_eq!(names(&first.runs), ["run-11", "run-10", "run-09", "run-08", "run-07"]);
    assert_eq!(names(&second.runs), ["run-06", "run-05", "run-04", "run-03", "run-02"]);
    // A position from one ordering given to another is refused, not misread.
    let first = store.search_runs_page(&search("", &["metrics.m0 DESC"], 5)).await.expect("p1");
    let error = store
        .search_runs_page(&RunSearch { after: first.last, ..search("", &[], 5) })
        .await
        .expect_err("foreign position");
    assert!(error.to_string().contains("page token"), "{error}");

    store.delete_run(&ctx(), &ids[0]).await.expect("delete");
    let (runs, _) = store
        .search_runs(&RunSearch { view_type: ViewType::DeletedOnly, ..search("", &[], 100) })
        .await
        .expect("deleted");
    assert_eq!(runs.len(), 1);
    let (runs, _) = store
        .search_runs(&RunSearch { view_type: ViewType::All, ..search("", &[], 100) })
        .await
        .expect("all");
    assert_eq!(runs.len(), 13, "the twelve and the late run");
}
