"""Runs: lifecycle, nesting, params, metrics and their history, tags, batches, datasets."""

import json
import math
import re
import time

import mlflow
import mlflow.tracking._tracking_service.client as tracking_service_client
import pandas as pd
import pytest
from helpers import rest
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType


def test_start_and_end_run(experiment_id, client):
    with mlflow.start_run(run_name="first-run") as run:
        active = client.get_run(run.info.run_id)

    finished = client.get_run(run.info.run_id)
    info = finished.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.run_name == "first-run"
    assert info.experiment_id == experiment_id
    assert info.lifecycle_stage == "active"
    assert info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{info.run_id}/artifacts"
    assert active.info.status == "RUNNING"
    assert active.info.end_time is None
    assert info.status == "FINISHED"
    assert info.start_time > 0 and info.end_time >= info.start_time
    tags = finished.data.tags
    assert tags["mlflow.runName"] == "first-run"
    assert tags["mlflow.user"] == info.user_id
    assert "mlflow.source.name" in tags
    assert tags["mlflow.source.type"] == "LOCAL"


def test_run_without_name_gets_a_generated_name(experiment_id, client):
    with mlflow.start_run() as run:
        pass

    info = client.get_run(run.info.run_id).info
    assert info.run_name
    assert client.get_run(run.info.run_id).data.tags["mlflow.runName"] == info.run_name


def test_failed_run_status_and_end_run_with_status(experiment_id, client):
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as failing:
            raise RuntimeError("boom")
    mlflow.start_run()
    killed = mlflow.active_run()
    mlflow.end_run(status="KILLED")

    assert client.get_run(failing.info.run_id).info.status == "FAILED"
    assert client.get_run(killed.info.run_id).info.status == "KILLED"


def test_client_create_run_and_set_terminated(experiment_id, client):
    start = int(time.time() * 1000) - 60_000
    run = client.create_run(experiment_id, start_time=start, tags={"origin": "client"}, run_name="c1")

    assert run.info.status == "RUNNING"
    assert run.info.start_time == start
    assert run.data.tags["origin"] == "client"
    assert run.data.tags["mlflow.runName"] == "c1"

    client.set_terminated(run.info.run_id, status="FAILED", end_time=start + 5_000)
    info = client.get_run(run.info.run_id).info
    assert info.status == "FAILED"
    assert info.end_time == start + 5_000


def test_update_run_name(experiment_id, client):
    run = client.create_run(experiment_id, run_name="before")

    client.update_run(run.info.run_id, name="after")

    updated = client.get_run(run.info.run_id)
    assert updated.info.run_name == "after"
    assert updated.data.tags["mlflow.runName"] == "after"


def test_nested_runs_carry_parent_tag(experiment_id, client):
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-1", nested=True) as child1:
            pass
        with mlflow.start_run(run_name="child-2", nested=True) as child2:
            pass

    parent_id = parent.info.run_id
    for child in (child1, child2):
        assert client.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent_id
    assert "mlflow.parentRunId" not in client.get_run(parent_id).data.tags
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(r.info.run_name for r in children) == ["child-1", "child-2"]


def test_log_params(experiment_id, client):
    with mlflow.start_run() as run:
        assert mlflow.log_param("lr", 0.01) == 0.01
        mlflow.log_params({"layers": 3, "optimizer": "adam", "dropout": None, "name with space": "x"})
        mlflow.log_param("lr", 0.01)  # same value again: allowed

    params = client.get_run(run.info.run_id).data.params
    assert params == {
        "lr": "0.01",
        "layers": "3",
        "optimizer": "adam",
        "dropout": "None",
        "name with space": "x",
    }


def test_long_param_value_is_accepted(experiment_id, client):
    value = "v" * 6000
    with mlflow.start_run() as run:
        mlflow.log_param("long", value)

    assert client.get_run(run.info.run_id).data.params["long"] == value


