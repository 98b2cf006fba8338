"""Golden data and golden numbers for Cairn's drift statistics.

Writes reference.parquet and current.parquet (20 numerical + 5 categorical columns, numpy
`default_rng` under a fixed seed, drift injected into known columns) and, unless
--skip-evidently is given, evidently.json with what Evidently 0.7's DataDriftPreset says about
them, column by column, plus the dataset verdict and (under "extra") the value of every other
applicable stattest computed by calling Evidently's own stattest objects on the cleaned columns.

    python evidently_golden.py --rows 1000 --out DIR [--seed 20260127] [--skip-evidently]
                               [--bench-repeats K]

With --bench-repeats K the Evidently run is repeated K times after a small warm-up run (which
pays the imports and first-call costs) and the CPU and wall time of each repetition is recorded
under "timing". Files of more than --chunk-rows rows are generated and written chunk by chunk,
one Parquet row group per chunk, so that 10 million rows fit in memory.

Used by crates/cairn/tests/it/drift_golden.rs and by `cargo run -p bench -- --only drift`.
"""

import argparse
import json
import math
import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

NUMERICAL = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
LEVELS_50 = [f"level_{i:02d}" for i in range(50)]


def with_missing(rng, values, share):
    """Replaces a random `share` of a float column by NaN."""
    values = values.astype(float)
    values[rng.random(values.shape[0]) < share] = np.nan
    return values


def with_missing_labels(rng, labels, share):
    """Replaces a random `share` of a label column by None."""
    labels = labels.astype(object)
    labels[rng.random(labels.shape[0]) < share] = None
    return labels


def generate(rng, rows, current):
    """One side of the golden data set. `current` switches the injected drift on.

    Drifted on the current side: num_00 (mean), num_02 (scale), num_05 (spread), num_07 (share),
    num_09 (shares), num_13 (shape), num_15 (mixture weight), cat_0 (shares), cat_3 (a new level).
    """
    shift = 1.0 if current else 0.0
    columns = {}
    columns["num_00"] = rng.normal(0.5 * shift, 1.0, rows)
    columns["num_01"] = rng.normal(5.0, 2.0, rows)
    columns["num_02"] = rng.lognormal(0.0, 0.5, rows) * (1.3 if current else 1.0)
    columns["num_03"] = rng.exponential(1.0, rows)
    columns["num_04"] = rng.uniform(0.0, 100.0, rows)
    columns["num_05"] = rng.normal(0.0, 1.5 if current else 1.0, rows)
    # Poisson counts: an integer column with more than 10 and at most 20 distinct values, so
    # it is numerical but binned one bin per value.
    columns["num_06"] = rng.poisson(6.0, rows).astype(np.int64)
    # Small integer columns (2, 3 and 4 values): categorical for Evidently 0.7.
    columns["num_07"] = (rng.random(rows) < (0.4 if current else 0.3)).astype(np.int64)
    columns["num_08"] = rng.integers(0, 3, rows).astype(np.int64)
    columns["num_09"] = rng.choice(
        np.array([1, 2, 3, 4], dtype=np.int64),
        rows,
        p=[0.1, 0.2, 0.3, 0.4] if current else [0.25, 0.25, 0.25, 0.25],
    )
    # Missing values on both sides, so the cleaned lengths differ (n != m).
    columns["num_10"] = with_missing(rng, rng.normal(0.0, 1.0, rows), 0.08 if current else 0.05)
    # Infinities and missing values: cleaned away like NaN.
    num_11 = with_missing(rng, rng.normal(10.0, 3.0, rows), 0.02)
    num_11[rng.random(rows) < 0.01] = np.inf
    num_11[rng.random(rows) < 0.01] = -np.inf
    columns["num_11"] = num_11
    columns["num_12"] = rng.standard_t(3.0, rows)
    columns["num_13"] = rng.beta(2.0, 3.0 if current else 5.0, rows)
    # Rounded to one decimal: many ties.
    columns["num_14"] = np.round(rng.normal(0.0, 1.0, rows), 1)
    weight = 0.5 if current else 0.2
    mixture = np.where(rng.random(rows) < weight, rng.normal(4.0, 1.0, rows), rng.normal(0.0, 1.0, rows))
    columns["num_15"] = mixture
    # A constant float column.
    columns["num_16"] = np.full(rows, 3.0)
    columns["num_17"] = with_missing(rng, rng.normal(0.0, 1.0, rows), 0.01)
    # A float column with five distinct values.
    columns["num_18"] = rng.choice(np.array([0.5, 1.5, 2.5, 3.5, 4.5]), rows)
    # Large offset, small spread, a shift of 5 % of a standard deviation: no drift.
    columns["num_19"] = rng.normal(1.0e6 + 50.0 * shift, 1.0e3, rows)

    columns["cat_0"] = rng.choice(
        np.array(["red", "green", "blue"], dtype=object), rows, p=[0.5, 0.3, 0.2] if current else [0.3, 0.4, 0.3]
    )
    columns["cat_1"] = rng.choice(np.array(["yes", "no"], dtype=object), rows, p=[0.3, 0.7])
    columns["cat_2"] = with_missing_labels(
        rng, rng.choice(np.array(["a", "b", "c", "d", "e"], dtype=object), rows), 0.03
    )
    cat_3_levels = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]
    cat_3 = rng.choice(np.array(cat_3_levels, dtype=object), rows)
    if current:
        cat_3[rng.random(rows) < 0.02] = "s_new"
    columns["cat_3"] = cat_3
    columns["cat_4"] = rng.choice(np.array(LEVELS_50, dtype=object), rows)
    return pd.DataFrame(columns)


