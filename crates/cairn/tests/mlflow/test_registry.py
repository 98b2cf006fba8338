"""The model registry through the unmodified client: registering logged models (log_model with
registered_model_name, register_model by models:/ and runs:/ URIs), the MlflowClient registry API
(registered models, versions, tags, stages, aliases, searches) and loading a registered model
back by version, alias, stage and "latest", plus the registry's error answers.

Every registered model name comes from unique_name(): the server is shared by the session and
is not empty. The two sklearn models are logged once for the module (log_model takes seconds on
the client side); the other tests build small registered models whose versions point at plain
s3:// sources, which the registry stores without reading them.
"""

import json

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from helpers import assert_error_response, error_code, next_millisecond, rest, unique_name
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

STAGES = ("None", "Staging", "Production", "Archived")


def raises_code(code, fn, *args, **kwargs) -> MlflowException:
    with pytest.raises(MlflowException) as excinfo:
        fn(*args, **kwargs)
    assert error_code(excinfo.value) == code, excinfo.value
    return excinfo.value


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(7)
    features = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    labels = (features["a"] + features["b"] > 0).astype("int64")
    return features, labels


@pytest.fixture(scope="module")
def registered(dataset):
    """One registered model with two versions, each logged by log_model(registered_model_name=)
    in a run of its own. Version 2 is trained on flipped labels, so that the two versions
    predict differently and loading the wrong one cannot go unnoticed."""
    features, labels = dataset
    name = unique_name("registry")
    experiment_id = mlflow.set_experiment(unique_name("registry-exp")).experiment_id
    models, runs, infos = [], [], []
    for target in (labels, 1 - labels):
        model = LogisticRegression(max_iter=200).fit(features, target)
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name, input_example=features.iloc[:3]
            )
        models.append(model)
        runs.append(run.info.run_id)
        infos.append(info)
    return {"name": name, "experiment_id": experiment_id, "models": models, "runs": runs, "infos": infos}


@pytest.fixture
def model_name(client) -> str:
    """A fresh, empty registered model."""
    name = unique_name("rm")
    client.create_registered_model(name)
    return name


def add_versions(client, name, count, **kwargs) -> list:
    return [client.create_model_version(name, f"s3://cairn-bucket/{name}/v{i}", **kwargs) for i in range(count)]


def stages_of(client, name) -> dict:
    return {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}


# --- registering logged models ------------------------------------------------------------------


def test_log_model_with_registered_model_name_creates_numbered_versions(client, registered):
    name, runs, infos = registered["name"], registered["runs"], registered["infos"]

    assert [info.registered_model_version for info in infos] == ["1", "2"]
    for number, (run_id, info) in enumerate(zip(runs, infos), start=1):
        version = client.get_model_version(name, str(number))
        assert version.name == name
        assert version.version == str(number)
        assert version.source == f"models:/{info.model_id}"
        assert version.run_id == run_id
        assert version.current_stage == "None"
        assert version.status == "READY"
        assert version.creation_timestamp > 0
        assert version.last_updated_timestamp >= version.creation_timestamp
    model = client.get_registered_model(name)
    assert model.name == name
    # latest_versions holds the newest version of each stage: here only "None".
    assert [(v.version, v.current_stage) for v in model.latest_versions] == [("2", "None")]


