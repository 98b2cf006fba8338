"""Cairn's Python model worker: loads one MLflow model with mlflow.pyfunc and answers prediction
requests, one JSON document per line on stdin, one per line on stdout.

Request:  {"id": 7, "columns": ["a", "b"] | null, "rows": [[1, 2], ...]}
Answer:   {"id": 7, "predictions": [...]}  or  {"id": 7, "error": "..."}
The first line written is {"ready": true, "flavors": [...]} once the model is loaded, or
{"ready": false, "error": "..."}.
"""

import json
import sys
import traceback


def to_jsonable(value):
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main():
    out = sys.stdout
    # Anything the model prints must not corrupt the protocol.
    sys.stdout = sys.stderr
    try:
        import mlflow.pyfunc
        import pandas as pd

        model = mlflow.pyfunc.load_model(sys.argv[1])
        flavors = sorted(model.metadata.flavors.keys())
        schema = model.metadata.get_input_schema()
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
    except Exception as error:  # noqa: BLE001 - reported to Cairn, which refuses the deploy
        out.write(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": True, "flavors": flavors, "columns": names}) + "\n")
    out.flush()
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError as error:
            out.write(json.dumps({"id": None, "error": f"bad request line: {error}"}) + "\n")
            out.flush()
            continue
        try:
            columns = request.get("columns") or names
            frame = pd.DataFrame(request["rows"], columns=columns)
            predictions = to_jsonable(model.predict(frame))
            answer = {"id": request.get("id"), "predictions": predictions}
        except Exception as error:  # noqa: BLE001 - becomes the caller's 400
            answer = {"id": request.get("id"), "error": f"{type(error).__name__}: {error}"}
            traceback.print_exc()
        out.write(json.dumps(answer, allow_nan=True) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
