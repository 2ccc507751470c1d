"""Each default candidate fitted by train_model and scored on the test rows with one core and with every core the
process may use, side by side in one run.

    .venv/bin/python bench/cores.py [--rows 500000] [--test-rows 1000000] [--task regression] [--write-docs]

The training pipeline's default candidates (pipelines/training_pipeline.py ``DEFAULT_CANDIDATES``) on ``--rows``
rows of the project's sample data (``sample://house-prices``, seed 7): ``train()`` as train_model runs it (the
held-out validation fit, the final fit, the training scores), then the fitted model's predictions on the next
``--test-rows`` rows as evaluate_model and gate_model make them (``scoring.predict_in_chunks``). "one core" is the
code before the candidates fitted and the chunks scored on every core (``joblib.cpu_count`` held at 1: a random
forest builds one tree at a time, the chunks are scored one after another; HistGradientBoosting's OpenMP threads
are the same in both); "every core" is what the steps do now. Printed: wall seconds of each, the speed-up, and
whether the fitted models (pickled) and the predictions are identical; last, one JSON line. ``--write-docs`` writes
the table into docs/benchmarks.md ("Scoring and fitting on the pod's cores").
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

TARGETS = {"regression": "price", "classification": "energy_label"}
SEED = 7


def run(task: str, rows: int, test_rows: int) -> dict:
    import joblib
    import numpy as np

    from components._common.scoring import predict_in_chunks
    from components.ingest_data.samples import house_prices
    from components.train_model.logic import train
    from pipelines.training_pipeline import DEFAULT_CANDIDATES

    cores = joblib.cpu_count()
    target = TARGETS[task]
    frame = house_prices(rows + test_rows, SEED)
    frame = frame.drop(columns=[name for name in TARGETS.values() if name != target])
    data, test = frame.iloc[:rows], frame.iloc[rows:]
    results = {}
    real_cpu_count = joblib.cpu_count
    try:
        for candidate in DEFAULT_CANDIDATES:
            model_type = candidate["model_type"]
            measured = {}
            for label, allowed in (("one core", 1), ("every core", cores)):
                joblib.cpu_count = lambda allowed=allowed: allowed
                print(f"{task}, {rows:,} rows: {model_type} on {label} ...", file=sys.stderr, flush=True)
                started = time.perf_counter()
                model, card = train(
                    data, target, task, model_type=model_type, hyperparameters=dict(candidate["hyperparameters"])
                )
                fit_s = time.perf_counter() - started
                features = test[[feature["name"] for feature in card.features]]
                started = time.perf_counter()
                predicted = predict_in_chunks(model.predict, features)
                measured[label] = {
                    "fit_s": fit_s,
                    "score_s": time.perf_counter() - started,
                    "model": pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
                    "predicted": predicted,
                }
            one, every = measured["one core"], measured["every core"]
            results[model_type] = {
                "fit_s": {"one_core": one["fit_s"], "every_core": every["fit_s"]},
                "score_s": {"one_core": one["score_s"], "every_core": every["score_s"]},
                "model_identical": one["model"] == every["model"],
                "predictions_identical": bool(np.array_equal(one["predicted"], every["predicted"])),
            }
    finally:
        joblib.cpu_count = real_cpu_count
    return {"task": task, "rows": rows, "test_rows": test_rows, "cores": cores, "candidates": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--test-rows", type=int, default=1_000_000)
    parser.add_argument("--task", choices=sorted(TARGETS), default="regression")
    parser.add_argument(_docs.WRITE_DOCS_FLAG, action="store_true")
    args = parser.parse_args()
    result = run(args.task, args.rows, args.test_rows)
    cores = result["cores"]
    header = [
        "candidate",
        "train() s, one core",
        f"train() s, {cores} cores",
        f"scoring s ({args.test_rows:,} rows), one core",
        f"scoring s, {cores} cores",
        "same model and predictions",
    ]
    rows = [
        [
            name,
            f"{r['fit_s']['one_core']:.1f}",
            f"{r['fit_s']['every_core']:.1f} ({r['fit_s']['one_core'] / r['fit_s']['every_core']:.2f}x)",
            f"{r['score_s']['one_core']:.1f}",
            f"{r['score_s']['every_core']:.1f} ({r['score_s']['one_core'] / r['score_s']['every_core']:.2f}x)",
            "yes" if r["model_identical"] and r["predictions_identical"] else "NO",
        ]
        for name, r in result["candidates"].items()
    ]
    table = _docs.markdown_table(header, rows)
    print(table)
    print(json.dumps(result))
    if args.write_docs:
        text = (
            f"{table}\n\nThe training pipeline's default candidates ({args.task}, `sample://house-prices`, "
            f"{args.rows:,} rows given to train_model's `train()`, scored on the next {args.test_rows:,} with "
            "`scoring.predict_in_chunks`), in one process; one core is `joblib.cpu_count` held at 1, the code "
            'before the change. "Same": the pickled models and the predictions are equal byte for byte.\n\n'
            "A random forest's trees are built and walked in threads that free the GIL, so its `train()` (the "
            "held-out fit, the final fit, the training scores) and its scoring gain most; HistGradientBoosting "
            "already fits on every core (OpenMP) and gains in scoring only; a linear model's scoring is mostly "
            "pandas work that holds the GIL, and gains nothing."
        )
        _docs.write_section("Scoring and fitting on the pod's cores", text, _docs.command_line())


if __name__ == "__main__":
    main()
