"""A pipeline of your own, built from the suite's compiled component YAML files alone.

    make compile
    .venv/bin/python examples/reuse_components.py [--components-dir build/components] [--source-uri URI --target COL]

Loads ingest_data, validate_data and prepare_data from `build/components/*.yaml`, wires them into a
data-preparation pipeline, and runs it on this machine with kfp.local, then prints where the train and test sets
are. `--compile FILE` writes the pipeline YAML for a cluster instead.

What each part needs, precisely:
- building and compiling the pipeline: kfp and the YAML files, nothing of this repository (this script imports
  none of it);
- running the steps: each step's code in the YAML is its component function's body, which imports this
  repository's package (`components`, `model_bundle`). On a cluster the steps run in the components image the
  YAML files name, which holds the package; nothing is installed at run time. kfp.local's SubprocessRunner, used
  here, runs each step in this Python environment, so the package must be installed here (`pip install` of this
  repository, as `make venv` does); without it the script stops before running, saying so.
"""

# No `from __future__ import annotations`: KFP reads the pipeline's annotations as types, not strings.
import argparse
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import pyarrow.parquet as pq
from kfp import compiler, components, dsl, local


def data_preparation_pipeline(components_dir: Path):
    """The pipeline function, its steps loaded from `components_dir`."""
    ingest_data = components.load_component_from_file(str(components_dir / "ingest_data.yaml"))
    validate_data = components.load_component_from_file(str(components_dir / "validate_data.yaml"))
    prepare_data = components.load_component_from_file(str(components_dir / "prepare_data.yaml"))

    @dsl.pipeline(name="data-preparation", description="Ingest, validate and split a dataset (reused components).")
    def data_preparation(
        source_uri: str = "sample://house-prices?rows=500&seed=1", target: str = "price"
    ) -> NamedTuple("Outputs", train=dsl.Dataset, test=dsl.Dataset):
        ingest = ingest_data(source_uri=source_uri)
        validate = validate_data(dataset=ingest.outputs["dataset"], target=target)
        prepare = prepare_data(dataset=ingest.outputs["dataset"], target=target, task=validate.outputs["task"])
        return NamedTuple("Outputs", train=dsl.Dataset, test=dsl.Dataset)(
            prepare.outputs["train"], prepare.outputs["test"]
        )

    return data_preparation


# The packages a step's code imports (its component function's body), by their top-level names.
STEP_PACKAGES = ("components", "model_bundle")


def steps_can_run_here() -> bool:
    """Whether this Python environment can run the steps as kfp.local's SubprocessRunner does: in this environment,
    importing the package the steps' code imports (looked up without importing it)."""
    try:
        return all(importlib.util.find_spec(package) is not None for package in STEP_PACKAGES)
    except ImportError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--components-dir", type=Path, default=Path("build/components"))
    parser.add_argument("--source-uri", default="sample://house-prices?rows=500&seed=1")
    parser.add_argument("--target", default="price")
    parser.add_argument("--pipeline-root", type=Path, help="where kfp.local writes artifacts (default: a temp dir)")
    parser.add_argument("--compile", type=Path, metavar="FILE", help="write the pipeline YAML instead of running it")
    args = parser.parse_args()
    if not (args.components_dir / "ingest_data.yaml").exists():
        print(f"error: no ingest_data.yaml in {args.components_dir}: run `make compile` first", file=sys.stderr)
        return 2
    pipeline = data_preparation_pipeline(args.components_dir)
    if args.compile:
        compiler.Compiler().compile(pipeline, str(args.compile))
        print(f"wrote {args.compile}")
        return 0
    if not steps_can_run_here():
        print(
            "error: kfp.local runs each step in this Python environment, and the steps' code imports this "
            f"repository's package ({', '.join(STEP_PACKAGES)}), which is not installed here: pip install the "
            "repository (or run the pipeline on a cluster, where the steps run in the components image). "
            "--compile needs only kfp.",
            file=sys.stderr,
        )
        return 2
    # kfp.local ignores base_image locally but warns when its name lacks "python"; ours is a Python image.
    warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
    pipeline_root = args.pipeline_root or Path(tempfile.mkdtemp(prefix="data-preparation-"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    run = pipeline(source_uri=args.source_uri, target=args.target)
    for name in ("train", "test"):
        dataset = run.outputs[name]
        print(f"{name}: {pq.read_metadata(dataset.path).num_rows} rows at {dataset.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
