"""Helpers shared by the MLflow client scenarios (plain functions; fixtures live in conftest)."""

import os
import time
import uuid

import requests
from mlflow.exceptions import MlflowException


def unique_name(prefix: str) -> str:
    """Returns a name that no other test, nor an earlier session on the same server, uses."""
    return f"cairn-{prefix}-{uuid.uuid4().hex[:12]}"


def next_millisecond() -> None:
    """Waits until the wall clock has moved to a new millisecond, so that objects created
    before and after have distinct creation timestamps (a fast server can create several
    within one millisecond, and the tie-break order is not what such a test checks)."""
    start = int(time.time() * 1000)
    while int(time.time() * 1000) == start:
        time.sleep(0.0005)


def base_url() -> str:
    return os.environ["MLFLOW_TRACKING_URI"].rstrip("/")


def rest(method: str, path: str, **kwargs) -> requests.Response:
    """Sends one raw REST call, e.g. rest("POST", "/api/2.0/mlflow/runs/log-batch", json=...).

    Used where the client would hide the server's answer (it splits big batches itself) or
    where the wire shape itself is the contract.
    """
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("Authorization", f"Bearer {token}")
        kwargs["headers"] = headers
    return requests.request(method, base_url() + path, timeout=60, **kwargs)


def error_code(exc: MlflowException) -> str:
    """The MLflow error code name carried by a client exception (e.g. RESOURCE_DOES_NOT_EXIST)."""
    return exc.error_code


def assert_error_response(response: requests.Response, status: int, code: str) -> dict:
    """Checks an MLflow JSON error answer and returns its body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body