def test_log_metrics_latest_value_per_key(experiment_id, client):
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5)
        mlflow.log_metrics({"loss": 1.5, "f1": 0.25}, step=2)
        mlflow.log_metric("acc", 0.75, step=1)
        # A lower step logged later does not become the latest value.
        mlflow.log_metric("loss", 9.0, step=1)
        mlflow.log_metric("nan_metric", float("nan"))
        mlflow.log_metric("inf_metric", float("inf"))
        mlflow.log_metric("neg", -3)

    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["acc"] == 0.75
    assert metrics["loss"] == 1.5
    assert metrics["f1"] == 0.25
    assert metrics["neg"] == -3.0
    assert math.isnan(metrics["nan_metric"])
    assert metrics["inf_metric"] > 1e308


def test_metric_history_with_steps_and_timestamps(experiment_id, client):
    base = int(time.time() * 1000)
    with mlflow.start_run() as run:
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=base + step)

    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.key, m.step, m.timestamp, m.value) for m in history] == [
        ("loss", step, base + step, 1.0 / (step + 1)) for step in range(5)
    ]
    assert client.get_metric_history(run.info.run_id, "never-logged") == []


def test_metric_history_of_a_few_thousand_points(experiment_id, client):
    run = client.create_run(experiment_id)
    base = int(time.time() * 1000)
    metrics = [Metric("curve", float(i) * 0.5, base + i, i) for i in range(3000)]
    # The client splits this into batches of at most 1000 metrics.
    client.log_batch(run.info.run_id, metrics=metrics)

    history = client.get_metric_history(run.info.run_id, "curve")

    assert len(history) == 3000
    assert sorted((m.step, m.value) for m in history) == [(i, i * 0.5) for i in range(3000)]
    assert client.get_run(run.info.run_id).data.metrics["curve"] == 2999 * 0.5


def test_metric_history_paging_through_the_client(experiment_id, client, monkeypatch):
    run = client.create_run(experiment_id)
    base = int(time.time() * 1000)
    client.log_batch(run.info.run_id, metrics=[Metric("m", float(i), base + i, i) for i in range(100)])
    # The client pages get-history with its page size; shrink it so 100 points take 4 pages.
    monkeypatch.setattr(tracking_service_client, "GET_METRIC_HISTORY_MAX_RESULTS", 30)

    history = client.get_metric_history(run.info.run_id, "m")

    assert [m.step for m in history] == list(range(100))


def test_metric_history_paging_on_the_wire(experiment_id, client):
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    base = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("m", float(i), base + i, i) for i in range(100)])

    steps, pages, token = [], 0, None
    while True:
        params = {"run_id": run_id, "run_uuid": run_id, "metric_key": "m", "max_results": 40}
        if token:
            params["page_token"] = token
        response = rest("GET", "/api/2.0/mlflow/metrics/get-history", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        steps += [m["step"] for m in body["metrics"]]
        token = body.get("next_page_token")
        if not token:
            break

    assert pages == 3
    assert steps == list(range(100))


def test_tags_set_overwrite_and_delete(experiment_id, client):
    with mlflow.start_run() as run:
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "ana", "stage": "prod", "empty": ""})
        mlflow.delete_tag("owner")
    client.set_tag(run.info.run_id, "after_end", "yes")

    tags = client.get_run(run.info.run_id).data.tags
    assert tags["stage"] == "prod"
    assert tags["empty"] == ""
    assert tags["after_end"] == "yes"
    assert "owner" not in tags


def test_log_batch_params_metrics_tags(experiment_id, client):
    run = client.create_run(experiment_id)
    ts = int(time.time() * 1000)

    client.log_batch(
        run.info.run_id,
        metrics=[Metric("a", 1.0, ts, 0), Metric("a", 2.0, ts + 1, 1), Metric("b", 3.0, ts, 0)],
        params=[Param("p1", "x"), Param("p2", "y")],
        tags=[RunTag("t1", "u"), RunTag("t2", "v")],
    )

    data = client.get_run(run.info.run_id).data
    assert data.metrics == {"a": 2.0, "b": 3.0}
    assert data.params == {"p1": "x", "p2": "y"}
    assert data.tags["t1"] == "u" and data.tags["t2"] == "v"


