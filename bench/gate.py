"""Speed and memory of the gate's paired bootstrap, by test-set size and task.

    .venv/bin/python bench/gate.py [--rows 1000 10000 100000 1000000] [--samples 1000]

Each size runs in a fresh process (so peak RSS is that size's own) and prints one line: rows, task, seconds and
peak RSS in MB; last, one JSON line with every figure.
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


def measure(rows: int, task: str, samples: int) -> dict:
    import numpy as np

    from components.gate_model.logic import GatePolicy, paired_bootstrap

    rng = np.random.default_rng(0)
    if task == "regression":
        truth = rng.normal(100, 20, rows)
        challenger, champion = truth + rng.normal(0, 5, rows), truth + rng.normal(0, 6, rows)
        metric = "r2"
    else:
        labels = np.array(["a", "b", "c", "d"])
        truth = labels[rng.integers(0, 4, rows)]
        challenger = np.where(rng.random(rows) < 0.8, truth, labels[rng.integers(0, 4, rows)])
        champion = np.where(rng.random(rows) < 0.75, truth, labels[rng.integers(0, 4, rows)])
        metric = "f1_macro"
    started = time.perf_counter()
    paired_bootstrap(metric, truth, challenger, champion, GatePolicy(bootstrap_samples=samples))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": rows, "task": task, "samples": samples, "seconds": round(seconds, 3), "peak_mb": round(peak_mb)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--one", nargs=2, metavar=("ROWS", "TASK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1], args.samples)))
        return
    results = []
    print(f"{'rows':>10} {'task':<15} {'seconds':>8} {'peak MB':>8}")
    for rows in args.rows:
        for task in ("regression", "classification"):
            completed = subprocess.run(
                [sys.executable, __file__, "--one", str(rows), task, "--samples", str(args.samples)],
                capture_output=True,
                text=True,
                cwd=REPO_ROOT,
                check=True,
            )
            result = json.loads(completed.stdout.strip().splitlines()[-1])
            results.append(result)
            print(f"{rows:>10} {task:<15} {result['seconds']:>8} {result['peak_mb']:>8}")
    print(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    main()
