"""Project roles as the unmodified client sees them. Runs when the harness provides a project and
tokens of its members (CAIRN_TEST_PROJECT, CAIRN_TEST_*_TOKEN); otherwise skipped."""

import os

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from helpers import base_url, unique_name

PROJECT = os.environ.get("CAIRN_TEST_PROJECT")
pytestmark = pytest.mark.skipif(not PROJECT, reason="the harness set up no project members")


@pytest.fixture
def as_member(monkeypatch):
    """Switches the client to the project's tracking URI with the given member's token."""
    original_uri = base_url()

    def switch(role: str) -> MlflowClient:
        token = os.environ[f"CAIRN_TEST_{role.upper()}_TOKEN"]
        uri = f"{original_uri}/p/{PROJECT}"
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        return MlflowClient(tracking_uri=uri)

    yield switch
    mlflow.set_tracking_uri(original_uri)


def test_contributor_logs_to_its_project_and_a_viewer_reads_but_cannot_write(as_member, tmp_path):
    as_member("contributor")
    name = unique_name("rbac")
    mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("auc", 0.9)
        artifact = tmp_path / "notes.txt"
        artifact.write_text("shared with viewers")
        mlflow.log_artifact(str(artifact))
    run_id = run.info.run_id

    viewer = as_member("viewer")
    experiment = viewer.get_experiment_by_name(name)
    assert experiment is not None
    found = viewer.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in found] == [run_id]
    assert viewer.get_run(run_id).data.metrics["auc"] == 0.9
    downloaded = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt", dst_path=str(tmp_path / "dl"))
    assert open(downloaded).read() == "shared with viewers"
    with pytest.raises(MlflowException) as raised:
        viewer.log_metric(run_id, "auc", 0.1)
    assert raised.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as raised:
        viewer.create_experiment(unique_name("viewer-made"))
    assert raised.value.error_code == "PERMISSION_DENIED"


def test_outsider_is_denied_with_mlflow_error_code(as_member):
    outsider = as_member("outsider")
    with pytest.raises(MlflowException) as raised:
        outsider.search_experiments()
    assert raised.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as raised:
        mlflow.set_experiment(unique_name("outsider"))
    assert raised.value.error_code == "PERMISSION_DENIED"