def test_registered_version_is_recorded_on_the_logged_model(client, registered):
    name, infos = registered["name"], registered["infos"]

    # The logged model is tagged with the versions it was registered as: a JSON list of
    # {"name", "version"} (MLflow's server appends one with an int version, the client one with
    # a string version; either satisfies the client).
    for number, info in enumerate(infos, start=1):
        entries = json.loads(client.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
        assert (name, str(number)) in {(e["name"], str(e["version"])) for e in entries}


def test_register_model_by_model_id_and_by_run_uri(client, registered):
    runs, infos = registered["runs"], registered["infos"]
    name = unique_name("registered-by-uri")

    first = mlflow.register_model(f"models:/{infos[0].model_id}", name)
    second = mlflow.register_model(f"runs:/{runs[1]}/model", name, tags={"origin": "run-uri"})
    third = mlflow.register_model(f"models:/{infos[0].model_id}", name)

    assert [first.version, second.version, third.version] == ["1", "2", "3"]
    assert first.source == f"models:/{infos[0].model_id}"
    # models:/<model_id> carries no run id: the server takes the logged model's source run.
    assert first.run_id == runs[0]
    # A runs:/ URI of an MLflow 3 logged model resolves to that model.
    assert second.source == f"models:/{infos[1].model_id}"
    assert second.run_id == runs[1]
    assert client.get_model_version(name, "2").tags == {"origin": "run-uri"}
    assert sorted(v.version for v in client.search_model_versions(f"name = '{name}'")) == ["1", "2", "3"]


def test_download_uri_of_a_version_is_the_logged_model_artifacts(client, registered):
    name, experiment_id, infos = registered["name"], registered["experiment_id"], registered["infos"]

    uri = client.get_model_version_download_uri(name, "1")

    assert uri == f"mlflow-artifacts:/{experiment_id}/models/{infos[0].model_id}/artifacts"


# --- loading registered models ------------------------------------------------------------------


def test_load_by_version_alias_stage_and_latest(client, registered, dataset):
    name, models = registered["name"], registered["models"]
    features, _ = dataset
    first, second = (m.predict(features) for m in models)
    assert (first != second).all()  # the two versions are told apart by their predictions

    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "2", "Staging")
    try:
        expected = {
            f"models:/{name}/1": first,
            f"models:/{name}/2": second,
            f"models:/{name}@champion": first,
            f"models:/{name}/Staging": second,
            f"models:/{name}/latest": second,
        }
        for uri, predictions in expected.items():
            loaded = mlflow.pyfunc.load_model(uri)
            np.testing.assert_array_equal(np.asarray(loaded.predict(features)), predictions, err_msg=uri)
        native = mlflow.sklearn.load_model(f"models:/{name}@champion")
        np.testing.assert_array_equal(native.predict(features), first)
    finally:
        # Leave the module's shared model as the other tests expect it, whatever the order.
        client.delete_registered_model_alias(name, "champion")
        client.transition_model_version_stage(name, "2", "None")


# --- registered models --------------------------------------------------------------------------


def test_create_registered_model_with_tags_and_description(client):
    name = unique_name("created")

    created = client.create_registered_model(name, tags={"team": "risk", "tier": "1"}, description="churn model")

    assert created.name == name
    assert created.description == "churn model"
    assert created.tags == {"team": "risk", "tier": "1"}
    assert created.creation_timestamp > 0
    assert created.last_updated_timestamp == created.creation_timestamp
    fetched = client.get_registered_model(name)
    assert (fetched.name, fetched.description, fetched.tags) == (name, "churn model", {"team": "risk", "tier": "1"})
    assert fetched.creation_timestamp == created.creation_timestamp
    assert fetched.latest_versions == []
    assert fetched.aliases == {}


def test_update_registered_model_description(client, model_name):
    before = client.get_registered_model(model_name)
    next_millisecond()

    updated = client.update_registered_model(model_name, description="second thoughts")

    assert updated.name == model_name
    assert updated.description == "second thoughts"
    fetched = client.get_registered_model(model_name)
    assert fetched.description == "second thoughts"
    assert fetched.last_updated_timestamp > before.last_updated_timestamp
    assert fetched.creation_timestamp == before.creation_timestamp


def test_registered_model_tags(client, model_name):
    client.set_registered_model_tag(model_name, "team", "risk")
    client.set_registered_model_tag(model_name, "owner", "ana")
    client.set_registered_model_tag(model_name, "team", "fraud")  # overwrites
    client.delete_registered_model_tag(model_name, "owner")

    assert client.get_registered_model(model_name).tags == {"team": "fraud"}


def test_rename_registered_model_keeps_versions_and_aliases(client, model_name):
    add_versions(client, model_name, 2)
    client.set_registered_model_alias(model_name, "prod", "2")
    new_name = unique_name("renamed")

    client.rename_registered_model(model_name, new_name)  # the client returns None

    assert client.get_registered_model(new_name).name == new_name
    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, model_name)
    assert f"Registered Model with name={model_name} not found" in exc.message
    assert client.get_model_version(new_name, "1").name == new_name
    assert sorted(v.version for v in client.search_model_versions(f"name = '{new_name}'")) == ["1", "2"]
    assert client.search_model_versions(f"name = '{model_name}'") == []
    assert client.get_model_version_by_alias(new_name, "prod").version == "2"
    assert client.get_registered_model(new_name).aliases == {"prod": "2"}


def test_delete_registered_model_deletes_its_versions(client, model_name):
    add_versions(client, model_name, 2)

    client.delete_registered_model(model_name)

    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, model_name)
    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, model_name, "1")
    assert client.search_model_versions(f"name = '{model_name}'") == []
    assert client.search_registered_models(f"name = '{model_name}'") == []
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_registered_model, model_name)
    # The name is free again, and numbering restarts.
    client.create_registered_model(model_name)
    assert add_versions(client, model_name, 1)[0].version == "1"


