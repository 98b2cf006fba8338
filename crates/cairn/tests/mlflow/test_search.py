"""search_runs with MLflow's filter grammar, ordering, pagination and view types.

One experiment of 25 runs with known data is built once for the module; every expectation is
computed from that data, so the tests read as the rule they check.
"""

import math
import time
from dataclasses import dataclass, field

import mlflow
import pytest
from helpers import unique_name
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

N_RUNS = 25
NAN_RUN = 7  # its latest acc is NaN
REWRITTEN_RUN = 3  # logged acc 0.99 first, then a lower latest value


@dataclass
class Row:
    index: int
    run_id: str = ""
    start_time: int = 0
    run_name: str = ""
    status: str = "FINISHED"
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # latest values
    tags: dict = field(default_factory=dict)


@dataclass
class Corpus:
    experiment_id: str
    name: str
    rows: list

    def ids(self, predicate):
        return {r.run_id for r in self.rows if predicate(r)}

    def by_index(self, *indexes):
        return [self.rows[i].run_id for i in indexes]


@pytest.fixture(scope="module")
def corpus():
    client = MlflowClient()
    name = unique_name("search-corpus")
    exp_id = client.create_experiment(name)
    base = int(time.time() * 1000) - 3_600_000
    rows = []
    for i in range(N_RUNS):
        row = Row(index=i, start_time=base + i * 1000, run_name=f"run-{i:02d}")
        row.params = {"lr": ["0.1", "0.01", "0.001"][i % 3], "optimizer": "adam" if i % 2 == 0 else "SGD"}
        if i < 5:
            row.params["only_some"] = "yes"
        if i % 5 != 0:
            row.metrics["acc"] = i / 100
        if i == NAN_RUN:
            row.metrics["acc"] = float("nan")
        row.metrics["loss"] = 1 - i / 100
        row.tags = {"group": "A" if i < 10 else "b"}
        if i % 4 == 0:
            row.tags["note"] = f"note-{i}"
        if i % 6 == 0:
            row.status = "RUNNING"

        run = client.create_run(exp_id, start_time=row.start_time, run_name=row.run_name, tags=row.tags)
        row.run_id = run.info.run_id
        metrics = [Metric(k, v, row.start_time, 1) for k, v in row.metrics.items()]
        if i == REWRITTEN_RUN:
            metrics.append(Metric("acc", 0.99, row.start_time, 0))
        client.log_batch(
            row.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in row.params.items()],
            tags=[RunTag("mlflow.runName", row.run_name)],
        )
        if row.status == "FINISHED":
            client.set_terminated(row.run_id, end_time=row.start_time + 500)
        rows.append(row)
    return Corpus(experiment_id=exp_id, name=name, rows=rows)


def search_ids(corpus, filter_string="", **kwargs):
    runs = MlflowClient().search_runs([corpus.experiment_id], filter_string=filter_string, **kwargs)
    return [r.info.run_id for r in runs]


def acc(row):
    return row.metrics.get("acc")


def has_real_acc(row):
    return acc(row) is not None and not math.isnan(acc(row))


# --- filters ---------------------------------------------------------------------------------


def test_empty_filter_returns_all_runs_newest_first(corpus):
    assert search_ids(corpus) == [r.run_id for r in sorted(corpus.rows, key=lambda r: -r.start_time)]


@pytest.mark.parametrize(
    "filter_string, predicate",
    [
        ("metrics.acc > 0.15", lambda r: has_real_acc(r) and acc(r) > 0.15),
        ("metrics.acc >= 0.16", lambda r: has_real_acc(r) and acc(r) >= 0.16),
        ("metrics.acc < 0.05", lambda r: has_real_acc(r) and acc(r) < 0.05),
        ("metrics.acc = 0.12", lambda r: has_real_acc(r) and acc(r) == 0.12),
        ("metric.loss <= 0.8", lambda r: r.metrics["loss"] <= 0.8),
        # NaN fails ordered comparisons but matches !=; runs without the metric never match.
        ("metrics.acc != 0.12", lambda r: acc(r) is not None and acc(r) != 0.12),
    ],
)
def test_filter_on_metrics(corpus, filter_string, predicate):
    assert set(search_ids(corpus, filter_string)) == corpus.ids(predicate)


def test_metric_filter_uses_the_latest_value(corpus):
    # Run 3 once logged acc 0.99 (step 0), but its latest value (step 1) is 0.03.
    assert search_ids(corpus, "metrics.acc > 0.9") == []
    assert corpus.rows[REWRITTEN_RUN].run_id in search_ids(corpus, "metrics.acc = 0.03")


