"""How many training rows the default candidates need: the learning curve behind ``max_training_rows``'s default.

    .venv/bin/python bench/learning_curve.py [--sizes 1000 ... 1000000] [--test-rows 100000] [--write-docs]

The project's sample data (``sample://house-prices``, the generator of components/ingest_data/samples.py) with
``max(sizes) + test_rows`` rows: the last ``test_rows`` are the held-out set, and each size trains on the first
``n`` rows (the rows are independent draws, so the first ``n`` are a random sample, and the curve compares nested
sets). Per task (regression on ``price``, classification on ``energy_label``), per default candidate of the
training pipeline (pipelines/training_pipeline.py ``DEFAULT_CANDIDATES``), per size: the model train_model builds
(``candidate.build_pipeline`` with ``candidate.fitted_hyperparameters``) is fitted in its own process and scored
on the held-out set with the gate's metric (r2, f1_macro); printed are the score, its gap to the score at the
largest size, the fit's wall time and the process's peak memory (the kernel's figure for that child, ``wait4``,
imports and data included). A fit that takes longer than ``--max-fit-seconds`` at one size is not run at larger
sizes (printed as skipped). Last line: one JSON line. ``--write-docs`` writes the table into
docs/benchmarks.md ("Learning curve: max_training_rows").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

SIZES = (1_000, 5_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000)
TARGETS = {"regression": "price", "classification": "energy_label"}
SEED = 7


def fit_and_score(task: str, candidate: dict, rows: int, test_rows: int, total: int) -> dict:
    """In a child: the sample data, the candidate fitted on its first ``rows`` rows, scored on the last ones."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    # The candidates' own defaults are what is measured; lbfgs's advice to scale or iterate more is noise here.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    from components._common.scoring import PRIMARY_METRIC, score
    from components.ingest_data.samples import house_prices
    from components.train_model.candidate import build_pipeline, fitted_hyperparameters
    from model_bundle import infer_feature_types

    frame = house_prices(total, SEED)
    target = TARGETS[task]
    other = [name for name in TARGETS.values() if name != target]  # the other task's target is no feature
    frame = frame.drop(columns=other)
    train, test = frame.iloc[:rows], frame.iloc[len(frame) - test_rows :]
    train = train[train[target].notna()]
    features = infer_feature_types(train, exclude=[target])
    hyperparameters = fitted_hyperparameters(candidate["model_type"], candidate["hyperparameters"], len(train))
    model = build_pipeline(features, task, candidate["model_type"], hyperparameters, seed=42)
    x = train[[feature["name"] for feature in features]]
    y = train[target].astype(str) if task == "classification" else train[target].astype("float64")
    started = time.perf_counter()
    model.fit(x, y)
    seconds = time.perf_counter() - started
    truth = test[target].astype(str) if task == "classification" else test[target]
    metric = PRIMARY_METRIC[task]
    return {"metric": metric, "score": score(task, truth, model.predict(test[x.columns]))[metric], "seconds": seconds}


def measure(task: str, candidate: dict, rows: int, test_rows: int, total: int) -> dict:
    """``fit_and_score`` in a forked child; its peak RSS is the kernel's figure for that child alone."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one measurement, its result as JSON on the pipe
        os.close(read)
        try:
            result = fit_and_score(task, candidate, rows, test_rows, total)
        except BaseException as error:  # reported to the parent, which goes on with the next size
            result = {"error": f"{type(error).__name__}: {error}"}
        with os.fdopen(write, "w") as stream:
            json.dump(result, stream)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as stream:
        text = stream.read()
    _, status, usage = os.wait4(pid, 0)
    result = json.loads(text) if text else {"error": f"child exited with status {status}"}
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--test-rows", type=int, default=100_000)
    parser.add_argument("--max-fit-seconds", type=float, default=300.0)
    parser.add_argument(_docs.WRITE_DOCS_FLAG, action="store_true")
    args = parser.parse_args()
    from pipelines.training_pipeline import DEFAULT_CANDIDATES

    sizes = sorted(args.sizes)
    total = sizes[-1] + args.test_rows
    results = []
    for task in TARGETS:
        for candidate in DEFAULT_CANDIDATES:
            too_slow = False
            for rows in sizes:
                entry = {"task": task, "model_type": candidate["model_type"], "rows": rows}
                if too_slow:
                    entry["skipped"] = f"a smaller size took over {args.max_fit_seconds:g} s to fit"
                else:
                    entry |= measure(task, candidate, rows, args.test_rows, total)
                    too_slow = entry.get("seconds", 0.0) > args.max_fit_seconds
                results.append(entry)
                print(json.dumps(entry), file=sys.stderr, flush=True)
    header, rows = table(results)
    print(_docs.markdown_table(header, rows))
    print(json.dumps({"sizes": sizes, "test_rows": args.test_rows, "results": results}))
    if args.write_docs:
        text = (
            f"{_docs.markdown_table(header, rows)}\n\nHeld-out set: the last {args.test_rows:,} rows of "
            f"`sample://house-prices` with {total:,} rows (seed {SEED}); each size trains on the first n rows. "
            "Gap: the score's distance to the largest size's (the same metric, higher is better)."
        )
        _docs.write_section("Learning curve: max_training_rows", text, _docs.command_line())


def table(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per task, candidate and size: score, gap to the largest fitted size, fit seconds, peak MB."""
    best = {}
    for entry in results:
        if "score" in entry:
            best[entry["task"], entry["model_type"]] = entry["score"]  # sizes ascend: the last one fitted wins
    header = ["task", "model", "training rows", "score", "gap to largest", "fit s", "peak MB"]
    rows = []
    for entry in results:
        cells = [entry["task"], entry["model_type"], f"{entry['rows']:,}"]
        if "score" in entry:
            gap = best[entry["task"], entry["model_type"]] - entry["score"]
            cells += [
                f"{entry['metric']} {entry['score']:.4f}",
                f"{gap:+.4f}",
                f"{entry['seconds']:.1f}",
                f"{entry['peak_rss_mb']:,.0f}",
            ]
        else:
            cells += [entry.get("skipped") or entry.get("error", ""), "", "", ""]
        rows.append(cells)
    return header, rows


if __name__ == "__main__":
    main()
