"""Wall time of the training pipeline under kfp.local, in total and per step.

    .venv/bin/python bench/local_pipeline.py [--rows 2000] [--repeat 3] [--deploy-target none|local] [--write-docs]
    .venv/bin/python bench/local_pipeline.py --source-uri data.csv --target price --task regression --repeat 0

Runs `run_local.py training` in a fresh state directory (a cold registry, as a newcomer's first run) and then
again on the same registry (the gate now scores a champion), and prints a table, the candidate select_model chose
in each run and, last, one JSON line. With
``--source-uri`` it trains on that data instead of the built-in sample (e.g. bench/data.py's 20,000,000-row CSV,
``--repeat 0``: one cold run).
Step times come from kfp.local's own "finished with status" log lines. ``--write-docs`` also writes the table into
docs/benchmarks.md (section "Training pipeline under kfp.local", with the command, date and machine).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _docs  # noqa: E402

SECTION = "Training pipeline under kfp.local"
FINISHED = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - Task \S*'([a-z-]+)'\S* finished with status", re.MULTILINE)
STARTED = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - Running pipeline", re.MULTILINE)
WINNER = re.compile(r"# Model selection: candidate \d+ \((\w+)\) wins")  # select_model's leaderboard, printed


def run_once(state_dir: Path, arguments: list[str]) -> tuple[float, dict[str, float], str]:
    """The run's wall seconds, its seconds per step and the model type of the candidate select_model chose."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_local.py"), "training", "--state-dir", str(state_dir), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"pipeline failed:\n{completed.stdout[-3000:]}\n{completed.stderr}")
    winner = WINNER.search(completed.stdout + completed.stderr)
    if winner is None:
        sys.exit(f"select_model's leaderboard is not in the run's log:\n{completed.stdout[-3000:]}")
    return wall, step_seconds(completed.stdout), winner.group(1)


def step_seconds(log: str) -> dict[str, float]:
    """Seconds per step: from the previous step's end (or the pipeline start) to this step's end.

    A step that runs several times (train-model, once per candidate) gets the sum: the wall time of its loop.
    """
    stamps = [(m.start(), "start", m.group(1)) for m in STARTED.finditer(log)]
    stamps += [(m.start(), m.group(2), m.group(1)) for m in FINISHED.finditer(log)]
    stamps.sort()
    seconds, previous = {}, None
    for _, name, stamp in stamps:
        moment = datetime.strptime(stamp, "%H:%M:%S.%f")
        if previous is not None and name != "start":
            seconds[name] = seconds.get(name, 0.0) + (moment - previous).total_seconds()
        previous = moment
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="sample rows (the pipeline default is 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs after the cold one")
    parser.add_argument("--deploy-target", choices=["none", "local"], default="none")
    parser.add_argument("--source-uri", default="", help="data to train on instead of the sample (--rows ignored)")
    parser.add_argument("--target", default="", help="the target column of --source-uri")
    parser.add_argument("--task", default="", help="the task of --source-uri (default: the pipeline's, auto)")
    parser.add_argument("--write-docs", action="store_true", help="also write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    source = args.source_uri or f"sample://house-prices?rows={args.rows}&seed=7"
    arguments = [f"source_uri={source}", f"deploy_target={args.deploy_target}"]
    arguments += [f"{name}={value}" for name, value in (("target", args.target), ("task", args.task)) if value]
    if args.deploy_target == "local":
        arguments += ["serving_port=9390", "metrics_port=6390"]

    with tempfile.TemporaryDirectory() as state:
        cold_wall, cold_steps, cold_winner = run_once(Path(state), arguments)
        warm = [run_once(Path(state), arguments) for _ in range(args.repeat)]
        if args.deploy_target == "local":
            subprocess.run([sys.executable, "-m", "serving.local_server", "--state-dir", state, "stop"], check=True)

    warm_walls = [wall for wall, _, _ in warm] or [float("nan")]
    data = args.source_uri or f"{args.rows} rows"
    title = f"training pipeline under kfp.local, {data}, deploy_target={args.deploy_target}"
    print(title)
    print(f"{'step':<16}{'cold run s':>12}{'warm median s':>16}")
    rows = []
    for step in cold_steps:
        warm_median = statistics.median([steps.get(step, 0.0) for _, steps, _ in warm] or [float("nan")])
        print(f"{step:<16}{cold_steps[step]:>12.2f}{warm_median:>16.2f}")
        rows.append([step, f"{cold_steps[step]:.2f}", f"{warm_median:.2f}"])
    print(f"{'total wall':<16}{cold_wall:>12.2f}{statistics.median(warm_walls):>16.2f}")
    rows.append(["total wall", f"{cold_wall:.2f}", f"{statistics.median(warm_walls):.2f}"])
    winners = [cold_winner, *(winner for _, _, winner in warm)]
    print(f"chosen candidate: {', '.join(winners)} (cold run first)")
    if args.write_docs:
        section = SECTION if args.deploy_target == "none" else f"{SECTION}, deploy_target={args.deploy_target}"
        body = "\n".join(
            [
                f"The {title} (each step a fresh process), in a fresh state directory (cold: an empty registry) and "
                f"then {args.repeat} more times on the same registry (warm: the gate scores a champion); a step's "
                f"time runs from the previous step's end to its own. select_model chose: {', '.join(winners)} (cold "
                "run first).",
                "",
                _docs.markdown_table(["step", "cold run s", "warm median s"], rows),
            ]
        )
        print(f"wrote {_docs.write_section(section, body, _docs.command_line())}")
    print(
        json.dumps(
            {
                "rows": None if args.source_uri else args.rows,
                "source_uri": source,
                "deploy_target": args.deploy_target,
                "cold_wall_s": round(cold_wall, 2),
                "warm_wall_median_s": round(statistics.median(warm_walls), 2) if warm else None,
                "cold_steps_s": {step: round(value, 2) for step, value in cold_steps.items()},
                "chosen_candidates": winners,
            }
        )
    )


if __name__ == "__main__":
    main()
