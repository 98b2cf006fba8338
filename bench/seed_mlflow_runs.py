"""Copies runs exported from Cairn into a stock MLflow server's SQLite database, for the UI
scenario of cairn-bench (`--only ui`).

Seeding 100,000 runs through MLflow's REST API would take most of an hour at its measured ~35
runs/s, so the same runs (ids, names, start times, params, metrics, tags) are written straight into
the tables MLflow's own SQLAlchemy store reads: `runs`, `params`, `tags`, `metrics` and
`latest_metrics`. The experiment must exist (created through the REST API); the server may be
running (SQLite's locking serialises us with it; it caches no runs).

    python seed_mlflow_runs.py DB EXPERIMENT_ID RUNS.jsonl

Each line of RUNS.jsonl is one run as MLflow's `runs/search` answers it (`info` and `data`).
Prints the number of runs written.
"""

import json
import sqlite3
import sys


def main() -> int:
    db_path, experiment_id, runs_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conn = sqlite3.connect(db_path, timeout=60)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    required = {"run_uuid", "name", "status", "start_time", "lifecycle_stage", "experiment_id"}
    if not required <= columns:
        print(f"unexpected MLflow schema: runs has {sorted(columns)}", file=sys.stderr)
        return 2
    runs, params, tags, metrics = [], [], [], []
    with open(runs_path, encoding="utf-8") as lines:
        for line in lines:
            run = json.loads(line)
            info, data = run["info"], run.get("data", {})
            run_id = info["run_id"]
            row = {
                "run_uuid": run_id,
                "name": info.get("run_name", ""),
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": info.get("user_id", ""),
                "status": info.get("status", "RUNNING"),
                "start_time": int(info["start_time"]),
                "end_time": int(info["end_time"]) if info.get("end_time") else None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
                "experiment_id": experiment_id,
                "deleted_time": None,
            }
            runs.append(tuple(row[name] for name in sorted(columns) if name in row))
            params += [(p["key"], p["value"], run_id) for p in data.get("params", [])]
            tags += [(t["key"], t["value"], run_id) for t in data.get("tags", [])]
            metrics += [
                (m["key"], float(m["value"]), int(m["timestamp"]), run_id, int(m.get("step", 0)), 0)
                for m in data.get("metrics", [])
            ]
    names = [name for name in sorted(columns) if name in row]
    with conn:
        conn.executemany(
            f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            runs,
        )
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            metrics,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            metrics,
        )
    conn.close()
    print(len(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