def write_side(path, seed, side, rows, chunk_rows):
    """Writes one side chunk by chunk (one row group per chunk); returns the rows written."""
    writer = None
    written = 0
    chunk = 0
    while written < rows:
        size = min(chunk_rows, rows - written)
        rng = np.random.default_rng([seed, side, chunk])
        frame = generate(rng, size, current=(side == 1))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=size)
        written += size
        chunk += 1
    writer.close()
    return written


def display_names():
    """Evidently's stattest display name -> registered name."""
    from evidently.legacy.calculations.stattests import registry

    names = {}
    for name, by_type in registry._registered_stat_tests.items():
        for stat_test in by_type.values():
            names[stat_test.display_name] = name
    return names


def run_preset(reference, current):
    """Runs DataDriftPreset with tests; returns (snapshot dict, current Dataset)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    current_dataset = Dataset.from_pandas(current, data_definition=DataDefinition())
    reference_dataset = Dataset.from_pandas(reference, data_definition=DataDefinition())
    report = Report([DataDriftPreset()], include_tests=True)
    snapshot = report.run(current_dataset, reference_dataset)
    return snapshot.dict(), current_dataset


def timed(function):
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def preset_results(snapshot, current_dataset):
    """Per-column method, statistic, threshold and verdict, and the dataset verdict."""
    names = display_names()
    tests_by_metric = {}
    for test in snapshot["tests"]:
        tests_by_metric[test["metric_config"]["metric_id"]] = test
    columns = {}
    dataset = None
    for metric in snapshot["metrics"]:
        config = metric["config"]
        test = tests_by_metric.get(metric["id"])
        if config["type"].endswith("ValueDrift"):
            column = config["column"]
            columns[column] = {
                "kind": current_dataset.column(column).type.value,
                "method": names[config["method"]],
                "statistic": finite_or_none(metric["value"]),
                "threshold": config["threshold"],
                "drift": test["status"] == "FAIL",
            }
        elif config["type"].endswith("DriftedColumnsCount"):
            dataset = {
                "count": metric["value"]["count"],
                "share": metric["value"]["share"],
                "drift_share": config["drift_share"],
                # The preset's test passes while share < drift_share.
                "dataset_drift": test["status"] == "FAIL",
            }
    return columns, dataset


def extra_results(reference, current, columns):
    """Every applicable registered stattest, called directly on the cleaned columns."""
    from evidently.legacy.calculations.stattests.registry import get_registered_stattest
    from evidently.legacy.core import ColumnType

    numerical_methods = ["ks", "wasserstein", "psi", "kl_div", "hellinger", "jensenshannon"]
    categorical_methods = ["chisquare", "z", "psi", "kl_div", "hellinger", "jensenshannon"]
    extra = []
    for column, result in columns.items():
        kind = ColumnType(result["kind"])
        methods = numerical_methods if kind == ColumnType.Numerical else categorical_methods
        ref = reference[column].replace([-np.inf, np.inf], np.nan).dropna()
        cur = current[column].replace([-np.inf, np.inf], np.nan).dropna()
        for method in methods:
            stat_test = get_registered_stattest(method, kind)
            # Hellinger drops NaN in place; give every call its own copies.
            outcome = stat_test(ref.copy(), cur.copy(), kind, None)
            extra.append(
                {
                    "column": column,
                    "method": method,
                    "statistic": finite_or_none(outcome.drift_score),
                    "threshold": outcome.actual_threshold,
                    "drift": bool(outcome.drifted),
                }
            )
        if kind == ColumnType.Categorical:
            extra.append(contingency_result(column, ref, cur))
    return extra


def contingency_result(column, ref, cur):
    """scipy's chi2_contingency on the 2 x K table of counts (Cairn's chisquare_contingency)."""
    from scipy.stats import chi2_contingency

    keys = sorted(set(ref.unique()) | set(cur.unique()))
    ref_counts = ref.value_counts()
    cur_counts = cur.value_counts()
    table = np.array([[ref_counts.get(key, 0) for key in keys], [cur_counts.get(key, 0) for key in keys]])
    if len(keys) < 2:
        p_value = 1.0
    else:
        p_value = chi2_contingency(table).pvalue
    return {
        "column": column,
        "method": "chisquare_contingency",
        "statistic": finite_or_none(p_value),
        "threshold": 0.05,
        "drift": bool(p_value < 0.05),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=20260127)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--bench-repeats", type=int, default=0)
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    reference_path = os.path.join(args.out, "reference.parquet")
    current_path = os.path.join(args.out, "current.parquet")
    write_side(reference_path, args.seed, 0, args.rows, args.chunk_rows)
    write_side(current_path, args.seed, 1, args.rows, args.chunk_rows)
    if args.skip_evidently:
        return

    import evidently
    import scipy

    timing = None
    if args.bench_repeats > 0:
        # Warm-up: pays imports and first-call costs on a small slice.
        warm_reference = pd.read_parquet(reference_path).head(200)
        warm_current = pd.read_parquet(current_path).head(200)
        run_preset(warm_reference, warm_current)
        runs = []
        for _ in range(args.bench_repeats):
            (frames, cpu_read, wall_read) = timed(
                lambda: (pd.read_parquet(reference_path), pd.read_parquet(current_path))
            )
            (_, cpu, wall) = timed(lambda: run_preset(frames[0], frames[1]))
            runs.append({"cpu_s": cpu, "wall_s": wall, "read_cpu_s": cpu_read, "read_wall_s": wall_read})
        timing = {"runs": runs}

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    snapshot, current_dataset = run_preset(reference, current)
    columns, dataset = preset_results(snapshot, current_dataset)
    output = {
        "rows": args.rows,
        "seed": args.seed,
        "evidently_version": evidently.__version__,
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "columns": columns,
        "dataset": dataset,
        "extra": extra_results(reference, current, columns),
    }
    if timing is not None:
        output["timing"] = timing
    with open(os.path.join(args.out, "evidently.json"), "w") as handle:
        json.dump(output, handle, indent=1)


if __name__ == "__main__":
    main()
