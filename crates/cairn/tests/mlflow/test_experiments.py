"""Experiments: set_experiment, create/get/get-by-name, rename, delete/restore, tags, search."""

import mlflow
import pytest
from helpers import next_millisecond, unique_name
from mlflow.entities import ViewType


def test_set_experiment_creates_then_reuses_by_name(client):
    name = unique_name("set-exp")

    created = mlflow.set_experiment(name)
    again = mlflow.set_experiment(name)

    assert created.experiment_id == again.experiment_id
    assert created.experiment_id.isdigit()
    assert created.name == name
    assert created.lifecycle_stage == "active"
    assert created.artifact_location == f"mlflow-artifacts:/{created.experiment_id}"
    assert mlflow.get_experiment_by_name(name).experiment_id == created.experiment_id


def test_set_experiment_by_id_makes_it_active(client):
    exp_id = client.create_experiment(unique_name("by-id"))

    exp = mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run() as run:
        pass

    assert exp.experiment_id == exp_id
    assert run.info.experiment_id == exp_id


def test_create_and_get_experiment_with_tags(client):
    name = unique_name("create")

    exp_id = client.create_experiment(name, tags={"team": "vision", "priority": "1"})
    exp = client.get_experiment(exp_id)

    assert exp.experiment_id == exp_id
    assert exp.name == name
    assert exp.tags == {"team": "vision", "priority": "1"}
    assert exp.lifecycle_stage == "active"
    assert isinstance(exp.creation_time, int) and exp.creation_time > 0
    assert isinstance(exp.last_update_time, int) and exp.last_update_time >= exp.creation_time
    by_name = client.get_experiment_by_name(name)
    assert by_name.experiment_id == exp_id
    assert by_name.tags == exp.tags


def test_experiment_ids_are_distinct_increasing_integers(client):
    first = int(client.create_experiment(unique_name("ids")))
    second = int(client.create_experiment(unique_name("ids")))

    assert second > first


def test_default_experiment_exists(client):
    default = client.get_experiment("0")

    assert default.name == "Default"
    assert default.lifecycle_stage == "active"


def test_get_experiment_by_name_of_missing_name_returns_none(client):
    assert client.get_experiment_by_name(unique_name("missing")) is None
    assert mlflow.get_experiment_by_name(unique_name("missing")) is None


def test_rename_experiment(client):
    old, new = unique_name("old"), unique_name("new")
    exp_id = client.create_experiment(old)

    client.rename_experiment(exp_id, new)

    assert client.get_experiment(exp_id).name == new
    assert client.get_experiment_by_name(old) is None
    assert client.get_experiment_by_name(new).experiment_id == exp_id


def test_delete_and_restore_experiment(client):
    name = unique_name("delete")
    exp_id = client.create_experiment(name)

    client.delete_experiment(exp_id)

    deleted = client.get_experiment(exp_id)
    assert deleted.lifecycle_stage == "deleted"
    # A deleted experiment is still found by name (and keeps its name reserved).
    assert client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    active = client.search_experiments(filter_string=f"name = '{name}'")
    assert active == []
    only_deleted = client.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{name}'"
    )
    assert [e.experiment_id for e in only_deleted] == [exp_id]

    client.restore_experiment(exp_id)

    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    found = client.search_experiments(filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in found] == [exp_id]


def test_delete_experiment_soft_deletes_its_runs(client):
    exp_id = client.create_experiment(unique_name("delete-runs"))
    run = client.create_run(exp_id)

    client.delete_experiment(exp_id)

    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"


def test_experiment_tags_set_overwrite_and_delete(client):
    exp_id = client.create_experiment(unique_name("tags"))

    client.set_experiment_tag(exp_id, "stage", "dev")
    client.set_experiment_tag(exp_id, "owner", "ana")
    client.set_experiment_tag(exp_id, "stage", "prod")
    assert client.get_experiment(exp_id).tags == {"stage": "prod", "owner": "ana"}

    client.delete_experiment_tag(exp_id, "owner")
    assert client.get_experiment(exp_id).tags == {"stage": "prod"}


def test_fluent_set_experiment_tags(experiment_id, client):
    mlflow.set_experiment_tags({"a": "1", "b": "two"})
    mlflow.set_experiment_tag("note", "hello world")

    assert client.get_experiment(experiment_id).tags == {"a": "1", "b": "two", "note": "hello world"}