# --- model versions -----------------------------------------------------------------------------


def test_create_model_version_fields(client, model_name, registered):
    run_id = registered["runs"][0]

    version = client.create_model_version(
        model_name, "s3://cairn-bucket/model", run_id=run_id, tags={"k": "v"}, description="from s3"
    )

    assert version.name == model_name
    assert version.version == "1"
    assert version.source == "s3://cairn-bucket/model"
    assert version.run_id == run_id
    assert version.tags == {"k": "v"}
    assert version.description == "from s3"
    assert version.current_stage == "None"
    assert version.status == "READY"
    assert version.aliases == []
    fetched = client.get_model_version(model_name, "1")
    assert (fetched.source, fetched.run_id, fetched.tags, fetched.description) == (
        "s3://cairn-bucket/model",
        run_id,
        {"k": "v"},
        "from s3",
    )
    assert client.get_model_version_download_uri(model_name, "1") == "s3://cairn-bucket/model"


def test_update_model_version_and_its_tags(client, model_name):
    add_versions(client, model_name, 1)

    updated = client.update_model_version(model_name, "1", description="validated on March data")
    client.set_model_version_tag(model_name, "1", "validated", "yes")
    client.set_model_version_tag(model_name, "1", "dataset", "march")
    client.set_model_version_tag(model_name, "1", "validated", "no")
    client.delete_model_version_tag(model_name, "1", "dataset")

    assert updated.description == "validated on March data"
    version = client.get_model_version(model_name, "1")
    assert version.description == "validated on March data"
    assert version.tags == {"validated": "no"}


def test_delete_model_version_never_reuses_its_number(client, model_name):
    add_versions(client, model_name, 3)
    client.set_registered_model_alias(model_name, "gone", "3")

    client.delete_model_version(model_name, "3")
    client.delete_model_version(model_name, "1")

    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, model_name, "3")
    assert [v.version for v in client.search_model_versions(f"name = '{model_name}'")] == ["2"]
    # The alias of a deleted version goes with it.
    assert client.get_registered_model(model_name).aliases == {}
    assert [(v.version, v.current_stage) for v in client.get_registered_model(model_name).latest_versions] == [
        ("2", "None")
    ]
    assert add_versions(client, model_name, 1)[0].version == "4"


# --- stages -------------------------------------------------------------------------------------


def test_transition_stage_and_get_latest_versions(client, model_name):
    add_versions(client, model_name, 4)

    moved = client.transition_model_version_stage(model_name, "1", "Staging")
    client.transition_model_version_stage(model_name, "2", "Staging")
    client.transition_model_version_stage(model_name, "3", "production")  # canonicalised

    assert moved.current_stage == "Staging"
    assert moved.version == "1"
    assert stages_of(client, model_name) == {"1": "Staging", "2": "Staging", "3": "Production", "4": "None"}
    assert [v.version for v in client.get_latest_versions(model_name, stages=["Staging"])] == ["2"]
    assert [v.version for v in client.get_latest_versions(model_name, stages=["Production"])] == ["3"]
    assert client.get_latest_versions(model_name, stages=["Archived"]) == []
    both = client.get_latest_versions(model_name, stages=["Production", "Staging"])
    assert sorted((v.current_stage, v.version) for v in both) == [("Production", "3"), ("Staging", "2")]
    # Without stages: the newest version of every stage in use.
    every = client.get_latest_versions(model_name)
    assert sorted((v.current_stage, v.version) for v in every) == [("None", "4"), ("Production", "3"), ("Staging", "2")]
    latest = client.get_registered_model(model_name).latest_versions
    assert sorted((v.current_stage, v.version) for v in latest) == [("None", "4"), ("Production", "3"), ("Staging", "2")]


def test_transition_with_archive_existing_versions(client, model_name):
    add_versions(client, model_name, 4)
    client.transition_model_version_stage(model_name, "1", "Production")
    client.transition_model_version_stage(model_name, "2", "Production")
    client.transition_model_version_stage(model_name, "3", "Staging")

    moved = client.transition_model_version_stage(model_name, "4", "Production", archive_existing_versions=True)

    assert moved.current_stage == "Production"
    # Only the versions that were in the target stage are archived.
    assert stages_of(client, model_name) == {"1": "Archived", "2": "Archived", "3": "Staging", "4": "Production"}
    assert [v.version for v in client.get_latest_versions(model_name, stages=["Archived"])] == ["2"]
    # Without the flag, versions already in the stage stay there.
    client.transition_model_version_stage(model_name, "3", "Production")
    assert stages_of(client, model_name) == {"1": "Archived", "2": "Archived", "3": "Production", "4": "Production"}
    client.transition_model_version_stage(model_name, "1", "None")
    assert stages_of(client, model_name)["1"] == "None"


