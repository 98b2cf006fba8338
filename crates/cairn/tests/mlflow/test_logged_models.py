"""MLflow 3 logged models: sklearn log_model, loading back by models:/ and runs:/, search."""

import re

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from helpers import error_code, next_millisecond, unique_name
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


@pytest.fixture(scope="module")
def iris():
    data = load_iris(as_frame=True)
    features = data.data.astype("float64")
    model = LogisticRegression(max_iter=500).fit(features, data.target)
    return model, features


@pytest.fixture(scope="module")
def logged(iris):
    """A run with a param and a metric, and a sklearn model logged in it as "model", in an
    experiment of its own (shared by the module: log_model takes seconds on the client side)."""
    model, features = iris
    experiment_id = mlflow.set_experiment(unique_name("logged-model")).experiment_id
    with mlflow.start_run() as run:
        mlflow.log_param("C", "1.0")
        mlflow.log_metric("train_acc", 0.97)
        info = mlflow.sklearn.log_model(model, name="model", input_example=features.iloc[:3])
    return experiment_id, run, info


def user_tags(tags: dict) -> dict:
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.")}


def test_log_model_creates_a_ready_logged_model(client, logged):
    experiment_id, run, info = logged

    assert re.fullmatch(r"m-[0-9a-f]{32}", info.model_id)
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == run.info.run_id
    model = client.get_logged_model(info.model_id)
    assert model.model_id == info.model_id
    assert model.name == "model"
    assert model.experiment_id == experiment_id
    assert model.source_run_id == run.info.run_id
    assert model.status == LoggedModelStatus.READY
    assert model.artifact_location == f"mlflow-artifacts:/{experiment_id}/models/{info.model_id}/artifacts"
    assert model.creation_timestamp > 0
    assert model.last_updated_timestamp >= model.creation_timestamp
    # The run's params are copied onto the model, and its metrics are linked to it.
    assert model.params == {"C": "1.0"}
    assert [(m.key, m.value, m.run_id) for m in model.metrics] == [("train_acc", 0.97, run.info.run_id)]


def test_logged_model_is_a_run_output(client, logged):
    _, run, info = logged

    outputs = client.get_run(run.info.run_id).outputs
    assert [(o.model_id, o.step) for o in outputs.model_outputs] == [(info.model_id, 0)]


def test_logged_model_artifacts_are_listed(client, logged):
    _, _, info = logged

    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml", "input_example.json"} <= files
    assert any(p.startswith("model.") for p in files)


def test_load_model_by_model_id_and_by_run_give_same_predictions(logged, iris):
    _, run, info = logged
    model, features = iris
    expected = model.predict(features)

    by_model_id = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    native = mlflow.sklearn.load_model(info.model_uri)

    np.testing.assert_array_equal(np.asarray(by_model_id.predict(features)), expected)
    np.testing.assert_array_equal(np.asarray(by_run.predict(features)), expected)
    np.testing.assert_array_equal(native.predict(features), expected)
    assert by_model_id.metadata.model_id == info.model_id
    assert by_run.metadata.run_id == run.info.run_id


def test_input_example_and_signature_are_stored(logged, iris):
    _, _, info = logged
    _, features = iris

    assert info.signature is not None
    assert [c.name for c in info.signature.inputs.inputs] == list(features.columns)
    example = mlflow.models.Model.load(info.model_uri).load_input_example(
        mlflow.artifacts.download_artifacts(info.model_uri)
    )
    pd.testing.assert_frame_equal(pd.DataFrame(example), features.iloc[:3].reset_index(drop=True), check_dtype=False)


def test_search_logged_models(client, logged):
    experiment_id, _, info = logged

    found = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    assert [m.model_id for m in found] == [info.model_id]

    by_name = client.search_logged_models([experiment_id], filter_string="name = 'model'")
    assert [m.model_id for m in by_name] == [info.model_id]
    assert client.search_logged_models([experiment_id], filter_string="name = 'other'") == []

    by_metric = client.search_logged_models([experiment_id], filter_string="metrics.train_acc > 0.9")
    assert [m.model_id for m in by_metric] == [info.model_id]

    df = mlflow.search_logged_models(experiment_ids=[experiment_id])
    assert list(df["model_id"]) == [info.model_id]


def test_search_logged_models_order_and_pagination(experiment_id, client):
    created = []
    for i in range(5):
        next_millisecond()
        created.append(mlflow.initialize_logged_model(name=f"m{i}").model_id)

    newest_first = client.search_logged_models([experiment_id])
    assert [m.model_id for m in newest_first] == list(reversed(created))

    by_name = client.search_logged_models([experiment_id], order_by=[{"field_name": "name", "ascending": True}])
    assert [m.name for m in by_name] == ["m0", "m1", "m2", "m3", "m4"]

    pages, token = [], None
    while True:
        page = client.search_logged_models([experiment_id], max_results=2, page_token=token)
        pages.append([m.model_id for m in page])
        token = page.token
        if not token:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == list(reversed(created))


def test_initialize_and_finalize_an_external_model(experiment_id, client):
    pending = mlflow.initialize_logged_model(name="external", tags={"source": "handmade"}, model_type="agent")

    assert pending.status == LoggedModelStatus.PENDING
    assert user_tags(pending.tags) == {"source": "handmade"}
    assert pending.tags["mlflow.user"]  # the client adds its system tags
    assert pending.model_type == "agent"

    mlflow.finalize_logged_model(pending.model_id, LoggedModelStatus.READY)

    ready = client.get_logged_model(pending.model_id)
    assert ready.status == LoggedModelStatus.READY
    assert not ready.source_run_id  # absent; the client reads it as ""


def test_logged_model_tags_and_params(experiment_id, client):
    model_id = mlflow.initialize_logged_model(name="tagged").model_id

    client.set_logged_model_tags(model_id, {"stage": "dev", "owner": "ana"})
    client.set_logged_model_tags(model_id, {"stage": "prod"})
    client.delete_logged_model_tag(model_id, "owner")
    mlflow.log_model_params({"alpha": "0.5", "depth": "3"}, model_id=model_id)

    model = client.get_logged_model(model_id)
    assert user_tags(model.tags) == {"stage": "prod"}
    assert model.params == {"alpha": "0.5", "depth": "3"}


def test_metrics_logged_with_model_id_are_attached_to_the_model(experiment_id, client):
    model_id = mlflow.initialize_logged_model(name="scored").model_id

    with mlflow.start_run() as run:
        mlflow.log_metric("val_acc", 0.8, step=1, model_id=model_id)
        mlflow.log_metric("val_acc", 0.9, step=2, model_id=model_id)

    model = client.get_logged_model(model_id)
    assert sorted((m.key, m.step, m.value, m.run_id) for m in model.metrics) == [
        ("val_acc", 1, 0.8, run.info.run_id),
        ("val_acc", 2, 0.9, run.info.run_id),
    ]
    assert [m.model_id for m in client.search_logged_models([experiment_id], filter_string="metrics.val_acc > 0.85")] == [model_id]


def test_delete_logged_model(experiment_id, client):
    model_id = mlflow.initialize_logged_model(name="doomed").model_id

    client.delete_logged_model(model_id)

    with pytest.raises(MlflowException) as excinfo:
        client.get_logged_model(model_id)
    assert error_code(excinfo.value) == "RESOURCE_DOES_NOT_EXIST"
    assert client.search_logged_models([experiment_id]) == []


def test_get_missing_logged_model_raises(client):
    with pytest.raises(MlflowException) as excinfo:
        client.get_logged_model("m-" + "0" * 32)

    assert error_code(excinfo.value) == "RESOURCE_DOES_NOT_EXIST"
