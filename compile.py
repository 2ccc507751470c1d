"""Compiles every pipeline to DIR/<pipeline>.yaml and every component to DIR/components/<component>.yaml.

    python compile.py [--output-dir build] [--image-registry ghcr.io/you/] [--image-tag 0.1.0-abc1234]
                      [--pipeline training [name=value ...]]   # that pipeline alone, as `make run` compiles it

With --pipeline, name=value arguments are those the run will be given (`make run` passes RUN_ARGS): one a step
would refuse only after the steps before it (a model_name the registry cannot take) stops the compile instead.

The image options choose the images every step (and the SeldonDeployment) runs: `make images` builds and loads
them into kind with a version-and-commit tag, and `make run` compiles with that same tag.

Upload a pipeline YAML in the KFP UI or run it with `kfp run create -f build/training_pipeline.yaml`; load a
component YAML in your own pipeline with `kfp.components.load_component_from_file`.
"""

import argparse
import os
from pathlib import Path

from kfp import compiler


def compile_all(output_dir: Path, only: str | None = None) -> list[Path]:
    """Every pipeline and component; with `only` (a name in PIPELINES), that pipeline alone."""
    from components import discover
    from pipelines import PIPELINES

    written = []
    if only is not None:
        pipelines = {only: PIPELINES[only]}
        output_dir.mkdir(parents=True, exist_ok=True)
    else:
        pipelines = PIPELINES
        (output_dir / "components").mkdir(parents=True, exist_ok=True)
    for pipeline in pipelines.values():
        path = output_dir / f"{pipeline.pipeline_func.__name__}.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        written.append(path)
    if only is not None:
        return written
    for name, component in discover().items():
        path = output_dir / "components" / f"{name}.yaml"
        compiler.Compiler().compile(component, str(path))
        written.append(path)
    return written


def run_arguments(pairs: list[str]) -> dict:
    """``name=value`` pairs read as `kfp run create` reads them (JSON, a number or a boolean where one parses, else
    text); ValueError naming a pair that is no ``name=value``."""
    from kfp.cli.utils.parsing import parse_parameter_value

    arguments = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"argument {pair!r} is not of the form name=value")
        arguments[name] = parse_parameter_value(value)
    return arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("build"), help="where to write (default: build)")
    parser.add_argument("--image-registry", help="prefix of both images, e.g. ghcr.io/you/ (default: none)")
    parser.add_argument("--image-tag", help="tag of both images (default: the project version)")
    parser.add_argument(
        "--pipeline", help="compile only this pipeline, by its name in pipelines/__init__.py (make run: PIPELINE)"
    )
    parser.add_argument(
        "arguments",
        nargs="*",
        help="with --pipeline: the run's arguments as name=value, as `kfp run create` takes them, checked before "
        "compiling (make run: RUN_ARGS)",
    )
    args = parser.parse_args()
    # components/_image.py reads these when the components are first imported, which compile_all does.
    if args.image_registry is not None:
        os.environ["KFP_MLOPS_IMAGE_REGISTRY"] = args.image_registry
    if args.image_tag is not None:
        os.environ["KFP_MLOPS_IMAGE_TAG"] = args.image_tag
    try:
        import components._image  # noqa: F401 (reads the two options above and refuses a `latest` tag)
    except ValueError as error:
        parser.error(f"--image-tag {args.image_tag}: {error}")
    from pipelines import PIPELINES, check_arguments

    if args.pipeline is not None and args.pipeline not in PIPELINES:
        parser.error(f"--pipeline {args.pipeline!r}: no such pipeline; one of {', '.join(PIPELINES)}")
    if args.arguments:
        if args.pipeline is None:
            parser.error("name=value arguments are those of one run: give --pipeline too")
        try:
            check_arguments(run_arguments(args.arguments))
        except ValueError as error:
            parser.error(str(error))
    try:
        written = compile_all(args.output_dir, args.pipeline)
    except OSError as error:  # a file where a directory should be, no permission, a read-only file system
        where = f"--output-dir {args.output_dir}: cannot write {error.filename}"
        parser.error(f"{where} ({error.strerror}): give one you can write")
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
