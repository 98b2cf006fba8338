"""Shared fixtures for the MLflow client compatibility scenarios.

These tests drive the unmodified `mlflow` Python client against a tracking server given by
MLFLOW_TRACKING_URI (Cairn in CI; a stock `mlflow server --serve-artifacts` to check that the
tests assert MLflow's real behaviour). One server serves the whole session, so every test
creates its own uniquely named experiments and never assumes an empty server.
"""

import os
import re
import sys

# Set before mlflow is imported: no telemetry (the machine has no network), and fail fast
# instead of retrying a 5xx seven times with backoff (a server bug must not look like a hang).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
# The tests' own modules (helpers.py) are importable whatever the working directory.
sys.path.insert(0, os.path.dirname(__file__))

import mlflow  # noqa: E402
import pytest  # noqa: E402
from helpers import unique_name  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", "")


def pytest_configure(config):
    if not TRACKING_URI:
        raise pytest.UsageError(
            "MLFLOW_TRACKING_URI is not set: these tests need a running tracking server, e.g. "
            "MLFLOW_TRACKING_URI=http://127.0.0.1:5000 (Cairn, or `mlflow server --serve-artifacts`)"
        )
    if not TRACKING_URI.startswith(("http://", "https://")):
        raise pytest.UsageError(
            f"MLFLOW_TRACKING_URI={TRACKING_URI!r} must be an http(s) URL of a tracking server"
        )
    mlflow.set_tracking_uri(TRACKING_URI)


@pytest.fixture
def client() -> MlflowClient:
    return MlflowClient(tracking_uri=TRACKING_URI)


@pytest.fixture
def tracking_uri() -> str:
    return TRACKING_URI.rstrip("/")


@pytest.fixture
def experiment_id(client, request) -> str:
    """A fresh experiment for one test, also made the active experiment."""
    name = unique_name(re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:40])
    exp_id = client.create_experiment(name)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


@pytest.fixture(autouse=True)
def _no_active_run_leaks():
    """Ends any run a failing test left active, so the next test starts clean."""
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
