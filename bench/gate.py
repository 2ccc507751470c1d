"""Speed and memory of the gate's paired bootstrap and fairness gaps, by test-set size and task, beside a baseline.

    .venv/bin/python bench/gate.py [--rows 1000 10000 100000 1000000] [--samples 1000] [--write-docs]

Each size runs in a fresh process (so peak RSS is that size's own) and prints one line: rows, task, the seconds of
the paired bootstrap, of the fairness gaps and of the baseline (scikit-learn's metric called on each resample's rows),
and peak RSS in MB; last, one JSON line with every figure. ``--write-docs`` also writes the table into
docs/benchmarks.md ("Gate bootstrap").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

METRICS = {"regression": "r2", "classification": "f1_macro"}
GROUPS = ("a", "b", "c")
# The baseline, scikit-learn's metric called on each resample's rows, is timed on this many resamples and scaled.
BASELINE_RESAMPLES = 20


def measure(rows: int, task: str, samples: int) -> dict:
    import numpy as np
    from sklearn.metrics import f1_score, r2_score

    from components._common.bootstrap import paired_bootstrap
    from components._common.fairness_bootstrap import resampled_gaps

    rng = np.random.default_rng(0)
    if task == "regression":
        truth = rng.normal(100, 20, rows)
        challenger, champion = truth + rng.normal(0, 5, rows), truth + rng.normal(0, 6, rows)
    else:
        labels = np.array(["a", "b", "c", "d"])
        truth = labels[rng.integers(0, 4, rows)]
        challenger = np.where(rng.random(rows) < 0.8, truth, labels[rng.integers(0, 4, rows)])
        champion = np.where(rng.random(rows) < 0.75, truth, labels[rng.integers(0, 4, rows)])
    groups = np.asarray(GROUPS)[rng.integers(0, len(GROUPS), rows)]
    started = time.perf_counter()
    paired_bootstrap(METRICS[task], truth, challenger, champion, samples=samples)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    resampled_gaps(task, truth, [challenger, champion], groups, list(GROUPS), samples=samples)
    fairness_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def metric(y, predicted):
        return r2_score(y, predicted) if task == "regression" else f1_score(y, predicted, average="macro")

    draws = min(samples, BASELINE_RESAMPLES)
    started = time.perf_counter()
    for _ in range(draws):
        drawn = rng.integers(0, rows, rows)
        metric(truth[drawn], challenger[drawn]) - metric(truth[drawn], champion[drawn])
    baseline_seconds = (time.perf_counter() - started) * samples / draws
    return {
        "rows": rows,
        "task": task,
        "samples": samples,
        "seconds": round(seconds, 3),
        "fairness_seconds": round(fairness_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 2),
        "peak_mb": round(peak_mb),
    }


HEADER = ["test rows", "task", "paired bootstrap s", "fairness gaps s", "scikit-learn per resample s", "peak RSS MB"]


def markdown(results: list[dict], samples: int) -> str:
    """The figures as docs/benchmarks.md shows them."""
    setup = (
        f"{samples:,} paired bootstrap resamples of the test rows, challenger against champion (regression: r2; "
        "four classes: macro F1), the metric of every resample computed from weighted sums of per-row terms in "
        f"chunks of bounded memory; the fairness gaps of both models over {len(GROUPS)} groups on the same "
        "resamples; beside them, the baseline: scikit-learn's metric called on each resample's rows (timed on "
        f"{BASELINE_RESAMPLES} resamples and scaled to {samples:,}). Each size in a fresh process, so peak RSS is "
        "that size's own."
    )
    rows = [
        [
            f"{result['rows']:,}",
            f"{result['task']} ({METRICS[result['task']]})",
            result["seconds"],
            result["fairness_seconds"],
            result["baseline_seconds"],
            result["peak_mb"],
        ]
        for result in results
    ]
    return "\n".join([setup, "", _docs.markdown_table(HEADER, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--write-docs", action="store_true", help="also write the figures into docs/benchmarks.md")
    parser.add_argument("--one", nargs=2, metavar=("ROWS", "TASK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1], args.samples)))
        return
    results = []
    print(f"{'rows':>10} {'task':<15} {'bootstrap s':>12} {'fairness s':>11} {'scikit-learn s':>15} {'peak MB':>8}")
    for rows in args.rows:
        for task in METRICS:
            completed = subprocess.run(
                [sys.executable, __file__, "--one", str(rows), task, "--samples", str(args.samples)],
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                check=True,
            )
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            results.append(result)
            print(
                f"{rows:>10} {task:<15} {result['seconds']:>12} {result['fairness_seconds']:>11} "
                f"{result['baseline_seconds']:>15} {result['peak_mb']:>8}"
            )
    print(json.dumps(results))
    if args.write_docs:
        written = _docs.write_section("Gate bootstrap", markdown(results, args.samples), _docs.command_line())
        print(f"wrote {written}", file=sys.stderr)


if __name__ == "__main__":
    main()
