"""Compiles every pipeline to DIR/<pipeline>.yaml and every component to DIR/components/<component>.yaml.

    python compile.py [--output-dir build]

Upload a pipeline YAML in the KFP UI or run it with `kfp run create -f build/training_pipeline.yaml`; load a
component YAML in your own pipeline with `kfp.components.load_component_from_file`.
"""

import argparse
from pathlib import Path

from kfp import compiler


def compile_all(output_dir: Path) -> list[Path]:
    from components import discover
    from pipelines import PIPELINES

    written = []
    (output_dir / "components").mkdir(parents=True, exist_ok=True)
    for pipeline in PIPELINES.values():
        path = output_dir / f"{pipeline.pipeline_func.__name__}.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        written.append(path)
    for name, component in discover().items():
        path = output_dir / "components" / f"{name}.yaml"
        compiler.Compiler().compile(component, str(path))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("build"), help="where to write (default: build)")
    args = parser.parse_args()
    for path in compile_all(args.output_dir):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
