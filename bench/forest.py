"""The random forest candidate on many rows, with and without ``FOREST_ROWS_PER_TREE``, side by side in one run.

    .venv/bin/python bench/forest.py [--rows 500000] [--test-rows 100000] [--task regression] [--write-docs]

The training pipeline's default random forest (pipelines/training_pipeline.py ``DEFAULT_CANDIDATES``) fitted on
``--rows`` rows of the project's sample data (``sample://house-prices``, seed 7) and scored on the next
``--test-rows`` with the gate's metric, twice, each in its own process: as train_model fits it now (each tree on a
bootstrap sample of ``FOREST_ROWS_PER_TREE`` rows, ``candidate.fitted_hyperparameters``) and as scikit-learn's
default would (each tree on as many rows as the data, the baseline). Printed per fit: the score, fit and predict
wall time, the pickled model's size and the process's peak memory (``VmHWM``, imports and data included); last,
one JSON line. ``--write-docs`` writes the table into docs/benchmarks.md ("Random forest: rows per tree").
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

TARGETS = {"regression": "price", "classification": "energy_label"}
SEED = 7
VARIANTS = {  # name -> what the variant fits with
    "rows per tree capped (train_model now)": "capped",
    "every row per tree (scikit-learn's default)": "every-row",
}


def fit_once(task: str, variant: str, rows: int, test_rows: int) -> dict:
    """In the child process: the default random forest fitted on ``rows`` rows as ``variant``, scored."""
    from components._common.scoring import PRIMARY_METRIC, score
    from components.ingest_data.samples import house_prices
    from components.train_model.candidate import build_pipeline, fitted_hyperparameters
    from model_bundle import infer_feature_types
    from pipelines.training_pipeline import DEFAULT_CANDIDATES

    forest = next(c for c in DEFAULT_CANDIDATES if c["model_type"] == "random_forest")
    frame = house_prices(rows + test_rows, SEED)
    target = TARGETS[task]
    frame = frame.drop(columns=[name for name in TARGETS.values() if name != target])
    train, test = frame.iloc[:rows], frame.iloc[rows:]
    train = train[train[target].notna()]
    features = infer_feature_types(train, exclude=[target])
    hyperparameters = dict(forest["hyperparameters"])
    hyperparameters = (
        fitted_hyperparameters("random_forest", hyperparameters, len(train))
        if variant == "capped"
        else hyperparameters | {"max_samples": None}
    )
    model = build_pipeline(features, task, "random_forest", hyperparameters, seed=42)
    x = train[[feature["name"] for feature in features]]
    y = train[target].astype(str) if task == "classification" else train[target].astype("float64")
    started = time.perf_counter()
    model.fit(x, y)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    predicted = model.predict(test[x.columns])
    predict_s = time.perf_counter() - started
    truth = test[target].astype(str) if task == "classification" else test[target]
    metric = PRIMARY_METRIC[task]
    return {
        "variant": variant,
        "max_samples": hyperparameters.get("max_samples"),
        "metric": metric,
        "score": score(task, truth, predicted)[metric],
        "fit_s": fit_s,
        "predict_s": predict_s,
        "model_mb": len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20,
        "peak_rss_mb": _docs.peak_rss_mb(),
    }


def measure(task: str, variant: str, rows: int, test_rows: int) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--task", task, "--rows", str(rows)]
    command += ["--test-rows", str(test_rows)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    if done.returncode:
        raise SystemExit(f"the {variant} fit failed (exit status {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--test-rows", type=int, default=100_000)
    parser.add_argument("--task", choices=sorted(TARGETS), default="regression")
    parser.add_argument("--child", choices=sorted(VARIANTS.values()), help=argparse.SUPPRESS)
    parser.add_argument(_docs.WRITE_DOCS_FLAG, action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fit_once(args.task, args.child, args.rows, args.test_rows)))
        return
    from components.train_model.candidate import FOREST_ROWS_PER_TREE

    results = {}
    for name, variant in VARIANTS.items():
        print(f"{args.task}, {args.rows:,} rows: {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(args.task, variant, args.rows, args.test_rows)
    header = ["random forest", "max_samples", "score", "fit s", f"predict s ({args.test_rows:,} rows)"]
    header += ["model MB", "peak MB"]
    rows = [
        [
            name,
            "all rows" if r["max_samples"] is None else f"{r['max_samples']:.3g}",
            f"{r['metric']} {r['score']:.4f}",
            f"{r['fit_s']:.1f}",
            f"{r['predict_s']:.2f}",
            f"{r['model_mb']:,.0f}",
            f"{r['peak_rss_mb']:,.0f}",
        ]
        for name, r in results.items()
    ]
    table = _docs.markdown_table(header, rows)
    print(table)
    print(json.dumps({"task": args.task, "rows": args.rows, "rows_per_tree": FOREST_ROWS_PER_TREE, **results}))
    if args.write_docs:
        text = (
            f"{table}\n\nThe training pipeline's default random forest ({args.task}, `sample://house-prices`, "
            f"{args.rows:,} training rows, scored on the next {args.test_rows:,}), each fit in its own process; "
            f"`FOREST_ROWS_PER_TREE` is {FOREST_ROWS_PER_TREE:,}."
        )
        _docs.write_section("Random forest: rows per tree", text, _docs.command_line())


if __name__ == "__main__":
    main()
