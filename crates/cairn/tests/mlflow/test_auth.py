"""Authentication as the unmodified client sees it. Runs when the server under test requires
authentication (the harness sets CAIRN_TEST_AUTH_TOKEN to an admin token); otherwise skipped."""

import os

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from helpers import base_url, unique_name

TOKEN = os.environ.get("CAIRN_TEST_AUTH_TOKEN")
pytestmark = pytest.mark.skipif(not TOKEN, reason="the server under test does not require authentication")


def test_raw_request_without_credentials_is_refused_in_mlflow_format():
    response = requests.post(f"{base_url()}/api/2.0/mlflow/experiments/search", json={"max_results": 1}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "Basic" in response.headers.get("WWW-Authenticate", "")


def test_client_without_a_token_gets_unauthenticated(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    with pytest.raises(MlflowException) as raised:
        MlflowClient().search_experiments()
    assert raised.value.error_code == "UNAUTHENTICATED"


def test_client_with_a_wrong_token_gets_unauthenticated(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "cairn_not-a-real-token")
    with pytest.raises(MlflowException) as raised:
        MlflowClient().create_experiment(unique_name("refused"))
    assert raised.value.error_code == "UNAUTHENTICATED"


def test_basic_auth_with_the_token_as_password(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", TOKEN)
    name = unique_name("basic")
    experiment_id = MlflowClient().create_experiment(name)
    assert MlflowClient().get_experiment(experiment_id).name == name