# --- aliases ------------------------------------------------------------------------------------


def test_aliases_set_move_and_delete(client, model_name):
    add_versions(client, model_name, 3)

    client.set_registered_model_alias(model_name, "champion", "1")
    client.set_registered_model_alias(model_name, "challenger", "2")
    client.set_registered_model_alias(model_name, "shadow", "2")

    assert client.get_registered_model(model_name).aliases == {"champion": "1", "challenger": "2", "shadow": "2"}
    by_alias = client.get_model_version_by_alias(model_name, "challenger")
    assert (by_alias.name, by_alias.version) == (model_name, "2")
    assert sorted(by_alias.aliases) == ["challenger", "shadow"]
    assert client.get_model_version(model_name, "1").aliases == ["champion"]
    assert client.get_model_version(model_name, "3").aliases == []

    client.set_registered_model_alias(model_name, "champion", "3")  # moves the alias
    assert client.get_model_version_by_alias(model_name, "champion").version == "3"
    assert client.get_model_version(model_name, "1").aliases == []

    client.delete_registered_model_alias(model_name, "shadow")
    assert client.get_registered_model(model_name).aliases == {"champion": "3", "challenger": "2"}
    exc = raises_code("INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, model_name, "shadow")
    assert "Registered model alias shadow not found." in exc.message


# --- searches -----------------------------------------------------------------------------------


def test_search_registered_models_by_name_tags_order_and_pages(client):
    prefix = unique_name("search-rm")
    names = [f"{prefix}-{suffix}" for suffix in ("b", "a", "c")]
    for i, name in enumerate(names):
        next_millisecond()
        client.create_registered_model(name, tags={"team": "risk" if i != 1 else "fraud"})
    client.create_registered_model(unique_name("search-rm-other"))

    found = client.search_registered_models(f"name LIKE '{prefix}%'")
    assert [m.name for m in found] == sorted(names)  # natural order: name ascending
    assert [m.name for m in client.search_registered_models(f"name = '{names[0]}'")] == [names[0]]
    assert [m.name for m in client.search_registered_models(f"name ILIKE '{prefix.upper()}-A'")] == [names[1]]

    by_tag = client.search_registered_models(f"name LIKE '{prefix}%' AND tags.team = 'risk'")
    assert [m.name for m in by_tag] == sorted([names[0], names[2]])
    assert client.search_registered_models(f"name LIKE '{prefix}%' AND tags.team = 'nobody'") == []

    descending = client.search_registered_models(f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [m.name for m in descending] == sorted(names, reverse=True)
    newest_first = client.search_registered_models(f"name LIKE '{prefix}%'", order_by=["timestamp DESC"])
    assert [m.name for m in newest_first] == list(reversed(names))

    pages, token = [], None
    while True:
        page = client.search_registered_models(f"name LIKE '{prefix}%'", max_results=2, page_token=token)
        pages.append([m.name for m in page])
        token = page.token
        if not token:
            break
    assert pages == [sorted(names)[:2], sorted(names)[2:]]

    fluent = mlflow.search_registered_models(filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"])
    assert [m.name for m in fluent] == sorted(names)


def test_search_registered_models_returns_latest_versions_and_aliases(client, model_name):
    add_versions(client, model_name, 2)
    client.transition_model_version_stage(model_name, "1", "Production")
    client.set_registered_model_alias(model_name, "champion", "1")
    client.set_registered_model_tag(model_name, "team", "risk")

    [found] = client.search_registered_models(f"name = '{model_name}'")

    assert sorted((v.current_stage, v.version) for v in found.latest_versions) == [("None", "2"), ("Production", "1")]
    assert found.aliases == {"champion": "1"}
    assert found.tags == {"team": "risk"}


def test_search_model_versions(client, model_name, registered):
    run_id = registered["runs"][0]
    other_run = registered["runs"][1]
    client.create_model_version(model_name, "s3://cairn-bucket/a", run_id=run_id, tags={"k": "x"})
    client.create_model_version(model_name, "s3://cairn-bucket/b", run_id=other_run, tags={"k": "y"})
    client.create_model_version(model_name, "s3://cairn-bucket/c", run_id=run_id)

    by_name = client.search_model_versions(f"name = '{model_name}'")
    assert [v.version for v in by_name] == ["3", "2", "1"]  # natural order: version descending
    assert all(v.name == model_name for v in by_name)
    assert [v.version for v in client.search_model_versions(f"name = '{model_name}'", order_by=["version_number DESC"])] == ["3", "2", "1"]
    assert [v.version for v in client.search_model_versions(f"name = '{model_name}'", order_by=["version_number ASC"])] == ["1", "2", "3"]

    by_run = client.search_model_versions(f"name = '{model_name}' AND run_id = '{run_id}'")
    assert [v.version for v in by_run] == ["3", "1"]
    across_models = client.search_model_versions(f"run_id = '{run_id}'")
    assert all(v.run_id == run_id for v in across_models)
    assert {(registered["name"], "1"), (model_name, "1"), (model_name, "3")} <= {(v.name, v.version) for v in across_models}

    by_tag = client.search_model_versions(f"name = '{model_name}' AND tags.k = 'y'")
    assert [(v.version, v.source) for v in by_tag] == [("2", "s3://cairn-bucket/b")]
    by_number = client.search_model_versions(f"name = '{model_name}' AND version_number >= 2")
    assert [v.version for v in by_number] == ["3", "2"]

    pages, token = [], None
    while True:
        page = client.search_model_versions(f"name = '{model_name}'", max_results=2, page_token=token)
        pages.append([v.version for v in page])
        token = page.token
        if not token:
            break
    assert pages == [["3", "2"], ["1"]]


# --- errors -------------------------------------------------------------------------------------


def test_get_missing_registered_model(client):
    name = unique_name("missing")

    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_registered_model, name)

    assert exc.get_http_status_code() == 404
    assert f"Registered Model with name={name} not found" in exc.message
    raises_code("RESOURCE_DOES_NOT_EXIST", client.update_registered_model, name, description="x")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_registered_model, name)


def test_create_duplicate_registered_model(client, model_name):
    exc = raises_code("RESOURCE_ALREADY_EXISTS", client.create_registered_model, model_name)

    assert exc.get_http_status_code() == 400
    assert f"Registered Model (name={model_name}) already exists" in exc.message


def test_rename_to_a_taken_name(client, model_name):
    other = unique_name("taken")
    client.create_registered_model(other)

    raises_code("RESOURCE_ALREADY_EXISTS", client.rename_registered_model, model_name, other)


@pytest.mark.parametrize("bad", ["a/b", "a:b"])
def test_registered_model_name_with_slash_or_colon(client, bad):
    exc = raises_code("INVALID_PARAMETER_VALUE", client.create_registered_model, unique_name("bad") + bad)

    assert "Names cannot contain '/' or ':'" in exc.message


def test_missing_model_version(client, model_name):
    add_versions(client, model_name, 1)

    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, model_name, "9")

    assert f"Model Version (name={model_name}, version=9) not found" in exc.message
    raises_code("RESOURCE_DOES_NOT_EXIST", client.update_model_version, model_name, "9", description="x")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.delete_model_version, model_name, "9")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.transition_model_version_stage, model_name, "9", "Staging")
    raises_code("RESOURCE_DOES_NOT_EXIST", client.get_model_version, unique_name("missing"), "1")


