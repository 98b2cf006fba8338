"""Governed aliases and stages as the unmodified client sees them: a promotion that a Cairn policy
covers is not applied; the client gets an error naming the approval request opened for it. A
policy that needs no approvals lets the client through when the source run meets its metric
condition. Cairn-only (skipped against a stock MLflow server, which has no policies)."""

import pytest
from mlflow.exceptions import MlflowException

from helpers import rest, unique_name


def _cairn() -> bool:
    try:
        return rest("GET", "/api/v1/openapi.json").status_code == 200
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _cairn(), reason="policies are a Cairn feature")


def _policy(name: str, target: str, model: str, rules: dict) -> dict:
    response = rest(
        "POST",
        "/api/v1/policies",
        json={"name": name, "target": target, "model_name": model, "rules": rules},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _version(client, name: str, experiment_id: str, auc: float) -> str:
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "auc", auc)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    return version.version


def test_governed_alias_is_refused_with_the_request_named(client, experiment_id):
    name = unique_name("governed")
    client.create_registered_model(name)
    good = _version(client, name, experiment_id, 0.91)
    _policy(unique_name("gate"), "alias:champion", name, {"approvals": 1})

    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias(name, "champion", good)
    message = str(refused.value)
    assert "approval request" in message and "0 of 1 approvals" in message, message
    assert "cairn approvals approve" in message
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(name, "champion")

    pending = rest("GET", f"/api/v1/approvals?state=pending&model={name}").json()
    assert [(r["version"], r["target"]) for r in pending] == [(int(good), "alias:champion")]
    assert str(pending[0]["id"]) in message
    # An ungoverned alias still moves as in MLflow.
    client.set_registered_model_alias(name, "candidate", good)
    assert client.get_model_version_by_alias(name, "candidate").version == good


def test_metric_condition_decides_a_governed_stage(client, experiment_id):
    name = unique_name("governed-stage")
    client.create_registered_model(name)
    good = _version(client, name, experiment_id, 0.91)
    weak = _version(client, name, experiment_id, 0.62)
    _policy(unique_name("prod"), "stage:Production", name, {"conditions": ["metrics.auc >= 0.8"]})

    moved = client.transition_model_version_stage(name, good, "Production")
    assert moved.current_stage == "Production"
    with pytest.raises(MlflowException) as refused:
        client.transition_model_version_stage(name, weak, "Production")
    message = str(refused.value)
    assert "metrics.auc >= 0.8 fails" in message and "metrics.auc = 0.62" in message, message
    assert client.get_model_version(name, weak).current_stage == "None"
    history = rest("GET", f"/api/v1/models/{name}/history").json()
    assert [(h["kind"], h["target"], h["version"]) for h in history] == [
        ("stage", "Production", int(good))
    ]