@pytest.mark.parametrize(
    "filter_string, predicate",
    [
        ("params.lr = '0.01'", lambda r: r.params["lr"] == "0.01"),
        ('params.lr = "0.001"', lambda r: r.params["lr"] == "0.001"),
        ("params.optimizer != 'adam'", lambda r: r.params["optimizer"] != "adam"),
        ("params.optimizer LIKE 'ad%'", lambda r: r.params["optimizer"].startswith("ad")),
        ("params.optimizer LIKE 'sgd'", lambda r: False),
        ("params.optimizer ILIKE 'sgd'", lambda r: r.params["optimizer"] == "SGD"),
        ("param.lr LIKE '0.0_'", lambda r: r.params["lr"] == "0.01"),
        ("params.only_some IS NULL", lambda r: "only_some" not in r.params),
        ("params.only_some IS NOT NULL", lambda r: "only_some" in r.params),
        ("params.only_some != 'no'", lambda r: "only_some" in r.params),
    ],
)
def test_filter_on_params(corpus, filter_string, predicate):
    assert set(search_ids(corpus, filter_string)) == corpus.ids(predicate)


@pytest.mark.parametrize(
    "filter_string, predicate",
    [
        ("tags.group = 'A'", lambda r: r.tags["group"] == "A"),
        ("tags.group = 'a'", lambda r: False),
        ("tags.group ILIKE 'B'", lambda r: r.tags["group"] == "b"),
        ("tags.note LIKE 'note-1%'", lambda r: r.tags.get("note", "").startswith("note-1")),
        ("tags.note IS NULL", lambda r: "note" not in r.tags),
        ("tags.note IS NOT NULL", lambda r: "note" in r.tags),
        ("tags.`mlflow.runName` = 'run-03'", lambda r: r.index == 3),
        ('tags."mlflow.runName" LIKE \'run-2%\'', lambda r: r.index >= 20),
    ],
)
def test_filter_on_tags(corpus, filter_string, predicate):
    assert set(search_ids(corpus, filter_string)) == corpus.ids(predicate)


@pytest.mark.parametrize(
    "filter_string, predicate",
    [
        ("attributes.run_name = 'run-03'", lambda r: r.index == 3),
        ("run_name LIKE 'run-1%'", lambda r: 10 <= r.index < 20),
        ("attributes.run_name ILIKE 'RUN-2%'", lambda r: r.index >= 20),
        ("attributes.status = 'RUNNING'", lambda r: r.status == "RUNNING"),
        ("attribute.status != 'RUNNING'", lambda r: r.status != "RUNNING"),
    ],
)
def test_filter_on_attributes(corpus, filter_string, predicate):
    assert set(search_ids(corpus, filter_string)) == corpus.ids(predicate)


def test_filter_on_start_time(corpus):
    pivot = corpus.rows[20].start_time

    assert set(search_ids(corpus, f"attributes.start_time >= {pivot}")) == corpus.ids(lambda r: r.index >= 20)
    assert set(search_ids(corpus, f"attributes.start_time < {pivot}")) == corpus.ids(lambda r: r.index < 20)


def test_filter_on_run_id_in_and_not_in(corpus):
    chosen = corpus.by_index(1, 4, 9)
    in_list = ", ".join(f"'{i}'" for i in chosen)

    assert set(search_ids(corpus, f"attributes.run_id IN ({in_list})")) == set(chosen)
    assert set(search_ids(corpus, f"run_id NOT IN ({in_list})")) == {r.run_id for r in corpus.rows} - set(chosen)
    assert search_ids(corpus, f"attributes.run_id = '{chosen[0]}'") == [chosen[0]]


def test_filter_combines_clauses_with_and(corpus):
    filter_string = "metrics.acc > 0.1 and params.optimizer = 'adam' AND tags.group = 'b'"

    expected = corpus.ids(lambda r: has_real_acc(r) and acc(r) > 0.1 and r.params["optimizer"] == "adam" and r.tags["group"] == "b")
    assert expected
    assert set(search_ids(corpus, filter_string)) == expected


# --- ordering ----------------------------------------------------------------------------------


def test_order_by_metric_desc_puts_nan_then_missing_last(corpus):
    ordered = search_ids(corpus, order_by=["metrics.acc DESC"])

    real = sorted((r for r in corpus.rows if has_real_acc(r)), key=lambda r: -acc(r))
    missing = sorted((r for r in corpus.rows if acc(r) is None), key=lambda r: -r.start_time)
    assert ordered == [r.run_id for r in real] + [corpus.rows[NAN_RUN].run_id] + [r.run_id for r in missing]


def test_order_by_metric_asc_puts_nan_then_missing_last(corpus):
    ordered = search_ids(corpus, order_by=["metrics.acc ASC"])

    real = sorted((r for r in corpus.rows if has_real_acc(r)), key=lambda r: acc(r))
    missing = sorted((r for r in corpus.rows if acc(r) is None), key=lambda r: -r.start_time)
    assert ordered == [r.run_id for r in real] + [corpus.rows[NAN_RUN].run_id] + [r.run_id for r in missing]


def test_order_by_param_then_default_tie_break_start_time_desc(corpus):
    ordered = search_ids(corpus, order_by=["params.lr ASC"])

    expected = sorted(corpus.rows, key=lambda r: (r.params["lr"], -r.start_time))
    assert ordered == [r.run_id for r in expected]