def test_model_version_of_a_missing_registered_model(client):
    raises_code("RESOURCE_DOES_NOT_EXIST", client.create_model_version, unique_name("missing"), "s3://cairn-bucket/x")


def test_bad_stage(client, model_name):
    add_versions(client, model_name, 1)

    exc = raises_code("INVALID_PARAMETER_VALUE", client.transition_model_version_stage, model_name, "1", "Foo")

    assert "Invalid Model Version stage: Foo. Value must be one of None, Staging, Production, Archived." in exc.message
    raises_code("INVALID_PARAMETER_VALUE", client.get_latest_versions, model_name, stages=["Foo"])
    assert client.get_model_version(model_name, "1").current_stage == "None"


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("latest", "'latest' alias name (case insensitive) is reserved."),
        ("LATEST", "'latest' alias name (case insensitive) is reserved."),
        ("v1", "Version alias name 'v1' is reserved."),
        ("V12", "Version alias name 'V12' is reserved."),
        ("a.b", "Invalid alias name: 'a.b'."),
    ],
)
def test_reserved_or_invalid_alias(client, model_name, alias, message):
    add_versions(client, model_name, 1)

    exc = raises_code("INVALID_PARAMETER_VALUE", client.set_registered_model_alias, model_name, alias, "1")

    assert message in exc.message
    assert client.get_registered_model(model_name).aliases == {}