def test_log_batch_at_the_limits_on_the_wire(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    ts = int(time.time() * 1000)
    body = {
        "run_id": run_id,
        "metrics": [{"key": f"m{i % 10}", "value": i, "timestamp": ts, "step": i} for i in range(900)],
        "params": [{"key": f"p{i}", "value": str(i)} for i in range(50)],
        "tags": [{"key": f"t{i}", "value": str(i)} for i in range(50)],
    }

    response = rest("POST", "/api/2.0/mlflow/runs/log-batch", json=body)

    assert response.status_code == 200, response.text
    assert response.json() == {}
    data = client.get_run(run_id).data
    assert len(data.params) == 50
    assert len(client.get_metric_history(run_id, "m3")) == 90


def test_client_log_batch_splits_large_batches(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    ts = int(time.time() * 1000)

    client.log_batch(
        run_id,
        metrics=[Metric("big", float(i), ts, i) for i in range(1500)],
        params=[Param(f"p{i}", str(i)) for i in range(150)],
        tags=[RunTag(f"t{i}", str(i)) for i in range(150)],
    )

    data = client.get_run(run_id).data
    assert len(data.params) == 150
    assert sum(1 for k in data.tags if k.startswith("t")) == 150
    assert len(client.get_metric_history(run_id, "big")) == 1500


def test_identical_metric_logged_twice_is_kept_once(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id
    metric = {"key": "dup", "value": 1.0, "timestamp": 1000, "step": 0}

    for _ in range(2):
        response = rest("POST", "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": [metric]})
        assert response.status_code == 200, response.text

    assert len(client.get_metric_history(run_id, "dup")) == 1


def test_logging_to_a_finished_run_is_allowed(experiment_id, client):
    with mlflow.start_run() as run:
        pass

    client.log_metric(run.info.run_id, "late", 1.0)
    client.log_param(run.info.run_id, "late_param", "v")

    data = client.get_run(run.info.run_id).data
    assert data.metrics["late"] == 1.0 and data.params["late_param"] == "v"


def test_delete_and_restore_run(experiment_id, client):
    run_id = client.create_run(experiment_id).info.run_id

    client.delete_run(run_id)

    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([experiment_id]) == []
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run_id]

    client.restore_run(run_id)

    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run_id]


def test_fluent_delete_run(experiment_id, client):
    with mlflow.start_run() as run:
        pass

    mlflow.delete_run(run.info.run_id)

    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"


def test_set_terminated_statuses(experiment_id, client):
    for status in [RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED]:
        name = RunStatus.to_string(status)
        run_id = client.create_run(experiment_id).info.run_id
        client.set_terminated(run_id, status=name)
        assert client.get_run(run_id).info.status == name


def test_log_input_dataset_shows_in_run_inputs(experiment_id, client):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.0]})
    dataset = mlflow.data.from_pandas(df, source="https://example.com/data/toy.csv", name="toy", targets="y")

    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"version": "v1"})

    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    logged = inputs[0].dataset
    assert logged.name == "toy"
    assert logged.digest == dataset.digest
    assert logged.source_type == "http"
    assert json.loads(logged.source) == {"url": "https://example.com/data/toy.csv"}
    assert "x" in logged.schema
    input_tags = {t.key: t.value for t in inputs[0].tags}
    assert input_tags == {"mlflow.data.context": "training", "version": "v1"}

    # The same dataset is searchable and loadable back from the run.
    found = client.search_runs([experiment_id], filter_string="datasets.name = 'toy'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    source = mlflow.data.get_source(inputs[0])
    assert source.url == "https://example.com/data/toy.csv"


def test_log_same_dataset_twice_is_recorded_once(experiment_id, client):
    df = pd.DataFrame({"a": [1.0, 2.0]})
    dataset = mlflow.data.from_pandas(df, source="https://example.com/data/twice.csv", name="twice")

    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")

    assert len(client.get_run(run.info.run_id).inputs.dataset_inputs) == 1


def test_get_run_returns_all_data(experiment_id, client):
    with mlflow.start_run() as run:
        mlflow.log_param("p", "1")
        mlflow.log_metric("m", 2.0)
        mlflow.set_tag("t", "3")

    fetched = mlflow.get_run(run.info.run_id)
    assert fetched.data.params == {"p": "1"}
    assert fetched.data.metrics == {"m": 2.0}
    assert fetched.data.tags["t"] == "3"


def test_last_active_run(experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_param("p", "q")

    assert mlflow.last_active_run().info.run_id == run.info.run_id
    assert mlflow.last_active_run().data.params == {"p": "q"}