def test_order_by_two_keys(corpus):
    ordered = search_ids(corpus, order_by=["tags.group DESC", "metrics.loss ASC"])

    expected = sorted(corpus.rows, key=lambda r: (r.tags["group"] != "b", r.metrics["loss"]))
    assert ordered == [r.run_id for r in expected]


def test_order_by_attributes(corpus):
    assert search_ids(corpus, order_by=["attributes.start_time ASC"]) == [r.run_id for r in corpus.rows]
    assert search_ids(corpus, order_by=["run_name DESC"]) == [r.run_id for r in reversed(corpus.rows)]
    assert search_ids(corpus, order_by=["attributes.run_name"]) == [r.run_id for r in corpus.rows]


# --- pagination ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order_by", [None, ["metrics.acc DESC"], ["params.optimizer ASC", "run_name DESC"]])
def test_pagination_with_page_token_covers_every_run_once(corpus, order_by):
    client = MlflowClient()
    full = [r.info.run_id for r in client.search_runs([corpus.experiment_id], order_by=order_by)]

    pages, token = [], None
    while True:
        page = client.search_runs([corpus.experiment_id], order_by=order_by, max_results=10, page_token=token)
        pages.append([r.info.run_id for r in page])
        token = page.token
        if not token:
            break

    assert [len(p) for p in pages] == [10, 10, 5]
    assert [run_id for p in pages for run_id in p] == full
    assert len(set(full)) == N_RUNS


def test_pagination_with_a_filter(corpus):
    client = MlflowClient()
    filter_string = "params.optimizer = 'adam'"
    expected = search_ids(corpus, filter_string)

    first = client.search_runs([corpus.experiment_id], filter_string, max_results=7)
    second = client.search_runs([corpus.experiment_id], filter_string, max_results=7, page_token=first.token)

    assert len(expected) == 13
    assert first.token and not second.token
    assert [r.info.run_id for r in first] + [r.info.run_id for r in second] == expected


def test_last_page_exactly_full_has_no_token_after_it(corpus):
    client = MlflowClient()

    page = client.search_runs([corpus.experiment_id], max_results=N_RUNS)
    bigger = client.search_runs([corpus.experiment_id], max_results=N_RUNS + 1)

    assert len(page) == N_RUNS
    assert not bigger.token
    assert len(bigger) == N_RUNS


# --- run view type, experiments, fluent API -------------------------------------------------------


def test_run_view_type(client):
    exp_id = client.create_experiment(unique_name("view-type"))
    kept = client.create_run(exp_id).info.run_id
    gone = client.create_run(exp_id).info.run_id
    client.delete_run(gone)

    def ids(view_type):
        return sorted(r.info.run_id for r in client.search_runs([exp_id], run_view_type=view_type))

    assert ids(ViewType.ACTIVE_ONLY) == [kept]
    assert ids(ViewType.DELETED_ONLY) == [gone]
    assert ids(ViewType.ALL) == sorted([kept, gone])


def test_search_across_several_experiments(client):
    first = client.create_experiment(unique_name("multi"))
    second = client.create_experiment(unique_name("multi"))
    run_a = client.create_run(first, tags={"shared": "yes"}).info.run_id
    run_b = client.create_run(second, tags={"shared": "yes"}).info.run_id
    client.create_run(second, tags={"shared": "no"})

    found = client.search_runs([first, second], filter_string="tags.shared = 'yes'")

    assert sorted(r.info.run_id for r in found) == sorted([run_a, run_b])


def test_search_runs_results_carry_full_run_data(corpus):
    run = MlflowClient().search_runs([corpus.experiment_id], "attributes.run_name = 'run-04'")[0]
    row = corpus.rows[4]

    assert run.info.run_id == row.run_id
    assert run.info.experiment_id == corpus.experiment_id
    assert run.info.status == row.status
    assert run.data.params == row.params
    assert run.data.metrics == row.metrics
    assert run.data.tags["group"] == row.tags["group"]
    assert run.data.tags["note"] == row.tags["note"]


def test_fluent_search_runs_as_dataframe(corpus):
    df = mlflow.search_runs(experiment_names=[corpus.name], filter_string="tags.group = 'A'", order_by=["metrics.loss ASC"])

    assert len(df) == 10
    assert {"run_id", "metrics.acc", "metrics.loss", "params.lr", "tags.group", "status", "start_time"} <= set(df.columns)
    assert list(df["run_id"]) == [corpus.rows[i].run_id for i in range(9, -1, -1)]
    assert list(df["params.lr"]) == [corpus.rows[i].params["lr"] for i in range(9, -1, -1)]


def test_fluent_search_runs_as_list(corpus):
    runs = mlflow.search_runs(
        experiment_ids=[corpus.experiment_id], filter_string="params.only_some = 'yes'", output_format="list"
    )

    assert sorted(r.info.run_id for r in runs) == sorted(corpus.by_index(0, 1, 2, 3, 4))


def test_search_unknown_experiment_yields_nothing(client):
    assert client.search_runs(["987654321"]) == []
