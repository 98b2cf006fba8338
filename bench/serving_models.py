"""Prepares the serving scenario of cairn-bench (`--only serving`) and measures onnxruntime.

    python serving_models.py <dir> [--calls 5000] [--rows 256]

Run by cairn-bench with $CAIRN_TEST_PYTHON (a venv with mlflow 3.17.2, scikit-learn, skl2onnx, onnx,
onnxruntime). Into <dir> it writes:

- lr.onnx, rf.onnx: LogisticRegression(max_iter=1000) and RandomForestClassifier(100 trees,
  max_depth=12, random_state=7) trained on make_classification(20000 x 20, n_informative=10,
  n_redundant=5, random_state=7) (80/20 split, seed 7), exported with skl2onnx (zipmap False,
  input "X" float32 [N, 20], target opset {"": 17, "ai.onnx.ml": 3});
- mlflow.db and artifacts/: an MLflow SQLite tracking store in which both models are logged with
  mlflow.sklearn.log_model (column signature f00..f19, double; pyfunc_predict_fn="predict_proba", so
  `mlflow models serve` answers probabilities, from which labels are the argmax) and registered as
  bench-lr/1 and bench-rf/1;
- rows.json: the first --rows test rows (float64, as sent in request bodies) and, per model,
  onnxruntime's labels and probabilities for them.

Then it times single-thread onnxruntime (intra/inter-op threads 1): 200 warm-up calls, then --calls
one-row session.run calls (p50, p99, min in microseconds), and a 1000-row batch (median of 20 calls,
per row). The last line of stdout is one JSON object; progress goes to stderr.
"""

import argparse
import json
import pathlib
import platform
import sys
import time

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
import numpy as np
import onnxruntime as ort
import pandas as pd
import sklearn
import skl2onnx
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

OPSET = {"": 17, "ai.onnx.ml": 3}
WARM_UP = 200
BATCH = 1000
BATCH_REPEATS = 20


def progress(message):
    print(f"[serving_models.py] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values, p):
    """Nearest rank, as cairn-bench computes it."""
    rank = max(1, min(len(sorted_values), int(np.ceil(p / 100.0 * len(sorted_values)))))
    return sorted_values[rank - 1]


def time_onnxruntime(path, rows32, calls):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    singles = [rows32[i : i + 1] for i in range(len(rows32))]
    for i in range(WARM_UP):
        session.run(None, {name: singles[i % len(singles)]})
    times = []
    clock = time.perf_counter_ns
    for i in range(calls):
        row = singles[i % len(singles)]
        started = clock()
        session.run(None, {name: row})
        times.append((clock() - started) / 1000.0)
    times.sort()
    batch = np.ascontiguousarray(np.resize(rows32, (BATCH, rows32.shape[1])))
    session.run(None, {name: batch})
    batch_times = []
    for _ in range(BATCH_REPEATS):
        started = clock()
        session.run(None, {name: batch})
        batch_times.append((clock() - started) / 1000.0)
    batch_times.sort()
    labels, probabilities = session.run(None, {name: rows32})
    return {
        "row_p50_us": percentile(times, 50),
        "row_p99_us": percentile(times, 99),
        "row_min_us": times[0],
        "calls": calls,
        "batch_rows": BATCH,
        "batch_per_row_us": percentile(batch_times, 50) / BATCH,
        "batch_calls": len(batch_times),
        "labels": [int(label) for label in labels],
        "probabilities": probabilities.astype(float).tolist(),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=256)
    args = parser.parse_args()
    out = args.dir.resolve()
    out.mkdir(parents=True, exist_ok=True)

    X, y = make_classification(
        n_samples=20000, n_features=20, n_informative=10, n_redundant=5, random_state=7
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=7)
    columns = [f"f{i:02d}" for i in range(X.shape[1])]
    train = pd.DataFrame(X_train, columns=columns)
    test = pd.DataFrame(X_test, columns=columns)
    rows = X_test[: args.rows]
    rows32 = rows.astype(np.float32)

    tracking_uri = f"sqlite:///{out / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = mlflow.create_experiment(
        "cairn-bench-serving", artifact_location=(out / "artifacts").as_uri()
    )
    models = {
        "lr": ("bench-lr", LogisticRegression(max_iter=1000), {}),
        "rf": (
            "bench-rf",
            RandomForestClassifier(n_estimators=100, max_depth=12, random_state=7),
            {"skops_trusted_types": ["sklearn.tree._tree.Tree"]},
        ),
    }
    result = {
        "tracking_uri": tracking_uri,
        "columns": columns,
        "rows": rows.tolist(),
        "versions": {
            "python": platform.python_version(),
            "mlflow": mlflow.__version__,
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnxruntime": ort.__version__,
        },
        "models": {},
    }
    for key, (registered, model, extra) in models.items():
        progress(f"training {registered}")
        model.fit(train, y_train)
        accuracy = float(model.score(test, y_test))
        onx = to_onnx(
            model,
            X_train[:1].astype(np.float32),
            options={id(model): {"zipmap": False}},
            target_opset=OPSET,
        )
        path = out / f"{key}.onnx"
        path.write_bytes(onx.SerializeToString())
        progress(f"logging and registering {registered} (accuracy {accuracy:.3f})")
        with mlflow.start_run(experiment_id=experiment_id, run_name=registered):
            mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=test.iloc[:2],
                signature=infer_signature(test.iloc[:2], model.predict_proba(test.iloc[:2])),
                pyfunc_predict_fn="predict_proba",
                registered_model_name=registered,
                **extra,
            )
        progress(f"timing onnxruntime on {path.name}")
        timing = time_onnxruntime(path, rows32, args.calls)
        result["models"][key] = {
            "registered_model": registered,
            "model_uri": f"models:/{registered}/1",
            "onnx": str(path),
            "onnx_bytes": path.stat().st_size,
            "input": onx.graph.input[0].name,
            "test_accuracy": accuracy,
            "onnxruntime": timing,
        }
        progress(
            f"{registered}: onnxruntime 1 row p50 {timing['row_p50_us']:.1f} us, "
            f"batch {timing['batch_per_row_us']:.3f} us/row"
        )
    (out / "rows.json").write_text(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
