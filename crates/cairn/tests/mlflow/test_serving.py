"""Serving with the real client: scikit-learn models exported with skl2onnx and logged with
`mlflow.onnx.log_model(..., registered_model_name=...)` are deployed through Cairn's native API
and answer over the MLflow scoring protocol and the Open Inference Protocol exactly as
scikit-learn does. Cairn-only (skipped against a stock MLflow server)."""

import mlflow
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import rest, unique_name


def _cairn() -> bool:
    try:
        return rest("GET", "/api/v1/openapi.json").status_code == 200
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _cairn(), reason="deployments are a Cairn feature")

skl2onnx = pytest.importorskip("skl2onnx")


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=15, max_depth=5, random_state=3),
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
    ],
    ids=["logistic-regression", "random-forest", "scaler-pipeline"],
)
def test_onnx_model_deployed_predicts_like_scikit_learn(experiment_id, estimator):
    X, y = make_classification(n_samples=400, n_features=6, random_state=11)
    X = X.astype(np.float32)
    estimator.fit(X[:300], y[:300])
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    onx = skl2onnx.to_onnx(estimator, X[:1], options={id(final): {"zipmap": False}})
    name = unique_name("served")
    with mlflow.start_run():
        info = mlflow.onnx.log_model(onx, name="model", registered_model_name=name)
    assert int(info.registered_model_version) == 1

    deployment = name.lower().replace("_", "-")[:60]
    created = rest(
        "POST",
        "/api/v1/deployments",
        json={"name": deployment, "environment": "test", "routes": [{"model": name, "version": 1}]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["routes"][0]["runtime"] == "onnx"

    rows = X[300:340]
    columns = [f"x{i}" for i in range(6)]
    scored = rest(
        "POST",
        f"/serve/{deployment}/invocations",
        json={"dataframe_split": {"columns": columns, "data": rows.tolist()}},
    )
    assert scored.status_code == 200, scored.text
    assert scored.headers["x-cairn-model-version"] == f"{name}/1"
    predictions = scored.json()["predictions"]
    assert [p["label"] for p in predictions] == estimator.predict(rows).tolist()
    probabilities = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(probabilities, estimator.predict_proba(rows), atol=1e-5)

    inferred = rest(
        "POST",
        f"/v2/models/{deployment}/infer",
        json={"inputs": [{"name": "X", "shape": list(rows.shape), "datatype": "FP32", "data": rows.ravel().tolist()}]},
    )
    assert inferred.status_code == 200, inferred.text
    outputs = {o["name"]: o for o in inferred.json()["outputs"]}
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"]).reshape(-1, 2),
        estimator.predict_proba(rows),
        atol=1e-5,
    )

    bad = rest("POST", f"/serve/{deployment}/invocations", json={"instances": [[1.0, "high"] + [0.0] * 4]})
    assert bad.status_code == 400
    assert bad.json()["message"] == "column '1', row 0: expected a number (float), got \"high\""
    assert rest("DELETE", f"/api/v1/deployments/{deployment}").status_code == 204


def test_sklearn_model_is_served_by_a_python_worker(experiment_id):
    """A non-ONNX flavour (a scikit-learn model logged with mlflow.sklearn) is served by a
    managed Python worker behind the same endpoint, and predicts like the in-memory model."""
    X, y = make_classification(n_samples=300, n_features=5, random_state=5)
    model = LogisticRegression(max_iter=500).fit(X[:200], y[:200])
    name = unique_name("pyfunc")
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name)

    deployment = name.lower()[:60]
    created = rest(
        "POST",
        "/api/v1/deployments",
        json={"name": deployment, "environment": "test", "routes": [{"model": name, "version": 1}]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["routes"][0]["runtime"] == "pyfunc"

    rows = X[200:230]
    scored = rest("POST", f"/serve/{deployment}/invocations", json={"inputs": rows.tolist()})
    assert scored.status_code == 200, scored.text
    assert scored.json()["predictions"] == model.predict(rows).tolist()
    split = rest(
        "POST",
        f"/serve/{deployment}/invocations",
        json={"dataframe_split": {"data": rows[:3].tolist()}},
    )
    assert split.status_code == 200, split.text
    assert split.json()["predictions"] == model.predict(rows[:3]).tolist()
    metadata = rest("GET", f"/v2/models/{deployment}").json()
    assert metadata["platform"] == "mlflow_pyfunc"
    # The model's own refusal comes back as the caller's 400, not a 500.
    bad = rest("POST", f"/serve/{deployment}/invocations", json={"inputs": [[1.0, 2.0]]})
    assert bad.status_code == 400, bad.text
    assert "the model refused the input" in bad.json()["message"]
    assert rest("DELETE", f"/api/v1/deployments/{deployment}").status_code == 204