def test_alias_to_a_missing_version(client, model_name):
    add_versions(client, model_name, 1)

    exc = raises_code("RESOURCE_DOES_NOT_EXIST", client.set_registered_model_alias, model_name, "champion", "7")

    assert f"Model Version (name={model_name}, version=7) not found" in exc.message


def test_unknown_alias_lookup_is_invalid_parameter(client, model_name):
    add_versions(client, model_name, 1)

    exc = raises_code("INVALID_PARAMETER_VALUE", client.get_model_version_by_alias, model_name, "nosuch")

    assert "Registered model alias nosuch not found." in exc.message
    with pytest.raises(MlflowException):
        mlflow.pyfunc.load_model(f"models:/{model_name}@nosuch")


def test_registry_errors_on_the_wire(model_name):
    """The HTTP statuses of the registry errors (the client maps them from error_code alone)."""
    assert rest("POST", "/api/2.0/mlflow/model-versions/create", json={"name": model_name, "source": "s3://cairn-bucket/x"}).ok

    missing = unique_name("missing")
    body = assert_error_response(
        rest("GET", "/api/2.0/mlflow/registered-models/get", params={"name": missing}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    assert body["message"] == f"Registered Model with name={missing} not found"
    body = assert_error_response(
        rest("POST", "/api/2.0/mlflow/registered-models/create", json={"name": model_name}), 400, "RESOURCE_ALREADY_EXISTS"
    )
    assert body["message"] == f"Registered Model (name={model_name}) already exists."
    body = assert_error_response(
        rest("GET", "/api/2.0/mlflow/model-versions/get", params={"name": model_name, "version": "9"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert body["message"] == f"Model Version (name={model_name}, version=9) not found"
    body = assert_error_response(
        rest("GET", "/api/2.0/mlflow/model-versions/get", params={"name": model_name, "version": "abc"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert body["message"] == "Parameter 'version' must be an integer, got 'abc'."
    body = assert_error_response(
        rest("GET", "/api/2.0/mlflow/registered-models/alias", params={"name": model_name, "alias": "nosuch"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert body["message"] == "Registered model alias nosuch not found."
    assert_error_response(
        rest(
            "POST",
            "/api/2.0/mlflow/registered-models/alias",
            json={"name": model_name, "alias": "champion", "version": "7"},
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    body = assert_error_response(
        rest(
            "POST",
            "/api/2.0/mlflow/model-versions/transition-stage",
            json={"name": model_name, "version": "1", "stage": "Foo", "archive_existing_versions": False},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert body["message"] == "Invalid Model Version stage: Foo. Value must be one of None, Staging, Production, Archived."


def test_registered_model_wire_shape(model_name):
    """registered-models/get as the client receives it: latest_versions (one per stage), aliases as
    {alias, version} objects, and a version's aliases as plain strings."""
    for source in ("s3://cairn-bucket/v1", "s3://cairn-bucket/v2"):
        assert rest("POST", "/api/2.0/mlflow/model-versions/create", json={"name": model_name, "source": source}).ok
    assert rest(
        "POST",
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": model_name, "version": "1", "stage": "Staging", "archive_existing_versions": False},
    ).ok
    assert rest("POST", "/api/2.0/mlflow/registered-models/alias", json={"name": model_name, "alias": "champion", "version": "1"}).ok

    response = rest("GET", "/api/2.0/mlflow/registered-models/get", params={"name": model_name})
    assert response.status_code == 200, response.text
    model = response.json()["registered_model"]
    assert model["name"] == model_name
    assert isinstance(model["creation_timestamp"], int)
    assert model["aliases"] == [{"alias": "champion", "version": "1"}]
    latest = sorted(model["latest_versions"], key=lambda v: v["version"])
    assert [(v["version"], v["current_stage"], v["source"], v["status"]) for v in latest] == [
        ("1", "Staging", "s3://cairn-bucket/v1", "READY"),
        ("2", "None", "s3://cairn-bucket/v2", "READY"),
    ]

    response = rest("GET", "/api/2.0/mlflow/model-versions/get", params={"name": model_name, "version": "1"})
    assert response.status_code == 200, response.text
    version = response.json()["model_version"]
    assert version["version"] == "1"  # a string on the wire
    assert version["aliases"] == ["champion"]
    assert version["current_stage"] == "Staging"