def test_experiment_description_tag_round_trips(client):
    exp_id = client.create_experiment(unique_name("desc"))

    client.set_experiment_tag(exp_id, "mlflow.note.content", "# Title\nmulti-line ✓")

    assert client.get_experiment(exp_id).tags["mlflow.note.content"] == "# Title\nmulti-line ✓"


@pytest.fixture
def three_experiments(client):
    """Three experiments sharing a unique prefix, created in the order a, ab, Abc."""
    prefix = unique_name("search")
    ids = {}
    for suffix, tags in [("a", {"kind": "x"}), ("ab", {"kind": "y"}), ("Abc", {"kind": "x", "extra": "1"})]:
        next_millisecond()
        ids[suffix] = client.create_experiment(f"{prefix}-{suffix}", tags=tags)
    return prefix, ids


def test_search_experiments_by_name_like_ilike_and_equality(client, three_experiments):
    prefix, ids = three_experiments

    def names(filter_string, **kwargs):
        return sorted(e.name for e in client.search_experiments(filter_string=filter_string, **kwargs))

    assert names(f"name LIKE '{prefix}-a%'") == [f"{prefix}-a", f"{prefix}-ab"]
    assert names(f"name ILIKE '{prefix}-a%'") == [f"{prefix}-Abc", f"{prefix}-a", f"{prefix}-ab"]
    assert names(f"name = '{prefix}-ab'") == [f"{prefix}-ab"]
    assert names(f"name LIKE '{prefix}%' AND name != '{prefix}-ab'") == [f"{prefix}-Abc", f"{prefix}-a"]


def test_search_experiments_by_tags(client, three_experiments):
    prefix, ids = three_experiments

    def ids_for(filter_string):
        found = client.search_experiments(filter_string=f"name LIKE '{prefix}%' AND {filter_string}")
        return sorted(e.experiment_id for e in found)

    assert ids_for("tags.kind = 'x'") == sorted([ids["a"], ids["Abc"]])
    assert ids_for("tags.kind != 'x'") == [ids["ab"]]
    assert ids_for("tags.extra IS NOT NULL") == [ids["Abc"]]
    assert ids_for("tags.extra IS NULL") == sorted([ids["a"], ids["ab"]])
    assert ids_for("tags.kind LIKE '%y'") == [ids["ab"]]


def test_search_experiments_order_by(client, three_experiments):
    prefix, ids = three_experiments
    filter_string = f"name LIKE '{prefix}%'"

    def order(*order_by):
        found = client.search_experiments(filter_string=filter_string, order_by=list(order_by))
        return [e.name.removeprefix(prefix + "-") for e in found]

    # Default: creation_time DESC (newest first).
    assert [e.name.removeprefix(prefix + "-") for e in client.search_experiments(filter_string=filter_string)] == [
        "Abc",
        "ab",
        "a",
    ]
    # Binary string order: uppercase before lowercase.
    assert order("name ASC") == ["Abc", "a", "ab"]
    assert order("name DESC") == ["ab", "a", "Abc"]
    assert order("experiment_id ASC") == ["a", "ab", "Abc"]
    assert order("creation_time ASC") == ["a", "ab", "Abc"]


def test_search_experiments_pagination(client):
    prefix = unique_name("page")
    created = [client.create_experiment(f"{prefix}-{i}") for i in range(5)]
    filter_string = f"name LIKE '{prefix}-%'"

    pages = []
    token = None
    while True:
        page = client.search_experiments(
            filter_string=filter_string, max_results=2, page_token=token, order_by=["name ASC"]
        )
        pages.append([e.experiment_id for e in page])
        token = page.token
        if not token:
            break

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == created


def test_search_experiments_view_type_all(client):
    prefix = unique_name("view")
    keep = client.create_experiment(f"{prefix}-keep")
    gone = client.create_experiment(f"{prefix}-gone")
    client.delete_experiment(gone)

    def ids(view_type):
        found = client.search_experiments(view_type=view_type, filter_string=f"name LIKE '{prefix}%'")
        return sorted(e.experiment_id for e in found)

    assert ids(ViewType.ACTIVE_ONLY) == [keep]
    assert ids(ViewType.DELETED_ONLY) == [gone]
    assert ids(ViewType.ALL) == sorted([keep, gone])


def test_fluent_search_experiments(client):
    name = unique_name("fluent-search")
    exp_id = client.create_experiment(name, tags={"k": "v"})

    found = mlflow.search_experiments(filter_string=f"name = '{name}' AND tags.k = 'v'")

    assert [e.experiment_id for e in found] == [exp_id]
