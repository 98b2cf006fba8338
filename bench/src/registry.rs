//! The registry scenario: seed registered models and their versions with tags over the REST
//! API, then time representative `model-versions/search` and `registered-models/search` calls.
//! Names, sources, run ids and tags are deterministic functions of the model and version
//! index, so both servers hold the same data and must give the same answers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::Api;
use crate::workload::{JobResult, Throughput, drive};

/// Untimed calls of each query before the timed ones; the first one's answer is checked.
const WARM_UP_CALLS: usize = 3;
/// Version tag `flavor` cycles through these (a broad filter: a quarter of all versions).
const FLAVORS: [&str; 4] = ["sklearn", "pytorch", "xgboost", "onnx"];
/// Version tag `dataset` takes this many values (a selective filter across models).
const DATASETS: usize = 1000;
/// Versions registered from the same (fictitious) run.
const VERSIONS_PER_RUN: usize = 4;
/// Model tag `team` takes this many values.
const TEAMS: usize = 10;

/// Sizes of the registry scenario.
#[derive(Debug, Clone, Copy)]
pub struct RegistrySizes {
    /// Registered models.
    pub models: usize,
    /// Versions of each model.
    pub versions_per_model: usize,
    /// Timed calls of each query.
    pub repeats: usize,
    /// Concurrent clients while seeding (one model and its versions per job).
    pub clients: usize,
}

/// One query kind: what was answered and how long it took.
#[derive(Debug, Clone, Default)]
pub struct QueryOutcome {
    /// What the query is, for the report (filter, order, page size).
    pub label: String,
    /// Latency of each timed call.
    pub latencies: Vec<Duration>,
    /// Identifiers returned by the first (untimed) call, sorted: `name` or `name/version`;
    /// `None` when that call failed.
    pub ids: Option<Vec<String>>,
    /// Whether that call returned a next page token.
    pub has_next_page: bool,
}

/// Everything the registry scenario measured on one server.
#[derive(Debug, Clone, Default)]
pub struct RegistryOutcome {
    /// Seeding: one job per model (registered-models/create, then its versions in order).
    pub seed: Throughput,
    /// Versions created per model.
    pub versions_per_model: usize,
    /// One entry per query kind, in the order of the report.
    pub queries: Vec<QueryOutcome>,
}

fn model_name(model: usize) -> String {
    format!("m-{model}")
}

/// The run a version was registered from: a fixed 32-hex-digit id shared by
/// `VERSIONS_PER_RUN` consecutive versions.
fn run_id(global_version: usize) -> String {
    format!("{:032x}", (0xbe7c_u128 << 112) | (global_version / VERSIONS_PER_RUN) as u128)
}

fn dataset(global_version: usize) -> String {
    format!("ds-{}", global_version % DATASETS)
}

/// Creates model `model` with its tag, then its versions 1..=`versions` one after the other, so
/// version numbers (assigned by the server) match on both servers.
async fn seed_model(api: &Api, model: usize, versions: usize) -> JobResult {
    let mut latencies = Vec::with_capacity(versions + 1);
    let name = model_name(model);
    let body = json!({
        "name": name,
        "tags": [{ "key": "team", "value": format!("team-{}", model % TEAMS) }],
    });
    let Ok((_, latency)) = api.post("registered-models/create", &body).await else {
        return JobResult { ok: false, latencies };
    };
    latencies.push(latency);
    for version in 1..=versions {
        let global = model * versions + version - 1;
        let body = json!({
            "name": name,
            "source": format!("s3://cairn-bench/models/{name}/{version}"),
            "run_id": run_id(global),
            "tags": [
                { "key": "flavor", "value": FLAVORS[global % FLAVORS.len()] },
                { "key": "dataset", "value": dataset(global) },
            ],
        });
        let Ok((_, latency)) = api.post("model-versions/create", &body).await else {
            return JobResult { ok: false, latencies };
        };
        latencies.push(latency);
    }
    JobResult { ok: true, latencies }
}

