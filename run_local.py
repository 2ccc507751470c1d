"""Runs a pipeline on this machine with kfp.local: no cluster, every step a subprocess in this environment.

    python run_local.py training [name=value ...]

Arguments are parsed like `kfp run create` does: a value that parses as JSON is taken as JSON (numbers,
booleans, objects), anything else as a string, e.g.
    python run_local.py training data_uri=data/houses.csv target=price thresholds='{"r2": 0.7}'

Artifacts go under local_state/pipeline_root, the MLflow registry is local_state/mlflow.db
(change the directory with --state-dir or $KFP_MLOPS_STATE_DIR).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import warnings
from pathlib import Path

from components._common.registry import STATE_DIR_ENV


def parse_arguments(pairs: list[str]) -> dict:
    arguments = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"argument {pair!r} is not of the form name=value")
        try:
            arguments[name] = json.loads(value)
        except json.JSONDecodeError:
            arguments[name] = value
    return arguments


def run(pipeline_name: str, arguments: dict, state_dir: Path) -> None:
    """Runs ``pipeline_name`` with ``arguments``; raises RuntimeError naming the failed step."""
    os.environ[STATE_DIR_ENV] = str(state_dir)  # read by the steps (registry, local serving)
    from kfp import local

    from pipelines import PIPELINES

    if pipeline_name not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline_name!r}; available: {sorted(PIPELINES)}")
    pipeline = PIPELINES[pipeline_name]
    accepted = inspect.signature(pipeline.pipeline_func).parameters
    unknown = sorted(set(arguments) - set(accepted))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for pipeline {pipeline_name!r}; accepted: {sorted(accepted)}")
    # kfp.local ignores base_image locally but warns when its name lacks "python"; ours is a Python image.
    warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(state_dir / "pipeline_root"))
    pipeline(**arguments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog="arguments: name=value pairs, JSON where it parses"
    )
    parser.add_argument("pipeline", help="pipeline name, e.g. training")
    parser.add_argument("arguments", nargs="*", help="pipeline arguments as name=value")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get(STATE_DIR_ENV, "local_state")))
    args = parser.parse_intermixed_args(argv)
    state_dir = args.state_dir.resolve()
    try:
        run(args.pipeline, parse_arguments(args.arguments), state_dir)
    except (ValueError, RuntimeError) as error:
        print(f"\nerror: {error}", file=sys.stderr)
        return 1
    print(
        f"\npipeline {args.pipeline!r} succeeded; artifacts under {state_dir / 'pipeline_root'}, "
        f"registry at {state_dir / 'mlflow.db'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
