"""The model registry as a data scientist uses it: log with registered_model_name, aliases and
stages, and load the right model back by version, alias, stage and "latest"."""

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from helpers import error_code, unique_name
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


@pytest.fixture(scope="module")
def registered():
    """Two versions of one registered model, each a differently regularised classifier."""
    data = load_iris(as_frame=True)
    features = data.data.astype("float64")
    name = unique_name("registry")
    mlflow.set_experiment(unique_name("registry-exp"))
    models = []
    for strength in (1.0, 0.01):
        model = LogisticRegression(C=strength, max_iter=500).fit(features, data.target)
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=features.iloc[:2])
        models.append(model)
    return name, models, features


def probabilities(model, features):
    return model.predict_proba(features)


def test_versions_are_numbered_and_load_by_version_alias_stage_and_latest(registered):
    name, models, features = registered
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    assert [v.version for v in versions] == ["1", "2"]
    assert all(v.source.startswith("models:/m-") for v in versions)

    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "2", "Staging")
    expected = {
        f"models:/{name}/1": models[0],
        f"models:/{name}@champion": models[0],
        f"models:/{name}/Staging": models[1],
        f"models:/{name}/latest": models[1],
    }
    for uri, model in expected.items():
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_array_equal(loaded.predict(features), model.predict(features), err_msg=uri)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert [v.version for v in client.get_latest_versions(name, stages=["Staging"])] == ["2"]


def test_registered_model_metadata_round_trips(registered):
    name, _, _ = registered
    client = MlflowClient()
    client.update_registered_model(name, description="churn classifier")
    client.set_registered_model_tag(name, "team", "risk")
    client.set_model_version_tag(name, "1", "validated", "yes")
    client.update_model_version(name, "1", description="first")
    model = client.get_registered_model(name)
    assert model.description == "churn classifier"
    assert model.tags["team"] == "risk"
    version = client.get_model_version(name, "1")
    assert (version.description, version.tags["validated"]) == ("first", "yes")
    found = client.search_registered_models(f"name = '{name}'")
    assert [m.name for m in found] == [name]


def test_rename_delete_and_errors():
    client = MlflowClient()
    name = unique_name("reg-errors")
    client.create_registered_model(name, tags={"k": "v"}, description="d")
    with pytest.raises(MlflowException) as raised:
        client.create_registered_model(name)
    assert error_code(raised.value) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as raised:
        client.get_registered_model(unique_name("missing"))
    assert error_code(raised.value) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as raised:
        client.create_registered_model("a/b")
    assert error_code(raised.value) == "INVALID_PARAMETER_VALUE"
    client.create_model_version(name, "s3://bucket/model")
    with pytest.raises(MlflowException) as raised:
        client.transition_model_version_stage(name, "1", "Foo")
    assert error_code(raised.value) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as raised:
        client.set_registered_model_alias(name, "latest", "1")
    assert error_code(raised.value) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as raised:
        client.get_model_version(name, "9")
    assert error_code(raised.value) == "RESOURCE_DOES_NOT_EXIST"
    renamed = unique_name("reg-renamed")
    client.rename_registered_model(name, renamed)
    assert client.get_model_version(renamed, "1").name == renamed
    client.delete_registered_model(renamed)
    with pytest.raises(MlflowException) as raised:
        client.get_registered_model(renamed)
    assert error_code(raised.value) == "RESOURCE_DOES_NOT_EXIST"