/// One query to time: endpoint, label and query string.
struct Query {
    label: String,
    endpoint: &'static str,
    params: Vec<(&'static str, String)>,
}

fn versions_query(label: String, params: Vec<(&'static str, String)>) -> Query {
    Query { label, endpoint: "model-versions/search", params }
}

fn models_query(label: String, params: Vec<(&'static str, String)>) -> Query {
    Query { label, endpoint: "registered-models/search", params }
}

/// The queries of the scenario, chosen from the seeded data so each has a known answer size.
fn queries(sizes: RegistrySizes) -> Vec<Query> {
    let models = sizes.models.max(1);
    let versions = sizes.versions_per_model.max(1);
    let model = model_name(models / 2);
    let global = (models / 2) * versions + versions / 2;
    let by_name = format!("name = '{model}'");
    let newest = format!("name = '{model}' AND version_number >= {}", versions.saturating_sub(4));
    let by_run = format!("run_id = '{}'", run_id(global));
    let by_dataset = format!("tags.dataset = '{}'", dataset(global));
    let by_flavor = "tags.flavor = 'onnx'".to_owned();
    let by_team = format!("tags.team = 'team-{}'", (models / 2) % TEAMS);
    let ordered = |filter: &str| {
        vec![
            ("filter", filter.to_owned()),
            ("order_by", "name ASC".to_owned()),
            ("order_by", "version_number DESC".to_owned()),
            ("max_results", "100".to_owned()),
        ]
    };
    let prefix = "name LIKE 'm-1%'";
    let models_page = |filter: &str| {
        vec![
            ("filter", filter.to_owned()),
            ("order_by", "name ASC".to_owned()),
            ("max_results", "100".to_owned()),
        ]
    };
    vec![
        versions_query(format!("versions `{by_name}`"), vec![("filter", by_name)]),
        versions_query(format!("versions `{newest}`"), vec![("filter", newest)]),
        versions_query(format!("versions `{by_run}`"), vec![("filter", by_run)]),
        versions_query(format!("versions `{by_dataset}`"), vec![("filter", by_dataset)]),
        versions_query(
            format!("versions `{by_flavor}`, name ASC, version DESC, 100/page"),
            ordered(&by_flavor),
        ),
        models_query(format!("models `{prefix}`, name ASC, 100/page"), models_page(prefix)),
        models_query(format!("models `{by_team}`, name ASC, 100/page"), models_page(&by_team)),
    ]
}

/// Returns the sorted identifiers of a search answer and whether it has a next page.
fn answer_ids(answer: &Value) -> (Vec<String>, Option<String>) {
    let list = |field: &str| answer[field].as_array().cloned().unwrap_or_default();
    let mut ids: Vec<String> = list("model_versions")
        .iter()
        .map(|v| {
            format!(
                "{}/{}",
                v["name"].as_str().unwrap_or("?"),
                v["version"].as_str().unwrap_or("?")
            )
        })
        .chain(list("registered_models").iter().map(|m| m["name"].as_str().unwrap_or("?").into()))
        .collect();
    ids.sort();
    let token =
        answer["next_page_token"].as_str().filter(|token| !token.is_empty()).map(str::to_owned);
    (ids, token)
}

/// Warms up, checks and times one query; returns its outcome and the next page token of the
/// first answer.
async fn time_query(api: &Api, query: &Query, repeats: usize) -> (QueryOutcome, Option<String>) {
    let mut outcome = QueryOutcome { label: query.label.clone(), ..QueryOutcome::default() };
    let mut token = None;
    for call in 0..WARM_UP_CALLS {
        match api.get(query.endpoint, &query.params).await {
            Ok((answer, _)) if call == 0 => {
                let (ids, next) = answer_ids(&answer);
                outcome.ids = Some(ids);
                outcome.has_next_page = next.is_some();
                token = next;
            }
            Ok(_) => {}
            Err(error) => eprintln!("[bench]   {} warm-up failed: {error:#}", query.label),
        }
    }
    for call in 0..repeats {
        match api.get(query.endpoint, &query.params).await {
            Ok((_, latency)) => outcome.latencies.push(latency),
            Err(error) => eprintln!("[bench]   {} call {call} failed: {error:#}", query.label),
        }
    }
    (outcome, token)
}

/// Seeds `models` × `versions_per_model` versions, then times every query `repeats` times, one
/// call at a time. A query whose first page has a next page token is also timed for page 2.
pub async fn run(api: &Api, label: &str, sizes: RegistrySizes) -> RegistryOutcome {
    let versions = sizes.versions_per_model;
    let seed = drive(&format!("{label} registry seed"), sizes.models, sizes.clients, |model| {
        seed_model(api, model, versions)
    })
    .await;
    let mut outcome = RegistryOutcome { seed, versions_per_model: versions, queries: Vec::new() };
    for query in queries(sizes) {
        eprintln!("[bench]   {label} registry: {}", query.label);
        let (timed, token) = time_query(api, &query, sizes.repeats).await;
        outcome.queries.push(timed);
        if let Some(token) = token {
            let mut params = query.params.clone();
            params.push(("page_token", token));
            let page_two = Query {
                label: format!("{}, page 2", query.label),
                endpoint: query.endpoint,
                params,
            };
            outcome.queries.push(time_query(api, &page_two, sizes.repeats).await.0);
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_32_hex_digits_shared_by_consecutive_versions() {
        assert_eq!(run_id(0).len(), 32);
        assert_eq!(run_id(0), run_id(VERSIONS_PER_RUN - 1));
        assert_ne!(run_id(0), run_id(VERSIONS_PER_RUN));
    }
}
